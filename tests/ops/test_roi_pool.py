"""minivision.ops.roi_pool / roi_pool_backward against torchvision.ops.roi_pool 0.29.1.

RoI pooling only selects input values (a max per bin) and routes gradients to the selected
element, so the comparison is **bitwise** for values and argmax on every backend and dtype,
ties and NaN included, and for gradients on NumPy (float32 and float64), where the scatter-add
accumulates in torchvision's loop order; other backends accumulate repeated targets in their
own order, hence a float32 tolerance there.
"""

from __future__ import annotations

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

# Invalid RoIs compute inf - inf and NaN on purpose before being masked out.
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")


def t(host):
    return torch.from_numpy(np.ascontiguousarray(host))


def tv_pool(x, rois, output_size, scale):
    """torchvision's op: (output, argmax)."""
    ph, pw = (output_size, output_size) if isinstance(output_size, int) else output_size
    out, arg = torch.ops.torchvision.roi_pool(t(x), t(rois), scale, ph, pw)
    return out.numpy(), arg.numpy()


def tv_pool_grad(x, rois, output_size, scale, grad):
    xt = t(x).requires_grad_()
    tv.roi_pool(xt, t(rois), output_size, scale).backward(t(grad))
    return xt.grad.numpy()


def feature_map(n=2, c=3, h=9, w=11, seed=0):
    """Integer-valued maps (ties on purpose), a flat patch, a NaN patch and a -inf patch."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-20, 20, (n, c, h, w)).astype(np.float64)
    x[0, 0, 2:5, 3:7] = 4.0  # a plateau: ties inside a bin go to the first in row-major order
    x[1, 1, 0:3, 0:3] = nan  # bins of NaN only give -FLT_MAX, argmax -1
    x[1, 2, 6:9, 8:11] = -inf
    x[0, 1, 4, 4] = nan  # a NaN next to numbers is never selected
    return x


# (batch_index, x1, y1, x2, y2): every case of torchvision-semantics.md §4, in image coordinates
EDGE_ROIS = np.array(
    [
        [0, 0, 0, 8, 8],  # inside
        [1, -3, -3, 4, 4],  # half outside (top-left)
        [0, 5.5, 2.5, 30, 40],  # half outside (bottom-right), .5 corners
        [1, 20, 20, 30, 30],  # fully outside: all bins empty
        [0, 2, 2, 2, 2],  # zero size: one cell
        [1, 6, 5, 2, 1],  # inverted: forced to 1 x 1 at its first corner
        [0, 1.2, 1.3, 1.6, 1.4],  # sub-cell
        [1, -50, -40, 100, 120],  # much larger than the map
        [0.9, 1, 1, 3, 9],  # fractional batch index: truncated to 0
        [1, 2.5, 3.5, 7.5, 8.5],  # halves: round half away from zero
        [0, -0.5, -1.5, 0.5, 1.5],  # negative halves
        [1, 0, 0, 1, 10],  # thin: bins of zero height overlap
        [0, 4, 2, 7, 4],
    ]
)
SCALES = [1.0, 0.5, 0.25, 1 / 3]
SIZES = [(3, 4), 1, (7, 7), (2, 5)]


# ----------------------------------------------------------------------------- forward


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("output_size", SIZES)
def test_roi_pool_edge_cases_match_torchvision(be, no_sync, scale, output_size):
    x = feature_map().astype(be.np_float)
    rois = EDGE_ROIS.astype(be.np_float)
    ref, ref_arg = tv_pool(x, rois, output_size, scale)
    out = mv.roi_pool(be.asarray(x), be.asarray(rois), output_size, scale)
    assert_backend(out, be)
    assert_close(out, ref, what="roi_pool")
    out2, arg = mv.roi_pool(be.asarray(x), be.asarray(rois), output_size, scale, return_argmax=True)
    assert_close(out2, ref, what="roi_pool (rank path)")
    assert_close(arg, ref_arg, what="argmax")


def test_roi_pool_named_semantics():
    """The rules of §4 spelled out on a 5 x 5 ramp (0 .. 24)."""
    x = np.arange(25.0).reshape(1, 1, 5, 5)
    # [0, 0, 4, 4] covers 5 x 5 cells: the end cell is inclusive (+1)
    out, arg = mv.roi_pool(x, np.array([[0, 0, 0, 4, 4.0]]), 1, return_argmax=True)
    assert out[0, 0, 0, 0] == 24 and arg[0, 0, 0, 0] == 24
    # 0.5 rounds to 1 (away from zero): the RoI starts at cell 1
    out = mv.roi_pool(x, np.array([[0, 0.5, 0.5, 0.5, 0.5]]), 1)
    assert out[0, 0, 0, 0] == 6
    # a tie goes to the first element in row-major order
    flat = np.zeros((1, 1, 4, 4))
    out, arg = mv.roi_pool(flat, np.array([[0, 0, 0, 3, 3.0]]), 2, return_argmax=True)
    np.testing.assert_array_equal(arg[0, 0], [[0, 2], [8, 10]])
    # a bin of NaN only gives -FLT_MAX and argmax -1
    x = np.full((1, 1, 2, 2), nan)
    out, arg = mv.roi_pool(x, np.array([[0, 0, 0, 1, 1.0]]), 1, return_argmax=True)
    assert out[0, 0, 0, 0] == -3.4028234663852886e38 and arg[0, 0, 0, 0] == -1
    # outside the map: 0 and argmax -1
    out, arg = mv.roi_pool(x, np.array([[0, 5, 5, 9, 9.0]]), 1, return_argmax=True)
    assert out[0, 0, 0, 0] == 0 and arg[0, 0, 0, 0] == -1


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_roi_pool_dtypes_match_torchvision(be, no_sync, dtype):
    if not hasattr(be.xp, dtype) or (be.name == "strict-device1" and dtype == "float64"):
        pytest.skip(f"{be.name}: {dtype} not used")
    x = feature_map().astype(dtype)
    rois = EDGE_ROIS.astype(dtype)
    ref, ref_arg = tv_pool(x, rois, (3, 4), 0.5)
    out, arg = mv.roi_pool(
        be.asarray(x, dtype=dtype), be.asarray(rois, dtype=dtype), (3, 4), 0.5, return_argmax=True
    )
    assert_close(out, ref, what=f"roi_pool {dtype}")
    assert_close(arg, ref_arg, what=f"argmax {dtype}")


def test_roi_pool_list_of_boxes_and_unsorted_batch(be, no_sync):
    x = feature_map(n=3).astype(be.np_float)
    per_image = [EDGE_ROIS[:4, 1:], EDGE_ROIS[4:6, 1:], EDGE_ROIS[6:, 1:]]
    per_image = [b.astype(be.np_float) for b in per_image]
    ref = tv.roi_pool(t(x), [t(b) for b in per_image], (2, 3), 0.5).numpy()
    out = mv.roi_pool(be.asarray(x), [be.asarray(b) for b in per_image], (2, 3), 0.5)
    assert_close(out, ref, what="list of boxes")
    rois = EDGE_ROIS.copy()
    rois[:, 0] = [2, 0, 1, 2, 0, 1, 1, 0, 2, 1, 0, 2, 1]  # batch indices out of order
    rois = rois.astype(be.np_float)
    out = mv.roi_pool(be.asarray(x), be.asarray(rois), (2, 3), 0.5)
    assert_close(out, tv_pool(x, rois, (2, 3), 0.5)[0], what="unsorted batch indices")


def test_roi_pool_no_rois_and_thin_maps(be, no_sync):
    x = feature_map().astype(be.np_float)
    empty = np.zeros((0, 5), dtype=be.np_float)
    out = mv.roi_pool(be.asarray(x), be.asarray(empty), (2, 3))
    assert tuple(out.shape) == (0, 3, 2, 3)
    for shape in [(1, 2, 1, 7), (1, 2, 6, 1), (1, 1, 1, 1)]:
        xm = np.arange(np.prod(shape), dtype=be.np_float).reshape(shape)
        rois = EDGE_ROIS[[0, 1, 4, 6]].astype(be.np_float)
        rois[:, 0] = 0
        out, arg = mv.roi_pool(be.asarray(xm), be.asarray(rois), (2, 2), 1.0, return_argmax=True)
        ref, ref_arg = tv_pool(xm, rois, (2, 2), 1.0)
        assert_close(out, ref, what=f"map {shape}")
        assert_close(arg, ref_arg, what=f"argmax {shape}")


# ----------------------------------------------------------------------------- backward


def scatter_tolerance(be, grad):
    """NumPy accumulates in torchvision's order (bitwise); torch in its own order (float32
    round-off per sum); array-api-strict's standard-only scatter-add sums through one running
    total, whose round-off is about eps * sum(|values|) (see _backend.scatter_add)."""
    if be.name == "numpy":
        return {}
    if be.name == "strict-device1":
        return dict(rtol=0.0, atol=4 * np.finfo(np.float32).eps * float(np.abs(grad).sum()))
    return dict(rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("scale", [1.0, 0.5, 1 / 3])
@pytest.mark.parametrize("output_size", [(3, 4), (7, 7)])
def test_roi_pool_backward_matches_autograd(be, no_sync, scale, output_size):
    """Overlapping bins and RoIs route several gradients to one cell: they must add up."""
    x = feature_map().astype(be.np_float)
    rois = np.concatenate([EDGE_ROIS, EDGE_ROIS[:3]]).astype(be.np_float)  # repeated RoIs
    rng = np.random.default_rng(1)
    ph, pw = output_size
    grad = rng.standard_normal((len(rois), 3, ph, pw)).astype(be.np_float)
    ref = tv_pool_grad(x, rois, output_size, scale, grad)
    _, arg = mv.roi_pool(be.asarray(x), be.asarray(rois), output_size, scale, return_argmax=True)
    got = mv.roi_pool_backward(be.asarray(grad), be.asarray(rois), arg, x.shape)
    assert_backend(got, be)
    assert_close(got, ref, what="roi_pool gradient", **scatter_tolerance(be, grad))


def test_roi_pool_backward_float32_bitwise_on_numpy():
    x = feature_map().astype(np.float32)
    rois = EDGE_ROIS.astype(np.float32)
    grad = np.random.default_rng(2).standard_normal((len(rois), 3, 3, 4)).astype(np.float32)
    _, arg = mv.roi_pool(x, rois, (3, 4), 0.5, return_argmax=True)
    got = mv.roi_pool_backward(grad, rois, arg, x.shape)
    assert_close(got, tv_pool_grad(x, rois, (3, 4), 0.5, grad), what="float32 gradient")


def test_roi_pool_adjoint(be, no_sync):
    """For a fixed argmax, RoI pooling is a linear selection P: <P x, g> = <x, P.T g>."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 9, 11)).astype(be.np_float)
    rois = EDGE_ROIS.astype(be.np_float)
    out, arg = mv.roi_pool(be.asarray(x), be.asarray(rois), (3, 4), 0.5, return_argmax=True)
    g = rng.standard_normal(tuple(out.shape)).astype(be.np_float)
    back = mv.roi_pool_backward(be.asarray(g), be.asarray(rois), arg, x.shape)
    o = np.where(to_numpy(arg) >= 0, to_numpy(out), 0.0)  # empty bins hold 0, not a pixel
    lhs = float(np.sum(o.astype(np.float64) * g))
    rhs = float(np.sum(x.astype(np.float64) * to_numpy(back)))
    assert lhs == pytest.approx(rhs, rel=1e-5 if be.np_float == np.float32 else 1e-12)


