"""minivision.ops.nms against torchvision.ops 0.29.1 and textbook loops, on every backend and path.

``nms`` and ``batched_nms`` return indices, so every comparison is exact. Each case builds the
same host data for both sides in the backend's float dtype (float64 on NumPy, float32
elsewhere; float32 on NumPy is tested on its own because it is what detectors use). Both
computation paths are tested everywhere: ``host`` (the blocked greedy scan with spatial
candidates) and ``device`` (blocked Cluster-NMS), with their block sizes shrunk so that every
branch -- several blocks, tiles between blocks, suppression across blocks -- is exercised.
"""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import torch
import torchvision.ops as tv
from helpers import assert_backend, assert_close
from hypothesis import given
from hypothesis import strategies as st

import minivision as mv
import minivision.ops._nms_host as host
from minivision._backend import to_numpy

nms_module = importlib.import_module("minivision.ops.nms")  # `minivision.ops.nms` is the function

pytestmark = pytest.mark.filterwarnings(
    "ignore:invalid value encountered:RuntimeWarning",
    "ignore:divide by zero:RuntimeWarning",
    "ignore:overflow encountered:RuntimeWarning",
)
nan, inf = math.nan, math.inf
PATHS = ("host", "device")


@pytest.fixture(params=PATHS)
def path(request, monkeypatch):
    """Both computation paths, with blocks small enough that the tests cross many of them."""
    monkeypatch.setattr(host, "BLOCK", 5)
    monkeypatch.setattr(nms_module, "DEVICE_BLOCK", 7)
    return request.param


def torch_of(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def tv_nms(boxes, scores, t):
    return tv.nms(torch_of(boxes), torch_of(scores), t).numpy()


def kept(out):
    return np.asarray(to_numpy(out))


# ----------------------------------------------------------------------------- references


def greedy_loop(boxes, scores, t):
    """Textbook greedy NMS, one box at a time, with torchvision's arithmetic (float IoU, double
    comparison). Written independently of minivision; checked against torchvision below."""
    dt = boxes.dtype.type
    order = sorted(range(len(scores)), key=lambda i: (not math.isnan(scores[i]), -scores[i], i))
    area = [dt((b[2] - b[0]) * (b[3] - b[1])) for b in boxes]
    suppressed, keep = set(), []
    for a, i in enumerate(order):
        if i in suppressed:
            continue
        keep.append(i)
        for j in order[a + 1 :]:
            w = max(dt(0), min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0]))
            h = max(dt(0), min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1]))
            inter = dt(w * h)
            if float(inter / (area[i] + area[j] - inter)) > t:
                suppressed.add(j)
    return np.array(keep, dtype=np.int64)


def per_category_reference(boxes, scores, idxs, t):
    """What batched NMS means: torchvision's nms on each category alone, merged by score."""
    keep = np.zeros(len(scores), dtype=bool)
    for c in np.unique(idxs):
        sel = np.flatnonzero(idxs == c)
        keep[sel[tv_nms(boxes[sel], scores[sel], t)]] = True
    idx = np.flatnonzero(keep)
    by_score = torch.sort(torch_of(scores[idx]), descending=True, stable=True).indices.numpy()
    return idx[by_score]


# ----------------------------------------------------------------------------- box sets


def clustered(seed, n, dtype, n_clusters=6, ties=0, nan_scores=0, grid=False):
    """n boxes around a few centres in an 800 x 1088 image; ``ties`` distinct score values."""
    rng = np.random.default_rng(seed)
    centre = rng.uniform([0, 0], [1088, 800], (n_clusters, 2))
    size = rng.uniform(20, 200, (n_clusters, 2))
    cid = rng.integers(0, n_clusters, n)
    ctr = centre[cid] + rng.normal(0, 0.15, (n, 2)) * size[cid]
    wh = size[cid] * np.clip(1 + 0.2 * rng.normal(size=(n, 2)), 0.3, None)
    boxes = np.concatenate([ctr - wh / 2, ctr + wh / 2], axis=1)
    if grid:
        boxes = np.round(boxes / 8) * 8  # shared edges and exact IoU values
    scores = rng.integers(0, ties, n) / ties if ties else rng.random(n)
    scores[rng.permutation(n)[:nan_scores]] = nan
    return boxes.astype(dtype), scores.astype(dtype)


