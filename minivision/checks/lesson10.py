"""Lesson 10 battery: IoU with crowd regions, COCO matching, precision/recall, AP (COCO, VOC).

The expected values come from minivision: ``voc_ap`` (pinned to the VOC devkit by the tests) and
``coco_evaluate`` (pinned to pycocotools 2.0.11); the per-image pieces (crowd IoU, greedy
matching, the curve, 101-point AP) are short textbook versions of pycocotools' ``computeIoU``,
``evaluateImg`` and ``accumulate`` written here, which the tests hold to pycocotools itself.
The mistakes are the classic ones: sorting detections by increasing score, counting a duplicate
detection as a true positive, ``>`` instead of ``>=`` at the threshold, recall divided by the
number of detections, no monotone precision envelope, crowd regions counted as misses (or their
detections as false positives), and AP averaged per image.
"""

from __future__ import annotations

import numpy as np

from ..eval import coco_evaluate
from ..eval import voc_ap as ref_voc_ap
from ._core import Battery, Case, FunctionBattery, Mistake

REC_THRESHOLDS = np.linspace(0.0, 1.0, 101)

# ----------------------------------------------------------------------------- references


def _inter(det, gt):
    """(D, G) intersection areas of xyxy boxes (no +1)."""
    w = np.minimum(det[:, None, 2], gt[None, :, 2]) - np.maximum(det[:, None, 0], gt[None, :, 0])
    h = np.minimum(det[:, None, 3], gt[None, :, 3]) - np.maximum(det[:, None, 1], gt[None, :, 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def _area(b):
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def _iou(det, gt, iscrowd, crowd="detection"):
    det, gt = np.asarray(det, float).reshape(-1, 4), np.asarray(gt, float).reshape(-1, 4)
    inter = _inter(det, gt)
    union = _area(det)[:, None] + _area(gt)[None, :] - inter
    if crowd == "detection":  # pycocotools: a crowd region's IoU is inter / detection area
        union = np.where(np.asarray(iscrowd, bool)[None, :], _area(det)[:, None], union)
    elif crowd == "plus one":  # every box one pixel wider and taller
        one = np.array([0.0, 0.0, 1.0, 1.0])
        return _iou(det + one, gt + one, iscrowd)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def ref_coco_iou(det_boxes, gt_boxes, gt_iscrowd):
    return _iou(det_boxes, gt_boxes, gt_iscrowd)


def _match(
    order="score", at_least=True, use_once=True, crowd="absorb", crowd_iou="detection", best=True
):
    """pycocotools' greedy matching (``evaluateImg``, one area range, no maxDets) with knobs."""

    def match_detections(det_boxes, det_scores, gt_boxes, gt_iscrowd, iou_threshold=0.5):
        scores = np.asarray(det_scores, float)
        crowd_flags = np.asarray(gt_iscrowd, bool)
        if crowd == "ordinary":
            crowd_flags = np.zeros_like(crowd_flags)
        iou = _iou(det_boxes, gt_boxes, crowd_flags, crowd_iou)
        if order == "score":
            ranked = np.argsort(-scores, kind="stable")
        elif order == "ascending":
            ranked = np.argsort(scores, kind="stable")
        else:
            ranked = np.arange(len(scores))
        gt_order = np.argsort(crowd_flags, kind="stable")  # real objects first, crowds last
        used = np.zeros(len(crowd_flags), bool)
        status = np.zeros(len(scores), np.int64)
        for d in ranked:
            thr, m = min(iou_threshold, 1 - 1e-10), -1
            for g in gt_order:
                if used[g] and not crowd_flags[g]:
                    continue
                if m > -1 and not crowd_flags[m] and crowd_flags[g]:
                    break  # a real object found: crowds come after it
                if crowd == "miss" and crowd_flags[g]:
                    continue
                ok = iou[d, g] >= thr if at_least else iou[d, g] > thr
                if not ok:
                    continue
                m = g
                if not best:
                    break
                thr = iou[d, g]  # a later object must do at least as well (ties: the later one)
            if m == -1:
                continue
            if crowd_flags[m]:
                status[d] = -1
            else:
                status[d] = 1
                used[m] = use_once
        return status

    return match_detections


def _precision_recall(order="score", recall_over="gt", ignored="skip", swap=False):
    def precision_recall(scores, status, num_gt):
        scores, status = np.asarray(scores, float), np.asarray(status)
        if ignored == "skip":
            keep = status != -1
            scores, status = scores[keep], status[keep]
        if order == "score":
            ranked = np.argsort(-scores, kind="stable")
        else:
            ranked = np.argsort(scores, kind="stable")
        tp = np.cumsum(status[ranked] == 1).astype(float)
        fp = np.cumsum(status[ranked] != 1).astype(float)
        precision = tp / np.maximum(tp + fp, 1)
        denominator = num_gt if recall_over == "gt" else max(len(ranked), 1)
        recall = tp / denominator
        return (recall, precision) if swap else (precision, recall)

    return precision_recall


def _average_precision(envelope=True, side="left", unreached="zero", rule="101"):
    def average_precision(recall, precision, rec_thresholds=None):
        rc = np.asarray(recall, float)
        pr = np.array(precision, float)
        points = REC_THRESHOLDS if rec_thresholds is None else np.asarray(rec_thresholds, float)
        if rule == "all":
            return ref_voc_ap(rc, pr, False)
        if envelope:
            pr = np.maximum.accumulate(pr[::-1])[::-1]
        idx = np.searchsorted(rc, points, side=side)
        reached = idx < len(pr)
        q = np.zeros(len(points))
        q[reached] = pr[idx[reached]]
        if unreached == "skip":
            return float(np.mean(q[reached])) if reached.any() else 0.0
        return float(np.mean(q))

    return average_precision


def _voc(variant):
    def voc_ap(recall, precision, use_07_metric=False):
        rec, prec = np.asarray(recall, float), np.asarray(precision, float)
        if variant == "no envelope":
            if use_07_metric:
                ps = [
                    prec[np.argmax(rec >= t)] if np.any(rec >= t) else 0.0
                    for t in np.arange(0.0, 1.1, 0.1)
                ]
                return float(np.sum(np.array(ps) / 11.0))
            mrec = np.concatenate(([0.0], rec, [1.0]))
            mpre = np.concatenate(([0.0], prec, [0.0]))
            i = np.flatnonzero(mrec[1:] != mrec[:-1])
            return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))
        if variant == "tenths" and use_07_metric:
            ps = [np.max(prec[rec >= t]) if np.any(rec >= t) else 0.0 for t in np.arange(11) / 10]
            return float(np.sum(np.array(ps) / 11.0))
        if variant == "no start" and not use_07_metric:
            mrec = np.concatenate((rec, [1.0]))
            mpre = np.maximum.accumulate(np.concatenate((prec, [0.0]))[::-1])[::-1]
            i = np.flatnonzero(mrec[1:] != mrec[:-1])
            return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))
        return ref_voc_ap(rec, prec, use_07_metric)

    return voc_ap