# ----------------------------------------------------------------------------- invalid RoIs


def test_invalid_rois_pool_nothing(be, no_sync):
    """NaN/inf coordinates and batch indices outside [0, N) are undefined behaviour in
    torchvision (garbage or out-of-bounds reads); minivision defines them as empty RoIs."""
    x = feature_map().astype(be.np_float)
    bad = np.array(
        [
            [0, nan, 0, 4, 4],
            [0, 0, 0, inf, 4],
            [1, -inf, -inf, inf, inf],
            [2, 0, 0, 4, 4],  # batch index 2 with N = 2
            [-1, 0, 0, 4, 4],
            [nan, 0, 0, 4, 4],
        ]
    ).astype(be.np_float)
    good = EDGE_ROIS[:2].astype(be.np_float)
    rois = np.concatenate([bad, good])
    out, arg = mv.roi_pool(be.asarray(x), be.asarray(rois), (2, 2), 1.0, return_argmax=True)
    assert_close(
        out[: len(bad), ...], np.zeros((len(bad), 3, 2, 2), be.np_float), what="invalid RoIs"
    )
    assert_close(arg[: len(bad), ...], np.full((len(bad), 3, 2, 2), -1, np.int32), what="argmax")
    assert_close(out[len(bad) :, ...], tv_pool(x, good, (2, 2), 1.0)[0], what="valid RoIs")
    grad = np.ones(tuple(out.shape), be.np_float)
    g = mv.roi_pool_backward(be.asarray(grad), be.asarray(rois), arg, x.shape)
    ref = tv_pool_grad(x, good, (2, 2), 1.0, grad[len(bad) :])
    assert_close(g, ref, what="gradient of valid RoIs only", **scatter_tolerance(be, grad))


