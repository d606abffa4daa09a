"""minivision.data.rle byte for byte against live pycocotools.mask 2.0.11.

Fixed edge cases (empty, full, one pixel, masks touching every border, values other than
0/1, polygons off the image, repeated vertices, half-pixel coordinates) and hypothesis-drawn
masks, polygons, boxes and uncompressed RLE, compared as bytes, dtypes and arrays.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minivision.data import rle

M = pytest.importorskip("pycocotools.mask")

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def same(ours, ref, what=""):
    """Equal as pycocotools returns them: RLE dicts (bytes counts), arrays with dtype."""
    if isinstance(ref, np.ndarray):
        assert isinstance(ours, np.ndarray), what
        assert ours.dtype == ref.dtype and ours.shape == ref.shape, (what, ours.dtype, ref.dtype)
        assert np.array_equal(ours, ref, equal_nan=ours.dtype.kind == "f"), what
    elif isinstance(ref, np.generic):
        assert type(ours) is type(ref) and ours == ref, (what, ours, ref)
    else:
        assert ours == ref, what


def check_masks(m):
    """Every mask function on an (H, W, N) uint8 stack, ours against pycocotools."""
    f = np.asfortranarray(m)
    ref = M.encode(f)
    same(rle.encode(m), ref, "encode")
    same(rle.encode(m[:, :, 0]), M.encode(np.asfortranarray(m[:, :, 0])), "encode 2-D")
    same(rle.decode(ref), M.decode(ref), "decode")
    same(rle.decode(ref[0]), M.decode(ref[0]), "decode one")
    same(rle.area(ref), M.area(ref), "area")
    same(rle.area(ref[0]), M.area(ref[0]), "area one")
    same(rle.toBbox(ref), M.toBbox(ref), "toBbox")
    same(rle.merge(ref), M.merge(ref), "merge")
    same(rle.merge(ref, intersect=True), M.merge(ref, intersect=True), "intersect")
    crowd = [i % 2 for i in range(len(ref))]
    same(rle.iou(ref, ref[::-1], crowd), M.iou(ref, ref[::-1], crowd), "iou")


@pytest.mark.parametrize(
    "make",
    [
        lambda: np.zeros((7, 5, 2), np.uint8),  # empty
        lambda: np.ones((7, 5, 2), np.uint8),  # full
        lambda: np.pad(np.ones((1, 1, 2), np.uint8), ((3, 3), (2, 2), (0, 0))),  # one pixel
        lambda: np.pad(np.zeros((5, 3, 1), np.uint8), 1, constant_values=1)[:, :, 1:2],  # frame
        lambda: np.tril(np.ones((6, 6), np.uint8))[:, :, None].repeat(3, axis=2),
        lambda: np.ones((1, 1, 1), np.uint8),
        lambda: np.zeros((1, 9, 1), np.uint8) + (np.arange(9) % 2).astype(np.uint8)[None, :, None],
    ],
    ids=["empty", "full", "one-pixel", "border-frame", "triangle", "1x1", "one-row"],
)
def test_fixed_masks(make):
    check_masks(make())


def test_values_other_than_one_make_runs_as_in_maskapi():
    m = np.array([[0, 1, 2], [2, 2, 0]], np.uint8)[:, :, None]
    check_masks(m)
    assert rle.encode(m[:, :, 0])["counts"] == b"11110"


def test_any_memory_layout_and_bool_masks_encode_alike():
    m = np.random.default_rng(0).random((9, 11, 3)) < 0.5
    ref = M.encode(np.asfortranarray(m.astype(np.uint8)))
    assert rle.encode(m) == ref  # bool, C order: pycocotools would refuse both
    assert rle.encode(np.ascontiguousarray(m.astype(np.uint8))) == ref


@given(hnp.arrays(np.uint8, hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=24),
                  elements=st.sampled_from([0, 0, 1, 1, 1])))
def test_drawn_masks(m):
    check_masks(m)


def test_big_mask_with_long_runs():
    m = np.zeros((700, 900, 2), np.uint8)
    m[100:650, 50:800, 0] = 1
    m[:, 300:, 1] = 1
    m[5, 5, 1] = 1
    check_masks(m)


# --- polygons, boxes, uncompressed RLE (frPyObjects) ---------------------------------------

FIXED_POLYGONS = [
    [[1.0, 1.0, 8.0, 1.0, 8.0, 6.0, 1.0, 6.0]],  # axis-aligned
    [[0.5, 0.5, 6.5, 0.5, 3.5, 5.5]],  # half-pixel coordinates
    [[-5.0, -5.0, 30.0, 2.0, 12.0, 40.0]],  # off the image on every side
    [[2.0, 2.0, 2.0, 2.0, 7.0, 3.0, 7.0, 3.0, 4.0, 8.0]],  # repeated vertices
    [[3.0, 3.0, 3.0, 3.0, 3.0, 3.0]],  # all vertices equal
    [[0.0, 0.0, 11.0, 0.0, 11.0, 9.0, 0.0, 9.0]],  # exactly the image
    [[1.0, 1.0, 5.0, 1.0, 5.0, 5.0], [4.0, 4.0, 9.0, 4.0, 9.0, 8.0, 4.0, 8.0, 1.0]],  # odd length
    [[0.2, 7.9, 10.7, 0.1, 10.9, 8.8, 0.3, 0.4]],  # self-intersecting, steep edges
]


@pytest.mark.parametrize("polys", FIXED_POLYGONS)
def test_fixed_polygons(polys):
    ref = M.frPyObjects(polys, 9, 11)
    same(rle.frPyObjects(polys, 9, 11), ref)
    same(rle.merge(ref), M.merge(ref))


coords = st.floats(-8, 40, allow_nan=False).map(lambda v: round(v * 4) / 4) | st.integers(-3, 40).map(float)


@given(st.lists(st.lists(coords, min_size=6, max_size=24), min_size=1, max_size=3),
       st.integers(1, 35), st.integers(1, 35))
def test_drawn_polygons(polys, h, w):
    ref = M.frPyObjects(polys, h, w)
    same(rle.frPyObjects(polys, h, w), ref)
    same(rle.merge(ref), M.merge(ref))
    same(rle.area(ref), M.area(ref))


@given(st.lists(st.tuples(coords, coords, st.floats(0, 30), st.floats(0, 30)), min_size=1, max_size=5),
       st.integers(1, 30), st.integers(1, 30))
def test_drawn_boxes(boxes, h, w):
    bb = np.array(boxes, dtype=np.float64)
    ref = M.frPyObjects(bb, h, w)
    same(rle.frPyObjects(bb, h, w), ref)
    same(rle.frPyObjects([list(b) for b in boxes], h, w), ref)  # a list (pycocotools: TypeError)
    same(rle.frPyObjects(list(boxes[0]), h, w), ref[0])
    crowd = [1] * len(bb)
    same(rle.iou(bb, bb, crowd), M.iou(bb, bb, crowd))
    same(rle.iou([list(b) for b in boxes], bb, [0] * len(bb)), M.iou(bb, bb, [0] * len(bb)))


def test_single_flat_polygon_is_one_rle():
    poly = [1.0, 1.0, 8.0, 2.0, 4.0, 7.0]
    assert rle.frPyObjects(poly, 9, 9) == M.frPyObjects([poly], 9, 9)[0]


@given(st.lists(st.integers(0, 3000), min_size=0, max_size=30))
def test_uncompressed_rle_and_the_string_codec(counts):
    obj = {"size": [60, 50], "counts": counts}
    ref = M.frPyObjects(obj, 60, 50)
    same(rle.frPyObjects(obj, 60, 50), ref)
    same(rle.frPyObjects([obj], 60, 50), [ref])
    assert rle.rleToString(counts) == ref["counts"]
    assert rle.rleFrString(ref["counts"]).tolist() == counts
    assert rle.rleFrString(ref["counts"].decode()).tolist() == counts


def test_string_codec_with_large_counts():
    counts = [0, 5_000_000, 1, 7_000_000, 123_456_789, 3, 2**28, 17]
    ref = M.frPyObjects({"size": [2**15, 2**14], "counts": counts}, 1, 1)["counts"]
    assert rle.rleToString(counts) == ref
    assert rle.rleFrString(ref).tolist() == counts


def test_merge_with_empty_runs_inside_follows_maskapi():
    a = M.frPyObjects({"size": [3, 4], "counts": [3, 0, 2, 4, 3]}, 3, 4)
    b = M.encode(np.asfortranarray(np.eye(3, 4, dtype=np.uint8)))
    same(rle.merge([a, b]), M.merge([a, b]))
    same(rle.merge([a, b], intersect=True), M.merge([a, b], intersect=True))
    same(rle.merge([a]), M.merge([a]))
    same(rle.merge([]), M.merge([]))


def test_iou_with_an_empty_side_is_an_empty_matrix():
    r = M.encode(np.asfortranarray(np.ones((3, 3, 2), np.uint8)))
    assert rle.iou(r, [], []).shape == (2, 0)
    assert rle.iou([], r, [0, 0]).shape == (0, 2)


def test_short_counts_decode_with_zeros_and_long_counts_are_an_error():
    short = {"size": [3, 4], "counts": b"12"}
    assert rle.decode(short).tolist() == [[0, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]]
    with pytest.raises(ValueError, match="Invalid RLE"):
        rle.decode({"size": [2, 2], "counts": b"5"})


def test_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        rle.encode(np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match="same size"):
        rle.merge([{"size": [3, 4], "counts": b"<"}, {"size": [3, 5], "counts": b"?"}])
    with pytest.raises(ValueError, match="same size"):
        rle.iou([{"size": [3, 4], "counts": b"<"}], [{"size": [4, 3], "counts": b"<"}], [0])
    with pytest.raises(ValueError, match="outside"):
        rle.rleFrString(b"0z")
    with pytest.raises(ValueError, match="middle of a count"):
        rle.rleFrString(b"0P")
    with pytest.raises(TypeError, match="boxes or both be RLEs"):
        rle.iou(np.zeros((1, 4)), [{"size": [3, 4], "counts": b"<"}], [0])
    with pytest.raises(ValueError, match="length as gt"):
        rle.iou(np.zeros((1, 4)), np.zeros((2, 4)), [0])
    with pytest.raises(ValueError, match="'counts' and 'size'"):
        rle.area([{"size": [3, 4]}])
