"""minivision.nn.box_losses (GIoU, DIoU, CIoU losses) against torchvision.ops and torch autograd."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchvision.ops as tv
from helpers import T, assert_backend, assert_close, fd_check, tol, torch_grad
from hypothesis import given
from hypothesis import strategies as st

import minivision.nn.box_losses as L

pytestmark = pytest.mark.filterwarnings(
    "ignore:invalid value encountered:RuntimeWarning",
    "ignore:divide by zero:RuntimeWarning",
    "ignore:overflow encountered:RuntimeWarning",
)

REDS = ("none", "mean", "sum")


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


def test_empty_mean_is_zero(be):
    """torchvision guards the IoU losses' empty mean: 0, where torch's elementwise losses give NaN."""
    e = be.asarray(np.zeros((0, 4)))
    for name in IOU_LOSSES:
        got = getattr(L, name)(e, e, reduction="mean")
        ref = getattr(tv, name)(T(np.zeros((0, 4))), T(np.zeros((0, 4))), reduction="mean")
        assert float(got) == float(ref) == 0.0, name
        assert tuple(getattr(L, name + "_backward")(e, e, reduction="mean").shape) == (0, 4)


# ----------------------------------------------------------------------------- bad input, mutation


def test_bad_input():
    x = np.zeros((3, 4))
    with pytest.raises(ValueError, match="boxes2"):
        L.generalized_box_iou_loss(x, np.zeros((3, 5)))


@pytest.mark.parametrize("name", IOU_LOSSES)
def test_iou_losses_need_one_shape(name):
    """Paired boxes of different shapes are refused (torchvision raises on (5, 4) vs (1, 5, 4))."""
    a, b = PRED[:5], TARGET[None, :5]
    with pytest.raises(IndexError):
        getattr(tv, name)(T(a), T(b))
    for f in (getattr(L, name), getattr(L, name + "_backward")):
        with pytest.raises(ValueError, match=r"boxes2 must have the shape of boxes1 \(5, 4\)"):
            f(a, b)
        with pytest.raises(ValueError, match="boxes2 must have the shape of boxes1"):
            f(a, TARGET[:1])
        with pytest.raises(ValueError, match="boxes2 must have the shape of boxes1"):
            f(b, a)


def test_no_mutation():
    copies = [a.copy() for a in (PRED, TARGET)]
    for name in IOU_LOSSES:
        getattr(L, name)(PRED, TARGET)
        getattr(L, name + "_backward")(PRED, TARGET)
    for a, b in zip((PRED, TARGET), copies):
        np.testing.assert_array_equal(a, b)
