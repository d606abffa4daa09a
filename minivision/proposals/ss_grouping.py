"""Hierarchical grouping of selective search, and its ranking: a NumPy host island.

Everything here runs on the host with NumPy (DESIGN.md §2, kind 3: *host island*).
:func:`minivision.proposals.selective_search.selective_search` makes one ``to_numpy`` copy of the image,
calls :func:`proposals_host` (the features it groups by are in
:mod:`minivision.proposals.ss_features`), and makes one ``from_numpy`` copy of the boxes back.

The algorithm (Uijlings et al., IJCV 2013, §3)
----------------------------------------------
1. Initial regions ``R = {r_1 .. r_n}``: a Felzenszwalb–Huttenlocher over-segmentation
   (:func:`minivision.felzenszwalb`) of the image in one colour space.
2. Neighbours: two regions are neighbours iff two of their pixels are 8-adjacent
   (:func:`region_neighbours`) -- pixel adjacency, not bounding-box overlap.
3. Per region, an L1-normalised colour histogram (25 bins per channel) and an L1-normalised
   texture histogram (Gaussian derivatives, sigma = 1, in 8 orientations, 10 bins per
   orientation per channel). Both are computed for all regions at once with ``bincount``.
4. Similarity of neighbours ``r_i, r_j`` (each term in [0, 1]; a strategy sums a subset)::

       s_colour  = sum_k min(c_i^k, c_j^k)                  (histogram intersection)
       s_texture = sum_k min(t_i^k, t_j^k)
       s_size    = 1 - (size(r_i) + size(r_j)) / size(im)
       s_fill    = 1 - (size(BB_ij) - size(r_i) - size(r_j)) / size(im)

5. Greedy grouping: merge the most similar pair ``r_t = r_i ∪ r_j``; its histograms are the
   size-weighted means ``(size_i h_i + size_j h_j) / (size_i + size_j)``; remove the
   similarities involving ``r_i`` or ``r_j`` and compute only those of ``r_t`` with its
   neighbours. A heap holds the similarities; entries of merged regions are dropped lazily
   when they reach the top, so no step rescans all pairs. Stop when one region is left.
6. Ranking (paper §3.3 and the official code): in each hierarchy the region created last (the
   whole image) gets position 1, the one before it 2, ..., the initial regions the largest
   positions; each region's key is ``position * RND`` with RND uniform in [0, 1) from a seeded
   generator. All hierarchies are pooled, sorted by ascending key, and duplicate boxes are
   removed (the first, best ranked copy is kept).
"""

from __future__ import annotations

import heapq
from typing import NamedTuple

import numpy as np

from ._felzenszwalb_batched import segment_grid
from ._workers import map_split
from .felzenszwalb import edge_weights
from .ss_features import (
    COLOUR_BINS,
    TEXTURE_BINS,
    colour_codes,
    convert_colour,
    histograms,
    image_texture_codes,
    region_boxes,
    region_neighbours,
    similarity_colour,
    similarity_fill,
    similarity_size,
)

__all__ = ["Hierarchy", "group", "rank_boxes", "hierarchies_of", "proposals_host"]


class Hierarchy(NamedTuple):
    """One hierarchical grouping. Regions 0..n-1 are the initial ones; region n + m is merge m.

    merges : (n-1, 2) intp -- the two regions joined by each merge, in order
    boxes : (2n-1, 4) float64 xyxy -- box of every region, in creation order
    sizes : (2n-1,) float64 -- pixel count of every region
    """

    merges: np.ndarray
    boxes: np.ndarray
    sizes: np.ndarray


def _pair_similarity(feat, sizes, boxes, i, j, use_size, use_fill, image_size):
    s = similarity_colour(feat[i], feat[j]) if feat.shape[1] else np.zeros(len(i))
    if use_size:
        s = s + similarity_size(sizes[i], sizes[j], image_size)
    if use_fill:
        s = s + similarity_fill(boxes[i], boxes[j], sizes[i], sizes[j], image_size)
    return s


