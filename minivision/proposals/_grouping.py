"""Hierarchical grouping of selective search: a NumPy host island.

Everything here runs on the host with NumPy (DESIGN.md §2, kind 3: *host island*).
:func:`minivision.proposals.selective_search.selective_search` makes one ``to_numpy`` copy of the image,
calls :func:`proposals_host`, and makes one ``from_numpy`` copy of the boxes back.

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
import math
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import NamedTuple

import numpy as np

from ._merge import gaussian_kernel1d, segment_grid
from .felzenszwalb import edge_weights

__all__ = [
    "COLOUR_BINS",
    "TEXTURE_BINS",
    "STRATEGIES",
    "rgb_from_host",
    "convert_colour",
    "region_neighbours",
    "colour_codes",
    "texture_codes",
    "image_texture_codes",
    "histograms",
    "colour_histograms",
    "texture_maps",
    "texture_histograms",
    "region_boxes",
    "similarity_colour",
    "similarity_size",
    "similarity_fill",
    "Hierarchy",
    "group",
    "rank_boxes",
    "proposals_host",
]

COLOUR_BINS = 25
TEXTURE_BINS = 10
# Similarity combinations of the paper: C colour, T texture, S size, F fill.
STRATEGIES = ("CTSF", "TSF", "F", "S")
COLOUR_SPACES = ("rgb", "hsv", "lab", "rgi", "h", "i")


# ----------------------------------------------------------------------------- colour spaces


def rgb_from_host(host, kind):
    """A host image (H, W), (H, W, 1) or (H, W, 3) -> (H, W, 3) float64 RGB in [0, 255].

    ``kind`` is ``"uint8"`` (as is), ``"bool"`` (0 or 255) or ``"float"`` (values in [0, 1],
    rounded to 8 bits: ``rint(255 x)``; NaN, infinities and values outside [0, 1] raise
    ValueError). Grey images are repeated into three equal channels.
    """
    host = np.asarray(host, dtype=np.float64)
    if kind == "float":
        if not np.isfinite(host).all():
            raise ValueError("image must not contain NaN or infinite values")
        if host.min() < 0.0 or host.max() > 1.0:
            raise ValueError(
                "a float image must hold values in [0, 1], got range "
                f"[{host.min():g}, {host.max():g}]; pass uint8 for 0..255 data"
            )
        host = np.rint(host * 255.0)  # quantised to 8 bits, as img_as_ubyte does
    elif kind == "bool":
        host = host * 255.0
    if host.ndim == 2:
        host = host[..., None]
    if host.shape[2] == 1:
        host = np.repeat(host, 3, axis=2)
    return host


def _hsv(rgb):
    """(H, W, 3) float RGB in [0, 255] -> HSV, each channel scaled to [0, 255]."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = rgb.max(axis=-1)
    c = v - rgb.min(axis=-1)
    safe = np.where(c > 0, c, 1.0)
    h = np.where(
        v == r, (g - b) / safe, np.where(v == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe)
    )
    h = np.where(c > 0, (h / 6.0) % 1.0, 0.0)
    s = np.where(v > 0, c / np.where(v > 0, v, 1.0), 0.0)
    return np.stack([h * 255.0, s * 255.0, v], axis=-1)


def _lab(rgb):
    """(H, W, 3) float sRGB in [0, 255] -> CIELAB (D65), scaled as 8-bit OpenCV does.

    L in [0, 100] becomes L * 255 / 100; a and b are offset by 128 and clipped to [0, 255].
    """
    c = rgb / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array(
        [
            [0.412453, 0.357580, 0.180423],
            [0.212671, 0.715160, 0.072169],
            [0.019334, 0.119193, 0.950227],
        ]
    )
    xyz = lin @ m.T / np.array([0.950456, 1.0, 1.088754])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    L = np.where(xyz[..., 1] > 0.008856, 116.0 * f[..., 1] - 16.0, 903.3 * xyz[..., 1])
    a = 500.0 * (f[..., 0] - f[..., 1]) + 128.0
    b = 200.0 * (f[..., 1] - f[..., 2]) + 128.0
    return np.clip(np.stack([L * 255.0 / 100.0, a, b], axis=-1), 0.0, 255.0)


