"""minivision.detection.masks against torchvision's roi_heads (0.29.1), on every backend."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import assert_backend, assert_close
from hypothesis import given
from hypothesis import strategies as st
from torchvision.models.detection import roi_heads

import minivision.detection.masks as MK
from minivision._backend import to_numpy

pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")


def T(a, grad=False):
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t.requires_grad_(True) if grad else t


def tol(be):
    return dict(rtol=1e-12, atol=1e-12) if be.name == "numpy" else dict(rtol=1e-5, atol=2e-6)


# ----------------------------------------------------------------------------- paste


PASTE_BOXES = np.array(
    [
        [10.3, 5.7, 40.2, 30.9],  # inside, upsampled
        [-16.77, -3.2, 20.0, 12.5],  # negative coordinates: truncation toward zero, not floor
        [50.0, 40.0, 75.0, 70.0],  # beyond the image's bottom-right edge
        [30.0, 30.0, 30.4, 30.2],  # tiny: w, h forced to >= 1
        [2.0, 3.0, 8.0, 9.0],  # smaller than the mask: downsampled
    ]
)


@pytest.mark.parametrize("padding", [1, 0, 2])
def test_paste_masks_in_image(be, no_sync, padding):
    rng = np.random.default_rng(0)
    masks = rng.uniform(size=(len(PASTE_BOXES), 1, 14, 14))
    got = MK.paste_masks_in_image(be.asarray(masks), be.asarray(PASTE_BOXES), (48, 64), padding)
    exp = roi_heads.paste_masks_in_image(
        T(masks.astype(be.np_float)), T(PASTE_BOXES.astype(be.np_float)), (48, 64), padding
    )
    assert_backend(got, be)
    assert tuple(got.shape) == (5, 1, 48, 64)
    assert_close(got, exp.numpy(), what="pasted masks", **tol(be))


def test_paste_truncation_not_floor():
    # a box whose expanded left edge is -16.77 starts at column -16: column 0 reads mask column 16
    m = np.zeros((1, 1, 4, 4))
    m[0, 0, :, 0] = 1.0
    b = np.array([[-16.77, 0.0, 3.0, 3.0]])
    got = MK.paste_masks_in_image(m, b, (8, 8), padding=0)
    exp = roi_heads.paste_masks_in_image(T(m), T(b), (8, 8), padding=0).numpy()
    assert_close(got, exp, rtol=1e-12, atol=1e-15)


def test_paste_empty_and_outside(be):
    got = MK.paste_masks_in_image(
        be.asarray(np.zeros((0, 1, 28, 28))), be.asarray(np.zeros((0, 4))), (5, 7)
    )
    assert tuple(got.shape) == (0, 1, 5, 7)
    # boxes entirely outside the image paste nothing (torchvision errors on some of these)
    b = np.array([[100.0, 100.0, 120.0, 130.0], [-40.0, -30.0, -20.0, -10.0], [5.0, 5.0, 2.0, 2.0]])
    out = to_numpy(
        MK.paste_masks_in_image(be.asarray(np.ones((3, 1, 6, 6))), be.asarray(b), (20, 20))
    )
    assert np.all(out == 0)


box_st = st.tuples(st.floats(-30, 60), st.floats(-30, 60), st.floats(0, 50), st.floats(0, 50)).map(
    lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3]]
)


@given(st.lists(box_st, min_size=1, max_size=5), st.integers(0, 2), st.integers(3, 16))
def test_paste_hypothesis(boxes, padding, m):
    b = np.array(boxes)
    # keep to boxes torchvision can paste (its slicing breaks when the box ends left of / above 0)
    b = b[(b[:, 2] * 1.0 >= 2) & (b[:, 3] >= 2) & (b[:, 0] < 38) & (b[:, 1] < 30)]
    masks = np.random.default_rng(len(b)).uniform(size=(len(b), 1, m, m))
    got = MK.paste_masks_in_image(masks, b, (32, 40), padding)
    exp = roi_heads.paste_masks_in_image(T(masks), T(b), (32, 40), padding).numpy()
    assert_close(got, exp, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- targets and loss


def _mask_data(seed=1):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:40, :50]
    gt = np.stack(
        [
            (xx - 15) ** 2 + (yy - 12) ** 2 < 81,  # a disc
            (xx > 25) & (xx < 45) & (yy > 10) & (yy < 35),  # a rectangle
            np.abs(xx - yy) < 4,  # a diagonal band
        ]
    ).astype(np.uint8)
    props = np.array(
        [
            [5.0, 2.0, 26.5, 22.0],
            [24.0, 8.5, 47.0, 36.0],
            [0.0, 0.0, 30.0, 30.0],
            [7.3, 4.1, 18.6, 20.2],
        ]
    )
    matched = np.array([0, 1, 2, 0])
    labels = np.array([3, 1, 2])
    logits = rng.standard_normal((4, 5, 14, 14)) * 2
    return gt, props, matched, labels, logits


def test_project_masks_on_boxes(be, no_sync):
    gt, props, matched, _, _ = _mask_data()
    got = MK.project_masks_on_boxes(
        be.asarray(gt, "uint8"), be.asarray(props), be.asarray(matched, "int64"), 14
    )
    exp = roi_heads.project_masks_on_boxes(T(gt), T(props.astype(be.np_float)), T(matched), 14)
    assert_backend(got, be)
    assert_close(got, exp.numpy(), what="mask targets", **tol(be))
    t = to_numpy(got)
    assert np.any((t > 0.01) & (t < 0.99))  # soft targets, not binarised


def test_maskrcnn_loss_forward_backward(be, no_sync):
    gt, props, matched, labels, logits = _mask_data()
    # two images: the first two proposals in image 0, the rest in image 1 (same masks)
    split = 2
    ours = (
        [be.asarray(props[:split]), be.asarray(props[split:])],
        [be.asarray(gt, "uint8"), be.asarray(gt, "uint8")],
        [be.asarray(labels, "int64"), be.asarray(labels, "int64")],
        [be.asarray(matched[:split], "int64"), be.asarray(matched[split:], "int64")],
    )

    def theirs(lg, dt):
        return roi_heads.maskrcnn_loss(
            lg,
            [T(props[:split].astype(dt)), T(props[split:].astype(dt))],
            [T(gt), T(gt)],
            [T(labels), T(labels)],
            [T(matched[:split]), T(matched[split:])],
        )

    got = MK.maskrcnn_loss(be.asarray(logits), *ours)
    exp = theirs(T(logits.astype(be.np_float)), be.np_float)
    assert_close(got, exp.numpy(), what="mask loss", **tol(be))
    lt = T(logits, True)
    (g_ref,) = torch.autograd.grad(2.5 * theirs(lt, np.float64), lt)
    g = MK.maskrcnn_loss_backward(be.asarray(logits), *ours, grad_output=2.5)
    assert_close(g, g_ref.numpy().astype(be.np_float), what="mask loss grad", **tol(be))
    if be.name == "numpy":
        host = (
            [props[:split], props[split:]],
            [gt, gt],
            [labels, labels],
            [matched[:split], matched[split:]],
        )
        rng = np.random.default_rng(3)
        v = rng.standard_normal(logits.shape)
        h = 1e-6
        fd = (MK.maskrcnn_loss(logits + h * v, *host) - MK.maskrcnn_loss(logits - h * v, *host)) / (
            2 * h
        )
        assert math.isclose(float(fd) * 2.5, float(np.sum(g * v)), rel_tol=1e-6, abs_tol=1e-9)


def test_maskrcnn_loss_no_positives(be):
    logits = be.asarray(np.ones((0, 5, 14, 14)))
    got = MK.maskrcnn_loss(
        logits,
        [be.asarray(np.zeros((0, 4)))],
        [be.asarray(np.zeros((1, 8, 8)))],
        [be.asarray(np.ones(1), "int64")],
        [be.asarray(np.zeros(0), "int64")],
    )
    assert float(to_numpy(got)) == 0.0
    exp = roi_heads.maskrcnn_loss(
        T(np.ones((0, 5, 14, 14))),
        [T(np.zeros((0, 4)))],
        [T(np.zeros((1, 8, 8)))],
        [T(np.ones(1, np.int64))],
        [T(np.zeros(0, np.int64))],
    )
    assert float(exp) == 0.0


def test_bad_input():
    with pytest.raises(ValueError, match="masks"):
        MK.paste_masks_in_image(np.zeros((2, 14, 14)), np.zeros((2, 4)), (10, 10))
    with pytest.raises(ValueError, match="boxes"):
        MK.paste_masks_in_image(np.zeros((2, 1, 14, 14)), np.zeros((3, 4)), (10, 10))
    with pytest.raises(ValueError, match="padding"):
        MK.paste_masks_in_image(np.zeros((2, 1, 14, 14)), np.zeros((2, 4)), (10, 10), -1)
    with pytest.raises(ValueError, match="gt_masks"):
        MK.project_masks_on_boxes(np.zeros((8, 8)), np.zeros((2, 4)), np.zeros(2, int), 7)
    with pytest.raises(ValueError, match="matched_idxs"):
        MK.project_masks_on_boxes(np.zeros((1, 8, 8)), np.zeros((2, 4)), np.zeros(3, int), 7)
    with pytest.raises(ValueError, match="mask_logits"):
        MK.maskrcnn_loss(np.zeros((2, 3, 7)), [], [], [], [])


@pytest.mark.parametrize("bad_label", [5, 7, -2])
def test_maskrcnn_loss_label_out_of_range_is_nan(be, no_sync, bad_label):
    """torchvision raises on a label >= K; device-pure code cannot: that proposal's row is NaN."""
    gt, props, matched, labels, logits = _mask_data()  # K = 5 channels
    labels = labels.copy()
    labels[1] = bad_label  # matched by proposal 1 only
    if bad_label >= 5:
        with pytest.raises(IndexError):
            roi_heads.maskrcnn_loss(T(logits), [T(props)], [T(gt)], [T(labels)], [T(matched)])
    args = (
        [be.asarray(props)],
        [be.asarray(gt, "uint8")],
        [be.asarray(labels, "int64")],
        [be.asarray(matched, "int64")],
    )
    lb = be.asarray(logits)
    assert math.isnan(float(to_numpy(MK.maskrcnn_loss(lb, *args))))
    g = to_numpy(MK.maskrcnn_loss_backward(lb, *args))
    assert np.isnan(g[1]).all() and not np.isnan(np.delete(g, 1, axis=0)).any()
    np.testing.assert_array_equal(to_numpy(lb), logits.astype(be.np_float))