def _to_coco(gt, dt):
    """Per-image dicts (xyxy) -> a COCO ground-truth dict and a result list, one category."""
    images, annotations, results = [], [], []
    for i, (g, d) in enumerate(zip(gt, dt), start=1):
        images.append({"id": i, "width": 1000, "height": 1000})
        for box, crowd in zip(np.asarray(g["boxes"], float).reshape(-1, 4), g["iscrowd"]):
            x1, y1, x2, y2 = box.tolist()
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i,
                    "category_id": 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": int(crowd),
                }
            )
        for box, score in zip(np.asarray(d["boxes"], float).reshape(-1, 4), d["scores"]):
            x1, y1, x2, y2 = box.tolist()
            results.append(
                {
                    "image_id": i,
                    "category_id": 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "score": float(score),
                }
            )
    coco = {"images": images, "annotations": annotations, "categories": [{"id": 1}]}
    return coco, results


def ref_evaluate_ap(gt, dt, iou_threshold=0.5):
    """COCO AP of one category at one IoU threshold: pycocotools' own number."""
    coco, results = _to_coco(gt, dt)
    r = coco_evaluate(
        coco, results, "bbox", iou_thresholds=[iou_threshold], max_dets=(1, 10, 10**6)
    )
    return float(np.mean(r.precision[0, :, 0, 0, -1]))


