"""minivision.losses against torch / torchvision (forward) and torch autograd (backward).

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
from conftest import assert_backend, assert_close
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torchvision.models.detection import roi_heads
from torchvision.models.detection.rpn import RegionProposalNetwork

import minivision.losses as L
from minivision._backend import to_numpy

pytestmark = pytest.mark.filterwarnings(
    "ignore:invalid value encountered:RuntimeWarning",
    "ignore:divide by zero:RuntimeWarning",
    "ignore:overflow encountered:RuntimeWarning",
)

REDS = ("none", "mean", "sum")


def T(a, grad=False):
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t.requires_grad_(True) if grad else t


def tol(be, scale=1.0):
    """Exact-ish on float64, float32 rounding elsewhere."""
    return (
        dict(rtol=1e-12, atol=1e-12 * scale)
        if be.name == "numpy"
        else dict(rtol=2e-5, atol=2e-6 * scale)
    )


def torch_grad(fn, x, *rest, upstream=None):
    """Autograd gradient of fn(x, *rest) w.r.t. x in float64 (sum-reduced against upstream)."""
    xt = T(np.asarray(x, np.float64), grad=True)
    out = fn(xt, *rest)
    up = torch.ones_like(out) if upstream is None else T(upstream)
    (g,) = torch.autograd.grad(out, xt, up, allow_unused=False)
    return g.numpy(), out.detach().numpy()


def fd_check(f, x, g, upstream=None, h=1e-6, rtol=1e-5, atol=1e-7):
    """Central differences of <upstream, f(x)> along random directions vs <g, v>."""
    rng = np.random.default_rng(0)
    up = 1.0 if upstream is None else upstream
    for _ in range(3):
        v = rng.standard_normal(x.shape)
        fp = np.sum(up * np.asarray(f(x + h * v)))
        fm = np.sum(up * np.asarray(f(x - h * v)))
        fd = (fp - fm) / (2 * h)
        an = float(np.sum(g * v))
        assert abs(fd - an) <= atol + rtol * max(abs(fd), abs(an)), (fd, an)


# ----------------------------------------------------------------------------- smooth L1 / L1


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
    # the IoU losses guard the empty mean: 0
    for name in ("generalized_box_iou_loss", "distance_box_iou_loss", "complete_box_iou_loss"):
        got = getattr(L, name)(e, e, reduction="mean")
        ref = getattr(tv, name)(T(np.zeros((0, 4))), T(np.zeros((0, 4))), reduction="mean")
        assert float(got) == float(ref) == 0.0, name
        assert tuple(getattr(L, name + "_backward")(e, e, reduction="mean").shape) == (0, 4)


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


# ----------------------------------------------------------------------------- IoU losses

IOU_LOSSES = ("generalized_box_iou_loss", "distance_box_iou_loss", "complete_box_iou_loss")
PRED = np.array(
    [
        [0, 0, 10, 10],  # identical to its target: loss 0, ties everywhere
        [0, 0, 10, 10],  # overlapping
        [0, 0, 1, 1],  # disjoint: gradient from the enclosing box / centre term only
        [2, 2, 6, 6],  # nested inside its target
        [1, 2, 8, 5],  # crossing
        [-3, 4, 2, 9.5],
        [0, 0, 10, 10],  # touching its target along an edge (inter masked: 0)
    ],
    dtype=float,
)
TARGET = np.array(
    [
        [0, 0, 10, 10],
        [5, 5, 15, 15],
        [2, 2, 3, 3],
        [0, 0, 10, 10],
        [3, 0, 5, 9],
        [0, 3, 4, 7],
        [10, 0, 20, 10],
    ],
    dtype=float,
)


@pytest.mark.parametrize("reduction", REDS)
@pytest.mark.parametrize("name", IOU_LOSSES)
def test_iou_losses(be, no_sync, name, reduction):
    ours, theirs = getattr(L, name), getattr(tv, name)
    got = ours(be.asarray(PRED), be.asarray(TARGET), reduction)
    exp = theirs(T(PRED.astype(be.np_float)), T(TARGET.astype(be.np_float)), reduction)
    assert_backend(got, be)
    assert_close(got, exp.numpy(), what=name, **tol(be, 10))
    up = np.random.default_rng(7).standard_normal(len(PRED)) if reduction == "none" else None
    g_ref, _ = torch_grad(lambda a: theirs(a, T(TARGET), reduction), PRED, upstream=up)
    g = getattr(L, name + "_backward")(
        be.asarray(PRED),
        be.asarray(TARGET),
        reduction,
        grad_output=None if up is None else be.asarray(up),
    )
    assert_close(g, g_ref.astype(be.np_float), what=name + " grad", **tol(be))
    if be.name == "numpy":
        # finite differences away from ties (max/min kinks): shift the predictions a little
        p = PRED + np.array([0.11, 0.07, -0.05, 0.13])
        gp = getattr(L, name + "_backward")(p, TARGET, reduction, grad_output=up)
        f = ours if name != "complete_box_iou_loss" else _ciou_alpha_frozen(p, TARGET)
        fd_check(lambda a: _reduce_np(f(a, TARGET, "none"), reduction), p, gp, upstream=up)


def _reduce_np(loss, reduction):
    return loss if reduction == "none" else loss.sum() if reduction == "sum" else loss.mean()


def _ciou_alpha_frozen(p0, t):
    """Textbook CIoU = DIoU + alpha v with alpha evaluated once at p0 (no gradient through it)."""

    def v_of(b):
        return (
            4
            / math.pi**2
            * (
                np.arctan((t[:, 2] - t[:, 0]) / (t[:, 3] - t[:, 1]))
                - np.arctan((b[:, 2] - b[:, 0]) / (b[:, 3] - b[:, 1]))
            )
            ** 2
        )

    iou0 = 1 - L.distance_box_iou_loss(p0, t) + _rho_over_diag(p0, t)
    v0 = v_of(p0)
    alpha = v0 / (1 - iou0 + v0 + 1e-7)
    return lambda b, tt, red: L.distance_box_iou_loss(b, tt) + alpha * v_of(b)


def _rho_over_diag(b, t):
    rho = ((b[:, 0] + b[:, 2]) / 2 - (t[:, 0] + t[:, 2]) / 2) ** 2 + (
        (b[:, 1] + b[:, 3]) / 2 - (t[:, 1] + t[:, 3]) / 2
    ) ** 2
    diag = (
        (np.maximum(b[:, 2], t[:, 2]) - np.minimum(b[:, 0], t[:, 0])) ** 2
        + (np.maximum(b[:, 3], t[:, 3]) - np.minimum(b[:, 1], t[:, 1])) ** 2
        + 1e-7
    )
    return rho / diag


def test_iou_loss_values_and_quirks():
    a, b = np.array([[0, 0, 10, 10.0]]), np.array([[5, 5, 15, 15.0]])
    assert abs(float(L.generalized_box_iou_loss(a, b)[0]) - 1.0794) < 1e-4
    assert abs(float(L.distance_box_iou_loss(a, b)[0]) - 0.9683) < 1e-4
    u, v = np.array([[0, 0, 1, 1.0]]), np.array([[2, 2, 3, 3.0]])
    assert abs(float(L.generalized_box_iou_loss(u, v)[0]) - 1.7778) < 1e-4
    assert abs(float(L.distance_box_iou_loss(u, v)[0]) - 1.4444) < 1e-4
    # CIoU: eps reaches only alpha (torchvision's behaviour, kept and documented)
    tiny1, tiny2 = np.array([[0, 0, 1e-3, 2e-3]]), np.array([[0, 0, 2e-3, 1e-3]])
    for eps in (1e-7, 0.1):
        assert_close(
            L.complete_box_iou_loss(tiny1, tiny2, eps=eps),
            tv.complete_box_iou_loss(T(tiny1), T(tiny2), eps=eps).numpy(),
            rtol=1e-12,
        )
    # zero-area boxes: CIoU NaN, GIoU finite
    z = np.array([[1, 1, 1, 1.0]])
    assert np.isnan(L.complete_box_iou_loss(z, z)[0])
    assert torch.isnan(tv.complete_box_iou_loss(T(z), T(z))[0])
    assert np.isfinite(L.generalized_box_iou_loss(z, z)[0])
    assert_close(L.generalized_box_iou_loss(z, z), tv.generalized_box_iou_loss(T(z), T(z)).numpy())
    # integer and float16 inputs are computed in float32
    ai, bi = PRED.astype(np.int64), TARGET.astype(np.int64)
    for name in IOU_LOSSES:
        got = getattr(L, name)(ai, bi)
        exp = getattr(tv, name)(T(ai), T(bi)).numpy()
        assert got.dtype == np.float32
        assert_close(got, exp, rtol=1e-6, atol=1e-6)
        got16 = getattr(L, name)(PRED.astype(np.float16), TARGET.astype(np.float16))
        assert got16.dtype == np.float32


box_st = st.tuples(
    st.floats(-20, 20), st.floats(-20, 20), st.floats(0.5, 30), st.floats(0.5, 30)
).map(lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3]])


@given(st.lists(st.tuples(box_st, box_st), min_size=1, max_size=8))
def test_iou_losses_hypothesis(pairs):
    p = np.array([a for a, _ in pairs])
    t = np.array([b for _, b in pairs])
    for name in IOU_LOSSES:
        got = getattr(L, name)(p, t)
        assert_close(got, getattr(tv, name)(T(p), T(t)).numpy(), what=name, rtol=1e-12, atol=1e-12)
        g_ref, _ = torch_grad(lambda a, n=name: getattr(tv, n)(a, T(t), "sum"), p)
        g = getattr(L, name + "_backward")(p, t, "sum")
        assert_close(g, g_ref, what=name + " grad", rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------- detector losses


def _fastrcnn_data(r=12, k1=5, seed=8, positives=True):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((r, k1)) * 2
    reg = rng.standard_normal((r, 4 * k1)) * 0.3
    labels = rng.integers(0 if positives else 0, k1 if positives else 1, size=r)
    targets = rng.standard_normal((r, 4)) * 0.3
    return logits, reg, labels, targets


@pytest.mark.parametrize("positives", [True, False])
def test_fastrcnn_loss(be, no_sync, positives):
    logits, reg, labels, targets = _fastrcnn_data(positives=positives)
    f = lambda a: T(a.astype(be.np_float))  # noqa: E731
    cls_ref, box_ref = roi_heads.fastrcnn_loss(
        f(logits), f(reg), [T(labels[:5]), T(labels[5:])], [f(targets[:5]), f(targets[5:])]
    )
    args = (be.asarray(logits), be.asarray(reg), be.asarray(labels, "int64"), be.asarray(targets))
    cls, box = L.fastrcnn_loss(*args)
    assert_close(cls, cls_ref.detach().numpy(), what="cls", **tol(be, 10))
    assert_close(box, box_ref.detach().numpy(), what="box", **tol(be, 10))
    if not positives:
        assert float(to_numpy(box)) == 0.0
    # backward vs autograd in float64 with distinct upstream gradients
    lt, rt = T(logits, True), T(reg, True)
    c, b = roi_heads.fastrcnn_loss(lt, rt, [T(labels)], [T(targets)])
    gl, gr = torch.autograd.grad(0.7 * c + 1.3 * b, (lt, rt))
    g1, g2 = L.fastrcnn_loss_backward(*args, grad_cls=0.7, grad_box=1.3)
    assert_close(g1, gl.numpy().astype(be.np_float), what="d logits", **tol(be))
    assert_close(g2, gr.numpy().astype(be.np_float), what="d box_regression", **tol(be))
    # the fused call: the same losses and gradients, against torch again
    (c3, b3), (h1, h2) = L.fastrcnn_loss_and_grad(*args, grad_cls=0.7, grad_box=1.3)
    assert_close(c3, cls_ref.detach().numpy(), what="fused cls", **tol(be, 10))
    assert_close(b3, box_ref.detach().numpy(), what="fused box", **tol(be, 10))
    assert_close(h1, gl.numpy().astype(be.np_float), what="fused d logits", **tol(be))
    assert_close(h2, gr.numpy().astype(be.np_float), what="fused d box_regression", **tol(be))
    if be.name == "numpy":
        fd_check(lambda a: 0.7 * L.fastrcnn_loss(a, reg, labels, targets)[0], logits, g1)
        fd_check(lambda a: 1.3 * L.fastrcnn_loss(logits, a, labels, targets)[1], reg, g2)
    # a list of per-image labels/targets is concatenated
    c2, b2 = L.fastrcnn_loss(
        args[0], args[1], [args[2][:5], args[2][5:]], [args[3][:5, ...], args[3][5:, ...]]
    )
    assert_close(c2, cls) and assert_close(b2, box)


@pytest.mark.parametrize("r", [9, 0])
def test_fastrcnn_loss_ignored_and_empty(be, no_sync, r):
    """Labels -100 (torch's ignore_index) leave the classification mean; R = 0 gives NaN."""
    logits, reg, labels, targets = _fastrcnn_data(r=r, seed=3)
    labels[::3] = -100
    lt, rt = T(logits, True), T(reg, True)
    c, b = roi_heads.fastrcnn_loss(lt, rt, [T(labels)], [T(targets)])
    gl, gr = torch.autograd.grad(0.6 * c + 1.7 * b, (lt, rt))
    args = (be.asarray(logits), be.asarray(reg), be.asarray(labels, "int64"), be.asarray(targets))
    got = [L.fastrcnn_loss(*args), L.fastrcnn_loss_backward(*args, grad_cls=0.6, grad_box=1.7)]
    got += L.fastrcnn_loss_and_grad(*args, grad_cls=0.6, grad_box=1.7)
    ref = [(c.detach().numpy(), b.detach().numpy()), (gl.numpy(), gr.numpy())] * 2
    for what, pair, pair_ref in zip(["losses", "grads", "fused losses", "fused grads"], got, ref):
        for x, x_ref in zip(pair, pair_ref):
            assert_close(x, x_ref.astype(be.np_float), what=what, **tol(be, 10))
    if r == 0:
        assert np.isnan(float(to_numpy(got[0][0]))) and np.isnan(float(to_numpy(got[0][1])))
        assert got[1][0].shape == (0, 5) and got[1][1].shape == (0, 20)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("bad_label", [5, -3])
def test_fastrcnn_loss_out_of_range_label_is_nan(be, no_sync, bad_label):
    """torch raises on a label outside [0, K]; device-pure code cannot, so the result is NaN."""
    logits, reg, labels, targets = _fastrcnn_data(r=6, seed=4)  # K + 1 = 5 classes
    labels[2] = bad_label
    with pytest.raises((IndexError, RuntimeError)):
        roi_heads.fastrcnn_loss(T(logits), T(reg), [T(labels)], [T(targets)])
    args = (be.asarray(logits), be.asarray(reg), be.asarray(labels, "int64"), be.asarray(targets))
    (c, b), (gl, gr) = L.fastrcnn_loss_and_grad(*args)
    assert np.isnan(float(to_numpy(c)))
    gl = to_numpy(gl)
    assert np.isnan(gl[2]).all() and not np.isnan(np.delete(gl, 2, axis=0)).any()
    if bad_label > 0:  # a "positive" label: the box loss and the row's box gradient too
        assert np.isnan(float(to_numpy(b))) and np.isnan(to_numpy(gr)[2]).any()
    separate = L.fastrcnn_loss(*args), L.fastrcnn_loss_backward(*args)
    assert np.isnan(float(to_numpy(separate[0][0])))
    assert np.isnan(to_numpy(separate[1][0])[2]).all()


class _FixedSampler:
    """Stands in for BalancedPositiveNegativeSampler: returns the given sampled masks."""

    def __init__(self, pos, neg):
        self.pos, self.neg = pos, neg

    def __call__(self, labels):
        return self.pos, self.neg


def test_rpn_loss(be, no_sync):
    rng = np.random.default_rng(9)
    a = 40
    obj = rng.standard_normal(a) * 3
    deltas = rng.standard_normal((a, 4)) * 0.2
    targets = rng.standard_normal((a, 4)) * 0.2
    labels = rng.choice([1.0, 0.0, -1.0], size=a, p=[0.2, 0.4, 0.4])
    pos_m, neg_m = labels == 1, labels == 0

    def reference(o, d):
        rpn = RegionProposalNetwork.__new__(RegionProposalNetwork)
        torch.nn.Module.__init__(rpn)
        rpn.fg_bg_sampler = _FixedSampler(
            [T(pos_m[:25]), T(pos_m[25:])], [T(neg_m[:25]), T(neg_m[25:])]
        )
        return rpn.compute_loss(
            o, d, [T(labels[:25]), T(labels[25:])], [T(targets[:25]), T(targets[25:])]
        )

    args = (be.asarray(obj), be.asarray(deltas), be.asarray(labels), be.asarray(targets))
    lo, lb = L.rpn_loss(*args)
    ro, rb = reference(T(obj), T(deltas))
    assert_close(lo, ro.detach().numpy().astype(be.np_float), what="objectness", **tol(be, 10))
    assert_close(lb, rb.detach().numpy().astype(be.np_float), what="rpn box", **tol(be, 10))
    ot, dt = T(obj, True), T(deltas, True)
    o_, b_ = reference(ot, dt)
    go, gd = torch.autograd.grad(0.4 * o_ + 2.0 * b_, (ot, dt))
    g1, g2 = L.rpn_loss_backward(*args, grad_obj=0.4, grad_box=2.0)
    assert_close(g1, go.numpy().astype(be.np_float), what="d objectness", **tol(be))
    assert_close(g2, gd.numpy().astype(be.np_float), what="d deltas", **tol(be))
    if be.name == "numpy":
        fd_check(lambda x: 0.4 * L.rpn_loss(x, deltas, labels, targets)[0], obj, g1)
        fd_check(lambda x: 2.0 * L.rpn_loss(obj, x, labels, targets)[1], deltas, g2)


# ----------------------------------------------------------------------------- bad input, mutation


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
    with pytest.raises(ValueError, match="boxes2"):
        L.generalized_box_iou_loss(x, np.zeros((3, 5)))
    with pytest.raises(ValueError, match="box_regression"):
        L.fastrcnn_loss(x, np.zeros((3, 4)), np.zeros(3, int), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="labels"):
        L.fastrcnn_loss_and_grad(x, np.zeros((3, 16)), np.zeros(3), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="pred_bbox_deltas"):
        L.rpn_loss(np.zeros(3), np.zeros((2, 4)), np.zeros(3), np.zeros((3, 4)))


def test_no_mutation():
    logits, reg, labels, targets = _fastrcnn_data()
    copies = [a.copy() for a in (logits, reg, labels, targets, PRED, TARGET)]
    L.fastrcnn_loss(logits, reg, labels, targets)
    L.fastrcnn_loss_backward(logits, reg, labels, targets)
    L.fastrcnn_loss_and_grad(logits, reg, labels, targets)
    for name in IOU_LOSSES:
        getattr(L, name + "_backward")(PRED, TARGET)
    for a, b in zip((logits, reg, labels, targets, PRED, TARGET), copies):
        np.testing.assert_array_equal(a, b)


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


def test_rpn_loss_nothing_sampled():
    """No sampled anchor: both losses NaN (0/0, as torch) and zero gradients (as autograd)."""
    obj, deltas, targets = np.ones(4), np.ones((4, 4)), np.zeros((4, 4))
    labels = np.full(4, -1.0)
    lo, lb = L.rpn_loss(obj, deltas, labels, targets)
    assert np.isnan(lo) and np.isnan(lb)
    go, gd = L.rpn_loss_backward(obj, deltas, labels, targets)
    assert np.all(go == 0) and np.all(gd == 0)
    ot = T(obj, True)
    ref = F.binary_cross_entropy_with_logits(ot[labels >= 0], T(labels[labels >= 0]))
    assert torch.isnan(ref)
    (g,) = torch.autograd.grad(ref, ot)
    assert torch.all(g == 0)