def test_project_masks_out_of_range_index_is_nan(be, no_sync):
    gt, props, matched, _, _ = _mask_data()  # G = 3
    matched = np.array([0, 3, 2, -1])
    got = to_numpy(
        MK.project_masks_on_boxes(
            be.asarray(gt, "uint8"), be.asarray(props), be.asarray(matched, "int64"), 14
        )
    )
    assert np.isnan(got[[1, 3]]).all() and not np.isnan(got[[0, 2]]).any()
    exp = roi_heads.project_masks_on_boxes(
        T(gt), T(props[[0, 2]].astype(be.np_float)), T(matched[[0, 2]]), 14
    )
    assert_close(got[[0, 2]], exp.numpy(), what="in-range targets", **tol(be))


def test_mask_bad_lengths_and_empty_gt():
    gt, props, matched, labels, logits = _mask_data()
    with pytest.raises(ValueError, match=r"gt_labels\[0\]"):
        MK.maskrcnn_loss(logits, [props], [gt], [labels[:2]], [matched])
    with pytest.raises(ValueError, match=r"gt_labels\[0\]"):
        MK.maskrcnn_loss_backward(logits, [props], [gt], [labels[:2]], [matched])
    with pytest.raises(ValueError, match="gt_masks"):
        MK.project_masks_on_boxes(np.zeros((0, 40, 50)), props, matched, 14)
    with pytest.raises(ValueError, match="gt_masks"):
        MK.maskrcnn_loss(logits, [props], [gt[:0]], [labels[:0]], [matched])
    with pytest.raises(TypeError, match="matched_idxs"):
        MK.project_masks_on_boxes(gt, props, matched.astype(float), 14)
    # no proposals and no ground truth is fine: an empty target
    assert MK.project_masks_on_boxes(gt[:0], props[:0], matched[:0], 14).shape == (0, 14, 14)


