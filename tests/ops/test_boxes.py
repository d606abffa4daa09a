"""minivision.ops.boxes against torchvision.ops 0.29.1, on every backend.

Each case builds the same host data for both sides: the backend gets it in its float dtype
(float64 on NumPy, float32 elsewhere) and torchvision gets a tensor of that same dtype, so the
comparison is exact wherever torchvision's operation order is followed (IoU, GIoU, DIoU, areas,
conversions, clipping) and within a few ulp where ``atan`` differs between libraries (CIoU).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchvision.ops as tv
from helpers import assert_backend, assert_close
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import minivision as mv
from minivision._backend import to_numpy

# Degenerate boxes give 0/0 and inf - inf on purpose; NumPy's warnings about them are expected.
pytestmark = pytest.mark.filterwarnings(
    "ignore:invalid value encountered:RuntimeWarning", "ignore:divide by zero:RuntimeWarning"
)

FORMATS = ("xyxy", "xywh", "cxcywh")
PAIRWISE = ("box_iou", "generalized_box_iou", "distance_box_iou", "complete_box_iou")
nan, inf = math.nan, math.inf

# The degenerate set of torchvision-semantics.md §1, plus ordinary boxes around it.
EDGE = np.array(
    [
        [0, 0, 10, 10],
        [0, 0, 10, 10],  # identical to the first: IoU 1
        [10, 0, 20, 10],  # shares an edge with the first: IoU 0
        [5, 5, 15, 15],
        [2.5, 2.5, 7.5, 7.5],
        [3, 3, 3, 3],  # a point: zero area
        [3, 3, 3, 8],  # zero width
        [10, 10, 0, 0],  # inverted on both axes: area +100
        [10, 0, 0, 10],  # inverted on one axis: area -100
        [-5, -5, 5, 5],  # negative coordinates
        [0, 0, 1e6, 1e6],  # huge
        [nan, 0, 10, 10],
        [0, 0, inf, 10],
    ]
)


def torch_of(host):
    return torch.from_numpy(np.ascontiguousarray(host))


def tv_np(fn, *hosts, **kw):
    return getattr(tv, fn)(*(torch_of(h) for h in hosts), **kw).numpy()


def pairwise_tolerance(fn, dtype):
    """Exact where we follow torchvision's operation order; CIoU's atan differs by an ulp."""
    if fn == "complete_box_iou":
        return dict(rtol=4 * np.finfo(dtype).eps, atol=4 * np.finfo(dtype).eps)
    return dict(rtol=0.0, atol=0.0)


# ----------------------------------------------------------------------------- strategies

coordinate = st.one_of(
    st.sampled_from([0.0, 1.0, 2.0, 5.0, 10.0, 10.5]),  # ties and shared edges on purpose
    st.floats(-50, 300, width=32),
    st.floats(-1e6, 1e6, width=32),
)


@st.composite
def box_sets(draw, max_n=8, min_n=0):
    """(n, 4) float64 boxes: mostly well-ordered, with inverted and degenerate ones mixed in."""
    n = draw(st.integers(min_n, max_n))
    b = (
        draw(arrays(np.float64, (n, 4), elements=coordinate)) + 0.0
    )  # no -0.0: see test_giou_signed_zero
    if draw(st.booleans()):  # order the corners of most boxes so that many overlap
        b[:, 0::2].sort(axis=1)
        b[:, 1::2].sort(axis=1)
    if n >= 2 and draw(st.booleans()):
        b[0] = b[-1]  # an exact duplicate
    return b


# ----------------------------------------------------------------------------- conversions


@pytest.mark.parametrize("in_fmt", FORMATS)
@pytest.mark.parametrize("out_fmt", FORMATS)
def test_box_convert_matches_torchvision(be, no_sync, in_fmt, out_fmt):
    host = EDGE.astype(be.np_float)
    out = mv.box_convert(be.asarray(host), in_fmt, out_fmt)
    assert_backend(out, be)
    assert_close(out, tv_np("box_convert", host, in_fmt=in_fmt, out_fmt=out_fmt), what="boxes")


@pytest.mark.parametrize(
    "in_fmt,out_fmt", [("xyxy", "cxcywh"), ("cxcywh", "xywh"), ("xywh", "xyxy")]
)
def test_box_convert_integer_boxes_follow_torch_dtypes(be, no_sync, in_fmt, out_fmt):
    host = np.array([[1, 1, 4, 4], [0, 3, 7, 2]], dtype=np.int32)
    out = mv.box_convert(be.asarray(host), in_fmt, out_fmt)
    ref = tv_np("box_convert", host, in_fmt=in_fmt, out_fmt=out_fmt)  # int32, or float32 if halved
    assert_close(out, ref, what=f"{in_fmt}->{out_fmt}")


def test_box_convert_same_format_returns_a_copy(be, no_sync):
    boxes = be.asarray(EDGE[:3])
    out = mv.box_convert(boxes, "xyxy", "xyxy")
    assert out is not boxes
    host = EDGE[:3].astype(be.np_float)
    assert_close(out, host, what="copy")


@given(b=box_sets(min_n=1))
def test_box_convert_round_trip_property(b):
    cx = mv.box_convert(b, "xyxy", "cxcywh")
    assert_close(cx, tv_np("box_convert", b, in_fmt="xyxy", out_fmt="cxcywh"), what="cxcywh")
    back = mv.box_convert(cx, "cxcywh", "xyxy")
    assert_close(back, tv_np("box_convert", cx, in_fmt="cxcywh", out_fmt="xyxy"), what="xyxy")


# ----------------------------------------------------------------------------- areas


@pytest.mark.parametrize("fmt", FORMATS)
def test_box_area_matches_torchvision(be, no_sync, fmt):
    host = EDGE.astype(be.np_float)
    out = mv.box_area(be.asarray(host), fmt)
    assert_backend(out, be)
    assert_close(out, tv_np("box_area", host, fmt=fmt), what="area")


@pytest.mark.parametrize("dtype", ["float16", "uint8", "int8", "int16", "int32", "int64"])
def test_box_area_upcasts_like_torchvision(be, no_sync, dtype):
    if not hasattr(be.xp, dtype):
        pytest.skip(f"{be.name} has no {dtype}")
    host = np.array([[0, 0, 200, 100], [10, 10, 0, 0], [10, 0, 0, 10]])
    if dtype == "uint8":
        host = host[:1]  # inverted boxes do not exist in unsigned types
    host = host.astype(dtype)
    out = mv.box_area(be.asarray(host, dtype=dtype))
    ref = tv_np("box_area", host)  # float16 -> float32, small ints -> int32
    assert_close(out, ref, what=f"area of {dtype} boxes")


# ----------------------------------------------------------------------------- pairwise


@pytest.mark.parametrize("fn", PAIRWISE)
def test_pairwise_edge_cases_match_torchvision(be, no_sync, fn):
    host = EDGE.astype(be.np_float)
    with np.errstate(all="ignore"):
        out = getattr(mv, fn)(be.asarray(host), be.asarray(host))
        ref = tv_np(fn, host, host)
    assert_backend(out, be)
    assert_close(out, ref, what=fn, **pairwise_tolerance(fn, be.np_float))


def test_iou_named_edge_cases(be, no_sync):
    """The §1 patterns, spelled out: identical 1, touching 0, point vs itself NaN, inverted 0."""
    host = EDGE.astype(be.np_float)
    iou = to_numpy(mv.box_iou(be.asarray(host), be.asarray(host)))
    assert iou[0, 1] == 1.0 and iou[0, 2] == 0.0 and iou[0, 3] == pytest.approx(25 / 175)
    assert np.isnan(iou[5, 5]) and iou[5, 0] == 0.0
    assert iou[7, 7] == 0.0 and iou[7, 0] == 0.0


def test_giou_signed_zero_documented_difference():
    """An inverted box against a box at -0.0 can make the enclosing area a signed zero, and then
    GIoU is +-inf with the sign chosen by the library's min/max tie-breaking (torch keeps the
    first argument on ties, NumPy the second). Only inverted boxes reach this case; for boxes
    with x1 <= x2 and y1 <= y2 a zero enclosing area means a zero union and NaN everywhere."""
    a = np.array([[0.0, 0.0, -1.0, 1.0]])
    b = np.array([[-0.0, -0.0, -0.0, -0.0]])
    ours = mv.generalized_box_iou(a, b)
    theirs = tv_np("generalized_box_iou", a, b)
    assert np.isinf(ours[0, 0]) and np.isinf(theirs[0, 0])
    with_positive_zero = mv.generalized_box_iou(a, b + 0.0)
    assert_close(with_positive_zero, tv_np("generalized_box_iou", a, b + 0.0))


@pytest.mark.parametrize("fmt", FORMATS)
def test_box_iou_formats_match_torchvision(be, no_sync, fmt):
    host = EDGE[:11].astype(be.np_float)
    out = mv.box_iou(be.asarray(host), be.asarray(host[::-1].copy()), fmt=fmt)
    assert_close(out, tv_np("box_iou", host, host[::-1].copy(), fmt=fmt), what=f"iou {fmt}")


@pytest.mark.parametrize("fn", PAIRWISE)
@pytest.mark.parametrize("shapes", [((0, 4), (5, 4)), ((5, 4), (0, 4)), ((0, 4), (0, 4))])
def test_pairwise_empty(be, no_sync, fn, shapes):
    a, b = (np.zeros(s, dtype=be.np_float) for s in shapes)
    out = getattr(mv, fn)(be.asarray(a), be.asarray(b))
    assert_close(out, tv_np(fn, a, b), what=fn)


@pytest.mark.parametrize("fn", PAIRWISE)
@pytest.mark.parametrize(
    "shapes", [((2, 5, 4), (2, 3, 4)), ((1, 4, 4), (3, 6, 4)), ((2, 1, 3, 4), (4, 2, 4))]
)
def test_pairwise_batched_leading_dims(be, no_sync, fn, shapes):
    rng = np.random.default_rng(7)
    a, b = (rng.uniform(0, 50, s).astype(be.np_float) for s in shapes)
    a[..., 2:] += a[..., :2]
    b[..., 2:] += b[..., :2]
    out = getattr(mv, fn)(be.asarray(a), be.asarray(b))
    assert_close(out, tv_np(fn, a, b), what=fn, **pairwise_tolerance(fn, be.np_float))


@pytest.mark.parametrize("fn", PAIRWISE)
@pytest.mark.parametrize("dtype", ["int32", "int64", "float16"])
def test_pairwise_dtypes_follow_torchvision(be, no_sync, fn, dtype):
    if not hasattr(be.xp, dtype):
        pytest.skip(f"{be.name} has no {dtype}")
    host = np.array([[0, 0, 10, 10], [5, 5, 15, 15], [2, 3, 30, 12], [10, 10, 0, 0]], dtype=dtype)
    out = getattr(mv, fn)(be.asarray(host, dtype=dtype), be.asarray(host, dtype=dtype))
    ref = tv_np(fn, host, host)  # float32 result
    assert_close(out, ref, what=f"{fn} of {dtype} boxes", **pairwise_tolerance(fn, np.float32))


def test_pairwise_mixed_int_and_float(be, no_sync):
    a = np.array([[0, 0, 10, 10], [2, 2, 4, 9]], dtype=np.int64)
    b = EDGE[:4].astype(be.np_float)
    out = mv.box_iou(be.asarray(a), be.asarray(b))
    assert_close(out, tv_np("box_iou", a, b), what="iou")


def test_box_iou_large_blocked_matches_torchvision():
    """NumPy evaluates big matrices in row blocks; the blocks must give the same matrix."""
    rng = np.random.default_rng(3)
    a = rng.uniform(0, 500, (700, 4)).astype(np.float32)
    b = rng.uniform(0, 500, (400, 4)).astype(np.float32)
    a[:, 2:] += a[:, :2]
    b[:, 2:] += b[:, :2]
    for fn in PAIRWISE:
        assert_close(
            getattr(mv, fn)(a, b), tv_np(fn, a, b), what=fn, **pairwise_tolerance(fn, np.float32)
        )


@given(a=box_sets(), b=box_sets(), fn=st.sampled_from(PAIRWISE))
def test_pairwise_property_float64(a, b, fn):
    with np.errstate(all="ignore"):
        out = getattr(mv, fn)(a, b)
        ref = tv_np(fn, a, b)
    assert_close(out, ref, what=fn, **pairwise_tolerance(fn, np.float64))


@given(a=box_sets(), b=box_sets(), fn=st.sampled_from(PAIRWISE))
def test_pairwise_property_every_backend(be, no_sync, a, b, fn):
    a, b = a.astype(be.np_float), b.astype(be.np_float)
    with np.errstate(all="ignore"):
        out = getattr(mv, fn)(be.asarray(a), be.asarray(b))
        ref = tv_np(fn, a, b)
    assert_close(out, ref, what=fn, **pairwise_tolerance(fn, be.np_float))


@given(
    b=box_sets(),
    fmts=st.tuples(st.sampled_from(FORMATS), st.sampled_from(FORMATS)),
    size=st.tuples(st.integers(0, 900), st.integers(0, 900)),
)
def test_elementwise_property_every_backend(be, no_sync, b, fmts, size):
    """box_convert, box_area and clip_boxes_to_image on drawn boxes, on every backend."""
    b = b.astype(be.np_float)
    x = be.asarray(b)
    with np.errstate(all="ignore"):
        got = mv.box_convert(x, *fmts)
        assert_close(got, tv_np("box_convert", b, in_fmt=fmts[0], out_fmt=fmts[1]), what=f"{fmts}")
        assert_close(mv.box_area(x, fmts[0]), tv_np("box_area", b, fmt=fmts[0]), what="area")
        assert_close(
            mv.clip_boxes_to_image(x, size), tv_np("clip_boxes_to_image", b, size=size), what="clip"
        )


# ----------------------------------------------------------------------------- clipping


def test_clip_boxes_to_image_matches_torchvision(be, no_sync):
    host = np.concatenate([EDGE, [[-20, 700, 700, -3], [630, 470, 700, 490]]]).astype(be.np_float)
    out = mv.clip_boxes_to_image(be.asarray(host), (480, 640))
    assert_backend(out, be)
    ref = tv_np("clip_boxes_to_image", host, size=(480, 640))
    assert_close(out, ref, what="clipped")
    o = to_numpy(out)
    assert o[-1, 2] == 640 and o[-1, 3] == 480  # inclusive: x up to width, not width - 1
    assert np.isnan(o[11, 0])  # NaN passes through


def test_clip_boxes_to_image_integer_and_batched(be, no_sync):
    host = np.array(
        [[[-5, -5, 900, 20], [3, 4, 5, 6]], [[0, 0, 0, 0], [700, 500, 800, 600]]], dtype=np.int32
    )
    out = mv.clip_boxes_to_image(be.asarray(host), (480, 640))
    assert_close(out, tv_np("clip_boxes_to_image", host, size=(480, 640)), what="clipped")


@given(b=box_sets(), h=st.integers(0, 800), w=st.integers(0, 800))
def test_clip_property(b, h, w):
    assert_close(mv.clip_boxes_to_image(b, (h, w)), tv_np("clip_boxes_to_image", b, size=(h, w)))


# ----------------------------------------------------------------------------- small boxes


@pytest.mark.parametrize("min_size", [0, 0.0, 1e-3, 5, 10.0, 11])
def test_remove_small_boxes_matches_torchvision(be, min_size):
    host = EDGE.astype(be.np_float)
    out = mv.remove_small_boxes(be.asarray(host), min_size)
    assert_backend(out, be)
    ref = tv.remove_small_boxes(torch_of(host), min_size).numpy()
    assert_close(out, ref, what="kept indices", check_dtype=False)


@pytest.mark.parametrize("min_size", [np.float32(1.0), np.float64(10.0), np.int64(5), np.int32(11)])
def test_remove_small_boxes_numpy_scalar_threshold(be, min_size):
    """A NumPy scalar is the number it holds (torchvision accepts it too)."""
    host = EDGE.astype(be.np_float)
    out = mv.remove_small_boxes(be.asarray(host), min_size)
    plain = mv.remove_small_boxes(be.asarray(host), min_size.item())
    assert_close(out, to_numpy(plain), what="kept indices")
    ref = tv.remove_small_boxes(torch_of(host), min_size.item()).numpy()
    assert_close(out, ref, what="kept indices", check_dtype=False)
    with pytest.raises(TypeError, match="min_size must be a number"):
        mv.remove_small_boxes(be.asarray(host), "1")


def test_remove_small_boxes_keeps_the_boundary(be):
    host = np.array([[0, 0, 5, 5], [0, 0, 4.999, 5], [0, 0, 5, 6]], dtype=be.np_float)
    assert to_numpy(mv.remove_small_boxes(be.asarray(host), 5.0)).tolist() == [0, 2]


def test_remove_small_boxes_integer_boxes_float_threshold(be):
    host = np.array([[0, 0, 3, 3], [0, 0, 2, 9], [1, 1, 4, 9]], dtype=np.int64)
    out = mv.remove_small_boxes(be.asarray(host), 2.5)
    assert_close(out, tv.remove_small_boxes(torch_of(host), 2.5).numpy(), check_dtype=False)


def test_remove_small_boxes_declares_its_sync(no_sync):
    """The output size depends on the values: under no_sync a device1 call must be refused."""
    import array_api_strict as xs

    boxes = xs.asarray(EDGE[:4], device=xs.Device("device1"))
    with pytest.raises(RuntimeError):
        mv.remove_small_boxes(boxes, 1.0)


@given(b=box_sets(), min_size=st.floats(0, 50, width=32))
def test_remove_small_boxes_property(b, min_size):
    with np.errstate(all="ignore"):
        out = mv.remove_small_boxes(b, min_size)
    assert_close(out, tv.remove_small_boxes(torch_of(b), min_size).numpy(), check_dtype=False)


# ----------------------------------------------------------------------------- masks


def _masks(rng, n, h, w, p=0.02):
    m = rng.random((n, h, w)) < p
    m[0] = False  # an empty mask
    if n > 1:
        m[1] = False
        m[1, h // 2, w // 3] = True  # a single pixel
    return m


@pytest.mark.parametrize("dtype", ["bool", "uint8", "float"])
def test_masks_to_boxes_matches_torchvision(be, no_sync, dtype):
    rng = np.random.default_rng(5)
    host = _masks(rng, 6, 17, 23)
    host = host.astype(be.np_float if dtype == "float" else dtype)
    out = mv.masks_to_boxes(be.asarray(host))
    assert_backend(out, be)
    assert_close(out, tv.masks_to_boxes(torch_of(host)).numpy(), what="mask boxes")


def test_masks_to_boxes_empty_set(be, no_sync):
    host = np.zeros((0, 4, 5), dtype=bool)
    out = mv.masks_to_boxes(be.asarray(host))
    assert_close(out, tv.masks_to_boxes(torch_of(host)).numpy())


def test_masks_to_boxes_zero_sized_masks_keep_their_count(be, no_sync):
    """torchvision returns (0, 4) for three 0x5 masks; we return three empty boxes (documented)."""
    out = mv.masks_to_boxes(be.asarray(np.zeros((3, 0, 5), dtype=bool)))
    assert_close(out, np.zeros((3, 4), np.float32))


@given(m=arrays(np.bool_, st.tuples(st.integers(1, 5), st.integers(1, 9), st.integers(1, 9))))
def test_masks_to_boxes_property_every_backend(be, no_sync, m):
    assert_close(mv.masks_to_boxes(be.asarray(m)), tv.masks_to_boxes(torch_of(m)).numpy())


# ----------------------------------------------------------------------------- bad input


CALLS = {
    "box_convert": lambda b: mv.box_convert(b, "xyxy", "cxcywh"),
    "box_area": mv.box_area,
    "box_iou": lambda b: mv.box_iou(b, b),
    "generalized_box_iou": lambda b: mv.generalized_box_iou(b, b),
    "distance_box_iou": lambda b: mv.distance_box_iou(b, b),
    "complete_box_iou": lambda b: mv.complete_box_iou(b, b),
    "clip_boxes_to_image": lambda b: mv.clip_boxes_to_image(b, (10, 10)),
    "remove_small_boxes": lambda b: mv.remove_small_boxes(b, 1.0),
}


@pytest.mark.parametrize("name", CALLS)
def test_wrong_last_dimension_names_the_argument(be, name):
    with pytest.raises(ValueError, match=r"boxes1? must have shape .*4\), got \(3, 5\)"):
        CALLS[name](be.asarray(np.zeros((3, 5))))


@pytest.mark.parametrize("name", CALLS)
def test_bool_boxes_are_rejected(be, name):
    with pytest.raises(TypeError, match="boxes1? must have a real floating-point or integer dtype"):
        CALLS[name](be.asarray(np.zeros((3, 4), dtype=bool)))


@pytest.mark.parametrize("name", CALLS)
def test_lists_are_rejected(name):
    with pytest.raises(TypeError, match="boxes1? must be an array.*got list"):
        CALLS[name]([[0.0, 0.0, 1.0, 1.0]])


@pytest.mark.parametrize("fn", PAIRWISE)
def test_pairwise_needs_a_box_axis(be, fn):
    with pytest.raises(ValueError, match=r"boxes1 must have shape \(\.\.\., N, 4\), got \(4,\)"):
        getattr(mv, fn)(be.asarray(np.zeros(4)), be.asarray(np.zeros((2, 4))))
    with pytest.raises(ValueError, match=r"boxes2 must have shape \(\.\.\., M, 4\), got \(2, 3\)"):
        getattr(mv, fn)(be.asarray(np.zeros((2, 4))), be.asarray(np.zeros((2, 3))))


@pytest.mark.parametrize("fn", PAIRWISE)
def test_mixing_libraries_is_rejected(fn):
    with pytest.raises(TypeError, match="boxes1, boxes2 must all come from one array library"):
        getattr(mv, fn)(np.zeros((2, 4)), torch.zeros(3, 4))


def test_mixing_devices_is_rejected():
    import array_api_strict as xs

    a = xs.asarray(np.zeros((2, 4)), device=xs.Device("device1"))
    b = xs.asarray(np.zeros((2, 4)), device=xs.Device("CPU_DEVICE"))
    with pytest.raises(ValueError, match="boxes1, boxes2 must all be on one device"):
        mv.box_iou(a, b)


def test_bad_formats_and_sizes():
    b = np.zeros((2, 4))
    with pytest.raises(ValueError, match="in_fmt must be one of"):
        mv.box_convert(b, "xyxyz", "xyxy")
    with pytest.raises(ValueError, match="out_fmt must be one of"):
        mv.box_convert(b, "xyxy", "yxyx")
    with pytest.raises(ValueError, match="fmt must be one of"):
        mv.box_iou(b, b, fmt="XYXY")
    for size in [(10,), (-1, 5), (2.5, 3), "ab", None]:
        with pytest.raises(ValueError, match=r"size must be \(height, width\)"):
            mv.clip_boxes_to_image(b, size)
    with pytest.raises(TypeError, match="min_size must be a number"):
        mv.remove_small_boxes(b, "1")
    with pytest.raises(ValueError, match=r"boxes must have shape \(N, 4\)"):
        mv.remove_small_boxes(np.zeros((2, 2, 4)), 1.0)
    with pytest.raises(ValueError, match=r"masks must have shape \(N, H, W\)"):
        mv.masks_to_boxes(np.zeros((4, 4)))


def test_inputs_are_not_mutated():
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 50, (5, 4))
    b = rng.uniform(0, 50, (3, 4))
    m = rng.random((2, 6, 6)) < 0.3
    copies = a.copy(), b.copy(), m.copy()
    for fn in PAIRWISE:
        getattr(mv, fn)(a, b)
    mv.box_convert(a, "xyxy", "cxcywh")
    mv.box_area(a)
    mv.clip_boxes_to_image(a, (10, 10))
    mv.remove_small_boxes(a, 1.0)
    mv.masks_to_boxes(m)
    for orig, now in zip(copies, (a, b, m)):
        np.testing.assert_array_equal(orig, now)