# torchvision-semantics.md §2, one named case each: (boxes, scores, thresholds)
EDGE_CASES = {
    "single box": ([[0, 0, 10, 10]], [0.5], [0.5]),
    "all identical: only the first kept": ([[1, 2, 11, 12]] * 4, [0.3, 0.9, 0.9, 0.1], [0.5]),
    "all disjoint: all kept in score order": (
        [[0, 0, 1, 1], [2, 2, 3, 3], [4, 4, 5, 5], [6, 0, 7, 1]],
        [0.1, 0.4, 0.3, 0.2],
        [0.5, 0.0],
    ),
    "IoU exactly at the threshold is not suppressed": (
        [[0, 0, 10, 10], [0, 0, 10, 5], [0, 0, 10, 2.5]],
        [0.9, 0.8, 0.7],
        [0.5, 0.25, 0.5 - 1e-9],
    ),
    "float32 IoU 0.30000001 > 0.3 (compared as doubles)": (
        [[0, 0, 10, 10], [0, 0, 10, 3]],
        [0.9, 0.8],
        [0.3, 0.30000001192092896, 0.3000000119209291],
    ),
    "tied scores: the lower index wins": (
        [[0, 0, 10, 10], [1, 0, 11, 10], [2, 0, 12, 10], [30, 0, 40, 10], [31, 0, 41, 10]],
        [0.5, 0.5, 0.5, 0.5, 0.5],
        [0.5],
    ),
    "NaN scores sort first": (
        [[0, 0, 10, 10], [1, 0, 11, 10], [20, 0, 30, 10], [21, 0, 31, 10]],
        [0.9, nan, 0.8, nan],
        [0.5],
    ),
    "NaN coordinates never suppress and are never suppressed": (
        [[0, 0, 10, 10], [nan, 0, 10, 10], [0, 0, 10, 10], [0, nan, 10, 10]],
        [0.9, 0.95, 0.8, 0.7],
        [0.5, -0.5],
    ),
    "zero-area duplicates are both kept (IoU 0/0)": (
        [[5, 5, 5, 5], [5, 5, 5, 5], [3, 3, 3, 9], [3, 3, 3, 9]],
        [0.9, 0.8, 0.7, 0.6],
        [0.5, 0.0],
    ),
    "inverted boxes overlap nothing": (
        [[10, 10, 0, 0], [10, 10, 0, 0], [0, 0, 10, 10], [10, 0, 0, 10]],
        [0.9, 0.8, 0.7, 0.6],
        [0.5, 0.0, -0.1],
    ),
    "thresholds <= 0 and >= 1": (
        [[0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 10, 10], [5, 5, 15, 15]],
        [0.9, 0.8, 0.7, 0.6],
        [-0.1, -inf, 0.0, 1.0, 1.5, inf],
    ),
    "negative and huge coordinates": (
        [[-50, -50, -10, -10], [-48, -50, -8, -10], [0, 0, 3e6, 3e6], [1e5, 0, 3e6, 3e6]],
        [0.5, 0.6, 0.7, 0.8],
        [0.5, 0.9],
    ),
    "infinite coordinates": (
        [[0, 0, inf, 10], [0, 0, inf, 10], [-inf, 0, 5, 10], [0, 0, 5, 10]],
        [0.9, 0.8, 0.7, 0.6],
        [0.5, 0.0],
    ),
}


@pytest.mark.parametrize("case", EDGE_CASES)
def test_nms_edge_cases_match_torchvision(be, path, case):
    boxes, scores, thresholds = EDGE_CASES[case]
    for dtype in (be.np_float, np.float64):
        b, s = np.array(boxes, dtype=dtype), np.array(scores, dtype=dtype)
        for t in thresholds:
            out = mv.nms(
                be.asarray(b, dtype=dtype.__name__),
                be.asarray(s, dtype=dtype.__name__),
                t,
                path=path,
            )
            assert_backend(out, be)
            assert_close(out, tv_nms(b, s, t), what=f"{case}, {dtype.__name__}, t={t}")


def test_float32_threshold_example_in_words():
    """The §2 example: float32 IoU 0.300000012 suppresses at 0.3; float64 IoU 0.3 does not."""
    b = np.array([[0, 0, 10, 10], [0, 0, 10, 3]], dtype=np.float64)
    s = np.array([0.9, 0.8])
    assert kept(mv.nms(b.astype(np.float32), s.astype(np.float32), 0.3)).tolist() == [0]
    assert kept(mv.nms(b, s, 0.3)).tolist() == [0, 1]


def test_empty_input(be, path):
    out = mv.nms(be.asarray(np.zeros((0, 4))), be.asarray(np.zeros(0)), 0.5, path=path)
    assert_close(out, tv_nms(np.zeros((0, 4), be.np_float), np.zeros(0, be.np_float), 0.5))
    idx = be.asarray(np.zeros(0, dtype=np.int64))
    out = mv.batched_nms(be.asarray(np.zeros((0, 4))), be.asarray(np.zeros(0)), idx, 0.5, path=path)
    assert_close(out, np.zeros(0, dtype=np.int64))


def test_textbook_loop_is_a_faithful_reference():
    for seed in range(4):
        b, s = clustered(seed, 80, np.float32, ties=4, nan_scores=2, grid=True)
        for t in (0.0, 0.3, 0.5, 0.7):
            assert_close(greedy_loop(b, s, t), tv_nms(b, s, t), what=f"loop, seed {seed}, t={t}")


# ----------------------------------------------------------------------------- exactness


