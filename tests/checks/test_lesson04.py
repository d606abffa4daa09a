"""`minivision check 04`: stubs fail cleanly, a correct solution passes, planted mistakes are named.

Each planted mistake is written here the way a learner would write it (the classic
``py_cpu_nms`` loop and its relatives), independently of the battery's own wrong versions, and
must be recognised -- and only it: a case that one mistake explains must not be blamed on
another.
"""

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

from minivision.checks import check_module

ROOT = Path(__file__).resolve().parents[2]
STUBS = ROOT / "lessons" / "04_nms.py"
SOLUTION = Path(__file__).parents[1] / "solutions" / "lesson04_solution.py"


def _solution():
    return load_solution("04")


_with = replaced


def test_stubs_fail_cleanly():
    assert_stubs_fail_cleanly("04", STUBS, 3)


def test_reference_solution_passes():
    assert_solution_passes("04", 3)


def learner_nms(plus=0, divide="union", at_least=False, sort="stable", index_order=False):
    """The py_cpu_nms loop (Fast R-CNN's), with one knob per classic mistake."""

    def nms(boxes, scores, thresh):
        x1, y1, x2, y2 = boxes.T
        areas = (x2 - x1 + plus) * (y2 - y1 + plus)
        if sort == "stable":
            order = np.argsort(-scores, kind="stable")
        elif sort == "reversed":
            order = scores.argsort()[::-1]
        else:
            order = np.arange(len(scores))
        keep = []
        while order.size > 0:
            i = order[0]
            keep.append(i)
            rest = order[1:]
            w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + plus)
            h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + plus)
            inter = w * h
            if divide == "union":
                ovr = inter / (areas[i] + areas[rest] - inter)
            elif divide == "kept":
                ovr = inter / areas[i]
            elif divide == "other":
                ovr = inter / areas[rest]
            else:
                ovr = inter / np.minimum(areas[i], areas[rest])
            stay = ovr < thresh if at_least else ovr <= thresh
            order = rest[stay]
        keep = np.array(keep, dtype=np.int64)
        return np.sort(keep) if index_order else keep

    return nms


