"""The graph and the merge step of Felzenszwalb–Huttenlocher segmentation, the textbook way.

Everything here runs on the host with NumPy (DESIGN.md §2, kind 3: *host island*):
:func:`minivision.proposals.felzenszwalb.felzenszwalb` computes the edge weights on the input's backend,
makes one ``to_numpy`` copy of them, calls :func:`minivision.proposals._felzenszwalb_batched.segment_grid`, and makes one ``from_numpy``
copy of the labels back.

The algorithm (Felzenszwalb & Huttenlocher, IJCV 2004, as scikit-image 0.26 implements it)
-----------------------------------------------------------------------------------------
1. Sort the edges by weight. Ties are broken by the edge's index (a *stable* sort), so the
   result does not depend on the sorting algorithm; scikit-image calls NumPy's default
   ``argsort``, whose order among equal weights depends on the CPU and NumPy version.
2. **Merge pass** (Kruskal with a threshold): visit the edges in order; an edge joining two
   different components ``A`` and ``B`` merges them iff ``w < min(tau(A), tau(B))`` with
   ``tau(C) = Int(C) + k / |C|``, where ``Int(C)`` is the weight of the edge that last merged
   ``C`` (0 for a single pixel). ``tau`` is rounded to float32, as scikit-image stores it.
3. **min_size pass**: visit the same sorted edges again and merge every edge whose two different
   components include one with fewer than ``min_size`` pixels.
4. Number the components 0, 1, ... in the order in which they first appear in a raster scan.

:func:`merge_sequential` is that textbook loop, one edge at a time. :func:`merge_batched`
(in :mod:`minivision.proposals._felzenszwalb_batched`, the machinery beside this file) gives the
identical result with vectorised NumPy steps over many edges at once; why it is exact is
explained in its docstring and in lesson 02. Host island (DESIGN.md §2, kind 3).
"""

from __future__ import annotations

import numpy as np

__all__ = ["grid_edges", "edge_order", "merge_sequential", "labels_by_first_appearance"]

_BIG = np.iinfo(np.intp).max


# ----------------------------------------------------------------------------- the graph


def grid_edges(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The 8-connected pixel graph of an ``(height, width)`` image, each edge once.

    Returns two intp arrays ``(u, v)`` of flat pixel indices ``y * width + x``, in
    scikit-image's order: all horizontal pairs (right), then vertical (down), then the
    down-right diagonals, then the up-right diagonals, each block in raster order. Edge ``i``
    joins pixels ``u[i]`` and ``v[i]``; its weight is entry ``i`` of
    :func:`minivision.proposals.felzenszwalb.edge_weights`.
    """
    idx = np.arange(height * width, dtype=np.intp).reshape(height, width)
    u = np.concatenate(
        [
            idx[:, 1:].ravel(),  # right: (y, x+1) - (y, x)
            idx[1:, :].ravel(),  # down: (y+1, x) - (y, x)
            idx[1:, 1:].ravel(),  # down-right: (y+1, x+1) - (y, x)
            idx[:-1, 1:].ravel(),  # up-right: (y, x+1) - (y+1, x)
        ]
    )
    v = np.concatenate(
        [idx[:, :-1].ravel(), idx[:-1, :].ravel(), idx[:-1, :-1].ravel(), idx[1:, :-1].ravel()]
    )
    return u, v


def edge_order(weights: np.ndarray) -> np.ndarray:
    """Indices that sort ``weights`` ascending, ties in index order (a stable argsort)."""
    return np.argsort(weights, kind="stable")


def labels_by_first_appearance(root: np.ndarray) -> np.ndarray:
    """Renumber component ids 0, 1, ... in the order each first appears in ``root``.

    ``root`` (N,) holds one id per pixel (any id in ``[0, N)``); pixel order is raster order,
    so this is scikit-image's numbering. O(N), no sort.
    """
    n = root.shape[0]
    first = np.full(n, _BIG, dtype=np.intp)
    np.minimum.at(first, root, np.arange(n, dtype=np.intp))
    is_first = np.zeros(n, dtype=bool)
    is_first[first[root]] = True  # the first pixel of each component
    rank = np.cumsum(is_first) - 1  # (N,) label of the component whose first pixel is i
    return rank[first[root]].astype(np.int64)


# ----------------------------------------------------------------------------- textbook


def _float32(x: float) -> float:
    return float(np.float32(x))


def merge_sequential(u, v, weights, num_nodes: int, k: float, min_size: int) -> np.ndarray:
    """The textbook merge: one edge at a time, union-find with path compression.

    Parameters
    ----------
    u, v : int arrays of shape (E,)
        The two nodes of each edge.
    weights : float array of shape (E,)
        Edge weights (float64 for scikit-image's results).
    num_nodes : int
        Number of nodes (pixels) N.
    k : float
        The paper's k (``scale / 255`` in scikit-image's units).
    min_size : int
        Components smaller than this are merged into a neighbour afterwards.

    Returns
    -------
    int64 array of shape (N,)
        Labels 0, 1, ... numbered by first appearance.

    Notes
    -----
    Slow (a Python loop over every edge: seconds for a 512 x 512 image), and kept as the
    definition that :func:`merge_batched` is tested against. Host island.
    """
    order = edge_order(np.asarray(weights))
    uu = np.asarray(u)[order].tolist()
    vv = np.asarray(v)[order].tolist()
    ww = np.asarray(weights, dtype=np.float64)[order].tolist()
    parent = list(range(num_nodes))
    size = [1] * num_nodes
    internal = [0.0] * num_nodes  # Int(C): weight of the edge that last merged C

    def find(x):
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    def union(a, b):
        a, b = min(a, b), max(a, b)  # scikit-image keeps the smaller index as the root
        parent[b] = a
        size[a] += size[b]
        return a

    for a, b, w in zip(uu, vv, ww):
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        tau_a = _float32(internal[ra] + k / size[ra])
        tau_b = _float32(internal[rb] + k / size[rb])
        if w < min(tau_a, tau_b):
            internal[union(ra, rb)] = w
    for a, b in zip(uu, vv):
        ra, rb = find(a), find(b)
        if ra != rb and (size[ra] < min_size or size[rb] < min_size):
            union(ra, rb)
    return labels_by_first_appearance(np.array([find(x) for x in range(num_nodes)], np.intp))