@pytest.mark.parametrize("kind", ["complex", "bool"])
def test_maskrcnn_loss_refuses_complex_and_bool(kind):
    def bad(a):
        return a.astype(complex) + 1j if kind == "complex" else a.astype(bool)

    gt, props, matched, labels, logits = _mask_data()
    for f in (MK.maskrcnn_loss, MK.maskrcnn_loss_backward):
        with pytest.raises(TypeError, match="^mask_logits must have a real"):
            f(bad(logits), [props], [gt], [labels], [matched])
        with pytest.raises(TypeError, match=r"^proposals\[0\] must have a real"):
            f(logits, [bad(props)], [gt], [labels], [matched])
        with pytest.raises(TypeError, match=r"^gt_labels\[0\] must have a real"):
            f(logits, [props], [gt], [bad(labels)], [matched])
        with pytest.raises(TypeError, match="matched_idxs"):
            f(logits, [props], [gt], [labels], [bad(matched)])
    # bool ground-truth masks are the usual kind: accepted
    ref = MK.maskrcnn_loss(logits, [props], [gt], [labels], [matched])
    assert float(MK.maskrcnn_loss(logits, [props], [gt.astype(bool)], [labels], [matched])) == ref


def test_no_mutation():
    gt, props, matched, labels, logits = _mask_data()
    copies = [a.copy() for a in (gt, props, matched, labels, logits)]
    MK.maskrcnn_loss_backward(logits, [props], [gt], [labels], [matched])
    MK.paste_masks_in_image(logits[:, :1], props, (30, 30))
    for a, b in zip((gt, props, matched, labels, logits), copies):
        np.testing.assert_array_equal(a, b)
