"""Lesson 04 exercise: non-maximum suppression.

Fill in each function below with NumPy, then grade your work with

    minivision check 04 lessons/04_nms.py

The checker runs every function on a battery of small cases, compares with the reference
(torchvision's semantics) and, when a case fails, tells you which classic mistake your output
matches. Work through notebooks/04_nms.ipynb first; it builds every function step by step.

Conventions (the same as torchvision's):
* a box is (x1, y1, x2, y2) in continuous pixel coordinates; width = x2 - x1 -- no "+1";
* IoU = intersection / union, union = area_i + area_j - intersection (your lesson 00 box_iou);
* a box is suppressed when its IoU with a kept box is strictly greater than the threshold;
* boxes are visited in decreasing score order; equal scores: the lower index first
  (np.argsort(-scores, kind="stable")).

Loop over the *kept* boxes if you like (NMS is sequential), but compare each kept box with all
the remaining boxes at once. Do not change the input arrays.
"""

from __future__ import annotations

import numpy as np


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression.

    boxes: (N, 4) xyxy, scores: (N,)  ->  int64 indices of the kept boxes, in decreasing score
    order. Repeatedly keep the best remaining box and drop every remaining box whose IoU with
    it is > iou_threshold. No boxes: return an empty array.
    """
    raise NotImplementedError("lesson 04: nms")


def batched_nms(
    boxes: np.ndarray, scores: np.ndarray, idxs: np.ndarray, iou_threshold: float
) -> np.ndarray:
    """NMS within each category: a box only suppresses boxes with the same idxs value.

    boxes: (N, 4), scores: (N,), idxs: (N,) integers  ->  int64 kept indices, all categories
    together, in decreasing score order (equal scores: lower index first).
    """
    raise NotImplementedError("lesson 04: batched_nms")


def soft_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float = 0.3,
    sigma: float = 0.5,
    score_threshold: float = 0.001,
    method: str = "linear",
) -> tuple[np.ndarray, np.ndarray]:
    """Soft-NMS (Bodla et al. 2017): decay the scores of overlapping boxes instead of dropping.

    Repeat: select the box M with the highest *current* score (ties: lower index); stop if that
    score is < score_threshold; else keep M and multiply the score of every remaining box b by
      linear:   1 - IoU(M, b) if IoU(M, b) > iou_threshold, else 1;
      gaussian: exp(-IoU(M, b)**2 / sigma)  (for every box; iou_threshold is not used).
    Returns (keep, new_scores): the int64 indices in selection order and each one's score when
    it was selected.
    """
    raise NotImplementedError("lesson 04: soft_nms")
