"""minivision.ops.roi_align / roi_align_backward against torchvision.ops.roi_align 0.29.1.

The sample points and bilinear weights are torchvision's, bit for bit; the sums over samples run
in a different order (a sparse or separable product instead of nested loops), so values agree
to float round-off: ~1e-15 in float64, a few float32 ulps of the largest feature otherwise.
Gradients are checked against torch autograd in float64, and with an adjoint (dot-product)
test, since RoIAlign is linear in its input.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torchvision.ops as tv
from helpers import assert_backend, assert_close
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import minivision as mv
from minivision._backend import to_numpy

nan, inf = math.nan, math.inf

pytestmark = pytest.mark.filterwarnings(
    "ignore:invalid value encountered:RuntimeWarning", "ignore:overflow encountered:RuntimeWarning"
)


def t(host):
    return torch.from_numpy(np.ascontiguousarray(host))


def tv_align(x, rois, size, scale, sr, aligned):
    return tv.roi_align(t(x), t(rois), size, scale, sr, aligned).numpy()


def tv_align_grad(x, rois, size, scale, sr, aligned, grad):
    xt = t(x).requires_grad_()
    tv.roi_align(xt, t(rois), size, scale, sr, aligned).backward(t(grad))
    return xt.grad.numpy()


def tol(dtype, scale=1.0):
    """Same samples and weights, another summation order: round-off of the sums only."""
    eps = np.finfo(dtype).eps
    return dict(rtol=16 * eps, atol=16 * eps * scale)


def fwd_tol(be, sr, scale=4.0):
    """As ``tol``; on array-api-strict the adaptive path sums its weights with the standard-only
    scatter-add, whose round-off is that of a running total over all samples (about
    eps * number of samples, see _backend.scatter_add), hence a looser bound there."""
    if be.name == "strict-device1" and sr <= 0:
        return dict(rtol=1e-5, atol=1e-5 * scale)
    return tol(be.np_float, scale)


def feature_map(n=2, c=3, h=9, w=11, seed=0):
    return np.random.default_rng(seed).standard_normal((n, c, h, w))


# (batch_index, x1, y1, x2, y2) in image coordinates: the cases of torchvision-semantics.md §5
EDGE_ROIS = np.array(
    [
        [0, 0, 0, 8, 8],  # inside
        [1, -3, -3, 4, 4],  # half outside
        [0, 5.5, 2.5, 30, 40],  # half outside, far
        [1, 25, 25, 30, 30],  # fully outside: 0
        [0, 2, 2, 2, 2],  # zero size
        [1, 2.2, 1.1, 2.3, 1.15],  # sub-pixel
        [0, -50, -40, 100, 120],  # much larger than the map
        [0.9, 1, 1, 3, 9],  # fractional batch index
        [1, 0, 0, 11, 9],  # exactly the map
        [0, 8, 7, 11, 9],  # touching the bottom-right border
        [1, 6, 5, 5.5, 4.5],  # slightly inverted (size -0.5)
    ]
)
# Inverted by more than a bin: with aligned=True and adaptive sampling torchvision computes a
# negative grid and raises "cannot create std::vector larger than max_size()" when the grids of
# the two axes have opposite signs; tested separately below.
INVERTED = np.array([[0, 6, 5, 2, 1], [1, 9, 3, 4, 8]])
ALL = np.concatenate([EDGE_ROIS, INVERTED])
SCALES = [1.0, 0.5, 0.25, 1 / 3]
RATIOS = [-1, 0, 1, 2, 3]


def _rois_for(aligned, sr):
    return EDGE_ROIS if (aligned and sr <= 0) else ALL


# ----------------------------------------------------------------------------- forward


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("sr,aligned", list(itertools.product(RATIOS, [False, True])))
def test_roi_align_edge_cases_match_torchvision(be, no_sync, scale, sr, aligned):
    x = feature_map().astype(be.np_float)
    rois = _rois_for(aligned, sr).astype(be.np_float)
    ref = tv_align(x, rois, (3, 4), scale, sr, aligned)
    out = mv.roi_align(be.asarray(x), be.asarray(rois), (3, 4), scale, sr, aligned)
    assert_backend(out, be)
    assert_close(out, ref, what=f"roi_align sr={sr} aligned={aligned}", **fwd_tol(be, sr))


@pytest.mark.parametrize("output_size", [1, (1, 5), (7, 7), (2, 1)])
@pytest.mark.parametrize("sr", [-1, 2])
def test_roi_align_output_sizes_and_thin_maps(be, no_sync, output_size, sr):
    for shape in [(2, 3, 9, 11), (1, 2, 1, 7), (1, 2, 6, 1), (1, 1, 1, 1)]:
        x = feature_map(*shape).astype(be.np_float)
        rois = EDGE_ROIS.astype(be.np_float)
        rois[:, 0] = np.minimum(rois[:, 0], shape[0] - 1)
        for aligned in (False, True):
            ref = tv_align(x, rois, output_size, 0.5, sr, aligned)
            out = mv.roi_align(be.asarray(x), be.asarray(rois), output_size, 0.5, sr, aligned)
            assert_close(out, ref, what=f"map {shape} out {output_size}", **fwd_tol(be, sr))


def test_roi_align_named_semantics():
    """The rules of §5 spelled out on a 5 x 5 ramp (0 .. 24)."""
    x = np.arange(25.0).reshape(1, 1, 5, 5)
    whole = np.array([[0, 0, 0, 5, 5.0]])
    # aligned=True, one sample per bin, box = the map: every pixel centre, the input itself
    assert_close(mv.roi_align(x, whole, 5, 1.0, 1, True)[0, 0], x[0, 0])
    # aligned=False samples half a pixel off and clamps at the last pixel
    row0 = mv.roi_align(x, whole, 5, 1.0, 1, False)[0, 0, 0]
    assert_close(row0, np.array([3.0, 4.0, 5.0, 6.0, 6.5]))
    # samples at y = -1 and y = H are inside (edge row); beyond them they count as 0
    for y, inside in [(-1.0, True), (-1.0001, False), (5.0, True), (5.0001, False)]:
        box = np.array([[0, 2 - 0.5, y - 0.5, 2 + 0.5, y + 0.5]])  # one sample at (2, y)
        v = mv.roi_align(x, box, 1, 1.0, 1, False)[0, 0, 0, 0]
        ref = tv_align(x, box, 1, 1.0, 1, False)[0, 0, 0, 0]
        assert v == ref and (v != 0) == inside, (y, v, ref)
    # the count includes samples that fell outside: half the samples out -> half the mean
    box = np.array([[0, 0, -6, 5, 4.0]])  # bottom bin inside, top bin outside
    assert_close(mv.roi_align(x, box, (2, 1), 1.0, 2, True), tv_align(x, box, (2, 1), 1.0, 2, True))
    # aligned=False forces a zero-size RoI to one cell at its corner (§5.2)
    point = np.array([[0, 2, 2, 2, 2.0]])
    assert_close(mv.roi_align(x, point, 2, 1.0, 2, False)[0, 0], np.array([[13.5, 14], [16, 16.5]]))
    # aligned=True, adaptive: a zero-size RoI has no samples and gives 0
    assert mv.roi_align(x, point, 2, 1.0, -1, True).sum() == 0


def test_roi_align_torchvision_error_case_gives_zero():
    """torchvision raises ValueError for an inverted RoI whose adaptive grids have opposite
    signs (aligned=True); minivision gives 0, like every other RoI without samples."""
    x = feature_map()
    box = np.array([[0, 5, 5, 4, 9.0]])  # width -1, height +4
    with pytest.raises(ValueError, match="vector"):
        tv_align(x, box, 1, 1.0, -1, True)
    assert_close(mv.roi_align(x, box, 1, 1.0, -1, True), np.zeros((1, 3, 1, 1)))
    g = mv.roi_align_backward(np.ones((1, 3, 1, 1)), box, x.shape, 1.0, -1, True)
    assert_close(g, np.zeros_like(x))


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("sr", [-1, 2])
def test_roi_align_dtypes_match_torchvision(be, no_sync, dtype, sr):
    """float16: torchvision accumulates in float16, minivision in float32 (same samples)."""
    if not hasattr(be.xp, dtype) or (be.name == "strict-device1" and dtype == "float64"):
        pytest.skip(f"{be.name}: {dtype} not used")
    x = feature_map().astype(dtype)
    rois = ALL.astype(dtype) if sr > 0 else ALL.astype(dtype)
    ref = tv_align(x, rois, (3, 4), 0.5, sr, False)
    out = mv.roi_align(be.asarray(x, dtype=dtype), be.asarray(rois, dtype=dtype), (3, 4), 0.5, sr)
    tolerances = {"float16": dict(rtol=4e-3, atol=4e-3), "float64": tol(np.float64, 4.0)}
    f32 = fwd_tol(be, sr) if be.name == "strict-device1" else tol(np.float32, 4.0)
    tolerance = tolerances.get(dtype, f32)
    assert_close(out, ref, what=f"roi_align {dtype}", **tolerance)


def test_roi_align_list_of_boxes_and_unsorted_batch(be, no_sync):
    x = feature_map(n=3).astype(be.np_float)
    per_image = [EDGE_ROIS[:4, 1:], EDGE_ROIS[4:6, 1:], EDGE_ROIS[6:, 1:]]
    per_image = [b.astype(be.np_float) for b in per_image]
    ref = tv.roi_align(t(x), [t(b) for b in per_image], (2, 3), 0.5, 2).numpy()
    out = mv.roi_align(be.asarray(x), [be.asarray(b) for b in per_image], (2, 3), 0.5, 2)
    assert_close(out, ref, what="list of boxes", **tol(be.np_float, 4.0))
    rois = EDGE_ROIS.copy()
    rois[:, 0] = [2, 0, 1, 2, 0, 1, 1, 0, 2, 1, 0]
    rois = rois.astype(be.np_float)
    for sr in (-1, 2):
        out = mv.roi_align(be.asarray(x), be.asarray(rois), (2, 3), 0.5, sr)
        ref = tv_align(x, rois, (2, 3), 0.5, sr, False)
        assert_close(out, ref, what=f"unsorted batch sr={sr}", **fwd_tol(be, sr))
    empty = be.asarray(np.zeros((0, 5), dtype=be.np_float))
    assert tuple(mv.roi_align(be.asarray(x), empty, (2, 3), 0.5, 2).shape) == (0, 3, 2, 3)
    assert tuple(mv.roi_align(be.asarray(x), empty, (2, 3), 0.5, -1).shape) == (0, 3, 2, 3)


def test_roi_align_nan_feature_propagates_through_zero_weights(be, no_sync):
    """A sample exactly on a pixel reads its right neighbour with weight 0; torchvision lets a
    NaN there through (0 * NaN), and so does the fixed-grid path."""
    x = feature_map().astype(be.np_float)
    x[0, 1, 4, 5] = nan
    rois = np.array([[0, 4, 4, 5, 5], [0, 1, 1, 7, 8], [0, 5, 4, 6, 5]])
    rois = rois.astype(be.np_float)  # first: one sample at (4, 4), reads (4, 5) with weight 0
    ref = tv_align(x, rois, 1, 1.0, 1, True)
    assert np.isnan(ref[0, 1, 0, 0])
    out = mv.roi_align(be.asarray(x), be.asarray(rois), 1, 1.0, 1, True)
    assert_close(out, ref, what="NaN propagation", **tol(be.np_float, 4.0))


def test_roi_align_nan_at_origin_is_not_read_by_outside_samples():
    """torchvision's forward reads pixel (0, 0) with weight 0 for every sample outside the map,
    so a NaN there poisons unrelated bins; minivision's outside samples read nothing."""
    x = feature_map()
    x[0, 0, 0, 0] = nan
    box = np.array([[0, 8, 6, 14, 12.0]])  # some samples beyond the right/bottom edge
    ref = tv_align(x, box, 2, 1.0, 2, False)
    out = mv.roi_align(x, box, 2, 1.0, 2, False)
    assert np.isnan(ref[0, 0]).any() and not np.isnan(out).any()
    clean = x.copy()
    clean[0, 0, 0, 0] = 0.0  # (0, 0) is not in any bin: the true value ignores it
    assert_close(out, tv_align(clean, box, 2, 1.0, 2, False), **tol(np.float64, 4.0))