@pytest.mark.parametrize("seed", range(6))
def test_random_and_tied_sets_match_torchvision(be, path, seed, monkeypatch):
    """Clustered sets with continuous, tied and NaN scores; both paths, every backend."""
    monkeypatch.setattr(host, "BLOCK", 16)
    monkeypatch.setattr(nms_module, "DEVICE_BLOCK", 64)
    n = 150 if be.name == "strict-device1" else 300
    for ties, nan_scores, grid in [(0, 0, False), (3, 0, True), (5, 4, True)]:
        b, s = clustered(seed, n, be.np_float, ties=ties, nan_scores=nan_scores, grid=grid)
        for t in (0.3, 0.5, 0.7):
            out = mv.nms(be.asarray(b), be.asarray(s), t, path=path)
            assert_close(out, tv_nms(b, s, t), what=f"seed {seed}, ties {ties}, t={t}")


@pytest.mark.parametrize("t", [0.0, 0.1, 0.5, 0.7, 0.95])
def test_float32_numpy_large_sets_match_torchvision(t):
    """The benchmark's setting (NumPy, float32, default block sizes) on 3000 clustered boxes."""
    for seed, ties in [(0, 0), (1, 7)]:
        b, s = clustered(seed, 3000, np.float32, n_clusters=30, ties=ties, grid=seed == 1)
        assert_close(mv.nms(b, s, t), tv_nms(b, s, t), what=f"3000 boxes, t={t}")


def test_device_path_chain_needs_many_rounds_and_is_still_exact(be, monkeypatch):
    """A chain of boxes, each overlapping only its neighbours: greedy keeps every other box,
    and the fixed-point iteration needs about one round per box -- slow but exact."""
    monkeypatch.setattr(nms_module, "DEVICE_BLOCK", 64)
    x = np.arange(40, dtype=be.np_float) * 6.0
    b = np.stack([x, 0 * x, x + 10, 0 * x + 10], axis=1)
    s = np.linspace(1, 0, 40).astype(be.np_float)
    for path in PATHS:
        out = mv.nms(be.asarray(b), be.asarray(s), 0.2, path=path)
        assert_close(out, tv_nms(b, s, 0.2), what=f"chain, {path}")
    assert kept(mv.nms(b, s, 0.2)).tolist() == list(range(0, 40, 2))


@st.composite
def clustered_sets(draw, max_n=40):
    """Small boxes on an integer grid around a few centres: exact IoU values, ties, NaN."""
    n = draw(st.integers(0, max_n))
    k = draw(st.integers(1, 4))
    centres = draw(
        st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), min_size=k, max_size=k)
    )
    rows = []
    for _ in range(n):
        cx, cy = centres[draw(st.integers(0, k - 1))]
        dx1, dy1, dx2, dy2 = (draw(st.integers(-2, 12)) for _ in range(4))
        rows.append([cx - dx1, cy - dy1, cx + dx2, cy + dy2])
    boxes = np.array(rows, dtype=np.float64).reshape(n, 4)
    scores = np.array(
        draw(st.lists(st.sampled_from([0.1, 0.5, 0.5, 0.9, nan]), min_size=n, max_size=n))
    )
    scores = scores + np.array(draw(st.lists(st.floats(0, 1e-3), min_size=n, max_size=n))) * draw(
        st.booleans()
    )
    return boxes, scores.reshape(n)


thresholds = st.one_of(
    st.sampled_from([0.0, 0.25, 1 / 3, 0.5, 0.6, 0.7, 1.0, -0.2]),
    st.floats(0, 1),
    st.sampled_from([0.5 + 1e-9, 0.5 - 1e-9, 0.30000001192092896]),
)


@given(data=clustered_sets(), t=thresholds, dtype=st.sampled_from([np.float32, np.float64]))
def test_nms_property_numpy_both_paths(data, t, dtype, monkeypatch):
    monkeypatch.setattr(host, "BLOCK", 3)
    monkeypatch.setattr(nms_module, "DEVICE_BLOCK", 5)
    b, s = (a.astype(dtype) for a in data)
    ref = tv_nms(b, s, t)
    assert_close(greedy_loop(b, s, t), ref, what="the textbook loop")  # two references agree
    for path in PATHS:
        assert_close(mv.nms(b, s, t, path=path), ref, what=f"{path}, t={t}")


@given(data=clustered_sets(max_n=25), t=thresholds)
def test_nms_property_every_backend(be, path, data, t):
    b, s = (a.astype(be.np_float) for a in data)
    assert_close(mv.nms(be.asarray(b), be.asarray(s), t, path=path), tv_nms(b, s, t), what=f"t={t}")


# ----------------------------------------------------------------------------- the host scan's pruning


def _near_threshold_pairs(rng, n_pairs, scale, dtype):
    """Pairs of boxes of random size and position, shifted so that their IoU is near 0.5-0.9."""
    lo = rng.uniform(-1, 1, (n_pairs, 2)) * scale
    size = rng.uniform(0.05, 1, (n_pairs, 2)) * scale
    shift = rng.uniform(0, 0.3, (n_pairs, 2)) * size * rng.choice([-1, 1], (n_pairs, 2))
    a = np.concatenate([lo, lo + size], axis=1)
    b = a + np.concatenate([shift, shift * rng.uniform(0.5, 1.5, (n_pairs, 2))], axis=1)
    return np.concatenate([a, b]).astype(dtype)


