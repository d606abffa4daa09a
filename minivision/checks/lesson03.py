"""Lesson 03 battery: selective search (Uijlings et al., IJCV 2013).

The expected values come from minivision.proposals.ss_features / ss_grouping (its grouping is pinned to
a textbook loop by the tests). The classic mistakes: neighbours from bounding-box overlap
instead of pixel adjacency (or 4-connectivity), unnormalised or per-channel-normalised
histograms, forgetting to update the similarities after a merge, and averaging the merged
histograms without weighting by size.
"""

from __future__ import annotations

import numpy as np
from skimage import data  # the sample images ship with scikit-image: no download

from ..proposals import ss_features as ref
from ..proposals.felzenszwalb import felzenszwalb
from ..proposals.ss_grouping import group
from ._core import Battery, Case, FunctionBattery, Mistake

# ----------------------------------------------------------------------------- inputs

_AST = np.ascontiguousarray(data.astronaut()[60:84, 200:232])  # 24 x 32 colour crop
_COFFEE = np.ascontiguousarray(data.coffee()[150:170, 250:280])  # 20 x 30
LABELS_AST = felzenszwalb(_AST, scale=30, sigma=0.8, min_size=10)
LABELS_COFFEE = felzenszwalb(_COFFEE, scale=40, sigma=0.8, min_size=8)
RING = np.array(
    [
        [0, 0, 0, 0, 0, 0],
        [0, 1, 1, 1, 1, 0],
        [0, 1, 2, 2, 1, 0],
        [0, 1, 1, 1, 1, 3],
        [4, 4, 4, 4, 3, 3],
    ]
)


def _grouping_inputs(image, labels):
    n = int(labels.max()) + 1
    hist = ref.colour_histograms(image.astype(np.float64), labels, n)
    boxes, sizes = ref.region_boxes(labels, n)
    return hist, sizes, boxes.astype(np.int64), ref.region_neighbours(labels)


GROUP_AST = _grouping_inputs(_AST, LABELS_AST)
GROUP_COFFEE = _grouping_inputs(_COFFEE, LABELS_COFFEE)


# ----------------------------------------------------------------------------- references


def _neighbours(labels):
    return ref.region_neighbours(labels)


def _histograms(image, labels, n):
    return ref.colour_histograms(np.asarray(image, dtype=np.float64), labels, n)


def _group(hist, sizes, boxes, pairs):
    h = group(hist, np.zeros((len(sizes), 0)), np.asarray(boxes, float), sizes, pairs, "CSF")
    return h.merges


# ----------------------------------------------------------------------------- mistakes


def _neighbours_boxes(labels):
    n = int(labels.max()) + 1
    b, _ = ref.region_boxes(labels, n)
    out = [
        (i, j)
        for i in range(n)
        for j in range(i + 1, n)
        if min(b[i, 2], b[j, 2]) > max(b[i, 0], b[j, 0])
        and min(b[i, 3], b[j, 3]) > max(b[i, 1], b[j, 1])
    ]
    return np.array(out, dtype=np.intp).reshape(-1, 2)


def _neighbours_4(labels):
    a = np.concatenate([labels[:, 1:].ravel(), labels[1:, :].ravel()])
    b = np.concatenate([labels[:, :-1].ravel(), labels[:-1, :].ravel()])
    keep = a != b
    pairs = np.stack([np.minimum(a, b)[keep], np.maximum(a, b)[keep]], axis=1)
    return np.unique(pairs, axis=0)