def fast_nms(boxes, scores, thresh):
    """YOLACT's Fast NMS: a box goes if *any* better box overlaps it, suppressed or not."""
    order = np.argsort(-scores, kind="stable")
    b = boxes[order]
    lt = np.maximum(b[:, None, :2], b[None, :, :2])
    rb = np.minimum(b[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = np.prod(b[:, 2:] - b[:, :2], axis=1)
    iou = np.triu(inter / (area[:, None] + area[None, :] - inter), k=1)
    return order[iou.max(axis=0, initial=0.0) <= thresh]


PLANTED_NMS = [
    (learner_nms(plus=1), 'the legacy "+1"'),
    (learner_nms(at_least=True), '">=" instead of ">" at the threshold'),
    (learner_nms(divide="kept"), "overlap divided by the kept box's area"),
    (learner_nms(divide="other"), "overlap divided by the other box's area"),
    (learner_nms(divide="smaller"), "overlap divided by the smaller box's area"),
    (learner_nms(sort="none"), "forgetting to sort by score"),
    (learner_nms(index_order=True), "the kept indices in index order"),
    (learner_nms(sort="reversed"), "equal scores ranked by the higher index"),
    (fast_nms, "suppressing with already-suppressed boxes"),
]


# ----------------------------------------------------------------------------- planted: batched


def batched_ignoring_categories(boxes, scores, idxs, thresh):
    return learner_nms()(boxes, scores, thresh)


def batched_offset_trick(boxes, scores, idxs, thresh):
    shifted = boxes + (idxs * (boxes.max() + 1.0))[:, None]
    return learner_nms()(shifted, scores, thresh)


def batched_grouped(boxes, scores, idxs, thresh):
    keep = []
    for c in np.unique(idxs):
        members = np.flatnonzero(idxs == c)
        keep.extend(members[learner_nms()(boxes[members], scores[members], thresh)])
    return np.array(keep, dtype=np.int64)


PLANTED_BATCHED = [
    (batched_ignoring_categories, "ignoring the categories"),
    (batched_offset_trick, "the coordinate-offset trick"),
    (batched_grouped, "the kept boxes grouped by category"),
]


# ----------------------------------------------------------------------------- planted: soft


def learner_soft(rule="paper", reselect=True, ties="low"):
    def soft_nms(
        boxes, scores, iou_threshold=0.3, sigma=0.5, score_threshold=0.001, method="linear"
    ):
        def weight(iou):
            if rule == "hard":
                return 0.0 if iou > iou_threshold else 1.0
            if method == "gaussian":
                if rule == "gaussian above" and not iou > iou_threshold:
                    return 1.0
                return np.exp(-(iou**2) / sigma)
            if not iou > iou_threshold:
                return 1.0
            return iou if rule == "iou" else 1 - iou

        def iou(b, c):
            w = max(0.0, min(b[2], c[2]) - max(b[0], c[0]))
            h = max(0.0, min(b[3], c[3]) - max(b[1], c[1]))
            areas = (b[2] - b[0]) * (b[3] - b[1]) + (c[2] - c[0]) * (c[3] - c[1])
            return w * h / (areas - w * h)

        s = scores.astype(float)
        left = list(range(len(s))) if reselect else list(np.argsort(-s, kind="stable"))
        keep, kept = [], []
        while left:
            if ties == "low":
                m = left[int(np.argmax(s[left]))] if reselect else left[0]
            else:  # the last of the best: argmax over the reversed list
                m = left[len(left) - 1 - int(np.argmax(s[left][::-1]))]
            if s[m] < score_threshold:
                if reselect:
                    break
                left.remove(m)  # no re-selection: skip it and carry on down the list
                continue
            keep.append(m)
            kept.append(s[m])
            left.remove(m)
            for i in left:
                s[i] *= weight(iou(boxes[m], boxes[i]))
        return np.array(keep, dtype=np.int64), np.array(kept)

    return soft_nms


PLANTED_SOFT = [
    (learner_soft(rule="hard"), "hard suppression"),
    (learner_soft(rule="iou"), "the weight IoU instead of 1 - IoU"),
    (learner_soft(rule="gaussian above"), "the Gaussian penalty only above the threshold"),
    (learner_soft(reselect=False), "no re-selection after decaying"),
    (learner_soft(ties="high"), "equal scores ranked by the higher index"),
]

PLANTED = (
    [("nms", f, m) for f, m in PLANTED_NMS]
    + [("batched_nms", f, m) for f, m in PLANTED_BATCHED]
    + [("soft_nms", f, m) for f, m in PLANTED_SOFT]
)


@pytest.mark.parametrize("fn,wrong,mistake", PLANTED, ids=[f"{p[0]}-{p[2]}" for p in PLANTED])
def test_planted_mistake_is_recognised(fn, wrong, mistake):
    report = check_module("04", _with(_solution(), **{fn: wrong}))
    result = report.result(fn)
    assert result.status == "failed", report.text()
    assert result.mistakes == [mistake], report.text()
    assert f"looks like {mistake}" in report.text()
    others = [r for r in report.results if r.name != fn]
    assert all(r.status == "ok" for r in others)


def test_the_learner_soft_nms_without_mistakes_is_correct():
    """The planted soft-NMS loop is only wrong where a knob says so."""
    report = check_module("04", _with(_solution(), soft_nms=learner_soft()))
    assert report.ok, report.text()


def test_a_crashing_function_is_reported_not_raised():
    def broken(boxes, scores, thresh):
        return boxes[:, 9]

    report = check_module("04", _with(_solution(), nms=broken))
    assert report.result("nms").status == "failed"
    assert "raised IndexError" in report.text()


@pytest.mark.parametrize("path,code", [(STUBS, 1), (SOLUTION, 0)])
def test_command_line_exit_codes(path, code):
    assert_cli_exit_code("04", path, code)


def test_a_wrong_kept_list_is_shown():
    """A short list of the wrong length is printed next to the expected one."""
    report = check_module("04", _with(_solution(), nms=learner_nms(plus=1)))
    assert "[0 2 3 4 5] instead of [0 1 2 3 4 5]" in report.text()


def test_float_indices_break_the_contract():
    """NMS returns int64 indices (the contract); the same values as floats fail every case."""
    solution = _solution()

    def nms(boxes, scores, thresh):
        return solution.nms(boxes, scores, thresh).astype(np.float64)

    report = check_module("04", _with(solution, nms=nms))
    result = report.result("nms")
    assert result.status == "failed" and result.passed == 0, report.text()
    assert "returned dtype float64, the contract says int64" in report.text()
    assert all(r.status == "ok" for r in report.results if r.name != "nms")


def test_int32_indices_break_the_stated_dtype():
    solution = _solution()

    def batched(boxes, scores, idxs, thresh):
        return solution.batched_nms(boxes, scores, idxs, thresh).astype(np.int32)

    text = check_module("04", _with(solution, batched_nms=batched)).text()
    assert "returned dtype int32, the contract says int64" in text