def _boundary_pairs(rng, n_pairs, scale, dtype):
    """Pairs (r, j) on the very edge of r's pruning window: equal heights, j as wide as a box
    with IoU t may be (``w_r / t``), overlapping r by the least that gives IoU t, sticking out
    left or right (or, transposed, up or down). Their float IoU is t give or take rounding.
    Returns the boxes, r's first."""
    t = rng.uniform(0.02, 0.98, n_pairs)
    w_r = rng.uniform(0.1, 1, n_pairs) * scale
    w_j = w_r / t * (1 - 1e-6 * rng.random(n_pairs))
    ox = t * (w_r + w_j) / (1 + t)  # IoU(r, j) = t in real numbers
    x1r = rng.uniform(-1, 1, n_pairs) * scale
    left = rng.random(n_pairs) < 0.5
    x1j = np.where(left, x1r + ox - w_j, x1r + w_r - ox)
    y1 = rng.uniform(-1, 1, n_pairs) * scale
    h = rng.uniform(0.1, 1, n_pairs) * scale
    r = np.stack([x1r, y1, x1r + w_r, y1 + h], axis=1)
    j = np.stack([x1j, y1, x1j + w_j, y1 + h], axis=1)
    boxes = np.concatenate([r, j])
    flip = np.concatenate([rng.random(n_pairs) < 0.5] * 2)
    boxes[flip] = boxes[flip][:, [1, 0, 3, 2]]
    return boxes.astype(dtype)


def _check_candidates(b4, thresholds, dtype):
    """Every pair with IoU > t (torchvision's box_iou: the same float arithmetic as its nms)
    must be among the candidates of the pruning index, for every threshold."""
    iou = tv.box_iou(torch_of(b4), torch_of(b4)).numpy()
    b = np.concatenate([b4.T, ((b4[:, 2] - b4[:, 0]) * (b4[:, 3] - b4[:, 1]))[None]])
    for t in thresholds:
        index = host.CandidateIndex.build(b, float(t))  # None only for t < 0 or beyond 2**100
        i, j = index.candidates(b, np.arange(len(b4)))
        found = set(zip(i.tolist(), j.tolist()))
        tf = host.comparable_threshold(float(t), dtype == np.float32)
        need = {(p, q) for p, q in zip(*np.nonzero(iou > tf)) if p != q}
        missing = need - found
        assert not missing, f"t={t}: pairs {sorted(missing)[:5]} with IoU > t were pruned"
        # the windows themselves, before the grid rounds them out to whole cells
        p, q = (np.array(v, dtype=np.int64) for v in zip(*need)) if need else (i[:0], j[:0])
        c64 = b4.astype(np.float64)
        for lo, hi, big in [(0, 2, index.w_max), (1, 3, index.h_max)]:
            low, high = host._window(c64[p, lo], c64[p, hi], index.tp, big, index.plain)
            centre = (c64[q, lo] + c64[q, hi]) * 0.5
            outside = (centre < low) | (centre > high)
            assert not outside.any(), (
                f"t={t}: centres outside the window: {p[outside][:3]}, {q[outside][:3]}"
            )


SCALES = [1e-12, 1e-3, 1.0, 500.0, 1e7, 1e18]


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_candidate_windows_cover_every_suppressing_pair(scale, dtype):
    """White-box check of the pruning on random overlapping pairs, with thresholds equal to
    (and one float below) IoUs that occur, and boxes too small for the threshold windows."""
    rng = np.random.default_rng(abs(int(np.log10(scale))))
    b4 = _near_threshold_pairs(rng, 40, scale, dtype)
    b4[:5] = b4[:5] * 1e-25  # areas below 2**-60: the overlap-only window
    iou = tv.box_iou(torch_of(b4), torch_of(b4)).numpy()
    finite = iou[np.isfinite(iou) & (iou > 0) & ~np.eye(len(b4), dtype=bool)]
    picks = rng.choice(finite, min(20, finite.size), replace=False).astype(dtype)
    below = np.nextafter(picks, -np.inf)
    _check_candidates(b4, [*picks, *below, 0.0, 1e-7, 0.5, 0.999], dtype)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_candidate_windows_are_tight_but_safe(scale, dtype):
    """Pairs exactly on the edge of the window, at thresholds equal to (and one float below)
    their own IoU: only the margin for rounding keeps them in."""
    rng = np.random.default_rng(1 + abs(int(np.log10(scale))))
    b4 = _boundary_pairs(rng, 30, scale, dtype)
    iou = tv.box_iou(torch_of(b4[:30]), torch_of(b4[30:])).numpy().diagonal().astype(dtype)
    _check_candidates(b4, [*iou, *np.nextafter(iou, -np.inf)], dtype)


