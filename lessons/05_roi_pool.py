"""Lesson 05 exercise: RoI pooling (Fast R-CNN), forward and backward.

Fill in each function below with NumPy, then grade your work with

    minivision check 05 lessons/05_roi_pool.py

The checker runs every function on a battery of small cases, compares with the reference
(torchvision's semantics) and, when a case fails, tells you which classic mistake your output
matches. Work through notebooks/05_roi_pooling.ipynb first; it derives every rule.

Conventions (the same as torchvision's ``roi_pool``):
* a feature map is ``(N, C, H, W)``; a RoI is a row ``(batch_index, x1, y1, x2, y2)`` of a
  ``(K, 5)`` array, in *image* coordinates -- the first column says which image, it is not a
  class label; x is the column, y the row;
* ``spatial_scale`` maps image coordinates onto the map (1/16 for a stride-16 backbone);
* the scaled corners are **rounded half away from zero** (0.5 -> 1, -0.5 -> -1, like C's
  ``round``; NumPy's ``np.round`` rounds halves to even, which is not the same);
* the RoI covers cells ``x1 .. x2`` *inclusive*: width ``max(x2 - x1 + 1, 1)``;
* bin ``p`` of ``P`` spans cells ``floor(p * size / P)`` to ``ceil((p + 1) * size / P)``
  (exclusive) after the RoI's first cell, clipped to the map; an empty bin gives 0;
* ties go to the first element in row-major order.

Loops over RoIs and bins are fine here: get the rules right first (the notebook shows how
minivision removes the loops).
"""

from __future__ import annotations

import numpy as np


def roi_bins(
    rois: np.ndarray, output_size: tuple[int, int], spatial_scale: float, height: int, width: int
):
    """The cells of every bin: where RoI pooling quantises.

    rois: (K, 5)  ->  an int array of shape (K, PH, PW, 4) holding, for bin ``(ph, pw)`` of
    each RoI, ``(hstart, hend, wstart, wend)``: its first row, one-past-last row, first column
    and one-past-last column, already clipped to ``[0, height]`` / ``[0, width]``. A bin is
    empty when ``hend <= hstart`` or ``wend <= wstart``.
    """
    raise NotImplementedError("lesson 05: roi_bins")


def roi_pool(
    input: np.ndarray, rois: np.ndarray, output_size: tuple[int, int], spatial_scale: float = 1.0
):
    """Max-pool every RoI into ``output_size = (PH, PW)`` bins.

    input: (N, C, H, W), rois: (K, 5)  ->  (K, C, PH, PW). Empty bins give 0.
    """
    raise NotImplementedError("lesson 05: roi_pool")


def roi_pool_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    rois: np.ndarray,
    output_size: tuple[int, int],
    spatial_scale: float = 1.0,
):
    """Gradient of ``roi_pool`` with respect to ``input``: (K, C, PH, PW) -> (N, C, H, W).

    Each output gradient goes, whole, to the input element that won its bin's max (the first
    one in row-major order on a tie); contributions to the same element add up.
    """
    raise NotImplementedError("lesson 05: roi_pool_backward")
