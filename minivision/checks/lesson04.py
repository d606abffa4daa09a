"""Lesson 04 battery: greedy NMS, batched NMS and soft-NMS.

The expected values come from minivision.ops.nms (pinned to torchvision and to textbook loops by
the tests). The mistakes are the classic ones: ``>=`` instead of ``>`` at the threshold, the
overlap divided by one box's area instead of the union, the legacy "+1", forgetting to sort
(or sorting ties the wrong way), suppressing with boxes that were themselves suppressed
("Fast NMS"), the coordinate-offset trick of batched NMS, and soft-NMS variants that are not
the paper's algorithm.
"""

from __future__ import annotations

import numpy as np

from ..ops.nms import batched_nms as ref_batched_nms
from ..ops.nms import nms as ref_nms
from ..ops.nms import soft_nms as ref_soft_nms
from ._core import Battery, Case, FunctionBattery, Mistake

# ----------------------------------------------------------------------------- inputs

# Five boxes by hand (the notebook's example), listed out of score order: C, A, E, B, D.
# B overlaps A (IoU 0.54) and C (0.54), C does not overlap A enough (0.25); E overlaps D (0.68).
FIVE = np.array(
    [
        [6.0, 0.0, 16.0, 10.0],  # C
        [0.0, 0.0, 10.0, 10.0],  # A
        [31.0, 6.0, 41.0, 16.0],  # E
        [3.0, 0.0, 13.0, 10.0],  # B
        [30.0, 5.0, 40.0, 15.0],  # D
    ]
)
FIVE_SCORES = np.array([0.7, 0.9, 0.5, 0.8, 0.6])


def _pairs(*pairs):
    """Pairs of boxes, 100 px apart, each pair's first box scored higher: boxes, scores."""
    boxes = np.array([box for k, pair in enumerate(pairs) for box in pair], dtype=float)
    boxes[:, 0::2] += 100.0 * np.repeat(np.arange(len(pairs)), 2)[:, None]
    return boxes, np.linspace(0.9, 0.1, len(boxes))


SHIFTED = ([0, 0, 4, 4], [1, 0, 5, 4])  # IoU 0.6; with the +1, 0.67
EXACT = ([0, 0, 10, 10], [0, 0, 10, 5])  # IoU 0.5 exactly
NEAR = ([0, 0, 50, 50], [0, 0, 50, 24.8])  # IoU 0.496; with the +1, 0.506
SMALL_FIRST = ([2, 2, 6, 6], [0, 0, 10, 10])  # IoU 0.16; 1 over the small box's area
BIG_FIRST = ([0, 0, 10, 10], [2, 2, 6, 6])
PAIRS, PAIRS_SCORES = _pairs(SHIFTED, SMALL_FIRST, BIG_FIRST)
AT_THRESHOLD, AT_THRESHOLD_SCORES = _pairs(EXACT, NEAR, SMALL_FIRST, BIG_FIRST)
TIES = np.array(
    [[0.0, 0.0, 10.0, 10.0], [1.0, 0.0, 11.0, 10.0], [30.0, 0, 40, 10], [31.0, 0, 41, 10]]
)


def _clustered(seed, n):
    rng = np.random.default_rng(seed)
    centre = rng.uniform(0, 100, (4, 2))[rng.integers(0, 4, n)]
    wh = rng.uniform(10, 30, (n, 2))
    boxes = np.concatenate([centre - wh / 2, centre + wh / 2], axis=1)
    return np.round(boxes, 1), np.round(rng.random(n), 3)


RANDOM, RANDOM_SCORES = _clustered(4, 40)
CATS = np.random.default_rng(5).integers(0, 3, 40)
# two boxes at negative coordinates and two small ones, each pair in two categories
NEGATIVE = np.array(
    [[-100.0, -100.0, 0.0, 0.0], [-100.0, -100.0, 0.0, 0.0], [1, 1, 3, 3], [1, 1, 3, 3]]
)