def convert_colour(rgb, space):
    """Convert an (H, W, 3) float RGB image in [0, 255] to ``space``; returns (H, W, C) in [0, 255].

    ``space`` is one of the paper's colour spaces: ``"rgb"``, ``"hsv"``, ``"lab"``, ``"rgi"``
    (normalised r = R/(R+G+B), g = G/(R+G+B), and intensity I), ``"h"`` (hue only) or ``"i"``
    (intensity only, the mean of R, G, B). Every channel is scaled to [0, 255], so that the
    25 colour bins and the F&H ``k`` mean the same thing in every space.
    """
    rgb = np.asarray(rgb, dtype=np.float64)
    if space == "rgb":
        return rgb
    if space == "hsv":
        return _hsv(rgb)
    if space == "lab":
        return _lab(rgb)
    intensity = rgb.mean(axis=-1, keepdims=True)
    if space == "i":
        return intensity
    if space == "h":
        return _hsv(rgb)[..., :1]
    if space == "rgi":
        total = rgb.sum(axis=-1, keepdims=True)
        rg = np.where(total > 0, rgb[..., :2] / np.where(total > 0, total, 1.0), 1.0 / 3.0)
        return np.concatenate([rg * 255.0, intensity], axis=-1)
    raise ValueError(f"colour space must be one of {COLOUR_SPACES}, got {space!r}")


# ----------------------------------------------------------------------------- regions


