"""minivision.detection.losses (Fast R-CNN and RPN losses) against torchvision and torch autograd."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import T, assert_close, fd_check, tol
from torchvision.models.detection import roi_heads
from torchvision.models.detection.rpn import RegionProposalNetwork

import minivision.detection.losses as L
from minivision._backend import to_numpy

pytestmark = pytest.mark.filterwarnings(
    "ignore:invalid value encountered:RuntimeWarning",
    "ignore:divide by zero:RuntimeWarning",
    "ignore:overflow encountered:RuntimeWarning",
)

REDS = ("none", "mean", "sum")


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

# ----------------------------------------------------------------------------- bad input, mutation


def test_bad_input():
    x = np.zeros((3, 4))
    with pytest.raises(ValueError, match="box_regression"):
        L.fastrcnn_loss(x, np.zeros((3, 4)), np.zeros(3, int), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="labels"):
        L.fastrcnn_loss_and_grad(x, np.zeros((3, 16)), np.zeros(3), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="pred_bbox_deltas"):
        L.rpn_loss(np.zeros(3), np.zeros((2, 4)), np.zeros(3), np.zeros((3, 4)))


@pytest.mark.parametrize("kind", ["complex", "bool"])
def test_losses_refuse_complex_and_bool(kind):
    def bad(a):
        return a.astype(complex) + 1j if kind == "complex" else a.astype(bool)

    logits, reg, labels, targets = _fastrcnn_data(r=4)
    for f in (L.fastrcnn_loss, L.fastrcnn_loss_backward, L.fastrcnn_loss_and_grad):
        with pytest.raises(TypeError, match="^class_logits must have a real"):
            f(bad(logits), reg, labels, targets)
        with pytest.raises(TypeError, match="^box_regression must have a real"):
            f(logits, bad(reg), labels, targets)
        with pytest.raises(TypeError, match="^regression_targets must have a real"):
            f(logits, reg, labels, bad(targets))
    obj, deltas, lab, tg = np.zeros(4), np.zeros((4, 4)), np.array([1.0, 0, -1, 1]), np.ones((4, 4))
    for f in (L.rpn_loss, L.rpn_loss_backward):
        with pytest.raises(TypeError, match="^objectness must have a real"):
            f(bad(obj), deltas, lab, tg)
        with pytest.raises(TypeError, match="^pred_bbox_deltas must have a real"):
            f(obj, bad(deltas), lab, tg)
        with pytest.raises(TypeError, match="^labels must have a real"):
            f(obj, deltas, bad(lab), tg)
        with pytest.raises(TypeError, match="^regression_targets must have a real"):
            f(obj, deltas, lab, [bad(tg)])


def test_fastrcnn_integer_box_regression_is_refused():
    """torchvision computes the loss of integer predictions; we refuse them (no gradient)."""
    logits, reg, labels, targets = _fastrcnn_data(r=4)
    reg_int = np.round(reg * 10).astype(np.int64)
    before = reg_int.copy()
    for f in (L.fastrcnn_loss, L.fastrcnn_loss_backward, L.fastrcnn_loss_and_grad):
        with pytest.raises(TypeError, match="^box_regression must have a real floating-point"):
            f(logits, reg_int, labels, targets)
    np.testing.assert_array_equal(reg_int, before)


def test_no_mutation():
    logits, reg, labels, targets = _fastrcnn_data()
    copies = [a.copy() for a in (logits, reg, labels, targets)]
    L.fastrcnn_loss(logits, reg, labels, targets)
    L.fastrcnn_loss_backward(logits, reg, labels, targets)
    L.fastrcnn_loss_and_grad(logits, reg, labels, targets)
    for a, b in zip((logits, reg, labels, targets), copies):
        np.testing.assert_array_equal(a, b)


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

