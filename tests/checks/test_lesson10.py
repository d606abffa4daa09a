"""`minivision check 10`: stubs fail cleanly, a correct solution passes, planted mistakes are named.

Each planted mistake is written here the way a learner would write it, independently of the
battery's own wrong versions, and must be recognised -- and only it. The battery's references
for the per-image pieces are its own short functions, so they are held here to pycocotools
itself (``COCOeval.evaluateImg`` and ``accumulate``) on every case of the battery.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest
from lesson_checks import (
    assert_cli_exit_code,
    assert_planted_mistake_named,
    assert_solution_passes,
    assert_stubs_fail_cleanly,
    load_solution,
    replaced,
)

from minivision.checks import check_module, lesson_battery

ROOT = Path(__file__).resolve().parents[2]
STUBS = ROOT / "lessons" / "10_evaluation.py"
SOLUTION = Path(__file__).parents[1] / "solutions" / "lesson10_solution.py"
BATTERY = lesson_battery("10")


def _fb(name):
    return next(f for f in BATTERY.functions if f.name == name)


def test_stubs_fail_cleanly():
    assert_stubs_fail_cleanly("10", STUBS, 6)


def test_reference_solution_passes():
    assert_solution_passes("10", 6)


# ----------------------------------------------------------------------------- the references


def _pycocotools_image(det_boxes, det_scores, gt_boxes, gt_iscrowd, iou_threshold):
    """pycocotools' evaluateImg on one image and category: (status per listed detection, IoU)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    anns = [
        {
            "id": k + 1,
            "image_id": 1,
            "category_id": 1,
            "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
            "area": float((b[2] - b[0]) * (b[3] - b[1])),
            "iscrowd": int(c),
        }
        for k, (b, c) in enumerate(zip(np.asarray(gt_boxes).tolist(), gt_iscrowd))
    ]
    gt = COCO()
    gt.dataset = {
        "images": [{"id": 1, "width": 1000, "height": 1000}],
        "annotations": anns,
        "categories": [{"id": 1}],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dets = [
            {
                "image_id": 1,
                "category_id": 1,
                "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                "score": float(s),
            }
            for b, s in zip(np.asarray(det_boxes).tolist(), det_scores)
        ]
        dt = gt.loadRes(dets) if dets else COCO()
        ev = COCOeval(gt, dt, "bbox")
        ev.params.iouThrs = np.array([iou_threshold])
        ev.params.maxDets = [10**6]
        ev.params.areaRng, ev.params.areaRngLbl = [[0, 1e10]], ["all"]
        if not dets:
            return np.zeros(0, np.int64)
        ev.evaluate()
    e = ev.evalImgs[0]
    status = np.zeros(len(dets), np.int64)
    if e is None:
        return status
    listed = np.array(e["dtIds"]) - 1  # loadRes numbers the results 1..N in listed order
    matched = e["dtMatches"][0] > 0
    ignored = e["dtIgnore"][0].astype(bool)
    status[listed] = np.where(ignored, -1, np.where(matched, 1, 0))
    return status


def test_match_reference_equals_pycocotools_on_every_case():
    fb = _fb("match_detections")
    for case in fb.cases:
        expected = _pycocotools_image(*case.args)
        np.testing.assert_array_equal(fb.reference(*case.args), expected, err_msg=case.name)


def test_iou_reference_equals_pycocotools_mask_iou():
    from pycocotools import mask as mask_utils

    fb = _fb("coco_iou")
    for case in fb.cases:
        det, gt, crowd = case.args
        xywh = lambda b: np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1).tolist()  # noqa: E731
        expected = mask_utils.iou(xywh(det), xywh(gt), [int(c) for c in crowd])
        expected = np.asarray(expected, float).reshape(len(det), len(gt))
        np.testing.assert_allclose(
            fb.reference(*case.args), expected, rtol=1e-12, err_msg=case.name
        )


