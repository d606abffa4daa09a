"""Lesson 10 exercise: how good is a detector? COCO matching, precision/recall and AP.

Fill in each function below with NumPy, then grade your work with

    minivision check 10 lessons/10_evaluation.py

The checker runs every function on a battery of small cases, compares with the reference
(pycocotools' and the PASCAL VOC devkit's rules) and, when a case fails, tells you which classic
mistake your output matches. Work through notebooks/10_evaluation.ipynb first; it builds every
function step by step.

Conventions:
* a box is (x1, y1, x2, y2) in continuous pixel coordinates; width = x2 - x1 -- no "+1";
* detections are visited in decreasing score order; equal scores keep their listed order
  (np.argsort(-scores, kind="stable"));
* COCO matches when IoU >= the threshold; a ground-truth object is matched at most once;
* a crowd region (iscrowd = True) is a box around many objects that were not outlined one by
  one: it is never to be found (it does not count among the objects), and a detection on it is
  ignored (neither a true nor a false positive).

Do not change the input arrays.
"""

from __future__ import annotations

import numpy as np


def coco_iou(det_boxes: np.ndarray, gt_boxes: np.ndarray, gt_iscrowd: np.ndarray) -> np.ndarray:
    """COCO's IoU of every detection with every ground-truth box.

    det_boxes: (D, 4), gt_boxes: (G, 4), gt_iscrowd: (G,) bool  ->  (D, G) float.
    An ordinary object: intersection / union. A crowd region: intersection / the *detection's*
    area (a detection inside the crowd box has IoU 1 with it). A zero denominator gives 0.
    """
    raise NotImplementedError("lesson 10: coco_iou")


def match_detections(
    det_boxes: np.ndarray,
    det_scores: np.ndarray,
    gt_boxes: np.ndarray,
    gt_iscrowd: np.ndarray,
    iou_threshold: float = 0.5,
) -> np.ndarray:
    """Greedy COCO matching of one image's detections (one category) to its ground truth.

    Visit the detections by decreasing score. Each takes, among the objects not yet matched,
    the one with the highest IoU >= iou_threshold, and becomes a true positive; if there is
    none, a crowd region with IoU >= iou_threshold absorbs it (crowds are never used up); else
    it is a false positive. Real objects are always tried before crowd regions. (Two objects with
    exactly the same IoU: pycocotools takes the one listed later.)

    Returns an int64 array of shape (D,), in the *listed* order of the detections:
    1 = true positive, 0 = false positive, -1 = ignored (on a crowd region).
    """
    raise NotImplementedError("lesson 10: match_detections")


def precision_recall(
    scores: np.ndarray, status: np.ndarray, num_gt: int
) -> tuple[np.ndarray, np.ndarray]:
    """The precision-recall curve of a set of detections.

    scores: (D,), status: (D,) as match_detections returns it (pooled over images),
    num_gt: the number of objects to find (crowd regions excluded)  ->  (precision, recall),
    two float arrays with one entry per counted detection (status -1 is left out) in decreasing
    score order: after the k-th detection, precision = TP / k and recall = TP / num_gt.
    """
    raise NotImplementedError("lesson 10: precision_recall")


def average_precision(
    recall: np.ndarray, precision: np.ndarray, rec_thresholds: np.ndarray | None = None
) -> float:
    """COCO's interpolated AP: the mean of the precision envelope at the recall thresholds.

    rec_thresholds defaults to np.linspace(0, 1, 101). The envelope: precision made
    non-increasing from right to left (p[i] = max(p[i:])). Each threshold r reads the envelope
    at the first detection whose recall is >= r (np.searchsorted(recall, r, side="left")); a
    threshold the curve never reaches reads 0. AP is the mean over all thresholds.
    """
    raise NotImplementedError("lesson 10: average_precision")


def voc_ap(recall: np.ndarray, precision: np.ndarray, use_07_metric: bool = False) -> float:
    """PASCAL VOC's AP of a precision-recall curve.

    use_07_metric=True (VOC2007): the mean over t in np.arange(0, 1.1, 0.1) (11 values, exactly
    those) of the highest precision at recall >= t (0 if no point reaches t).
    use_07_metric=False (VOC2010+): add the points (recall 0, precision 0) before the curve and
    (1, 0) after it, take the precision envelope, and sum (change of recall) x (envelope
    precision) over the points where recall changes.
    """
    raise NotImplementedError("lesson 10: voc_ap")


def evaluate_ap(gt: list[dict], dt: list[dict], iou_threshold: float = 0.5) -> float:
    """COCO AP of one category at one IoU threshold over a set of images.

    gt: one dict per image, {"boxes": (G, 4), "iscrowd": (G,) bool};
    dt: one dict per image (the same images), {"boxes": (D, 4), "scores": (D,)}.
    Match each image with match_detections, pool every image's detections (image after image,
    in their listed order), build one curve with precision_recall and return its
    average_precision (101 points).
    """
    raise NotImplementedError("lesson 10: evaluate_ap")
