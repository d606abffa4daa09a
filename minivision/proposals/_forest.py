"""The union-find forest and the segmented-array scans of the batched Felzenszwalb merge.

:mod:`minivision.proposals._felzenszwalb_batched` decides thousands of edges per NumPy step; this
module holds the building blocks it stands on: :class:`Forest` (union-find over the pixels with
each component's size, threshold ``tau`` and closed flag), :func:`find` (roots by pointer
jumping, with path compression), :func:`connected_components` of a small edge list, and three
scans over an array cut into runs of equal values (:func:`run_segments`,
:func:`exclusive_cumsum`, :func:`count_before_or_at`). Host island (DESIGN.md §2, kind 3).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "BIG",
    "Forest",
    "connected_components",
    "count_before_or_at",
    "exclusive_cumsum",
    "find",
    "run_segments",
]

# "No entry yet" in the scratch arrays that keep a running minimum per node.
BIG = np.iinfo(np.intp).max


def find(parent, x):
    """Roots of the nodes ``x`` by pointer jumping; every node on the way is pointed at its root."""
    r = parent[x]
    up = parent[r]
    path = [x]
    while not np.array_equal(up, r):
        path.append(r)
        r, up = up, parent[up]
    for nodes in path:  # path compression, one level at a time
        parent[nodes] = r
    return r


def run_segments(group):
    """Start index and length of each run of equal values in a grouped array."""
    m = group.shape[0]
    start = np.empty(m, dtype=bool)
    start[0] = True
    np.not_equal(group[1:], group[:-1], out=start[1:])
    sidx = np.flatnonzero(start)
    return sidx, np.diff(np.append(sidx, m))


def exclusive_cumsum(values, sidx, seglen):
    """Per segment: the sum of the values before each position (0 at a segment's start)."""
    total = np.cumsum(values)
    return total - values - np.repeat(total[sidx] - values[sidx], seglen)


def count_before_or_at(flags, sidx, seglen):
    """Per segment: how many flags are set up to and including each position."""
    total = np.cumsum(flags)
    return total - np.repeat(total[sidx] - flags[sidx], seglen)


class Forest:
    """Union-find over the pixels, with each root's size, threshold and closed flag."""

    def __init__(self, n, k):
        self.k = k
        self.parent = np.arange(n, dtype=np.intp)
        self.size = np.ones(n, dtype=np.intp)
        # tau = Int + k / |C| rounded to float32 (kept as float64 for exact comparisons)
        self.tau = np.full(n, float(np.float32(k)))
        # a component whose tau the sweep has passed: it can never merge again
        self.closed = np.zeros(n, dtype=bool)
        self.first = np.full(n, BIG, dtype=np.intp)  # scratch, reset after each use
        self.foreign = np.full(n, BIG, dtype=np.intp)
        self.partner = np.full(n, -1, dtype=np.intp)
        self.head = np.zeros(n, dtype=np.intp)

    def threshold(self, w, size):
        """tau of a component of ``size`` pixels last merged at weight ``w`` (float32)."""
        return (w + self.k / size).astype(np.float32).astype(np.float64)


def connected_components(a, b, m):
    """Connected components of nodes ``0..m-1`` joined by edges ``(a, b)``: min node id each."""
    lab = np.arange(m, dtype=np.intp)
    while a.shape[0]:
        ra, rb = lab[a], lab[b]
        differ = ra != rb
        if not differ.any():
            break
        a, b, ra, rb = a[differ], b[differ], ra[differ], rb[differ]
        np.minimum.at(lab, np.maximum(ra, rb), np.minimum(ra, rb))  # hook roots downwards
        while True:  # pointer jumping until every node points at its root
            up = lab[lab]
            if np.array_equal(up, lab):
                break
            lab = up
    return lab