def test_roi_align_adaptive_nan_reaches_the_whole_channel():
    """Adaptive sampling contracts whole rows and columns (see _bilinear): a NaN anywhere in a
    channel of an image makes that channel NaN for every RoI of that image, and only there."""
    x = feature_map()
    x[1, 2, 7, 9] = nan
    out = mv.roi_align(x, EDGE_ROIS[[0, 1, 2]], 2, 1.0, -1, False)  # RoIs of images 0, 1, 0
    assert np.isnan(out[1, 2]).all() and not np.isnan(out[[0, 2]]).any()
    assert not np.isnan(out[1, :2]).any()


# ----------------------------------------------------------------------------- backward


@pytest.mark.parametrize("scale", [1.0, 1 / 3])
@pytest.mark.parametrize("sr,aligned", list(itertools.product([-1, 0, 1, 2], [False, True])))
def test_roi_align_backward_matches_autograd(be, no_sync, scale, sr, aligned):
    x = feature_map().astype(be.np_float)
    rois = _rois_for(aligned, sr)
    rois = np.concatenate([rois, rois[:3]]).astype(be.np_float)  # repeated RoIs add up
    grad = np.random.default_rng(1).standard_normal((len(rois), 3, 3, 4)).astype(be.np_float)
    ref = tv_align_grad(x, rois, (3, 4), scale, sr, aligned, grad)
    got = mv.roi_align_backward(be.asarray(grad), be.asarray(rois), x.shape, scale, sr, aligned)
    assert_backend(got, be)
    assert_close(got, ref, what="roi_align gradient", **backward_tolerance(be, grad))


