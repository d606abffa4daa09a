"""Proposal recall, average recall and MABO against textbook loops and torchvision's IoU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.ops as tv
from helpers import assert_backend, assert_close
from hypothesis import given
from hypothesis import strategies as st

from minivision._backend import to_numpy
from minivision.eval.proposals import (
    AR_IOU_THRESHOLDS,
    average_recall,
    best_overlap,
    mabo,
    proposal_recall,
)


def textbook(gt, props, labels, thresholds):
    """One ground-truth box at a time, as the selective-search paper describes the measures."""
    best = []
    for g in gt:
        ious = [tv.box_iou(torch.tensor([g]), torch.tensor([p]))[0, 0].item() for p in props]
        best.append(max(ious, default=0.0))
    best = np.array(best)
    recall = [np.mean([b >= t for b in best]) for t in thresholds]
    per_class = [np.mean([b for b, l in zip(best, labels) if l == c]) for c in sorted(set(labels))]
    return best, np.array(recall), float(np.mean(per_class))


@st.composite
def boxes(draw, n_max=12):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(0, n_max))
    xy = rng.integers(0, 30, (n, 2))
    wh = rng.integers(1, 20, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float64)


@given(boxes(), boxes(), st.integers(0, 2**32 - 1))
def test_measures_equal_the_textbook(gt, props, seed):
    if len(gt) == 0:
        return
    labels = np.random.default_rng(seed).integers(0, 3, len(gt))
    t = AR_IOU_THRESHOLDS
    best, recall, m = textbook(gt.tolist(), props.tolist(), labels.tolist(), t)
    ours = best_overlap(gt, props)
    np.testing.assert_allclose(ours, best, rtol=1e-6)  # the textbook IoU is torch float32
    np.testing.assert_array_equal(
        proposal_recall(ours, t), np.mean(ours[None] >= np.array(t)[:, None], 1)
    )
    np.testing.assert_allclose(proposal_recall(ours, t), recall, atol=1 / len(gt) + 1e-12)
    assert float(average_recall(ours)) == pytest.approx(np.mean(proposal_recall(ours, t)))
    assert float(mabo(ours, labels)) == pytest.approx(m, rel=1e-6)


def test_the_thresholds_are_cocos():
    assert AR_IOU_THRESHOLDS == tuple(np.linspace(0.5, 0.95, 10).tolist())


def test_budgets_take_the_first_k_proposals():
    gt = np.array([[0.0, 0, 10, 10], [20, 20, 30, 30]])
    props = np.array([[0.0, 0, 10, 5], [20, 20, 30, 30], [0, 0, 10, 10]])
    got = best_overlap(gt, props, ks=[0, 1, 2, 3, 100])
    np.testing.assert_array_equal(got, [[0, 0], [0.5, 0], [0.5, 1], [1, 1], [1, 1]])
    np.testing.assert_array_equal(proposal_recall(got, [0.5]), [[0.0], [0.5], [1.0], [1.0], [1.0]])
    np.testing.assert_array_equal(best_overlap(gt, np.zeros((0, 4))), [0.0, 0.0])


def test_recall_counts_iou_equal_to_the_threshold():
    np.testing.assert_array_equal(
        proposal_recall(np.array([0.5, 0.7, 0.69]), [0.5, 0.7]), [1, 1 / 3]
    )


def test_mabo_weighs_classes_equally():
    best = np.array([1.0, 1.0, 1.0, 0.0])
    assert float(mabo(best, np.array([0, 0, 0, 1]))) == 0.5
    assert np.isnan(float(mabo(np.zeros(0), np.zeros(0, np.int64))))
    assert np.isnan(proposal_recall(np.zeros(0), [0.5])).all()


def test_every_backend(be):
    rng = np.random.default_rng(1)
    gt = np.round(
        np.sort(rng.uniform(0, 50, (6, 2, 2)), axis=1).transpose(0, 2, 1).reshape(6, 4), 1
    )
    gt = gt[:, [0, 2, 1, 3]]
    props = gt[rng.integers(0, 6, 20)] + rng.normal(0, 2, (20, 4))
    labels = rng.integers(0, 3, 6)
    gt, props = gt.astype(be.np_float), props.astype(be.np_float)  # same float on both sides
    ref = best_overlap(gt, props, ks=[5, 20])
    got = best_overlap(be.asarray(gt), be.asarray(props), ks=[5, 20])
    assert_backend(got, be)
    assert_close(got, ref, what="best_overlap")
    r = proposal_recall(got, (0.5, 0.7))
    assert_backend(r, be)
    assert_close(r, proposal_recall(ref, (0.5, 0.7)), what="recall")
    assert_close(average_recall(got), average_recall(ref), rtol=1e-6, what="AR")
    m = mabo(got[1, ...], be.asarray(labels))
    # the standard scatter-add sums through a running total: float32 rounding
    assert_close(m, mabo(ref[1], labels), rtol=1e-6, what="MABO")


def test_device_pure(no_sync):
    import array_api_strict as xs

    dev = xs.Device("device1")
    gt = xs.asarray([[0.0, 0, 10, 10]], device=dev)
    props = xs.asarray([[0.0, 0, 10, 5], [0, 0, 10, 9]], device=dev)
    best = best_overlap(gt, props, ks=[1, 2])
    assert average_recall(best).device == dev


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="gt_boxes"):
        best_overlap(np.zeros((3, 5)), np.zeros((2, 4)))
    with pytest.raises(TypeError, match="proposals must be an array"):
        best_overlap(np.zeros((3, 4)), [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match="best_iou and labels"):
        mabo(np.zeros(3), np.zeros(2, np.int64))
    with pytest.raises(TypeError, match="best_iou must be a floating"):
        proposal_recall(np.zeros(3, np.int64))
    assert to_numpy(best_overlap(np.zeros((0, 4)), np.zeros((2, 4)))).shape == (0,)
