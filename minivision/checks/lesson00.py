"""Lesson 00 battery: box formats, areas, IoU, GIoU, clipping, boxes around masks.

The expected values come from minivision.ops.boxes (pinned to torchvision by the tests). The
mistakes are the ones learners make most: the legacy "+1", overlap divided by one box's area
(or by the sum of areas) instead of the union, a missing clamp at zero, and x/y swapped.
"""

from __future__ import annotations

import numpy as np

from ..ops import boxes as ref
from ._core import Battery, Case, FunctionBattery, Mistake

# ----------------------------------------------------------------------------- inputs

A = np.array([[0.0, 0.0, 10.0, 10.0]])
PAIRS = np.array(
    [
        [0.0, 0.0, 10.0, 10.0],
        [5.0, 5.0, 15.0, 15.0],  # overlaps the first by a quarter
        [10.0, 0.0, 20.0, 10.0],  # touches the first along x = 10
        [2.0, 3.0, 4.0, 9.0],  # inside the first, tall and thin
        [30.0, 40.0, 50.0, 45.0],  # far away
    ]
)
WIDE_TALL = np.array([[0.0, 0.0, 40.0, 10.0], [12.0, 2.0, 18.0, 30.0], [1.5, 2.5, 3.5, 7.25]])
RNG = np.random.default_rng(0)
RANDOM = RNG.uniform(0, 60, (6, 4))
RANDOM[:, 2:] += RANDOM[:, :2]
RANDOM2 = RNG.uniform(0, 60, (4, 4))
RANDOM2[:, 2:] += RANDOM2[:, :2]
OUTSIDE = np.array([[-5.0, -8.0, 30.0, 12.0], [35.0, 2.0, 70.0, 50.0], [-9.0, 20.0, -1.0, 60.0]])


def _masks():
    m = np.zeros((4, 6, 9), dtype=bool)
    m[0, 1:3, 2:7] = True  # a wide rectangle
    m[1, 4, 1] = True  # one pixel
    m[2, 0:6, 8] = True  # the last column
    m[2, 2, 3] = True
    m[3, 5, 0] = True
    m[3, 1, 4] = True  # two far-apart pixels
    return m


# ----------------------------------------------------------------------------- mistakes


def _area_plus_one(boxes):
    return (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)


def _inter(b1, b2, plus=0.0, clamp=True):
    w = (
        np.minimum(b1[:, None, 2], b2[None, :, 2])
        - np.maximum(b1[:, None, 0], b2[None, :, 0])
        + plus
    )
    h = (
        np.minimum(b1[:, None, 3], b2[None, :, 3])
        - np.maximum(b1[:, None, 1], b2[None, :, 1])
        + plus
    )
    if clamp:
        w, h = np.maximum(w, 0), np.maximum(h, 0)
    return w * h


def _area(b):
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def _iou_plus_one(b1, b2):
    inter = _inter(b1, b2, plus=1.0)
    return inter / (_area_plus_one(b1)[:, None] + _area_plus_one(b2)[None, :] - inter)


def _iou_over_first(b1, b2):
    return _inter(b1, b2) / _area(b1)[:, None]


def _iou_over_second(b1, b2):
    return _inter(b1, b2) / _area(b2)[None, :]


def _iou_over_smaller(b1, b2):
    return _inter(b1, b2) / np.minimum(_area(b1)[:, None], _area(b2)[None, :])


def _iou_over_sum(b1, b2):
    return _inter(b1, b2) / (_area(b1)[:, None] + _area(b2)[None, :])


def _iou_no_clamp(b1, b2):
    inter = _inter(b1, b2, clamp=False)
    return inter / (_area(b1)[:, None] + _area(b2)[None, :] - inter)


def _iou_min_max_swapped(b1, b2):
    """max of the right edges minus min of the left ones: the enclosing box, not the overlap."""
    w = np.maximum(b1[:, None, 2], b2[None, :, 2]) - np.minimum(b1[:, None, 0], b2[None, :, 0])
    h = np.maximum(b1[:, None, 3], b2[None, :, 3]) - np.minimum(b1[:, None, 1], b2[None, :, 1])
    inter = np.maximum(w, 0) * np.maximum(h, 0)
    return inter / (_area(b1)[:, None] + _area(b2)[None, :] - inter)


def _iou_yx_pairing(b1, b2):
    """Intersection width from x of one set and y of the other: (x1, y1) mixed up."""
    sw = b2[:, [1, 0, 3, 2]]
    inter = _inter(b1, sw)
    return inter / (_area(b1)[:, None] + _area(b2)[None, :] - inter)


