"""Lesson 03 exercise: selective search (Uijlings et al., IJCV 2013).

Fill in each function below with NumPy, then grade your work with

    minivision check 03 lessons/03_selective_search.py

The checker runs every function on small cases (regions of real photographs from
``minivision.felzenszwalb``), compares with minivision's reference and, when a case fails,
tells you which classic mistake your output matches. Work through
notebooks/03_selective_search.ipynb first; it derives everything used here.

Conventions:
* ``labels`` is an (H, W) integer image of region ids 0..n-1 (an over-segmentation);
* a box is ``(x1, y1, x2, y2)`` in pixels with x2 = last column + 1, so its area is
  ``(x2 - x1) * (y2 - y1)``;
* region pairs are (P, 2) integer arrays.
"""

from __future__ import annotations

import numpy as np


def region_neighbours(labels: np.ndarray) -> np.ndarray:
    """Pairs of neighbouring regions: (P, 2) integers, each pair once (any order).

    Two regions are neighbours when a pixel of one touches a pixel of the other,
    horizontally, vertically or diagonally (8-connectivity). Hint: compare ``labels`` with
    itself shifted right, down, down-right and up-right; keep the pairs whose labels differ;
    remove duplicates with ``np.unique(..., axis=0)`` after sorting each pair.
    """
    raise NotImplementedError("lesson 03: region_neighbours")


def colour_histograms(image: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Colour histograms of the n regions: (n, C * 25) float64.

    ``image`` is (H, W, C) with values in [0, 255] (uint8 or float). Channel c of a pixel with
    value v adds 1 to bin ``c * 25 + min(floor(v * 25 / 256), 24)`` of its region's row. Then
    L1-normalise each row (the whole row sums to 1). Hint: one ``np.bincount`` over
    ``labels * (C * 25) + bin`` does every region at once.
    """
    raise NotImplementedError("lesson 03: colour_histograms")


def group_regions(
    hist: np.ndarray, sizes: np.ndarray, boxes: np.ndarray, pairs: np.ndarray
) -> np.ndarray:
    """Hierarchical grouping (the paper's Algorithm 1): (n - 1, 2) integer merges.

    ``hist`` (n, D) L1-normalised colour histograms, ``sizes`` (n,) pixel counts, ``boxes``
    (n, 4) boxes, ``pairs`` (P, 2) neighbouring regions, for regions 0..n-1.
    The similarity of neighbours i and j (computed in this order) is

        s = sum(min(h_i, h_j)) + (1 - (size_i + size_j) / N) + (1 - (area(BB_ij) - size_i - size_j) / N)

    with N the image size (the sum of ``sizes``) and BB_ij the tight box around both boxes.
    Repeat until no pairs are left: take the pair with the largest s (ties: the smallest
    ``(i, j)`` with i < j); record ``(i, j)``; create region t = n, n+1, ... with size
    ``size_i + size_j``, box the union of the boxes and histogram
    ``(size_i h_i + size_j h_j) / (size_i + size_j)``; remove every pair with i or j; and add
    ``(k, t)`` for each former neighbour k of i or j, with s computed for the new region.
    Return the recorded pairs, one row per merge, each row (i, j) with i < j.
    """
    raise NotImplementedError("lesson 03: group_regions")