@pytest.mark.parametrize("scale", [1e-12, 1.0, 1e7, 1e35])
def test_nms_at_extreme_scales_matches_torchvision(scale):
    rng = np.random.default_rng(3)
    for dtype in (np.float32, np.float64):
        b = _near_threshold_pairs(rng, 200, scale, dtype)
        s = rng.random(len(b)).astype(dtype)
        iou = tv.box_iou(torch_of(b[:200]), torch_of(b[200:])).numpy().diagonal()
        for t in [*np.sort(iou[np.isfinite(iou)])[::40].astype(np.float64), 0.5]:
            assert_close(
                mv.nms(b, s, float(t)), tv_nms(b, s, float(t)), what=f"scale {scale}, t={t}"
            )


# ----------------------------------------------------------------------------- batched NMS


def _categories(rng, n, k):
    return rng.choice(np.array([-3, 0, 2, 7, 1000])[:k], n).astype(np.int64)


@pytest.mark.parametrize("seed", range(3))
def test_batched_nms_trick_path_matches_torchvision(be, path, seed):
    """Below 1000 boxes torchvision offsets the categories apart; with non-negative
    coordinates that is exact, and the order (stable by score) is the same as ours."""
    rng = np.random.default_rng(seed)
    b, s = clustered(seed, 300, be.np_float, ties=4, grid=True)
    b = np.clip(b, 0, None)
    idx = _categories(rng, 300, 3 + seed)
    for t in (0.3, 0.5):
        ref = tv.batched_nms(torch_of(b), torch_of(s), torch_of(idx), t).numpy()
        out = mv.batched_nms(be.asarray(b), be.asarray(s), be.asarray(idx), t, path=path)
        assert_backend(out, be)
        assert_close(out, ref, what=f"batched, seed {seed}, t={t}")
        assert_close(out, per_category_reference(b, s, idx, t), what="per category")


@pytest.mark.parametrize("n", [999, 1000, 1001, 1500])
def test_batched_nms_across_torchvision_path_switch(n):
    """At N > 1000 torchvision loops over categories and re-sorts with an unstable sort: the
    same set, equal scores possibly in another order. Ours stays stably ordered."""
    rng = np.random.default_rng(n)
    b, s = clustered(n, n, np.float32, n_clusters=20, ties=6, grid=True)
    b = np.clip(b, 0, None)
    idx = _categories(rng, n, 4)
    ref = tv.batched_nms(torch_of(b), torch_of(s), torch_of(idx), 0.5).numpy()
    out = kept(mv.batched_nms(b, s, idx, 0.5))
    assert sorted(out.tolist()) == sorted(ref.tolist()), f"different kept sets at N = {n}"
    assert_close(out, per_category_reference(b, s, idx, 0.5), what=f"N = {n}")
    assert np.all(np.diff(s[out]) <= 0), "not in decreasing score order"
    tied = s[out][1:] == s[out][:-1]
    assert np.all(np.diff(out)[tied] > 0), "equal scores not in increasing index order"


def test_batched_nms_coordinate_trick_failures_are_avoided(be, path):
    """torchvision-semantics.md §3: two cases where the offset trick changes the kept set."""
    # 1. boxes at coordinates <= -1: the offset does not separate the two categories
    b = np.array([[-100, -100, 0, 0], [-100, -100, 0, 0]], dtype=be.np_float)
    s = np.array([0.9, 0.8], dtype=be.np_float)
    idx = np.array([0, 1])
    trick = tv.batched_nms(torch_of(b), torch_of(s), torch_of(idx), 0.5).numpy()
    assert trick.tolist() == [0]  # torchvision drops a box of another category
    out = mv.batched_nms(be.asarray(b), be.asarray(s), be.asarray(idx), 0.5, path=path)
    assert_close(out, per_category_reference(b, s, idx, 0.5), what="negative coordinates")
    assert kept(out).tolist() == [0, 1]
    # 2. offsets of 999 * 10001 leave about one pixel of float32 resolution
    b = np.array([[0, 0, 3, 3], [0.9, 0, 3.9, 3], [10000, 0, 10001, 1]], dtype=np.float32)
    s = np.array([0.9, 0.8, 0.7], dtype=np.float32)
    idx = np.array([999, 999, 0])
    t = float(tv.box_iou(torch_of(b[:1]), torch_of(b[1:2]))[0, 0]) - 1e-4
    trick = tv.batched_nms(torch_of(b), torch_of(s), torch_of(idx), t).numpy()
    ref = per_category_reference(b, s, idx, t)
    assert sorted(trick.tolist()) != sorted(ref.tolist())  # the trick keeps the overlapping pair
    out = mv.batched_nms(be.asarray(b), be.asarray(s), be.asarray(idx), t, path=path)
    assert_close(out, ref, what="large offsets")