def _evaluate(crowds="skip", pool=True, order="score"):
    match = _match()
    pr_fn = _precision_recall(order=order)
    ap_fn = _average_precision()

    def evaluate_ap(gt, dt, iou_threshold=0.5):
        per_image = []
        scores, status, num_gt = [], [], 0
        for g, d in zip(gt, dt):
            crowd = np.asarray(g["iscrowd"], bool)
            s = match(d["boxes"], d["scores"], g["boxes"], crowd, iou_threshold)
            n = int(np.sum(~crowd)) if crowds == "skip" else len(crowd)
            scores.append(np.asarray(d["scores"], float))
            status.append(s)
            num_gt += n
            if n:
                precision, recall = pr_fn(d["scores"], s, n)
                per_image.append(ap_fn(recall, precision))
        if not pool:
            return float(np.mean(per_image)) if per_image else 0.0
        precision, recall = pr_fn(np.concatenate(scores), np.concatenate(status), num_gt)
        return ap_fn(recall, precision)

    return evaluate_ap


# ----------------------------------------------------------------------------- inputs

# Three objects A, B, C and a crowd region of "people in the stands"; five detections listed
# out of score order (the notebook's example). D1 (0.9) and D2 (0.8) both fit A (IoU 1 and 0.82):
# D2 is a duplicate. D3 fits B (0.82), D4 fits nothing, D5 fits C loosely (0.62).
OBJECTS = np.array([[0.0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [60, 0, 100, 20]])
CROWD = np.array([False, False, False, True])
FIVE = np.array(
    [
        [21.0, 0, 31, 10],  # D3
        [0.0, 0, 10, 10],  # D1
        [80.0, 40, 90, 50],  # D4
        [1.0, 0, 11, 10],  # D2
        [42.0, 0, 52, 11],  # D5
    ]
)
FIVE_SCORES = np.array([0.7, 0.9, 0.6, 0.8, 0.5])
# Three more on the crowd region: one person inside it, two boxes around the whole crowd.
ON_CROWD = np.array([[65.0, 2, 75, 12], [61.0, 0, 100, 20], [60.0, 1, 99, 20]])
EIGHT = np.concatenate([FIVE, ON_CROWD])
EIGHT_SCORES = np.concatenate([FIVE_SCORES, [0.55, 0.65, 0.45]])
# P and Q overlap; D1 fits both (IoU 0.74 with P, listed first; 0.90 with Q), D2 fits P only
# (0.67; 0.43 with Q): D1 must take Q so that D2 can take P.
TWO_FIT = (
    np.array([[1.5, 0, 11.5, 10], [-2.0, 0, 8, 10]]),
    np.array([0.9, 0.8]),
    np.array([[0.0, 0, 10, 10], [2.0, 0, 12, 10]]),
    np.zeros(2, bool),
)
# IoU exactly 0.5 with the object (and 0.25 with no one else)
AT_THRESHOLD = np.array([[0.0, 0, 10, 5], [20.0, 0, 30, 10]])


def _random_scene(seed, n_gt=8, n_det=30, crowds=1):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 80, (n_gt, 2))
    wh = rng.uniform(8, 30, (n_gt, 2))
    gt = np.round(np.concatenate([xy, xy + wh], axis=1), 2)
    crowd = np.zeros(n_gt, bool)
    crowd[:crowds] = True
    src = gt[rng.integers(0, n_gt, n_det)]
    det = np.round(src + rng.normal(0, 3, (n_det, 4)), 2)
    det = np.concatenate(
        [np.minimum(det[:, :2], det[:, 2:]), np.maximum(det[:, :2], det[:, 2:])], 1
    )
    return det, np.round(rng.random(n_det), 4), gt, crowd


RANDOM = _random_scene(10)
RANDOM_TWO_CROWDS = _random_scene(11, crowds=2)


def _curve(status):
    """Precision and recall of a status list in the listed (score) order, 4 objects."""
    status = np.asarray(status)
    tp = np.cumsum(status == 1)
    return tp / 4, tp / np.arange(1, len(status) + 1)


ZIGZAG_RECALL, ZIGZAG_PRECISION = _curve([1, 0, 0, 1, 1, 0, 1])
SHORT_RECALL, SHORT_PRECISION = _curve([0, 1, 1, 0])  # recall stops at 0.5, exactly
THREE_TENTHS = (np.array([0.1, 0.2, 0.3, 0.3]), np.array([1.0, 1.0, 1.0, 0.75]))


