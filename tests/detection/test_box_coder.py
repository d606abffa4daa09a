"""minivision.detection.box_coder.BoxCoder against torchvision's BoxCoder (0.29.1), on every backend.

Tolerances: the centre deltas ``t_x, t_y`` are bitwise (same operation order); ``t_w, t_h`` and
decoded coordinates go through ``log``/``exp``, whose float results differ by an ulp between
NumPy and torch, so they are compared within 4 ulp of the value (coordinates: 4 ulp of the
largest magnitude in their row). On torch tensors every result is bitwise. Gradients are
checked against torch autograd in float64 and by an adjoint (dot-product) test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import assert_backend, assert_close
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torchvision.models.detection._utils import BoxCoder as TvBoxCoder

from minivision._backend import to_numpy
from minivision.detection.box_coder import BoxCoder

pytestmark = pytest.mark.filterwarnings(
    "ignore:invalid value encountered:RuntimeWarning",
    "ignore:divide by zero:RuntimeWarning",
    "ignore:overflow encountered:RuntimeWarning",
)

WEIGHTS = [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0), (0.1, 0.3, 7.0, 0.7)]
CLIP = math.log(1000.0 / 16)


def T(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def random_boxes(rng, n, dtype):
    b = rng.uniform(-50, 500, (n, 4))
    b[:, 2:] = b[:, :2] + rng.uniform(0.5, 300, (n, 2))
    return b.astype(dtype)


def assert_codes(be, got, ref, what="codes"):
    """t_x, t_y bitwise; t_w, t_h within 4 ulp (bitwise on torch)."""
    got, ref = to_numpy(got), np.asarray(ref)
    assert_close(got[:, 0::4], ref[:, 0::4], what=f"{what} t_x")
    assert_close(got[:, 1::4], ref[:, 1::4], what=f"{what} t_y")
    tol = 0.0 if be.name == "torch-cpu" else 4 * np.finfo(ref.dtype).eps
    for c, name in ((2, "t_w"), (3, "t_h")):
        assert_close(got[:, c::4], ref[:, c::4], what=f"{what} {name}", rtol=tol, atol=tol)


def assert_boxes(be, got, ref, what="decoded boxes"):
    """Within 4 ulp of each row's largest coordinate (bitwise on torch)."""
    got, ref = to_numpy(got), np.asarray(ref)
    if be.name == "torch-cpu":
        assert_close(got, ref, what=what)
        return
    assert got.shape == ref.shape and got.dtype == ref.dtype, (got.shape, ref.shape)
    width = int(np.prod(ref.shape[1:]))
    flat_g, flat_r = got.reshape(len(got), width), ref.reshape(len(ref), width)
    with np.errstate(invalid="ignore"):
        scale = np.nanmax(np.where(np.isfinite(flat_r), np.abs(flat_r), 0), axis=1, initial=0)
    tol = 4 * np.finfo(ref.dtype).eps * scale[:, None] + np.zeros_like(flat_r)
    same = (
        (flat_g == flat_r)
        | (np.isnan(flat_g) & np.isnan(flat_r))
        | (np.abs(flat_g - flat_r) <= tol)
    )
    if not np.all(same):
        i, j = np.argwhere(~same)[0]
        raise AssertionError(
            f"{what} differs at ({i}, {j}): got {flat_g[i, j]!r}, expected {flat_r[i, j]!r} "
            f"(tolerance {tol[i, j]:.3g}); {np.sum(~same)} of {same.size} differ"
        )


# ----------------------------------------------------------------------------- encode


@pytest.mark.parametrize("weights", WEIGHTS)
def test_encode_matches_torchvision(be, no_sync, weights):
    rng = np.random.default_rng(0)
    gt, anchors = random_boxes(rng, 300, be.np_float), random_boxes(rng, 300, be.np_float)
    out = BoxCoder(weights).encode(be.asarray(gt), be.asarray(anchors))
    assert_backend(out, be)
    ref = TvBoxCoder(weights).encode_single(T(gt), T(anchors)).numpy()
    assert_codes(be, out, ref)