# ----------------------------------------------------------------------------- properties


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_roi_pool_many_channels_match_torchvision(be, no_sync, dtype):
    """37 channels: NumPy works through the tables a block of channels at a time (the last
    block partial in every dtype), so values, argmax and gradient cross block boundaries."""
    if not hasattr(be.xp, dtype) or (be.name == "strict-device1" and dtype == "float64"):
        pytest.skip(f"{be.name}: {dtype} not used")
    x = np.concatenate([feature_map(c=3, seed=s) for s in range(13)], axis=1)[:, :37]
    x, rois = x.astype(dtype), EDGE_ROIS.astype(dtype)
    ref, ref_arg = tv_pool(x, rois, (3, 4), 0.5)
    out, arg = mv.roi_pool(
        be.asarray(x, dtype=dtype), be.asarray(rois, dtype=dtype), (3, 4), 0.5, return_argmax=True
    )
    assert_close(out, ref, what=f"roi_pool {dtype}")
    assert_close(arg, ref_arg, what=f"argmax {dtype}")
    assert_close(
        mv.roi_pool(be.asarray(x, dtype=dtype), be.asarray(rois, dtype=dtype), (3, 4), 0.5),
        ref,
        what=f"roi_pool {dtype} without argmax",
    )
    if dtype != "float16":
        grad = np.random.default_rng(5).standard_normal(ref.shape).astype(dtype)
        got = mv.roi_pool_backward(
            be.asarray(grad, dtype=dtype), be.asarray(rois, dtype=dtype), arg, x.shape
        )
        ref_grad = tv_pool_grad(x, rois, (3, 4), 0.5, grad)
        assert_close(got, ref_grad, what=f"{dtype} gradient", **scatter_tolerance(be, grad))