def _images(seed, n=5):
    """``n`` images with 0-5 objects (a fifth of them crowds) and 0-11 detections each."""
    rng = np.random.default_rng(seed)
    gt, dt = [], []
    for i in range(n):
        n_gt, n_det = int(rng.integers(1, 6)), int(rng.integers(0, 12))
        det, scores, boxes, _ = _random_scene(seed * 100 + i, n_gt, n_det, crowds=0)
        if i == 1:  # an image without objects: all its detections are false positives
            boxes = boxes[:0]
        crowd = rng.random(len(boxes)) < 0.25
        crowd[:1] = i == 0  # image 0 starts with a crowd region
        gt.append({"boxes": boxes, "iscrowd": crowd})
        dt.append({"boxes": det, "scores": scores})
    return gt, dt


def _scene_dicts():
    gt = [
        {"boxes": OBJECTS, "iscrowd": CROWD},
        {
            "boxes": np.array([[0.0, 0, 20, 20], [30, 30, 50, 50]]),
            "iscrowd": np.array([False, False]),
        },
        {"boxes": np.zeros((0, 4)), "iscrowd": np.zeros(0, bool)},
    ]
    dt = [
        {"boxes": EIGHT, "scores": EIGHT_SCORES},
        {
            "boxes": np.array([[0.0, 0, 20, 19], [31, 30, 51, 50], [0, 0, 20, 20]]),
            "scores": np.array([0.95, 0.6, 0.55]),
        },
        {"boxes": np.array([[5.0, 5, 15, 15]]), "scores": np.array([0.85])},
    ]
    return gt, dt


SCENE = _scene_dicts()
IMAGES = _images(7)
ONE_IMAGE_WITHOUT_DETECTIONS = (
    SCENE[0][:2],
    [SCENE[1][0], {"boxes": np.zeros((0, 4)), "scores": np.zeros(0)}],
)

# ----------------------------------------------------------------------------- mistakes

ASCENDING = (
    "sorting detections by increasing score",
    'visit the detections from the highest score down: np.argsort(-scores, kind="stable") '
    "(np.argsort(scores) puts the worst detection first, so it claims the object)",
)
DUPLICATE = (
    "counting a duplicate detection as a true positive",
    "an object can be matched once: after a detection claims it, mark it used; a second "
    "detection of the same object is a false positive (that is what NMS is for)",
)
AT_LEAST = (
    '">" instead of ">=" at the threshold',
    "COCO matches when IoU >= threshold (an IoU of exactly 0.5 counts at AP50); PASCAL VOC "
    "is the one that asks for > 0.5",
)
CROWD_FP = (
    "detections on a crowd region counted as false positives",
    "a crowd region (iscrowd=1) is neither to be found nor to be avoided: a detection that "
    "matches no real object but overlaps a crowd (IoU >= threshold) is ignored: status -1",
)
CROWD_ORDINARY = (
    "a crowd region matched like an ordinary object",
    "a crowd region is never used up and never a true positive: every detection that falls on "
    "it is ignored (status -1), and real objects are tried first",
)