@st.composite
def categorised_sets(draw):
    boxes, scores = draw(clustered_sets())
    n = len(scores)
    idx = np.array(draw(st.lists(st.sampled_from([-5, 0, 1, 3, 2**40]), min_size=n, max_size=n)))
    return boxes - draw(st.sampled_from([0.0, 50.0])), scores, idx.reshape(n).astype(np.int64)


@given(data=categorised_sets(), t=thresholds, dtype=st.sampled_from([np.float32, np.float64]))
def test_batched_nms_property_is_per_category_nms(data, t, dtype, monkeypatch):
    monkeypatch.setattr(host, "BLOCK", 3)
    monkeypatch.setattr(nms_module, "DEVICE_BLOCK", 5)
    b, s, idx = data[0].astype(dtype), data[1].astype(dtype), data[2]
    ref = per_category_reference(b, s, idx, t)
    for path in PATHS:
        assert_close(mv.batched_nms(b, s, idx, t, path=path), ref, what=f"{path}, t={t}")


@given(data=categorised_sets(), t=thresholds)
def test_batched_nms_property_every_backend(be, path, data, t):
    b, s, idx = data[0].astype(be.np_float), data[1].astype(be.np_float), data[2]
    out = mv.batched_nms(be.asarray(b), be.asarray(s), be.asarray(idx), t, path=path)
    assert_close(out, per_category_reference(b, s, idx, t), what=f"t={t}")


def test_batched_nms_single_category_is_nms(be, path):
    b, s = clustered(5, 200, be.np_float, ties=3)
    idx = np.full(200, 4, dtype=np.int32)
    out = mv.batched_nms(be.asarray(b), be.asarray(s), be.asarray(idx), 0.5, path=path)
    assert_close(out, tv_nms(b, s, 0.5), what="one category")


# ----------------------------------------------------------------------------- soft-NMS


def soft_nms_loop(boxes, scores, iou_threshold, sigma, score_threshold, method):
    """Bodla et al. 2017, Algorithm 1, one box at a time (the textbook version)."""
    dt = boxes.dtype.type
    s = [dt(v) for v in scores]
    left = list(range(len(s)))
    keep, new_scores = [], []
    while left:
        m = max(left, key=lambda i: (s[i], -i))  # highest score; ties: the lower index
        if not float(s[m]) >= score_threshold:
            break
        keep.append(m)
        new_scores.append(s[m])
        left.remove(m)
        for i in left:
            w = max(dt(0), min(boxes[m, 2], boxes[i, 2]) - max(boxes[m, 0], boxes[i, 0]))
            h = max(dt(0), min(boxes[m, 3], boxes[i, 3]) - max(boxes[m, 1], boxes[i, 1]))
            inter = dt(w * h)
            area_m = dt((boxes[m, 2] - boxes[m, 0]) * (boxes[m, 3] - boxes[m, 1]))
            area_i = dt((boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1]))
            iou = dt(inter / (area_m + area_i - inter))
            if method == "linear":
                weight = dt(1) - iou if float(iou) > iou_threshold else dt(1)
            else:
                weight = dt(1) if math.isnan(iou) else dt(np.exp(-(iou * iou) / dt(sigma)))
            s[i] = dt(s[i] * weight)
    return np.array(keep, dtype=np.int64), np.array(new_scores, dtype=scores.dtype)


SOFT_SETTINGS = [
    dict(iou_threshold=0.3, sigma=0.5, score_threshold=0.001, method="linear"),
    dict(iou_threshold=0.3, sigma=0.5, score_threshold=0.001, method="gaussian"),
    dict(iou_threshold=0.5, sigma=0.1, score_threshold=0.3, method="linear"),
    dict(iou_threshold=0.0, sigma=2.0, score_threshold=0.2, method="gaussian"),
]


@pytest.mark.parametrize(
    "settings", SOFT_SETTINGS, ids=lambda d: f"{d['method']}-{d['score_threshold']}"
)
def test_soft_nms_matches_textbook_loop(be, settings):
    for seed in range(3):
        b, s = clustered(seed, 60, be.np_float, ties=4 if seed else 0, grid=seed == 2)
        b[:3] = b[3]  # identical boxes: IoU 1, linear weight 0
        b[5] = [7, 7, 7, 7]  # a point: IoU 0 with the others
        keep, new = mv.soft_nms(be.asarray(b), be.asarray(s), **settings)
        assert_backend(keep, be)
        ref_keep, ref_new = soft_nms_loop(b, s, **settings)
        assert_close(keep, ref_keep, what=f"soft-NMS keep, seed {seed}")
        # exp() of a vector and of a scalar may differ in the last bit
        eps = np.finfo(be.np_float).eps
        assert_close(new, ref_new, what=f"soft-NMS scores, seed {seed}", rtol=8 * eps)