def _histograms_counts(image, labels, n):
    h = _histograms(image, labels, n)
    pixels = np.bincount(np.asarray(labels).ravel(), minlength=n)[:, None]
    return np.rint(h * pixels * (h.shape[1] // 25))


def _histograms_per_channel(image, labels, n):
    h = _histograms(image, labels, n)
    return h * (h.shape[1] // 25)


def _sim(h1, h2, s1, s2, b1, b2, total):
    w = max(b1[2], b2[2]) - min(b1[0], b2[0])
    hh = max(b1[3], b2[3]) - min(b1[1], b2[1])
    return np.minimum(h1, h2).sum() + (1.0 - (s1 + s2) / total) + (1.0 - (w * hh - s1 - s2) / total)


def _group_loop(hist, sizes, boxes, pairs, stale=False, plain_mean=False):
    """A textbook grouping with an optional mistake: stale similarities or unweighted means."""
    hist = {i: np.asarray(h, float) for i, h in enumerate(hist)}
    size = {i: float(s) for i, s in enumerate(sizes)}
    box = {i: np.asarray(b, float) for i, b in enumerate(boxes)}
    total = float(np.sum(sizes))
    sim = {
        (int(i), int(j)): _sim(hist[i], hist[j], size[i], size[j], box[i], box[j], total)
        for i, j in pairs
    }
    t = len(sizes)
    merges = []
    while sim:
        i, j = max(sorted(sim), key=lambda p: sim[p])
        merges.append((i, j))
        size[t] = size[i] + size[j]
        if plain_mean:
            hist[t] = (hist[i] + hist[j]) / 2
        else:
            hist[t] = (size[i] * hist[i] + size[j] * hist[j]) / size[t]
        box[t] = np.concatenate(
            [np.minimum(box[i][:2], box[j][:2]), np.maximum(box[i][2:], box[j][2:])]
        )
        new = {}
        for (a, b), s in sim.items():
            if {a, b} == {i, j}:
                continue
            if a in (i, j) or b in (i, j):
                k = b if a in (i, j) else a
                if stale:
                    new[(k, t)] = max(s, new.get((k, t), -np.inf))
                else:
                    new[(k, t)] = _sim(hist[k], hist[t], size[k], size[t], box[k], box[t], total)
            else:
                new[(a, b)] = s
        sim = new
        t += 1
    return np.array(merges, dtype=np.intp).reshape(-1, 2)


def _group_stale(hist, sizes, boxes, pairs):
    return _group_loop(hist, sizes, boxes, pairs, stale=True)


def _group_plain_mean(hist, sizes, boxes, pairs):
    return _group_loop(hist, sizes, boxes, pairs, plain_mean=True)


def same_pairs(got, expected) -> str | None:
    """None if ``got`` is the same set of region pairs (any order, either direction)."""
    try:
        g = np.asarray(got)
    except Exception:
        return f"returned {type(got).__name__}, expected a (P, 2) array"
    if g.size == 0 and np.asarray(expected).size == 0:
        return None
    if g.ndim != 2 or g.shape[1:] != (2,):
        return f"returned shape {g.shape}, expected (P, 2) pairs"
    gs = {tuple(sorted(p)) for p in g.astype(np.int64).tolist()}
    es = {tuple(sorted(p)) for p in np.asarray(expected).astype(np.int64).tolist()}
    if gs == es:
        return None
    extra, missing = sorted(gs - es), sorted(es - gs)
    return f"{len(gs)} pairs, expected {len(es)}; e.g. " + (
        f"{extra[0]} are not neighbours" if extra else f"{missing[0]} are missing"
    )


BOX = (
    "neighbours from bounding-box overlap",
    "two regions are neighbours only if a pixel of one touches a pixel of the other; boxes "
    "can overlap (a ring and its inside, two diagonal strips) without the regions touching",
)
FOUR = (
    "4-connected neighbours",
    "count diagonal contacts too: the segmentation graph is 8-connected, so compare each "
    "pixel with its right, down, down-right and up-right neighbour",
)

BATTERY = Battery(
    lesson="03",
    title="lesson 03, selective search",
    functions=[
        FunctionBattery(
            "region_neighbours",
            _neighbours,
            [
                Case("a ring around a hole, diagonal contact", (RING,)),
                Case("F&H regions of an astronaut crop", (LABELS_AST,)),
                Case("F&H regions of a coffee crop", (LABELS_COFFEE,)),
            ],
            [Mistake(*BOX, _neighbours_boxes), Mistake(*FOUR, _neighbours_4)],
            compare=same_pairs,
        ),
        FunctionBattery(
            "colour_histograms",
            _histograms,
            [
                Case("the ring on the astronaut crop", (_AST[:5, :6], RING, 5)),
                Case("astronaut regions", (_AST, LABELS_AST, int(LABELS_AST.max()) + 1)),
                Case(
                    "a grey crop", (_COFFEE[..., :1], LABELS_COFFEE, int(LABELS_COFFEE.max()) + 1)
                ),
            ],
            [
                Mistake(
                    "unnormalised histograms",
                    "divide each region's counts by their sum (L1 normalisation), so that big "
                    "and small regions can be compared",
                    _histograms_counts,
                ),
                Mistake(
                    "each channel normalised on its own",
                    "normalise the whole C x 25 vector at once: each row sums to 1, not to C",
                    _histograms_per_channel,
                ),
            ],
            atol=1e-12,
        ),
        FunctionBattery(
            "group_regions",
            _group,
            [
                Case("astronaut regions", GROUP_AST),
                Case("coffee regions", GROUP_COFFEE),
            ],
            [
                Mistake(
                    "similarities not updated after a merge",
                    "after merging r_i and r_j into r_t, compute s(r_t, r_k) afresh from r_t's "
                    "histogram, size and box for every neighbour r_k; the old s(r_i, r_k) and "
                    "s(r_j, r_k) no longer describe r_t",
                    _group_stale,
                ),
                Mistake(
                    "merged histogram not weighted by size",
                    "the merged histogram is (size_i h_i + size_j h_j) / (size_i + size_j); "
                    "a plain mean lets a tiny region count as much as a big one",
                    _group_plain_mean,
                ),
            ],
            rtol=0,
            atol=0,
        ),
    ],
)