BATTERY = Battery(
    lesson="10",
    title="lesson 10, evaluating detectors",
    functions=[
        FunctionBattery(
            "coco_iou",
            ref_coco_iou,
            [
                Case("eight detections against three objects and a crowd", (EIGHT, OBJECTS, CROWD)),
                Case(
                    "a detection inside a crowd region",
                    (np.array([[65.0, 2, 75, 12]]), OBJECTS[3:], CROWD[3:]),
                ),
                Case(
                    "30 random detections, 8 objects, one a crowd",
                    (RANDOM[0], RANDOM[2], RANDOM[3]),
                ),
                Case("no ground truth", (FIVE, np.zeros((0, 4)), np.zeros(0, bool))),
            ],
            [
                Mistake(
                    "the crowd IoU divided by the union",
                    "for a crowd region pycocotools divides the intersection by the *detection's* "
                    "area (a person inside the crowd box has IoU 1 with it), not by the union",
                    lambda d, g, c: _iou(d, g, c, crowd="union"),
                ),
                Mistake(
                    'the legacy "+1"',
                    "COCO boxes are continuous: width = x2 - x1, no +1 (that is PASCAL VOC's rule)",
                    lambda d, g, c: _iou(d, g, c, crowd="plus one"),
                ),
            ],
        ),
        FunctionBattery(
            "match_detections",
            _match(),
            [
                Case(
                    "the five detections by hand (the notebook's example)",
                    (FIVE, FIVE_SCORES, OBJECTS[:3], CROWD[:3], 0.5),
                ),
                Case(
                    "the five detections at IoU 0.85",
                    (FIVE, FIVE_SCORES, OBJECTS[:3], CROWD[:3], 0.85),
                ),
                Case(
                    "the five and three detections on a crowd region",
                    (EIGHT, EIGHT_SCORES, OBJECTS, CROWD, 0.5),
                ),
                Case(
                    "IoU exactly 0.5 at threshold 0.5",
                    (AT_THRESHOLD, np.array([0.9, 0.8]), OBJECTS[:2], CROWD[:2], 0.5),
                ),
                Case("a detection that fits two objects, IoU 0.5", (*TWO_FIT, 0.5)),
                Case("30 random detections, one crowd, IoU 0.5", (*RANDOM, 0.5)),
                Case("30 random detections, one crowd, IoU 0.75", (*RANDOM, 0.75)),
                Case("30 random detections, two crowds, IoU 0.5", (*RANDOM_TWO_CROWDS, 0.5)),
                Case(
                    "no ground truth", (FIVE, FIVE_SCORES, np.zeros((0, 4)), np.zeros(0, bool), 0.5)
                ),
                Case("no detections", (np.zeros((0, 4)), np.zeros(0), OBJECTS, CROWD, 0.5)),
            ],
            [
                Mistake(*ASCENDING, _match(order="ascending")),
                Mistake(*DUPLICATE, _match(use_once=False)),
                Mistake(*AT_LEAST, _match(at_least=False)),
                Mistake(*CROWD_FP, _match(crowd="miss")),
                Mistake(*CROWD_ORDINARY, _match(crowd="ordinary")),
                Mistake(
                    "the crowd IoU divided by the union",
                    "a crowd region's IoU is intersection / detection area (your coco_iou)",
                    _match(crowd_iou="union"),
                ),
                Mistake(
                    "detections visited in the listed order",
                    "sort the detections by decreasing score first: the best detection gets the "
                    "first chance to claim an object",
                    _match(order="listed"),
                ),
                Mistake(
                    "taking the first object above the threshold",
                    "a detection takes the unused object with the *highest* IoU, not the first "
                    "one that passes the threshold",
                    _match(best=False),
                ),
            ],
        ),
        FunctionBattery(
            "precision_recall",
            _precision_recall(),
            [
                Case("the five detections' statuses", (FIVE_SCORES, np.array([1, 1, 0, 0, 1]), 3)),
                Case(
                    "the eight detections' statuses (three ignored)",
                    (EIGHT_SCORES, np.array([1, 1, 0, 0, 1, -1, -1, -1]), 3),
                ),
                Case(
                    "a listed order that is not the score order",
                    (np.array([0.2, 0.9, 0.5, 0.7, 0.1]), np.array([1, 0, 1, 1, 0]), 5),
                ),
                Case("tied scores", (np.array([0.5, 0.5, 0.5, 0.9]), np.array([0, 1, 1, 0]), 2)),
                Case(
                    "ignored detections in the middle",
                    (np.array([0.9, 0.8, 0.7, 0.6, 0.5]), np.array([1, -1, 0, -1, 1]), 4),
                ),
                Case("no detections", (np.zeros(0), np.zeros(0, np.int64), 3)),
            ],
            [
                Mistake(*ASCENDING, _precision_recall(order="ascending")),
                Mistake(
                    "recall divided by the number of detections",
                    "recall is TP / (number of objects to find, num_gt); TP / detections is a "
                    "(final) precision",
                    _precision_recall(recall_over="detections"),
                ),
                Mistake(
                    "ignored detections counted as false positives",
                    "a detection with status -1 (on a crowd region) is left out of the curve "
                    "entirely: it is neither a TP nor an FP",
                    _precision_recall(ignored="count"),
                ),
                Mistake(
                    "precision and recall swapped",
                    "return (precision, recall) in that order",
                    _precision_recall(swap=True),
                ),
            ],
        ),
        FunctionBattery(
            "average_precision",
            _average_precision(),
            [
                Case("a zig-zag curve, 4 objects", (ZIGZAG_RECALL, ZIGZAG_PRECISION)),
                Case("a curve that stops at recall 0.5, exactly", (SHORT_RECALL, SHORT_PRECISION)),
                Case("recall 0.1, 0.2, 0.3, 0.3", THREE_TENTHS),
                Case(
                    "a zig-zag curve, 11 recall points",
                    (ZIGZAG_RECALL, ZIGZAG_PRECISION, np.linspace(0, 1, 11)),
                ),
                Case("an empty curve (no detections)", (np.zeros(0), np.zeros(0))),
            ],
            [
                Mistake(
                    "no monotone precision envelope",
                    "first make precision non-increasing from right to left, "
                    "p[i] = max(p[i:]) (np.maximum.accumulate(p[::-1])[::-1]), then read it at the "
                    "recall points",
                    _average_precision(envelope=False),
                ),
                Mistake(
                    "the area under the curve instead of 101 recall points",
                    "COCO reads the envelope at 101 recall points r = 0, 0.01, ..., 1 and averages "
                    "those 101 values; the all-point area is PASCAL VOC 2010's rule",
                    _average_precision(rule="all"),
                ),
                Mistake(
                    'np.searchsorted with side="right"',
                    "a recall point r takes the first detection whose recall is >= r: "
                    'np.searchsorted(recall, r, side="left")',
                    _average_precision(side="right"),
                ),
                Mistake(
                    "unreached recall points left out of the mean",
                    "a recall point the curve never reaches scores precision 0 and still counts "
                    "in the mean of 101 values",
                    _average_precision(unreached="skip"),
                ),
            ],
        ),
        FunctionBattery(
            "voc_ap",
            ref_voc_ap,
            [
                Case("a zig-zag curve, all points", (ZIGZAG_RECALL, ZIGZAG_PRECISION, False)),
                Case("a zig-zag curve, 11 points", (ZIGZAG_RECALL, ZIGZAG_PRECISION, True)),
                Case(
                    "a curve that stops at recall 0.5, all points",
                    (SHORT_RECALL, SHORT_PRECISION, False),
                ),
                Case(
                    "a curve that stops at recall 0.5, 11 points",
                    (SHORT_RECALL, SHORT_PRECISION, True),
                ),
                Case("recall 0.1, 0.2, 0.3, 0.3, 11 points", (*THREE_TENTHS, True)),
                Case("an empty curve", (np.zeros(0), np.zeros(0), False)),
            ],
            [
                Mistake(
                    "no monotone precision envelope",
                    "make precision non-increasing from right to left (the envelope) before the "
                    "area or the 11-point maximum: p_interp(r) = max over r' >= r of p(r')",
                    _voc("no envelope"),
                ),
                Mistake(
                    "the curve not started at recall 0",
                    "put the sentinels (recall 0, precision 0) before the curve and (1, 0) after it, "
                    "so the first rectangle, from recall 0, is counted",
                    _voc("no start"),
                ),
                Mistake(
                    "exact tenths as the 11 recall points",
                    "the devkit's points are np.arange(0, 1.1, 0.1) (np.linspace(0, 1, 11) gives the "
                    "same), whose '0.3' is 0.30000000000000004, so a recall of exactly 3/10 does "
                    "not reach it; the published VOC2007 numbers use those points, not i / 10",
                    _voc("tenths"),
                ),
            ],
        ),
        FunctionBattery(
            "evaluate_ap",
            ref_evaluate_ap,
            [
                Case("three images by hand, IoU 0.5", (*SCENE, 0.5)),
                Case("three images by hand, IoU 0.75", (*SCENE, 0.75)),
                Case("an image without detections", (*ONE_IMAGE_WITHOUT_DETECTIONS, 0.5)),
                Case("five random images with crowds, IoU 0.5", (*IMAGES, 0.5)),
                Case("five random images with crowds, IoU 0.7", (*IMAGES, 0.7)),
            ],
            [
                Mistake(
                    "crowd regions counted as objects to find",
                    "num_gt counts the real objects only: a crowd region (iscrowd=1) can never be "
                    "found, so counting it lowers recall",
                    _evaluate(crowds="count"),
                ),
                Mistake(
                    "AP averaged per image",
                    "pool the detections of all images, sort them once by score and compute one "
                    "curve; a mean of per-image APs is a different (and unstable) number",
                    _evaluate(pool=False),
                ),
                Mistake(*ASCENDING, _evaluate(order="ascending")),
            ],
        ),
    ],
)
