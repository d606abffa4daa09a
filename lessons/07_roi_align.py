"""Lesson 07 exercise: RoIAlign (Mask R-CNN), forward and backward, and FPN level assignment.

Fill in each function below with NumPy, then grade your work with

    minivision check 07 lessons/07_roi_align.py

Work through notebooks/07_roi_align.ipynb first; it derives every rule.

Conventions (the same as torchvision's ``roi_align``):
* a feature map is ``(N, C, H, W)``; a RoI is ``(batch_index, x1, y1, x2, y2)`` in image
  coordinates (the first column is the image, not a class); x is the column, y the row;
* the box is scaled, ``start = x1 * spatial_scale - offset`` with ``offset = 0.5`` when
  ``aligned`` and 0 otherwise, and **never rounded**;
* with ``aligned=False`` the RoI size is at least 1: ``max(x2 * s - x1 * s, 1)``;
* ``grid = sampling_ratio`` if it is positive, else ``ceil(roi_size / output_size)`` (per RoI
  and per axis); sample ``i`` of bin ``p`` sits at ``start + p * bin + (i + 0.5) * bin / grid``;
* bilinear interpolation at ``(y, x)``: 0 if ``y < -1`` or ``y > H`` (or x likewise);
  otherwise clamp negative coordinates to 0, read the four cells around the point (a point
  at or past the last row/column reads only that row/column) and weight them by
  ``(1 - ly)(1 - lx)``, ``(1 - ly) lx``, ``ly (1 - lx)``, ``ly lx``;
* a bin is the **sum of its samples divided by** ``max(grid_h * grid_w, 1)`` -- samples that
  fell outside the map count in the denominator.

Loops over RoIs and bins are fine here; vectorise the interpolation over points.
"""

from __future__ import annotations

import numpy as np


def bilinear_interpolate(plane: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Value of an (H, W) ``plane`` at the points ``(y, x)`` (same shape), RoIAlign's way.

    Points with ``y < -1``, ``y > H``, ``x < -1`` or ``x > W`` give 0.
    """
    raise NotImplementedError("lesson 07: bilinear_interpolate")


def roi_align(
    input: np.ndarray,
    rois: np.ndarray,
    output_size: tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> np.ndarray:
    """Bilinear RoI pooling: input (N, C, H, W), rois (K, 5)  ->  (K, C, PH, PW)."""
    raise NotImplementedError("lesson 07: roi_align")


def roi_align_backward(
    grad_output: np.ndarray,
    rois: np.ndarray,
    input_shape: tuple[int, int, int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> np.ndarray:
    """Gradient of ``roi_align`` with respect to its input: (K, C, PH, PW) -> input_shape.

    Every sample sends ``grad / count`` to its four cells with the bilinear weights (the
    transpose of the forward pass); contributions to the same cell add up.
    """
    raise NotImplementedError("lesson 07: roi_align_backward")


def fpn_level(boxes: np.ndarray, k_min: int, k_max: int) -> np.ndarray:
    """FPN's pyramid level of each (L, 4) xyxy box, counted from ``k_min``: int array (L,).

    ``k = floor(4 + log2(sqrt(w * h) / 224) + 1e-6)``, clipped to ``[k_min, k_max]``, minus
    ``k_min`` (torchvision's LevelMapper).
    """
    raise NotImplementedError("lesson 07: fpn_level")
