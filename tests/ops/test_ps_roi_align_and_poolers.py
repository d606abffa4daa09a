"""ps_roi_align (R-FCN) and the multi-scale RoIAlign of FPN against torchvision 0.29.1.

ps_roi_align shares roi_align's sample points (aligned=True) and summation caveat: agreement
to float round-off. MultiScaleRoIAlign is compared module against function, on pyramids of
four levels and multi-image box lists; the level mapper is exact (integer levels).
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torchvision.ops as tv
from helpers import assert_backend, assert_close
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torchvision.ops.poolers import LevelMapper

import minivision as mv
from minivision._backend import to_numpy

nan, inf = math.nan, math.inf

pytestmark = pytest.mark.filterwarnings(
    "ignore:invalid value encountered:RuntimeWarning", "ignore:divide by zero:RuntimeWarning"
)


def t(host):
    return torch.from_numpy(np.ascontiguousarray(host))


def tol(dtype, scale=4.0):
    eps = np.finfo(dtype).eps
    return dict(rtol=16 * eps, atol=16 * eps * scale)


ROIS = np.array(
    [
        [0, 0, 0, 8, 8],
        [1, -3, -3, 4, 4],
        [0, 5.5, 2.5, 30, 40],
        [1, 25, 25, 30, 30],
        [0, 2, 2, 2, 2],  # zero size: adaptive -> no samples -> 0 / 0 = NaN
        [1, 2.2, 1.1, 2.3, 1.15],
        [0, -50, -40, 100, 120],
        [0.9, 1, 1, 3, 9],
        [1, 0, 0, 11, 9],
    ]
)


# ----------------------------------------------------------------------------- ps_roi_align


@pytest.mark.parametrize("sr", [-1, 0, 1, 2, 3])
@pytest.mark.parametrize("scale", [1.0, 0.5, 1 / 3])
@pytest.mark.parametrize("output_size", [(2, 3), 1])
def test_ps_roi_align_matches_torchvision(be, no_sync, sr, scale, output_size):
    ph, pw = (output_size, output_size) if isinstance(output_size, int) else output_size
    x = np.random.default_rng(0).standard_normal((2, 2 * ph * pw, 9, 11)).astype(be.np_float)
    rois = ROIS.astype(be.np_float)
    ref = tv.ps_roi_align(t(x), t(rois), output_size, scale, sr).numpy()
    out = mv.ps_roi_align(be.asarray(x), be.asarray(rois), output_size, scale, sr)
    assert_backend(out, be)
    loose = be.name == "strict-device1" and sr <= 0  # standard-only scatter-add, see roi_align
    tolerance = dict(rtol=1e-5, atol=4e-5) if loose else tol(be.np_float)
    assert_close(out, ref, what=f"ps_roi_align sr={sr}", **tolerance)


def test_ps_roi_align_channel_mapping_and_degenerate_boxes():
    """Output channel c, bin (ph, pw) reads input channel (c * PH + ph) * PW + pw."""
    ph, pw, c_out = 2, 3, 2
    x = np.broadcast_to(np.arange(c_out * ph * pw, dtype=float)[None, :, None, None], (1, 12, 6, 6))
    out = mv.ps_roi_align(np.ascontiguousarray(x), np.array([[0, 1, 1, 5, 5.0]]), (ph, pw), 1.0, 2)
    expected = (np.arange(c_out)[:, None, None] * ph + np.arange(ph)[:, None]) * pw + np.arange(pw)
    assert_close(out[0], expected.astype(float))
    x = np.random.default_rng(1).standard_normal((1, 4, 5, 5))
    point = np.array([[0, 2, 2, 2, 2.0]])
    assert np.isnan(mv.ps_roi_align(x, point, 2, 1.0, -1)).all()  # no samples: 0 / 0
    fixed = mv.ps_roi_align(x, point, 2, 1.0, 2)  # all samples at (1.5, 1.5)
    ref = tv.ps_roi_align(t(x), t(point), 2, 1.0, 2).numpy()
    assert_close(fixed, ref, **tol(np.float64)) and not np.isnan(fixed).any()
    with pytest.raises(
        ValueError, match=r"input must have a multiple of PH \* PW = 4 channels, got 6"
    ):
        mv.ps_roi_align(np.zeros((1, 6, 5, 5)), point, 2)


@pytest.mark.parametrize("sr", [-1, 2])
def test_ps_roi_align_backward_matches_autograd(be, no_sync, sr):
    x = np.random.default_rng(2).standard_normal((2, 12, 9, 11)).astype(be.np_float)
    rois = np.concatenate([ROIS, ROIS[:3]]).astype(be.np_float)
    grad = np.random.default_rng(3).standard_normal((len(rois), 2, 2, 3)).astype(be.np_float)
    xt = t(x).requires_grad_()
    out = tv.ps_roi_align(xt, t(rois), (2, 3), 0.5, sr)
    out.backward(t(grad))
    got = mv.ps_roi_align_backward(be.asarray(grad), be.asarray(rois), x.shape, 0.5, sr)
    assert_backend(got, be)
    if be.name == "strict-device1":
        tolerance = dict(rtol=0.0, atol=4 * np.finfo(np.float32).eps * float(np.abs(grad).sum()))
    else:
        tolerance = tol(be.np_float, 16.0)
    assert_close(got, xt.grad.numpy(), what="ps_roi_align gradient", **tolerance)


@pytest.mark.parametrize("sr", [-1, 3])
def test_ps_roi_align_adjoint(be, no_sync, sr):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 12, 9, 11)).astype(be.np_float)
    rois = np.delete(ROIS, 4, axis=0).astype(be.np_float)  # no NaN bins
    out = mv.ps_roi_align(be.asarray(x), be.asarray(rois), (2, 3), 0.5, sr)
    g = rng.standard_normal(tuple(out.shape)).astype(be.np_float)
    back = mv.ps_roi_align_backward(be.asarray(g), be.asarray(rois), x.shape, 0.5, sr)
    lhs = float(np.sum(to_numpy(out).astype(np.float64) * g))
    rhs = float(np.sum(x.astype(np.float64) * to_numpy(back)))
    assert lhs == pytest.approx(rhs, rel=1e-5 if be.np_float == np.float32 else 1e-12)


@given(
    rois=arrays(np.float64, (5, 4), elements=st.floats(-8, 20, width=32)),
    batch=arrays(np.float64, (5, 1), elements=st.floats(0, 1.99)),
    sr=st.sampled_from([-1, 0, 1, 2]),
    scale=st.sampled_from([1.0, 0.5, 1 / 3]),
)
def test_ps_roi_align_property(rois, batch, sr, scale):
    x = np.random.default_rng(5).standard_normal((2, 8, 7, 6))
    r = np.concatenate([batch, rois], axis=1)
    ref = tv.ps_roi_align(t(x), t(r), (2, 2), scale, sr).numpy()
    assert_close(mv.ps_roi_align(x, r, (2, 2), scale, sr), ref, **tol(np.float64))
    g = np.random.default_rng(6).standard_normal(ref.shape)
    xt = t(x).requires_grad_()
    tv.ps_roi_align(xt, t(r), (2, 2), scale, sr).backward(t(g))
    got = mv.ps_roi_align_backward(g, r, x.shape, scale, sr)
    assert_close(got, xt.grad.numpy(), **tol(np.float64, 64.0))


def test_ps_roi_align_invalid_rois_and_bad_input():
    x = np.random.default_rng(7).standard_normal((1, 4, 5, 5))
    bad = np.array([[0, nan, 0, 3, 3], [1, 0, 0, 3, 3], [0, 0, 0, inf, 3]])
    assert_close(mv.ps_roi_align(x, bad, 2, 1.0, 2), np.zeros((3, 1, 2, 2)))
    g = mv.ps_roi_align_backward(np.ones((3, 1, 2, 2)), bad, x.shape, 1.0, 2)
    assert_close(g, np.zeros_like(x))
    with pytest.raises(ValueError, match=r"grad_output must have shape \(3, 1, PH, PW\)"):
        mv.ps_roi_align_backward(np.ones((3, 2, 2, 2)), bad, x.shape, 1.0, 2)


# ----------------------------------------------------------------------------- level mapper


def test_infer_scale():
    assert mv.infer_scale((13, 20), [(800, 800)]) == 2.0**-6  # 13 / 800 -> 2 ** round(-5.94)
    assert mv.infer_scale((50, 68), [(800, 1088), (790, 1000)]) == 1 / 16
    assert mv.infer_scale((25, 1), [(800, 9)]) == 1 / 32  # only the height ratio counts
    assert mv.infer_scale((96, 96), [(400, 400)]) == 0.25  # 0.24 -> log2 -2.06 -> -2


def level_boxes():
    sides = []
    for k in range(-3, 4):
        s = 224 * 2.0**k
        sides += [s, s * (1 - 1e-4), s * (1 + 1e-4)]
    b = np.array(
        [[0, 0, s, s] for s in sides] + [[0, 0, 111.9, 112], [5, 5, 5, 5], [0, 0, 1e5, 1e5]]
    )
    return b.astype(np.float32)


def test_level_mapper_matches_torchvision():
    boxes = level_boxes()
    for k_min, k_max in [(2, 5), (3, 6), (4, 4)]:
        ref = LevelMapper(k_min, k_max)([t(boxes[:10]), t(boxes[10:])]).numpy()
        got = mv.level_mapper([boxes[:10], boxes[10:]], k_min, k_max)
        assert_close(got, ref, what=f"levels {k_min}..{k_max}")
    levels = mv.level_mapper([boxes], 2, 5)
    assert levels[9] == 2 and levels[8] == 1  # 224 -> level 4; just below 224 -> level 3
    assert levels[-3] == 0 and levels[-2] == 0 and levels[-1] == 3  # 111.9: 2; zero area; huge


def test_level_mapper_nan_maps_to_no_level(be, no_sync):
    boxes = be.asarray(np.array([[0, 0, nan, 10], [0, 0, 224, 224]], dtype=be.np_float))
    assert_close(mv.level_mapper([boxes], 2, 5), np.array([-1, 2]), check_dtype=False)


# ----------------------------------------------------------------------------- multi-scale


def pyramid(n=2, c=3, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, c, s, s + 3)).astype(dtype) for s in (64, 32, 16, 8)]


BOXES = [
    np.array(
        [[0, 0, 224, 224], [10, 10, 122, 122], [5, 5, 116.9, 117], [0, 0, 0, 0], [3, 4, 500, 400]]
    ),
    np.array([[1, 2, 3, 4], [0, 0, 255, 255], [30, 40, 60, 70.0]]),
]
SIZES = [(256, 270), (250, 256)]


def tv_multiscale(feats, boxes, sizes, output_size, sr, names=("0", "1", "2", "3")):
    m = tv.MultiScaleRoIAlign(list(names), output_size, sr)
    x = OrderedDict((str(i), t(f)) for i, f in enumerate(feats))
    return m(x, [t(b) for b in boxes], sizes).numpy()


@pytest.mark.parametrize("sr", [2, -1])
def test_multiscale_matches_torchvision(be, no_sync, sr):
    feats = pyramid(dtype=be.np_float)
    boxes = [b.astype(be.np_float) for b in BOXES]
    ref = tv_multiscale(feats, boxes, SIZES, (3, 2), sr)
    out = mv.multiscale_roi_align(
        [be.asarray(f) for f in feats], [be.asarray(b) for b in boxes], SIZES, (3, 2), sr
    )
    assert_backend(out, be)
    loose = be.name == "strict-device1" and sr <= 0
    assert_close(out, ref, **(dict(rtol=1e-5, atol=4e-5) if loose else tol(be.np_float)))


def test_multiscale_single_level_and_fresh_scales():
    feats = pyramid()
    ref = tv_multiscale(feats[2:3], BOXES, SIZES, 2, 2, names=("0",))
    assert_close(mv.multiscale_roi_align(feats[2:3], BOXES, SIZES, 2, 2), ref, **tol(np.float64))
    # torchvision caches the scales of its first call; minivision infers them on every call
    other = [(512, 540), (500, 512)]
    ref = tv_multiscale(feats, BOXES, other, 2, 2)
    assert_close(mv.multiscale_roi_align(feats, BOXES, other, 2, 2), ref, **tol(np.float64))


def test_multiscale_bad_input():
    feats = pyramid()
    with pytest.raises(TypeError, match="features must be a non-empty list"):
        mv.multiscale_roi_align([], BOXES, SIZES, 2, 2)
    with pytest.raises(ValueError, match="image_sizes must be a non-empty list"):
        mv.multiscale_roi_align(feats, BOXES, [], 2, 2)
    with pytest.raises(ValueError, match=r"image_sizes\[1\] must be \(height, width\)"):
        mv.multiscale_roi_align(feats, BOXES, [(10, 10), (5,)], 2, 2)
    with pytest.raises(ValueError, match=r"features\[1\] must have the batch size and channels"):
        mv.multiscale_roi_align([feats[0], feats[1][:, :2]], BOXES, SIZES, 2, 2)
    with pytest.raises(TypeError, match="boxes must be a list"):
        mv.multiscale_roi_align(feats, BOXES[0], SIZES, 2, 2)
    with pytest.raises(TypeError, match="boxes must be a non-empty list"):
        mv.level_mapper([], 2, 5)


def test_multiscale_more_box_lists_than_images():
    feats = pyramid()
    extra = list(BOXES) + [BOXES[0]] * (feats[0].shape[0] + 1 - len(BOXES))
    before = [b.copy() for b in extra]
    with pytest.raises(ValueError, match="boxes must have at most one list per image"):
        mv.multiscale_roi_align(feats, extra, SIZES, 2, 2)
    with pytest.raises(ValueError, match="boxes must have at most one list per image"):
        mv.multiscale_roi_align(feats[:1], extra, SIZES, 2, 2)
    with pytest.raises(ValueError, match="features must be ordered finest first"):
        mv.multiscale_roi_align(feats[::-1], BOXES, SIZES, 2, 2)
    for a, b in zip(extra, before):
        np.testing.assert_array_equal(a, b)


def test_level_mapper_bad_levels():
    boxes = [np.array([[0.0, 0.0, 50.0, 50.0]])]
    with pytest.raises(ValueError, match="k_min must be <= k_max"):
        mv.level_mapper(boxes, 5, 2)
    with pytest.raises(TypeError, match="k_min"):
        mv.level_mapper(boxes, 2.5, 5)
    with pytest.raises(TypeError, match="k_max"):
        mv.level_mapper(boxes, 2, "5")
    # NumPy integers are integers; k_min == k_max is a one-level pyramid
    assert_close(mv.level_mapper(boxes, np.int64(3), np.int32(3)), np.array([0]), check_dtype=False)