@st.composite
def pool_problems(draw):
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    x = draw(arrays(np.float64, (n, c, h, w), elements=st.integers(-3, 3).map(float)))
    k = draw(st.integers(0, 6))
    coord = st.one_of(
        st.integers(-6, 24).map(lambda v: v / 2),  # halves: rounding ties
        st.floats(-10, 30, allow_nan=False, width=32),
    )
    boxes = draw(arrays(np.float64, (k, 4), elements=coord))
    if draw(st.booleans()):
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2])
    batch = draw(arrays(np.float64, (k, 1), elements=st.floats(0, n - 0.01)))
    rois = np.concatenate([batch, boxes], axis=1)
    size = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    scale = draw(st.sampled_from([1.0, 0.5, 0.25, 1 / 3, 2.0]))
    return x, rois, size, scale


@given(problem=pool_problems())
def test_roi_pool_property_float64(problem):
    x, rois, size, scale = problem
    ref, ref_arg = tv_pool(x, rois, size, scale)
    out, arg = mv.roi_pool(x, rois, size, scale, return_argmax=True)
    assert_close(out, ref, what="roi_pool")
    assert_close(arg, ref_arg, what="argmax")
    assert_close(mv.roi_pool(x, rois, size, scale), ref, what="roi_pool (value path)")
    grad = np.random.default_rng(0).standard_normal(ref.shape)
    back = mv.roi_pool_backward(grad, rois, arg, x.shape)
    assert_close(back, tv_pool_grad(x, rois, size, scale, grad), what="gradient")