def test_soft_nms_by_hand():
    """Three boxes: B overlaps A by IoU 0.5, C is far away."""
    b = np.array(
        [[0, 0, 10, 10], [0, 5, 10, 15], [50, 50, 60, 60]], dtype=np.float64
    )  # IoU(A, B) = 50/150
    s = np.array([0.9, 0.8, 0.7])
    keep, new = mv.soft_nms(b, s, iou_threshold=0.3, method="linear")
    assert keep.tolist() == [0, 2, 1]
    np.testing.assert_allclose(new, [0.9, 0.7, 0.8 * (1 - 1 / 3)], rtol=1e-15)
    keep, new = mv.soft_nms(b, s, method="gaussian", sigma=0.5)  # B: 0.8 * 0.80 = 0.64 < C's 0.7
    assert keep.tolist() == [0, 2, 1]
    np.testing.assert_allclose(new, [0.9, 0.7, 0.8 * np.exp(-(1 / 9) / 0.5)], rtol=1e-15)
    keep, _ = mv.soft_nms(b, s, iou_threshold=0.3, score_threshold=0.6)
    assert keep.tolist() == [0, 2]  # B decayed to 0.533 < 0.6


def test_soft_nms_empty(be):
    keep, new = mv.soft_nms(be.asarray(np.zeros((0, 4))), be.asarray(np.zeros(0)))
    assert keep.shape == (0,) and new.shape == (0,)


# ----------------------------------------------------------------------------- syncs


def _count_syncs(monkeypatch, xs):
    """Count implicit host syncs of device1 arrays (and data-dependent nonzero calls)."""
    counts = {}
    array_type = type(xs.asarray(0))
    for name in ("__bool__", "__int__", "__float__", "__index__", "__iter__"):
        original = getattr(array_type, name)

        def counted(self, *args, _original=original, _name=name):
            if self.device != xs.Device("CPU_DEVICE"):
                counts[_name] = counts.get(_name, 0) + 1
            return _original(self, *args)

        monkeypatch.setattr(array_type, name, counted)
    original_nonzero = xs.nonzero

    def nonzero(x):
        counts["nonzero"] = counts.get("nonzero", 0) + 1
        return original_nonzero(x)

    monkeypatch.setattr(xs, "nonzero", nonzero)
    return counts


def test_device_path_syncs_only_where_declared(monkeypatch):
    """One ``bool`` per round of the fixed-point iteration, one ``nonzero`` at the end."""
    import array_api_strict as xs

    rounds = []
    original = nms_module.resolve_block

    def resolve(xp, s, alive):
        counts_before = dict(counts)
        out = original(xp, s, alive)
        rounds.append(counts.get("__bool__", 0) - counts_before.get("__bool__", 0))
        return out

    monkeypatch.setattr(nms_module, "resolve_block", resolve)
    monkeypatch.setattr(nms_module, "DEVICE_BLOCK", 40)
    counts = _count_syncs(monkeypatch, xs)
    b, s = clustered(0, 200, np.float32, ties=3)
    d = xs.Device("device1")
    out = mv.nms(xs.asarray(b, device=d), xs.asarray(s, device=d), 0.5, path="device")
    assert_close(out, tv_nms(b, s, 0.5))
    assert len(rounds) == 5 and all(1 <= r <= 41 for r in rounds)
    assert counts == {"__bool__": sum(rounds), "nonzero": 1}, counts


def test_device_path_is_refused_under_no_sync(no_sync):
    import array_api_strict as xs

    d = xs.Device("device1")
    b, s = clustered(0, 20, np.float32)
    with pytest.raises(RuntimeError):
        mv.nms(xs.asarray(b, device=d), xs.asarray(s, device=d), 0.5, path="device")


def test_host_path_copies_once_each_way(no_sync, monkeypatch):
    """The host path makes no implicit sync: one explicit copy per input, one for the output."""
    import array_api_strict as xs

    calls = {"to_numpy": 0, "from_numpy": 0}
    for name in calls:
        original = getattr(nms_module, name)

        def counted(*args, _original=original, _name=name, **kw):
            calls[_name] += 1
            return _original(*args, **kw)

        monkeypatch.setattr(nms_module, name, counted)
    d = xs.Device("device1")
    b, s = clustered(0, 50, np.float32, ties=3)
    idx = np.arange(50) % 3
    out = mv.batched_nms(
        xs.asarray(b, device=d),
        xs.asarray(s, device=d),
        xs.asarray(idx, device=d),
        0.5,
        path="host",
    )
    assert out.device == d
    assert calls == {"to_numpy": 3, "from_numpy": 1}


def test_auto_path_choice(monkeypatch):
    import array_api_strict as xs

    chosen = []
    monkeypatch.setattr(
        nms_module, "_nms_device", lambda *a: chosen.append("device") or a[1][:0, 0]
    )
    monkeypatch.setattr(host, "nms", lambda *a: chosen.append("host") or np.zeros(0, np.int64))
    b, s = np.zeros((2, 4), np.float32), np.zeros(2, np.float32)
    mv.nms(b, s, 0.5)
    mv.nms(torch_of(b), torch_of(s), 0.5)
    d = xs.Device("device1")
    mv.nms(xs.asarray(b, device=d), xs.asarray(s, device=d), 0.5)
    assert chosen == ["host", "host", "device"]


