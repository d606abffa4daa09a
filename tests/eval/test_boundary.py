"""Boundary IoU and boundary F-score against the authors' code, run on live OpenCV / skimage.

``boundary_iou_api`` (bowenc0221/boundary-iou-api) and the DAVIS toolkit are not installed; their
functions are transcribed below as they are written there (``boundary_iou/utils/boundary_utils.py``:
``mask_to_boundary`` and ``boundary_iou``; ``davis2017/metrics.py``: ``f_measure`` and
``_seg2bmap``, with NumPy's removed ``np.bool`` written ``bool``). OpenCV and scikit-image do the
morphology, so every expected value comes from the live libraries.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from helpers import assert_backend, assert_close
from hypothesis import given
from hypothesis import strategies as st
from skimage.morphology import disk

from minivision._backend import to_numpy
from minivision.eval import (
    boundary_f_score,
    boundary_iou,
    boundary_width,
    mask_to_boundary,
    semantic_boundary_iou,
)

# ----------------------------------------------------------------------------- the references


def ref_mask_to_boundary(mask, dilation_ratio=0.02):
    """boundary-iou-api's ``mask_to_boundary`` (uint8 in, uint8 out)."""
    h, w = mask.shape
    img_diag = np.sqrt(h**2 + w**2)
    dilation = int(round(dilation_ratio * img_diag))
    if dilation < 1:
        dilation = 1
    # Pad image so mask truncated by the image border is also considered as boundary.
    new_mask = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    kernel = np.ones((3, 3), dtype=np.uint8)
    new_mask_erode = cv2.erode(new_mask, kernel, iterations=dilation)
    mask_erode = new_mask_erode[1 : h + 1, 1 : w + 1]
    # G_d intersects G in the paper.
    return mask - mask_erode


def ref_boundary_iou(gt, dt, dilation_ratio=0.02):
    """boundary-iou-api's ``boundary_iou`` (NaN for two empty masks, as 0 / 0 there)."""
    gt_boundary = ref_mask_to_boundary(gt, dilation_ratio)
    dt_boundary = ref_mask_to_boundary(dt, dilation_ratio)
    intersection = ((gt_boundary * dt_boundary) > 0).sum()
    union = ((gt_boundary + dt_boundary) > 0).sum()
    with np.errstate(invalid="ignore"):
        return np.float64(intersection) / np.float64(union)


def ref_seg2bmap(seg):
    """DAVIS' ``_seg2bmap`` at the mask's own size."""
    seg = seg.astype(bool)
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = seg ^ e | seg ^ s | seg ^ se
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = 0
    return b


def ref_f_measure(foreground_mask, gt_mask, bound_th=0.008):
    """DAVIS' ``f_measure`` without void pixels."""
    bound_pix = (
        bound_th if bound_th >= 1 else np.ceil(bound_th * np.linalg.norm(foreground_mask.shape))
    )
    fg_boundary = ref_seg2bmap(foreground_mask)
    gt_boundary = ref_seg2bmap(gt_mask)
    fg_dil = cv2.dilate(fg_boundary.astype(np.uint8), disk(bound_pix).astype(np.uint8))
    gt_dil = cv2.dilate(gt_boundary.astype(np.uint8), disk(bound_pix).astype(np.uint8))
    gt_match = gt_boundary * fg_dil
    fg_match = fg_boundary * gt_dil
    n_fg = np.sum(fg_boundary)
    n_gt = np.sum(gt_boundary)
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1, 0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0, 1
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1, 1
    else:
        precision = np.sum(fg_match) / float(n_fg)
        recall = np.sum(gt_match) / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


# ----------------------------------------------------------------------------- masks


