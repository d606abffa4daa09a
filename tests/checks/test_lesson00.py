"""`minivision check`: stubs fail cleanly, a correct solution passes, planted mistakes are named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from lesson_checks import (
    assert_cli_exit_code,
    assert_solution_passes,
    assert_stubs_fail_cleanly,
    load_solution,
    replaced,
)

from minivision.checks import check_file, check_module

ROOT = Path(__file__).resolve().parents[2]
STUBS = ROOT / "lessons" / "00_boxes.py"
SOLUTION = Path(__file__).parents[1] / "solutions" / "lesson00_solution.py"


_with = replaced


def test_stubs_fail_cleanly():
    assert_stubs_fail_cleanly("00", STUBS, 6)


def test_reference_solution_passes():
    assert_solution_passes("00", 6)


def _area(b):
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def _overlap(b1, b2, plus=0, clamp=True):
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
    return (np.maximum(w, 0) * np.maximum(h, 0)) if clamp else w * h


# Each planted mistake is written here the way a learner would, independently of the checker.
def area_plus_one(b):
    return (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)


def iou_plus_one(b1, b2):
    inter = _overlap(b1, b2, plus=1)
    return inter / (area_plus_one(b1)[:, None] + area_plus_one(b2)[None, :] - inter)


def iou_over_first_area(b1, b2):
    return _overlap(b1, b2) / _area(b1)[:, None]


def iou_over_sum(b1, b2):
    return _overlap(b1, b2) / (_area(b1)[:, None] + _area(b2)[None, :])


def iou_no_clamp(b1, b2):
    inter = _overlap(b1, b2, clamp=False)
    return inter / (_area(b1)[:, None] + _area(b2)[None, :] - inter)


def iou_yx(b1, b2):
    b2 = b2[:, [1, 0, 3, 2]]  # read the second set as (y1, x1, y2, x2)
    inter = _overlap(b1, b2)
    return inter / (_area(b1)[:, None] + _area(b2)[None, :] - inter)


def convert_half_width(boxes, in_fmt, out_fmt):
    x1, y1, x2, y2 = boxes.T
    return np.stack([(x2 - x1) / 2, (y2 - y1) / 2, x2 - x1, y2 - y1], axis=1)


def convert_swapped(boxes, in_fmt, out_fmt):
    x1, y1, x2, y2 = boxes.T
    return np.stack([(y1 + y2) / 2, (x1 + x2) / 2, y2 - y1, x2 - x1], axis=1)


def giou_intersection_as_enclosure(b1, b2):
    inter = _overlap(b1, b2)
    union = _area(b1)[:, None] + _area(b2)[None, :] - inter
    with np.errstate(all="ignore"):
        return inter / union - (inter - union) / inter


def clip_wh_swapped(boxes, size):
    width, height = size  # the classic: image sizes are (height, width)
    out = boxes.copy()
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, width)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, height)
    return out


def clip_minus_one(boxes, size):
    height, width = size
    out = boxes.copy()
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, width - 1)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, height - 1)
    return out


def masks_rows_as_x(masks):
    out = np.zeros((len(masks), 4), dtype=np.float32)
    for i, m in enumerate(masks):
        rows, cols = np.nonzero(m)
        if len(rows):
            out[i] = rows.min(), cols.min(), rows.max(), cols.max()
    return out


def iou_min_max_swapped(b1, b2):
    lt = np.minimum(b1[:, None, :2], b2[None, :, :2])  # should be the larger left/top edge
    rb = np.maximum(b1[:, None, 2:], b2[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (_area(b1)[:, None] + _area(b2)[None, :] - inter)


def convert_floor_centre(boxes, in_fmt, out_fmt):
    a, b, c, d = boxes.T
    if in_fmt == "xywh":
        a, b, c, d = a, b, a + c, b + d
    elif in_fmt == "cxcywh":
        a, b, c, d = a - c / 2, b - d / 2, a + c / 2, b + d / 2
    if out_fmt == "xyxy":
        return np.stack([a, b, c, d], axis=1)
    if out_fmt == "xywh":
        return np.stack([a, b, c - a, d - b], axis=1)
    return np.stack([(a + c) // 2, (b + d) // 2, c - a, d - b], axis=1)


PLANTED = [
    ("box_area", area_plus_one, 'the legacy "+1"'),
    ("box_iou", iou_min_max_swapped, "min and max swapped in the intersection"),
    ("box_convert", convert_floor_centre, "integer division for the centre"),
    ("box_iou", iou_plus_one, 'the legacy "+1"'),
    ("box_iou", iou_over_first_area, "overlap divided by the area of the first box"),
    ("box_iou", iou_over_sum, "the intersection counted twice in the union"),
    ("box_iou", iou_no_clamp, "a missing clamp at zero"),
    ("box_iou", iou_yx, "x and y swapped"),
    ("box_convert", convert_half_width, "the half width instead of the centre"),
    ("box_convert", convert_swapped, "x and y swapped"),
    (
        "generalized_box_iou",
        giou_intersection_as_enclosure,
        "the intersection used as the enclosing box",
    ),
    ("clip_boxes_to_image", clip_wh_swapped, "x and y swapped"),
    ("clip_boxes_to_image", clip_minus_one, "clipping to width - 1"),
    ("masks_to_boxes", masks_rows_as_x, "x and y swapped"),
]


@pytest.mark.parametrize(
    "fn,wrong,mistake", PLANTED, ids=[f"{p[0]}-{p[1].__name__}" for p in PLANTED]
)
def test_planted_mistake_is_recognised(fn, wrong, mistake):
    solution = load_solution("00")
    report = check_module("00", _with(solution, **{fn: wrong}))
    result = report.result(fn)
    assert result.status == "failed"
    assert mistake in result.mistakes, report.text()
    assert f"looks like {mistake}" in report.text()
    others = [r for r in report.results if r.name != fn]
    assert all(r.status == "ok" for r in others)


def test_a_crashing_function_is_reported_not_raised():
    solution = load_solution("00")

    def broken(b):
        return b[:, 7]

    report = check_module("00", _with(solution, box_area=broken))
    result = report.result("box_area")
    assert result.status == "failed"
    assert "raised IndexError" in report.text()


def test_mutating_the_input_is_reported():
    solution = load_solution("00")

    def mutating(b):
        b -= 1
        return solution.box_area(b + 1)

    report = check_module("00", _with(solution, box_area=mutating))
    assert "changed its input array" in report.text()


def test_unknown_lesson_is_a_clear_error():
    with pytest.raises(ValueError, match="lesson must be one of"):
        check_file("42", STUBS)


@pytest.mark.parametrize("path,code", [(STUBS, 1), (SOLUTION, 0)])
def test_command_line_exit_codes(path, code):
    assert_cli_exit_code("00", path, code)


def test_box_convert_returning_its_input_breaks_the_contract():
    """The same format in and out still asks for a new array, not the caller's own."""
    solution = load_solution("00")

    def box_convert(boxes, in_fmt, out_fmt):
        if in_fmt == out_fmt:
            return boxes
        return solution.box_convert(boxes, in_fmt, out_fmt)

    report = check_module("00", replaced(solution, box_convert=box_convert))
    result = report.result("box_convert")
    assert result.status == "failed" and result.passed == result.total - 1, report.text()
    assert "returned its input array itself" in report.text()


def test_masks_to_boxes_returning_a_list_breaks_the_contract():
    solution = load_solution("00")

    def masks_to_boxes(masks):
        return solution.masks_to_boxes(masks).tolist()

    report = check_module("00", replaced(solution, masks_to_boxes=masks_to_boxes))
    result = report.result("masks_to_boxes")
    assert result.status == "failed" and result.passed == 0, report.text()
    assert "returned a list, expected a NumPy array" in report.text()