def test_encode_degenerate_boxes_match_torchvision(be, no_sync):
    """Zero-width anchors give inf/NaN, zero-width ground truth log 0 = -inf: no epsilon."""
    gt = np.array([[0, 0, 10, 10], [0, 0, 0, 10], [5, 5, 5, 5], [0, 0, 10, 10]], dtype=be.np_float)
    anchors = np.array([[0, 0, 0, 12], [0, 0, 4, 4], [5, 5, 5, 5], [2, 2, 6, 6]], dtype=be.np_float)
    with np.errstate(all="ignore"):
        out = BoxCoder((10, 10, 5, 5)).encode(be.asarray(gt), be.asarray(anchors))
    ref = TvBoxCoder((10, 10, 5, 5)).encode_single(T(gt), T(anchors)).numpy()
    assert np.isinf(ref[0, 0]) and np.isneginf(ref[1, 2]) and np.isnan(ref[2]).all()
    assert_codes(be, out, ref)


def test_encode_lists_split_back_per_image(be, no_sync):
    rng = np.random.default_rng(1)
    gts = [random_boxes(rng, n, be.np_float) for n in (3, 0, 5)]
    props = [random_boxes(rng, n, be.np_float) for n in (3, 0, 5)]
    out = BoxCoder((10, 10, 5, 5)).encode(
        [be.asarray(g) for g in gts], [be.asarray(p) for p in props]
    )
    ref = TvBoxCoder((10, 10, 5, 5)).encode([T(g) for g in gts], [T(p) for p in props])
    assert isinstance(out, tuple) and len(out) == 3
    for o, r in zip(out, ref):
        assert_codes(be, o, r.numpy())


@pytest.mark.parametrize("gt_dtype,anchor_dtype", [("float64", "float32"), ("float32", "float64")])
def test_encode_mixed_dtypes_follow_torch(gt_dtype, anchor_dtype):
    """The weights take the ground truth's dtype; the result is the promoted dtype."""
    rng = np.random.default_rng(2)
    gt = random_boxes(rng, 50, gt_dtype)
    anchors = random_boxes(rng, 50, anchor_dtype)
    out = BoxCoder((0.1, 10, 5, 5)).encode(gt, anchors)
    ref = TvBoxCoder((0.1, 10, 5, 5)).encode_single(T(gt), T(anchors)).numpy()
    assert out.dtype == ref.dtype == np.float64
    assert_close(out[:, :2], ref[:, :2], what="t_x, t_y")  # float32(0.1) promoted, as in torch
    assert_close(out[:, 2:], ref[:, 2:], rtol=4e-16, atol=4e-16, what="t_w, t_h")


# ----------------------------------------------------------------------------- decode


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("k", [1, 3])
def test_decode_matches_torchvision(be, no_sync, weights, k):
    rng = np.random.default_rng(3)
    anchors = random_boxes(rng, 200, be.np_float)
    codes = rng.normal(0, 2, (200, 4 * k)).astype(be.np_float)
    codes[:5, 2] = [CLIP * weights[2], 30.0, -40.0, np.nextafter(CLIP, 9) * weights[2], -1e4]
    out = BoxCoder(weights).decode(be.asarray(codes), be.asarray(anchors))
    assert_backend(out, be)
    ref = TvBoxCoder(weights).decode_single(T(codes), T(anchors)).numpy()
    assert_boxes(be, out, ref)


def test_decode_clamps_only_from_above():
    anchors = np.array([[0.0, 0.0, 10.0, 10.0]] * 3)
    codes = np.array([[0, 0, 100, 0], [0, 0, -100, 0], [0, 0, CLIP, 0]], dtype=float)
    out = BoxCoder((1, 1, 1, 1)).decode(codes, anchors)
    widths = out[:, 2] - out[:, 0]
    np.testing.assert_allclose(widths[[0, 2]], [625.0, 625.0])  # 1000 / 16 * 10
    assert 0 <= widths[1] < 1e-12  # no lower clamp: exp(-100) * 10 vanishes
    np.testing.assert_array_equal(out[:, 3] - out[:, 1], 10.0)