def backward_tolerance(be, grad):
    """array-api-strict's standard-only scatter-add sums through one running total, whose
    round-off is about eps * sum(|values|) (see _backend.scatter_add)."""
    if be.name == "strict-device1":
        return dict(rtol=0.0, atol=4 * np.finfo(np.float32).eps * float(np.abs(grad).sum()))
    return tol(be.np_float, 16.0)


@pytest.mark.parametrize("sr,aligned", [(-1, False), (2, False), (0, True), (3, True)])
def test_roi_align_adjoint(be, no_sync, sr, aligned):
    """RoIAlign is linear: <S x, g> = <x, S.T g> for the forward S and backward S.T."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 9, 11)).astype(be.np_float)
    rois = _rois_for(aligned, sr).astype(be.np_float)
    out = mv.roi_align(be.asarray(x), be.asarray(rois), (3, 4), 0.5, sr, aligned)
    g = rng.standard_normal(tuple(out.shape)).astype(be.np_float)
    back = mv.roi_align_backward(be.asarray(g), be.asarray(rois), x.shape, 0.5, sr, aligned)
    lhs = float(np.sum(to_numpy(out).astype(np.float64) * g))
    rhs = float(np.sum(x.astype(np.float64) * to_numpy(back)))
    assert lhs == pytest.approx(rhs, rel=1e-5 if be.np_float == np.float32 else 1e-12)


def test_roi_align_boxes_get_no_gradient():
    """torchvision leaves boxes.grad None; the backward returns the input gradient only."""
    x = t(feature_map()).requires_grad_()
    boxes = t(EDGE_ROIS).requires_grad_()
    tv.roi_align(x, boxes, 2, 1.0, 2).sum().backward()
    assert boxes.grad is None
    g = mv.roi_align_backward(np.ones((len(EDGE_ROIS), 3, 2, 2)), EDGE_ROIS, (2, 3, 9, 11), 1.0, 2)
    assert g.shape == (2, 3, 9, 11)


# ----------------------------------------------------------------------------- invalid RoIs


@pytest.mark.parametrize("sr", [-1, 2])
def test_invalid_rois_give_zero(be, no_sync, sr):
    """NaN/inf boxes segfault torchvision's CPU kernel with a fixed grid (issues #9272/#9273),
    and it does not check the batch index; minivision defines them all as empty RoIs."""
    x = feature_map().astype(be.np_float)
    bad = np.array(
        [
            [0, nan, 0, 4, 4],
            [0, 0, 0, inf, 4],
            [1, -inf, -inf, inf, inf],
            [2, 0, 0, 4, 4],
            [-1, 0, 0, 4, 4],
            [nan, 0, 0, 4, 4],
        ]
    ).astype(be.np_float)
    good = EDGE_ROIS[:3].astype(be.np_float)
    rois = np.concatenate([bad, good])
    out = mv.roi_align(be.asarray(x), be.asarray(rois), 2, 1.0, sr)
    assert_close(out[: len(bad), ...], np.zeros((len(bad), 3, 2, 2), be.np_float))
    assert_close(out[len(bad) :, ...], tv_align(x, good, 2, 1.0, sr, False), **fwd_tol(be, sr))
    grad = np.ones(tuple(out.shape), be.np_float)
    g = mv.roi_align_backward(be.asarray(grad), be.asarray(rois), x.shape, 1.0, sr)
    ref = tv_align_grad(x, good, 2, 1.0, sr, False, grad[len(bad) :])
    assert_close(g, ref, what="gradient of the valid RoIs only", **backward_tolerance(be, grad))


# ----------------------------------------------------------------------------- properties


@st.composite
def align_problems(draw):
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    x = draw(arrays(np.float64, (n, c, h, w), elements=st.floats(-4, 4, width=32)))
    k = draw(st.integers(0, 6))
    coord = st.one_of(
        st.integers(-6, 30).map(lambda v: v / 2),  # samples on pixel centres and edges
        st.floats(-12, 30, allow_nan=False, width=32),
    )
    boxes = draw(arrays(np.float64, (k, 4), elements=coord))
    if draw(st.booleans()):
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2])
    batch = draw(arrays(np.float64, (k, 1), elements=st.floats(0, n - 0.01)))
    rois = np.concatenate([batch, boxes], axis=1)
    size = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    scale = draw(st.sampled_from([1.0, 0.5, 0.25, 1 / 3, 2.0]))
    sr = draw(st.sampled_from([-1, 0, 1, 2, 3]))
    aligned = draw(st.booleans())
    return x, rois, size, scale, sr, aligned


def reference(x, rois, size, scale, sr, aligned, grad=None):
    """torchvision RoI by RoI where it raises (opposite-sign grids), with 0 for those RoIs."""
    fn = tv_align if grad is None else tv_align_grad
    try:
        return fn(x, rois, size, scale, sr, aligned, *(() if grad is None else (grad,)))
    except ValueError:
        keep = np.ones(len(rois), bool)
        for i in range(len(rois)):
            try:
                tv_align(x, rois[i : i + 1], size, scale, sr, aligned)
            except ValueError:
                keep[i] = False
        if grad is None:
            out = np.zeros((len(rois), x.shape[1], *size), x.dtype)
            out[keep] = tv_align(x, rois[keep], size, scale, sr, aligned)
            return out
        return tv_align_grad(x, rois[keep], size, scale, sr, aligned, grad[keep])


@given(problem=align_problems())
def test_roi_align_property_float64(problem):
    x, rois, size, scale, sr, aligned = problem
    out = mv.roi_align(x, rois, size, scale, sr, aligned)
    assert_close(out, reference(*problem), what="roi_align", **tol(np.float64, 4.0))
    grad = np.random.default_rng(0).standard_normal(out.shape)
    back = mv.roi_align_backward(grad, rois, x.shape, scale, sr, aligned)
    assert_close(back, reference(*problem, grad), what="gradient", **tol(np.float64, 64.0))


@settings(max_examples=15)
@given(problem=align_problems())
def test_roi_align_property_every_backend(be, no_sync, problem):
    x, rois, size, scale, sr, aligned = problem
    x, rois = x.astype(be.np_float), rois.astype(be.np_float)
    out = mv.roi_align(be.asarray(x), be.asarray(rois), size, scale, sr, aligned)
    ref = reference(x, rois, size, scale, sr, aligned)
    assert_close(out, ref, what="roi_align", **fwd_tol(be, sr))


# ----------------------------------------------------------------------------- bad input


def test_roi_align_bad_input(be):
    x = be.asarray(np.zeros((1, 2, 4, 4)))
    rois = be.asarray(np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"boxes must have shape \(K, 5\)"):
        mv.roi_align(x, be.asarray(np.zeros((3, 4))), 2)
    with pytest.raises(ValueError, match=r"input must have shape \(N, C, H, W\)"):
        mv.roi_align(be.asarray(np.zeros((2, 4, 4))), rois, 2)
    with pytest.raises(ValueError, match="output_size must be a positive int"):
        mv.roi_align(x, rois, (2, -1))
    with pytest.raises(TypeError, match="sampling_ratio must be an int"):
        mv.roi_align(x, rois, 2, 1.0, 2.0)
    with pytest.raises(TypeError, match="aligned must be a bool"):
        mv.roi_align(x, rois, 2, 1.0, 2, 1)
    with pytest.raises(TypeError, match="boxes must have the same dtype as input"):
        mv.roi_align(x, be.asarray(np.zeros((3, 5)), dtype="int64"), 2)
    g = be.asarray(np.zeros((3, 2, 2, 2)))
    with pytest.raises(ValueError, match="input_shape must be"):
        mv.roi_align_backward(g, rois, (1, 2, 4))
    with pytest.raises(ValueError, match="grad_output must have 5 channels"):
        mv.roi_align_backward(g, rois, (1, 5, 4, 4))
    with pytest.raises(ValueError, match=r"grad_output must have one row per RoI \(3\), got 2"):
        mv.roi_align_backward(be.asarray(np.zeros((2, 2, 2, 2))), rois, (1, 2, 4, 4))


def test_roi_align_does_not_mutate():
    x = feature_map()
    rois = ALL.astype(np.float64)
    copies = x.copy(), rois.copy()
    for sr in (-1, 2):
        out = mv.roi_align(x, rois, (3, 4), 0.5, sr)
        grad = np.ones_like(out)
        mv.roi_align_backward(grad, rois, x.shape, 0.5, sr)
        np.testing.assert_array_equal(grad, np.ones_like(out))
    np.testing.assert_array_equal(copies[0], x)
    np.testing.assert_array_equal(copies[1], rois)


# ----------------------------------------------------------------------------- textbook loop


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 2])
@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_naive_loop_is_torchvision_and_agrees_with_the_fast_operator(be, aligned, sampling_ratio, scale):
    """roi_align_naive, the paper's loops, equals torchvision bit for bit in float64 (same
    operations in the same order), and the fast operator agrees with it on every backend."""
    from minivision.ops.roi_align import roi_align_naive

    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 3, 9, 11))
    corners = rng.uniform(-5, 13, (14, 4))
    b = np.concatenate([rng.integers(0, 2, (14, 1)), corners[:, :2], corners[:, :2] + np.abs(corners[:, 2:] / 2) + 0.2], 1)
    b[0, 1:] = [3.0, 3.0, 3.1, 3.05]  # smaller than a cell: stretched unless aligned
    b[1, 1:] = [-9.0, -9.0, -2.0, -1.5]  # entirely outside the map
    args = ((3, 4), scale, sampling_ratio, aligned)
    if be.name == "numpy":
        ref = tv.roi_align(torch.from_numpy(x), torch.from_numpy(b), *args).numpy()
        assert_close(roi_align_naive(x, b, *args), ref, what="roi_align_naive vs torchvision")
    naive = roi_align_naive(be.asarray(x), be.asarray(b), *args)
    fast = mv.roi_align(be.asarray(x), be.asarray(b), *args)
    assert_backend(naive, be)
    assert_close(naive, fast, what="roi_align_naive vs roi_align", **fwd_tol(be, sampling_ratio))


@pytest.mark.parametrize("scale", [0.0, -0.5, float("nan")])
def test_spatial_scale_must_be_positive(scale):
    """A zero, negative or NaN spatial_scale is an error naming it, for every RoI operator."""
    x, b = np.zeros((1, 4, 5, 5)), np.array([[0.0, 0.0, 0.0, 2.0, 2.0]])
    for fn in (mv.roi_align, mv.roi_pool, mv.ps_roi_align):
        with pytest.raises(ValueError, match="spatial_scale"):
            fn(x, b, 2, scale)