# ----------------------------------------------------------------------------- mistakes


def _overlap(boxes, plus=0.0, divide_by="union"):
    """All pairwise overlaps ``(i, j)`` with ``i`` the kept box, computed one of several ways."""
    x1, y1, x2, y2 = boxes.T
    w = np.maximum(0, np.minimum(x2[:, None], x2) - np.maximum(x1[:, None], x1) + plus)
    h = np.maximum(0, np.minimum(y2[:, None], y2) - np.maximum(y1[:, None], y1) + plus)
    inter = w * h
    area = (x2 - x1 + plus) * (y2 - y1 + plus)
    denominator = {
        "union": area[:, None] + area[None, :] - inter,
        "kept": area[:, None] + 0 * inter,
        "other": area[None, :] + 0 * inter,
        "smaller": np.minimum(area[:, None], area[None, :]),
    }[divide_by]
    return inter / denominator


def _greedy(plus=0.0, divide_by="union", at_least=False, order="stable", fast=False, out="score"):
    """Greedy NMS with one classic mistake switched on."""

    def nms(boxes, scores, iou_threshold):
        n = len(scores)
        if order == "stable":
            ranked = np.argsort(-scores, kind="stable")
        elif order == "reversed":
            ranked = np.argsort(scores, kind="stable")[::-1]  # py_cpu_nms's argsort()[::-1]
        else:
            ranked = np.arange(n)  # forgot to sort
        with np.errstate(all="ignore"):
            iou = _overlap(boxes, plus, divide_by)
            hit = iou >= iou_threshold if at_least else iou > iou_threshold
        removed = np.zeros(n, dtype=bool)
        keep = []
        for a, i in enumerate(ranked):
            if removed[i]:
                continue
            keep.append(i)
            removed[ranked[a + 1 :][hit[i, ranked[a + 1 :]]]] = True
        if fast:  # Fast NMS: every higher-scored box suppresses, kept or not
            later = np.zeros((n, n), dtype=bool)
            later[ranked[:, None], ranked[None, :]] = np.triu(np.ones((n, n), dtype=bool), 1)
            gone = np.any(hit & later, axis=0)
            keep = [i for i in ranked if not gone[i]]
        keep = np.array(keep, dtype=np.int64)
        return np.sort(keep) if out == "index" else keep

    return nms


def _batched_ignoring_categories(boxes, scores, idxs, iou_threshold):
    return ref_nms(boxes, scores, iou_threshold)


def _batched_offset_trick(boxes, scores, idxs, iou_threshold):
    offsets = idxs * (boxes.max() + 1)
    return ref_nms(boxes + offsets[:, None], scores, iou_threshold)


def _batched_grouped(boxes, scores, idxs, iou_threshold):
    keep = [
        np.flatnonzero(idxs == c)[ref_nms(boxes[idxs == c], scores[idxs == c], iou_threshold)]
        for c in np.unique(idxs)
    ]
    return np.concatenate(keep)


def _soft(weight, reselect=True, ties="low"):
    """Soft-NMS with a different decay rule, without re-selecting the best box, or with equal
    scores going to the higher index."""

    def soft_nms(
        boxes, scores, iou_threshold=0.3, sigma=0.5, score_threshold=0.001, method="linear"
    ):
        s = np.array(scores, dtype=float)
        left = list(range(len(s)))
        if not reselect:
            left = sorted(left, key=lambda i: (-s[i], i))
        keep, new = [], []
        with np.errstate(all="ignore"):
            iou = _overlap(boxes)
        while left:
            rank = (lambda i: (s[i], -i)) if ties == "low" else (lambda i: (s[i], i))
            m = max(left, key=rank) if reselect else left[0]
            if not s[m] >= score_threshold:
                if reselect:
                    break
                left.remove(m)
                continue
            keep.append(m)
            new.append(s[m])
            left.remove(m)
            for i in left:
                s[i] *= weight(iou[m, i], iou_threshold, sigma, method)
        return np.array(keep, dtype=np.int64), np.array(new)

    return soft_nms