def test_decode_lists_and_empty(be, no_sync):
    rng = np.random.default_rng(4)
    anchors = [random_boxes(rng, n, be.np_float) for n in (4, 0, 6)]
    codes = rng.normal(0, 1, (10, 8)).astype(be.np_float)
    out = BoxCoder((10, 10, 5, 5)).decode(be.asarray(codes), [be.asarray(a) for a in anchors])
    ref = TvBoxCoder((10, 10, 5, 5)).decode(T(codes), [T(a) for a in anchors]).numpy()
    assert ref.shape == (10, 2, 4)
    assert_boxes(be, out, ref)
    empty = np.zeros((0, 8), dtype=be.np_float)
    out = BoxCoder((1, 1, 1, 1)).decode(
        be.asarray(empty), [be.asarray(np.zeros((0, 4), be.np_float))]
    )
    ref = TvBoxCoder((1, 1, 1, 1)).decode(T(empty), [T(np.zeros((0, 4), be.np_float))]).numpy()
    assert tuple(out.shape) == ref.shape == (0, 8)


def test_decode_integer_anchors_are_cast(be, no_sync):
    anchors = np.array([[0, 0, 16, 16], [8, 4, 40, 20]], dtype=np.int64)
    codes = np.array([[0.1, -0.2, 0.3, 0.0], [0.0, 0.5, -0.3, 1.0]], dtype=be.np_float)
    out = BoxCoder((1, 1, 1, 1)).decode(be.asarray(codes), be.asarray(anchors))
    ref = TvBoxCoder((1, 1, 1, 1)).decode_single(T(codes), T(anchors)).numpy()
    assert_boxes(be, out, ref)


def test_round_trip(be, no_sync):
    """decode(encode(gt)) == gt while the size ratios stay below the clamp (62.5)."""
    rng = np.random.default_rng(5)
    gt, anchors = random_boxes(rng, 100, be.np_float), random_boxes(rng, 100, be.np_float)
    for b in (gt, anchors):
        b[:, 2:] = b[:, :2] + rng.uniform(5, 300, (100, 2)).astype(be.np_float)
    coder = BoxCoder((10, 10, 5, 5))
    back = coder.decode(coder.encode(be.asarray(gt), be.asarray(anchors)), be.asarray(anchors))
    rtol = 1e-12 if be.np_float == np.float64 else 2e-5
    np.testing.assert_allclose(to_numpy(back), gt, rtol=rtol, atol=rtol * 800)


coordinate = st.floats(-200, 800, width=32)


@st.composite
def box_pairs(draw, max_n=12):
    n = draw(st.integers(0, max_n))
    a = draw(arrays(np.float64, (n, 4), elements=coordinate))
    a[:, 2:] = a[:, :2] + draw(arrays(np.float64, (n, 2), elements=st.floats(0.25, 400, width=32)))
    return a


@given(
    anchors=box_pairs(),
    k=st.integers(1, 3),
    weights=st.sampled_from(WEIGHTS),
    data=st.data(),
)
def test_decode_property_every_backend(be, no_sync, anchors, k, weights, data):
    anchors = anchors.astype(be.np_float)
    n = len(anchors)
    codes = data.draw(arrays(np.float64, (n, 4 * k), elements=st.floats(-12, 12, width=32))).astype(
        be.np_float
    )
    out = BoxCoder(weights).decode(be.asarray(codes), be.asarray(anchors))
    ref = TvBoxCoder(weights).decode_single(T(codes), T(anchors)).numpy()
    assert_boxes(be, out, ref)


@given(gt=box_pairs(), weights=st.sampled_from(WEIGHTS), data=st.data())
def test_encode_property_every_backend(be, no_sync, gt, weights, data):
    anchors = data.draw(box_pairs(max_n=len(gt)).filter(lambda a: len(a) == len(gt)))
    gt, anchors = gt.astype(be.np_float), anchors.astype(be.np_float)
    out = BoxCoder(weights).encode(be.asarray(gt), be.asarray(anchors))
    ref = TvBoxCoder(weights).encode_single(T(gt), T(anchors)).numpy()
    assert_codes(be, out, ref)