def group(colour_hist, texture_hist, boxes, sizes, pairs, strategy="CTSF"):
    """Greedy hierarchical grouping of one over-segmentation (paper Algorithm 1).

    Parameters
    ----------
    colour_hist, texture_hist : (n, Dc), (n, Dt) float64 -- L1-normalised histograms
    boxes : (n, 4) float64 xyxy; sizes : (n,) float64 pixel counts
    pairs : (P, 2) intp -- neighbouring regions (:func:`region_neighbours`)
    strategy : str -- which similarities to add, letters from ``"CTSF"``

    Returns
    -------
    Hierarchy. If the neighbour graph is disconnected the grouping stops when no neighbours
    are left (never the case for the regions of one image).

    Notes
    -----
    Colour and texture are folded into one feature vector: ``min(a x, a y) = a min(x, y)``, so
    one intersection of ``[c, t]`` gives ``s_colour + s_texture``. A merge pushes only the
    similarities of the new region with its neighbours; stale heap entries (a side already
    merged) are skipped when popped. Ties go to the pair with the smaller region ids.
    """
    letters = set(strategy)
    if not letters or not letters <= set("CTSF"):
        raise ValueError(f"strategy must be letters from 'CTSF', got {strategy!r}")
    n = len(sizes)
    parts = []
    if "C" in letters:
        parts.append(colour_hist)
    if "T" in letters:
        parts.append(texture_hist)
    d = sum(p.shape[1] for p in parts)
    total = 2 * n - 1 if n else 0
    feat = np.zeros((max(total, 1), d))
    if parts:
        feat[:n] = np.concatenate(parts, axis=1)
    size = np.zeros(max(total, 1))
    size[:n] = sizes
    box = np.zeros((max(total, 1), 4))
    box[:n] = boxes
    image_size = float(np.sum(sizes))
    use_size, use_fill = "S" in letters, "F" in letters

    nbrs = [set() for _ in range(n)]
    for a, b in pairs.tolist():
        nbrs[a].add(b)
        nbrs[b].add(a)
    sims = _pair_similarity(
        feat, size, box, pairs[:, 0], pairs[:, 1], use_size, use_fill, image_size
    )
    heap = list(zip((-sims).tolist(), pairs[:, 0].tolist(), pairs[:, 1].tolist()))
    heapq.heapify(heap)
    alive = bytearray(max(total, 1))  # a Python buffer: cheap to test one entry at a time
    alive[:n] = b"\x01" * n
    merges = []
    t = n
    while heap:
        _, i, j = heapq.heappop(heap)
        if not (alive[i] and alive[j]):
            continue
        alive[i] = alive[j] = 0
        si, sj = size[i], size[j]
        size[t] = si + sj
        if d:
            feat[t] = (si * feat[i] + sj * feat[j]) / size[t]
        box[t, :2] = np.minimum(box[i, :2], box[j, :2])
        box[t, 2:] = np.maximum(box[i, 2:], box[j, 2:])
        around = (nbrs[i] | nbrs[j]) - {i, j}
        nbrs[i] = nbrs[j] = None
        for k in around:
            nk = nbrs[k]
            nk.discard(i)
            nk.discard(j)
            nk.add(t)
        nbrs.append(around)
        alive[t] = 1
        merges.append((i, j))
        if around:
            ks = np.fromiter(around, dtype=np.intp, count=len(around))
            # j = t, one index: feat[t], size[t], box[t] broadcast against the neighbours
            s = _pair_similarity(feat, size, box, ks, t, use_size, use_fill, image_size)
            for sk, k in zip((-s).tolist(), ks.tolist()):
                heapq.heappush(heap, (sk, k, t))
        t += 1
    m = np.asarray(merges, dtype=np.intp).reshape(-1, 2)
    return Hierarchy(m, box[:t].copy(), size[:t].copy())


def rank_boxes(hierarchies, rng):
    """Pool the boxes of several hierarchies, ranked as the paper does, without duplicates.

    In each hierarchy, region ``r`` of ``T`` (creation order) has position ``T - r``: the
    whole image is 1, the initial regions come last. Its key is ``position * RND``; boxes
    are sorted by ascending key (stable), then exact duplicates are dropped keeping the first.
    Returns (N, 4) float64 boxes.
    """
    keys, boxes = [], []
    for h in hierarchies:
        t = len(h.boxes)
        position = np.arange(t, 0, -1, dtype=np.float64)
        keys.append(position * rng.random(t))
        boxes.append(h.boxes)
    if not boxes:
        return np.zeros((0, 4))
    keys = np.concatenate(keys)
    boxes = np.concatenate(boxes)
    order = np.argsort(keys, kind="stable")
    boxes = boxes[order]
    _, first = np.unique(boxes, axis=0, return_index=True)
    return boxes[np.sort(first)]



def hierarchies_of(rgb, space, ks, strategies, sigma, min_size):
    """All hierarchies of one colour space: one F&H per ``k``, one grouping per strategy."""
    img = convert_colour(rgb, space)
    img_u8 = np.rint(img).astype(np.uint8)
    ccodes = colour_codes(img)
    tcodes = image_texture_codes(img)
    cw, tw = img.shape[-1] * COLOUR_BINS, tcodes.shape[1] * TEXTURE_BINS
    # felzenszwalb(img_u8, k, sigma, min_size) is these edge weights + segment_grid; the
    # weights do not depend on k, so every k of this colour space shares them
    weights = edge_weights(img_u8, sigma)
    height, width = img_u8.shape[:2]
    out = []
    for k in ks:
        ms = int(k) if min_size is None else min_size
        labels = segment_grid(weights, height, width, k, ms)
        n = int(labels.max()) + 1
        ch = histograms(ccodes, labels, n, cw)
        th = histograms(tcodes, labels, n, tw)
        boxes, sizes = region_boxes(labels, n)
        pairs = region_neighbours(labels)
        out.extend(group(ch, th, boxes, sizes, pairs, strategy) for strategy in strategies)
    return out




def _space_job(rgb_u8, space, ks, strategies, sigma, min_size):
    """:func:`hierarchies_of` for a worker process (the image travels as 8 bits, 1/8 the bytes)."""
    return hierarchies_of(rgb_u8.astype(np.float64), space, ks, strategies, sigma, min_size)


def proposals_host(rgb, spaces, ks, strategies, sigma, min_size, seed, workers=None):
    """Selective search on a host (H, W, 3) float64 RGB image in [0, 255].

    For every colour space and every ``k``: one F&H segmentation of the image in that space
    (``min_size`` = k unless given), the histograms of its regions, then one hierarchy per
    strategy. Returns the ranked, deduplicated (N, 4) float64 boxes.

    The colour spaces are independent, so with ``workers`` > 1 (default: one per CPU core, at
    most one per colour space) they are shared out among this process and forked worker
    processes (:func:`minivision.proposals._workers.map_split`). The hierarchies are collected
    in a fixed order and the random ranking factors are drawn afterwards, so the result does
    not depend on ``workers``.
    """
    rng = np.random.default_rng(seed)
    args = (ks, strategies, sigma, min_size)
    rgb_u8 = rgb.astype(np.uint8)  # whole numbers in [0, 255] (rgb_from_host)
    per_space = map_split(
        here=lambda space: hierarchies_of(rgb, space, *args),
        remote=_space_job,
        remote_args=lambda space: (rgb_u8, space, *args),
        items=list(spaces),
        workers=workers,
    )
    return rank_boxes([h for hs in per_space for h in hs], rng)
