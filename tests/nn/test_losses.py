"""minivision.nn.losses (regression and classification losses) against torch / torchvision (forward) and torch autograd (backward).

Every case builds host data once; the backend gets it in its float dtype and torch gets a tensor
of the same dtype for the forward comparison. Backward passes are compared with torch autograd
in float64 (on the NumPy backend, float64 on both sides; on float32 backends, our float32
gradient against torch's float64 one within float32 rounding) and checked independently with
central finite differences in float64.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.ops as tv
from helpers import T, assert_backend, assert_close, fd_check, tol, torch_grad
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import minivision.nn.losses as L
from minivision._backend import to_numpy

pytestmark = pytest.mark.filterwarnings(
    "ignore:invalid value encountered:RuntimeWarning",
    "ignore:divide by zero:RuntimeWarning",
    "ignore:overflow encountered:RuntimeWarning",
)

REDS = ("none", "mean", "sum")


@pytest.mark.parametrize("reduction", REDS)
@pytest.mark.parametrize("beta", [1.0, 1 / 9, 0.0, 0.5])
def test_smooth_l1_forward_backward(be, no_sync, reduction, beta):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((7, 4)) * 2
    y = rng.standard_normal((7, 4))
    x[0, 0], y[0, 0] = 1.5, 1.5 - beta  # |z| == beta: linear branch
    x[0, 1] = y[0, 1]  # z == 0: gradient 0
    xb, yb = be.asarray(x), be.asarray(y)
    got = L.smooth_l1_loss(xb, yb, reduction, beta)
    exp = F.smooth_l1_loss(
        T(x.astype(be.np_float)), T(y.astype(be.np_float)), reduction=reduction, beta=beta
    )
    assert_backend(got, be)
    assert_close(got, exp.numpy(), what="smooth_l1", **tol(be))
    g_ref, _ = torch_grad(
        lambda a, b: F.smooth_l1_loss(a, b, reduction=reduction, beta=beta), x, T(y)
    )
    g = L.smooth_l1_loss_backward(xb, yb, reduction, beta)
    assert_close(g, g_ref.astype(be.np_float), what="smooth_l1 grad", **tol(be))
    if be.name == "numpy":
        # finite differences away from the kinks (|z| = beta and z = 0)
        xs = x + 0.013
        gs = L.smooth_l1_loss_backward(xs, y, reduction, beta)
        fd_check(lambda a: L.smooth_l1_loss(a, y, reduction, beta), xs, gs)


@pytest.mark.parametrize("reduction", REDS)
def test_l1(be, reduction):
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    got = L.l1_loss(be.asarray(x), be.asarray(y), reduction)
    exp = F.l1_loss(T(x.astype(be.np_float)), T(y.astype(be.np_float)), reduction=reduction)
    assert_close(got, exp.numpy(), what="l1", **tol(be))
    g_ref, _ = torch_grad(lambda a, b: F.l1_loss(a, b, reduction=reduction), x, T(y))
    assert_close(
        L.l1_loss_backward(be.asarray(x), be.asarray(y), reduction),
        g_ref.astype(be.np_float),
        **tol(be),
    )


def test_empty_reductions(be):
    e = be.asarray(np.zeros((0, 4)))
    assert math.isnan(float(L.smooth_l1_loss(e, e)))  # torch: mean of empty is NaN
    assert float(L.smooth_l1_loss(e, e, "sum")) == 0.0
    assert math.isnan(float(F.smooth_l1_loss(T(np.zeros((0, 4))), T(np.zeros((0, 4))))))
    assert math.isnan(float(L.binary_cross_entropy_with_logits(e, e)))
    assert math.isnan(float(L.sigmoid_focal_loss(e, e, reduction="mean")))
    assert math.isnan(
        float(tv.sigmoid_focal_loss(T(np.zeros((0, 4))), T(np.zeros((0, 4))), reduction="mean"))
    )


# ----------------------------------------------------------------------------- cross-entropy

CE_CASES = {
    "plain": {},
    "weighted": {"weight": np.array([0.5, 2.0, 1.0, 3.0])},
    "ignore": {"ignore": True},
    "weighted+ignore": {"weight": np.array([0.5, 2.0, 1.0, 3.0]), "ignore": True},
    "smoothing": {"label_smoothing": 0.1},
    "weighted+smoothing+ignore": {
        "weight": np.array([0.5, 2.0, 1.0, 3.0]),
        "label_smoothing": 0.2,
        "ignore": True,
    },
}


@pytest.mark.parametrize("reduction", REDS)
@pytest.mark.parametrize("case", list(CE_CASES))
def test_cross_entropy(be, no_sync, case, reduction):
    c = CE_CASES[case]
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 4)) * 3
    x[1] = [100.0, -100.0, 0.0, 50.0]  # large logits: the log-sum-exp must not overflow
    t = np.array([0, 1, 3, 2, 1, 0])
    ii = -100
    if c.get("ignore"):
        ii = 2
    w = c.get("weight")
    ls = c.get("label_smoothing", 0.0)
    kw = dict(ignore_index=ii, reduction=reduction, label_smoothing=ls)
    xb, tb = be.asarray(x), be.asarray(t, "int64")
    wb = None if w is None else be.asarray(w)
    got = L.cross_entropy(xb, tb, wb, **kw)
    wt = None if w is None else T(w.astype(be.np_float))
    exp = F.cross_entropy(T(x.astype(be.np_float)), T(t), weight=wt, **kw)
    assert_backend(got, be)
    assert_close(got, exp.numpy(), what=f"cross_entropy {case}", **tol(be, 100))
    w64 = None if w is None else T(w)
    up = None if reduction != "none" else rng.standard_normal(6)
    g_ref, _ = torch_grad(lambda a: F.cross_entropy(a, T(t), weight=w64, **kw), x, upstream=up)
    g = L.cross_entropy_backward(
        xb, tb, wb, **kw, grad_output=None if up is None else be.asarray(up)
    )
    assert_close(g, g_ref.astype(be.np_float), what=f"cross_entropy grad {case}", **tol(be))
    if be.name == "numpy":
        fd_check(lambda a: L.cross_entropy(a, t, w, **kw), x, g, upstream=up)


def test_cross_entropy_all_ignored(be):
    x = np.random.default_rng(4).standard_normal((3, 5))
    t = np.full(3, -100)
    got = L.cross_entropy(be.asarray(x), be.asarray(t, "int64"))
    assert math.isnan(float(got)) and math.isnan(float(F.cross_entropy(T(x), T(t))))
    g_ref, _ = torch_grad(lambda a: F.cross_entropy(a, T(t)), x)
    assert_close(
        L.cross_entropy_backward(be.asarray(x), be.asarray(t, "int64")), g_ref.astype(be.np_float)
    )


# (input shape, target shape): torch's per-position layouts (N, C, d1, ..., dk) / (N, d1, ..., dk),
# and the unbatched (C,) / ()
CE_LAYOUTS = {
    "NCHW": ((2, 4, 5, 3), (2, 5, 3)),
    "NCL": ((3, 4, 7), (3, 7)),
    "NCDHW": ((2, 4, 3, 2, 2), (2, 3, 2, 2)),
    "C": ((4,), ()),
}


@pytest.mark.parametrize("reduction", REDS)
@pytest.mark.parametrize("case", list(CE_CASES))
@pytest.mark.parametrize("layout", list(CE_LAYOUTS))
def test_cross_entropy_per_position(be, no_sync, layout, case, reduction):
    """The N-D cross-entropy of semantic segmentation equals torch's F.cross_entropy: forward
    against torch in the backend's dtype, backward against torch autograd in float64."""
    c = CE_CASES[case]
    shape, tshape = CE_LAYOUTS[layout]
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape) * 3
    t = rng.integers(0, 4, size=tshape)
    ii = 2 if c.get("ignore") else -100
    if c.get("ignore") and t.ndim:
        t.flat[0] = 2  # at least one ignored position
    w = c.get("weight")
    kw = dict(ignore_index=ii, reduction=reduction, label_smoothing=c.get("label_smoothing", 0.0))
    # reshaped: the fixture's torch conversion makes 0-d arrays 1-d
    xb, tb = be.asarray(x), be.xp.reshape(be.asarray(t, "int64"), tshape)
    x_before = to_numpy(xb).copy()
    wb = None if w is None else be.asarray(w)
    got = L.cross_entropy(xb, tb, wb, **kw)
    wt = None if w is None else T(w.astype(be.np_float))
    exp = F.cross_entropy(T(x.astype(be.np_float)), torch.tensor(t), weight=wt, **kw)
    assert_backend(got, be)
    assert_close(got, exp.numpy(), what=f"cross_entropy {layout} {case}", **tol(be, 100))
    w64 = None if w is None else T(w)
    up = None if reduction != "none" else np.asarray(rng.standard_normal(tshape))
    g_ref, _ = torch_grad(  # flattened: torch_grad's upstream cannot be 0-d
        lambda a: F.cross_entropy(a, torch.tensor(t), weight=w64, **kw).reshape(-1),
        x,
        upstream=None if up is None else up.reshape(-1),
    )
    g = L.cross_entropy_backward(
        xb, tb, wb, **kw, grad_output=None if up is None else be.xp.reshape(be.asarray(up), tshape)
    )
    assert_backend(g, be)
    assert_close(
        g, g_ref.astype(be.np_float), what=f"cross_entropy grad {layout} {case}", **tol(be)
    )
    assert np.array_equal(to_numpy(xb), x_before)