# ----------------------------------------------------------------------------- backward


def _autograd(weights, codes, anchors, grad):
    tc, ta = T(codes).requires_grad_(), T(anchors).requires_grad_()
    TvBoxCoder(weights).decode_single(tc, ta).backward(T(grad))
    return tc.grad.numpy(), ta.grad.numpy()


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("k", [1, 2])
def test_decode_backward_matches_autograd(be, no_sync, weights, k):
    rng = np.random.default_rng(6)
    anchors = random_boxes(rng, 40, np.float64)
    codes = rng.normal(0, 1.5, (40, 4 * k))
    codes[0, 2] = CLIP * weights[2]  # exactly at the clamp: torch.clamp's gradient is 0 there
    codes[1, 3] = 9.0 * weights[3]  # above it: no gradient
    codes[2, 2] = -60.0  # tiny width
    grad = rng.normal(0, 1, (40, 4 * k))
    ref_codes, ref_boxes = _autograd(weights, codes, anchors, grad)
    assert ref_codes[1, 3] == 0.0
    assert ref_codes[0, 2] == 0.0 or weights[2] != 1.0  # the clamp value itself (exact for w_w = 1)
    hosts = [a.astype(be.np_float) for a in (grad, codes, anchors)]
    g_codes, g_boxes = BoxCoder(weights).decode_backward(*(be.asarray(h) for h in hosts))
    assert_backend(g_codes, be)
    if be.np_float == np.float64:
        assert_close(g_codes, ref_codes, rtol=1e-13, atol=1e-13, what="grad rel_codes")
        assert_close(g_boxes, ref_boxes, rtol=1e-13, atol=1e-12, what="grad boxes")
    else:  # float32: torch autograd in float32 (the clamp decides in float32 too)
        # (a different operation order from autograd's: float32 round-off, on torch too)
        for got, ref, what in zip(
            (g_codes, g_boxes),
            _autograd(weights, *hosts[1:], hosts[0]),
            ("grad rel_codes", "grad boxes"),
        ):
            assert_close(got, ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max(), what=what)


@given(
    anchors=box_pairs(max_n=8).filter(len),
    weights=st.sampled_from(WEIGHTS),
    data=st.data(),
)
def test_decode_backward_property_float64(anchors, weights, data):
    n = len(anchors)
    codes = data.draw(arrays(np.float64, (n, 4), elements=st.floats(-6, 6)))
    grad = data.draw(arrays(np.float64, (n, 4), elements=st.floats(-3, 3)))
    ref_codes, ref_boxes = _autograd(weights, codes, anchors, grad)
    g_codes, g_boxes = BoxCoder(weights).decode_backward(grad, codes, anchors)
    scale = 1 + np.abs(ref_codes).max()
    assert_close(g_codes, ref_codes, rtol=1e-12, atol=1e-12 * scale, what="grad rel_codes")
    scale = 1 + np.abs(ref_boxes).max()
    assert_close(g_boxes, ref_boxes, rtol=1e-12, atol=1e-12 * scale, what="grad boxes")


def test_decode_backward_adjoint():
    """<J v, g> = <v, J^T g>, with J v from central differences of decode itself."""
    rng = np.random.default_rng(7)
    coder = BoxCoder((10, 10, 5, 5))
    anchors = random_boxes(rng, 30, np.float64)
    codes = rng.normal(0, 1, (30, 8))
    grad = rng.normal(0, 1, (30, 8))
    v_codes, v_boxes = rng.normal(0, 1, codes.shape), rng.normal(0, 1, anchors.shape)
    g_codes, g_boxes = coder.decode_backward(grad, codes, anchors)
    eps = 1e-6
    plus = coder.decode(codes + eps * v_codes, anchors + eps * v_boxes)
    minus = coder.decode(codes - eps * v_codes, anchors - eps * v_boxes)
    jv = (plus - minus) / (2 * eps)
    lhs = np.sum(jv * grad)
    rhs = np.sum(v_codes * g_codes) + np.sum(v_boxes * g_boxes)
    assert lhs == pytest.approx(rhs, rel=1e-7)