def blob_mask(rng, h, w):
    """A few rectangles and discs, some cut by the image border, as uint8 0/1."""
    m = np.zeros((h, w), np.uint8)
    yy, xx = np.mgrid[:h, :w]
    for _ in range(int(rng.integers(1, 4))):
        cy, cx = rng.integers(-3, h + 3), rng.integers(-3, w + 3)
        ry, rx = rng.integers(1, max(2, h // 2)), rng.integers(1, max(2, w // 2))
        if rng.random() < 0.5:
            m[max(0, cy - ry) : max(0, cy + ry), max(0, cx - rx) : max(0, cx + rx)] = 1
        else:
            m[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = 1
    return m


@st.composite
def masks(draw, max_side=40):
    """A uint8 0/1 mask: noise, blobs, empty, full or one pixel, any size from 1 x 1."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    kind = draw(st.sampled_from(["noise", "blobs", "blobs", "empty", "full", "pixel"]))
    if kind == "noise":
        return (rng.random((h, w)) < rng.random()).astype(np.uint8)
    if kind == "blobs":
        return blob_mask(rng, h, w)
    m = np.full((h, w), 1 if kind == "full" else 0, np.uint8)
    if kind == "pixel":
        m[rng.integers(0, h), rng.integers(0, w)] = 1
    return m


RATIOS = st.sampled_from([0.001, 0.02, 0.05, 0.08, 0.15, 0.4, 2.0])


def perturbed(rng, m):
    """A second mask near ``m``: shifted, with a few flipped pixels."""
    shifted = np.roll(m, tuple(rng.integers(-2, 3, 2)), axis=(0, 1))
    flips = rng.random(m.shape) < 0.05
    return (shifted ^ flips).astype(np.uint8)


# ----------------------------------------------------------------------------- boundary IoU


@given(m=masks(), ratio=RATIOS)
def test_mask_to_boundary_equals_the_authors_code(m, ratio):
    got = to_numpy(mask_to_boundary(m, ratio))
    assert_close(got, ref_mask_to_boundary(m, ratio) > 0, what="mask_to_boundary")


@pytest.mark.parametrize(
    "where", ["top-left", "bottom-right", "whole-left-column", "full", "one-pixel-corner"]
)
@pytest.mark.parametrize("ratio", [0.02, 0.1, 0.5])
def test_masks_touching_the_image_border_have_a_band_there(where, ratio):
    m = np.zeros((23, 31), np.uint8)
    if where == "top-left":
        m[:9, :12] = 1
    elif where == "bottom-right":
        m[10:, 20:] = 1
    elif where == "whole-left-column":
        m[:, :1] = 1
    elif where == "full":
        m[:] = 1
    else:
        m[0, 0] = 1
    expected = ref_mask_to_boundary(m, ratio) > 0
    assert_close(mask_to_boundary(m, ratio), expected, what=f"band of the {where} mask")
    if where == "full":  # only the border band survives: a 23 x 31 frame of width d
        d = boundary_width(23, 31, ratio)
        assert int(expected.sum()) == 23 * 31 - max(0, 23 - 2 * d) * max(0, 31 - 2 * d)


def test_band_width_rounds_as_python_and_is_at_least_one():
    assert boundary_width(75, 100, 0.02) == 2  # 0.02 * 125 = 2.5 -> 2 (half to even)
    assert boundary_width(75, 100, 0.028) == 4  # 3.5 -> 4
    assert boundary_width(3, 4, 0.02) == 1  # 0.1 -> 0 -> at least 1
    m = blob_mask(np.random.default_rng(1), 75, 100)
    for ratio in (0.02, 0.028):
        assert_close(mask_to_boundary(m, ratio), ref_mask_to_boundary(m, ratio) > 0)


@given(m=masks(), ratio=RATIOS, seed=st.integers(0, 2**32 - 1))
def test_boundary_iou_equals_the_authors_code(m, ratio, seed):
    rng = np.random.default_rng(seed)
    other = (
        perturbed(rng, m) if rng.random() < 0.7 else (rng.random(m.shape) < 0.5).astype(np.uint8)
    )
    got = boundary_iou(other, m, ratio)  # pred, target = dt, gt
    assert_close(got, ref_boundary_iou(m, other, ratio), what="boundary_iou")


def test_boundary_iou_edge_cases():
    empty = np.zeros((12, 9), np.uint8)
    pixel = empty.copy()
    pixel[5, 4] = 1
    assert math.isnan(float(boundary_iou(empty, empty)))  # 0 / 0, as the authors' code
    assert float(boundary_iou(pixel, pixel)) == 1.0
    assert float(boundary_iou(pixel, empty)) == 0.0
    assert float(boundary_iou(empty, pixel)) == 0.0
    assert_close(boundary_iou(pixel, empty), ref_boundary_iou(empty, pixel))


def test_a_stack_of_masks_is_each_mask():
    rng = np.random.default_rng(3)
    stack = np.stack([[blob_mask(rng, 17, 26) for _ in range(3)] for _ in range(2)])  # (2, 3, H, W)
    other = np.stack([[perturbed(rng, m) for m in row] for row in stack])
    got = boundary_iou(other, stack, 0.1)
    assert got.shape == (2, 3)
    expected = np.array(
        [[ref_boundary_iou(g, d, 0.1) for g, d in zip(a, b)] for a, b in zip(stack, other)]
    )
    assert_close(got, expected, what="boundary_iou of a (2, 3) stack")
    bands = mask_to_boundary(stack.astype(bool), 0.1)
    for i, j in np.ndindex(2, 3):
        assert_close(bands[i, j], ref_mask_to_boundary(stack[i, j], 0.1) > 0)


# ----------------------------------------------------------------------------- label maps


def ref_semantic_boundary_iou(pred, target, num_classes, ignore_index=None, dilation_ratio=0.02):
    """A loop over classes and images of the authors' ``mask_to_boundary``, counts summed."""
    inter = np.zeros(num_classes, np.int64)
    union = np.zeros(num_classes, np.int64)
    for p, t in zip(pred, target):
        scored = np.ones(t.shape, bool) if ignore_index is None else t != ignore_index
        for c in range(num_classes):
            bp = ref_mask_to_boundary((p == c).astype(np.uint8), dilation_ratio) > 0
            bt = ref_mask_to_boundary((t == c).astype(np.uint8), dilation_ratio) > 0
            inter[c] += (bp & bt & scored).sum()
            union[c] += ((bp | bt) & scored).sum()
    with np.errstate(invalid="ignore"):
        iou = inter / union
    return inter, union, iou, np.nanmean(iou) if np.any(union) else np.nan


@st.composite
def label_maps(draw):
    """(N, H, W) maps of blobs per class, some classes absent, a noisy prediction."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    c = draw(st.integers(1, 5))
    n, h, w = draw(st.integers(1, 3)), draw(st.integers(1, 30)), draw(st.integers(1, 30))
    target = np.zeros((n, h, w), np.int64)
    for i in range(n):
        for k in rng.permutation(np.arange(1, c))[: int(rng.integers(0, c))]:
            target[i][blob_mask(rng, h, w) > 0] = k
    pred = np.stack([np.roll(t, tuple(rng.integers(-2, 3, 2)), axis=(0, 1)) for t in target])
    noisy = rng.random(pred.shape) < draw(st.sampled_from([0.0, 0.05, 0.3]))
    pred = np.where(noisy, rng.integers(0, c, pred.shape), pred)
    return pred, target, c


@given(maps=label_maps(), ratio=RATIOS, ignore=st.booleans())
def test_semantic_boundary_iou_is_the_per_class_loop(maps, ratio, ignore):
    pred, target, c = maps
    if ignore:
        target = np.where(np.random.default_rng(0).random(target.shape) < 0.1, 255, target)
    got = semantic_boundary_iou(pred, target, c, 255 if ignore else None, dilation_ratio=ratio)
    inter, union, iou, mean = ref_semantic_boundary_iou(
        pred, target, c, 255 if ignore else None, ratio
    )
    assert_close(got.intersection, inter, what="intersection")
    assert_close(got.union, union, what="union")
    assert_close(got.class_iou, iou, what="class_iou")
    assert_close(got.mean_iou, np.float64(mean), what="mean_iou")


def test_absent_classes_are_nan_and_skipped():
    target = np.zeros((1, 16, 16), np.int64)
    target[0, 4:12, 4:12] = 1
    pred = target.copy()
    pred[0, 0, 0] = 3  # class 3: predicted, never true -> IoU 0; class 2: absent from both -> NaN
    got = semantic_boundary_iou(pred, target, 4)
    iou = to_numpy(got.class_iou)
    assert math.isnan(iou[2]) and iou[3] == 0.0
    assert_close(got.mean_iou, np.float64(np.nanmean(iou)))
    one = semantic_boundary_iou(pred[0], target[0], 4)  # an (H, W) map is one image
    assert_close(one.class_iou, iou)


# ----------------------------------------------------------------------------- boundary F


@given(m=masks(), seed=st.integers(0, 2**32 - 1), th=st.sampled_from([0.008, 0.03, 0.1, 1, 2, 3]))
def test_boundary_f_score_equals_davis(m, seed, th):
    rng = np.random.default_rng(seed)
    other = perturbed(rng, m) if rng.random() < 0.7 else np.zeros_like(m)
    got = boundary_f_score(other, m, th)  # pred, target = foreground_mask, gt_mask
    assert_close(got, np.float64(ref_f_measure(other, m, th)), what="boundary_f_score")


def test_boundary_f_score_of_a_stack_and_its_empty_conventions():
    rng = np.random.default_rng(5)
    stack = np.stack([blob_mask(rng, 40, 33) for _ in range(4)])
    other = np.stack([perturbed(rng, m) for m in stack])
    other[3] = 0
    got = boundary_f_score(other, stack)
    assert_close(got, np.array([ref_f_measure(d, g) for d, g in zip(other, stack)]))
    empty = np.zeros((8, 8), bool)
    assert float(boundary_f_score(empty, empty)) == 1.0  # DAVIS: P = R = 1


# ----------------------------------------------------------------------------- backends


def test_every_backend_gives_the_numpy_result(be):
    rng = np.random.default_rng(7)
    target = np.stack([blob_mask(rng, 21, 18) * 2 for _ in range(2)]).astype(np.int64)
    target[:, 3:9, 2:7] = 1
    pred = np.stack([np.roll(t, 1, axis=1) for t in target])
    mask_p, mask_t = be.asarray(pred == 2), be.asarray(target == 2)
    rtol = 0 if be.name == "numpy" else 1e-6
    band = mask_to_boundary(mask_t, 0.1)
    assert_backend(band, be)
    assert_close(band, mask_to_boundary(target == 2, 0.1))
    for fn in (boundary_iou, boundary_f_score):
        got = fn(mask_p, mask_t)
        assert_backend(got, be)
        assert_close(got, fn(pred == 2, target == 2), rtol=rtol, check_dtype=False)
        default = be.xp.__array_namespace_info__().default_dtypes(device=be.device)
        assert got.dtype == default["real floating"]  # the library's default float
    sem = semantic_boundary_iou(be.asarray(pred), be.asarray(target), 3, dilation_ratio=0.05)
    expected = semantic_boundary_iou(pred, target, 3, dilation_ratio=0.05)
    for name in ("intersection", "union", "class_iou", "mean_iou"):
        value = getattr(sem, name)
        assert_backend(value, be)
        assert_close(value, getattr(expected, name), what=name, rtol=rtol, check_dtype=False)


def test_device_pure(no_sync):
    import array_api_strict as xs

    dev = xs.Device("device1")
    rng = np.random.default_rng(8)
    t = xs.asarray(rng.integers(0, 3, (2, 12, 10)), device=dev)
    p = xs.asarray(rng.integers(0, 3, (2, 12, 10)), device=dev)
    mask_to_boundary(t == 1)
    boundary_iou(p == 1, t == 1)
    boundary_f_score(p == 1, t == 1)
    semantic_boundary_iou(p, t, 3, 255)


# ----------------------------------------------------------------------------- bad input


def test_bad_input_is_named():
    m = np.zeros((5, 6), np.uint8)
    with pytest.raises(ValueError, match="pred and target must have one shape"):
        boundary_iou(m, np.zeros((5, 7), np.uint8))
    with pytest.raises(TypeError, match="pred must hold integer or bool"):
        boundary_iou(m.astype(np.float32), m)
    with pytest.raises(TypeError, match="mask must hold integer or bool"):
        mask_to_boundary(m.astype(np.float64))
    with pytest.raises(ValueError, match=r"mask must have shape \(\.\.\., H, W\)"):
        mask_to_boundary(np.zeros(5, np.uint8))
    for bad in (0, -0.02, float("nan")):
        with pytest.raises(ValueError, match="dilation_ratio"):
            mask_to_boundary(m, bad)
        with pytest.raises(ValueError, match="dilation_ratio"):
            semantic_boundary_iou(m, m, 2, dilation_ratio=bad)
    with pytest.raises(TypeError, match="dilation_ratio"):
        boundary_iou(m, m, "0.02")
    with pytest.raises(ValueError, match="bound_th"):
        boundary_f_score(m, m, 0)
    with pytest.raises(TypeError, match="target must hold integer class indices"):
        semantic_boundary_iou(m.astype(np.int64), m.astype(bool), 2)
    with pytest.raises(TypeError, match="target must hold integer or bool"):
        semantic_boundary_iou(m, m.astype(np.float32), 2)
    with pytest.raises(ValueError, match="num_classes"):
        semantic_boundary_iou(m, m, 0)
    with pytest.raises(ValueError, match="ignore_index"):
        semantic_boundary_iou(m, m, 3, ignore_index=1)
    with pytest.raises(ValueError, match=r"pred must have shape \(N, H, W\)"):
        semantic_boundary_iou(m[None, None], m[None, None], 2)
    with pytest.raises(TypeError, match="target must be an array"):
        boundary_iou(m, m.tolist())


def test_inputs_are_not_mutated():
    rng = np.random.default_rng(9)
    pred, target = rng.integers(0, 3, (2, 10, 10)), rng.integers(0, 3, (2, 10, 10))
    keep = pred.copy(), target.copy()
    semantic_boundary_iou(pred, target, 3)
    boundary_iou(pred == 1, target == 1)
    boundary_f_score(pred == 1, target == 1)
    mask_to_boundary(pred)
    assert np.array_equal(pred, keep[0]) and np.array_equal(target, keep[1])
