"""Lesson 00 exercise: boxes and IoU.

Fill in each function below with NumPy, then grade your work with

    minivision check 00 lessons/00_boxes.py

The checker runs every function on a battery of small cases, compares with the reference
(torchvision's semantics) and, when a case fails, tells you which classic mistake your output
matches. Work through notebooks/00_boxes_and_iou.ipynb first; it derives every formula.

Conventions (the same as torchvision's):
* a box is (x1, y1, x2, y2) in continuous pixel coordinates, x = column, y = row;
* width = x2 - x1, height = y2 - y1 -- no "+1";
* ``boxes`` arrays have shape (N, 4); pairwise functions return (N, M) matrices.

Every function must work on all N boxes at once (no Python loop over boxes) and must not
change its inputs.
"""

from __future__ import annotations

import numpy as np


def box_area(boxes: np.ndarray) -> np.ndarray:
    """Area of each box.

    boxes: (N, 4) xyxy  ->  (N,) areas, (x2 - x1) * (y2 - y1).
    """
    raise NotImplementedError("lesson 00: box_area")


def box_convert(boxes: np.ndarray, in_fmt: str, out_fmt: str) -> np.ndarray:
    """Convert (N, 4) boxes between "xyxy", "xywh" (x1, y1, w, h) and "cxcywh" (cx, cy, w, h).

    Return a new array, even when in_fmt == out_fmt. Hint: convert to xyxy first, then to the
    output format.
    """
    raise NotImplementedError("lesson 00: box_convert")


def box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """Intersection over union of every pair.

    boxes1: (N, 4), boxes2: (M, 4), both xyxy  ->  (N, M) with
    IoU[i, j] = |A_i ∩ B_j| / (|A_i| + |B_j| - |A_i ∩ B_j|).
    Hint: broadcast boxes1[:, None, :] against boxes2[None, :, :].
    """
    raise NotImplementedError("lesson 00: box_iou")


def generalized_box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """Generalized IoU of every pair: IoU - (|C| - union) / |C|, where C is the smallest box
    enclosing both.  (N, 4), (M, 4)  ->  (N, M).
    """
    raise NotImplementedError("lesson 00: generalized_box_iou")


def clip_boxes_to_image(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Clamp x to [0, width] and y to [0, height], where size = (height, width).

    (N, 4)  ->  (N, 4), a new array.
    """
    raise NotImplementedError("lesson 00: clip_boxes_to_image")


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """The tightest box around each mask.

    masks: (N, H, W), non-zero = inside  ->  (N, 4) float boxes (x1, y1, x2, y2) where x1/x2 are
    the first/last column and y1/y2 the first/last row holding a mask pixel (inclusive, as
    torchvision does). An empty mask gives (0, 0, 0, 0).
    """
    raise NotImplementedError("lesson 00: masks_to_boxes")
