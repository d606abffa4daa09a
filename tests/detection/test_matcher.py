"""minivision.detection.matcher against torchvision's Matcher and BalancedPositiveNegativeSampler (0.29.1).

Matching is exact (integers out of comparisons), so every comparison is bitwise, on every
backend. torchvision's sampler draws from torch's global generator, which nothing else can
reproduce: its *counts* are compared exactly, its choice is checked for membership, balance,
uniformity and reproducibility, and :func:`balanced_sample` (the rule with an explicit
priority) is compared with a textbook loop written here.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import assert_backend, assert_close
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler as TvSampler
from torchvision.models.detection._utils import Matcher as TvMatcher
from torchvision.ops import box_iou as tv_box_iou

from minivision._backend import to_numpy
from minivision.detection.matcher import BalancedPositiveNegativeSampler, Matcher, balanced_sample
from minivision.ops.boxes import box_iou

nan = float("nan")


def tv_match(q, high, low, allow):
    return TvMatcher(high, low, allow)(torch.from_numpy(np.ascontiguousarray(q))).numpy()


def check_match(be, q, high, low, allow):
    q = np.asarray(q, dtype=be.np_float)
    out = Matcher(high, low, allow)(be.asarray(q))
    assert_backend(out, be)
    assert_close(out, tv_match(q, high, low, allow), what=f"matches (allow_low_quality={allow})")
    return to_numpy(out)


# ----------------------------------------------------------------------------- Matcher: cases

# 3 ground truths x 6 predictions
Q = [
    [0.9, 0.7, 0.69, 0.3, 0.1, 0.0],
    [0.2, 0.7, 0.5, 0.29, 0.1, 0.0],
    [0.0, 0.1, 0.6, 0.3, 0.25, 0.0],
]


@pytest.mark.parametrize("allow", [False, True])
@pytest.mark.parametrize("high,low", [(0.7, 0.3), (0.5, 0.5), (0.6, 0.1), (1.0, 0.0)])
def test_matcher_fixed_matrix(be, no_sync, allow, high, low):
    """Values exactly at both thresholds (>= semantics), high == low (no -2), ties across GTs."""
    check_match(be, Q, high, low, allow)


def test_matcher_thresholds_by_hand(be, no_sync):
    out = check_match(be, Q, 0.7, 0.3, False)
    # 0.9 -> GT 0; 0.7 tie of GTs 0 and 1 -> GT 0; 0.69 and 0.6 between; 0.3 at low -> between;
    # 0.25 below; the all-zero column below
    np.testing.assert_array_equal(out, [0, 0, -2, -2, -1, -1])


def test_low_quality_promotes_ties_and_assigns_the_own_best_gt(be, no_sync):
    """GT 1's best predictions are 0 and 2 (tied at 0.4). Prediction 2's own best GT is 0
    (0.45), so the promotion from GT 1 assigns it to GT 0; nothing is demoted."""
    q = [
        [0.1, 0.95, 0.45, 0.0],
        [0.4, 0.3, 0.4, 0.0],
    ]
    out = check_match(be, q, 0.7, 0.3, True)
    np.testing.assert_array_equal(out, [1, 0, 0, -1])
    np.testing.assert_array_equal(check_match(be, q, 0.7, 0.3, False), [-2, 0, -2, -1])


def test_gt_without_overlap_makes_every_prediction_positive(be, no_sync):
    """§10's pitfall, with real IoUs: a GT that overlaps no anchor has best quality 0, and every
    anchor with IoU 0 to it is 'promoted' to its own best GT -- here every anchor."""
    anchors = np.array([[0, 0, 10, 10], [10, 0, 20, 10], [0, 10, 10, 20], [30, 30, 40, 40]], float)
    gt = np.array([[1, 1, 9, 9], [100, 100, 120, 120]], float)  # the second is far away
    q = to_numpy(box_iou(be.asarray(gt), be.asarray(anchors)))
    out = check_match(be, q, 0.7, 0.3, True)
    np.testing.assert_array_equal(out, [0, 0, 0, 0])  # even anchors far from everything
    # without the far GT only the real best match is promoted
    np.testing.assert_array_equal(check_match(be, q[:1], 0.7, 0.3, True), [0, -1, -1, -1])


def test_nan_quality_matches_like_torchvision(be, no_sync):
    q = [[0.2, nan, 0.8, nan], [nan, 0.9, 0.1, nan], [0.5, 0.1, nan, 0.2]]
    for allow in (False, True):
        out = check_match(be, q, 0.7, 0.3, allow)
        np.testing.assert_array_equal(out[:2], [1, 0])  # NaN is the maximum: the first NaN's GT


def test_single_gt_and_single_prediction(be, no_sync):
    check_match(be, [[0.1, 0.5, 0.8]], 0.7, 0.3, True)
    check_match(be, [[0.1], [0.5], [0.8]], 0.7, 0.3, False)


def test_empty_matrices_raise_torchvision_errors(be):
    with pytest.raises(ValueError, match="No ground-truth boxes available"):
        Matcher(0.7, 0.3)(be.asarray(np.zeros((0, 5))))
    with pytest.raises(ValueError, match="No proposal boxes available"):
        Matcher(0.7, 0.3)(be.asarray(np.zeros((2, 0))))


# ----------------------------------------------------------------------------- Matcher: property

LEVELS = [0.0, 0.1, 0.29, 0.3, 0.5, 0.69, 0.7, 0.9, 1.0]


@given(
    q=st.tuples(st.integers(1, 6), st.integers(1, 12)).flatmap(
        lambda s: arrays(
            np.float64,
            s,
            elements=st.one_of(st.sampled_from(LEVELS), st.floats(0, 1, width=32)),
        )
    ),
    thresholds=st.tuples(st.sampled_from(LEVELS), st.sampled_from(LEVELS)).map(sorted),
    allow=st.booleans(),
)
def test_matcher_property_every_backend(be, no_sync, q, thresholds, allow):
    """Qualities from a few levels (ties everywhere, values at the thresholds) and random ones."""
    low, high = thresholds
    check_match(be, q, high, low, allow)


@given(
    gt=st.integers(1, 4).flatmap(lambda n: arrays(np.int64, (n, 4), elements=st.integers(0, 40))),
    allow=st.booleans(),
)
def test_matcher_on_anchor_ious_property(be, no_sync, gt, allow):
    """Integer boxes on an anchor grid: exact IoU ties, GTs overlapping nothing, zero-area GTs."""
    gt = np.concatenate([np.minimum(gt[:, :2], gt[:, 2:]), np.maximum(gt[:, :2], gt[:, 2:])], 1)
    xs = np.arange(0, 40, 8)
    anchors = np.array([[x, y, x + w, y + h] for y in xs for x in xs for w, h in ((8, 8), (16, 8))])
    with np.errstate(invalid="ignore"):
        q = tv_box_iou(
            torch.from_numpy(gt.astype(be.np_float)), torch.from_numpy(anchors.astype(be.np_float))
        ).numpy()
    check_match(be, q, 0.7, 0.3, allow)


# ----------------------------------------------------------------------------- sampler


def tv_counts(labels, batch, fraction):
    pos, neg = TvSampler(batch, fraction)([torch.from_numpy(np.asarray(labels))])
    return int(pos[0].sum()), int(neg[0].sum())


SAMPLER_CASES = {
    "plenty of both": (np.r_[np.ones(40), np.zeros(300), -np.ones(50)], 64, 0.25),
    "few positives: back-filled with negatives": (np.r_[np.ones(3), np.zeros(100)], 16, 0.5),
    "few negatives: not back-filled": (np.r_[np.ones(6), -np.ones(4)], 4, 0.5),
    "nothing to sample": (-np.ones(10), 8, 0.5),
    "labels >= 2 are positive": (np.r_[[2, 5, 1, 0, 0, -1, 3, 0]], 4, 0.5),
    "floor of 255 * 0.25 = 63": (np.r_[np.ones(100), np.zeros(400)], 255, 0.25),
    "fraction 0 and 1": (np.r_[np.ones(5), np.zeros(5)], 6, 1.0),
    "batch 0": (np.r_[np.ones(5), np.zeros(5)], 0, 0.5),
}


@pytest.mark.parametrize("case", SAMPLER_CASES)
@pytest.mark.parametrize("dtype", ["float", "int64"])
def test_sampler_counts_and_membership_match_torchvision(be, no_sync, case, dtype):
    labels, batch, fraction = SAMPLER_CASES[case]
    labels = labels.astype(be.np_float if dtype == "float" else dtype)
    pos, neg = BalancedPositiveNegativeSampler(batch, fraction, seed=3)([be.asarray(labels)])
    assert_backend(pos[0], be)
    assert be.dtype_name(pos[0]) == be.dtype_name(neg[0]) == "uint8"
    p, n = to_numpy(pos[0]).astype(bool), to_numpy(neg[0]).astype(bool)
    assert (p.sum(), n.sum()) == tv_counts(labels, batch, fraction)
    assert np.all(labels[p] >= 1) and np.all(labels[n] == 0)
    assert not np.any(p & n)


def test_sampler_per_image_and_reproducible_across_backends(be, no_sync):
    rng = np.random.default_rng(0)
    images = [rng.choice([-1, 0, 0, 0, 1], 500).astype(np.float64) for _ in range(3)]
    reference = BalancedPositiveNegativeSampler(64, 0.25, seed=1234)(images)
    sampler = BalancedPositiveNegativeSampler(64, 0.25, seed=1234)
    out = sampler([be.asarray(x.astype(be.np_float)) for x in images])
    for got, expected in zip(out[0] + out[1], reference[0] + reference[1]):
        assert_close(got, expected, what="the same seed's masks")
    assert to_numpy(out[0][0]).sum() == 16 and to_numpy(out[1][0]).sum() == 48
    again = sampler([be.asarray(x.astype(be.np_float)) for x in images])  # the next call differs
    assert not np.array_equal(to_numpy(again[0][0]), to_numpy(out[0][0]))
    other = BalancedPositiveNegativeSampler(64, 0.25, seed=1235)(images)
    assert not np.array_equal(other[0][0], reference[0][0])
    assert not np.array_equal(out[0][0], out[0][1])  # images draw different streams


def test_sampler_is_uniform():
    """Each of 20 positives is chosen by 5-of-20 draws with probability 1/4: over 2,000 calls
    each count is Binomial(2000, 1/4) (mean 500, sd 19); 5 sd either side never fails by chance
    in practice. Pairs must be uncorrelated too: two fixed positives together 1/4 * 4/19."""
    labels = np.r_[np.ones(20), np.zeros(2)]
    sampler = BalancedPositiveNegativeSampler(5, 1.0, seed=7)
    hits = np.zeros(20)
    both = 0
    for _ in range(2000):
        p = sampler([labels])[0][0][:20].astype(bool)
        hits += p
        both += p[3] and p[11]
    assert np.all(np.abs(hits - 500) < 5 * 19.4), hits
    expected = 2000 * 0.25 * 4 / 19
    assert abs(both - expected) < 5 * np.sqrt(expected)


def textbook_balanced_sample(labels, priority, batch, fraction):
    order = sorted(range(len(labels)), key=lambda i: (priority[i], i))
    pos, neg = np.zeros(len(labels), bool), np.zeros(len(labels), bool)
    num_pos = min(int(batch * fraction), int(np.sum(labels >= 1)))
    num_neg = min(batch - num_pos, int(np.sum(labels == 0)))
    for i in order:
        if labels[i] >= 1 and pos.sum() < num_pos:
            pos[i] = True
        elif labels[i] == 0 and neg.sum() < num_neg:
            neg[i] = True
    return pos, neg


@given(
    labels=arrays(np.int64, st.integers(0, 40), elements=st.sampled_from([-1, 0, 0, 1, 2])),
    batch=st.integers(0, 30),
    fraction=st.sampled_from([0.0, 0.25, 0.5, 0.7, 1.0]),
    data=st.data(),
)
def test_balanced_sample_property_every_backend(be, no_sync, labels, batch, fraction, data):
    """The rule with an explicit priority (ties included: lower index first) vs a textbook loop."""
    priority = data.draw(arrays(np.int64, labels.shape, elements=st.integers(0, 5)))
    pos, neg = balanced_sample(be.asarray(labels), be.asarray(priority), batch, fraction)
    ref_pos, ref_neg = textbook_balanced_sample(labels, priority, batch, fraction)
    assert_close(pos, ref_pos, what="positives")
    assert_close(neg, ref_neg, what="negatives")


def test_priorities_are_a_permutation_of_distinct_values():
    s = BalancedPositiveNegativeSampler(256, 0.5, seed=2**70 + 5)
    p = s.priorities(100_000, call=3, image=1, like=np.zeros(1))
    assert p.dtype == np.int64 and p.min() >= 0 and p.max() < 2**32
    assert len(np.unique(p)) == len(p)
    assert not np.array_equal(p, s.priorities(100_000, call=4, image=1, like=np.zeros(1)))


def test_sampler_without_a_seed_draws_one():
    a = BalancedPositiveNegativeSampler(8, 0.5)
    b = BalancedPositiveNegativeSampler(8, 0.5)
    assert isinstance(a.seed, int) and a.seed != b.seed


# ----------------------------------------------------------------------------- bad input


def test_bad_input(be):
    with pytest.raises(ValueError, match="low_threshold must be <= high_threshold"):
        Matcher(0.3, 0.7)
    with pytest.raises(TypeError, match="high_threshold must be a real number"):
        Matcher("0.7", 0.3)
    with pytest.raises(ValueError, match=r"match_quality_matrix must have shape \(M, N\)"):
        Matcher(0.7, 0.3)(be.asarray(np.zeros(4)))
    with pytest.raises(TypeError, match="match_quality_matrix must be floating point"):
        Matcher(0.7, 0.3)(be.asarray(np.zeros((2, 2), dtype=np.int32)))
    with pytest.raises(ValueError, match="positive_fraction must be a number in"):
        BalancedPositiveNegativeSampler(8, 1.5)
    with pytest.raises(ValueError, match="batch_size_per_image must be a non-negative integer"):
        BalancedPositiveNegativeSampler(-1, 0.5)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        BalancedPositiveNegativeSampler(8, 0.5, seed=-3)
    sampler = BalancedPositiveNegativeSampler(8, 0.5, seed=0)
    with pytest.raises(TypeError, match="matched_idxs must be a list"):
        sampler(be.asarray(np.zeros(4)))
    with pytest.raises(ValueError, match=r"matched_idxs\[0\] must have shape \(N,\)"):
        sampler([be.asarray(np.zeros((2, 2)))])
    with pytest.raises(ValueError, match="labels and priority must have one shape"):
        balanced_sample(be.asarray(np.zeros(4)), be.asarray(np.zeros(3)), 4, 0.5)


def test_inputs_are_not_mutated():
    q = np.array(Q)
    labels = np.r_[np.ones(5), np.zeros(5), -np.ones(2)]
    copies = q.copy(), labels.copy()
    Matcher(0.7, 0.3, True)(q)
    BalancedPositiveNegativeSampler(4, 0.5, seed=0)([labels])
    np.testing.assert_array_equal(copies[0], q)
    np.testing.assert_array_equal(copies[1], labels)
