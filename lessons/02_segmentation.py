"""Lesson 02 exercise: graph-based image segmentation (Felzenszwalb & Huttenlocher, 2004).

Fill in each function below with NumPy (and scipy.ndimage for the smoothing), then grade your
work with

    minivision check 02 lessons/02_segmentation.py

The checker runs every function on small cases, compares with the reference (scikit-image's
``felzenszwalb``, which minivision reproduces exactly) and, when a case fails, tells you which
classic mistake your output matches. Segmentations are compared as *partitions*: your labels
may be numbered differently, as long as they split the pixels the same way. Work through
notebooks/02_graph_segmentation.ipynb first; it derives everything used here.

Conventions (scikit-image's):
* pixel (y, x) of an (H, W) image is node ``y * W + x``;
* an edge list is an (E, 2) integer array of node pairs, each undirected edge once;
* the paper's k is ``scale / 255``, because the image is scaled to [0, 1] first.

A plain Python loop over the sorted edges is fine for ``segment_graph``: the checker's graphs
have a few thousand edges.
"""

from __future__ import annotations

import numpy as np


def grid_edges(height: int, width: int) -> np.ndarray:
    """The 8-connected pixel graph: (E, 2) pairs of node ids, each neighbour pair once.

    Every pixel is joined to its right, down, down-right and up-right neighbour (when they
    exist); together these give each pixel all 8 neighbours. Order the edges as scikit-image
    does -- all right pairs, then down, then down-right, then up-right, each in raster order --
    so that your ``edge_weights`` below can use the same order.
    Hint: ``idx = np.arange(height * width).reshape(height, width)``; the right pairs are
    ``idx[:, :-1]`` with ``idx[:, 1:]``.
    """
    raise NotImplementedError("lesson 02: grid_edges")


def edge_weights(image: np.ndarray, sigma: float) -> np.ndarray:
    """Edge weights of ``grid_edges(H, W)``, in that order: (E,) float64.

    1. Convert the image to float64: an unsigned integer image is scaled to [0, 1] with
       ``x * (1 / max)`` (uint8: ``x * (1 / 255)``); a float image is used as it is.
    2. If ``sigma > 0``, smooth each channel on its own:
       ``scipy.ndimage.gaussian_filter(img, (sigma, sigma, 0), mode="reflect")`` for an
       (H, W, C) image (``(sigma, sigma)`` for a grey (H, W) one).
    3. The weight of edge (p, q) is the Euclidean distance between the two pixels' colours,
       ``sqrt(sum over channels of (I[p] - I[q]) ** 2)``.
    """
    raise NotImplementedError("lesson 02: edge_weights")


def segment_graph(
    num_nodes: int, edges: np.ndarray, weights: np.ndarray, k: float, min_size: int
) -> np.ndarray:
    """Felzenszwalb–Huttenlocher merging of a weighted graph: (num_nodes,) integer labels.

    1. Sort the edges by weight, ties in their given order (``np.argsort(weights,
       kind="stable")``).
    2. Start with every node alone: size 1 and internal difference ``Int = 0``.
    3. Visit the edges in that order. An edge joining two different components A and B
       merges them if ``w < min(Int(A) + k / |A|, Int(B) + k / |B|)`` -- a strict ``<``, and
       each threshold rounded to float32 as scikit-image stores it:
       ``float(np.float32(Int + k / size))``. The merged component has size ``|A| + |B|``
       and ``Int = w``.
    4. Then visit the same sorted edges again and merge every edge whose two different
       components include one with fewer than ``min_size`` nodes (update the sizes).
    5. Return one label per node; any numbering works.

    Keep a union-find forest (``parent`` list and a ``find`` with path compression).
    """
    raise NotImplementedError("lesson 02: segment_graph")


def felzenszwalb(
    image: np.ndarray, scale: float = 1, sigma: float = 0.8, min_size: int = 20
) -> np.ndarray:
    """The whole segmentation of an (H, W, C) or grey (H, W) image: (H, W) integer labels.

    ``grid_edges``, ``edge_weights`` and ``segment_graph`` with ``k = scale / 255``, then the
    labels reshaped to the image. This is ``skimage.segmentation.felzenszwalb(image, scale,
    sigma, min_size)``.
    """
    raise NotImplementedError("lesson 02: felzenszwalb")