@settings(max_examples=15)
@given(problem=pool_problems())
def test_roi_pool_property_every_backend(be, no_sync, problem):
    x, rois, size, scale = problem
    x, rois = x.astype(be.np_float), rois.astype(be.np_float)
    ref, ref_arg = tv_pool(x, rois, size, scale)
    out, arg = mv.roi_pool(be.asarray(x), be.asarray(rois), size, scale, return_argmax=True)
    assert_close(out, ref, what="roi_pool")
    assert_close(arg, ref_arg, what="argmax")


# ----------------------------------------------------------------------------- bad input


def test_roi_pool_bad_input(be):
    x = be.asarray(np.zeros((1, 2, 4, 4)))
    rois = be.asarray(np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"boxes must have shape \(K, 5\).*got \(3, 4\)"):
        mv.roi_pool(x, be.asarray(np.zeros((3, 4))), 2)
    with pytest.raises(ValueError, match=r"boxes\[0\] must have shape \(L, 4\)"):
        mv.roi_pool(x, [be.asarray(np.zeros((3, 5)))], 2)
    with pytest.raises(ValueError, match=r"input must have shape \(N, C, H, W\), got \(2, 4, 4\)"):
        mv.roi_pool(be.asarray(np.zeros((2, 4, 4))), rois, 2)
    with pytest.raises(ValueError, match="output_size must be a positive int"):
        mv.roi_pool(x, rois, (0, 2))
    with pytest.raises(ValueError, match="output_size must be a positive int"):
        mv.roi_pool(x, rois, 2.5)
    with pytest.raises(TypeError, match="spatial_scale must be a positive number"):
        mv.roi_pool(x, rois, 2, "1")
    with pytest.raises(TypeError, match="boxes must have the same dtype as input"):
        mv.roi_pool(x, be.asarray(np.zeros((3, 5)), dtype="int64"), 2)
    with pytest.raises(TypeError, match="input must have a real floating-point dtype"):
        mv.roi_pool(
            be.asarray(np.zeros((1, 2, 4, 4), np.int64)), be.asarray(np.zeros((3, 5), np.int64)), 2
        )
    out, arg = mv.roi_pool(x, rois, 2, return_argmax=True)
    with pytest.raises(ValueError, match="argmax must have grad_output's shape"):
        mv.roi_pool_backward(out, rois, arg[:1, ...], (1, 2, 4, 4))
    with pytest.raises(ValueError, match=r"grad_output must have shape \(K, C, PH, PW\)"):
        mv.roi_pool_backward(out, rois, arg, (1, 3, 4, 4))
    with pytest.raises(ValueError, match="input_shape must be"):
        mv.roi_pool_backward(out, rois, arg, (1, 2, 4))


def test_roi_pool_rejects_lists_and_mixed_libraries():
    with pytest.raises(TypeError, match=r"boxes\[0\] must be an array.*got list"):
        mv.roi_pool(np.zeros((1, 1, 4, 4)), [[0.0, 0.0, 1.0, 1.0]], 2)
    with pytest.raises(TypeError, match="boxes must be an array.*got str"):
        mv.roi_pool(np.zeros((1, 1, 4, 4)), "rois", 2)
    with pytest.raises(TypeError, match="input, boxes must all come from one array library"):
        mv.roi_pool(np.zeros((1, 1, 4, 4)), torch.zeros(1, 5, dtype=torch.float64), 2)


def test_roi_pool_does_not_mutate():
    x = feature_map()
    rois = EDGE_ROIS.copy()
    copies = x.copy(), rois.copy()
    out, arg = mv.roi_pool(x, rois, (3, 4), 0.5, return_argmax=True)
    grad = np.ones_like(out)
    arg_copy = arg.copy()
    mv.roi_pool_backward(grad, rois, arg, x.shape)
    np.testing.assert_array_equal(copies[0], x)
    np.testing.assert_array_equal(copies[1], rois)
    np.testing.assert_array_equal(arg_copy, arg)
    np.testing.assert_array_equal(grad, np.ones_like(out))