# ----------------------------------------------------------------------------- bad input


CALLS = {
    "nms": lambda b, s: mv.nms(b, s, 0.5),
    "batched_nms": lambda b, s: mv.batched_nms(b, s, np.zeros(3, np.int64), 0.5),
    "soft_nms": lambda b, s: mv.soft_nms(b, s),
}


@pytest.mark.parametrize("name", ["nms", "batched_nms", "soft_nms"])
def test_bad_shapes_and_dtypes(name):
    call = CALLS[name]
    ok_b, ok_s = np.zeros((3, 4), np.float32), np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"boxes must have shape \(N, 4\), got \(3, 5\)"):
        call(np.zeros((3, 5), np.float32), ok_s)
    with pytest.raises(ValueError, match=r"boxes must have shape \(N, 4\), got \(4,\)"):
        call(np.zeros(4, np.float32), ok_s)
    with pytest.raises(
        ValueError, match=r"scores must have shape \(N,\) = \(3,\) to match boxes, got \(2,\)"
    ):
        call(ok_b, np.zeros(2, np.float32))
    with pytest.raises(TypeError, match="boxes must have dtype float32 or float64.*got float16"):
        call(ok_b.astype(np.float16), ok_s.astype(np.float16))
    with pytest.raises(TypeError, match="boxes must have dtype float32 or float64.*got int64"):
        call(ok_b.astype(np.int64), ok_s)
    with pytest.raises(
        TypeError, match=r"scores must have the same dtype as boxes \(float32\), got float64"
    ):
        call(ok_b, ok_s.astype(np.float64))
    with pytest.raises(TypeError, match="boxes must be an array.*got list"):
        call(ok_b.tolist(), ok_s)
    with pytest.raises(TypeError, match="must all come from one array library"):
        call(ok_b, torch_of(ok_s))


def test_bad_thresholds_paths_and_categories():
    b, s = np.zeros((3, 4)), np.zeros(3)
    for fn in (lambda t: mv.nms(b, s, t), lambda t: mv.soft_nms(b, s, t)):
        with pytest.raises(ValueError, match="iou_threshold must be a number, got NaN"):
            fn(nan)
        with pytest.raises(TypeError, match="iou_threshold must be a real number, got str"):
            fn("0.5")
        with pytest.raises(TypeError, match="iou_threshold must be a real number, got bool"):
            fn(True)
    with pytest.raises(ValueError, match="path must be one of"):
        mv.nms(b, s, 0.5, path="gpu")
    with pytest.raises(TypeError, match="idxs must have an integer dtype, got float64"):
        mv.batched_nms(b, s, np.zeros(3), 0.5)
    with pytest.raises(
        ValueError, match=r"idxs must have shape \(N,\) = \(3,\) to match boxes, got \(3, 1\)"
    ):
        mv.batched_nms(b, s, np.zeros((3, 1), np.int64), 0.5)
    with pytest.raises(ValueError, match="sigma must be positive, got 0.0"):
        mv.soft_nms(b, s, sigma=0.0)
    with pytest.raises(ValueError, match="method must be 'linear' or 'gaussian', got 'hard'"):
        mv.soft_nms(b, s, method="hard")
    with pytest.raises(ValueError, match="score_threshold must be a number, got NaN"):
        mv.soft_nms(b, s, score_threshold=nan)
    with pytest.raises(ValueError, match="scores must be finite"):
        mv.soft_nms(b, np.array([0.1, nan, 0.2]))


def test_inputs_are_not_mutated():
    b, s = clustered(2, 120, np.float32, ties=3, nan_scores=2)
    idx = np.arange(120) % 4
    copies = b.copy(), s.copy(), idx.copy()
    for path in PATHS:
        mv.nms(b, s, 0.5, path=path)
        mv.batched_nms(b, s, idx, 0.5, path=path)
    s_finite = np.nan_to_num(s)
    s_copy = s_finite.copy()
    mv.soft_nms(b, s_finite)
    np.testing.assert_array_equal(s_finite, s_copy)
    for orig, now in zip(copies, (b, s, idx)):
        np.testing.assert_array_equal(orig, now)


# ----------------------------------------------------------------------------- tour


@pytest.mark.parametrize("default", [True, False])
def test_tour_stage_boxes_before_and_after_nms(tmp_path, default):
    import matplotlib

    matplotlib.use("Agg")
    from minivision import tour

    image = tour.load_image()[0] if default else np.zeros((120, 200, 3), np.uint8)
    stage = tour.stage_nms(image, tmp_path, default)
    assert stage.figures == ["04_nms.png"]
    assert (tmp_path / "04_nms.png").stat().st_size > 10_000
    boxes, _ = tour.demo_boxes(image.shape, default)
    cand, scores, _ = tour.candidate_detections(boxes, image.shape)
    n_kept = len(tv_nms(cand, scores, 0.5))
    assert f"{len(cand)} jittered" in stage.text and f"{n_kept} boxes remain" in stage.text