def region_neighbours(labels):
    """Pairs of 8-adjacent regions of a label image: (P, 2) intp, ``a < b``, sorted, unique.

    Two regions are neighbours iff a pixel of one touches a pixel of the other horizontally,
    vertically or diagonally (the same 8-connected graph as the segmentation).
    """
    labels = np.asarray(labels)
    n = int(labels.max()) + 1 if labels.size else 0
    pairs = [
        (labels[:, 1:], labels[:, :-1]),
        (labels[1:, :], labels[:-1, :]),
        (labels[1:, 1:], labels[:-1, :-1]),
        (labels[1:, :-1], labels[:-1, 1:]),
    ]
    a = np.concatenate([p.ravel() for p, _ in pairs]).astype(np.intp)
    b = np.concatenate([q.ravel() for _, q in pairs]).astype(np.intp)
    keep = a != b
    lo, hi = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
    code = np.unique(lo * n + hi)
    return np.stack([code // max(n, 1), code % max(n, 1)], axis=1).astype(np.intp)


def region_boxes(labels, n):
    """Bounding boxes (n, 4) float64 xyxy in pixels (x2 = last column + 1) and sizes (n,)."""
    labels = np.asarray(labels)
    height, width = labels.shape
    flat = labels.ravel()
    ys, xs = np.divmod(np.arange(flat.size), width)
    sizes = np.bincount(flat, minlength=n).astype(np.float64)
    x1 = np.full(n, width, np.intp)
    y1 = np.full(n, height, np.intp)
    x2 = np.zeros(n, np.intp)
    y2 = np.zeros(n, np.intp)
    np.minimum.at(x1, flat, xs)
    np.minimum.at(y1, flat, ys)
    np.maximum.at(x2, flat, xs + 1)
    np.maximum.at(y2, flat, ys + 1)
    return np.stack([x1, y1, x2, y2], axis=1).astype(np.float64), sizes


def _normalise_rows(counts):
    total = counts.sum(axis=1, keepdims=True)
    return counts / np.where(total > 0, total, 1.0)


def colour_codes(image, bins=COLOUR_BINS):
    """Per-pixel histogram slots (H*W, C) of an (H, W, C) image in [0, 255].

    Channel c, value v goes to slot ``c * bins + min(floor(v * bins / 256), bins - 1)``.
    Computed once per colour space and reused for every segmentation of it.
    """
    image = np.asarray(image, dtype=np.float64)
    c = image.shape[-1]
    b = np.minimum((image * (bins / 256.0)).astype(np.intp), bins - 1).reshape(-1, c)
    return b + np.arange(c, dtype=np.intp) * bins


def histograms(codes, labels, n, width):
    """L1-normalised histograms (n, width): row r counts the ``codes`` of region r's pixels.

    ``codes`` is (H*W, K) slots in [0, width); every row sums to 1 (over all K blocks).
    """
    idx = labels.reshape(-1, 1) * width + codes
    counts = np.bincount(idx.ravel(), minlength=n * width).reshape(n, width)
    return _normalise_rows(counts.astype(np.float64))


def colour_histograms(image, labels, n, bins=COLOUR_BINS):
    """L1-normalised colour histograms (n, C * bins) of the regions of ``labels``.

    ``image`` is (H, W, C) in [0, 255]; 25 bins per channel over [0, 256); each row sums to 1
    over all C blocks together (the paper's L1 normalisation).
    """
    c = np.asarray(image).shape[-1]
    return histograms(colour_codes(image, bins), np.asarray(labels), n, c * bins)


def _correlate(x, taps, axis):
    """Correlate ``x`` with ``taps`` along ``axis`` (scipy.ndimage's 'reflect' border)."""
    r = len(taps) // 2
    pad = [(0, 0)] * x.ndim
    pad[axis] = (r, r)
    padded = np.pad(x, pad, mode="symmetric")  # scipy.ndimage's 'reflect'
    n = x.shape[axis]
    window = [slice(None)] * x.ndim
    out = np.zeros_like(x)
    for i, t in enumerate(taps):
        window[axis] = slice(i, i + n)
        out += t * padded[tuple(window)]  # a view: no copy of the shifted image
    return out


def _oriented_derivatives(image, sigma):
    """(H, W, C, 4) directional Gaussian derivatives at 0, 45, 90 and 135 degrees."""
    image = np.asarray(image, dtype=np.float64)
    g = np.array(gaussian_kernel1d(sigma))
    r = len(g) // 2
    x = np.arange(-r, r + 1)
    dg = -x / (sigma * sigma) * g  # derivative of the Gaussian
    dg = dg[::-1]  # correlation taps of the convolution with g'
    gx = _correlate(_correlate(image, g, 0), dg, 1)
    gy = _correlate(_correlate(image, dg, 0), g, 1)
    s = math.sqrt(0.5)
    return np.stack([gx, (gx + gy) * s, gy, (gy - gx) * s], axis=-1)


def _halves(d):
    """The positive and negative parts of ``d``, each divided by its maximum over the image.

    A flat image has derivatives of rounding-error size (1e-14); dividing by their maximum
    would blow them up to 1. Below 1e-6 grey levels per pixel a map counts as zero.
    """
    for sign in (1.0, -1.0):
        part = np.maximum(d if sign > 0 else -d, 0.0)
        top = part.max(axis=(0, 1), keepdims=True)
        part /= np.where(top > 1e-6, top, np.inf)
        yield part


def texture_maps(image, sigma=1.0):
    """Oriented Gaussian-derivative responses: (H, W, C, 8), each in [0, 1].

    Per channel, the first derivatives ``Gx``, ``Gy`` of a Gaussian with ``sigma`` give the
    directional derivatives at 0, 45, 90 and 135 degrees; each is split into its positive and
    negative part (8 orientations, as the paper's "8 orientations"). Each of the 8 maps is
    divided by its maximum over the image so that it fits the 10 bins (a map whose maximum is
    below 1e-6, i.e. no gradient at all, is all zeros).
    """
    return np.concatenate(list(_halves(_oriented_derivatives(image, sigma))), axis=-1)


def _bin(maps, bins):
    return np.minimum((maps * bins).astype(np.intp), bins - 1)


def texture_codes(maps, bins=TEXTURE_BINS):
    """Per-pixel histogram slots (H*W, C*8) of :func:`texture_maps` output (10 bins each)."""
    h, w, c, o = maps.shape
    return _bin(maps, bins).reshape(h * w, c * o) + np.arange(c * o, dtype=np.intp) * bins


def image_texture_codes(image, sigma=1.0, bins=TEXTURE_BINS):
    """``texture_codes(texture_maps(image, sigma), bins)``, without building the 8 float maps.

    The same numbers, computed half by half into one compact int16 array (H*W, C*8): the
    texture histograms are the largest per-pixel data of selective search.
    """
    d = _oriented_derivatives(image, sigma)
    h, w, c, o = d.shape
    codes = np.empty((h, w, c, 2 * o), dtype=np.int16)
    for half, maps in enumerate(_halves(d)):
        maps *= bins
        # min before the cast equals _bin's min after it (maps >= 0); the cast truncates
        codes[..., half * o : (half + 1) * o] = np.minimum(maps, bins - 1, out=maps)
    codes = codes.reshape(h * w, c * 2 * o)
    codes += (np.arange(c * 2 * o) * bins).astype(np.int16)
    return codes


def texture_histograms(maps, labels, n, bins=TEXTURE_BINS):
    """L1-normalised texture histograms (n, C * 8 * bins) from :func:`texture_maps` output."""
    _, _, c, o = maps.shape
    return histograms(texture_codes(maps, bins), np.asarray(labels), n, c * o * bins)


# ----------------------------------------------------------------------------- similarities


def similarity_colour(hi, hj):
    """Histogram intersection ``sum_k min(hi_k, hj_k)`` over the last axis (colour or texture)."""
    return np.minimum(hi, hj).sum(axis=-1)


def similarity_size(si, sj, image_size):
    """``1 - (size_i + size_j) / size(im)``: small regions merge first."""
    return 1.0 - (si + sj) / image_size


def similarity_fill(box_i, box_j, si, sj, image_size):
    """``1 - (size(BB_ij) - size_i - size_j) / size(im)``, BB_ij the tight box around both."""
    bi, bj = np.asarray(box_i), np.asarray(box_j)
    w = np.maximum(bi[..., 2], bj[..., 2]) - np.minimum(bi[..., 0], bj[..., 0])
    h = np.maximum(bi[..., 3], bj[..., 3]) - np.minimum(bi[..., 1], bj[..., 1])
    return 1.0 - (w * h - si - sj) / image_size


# ----------------------------------------------------------------------------- grouping


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


def _hierarchies_of(rgb, space, ks, strategies, sigma, min_size):
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
    """:func:`_hierarchies_of` for a worker process (the image travels as 8 bits, 1/8 the bytes)."""
    return _hierarchies_of(rgb_u8.astype(np.float64), space, ks, strategies, sigma, min_size)


def _fork_context():
    """multiprocessing's "fork" context where a fork is cheap and safe (Linux), else None.

    A forked worker starts as a copy of this process: nothing is re-imported, so it works from
    scripts without an ``if __name__ == "__main__"`` guard and from notebooks. Elsewhere (macOS,
    Windows), and inside a daemonic process (which may not have children), the work runs here.
    """
    if sys.platform != "linux" or multiprocessing.current_process().daemon:
        return None
    return multiprocessing.get_context("fork")


def cpu_count():
    """CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def proposals_host(rgb, spaces, ks, strategies, sigma, min_size, seed, workers=None):
    """Selective search on a host (H, W, 3) float64 RGB image in [0, 255].

    For every colour space and every ``k``: one F&H segmentation of the image in that space
    (``min_size`` = k unless given), the histograms of its regions, then one hierarchy per
    strategy. Returns the ranked, deduplicated (N, 4) float64 boxes.

    The colour spaces are independent, so with ``workers`` > 1 (default: one per CPU core, at
    most one per colour space) they are shared out among this process and ``workers - 1``
    forked worker processes. Processes, not threads: the merge loops are many small NumPy
    calls that hold the GIL, so threads overlap little (measured: 1.2x on two cores against
    about 1.9x for processes). The hierarchies are collected in a fixed order and the random
    ranking factors are drawn afterwards, so the result does not depend on ``workers``.
    """
    rng = np.random.default_rng(seed)
    args = (ks, strategies, sigma, min_size)
    workers = max(1, min(cpu_count() if workers is None else int(workers), len(spaces)))
    context = _fork_context() if workers > 1 else None
    if context is None:
        per_space = [_hierarchies_of(rgb, space, *args) for space in spaces]
    else:
        rgb_u8 = rgb.astype(np.uint8)  # whole numbers in [0, 255] (rgb_from_host)
        # job i runs here if i % workers == 0, else in one of the workers - 1 processes
        with ProcessPoolExecutor(workers - 1, mp_context=context) as pool:
            futures = {
                i: pool.submit(_space_job, rgb_u8, space, *args)
                for i, space in enumerate(spaces)
                if i % workers
            }
            here = {
                i: _hierarchies_of(rgb, space, *args)
                for i, space in enumerate(spaces)
                if i % workers == 0
            }
            per_space = [here[i] if i in here else futures[i].result() for i in range(len(spaces))]
    return rank_boxes([h for hs in per_space for h in hs], rng)