def test_cross_entropy_per_position_bad_shapes():
    x = np.zeros((2, 4, 5, 3))
    with pytest.raises(ValueError, match=r"target must be an integer array of shape \(2, 5, 3\)"):
        L.cross_entropy(x, np.zeros((2, 5), int))
    with pytest.raises(ValueError, match="target"):
        L.cross_entropy(x, np.zeros((2, 4, 5, 3), int))  # probability targets: not supported
    with pytest.raises(ValueError, match="grad_output"):
        L.cross_entropy_backward(
            x, np.zeros((2, 5, 3), int), reduction="none", grad_output=np.ones((2, 15))
        )
    with pytest.raises(ValueError, match="input"):
        L.cross_entropy(np.zeros(()), np.zeros((), int))


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("bad_label", [5, -3, 4])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_out_of_range_label_is_nan(be, no_sync, bad_label, smoothing):
    """torch raises on a target outside [0, C); device-pure code cannot: that row is NaN."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((5, 4))
    t = np.array([0, 1, bad_label, 3, 2])
    with pytest.raises((IndexError, RuntimeError)):
        F.cross_entropy(T(x), T(t))
    keep = np.array([0, 1, 3, 4])
    xb, tb = be.asarray(x), be.asarray(t, "int64")
    x_before = to_numpy(xb).copy()
    kw = dict(label_smoothing=smoothing)
    for red in ("mean", "sum"):
        assert math.isnan(float(to_numpy(L.cross_entropy(xb, tb, reduction=red, **kw))))
    rows = to_numpy(L.cross_entropy(xb, tb, reduction="none", **kw))
    assert np.isnan(rows[2]) and not np.isnan(rows[keep]).any()
    ref = F.cross_entropy(T(x[keep]), T(t[keep]), reduction="none", **kw).numpy()
    assert_close(rows[keep], ref.astype(be.np_float), what="kept rows", **tol(be, 100))
    g = to_numpy(L.cross_entropy_backward(xb, tb, reduction="sum", **kw))
    g_ref, _ = torch_grad(lambda a: F.cross_entropy(a, T(t[keep]), reduction="sum", **kw), x[keep])
    assert np.isnan(g[2]).all()
    assert_close(g[keep], g_ref.astype(be.np_float), what="kept gradient rows", **tol(be))
    assert np.array_equal(to_numpy(xb), x_before)


# ----------------------------------------------------------------------------- BCE and focal


@pytest.mark.parametrize("reduction", REDS)
@pytest.mark.parametrize("variant", ["plain", "weight", "pos_weight", "both"])
def test_bce_with_logits(be, no_sync, reduction, variant):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((5, 3)) * 4
    x[0] = [100.0, -100.0, 30.0]  # saturated logits: finite, exact losses
    y = rng.uniform(size=(5, 3))  # soft targets
    y[0] = [0.0, 1.0, 0.0]
    w = rng.uniform(0.5, 2, size=(5, 3)) if variant in ("weight", "both") else None
    pw = rng.uniform(0.5, 3, size=3) if variant in ("pos_weight", "both") else None
    B = lambda a: None if a is None else be.asarray(a)  # noqa: E731
    Tf = lambda a: None if a is None else T(a.astype(be.np_float))  # noqa: E731
    got = L.binary_cross_entropy_with_logits(B(x), B(y), B(w), reduction, B(pw))
    exp = F.binary_cross_entropy_with_logits(
        Tf(x), Tf(y), Tf(w), reduction=reduction, pos_weight=Tf(pw)
    )
    assert np.all(np.isfinite(np.asarray(exp.numpy())))
    assert_close(got, exp.numpy(), what="bce", **tol(be, 100))
    T64 = lambda a: None if a is None else T(a)  # noqa: E731
    g_ref, _ = torch_grad(
        lambda a: F.binary_cross_entropy_with_logits(
            a, T(y), T64(w), reduction=reduction, pos_weight=T64(pw)
        ),
        x,
    )
    g = L.binary_cross_entropy_with_logits_backward(B(x), B(y), B(w), reduction, B(pw))
    assert_close(g, g_ref.astype(be.np_float), what="bce grad", **tol(be))
    if be.name == "numpy":
        fd_check(lambda a: L.binary_cross_entropy_with_logits(a, y, w, reduction, pw), x, g)


@pytest.mark.parametrize("reduction", REDS)
@pytest.mark.parametrize("alpha,gamma", [(0.25, 2), (-1, 0), (0.5, 1.5), (1.0, 3), (0.0, 0.5)])
def test_sigmoid_focal_loss(be, no_sync, reduction, alpha, gamma):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((6, 4)) * 3
    y = (rng.uniform(size=(6, 4)) > 0.7).astype(float)
    y[0] = [0.3, 0.9, 0.5, 0.0]  # soft targets
    got = L.sigmoid_focal_loss(be.asarray(x), be.asarray(y), alpha, gamma, reduction)
    exp = tv.sigmoid_focal_loss(
        T(x.astype(be.np_float)), T(y.astype(be.np_float)), alpha, gamma, reduction
    )
    assert_close(got, exp.numpy(), what="focal", **tol(be, 10))
    g_ref, _ = torch_grad(lambda a: tv.sigmoid_focal_loss(a, T(y), alpha, gamma, reduction), x)
    g = L.sigmoid_focal_loss_backward(be.asarray(x), be.asarray(y), alpha, gamma, reduction)
    assert_close(g, g_ref.astype(be.np_float), what="focal grad", **tol(be))
    if be.name == "numpy":
        fd_check(lambda a: L.sigmoid_focal_loss(a, y, alpha, gamma, reduction), x, g)


def test_focal_edge_cases(be):
    x, y = np.array([[100.0, -100.0, 2.0]]), np.array([[1.0, 0.0, 1.0]])
    # gamma = 0, alpha = -1 is plain BCE
    assert_close(
        L.sigmoid_focal_loss(be.asarray(x), be.asarray(y), -1, 0),
        L.binary_cross_entropy_with_logits(be.asarray(x), be.asarray(y), reduction="none"),
    )
    # gamma < 1 at a saturated logit: NaN gradient, as torch autograd gives
    g_ref, _ = torch_grad(lambda a: tv.sigmoid_focal_loss(a, T(y), 0.25, 0.5), x)
    g = L.sigmoid_focal_loss_backward(be.asarray(x), be.asarray(y), 0.25, 0.5)
    assert np.isnan(g_ref[0, 0]) and np.isnan(
        np.asarray(L.sigmoid_focal_loss_backward(x, y, 0.25, 0.5))[0, 0]
    )
    assert np.isfinite(np.asarray(g_ref[0, 2])) and g.shape == (1, 3)
    for alpha in (-0.5, 1.5, 2):
        with pytest.raises(ValueError, match="alpha"):
            L.sigmoid_focal_loss(be.asarray(x), be.asarray(y), alpha)
        with pytest.raises(ValueError):
            tv.sigmoid_focal_loss(T(x), T(y), alpha)


@given(
    x=arrays(np.float64, (12,), elements=st.floats(-100, 100)),
    y=arrays(np.float64, (12,), elements=st.floats(0, 1)),
)
def test_bce_focal_hypothesis(x, y):
    for red in REDS:
        got = L.binary_cross_entropy_with_logits(x, y, reduction=red)
        assert_close(
            got,
            F.binary_cross_entropy_with_logits(T(x), T(y), reduction=red).numpy(),
            rtol=1e-12,
            atol=1e-13,
        )
        got = L.sigmoid_focal_loss(x, y, reduction=red)
        assert_close(
            got, tv.sigmoid_focal_loss(T(x), T(y), reduction=red).numpy(), rtol=1e-10, atol=1e-13
        )
    g_ref, _ = torch_grad(lambda a: tv.sigmoid_focal_loss(a, T(y), reduction="sum"), x)
    assert_close(L.sigmoid_focal_loss_backward(x, y, reduction="sum"), g_ref, rtol=1e-9, atol=1e-13)


# ----------------------------------------------------------------------------- bad input


def test_bad_input():
    x = np.zeros((3, 4))
    with pytest.raises(ValueError, match="reduction"):
        L.smooth_l1_loss(x, x, "avg")
    with pytest.raises(ValueError, match="beta"):
        L.smooth_l1_loss(x, x, beta=-1)
    with pytest.raises(ValueError, match="target"):
        L.smooth_l1_loss(x, np.zeros((3, 5)))
    with pytest.raises(TypeError, match="input"):
        L.l1_loss(np.zeros((3, 4), int), x)
    with pytest.raises(TypeError, match="target"):
        L.smooth_l1_loss(x, [[0] * 4] * 3)
    with pytest.raises(ValueError, match="target"):
        L.cross_entropy(x, np.zeros(3))
    with pytest.raises(ValueError, match="weight"):
        L.cross_entropy(x, np.zeros(3, int), np.ones(3))
    with pytest.raises(ValueError, match="label_smoothing"):
        L.cross_entropy(x, np.zeros(3, int), label_smoothing=1.5)


def _real_arg_calls(bad):
    """(argument name, call) for every array argument of every loss, ``bad`` in its place."""
    x, t, ti = np.zeros((3, 4)), np.ones((3, 4)), np.zeros(3, int)
    out = []
    for f in ("smooth_l1_loss", "l1_loss", "binary_cross_entropy_with_logits"):
        for g in (getattr(L, f), getattr(L, f + "_backward")):
            out.append(("input", lambda g=g: g(bad((3, 4)), t)))
            out.append(("target", lambda g=g: g(x, bad((3, 4)))))
    for g in (L.binary_cross_entropy_with_logits, L.binary_cross_entropy_with_logits_backward):
        out.append(("weight", lambda g=g: g(x, t, bad((3, 4)))))
        out.append(("pos_weight", lambda g=g: g(x, t, None, "mean", bad((4,)))))
    for g in (L.sigmoid_focal_loss, L.sigmoid_focal_loss_backward):
        out.append(("inputs", lambda g=g: g(bad((3, 4)), t)))
        out.append(("targets", lambda g=g: g(x, bad((3, 4)))))
    for g in (L.cross_entropy, L.cross_entropy_backward):
        out.append(("input", lambda g=g: g(bad((3, 4)), ti)))
        out.append(("weight", lambda g=g: g(x, ti, bad((4,)))))
    return out


@pytest.mark.parametrize("kind", ["complex", "bool"])
def test_losses_refuse_complex_and_bool(kind):
    """As the box functions do: torch drops the imaginary part or fails with its own message."""

    def bad(shape):
        return np.zeros(shape, complex) + 1j if kind == "complex" else np.ones(shape, bool)

    for name, call in _real_arg_calls(bad):
        with pytest.raises(TypeError, match=f"^{name} must have a real"):
            call()
    with pytest.raises(ValueError, match="target must be an integer array"):
        L.cross_entropy(np.zeros((3, 4)), bad((3,)))


@given(
    n=st.integers(0, 6),
    c=st.integers(1, 5),
    scale=st.sampled_from([1.0, 30.0, 300.0]),
    smoothing=st.sampled_from([0.0, 0.05, 0.3]),
    weighted=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_cross_entropy_hypothesis(n, c, scale, smoothing, weighted, seed):
    """Random sizes (empty batches included), large logits, ignored rows, weights, smoothing."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c)) * scale
    t = rng.integers(-1, c, n)  # -1 is ignore_index here
    w = rng.uniform(0.2, 3.0, c) if weighted else None
    kw = dict(ignore_index=-1, label_smoothing=smoothing)
    wt = None if w is None else T(w)
    for red in REDS:
        got = L.cross_entropy(x, t, w, reduction=red, **kw)
        exp = F.cross_entropy(T(x), T(t), weight=wt, reduction=red, **kw).numpy()
        assert_close(got, exp, what=f"cross_entropy {red}", rtol=1e-10, atol=1e-10 * scale)
    if n:
        g_ref, _ = torch_grad(
            lambda a: F.cross_entropy(a, T(t), weight=wt, reduction="sum", **kw), x
        )
        g = L.cross_entropy_backward(x, t, w, reduction="sum", **kw)
        assert_close(g, g_ref, what="cross_entropy grad", rtol=1e-10, atol=1e-12)