def test_decode_backward_integer_boxes_give_no_box_gradient():
    codes = np.zeros((2, 4))
    out = BoxCoder((1, 1, 1, 1)).decode_backward(
        np.ones((2, 4)), codes, np.array([[0, 0, 4, 4]] * 2)
    )
    assert out[1] is None
    np.testing.assert_allclose(out[0], [[8, 8, 0, 0]] * 2)  # (g1 + g3) * w, (g3 - g1) = 0


# ----------------------------------------------------------------------------- bad input


def test_bad_input(be):
    coder = BoxCoder((1, 1, 1, 1))
    b = be.asarray(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"weights must be four numbers"):
        BoxCoder((1, 1, 1))
    with pytest.raises(TypeError, match="bbox_xform_clip must be a number"):
        BoxCoder((1, 1, 1, 1), bbox_xform_clip="4")
    with pytest.raises(ValueError, match=r"reference_boxes must have shape \(N, 4\)"):
        coder.encode(be.asarray(np.zeros((3, 5))), b)
    with pytest.raises(ValueError, match="must pair row by row"):
        coder.encode(b, be.asarray(np.zeros((2, 4))))
    with pytest.raises(TypeError, match="proposals must have a floating-point dtype"):
        coder.encode(b, be.asarray(np.zeros((3, 4), dtype=np.int32)))
    with pytest.raises(TypeError, match="must both be arrays or both lists"):
        coder.encode([b], b)
    with pytest.raises(ValueError, match=r"rel_codes must have shape \(N, 4 \* K\)"):
        coder.decode(be.asarray(np.zeros((3, 6))), b)
    with pytest.raises(TypeError, match="rel_codes must have a floating-point dtype"):
        coder.decode(be.asarray(np.zeros((3, 4), dtype=np.int64)), b)
    with pytest.raises(ValueError, match="grad_output must have the shape of rel_codes"):
        coder.decode_backward(be.asarray(np.zeros((3, 8))), be.asarray(np.zeros((3, 4))), b)
    with pytest.raises(TypeError, match="rel_codes, boxes must all come from one array library"):
        coder.decode(torch.zeros(3, 4), np.zeros((3, 4)))


def test_inputs_are_not_mutated():
    rng = np.random.default_rng(8)
    gt, anchors = random_boxes(rng, 5, np.float64), random_boxes(rng, 5, np.float64)
    codes, grad = rng.normal(0, 1, (5, 4)), rng.normal(0, 1, (5, 4))
    copies = [a.copy() for a in (gt, anchors, codes, grad)]
    coder = BoxCoder((10, 10, 5, 5))
    coder.encode(gt, anchors)
    coder.decode(codes, anchors)
    coder.decode(codes, [anchors])
    coder.decode_backward(grad, codes, anchors)
    for before, now in zip(copies, (gt, anchors, codes, grad)):
        np.testing.assert_array_equal(before, now)


@pytest.mark.parametrize(
    "weights", [(0, 0, 0, 0), (1, 1, 0, 1), (10, -10, 5, 5), (1, 1, 1, math.nan), (1, math.inf, 1, 1)]
)
def test_weights_must_be_positive(weights):
    """Decoding divides by the weights: 0 decodes to inf, a negative weight flips the deltas."""
    with pytest.raises(ValueError, match="weights must be four positive finite numbers"):
        BoxCoder(weights)


def test_numpy_scalar_weights_accepted():
    w = tuple(np.float32(v) for v in (10, 10, 5, 5))
    codes, anchors = np.zeros((2, 4)), np.array([[0.0, 0, 10, 10], [5, 5, 20, 30]])
    np.testing.assert_array_equal(
        BoxCoder(w).decode(codes, anchors), BoxCoder((10, 10, 5, 5)).decode(codes, anchors)
    )