def test_curve_and_ap_references_equal_pycocotools_accumulate():
    """evaluate_ap's reference is coco_evaluate; here it is checked against pycocotools too."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from minivision.checks.lesson10 import _to_coco

    fb = _fb("evaluate_ap")
    for case in fb.cases:
        gt, dt, t = case.args
        coco, results = _to_coco(gt, dt)
        with contextlib.redirect_stdout(io.StringIO()):
            g = COCO()
            g.dataset = coco
            g.createIndex()
            ev = COCOeval(g, g.loadRes(results), "bbox")
            ev.params.iouThrs = np.array([t])
            ev.params.maxDets = [1, 10, 10**6]
            ev.evaluate()
            ev.accumulate()
        expected = float(np.mean(ev.eval["precision"][0, :, 0, 0, -1]))
        assert fb.reference(*case.args) == expected, case.name


# ----------------------------------------------------------------------------- planted mistakes

sol = load_solution("10")


def iou_over_union_for_crowds(det, gt, crowd):
    return sol.coco_iou(det, gt, np.zeros(len(gt), bool))


def iou_plus_one(det, gt, crowd):
    d = np.asarray(det, float) + [0, 0, 1, 1]
    g = np.asarray(gt, float) + [0, 0, 1, 1]
    return sol.coco_iou(d, g, crowd)


def learner_match(
    ascending=False,
    reuse=False,
    strict=False,
    crowd_is_fp=False,
    crowd_as_object=False,
    listed=False,
    first_above=False,
    iou_fn=None,
):
    def match_detections(det_boxes, det_scores, gt_boxes, gt_iscrowd, iou_threshold=0.5):
        crowd = np.asarray(gt_iscrowd, bool)
        if crowd_as_object:
            crowd = np.zeros_like(crowd)
        iou = (iou_fn or sol.coco_iou)(det_boxes, gt_boxes, crowd)
        if listed:
            order = range(len(det_scores))
        elif ascending:
            order = np.argsort(det_scores)
        else:
            order = np.argsort(-np.asarray(det_scores), kind="stable")
        status = np.zeros(len(det_scores), np.int64)
        taken = np.zeros(len(crowd), bool)
        for d in order:
            passes = iou[d] > iou_threshold if strict else iou[d] >= iou_threshold
            free = passes & ~crowd & (~taken if not reuse else True)
            if free.any():
                idx = np.flatnonzero(free)
                g = idx[0] if first_above else idx[::-1][np.argmax(iou[d][idx][::-1])]
                taken[g] = True
                status[d] = 1
            elif (passes & crowd).any() and not crowd_is_fp:
                status[d] = -1
        return status

    return match_detections


def learner_pr(ascending=False, over_detections=False, ignored_as_fp=False, swapped=False):
    def precision_recall(scores, status, num_gt):
        scores, status = np.asarray(scores, float), np.asarray(status)
        if not ignored_as_fp:
            scores, status = scores[status != -1], status[status != -1]
        order = np.argsort(scores) if ascending else np.argsort(-scores, kind="stable")
        tp = np.cumsum(status[order] == 1)
        precision = tp / np.arange(1, len(order) + 1)
        recall = tp / (len(order) if over_detections else num_gt)
        return (recall, precision) if swapped else (precision, recall)

    return precision_recall


def ap_without_envelope(recall, precision, rec_thresholds=None):
    r = np.linspace(0, 1, 101) if rec_thresholds is None else rec_thresholds
    idx = np.searchsorted(recall, r, side="left")
    return float(np.mean([precision[i] if i < len(precision) else 0.0 for i in idx]))


def ap_as_area(recall, precision, rec_thresholds=None):
    return sol.voc_ap(recall, precision, use_07_metric=False)


def ap_side_right(recall, precision, rec_thresholds=None):
    r = np.linspace(0, 1, 101) if rec_thresholds is None else rec_thresholds
    env = np.maximum.accumulate(np.asarray(precision, float)[::-1])[::-1]
    idx = np.searchsorted(recall, r, side="right")
    return float(np.mean([env[i] if i < len(env) else 0.0 for i in idx]))


def ap_reached_only(recall, precision, rec_thresholds=None):
    r = np.linspace(0, 1, 101) if rec_thresholds is None else rec_thresholds
    env = np.maximum.accumulate(np.asarray(precision, float)[::-1])[::-1]
    idx = np.searchsorted(recall, r, side="left")
    vals = [env[i] for i in idx if i < len(env)]
    return float(np.mean(vals)) if vals else 0.0


def voc_without_envelope(recall, precision, use_07_metric=False):
    recall, precision = np.asarray(recall, float), np.asarray(precision, float)
    if use_07_metric:
        total = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            hit = np.flatnonzero(recall >= t)
            total += (precision[hit[0]] if len(hit) else 0.0) / 11
        return total
    r = np.concatenate(([0.0], recall, [1.0]))
    p = np.concatenate(([0.0], precision, [0.0]))
    change = np.flatnonzero(np.diff(r))
    return float(np.sum(np.diff(r)[change] * p[change + 1]))


def voc_without_start(recall, precision, use_07_metric=False):
    if use_07_metric:
        return sol.voc_ap(recall, precision, True)
    r = np.concatenate((recall, [1.0]))
    p = np.maximum.accumulate(np.concatenate((precision, [0.0]))[::-1])[::-1]
    change = np.flatnonzero(np.diff(r))
    return float(np.sum(np.diff(r)[change] * p[change + 1]))


def voc_tenths(recall, precision, use_07_metric=False):
    if not use_07_metric:
        return sol.voc_ap(recall, precision, False)
    recall, precision = np.asarray(recall, float), np.asarray(precision, float)
    return float(
        np.mean(
            [
                precision[recall >= k / 10].max() if (recall >= k / 10).any() else 0.0
                for k in range(11)
            ]
        )
    )


def learner_evaluate(count_crowds=False, per_image=False, ascending=False):
    pr = learner_pr(ascending=ascending)

    def evaluate_ap(gt, dt, iou_threshold=0.5):
        scores, status, num_gt, aps = [], [], 0, []
        for g, d in zip(gt, dt):
            crowd = np.asarray(g["iscrowd"], bool)
            s = sol.match_detections(d["boxes"], d["scores"], g["boxes"], crowd, iou_threshold)
            n = len(crowd) if count_crowds else int((~crowd).sum())
            scores.append(d["scores"])
            status.append(s)
            num_gt += n
            if n:
                p, r = pr(d["scores"], s, n)
                aps.append(sol.average_precision(r, p))
        if per_image:
            return float(np.mean(aps))
        p, r = pr(np.concatenate(scores), np.concatenate(status), num_gt)
        return sol.average_precision(r, p)

    return evaluate_ap


PLANTED = [
    ("coco_iou", iou_over_union_for_crowds, "the crowd IoU divided by the union"),
    ("coco_iou", iou_plus_one, 'the legacy "+1"'),
    ("match_detections", learner_match(ascending=True), "sorting detections by increasing score"),
    (
        "match_detections",
        learner_match(reuse=True),
        "counting a duplicate detection as a true positive",
    ),
    ("match_detections", learner_match(strict=True), '">" instead of ">=" at the threshold'),
    (
        "match_detections",
        learner_match(crowd_is_fp=True),
        "detections on a crowd region counted as false positives",
    ),
    (
        "match_detections",
        learner_match(crowd_as_object=True),
        "a crowd region matched like an ordinary object",
    ),
    (
        "match_detections",
        learner_match(iou_fn=iou_over_union_for_crowds),
        "the crowd IoU divided by the union",
    ),
    ("match_detections", learner_match(listed=True), "detections visited in the listed order"),
    (
        "match_detections",
        learner_match(first_above=True),
        "taking the first object above the threshold",
    ),
    ("precision_recall", learner_pr(ascending=True), "sorting detections by increasing score"),
    (
        "precision_recall",
        learner_pr(over_detections=True),
        "recall divided by the number of detections",
    ),
    (
        "precision_recall",
        learner_pr(ignored_as_fp=True),
        "ignored detections counted as false positives",
    ),
    ("precision_recall", learner_pr(swapped=True), "precision and recall swapped"),
    ("average_precision", ap_without_envelope, "no monotone precision envelope"),
    ("average_precision", ap_as_area, "the area under the curve instead of 101 recall points"),
    ("average_precision", ap_side_right, 'np.searchsorted with side="right"'),
    ("average_precision", ap_reached_only, "unreached recall points left out of the mean"),
    ("voc_ap", voc_without_envelope, "no monotone precision envelope"),
    ("voc_ap", voc_without_start, "the curve not started at recall 0"),
    ("voc_ap", voc_tenths, "exact tenths as the 11 recall points"),
    (
        "evaluate_ap",
        learner_evaluate(count_crowds=True),
        "crowd regions counted as objects to find",
    ),
    ("evaluate_ap", learner_evaluate(per_image=True), "AP averaged per image"),
    ("evaluate_ap", learner_evaluate(ascending=True), "sorting detections by increasing score"),
]


@pytest.mark.parametrize("fn,wrong,mistake", PLANTED, ids=[f"{p[0]}-{p[2]}" for p in PLANTED])
def test_planted_mistake_is_recognised(fn, wrong, mistake):
    assert_planted_mistake_named("10", sol, fn, wrong, mistake)


def test_the_learner_versions_without_mistakes_are_correct():
    report = check_module(
        "10",
        replaced(
            sol,
            match_detections=learner_match(),
            precision_recall=learner_pr(),
            evaluate_ap=learner_evaluate(),
        ),
    )
    assert report.ok, report.text()


@pytest.mark.parametrize("path,code", [(STUBS, 1), (SOLUTION, 0)])
def test_command_line_exit_codes(path, code):
    assert_cli_exit_code("10", path, code)