def _union(b1, b2):
    return _area(b1)[:, None] + _area(b2)[None, :] - _inter(b1, b2)


def _enclosing_area(b1, b2):
    w = np.maximum(b1[:, None, 2], b2[None, :, 2]) - np.minimum(b1[:, None, 0], b2[None, :, 0])
    h = np.maximum(b1[:, None, 3], b2[None, :, 3]) - np.minimum(b1[:, None, 1], b2[None, :, 1])
    return w * h


def _giou_from(iou_fn):
    def giou(b1, b2):
        c = _enclosing_area(b1, b2)
        return iou_fn(b1, b2) - (c - _union(b1, b2)) / c

    return giou


def _giou_enclosing_is_intersection(b1, b2):
    inter, union = _inter(b1, b2), _union(b1, b2)
    return inter / union - (inter - union) / inter


def _giou_over_union(b1, b2):
    inter, union = _inter(b1, b2), _union(b1, b2)
    return inter / union - (_enclosing_area(b1, b2) - union) / union


def _convert_wrong(kind):
    def convert(boxes, in_fmt, out_fmt):
        xyxy = ref.box_convert(boxes, in_fmt, "xyxy")
        x1, y1, x2, y2 = xyxy.T
        w, h = x2 - x1, y2 - y1
        if kind == "plus_one":
            w, h = w + 1, h + 1
            x2, y2 = x1 + w, y1 + h
        if out_fmt == "xyxy":
            if kind == "swap":
                return np.stack([y1, x1, y2, x2], axis=1)
            return np.stack([x1, y1, x2, y2], axis=1)
        if out_fmt == "xywh":
            out = [x1, y1, w, h] if kind != "swap" else [y1, x1, h, w]
            return np.stack(out, axis=1)
        cx, cy = (
            ((x2 - x1) / 2, (y2 - y1) / 2)
            if kind == "half_width"
            else ((x1 + x2) // 2, (y1 + y2) // 2)
            if kind == "floor_division"
            else ((x1 + x2) / 2, (y1 + y2) / 2)
        )
        out = [cx, cy, w, h] if kind != "swap" else [cy, cx, h, w]
        return np.stack(out, axis=1)

    return convert


def _clip_swapped(boxes, size):
    height, width = size
    return ref.clip_boxes_to_image(boxes, (width, height))


def _clip_minus_one(boxes, size):
    height, width = size
    out = boxes.copy()
    out[:, 0::2] = np.clip(out[:, 0::2], 0, width - 1)
    out[:, 1::2] = np.clip(out[:, 1::2], 0, height - 1)
    return out


def _masks_swapped(masks):
    return ref.masks_to_boxes(masks)[:, [1, 0, 3, 2]]


def _masks_plus_one(masks):
    b = ref.masks_to_boxes(masks)
    b[:, 2:] += 1
    return b


PLUS_ONE = (
    'the legacy "+1"',
    "boxes here are continuous coordinates, so the width is x2 - x1 with no +1 "
    "(the +1 belongs to old pixel-index code such as Caffe's; torchvision dropped it)",
)
SWAP = (
    "x and y swapped",
    "x is the column and y the row; a box is (x1, y1, x2, y2) but an image size is "
    "(height, width) and an array is indexed [row, column]",
)

BATTERY = Battery(
    lesson="00",
    title="lesson 00, boxes and IoU",
    functions=[
        FunctionBattery(
            "box_area",
            ref.box_area,
            [
                Case("one 10x10 box", (A,)),
                Case("five boxes, one of them thin", (PAIRS,)),
                Case("boxes with fractional corners", (WIDE_TALL,)),
            ],
            [Mistake(*PLUS_ONE, _area_plus_one)],
        ),
        FunctionBattery(
            "box_convert",
            ref.box_convert,
            [
                Case("xyxy -> cxcywh", (WIDE_TALL, "xyxy", "cxcywh")),
                Case("xyxy -> xywh", (WIDE_TALL, "xyxy", "xywh")),
                Case(
                    "cxcywh -> xyxy",
                    (np.array([[20.0, 5.0, 40.0, 10.0], [3.0, 4.0, 2.0, 1.0]]), "cxcywh", "xyxy"),
                ),
                Case("xywh -> cxcywh", (np.array([[10.0, 20.0, 4.0, 6.0]]), "xywh", "cxcywh")),
                Case("xyxy -> xyxy (a copy)", (PAIRS, "xyxy", "xyxy")),
            ],
            [
                Mistake(
                    "the half width instead of the centre",
                    "the centre is the mean of the two edges, (x1 + x2) / 2; (x2 - x1) / 2 is half the width",
                    _convert_wrong("half_width"),
                ),
                Mistake(*PLUS_ONE, _convert_wrong("plus_one")),
                Mistake(*SWAP, _convert_wrong("swap")),
                Mistake(
                    "integer division for the centre",
                    "// rounds down: (1.5 + 3.5) // 2 is 2.0, not 2.5; use / for coordinates",
                    _convert_wrong("floor_division"),
                ),
            ],
        ),
        FunctionBattery(
            "box_iou",
            ref.box_iou,
            [
                Case("a box against itself", (A, A)),
                Case("overlapping, touching, nested and far boxes", (PAIRS, PAIRS)),
                Case("wide against tall boxes", (WIDE_TALL, PAIRS)),
                Case("random boxes, 6 x 4", (RANDOM, RANDOM2)),
            ],
            [
                Mistake(*PLUS_ONE, _iou_plus_one),
                Mistake(
                    "overlap divided by the area of the first box",
                    "IoU divides by the union, area1 + area2 - intersection, not by one box's area",
                    _iou_over_first,
                ),
                Mistake(
                    "overlap divided by the area of the second box",
                    "IoU divides by the union, area1 + area2 - intersection, not by one box's area",
                    _iou_over_second,
                ),
                Mistake(
                    "overlap divided by the smaller box's area",
                    "that is the 'intersection over minimum'; IoU divides by the union",
                    _iou_over_smaller,
                ),
                Mistake(
                    "the intersection counted twice in the union",
                    "area1 + area2 counts the overlap twice; subtract the intersection once",
                    _iou_over_sum,
                ),
                Mistake(
                    "a missing clamp at zero",
                    "for disjoint boxes min(x2) - max(x1) is negative; clamp width and height "
                    "at 0 before multiplying, or two negatives make a positive overlap",
                    _iou_no_clamp,
                ),
                Mistake(*SWAP, _iou_yx_pairing),
                Mistake(
                    "min and max swapped in the intersection",
                    "the overlap runs from the larger left edge to the smaller right edge: "
                    "min(x2, x2') - max(x1, x1'); the other way round measures the enclosing box",
                    _iou_min_max_swapped,
                ),
            ],
        ),
        FunctionBattery(
            "generalized_box_iou",
            ref.generalized_box_iou,
            [
                Case("a box against itself", (A, A)),
                Case("overlapping, touching, nested and far boxes", (PAIRS, PAIRS)),
                Case("random boxes, 6 x 4", (RANDOM, RANDOM2)),
            ],
            [
                Mistake(*PLUS_ONE, _giou_from(_iou_plus_one)),
                Mistake(
                    "IoU divided by one box's area",
                    "the IoU term divides by the union",
                    _giou_from(_iou_over_first),
                ),
                Mistake(
                    "the intersection used as the enclosing box",
                    "C is the smallest box containing both: min of the x1s and y1s, max of the x2s and y2s",
                    _giou_enclosing_is_intersection,
                ),
                Mistake(
                    "the penalty divided by the union",
                    "the penalty is (|C| - union) / |C|: it divides by the enclosing area",
                    _giou_over_union,
                ),
            ],
        ),
        FunctionBattery(
            "clip_boxes_to_image",
            ref.clip_boxes_to_image,
            [
                Case(
                    "boxes sticking out of a 40 x 64 image (size = (height, width))",
                    (OUTSIDE, (40, 64)),
                ),
                Case("a box already inside", (WIDE_TALL, (100, 100))),
                Case("a tall, narrow image", (OUTSIDE, (60, 20))),
            ],
            [
                Mistake(*SWAP, _clip_swapped),
                Mistake(
                    "clipping to width - 1",
                    "in continuous coordinates the image's right edge is x = width (the far side "
                    "of the last pixel), so clamp x to [0, width] and y to [0, height]",
                    _clip_minus_one,
                ),
            ],
        ),
        FunctionBattery(
            "masks_to_boxes",
            ref.masks_to_boxes,
            [
                Case("four masks of 6 x 9 pixels", (_masks(),)),
                Case("an empty mask gives (0, 0, 0, 0)", (np.zeros((1, 3, 3), dtype=bool),)),
            ],
            [
                Mistake(*SWAP, _masks_swapped),
                Mistake(
                    "one past the last pixel",
                    "torchvision's masks_to_boxes returns the index of the last row and column "
                    "holding the mask (inclusive), not one past it",
                    _masks_plus_one,
                ),
            ],
        ),
    ],
)