def _paper_weight(iou, nt, sigma, method):
    if method == "linear":
        return 1 - iou if iou > nt else 1.0
    return 1.0 if np.isnan(iou) else np.exp(-(iou**2) / sigma)


def _hard_weight(iou, nt, sigma, method):
    return 0.0 if iou > nt else 1.0


def _iou_as_weight(iou, nt, sigma, method):
    if method == "linear":
        return iou if iou > nt else 1.0
    return _paper_weight(iou, nt, sigma, method)


def _gaussian_above_threshold(iou, nt, sigma, method):
    if method == "gaussian":
        return np.exp(-(iou**2) / sigma) if iou > nt else 1.0
    return _paper_weight(iou, nt, sigma, method)


AT_LEAST = (
    '">=" instead of ">" at the threshold',
    "a box is suppressed only when its IoU is strictly greater than the threshold; a pair "
    "exactly at the threshold keeps both boxes (torchvision uses >)",
)
BY_AREA = (
    "an IoU of 1 for a box inside another: divide the intersection by the union, "
    "area_i + area_j - intersection, not by one box's area"
)

BATTERY = Battery(
    lesson="04",
    title="lesson 04, non-maximum suppression",
    functions=[
        FunctionBattery(
            "nms",
            ref_nms,
            [
                Case("five boxes by hand (the notebook's example)", (FIVE, FIVE_SCORES, 0.5)),
                Case(
                    "three pairs: shifted, small box first, big box first; threshold 0.62",
                    (PAIRS, PAIRS_SCORES, 0.62),
                ),
                Case(
                    "four pairs, the first with IoU exactly 0.5; threshold 0.5",
                    (AT_THRESHOLD, AT_THRESHOLD_SCORES, 0.5),
                ),
                Case("four boxes with equal scores", (TIES, np.full(4, 0.5), 0.5)),
                Case(
                    "40 random boxes in four clusters, threshold 0.5", (RANDOM, RANDOM_SCORES, 0.5)
                ),
                Case(
                    "40 random boxes in four clusters, threshold 0.3", (RANDOM, RANDOM_SCORES, 0.3)
                ),
                Case("no boxes at all", (np.zeros((0, 4)), np.zeros(0), 0.5)),
            ],
            [
                Mistake(
                    'the legacy "+1"',
                    "boxes here are continuous coordinates: width = x2 - x1, no +1 (the +1 of "
                    "old pixel-index code such as py_cpu_nms inflates the IoU of small boxes)",
                    _greedy(plus=1.0),
                ),
                Mistake(*AT_LEAST, _greedy(at_least=True)),
                Mistake(
                    "overlap divided by the kept box's area", BY_AREA, _greedy(divide_by="kept")
                ),
                Mistake(
                    "overlap divided by the other box's area", BY_AREA, _greedy(divide_by="other")
                ),
                Mistake(
                    "overlap divided by the smaller box's area",
                    BY_AREA,
                    _greedy(divide_by="smaller"),
                ),
                Mistake(
                    "forgetting to sort by score",
                    "visit the boxes in decreasing score order (np.argsort(-scores, "
                    'kind="stable")), not in the order they are listed',
                    _greedy(order="none"),
                ),
                Mistake(
                    "the kept indices in index order",
                    "return the kept indices in the order they were kept, i.e. by decreasing score",
                    _greedy(out="index"),
                ),
                Mistake(
                    "equal scores ranked by the higher index",
                    "scores.argsort()[::-1] puts the *last* of equal scores first; torchvision "
                    'ranks ties by the lower index: np.argsort(-scores, kind="stable")',
                    _greedy(order="reversed"),
                ),
                Mistake(
                    "suppressing with already-suppressed boxes",
                    "a box that has been suppressed must not suppress others (that is 'Fast NMS', "
                    "which drops too much); only kept boxes suppress",
                    _greedy(fast=True),
                ),
            ],
            dtype="int64",
        ),
        FunctionBattery(
            "batched_nms",
            ref_batched_nms,
            [
                Case(
                    "identical boxes of two categories",
                    (
                        FIVE[:2].repeat(2, axis=0),
                        np.array([0.9, 0.8, 0.7, 0.6]),
                        np.array([0, 1, 0, 1]),
                        0.5,
                    ),
                ),
                Case(
                    "the five boxes, two categories",
                    (FIVE, FIVE_SCORES, np.array([1, 0, 1, 1, 0]), 0.5),
                ),
                Case(
                    "identical boxes at negative coordinates, categories 0 and 1 (and 2 and 3)",
                    (NEGATIVE, np.array([0.9, 0.8, 0.7, 0.6]), np.array([0, 1, 2, 3]), 0.5),
                ),
                Case("40 random boxes in three categories", (RANDOM, RANDOM_SCORES, CATS, 0.4)),
            ],
            [
                Mistake(
                    "ignoring the categories",
                    "a box may only suppress boxes of its own category (idxs)",
                    _batched_ignoring_categories,
                ),
                Mistake(
                    "the coordinate-offset trick",
                    "shifting each category by idx * (max + 1) only separates them when no "
                    "coordinate is below 0 (and costs float precision); run NMS per category",
                    _batched_offset_trick,
                ),
                Mistake(
                    "the kept boxes grouped by category",
                    "merge the categories' kept boxes and sort them by decreasing score",
                    _batched_grouped,
                ),
            ],
            dtype="int64",
        ),
        FunctionBattery(
            "soft_nms",
            ref_soft_nms,
            [
                Case(
                    "the five boxes, linear",
                    (FIVE, FIVE_SCORES),
                    dict(iou_threshold=0.3, method="linear"),
                ),
                Case(
                    "the five boxes, Gaussian, sigma 0.5",
                    (FIVE, FIVE_SCORES),
                    dict(iou_threshold=0.3, sigma=0.5, method="gaussian"),
                ),
                Case(
                    "four boxes with equal scores, linear (ties go to the lower index)",
                    (TIES, np.full(4, 0.5)),
                    dict(iou_threshold=0.3, method="linear"),
                ),
                Case(
                    "40 random boxes, linear, score threshold 0.2",
                    (RANDOM, RANDOM_SCORES),
                    dict(iou_threshold=0.4, score_threshold=0.2, method="linear"),
                ),
                Case(
                    "40 random boxes, Gaussian, sigma 0.3, score threshold 0.1",
                    (RANDOM, RANDOM_SCORES),
                    dict(iou_threshold=0.4, sigma=0.3, score_threshold=0.1, method="gaussian"),
                ),
            ],
            [
                Mistake(
                    "hard suppression",
                    "soft-NMS decays a score instead of removing the box: multiply it by 1 - IoU",
                    _soft(_hard_weight),
                ),
                Mistake(
                    "the weight IoU instead of 1 - IoU",
                    "the more a box overlaps the selected one, the more its score must drop: "
                    "weight 1 - IoU",
                    _soft(_iou_as_weight),
                ),
                Mistake(
                    "the Gaussian penalty only above the threshold",
                    "the Gaussian weight exp(-IoU**2 / sigma) applies to every box; N_t is only "
                    "for the linear rule",
                    _soft(_gaussian_above_threshold),
                ),
                Mistake(
                    "no re-selection after decaying",
                    "after each decay pick the box with the highest *current* score; the order "
                    "changes as scores fall",
                    _soft(_paper_weight, reselect=False),
                ),
                Mistake(
                    "equal scores ranked by the higher index",
                    "of boxes with equal current scores select the one with the lower index "
                    "first (np.argmax returns the first maximum; torchvision's sort is stable)",
                    _soft(_paper_weight, ties="high"),
                ),
            ],
            dtype=("int64", None),
        ),
    ],
)
