"""Semantic-segmentation metrics against torchmetrics 1.9, scikit-learn and mmsegmentation.

mmsegmentation (which needs mmcv) is not installed: its definitions are transcribed below from
``mmseg/evaluation/metrics/iou_metric.py`` (``intersect_and_union`` and
``total_area_to_metrics``), with ``torch.histc`` over ``[0, C - 1]`` written as ``np.bincount``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from helpers import assert_backend, assert_close
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassJaccardIndex,
)
from torchmetrics.segmentation import DiceScore, MeanIoU

from minivision._backend import to_numpy
from minivision.eval.segmentation import (
    confusion_matrix,
    evaluate_segmentation,
    segmentation_scores,
)

IGNORE = 255
RTOL = 1e-6  # torchmetrics computes in float32


def mmseg_metrics(pred, label, num_classes, ignore_index=IGNORE):
    """mmsegmentation's IoUMetric over a whole data set (both transcribed functions)."""
    mask = label != ignore_index
    pred_label, label = pred[mask], label[mask]

    def histc(x):
        x = x[(x >= 0) & (x <= num_classes - 1)]
        return np.bincount(x, minlength=num_classes).astype(np.float64)

    area_intersect = histc(pred_label[pred_label == label])
    area_pred_label = histc(pred_label)
    area_label = histc(label)
    area_union = area_pred_label + area_label - area_intersect
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "aAcc": area_intersect.sum() / area_label.sum(),
            "IoU": area_intersect / area_union,
            "Acc": area_intersect / area_label,
            "Dice": 2 * area_intersect / (area_pred_label + area_label),
        }


@st.composite
def label_maps(draw, ignore=True):
    """(N, H, W) pred and target with C classes, some classes absent, some pixels ignored."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    c = draw(st.integers(2, 6))  # torchmetrics wants two classes or more
    n, h, w = draw(st.integers(1, 4)), draw(st.integers(1, 9)), draw(st.integers(1, 9))
    present = rng.permutation(c)[: max(1, int(rng.integers(1, c + 1)))]  # a subset of classes
    target = rng.choice(present, (n, h, w))
    noisy = rng.random((n, h, w)) < draw(st.sampled_from([0.0, 0.2, 0.6]))
    pred = np.where(noisy, rng.integers(0, c, (n, h, w)), target)
    if ignore:
        target = np.where(rng.random((n, h, w)) < 0.15, IGNORE, target)
    return pred.astype(np.int64), target.astype(np.int64), c


def flat(a):
    return torch.from_numpy(np.ascontiguousarray(a).reshape(-1))


# ----------------------------------------------------------------------------- the matrix


@given(maps=label_maps())
def test_confusion_matrix_equals_torchmetrics_and_sklearn(be, maps):
    pred, target, c = maps
    ours = to_numpy(confusion_matrix(be.asarray(pred), be.asarray(target), c, IGNORE))
    tm = MulticlassConfusionMatrix(c, ignore_index=IGNORE)(flat(pred), flat(target)).numpy()
    if np.isin(target, np.arange(c)).any():
        sk = sk_confusion_matrix(target.ravel(), pred.ravel(), labels=list(range(c)))
    else:  # scikit-learn refuses a target without any of the labels
        sk = np.zeros((c, c), np.int64)
    np.testing.assert_array_equal(ours, tm)
    np.testing.assert_array_equal(ours, sk)


def test_confusion_matrix_on_every_backend(be):
    pred, target, c = np.array([[0, 1, 2], [2, 2, 0]]), np.array([[0, 1, 1], [2, 255, 0]]), 3
    got = confusion_matrix(be.asarray(pred), be.asarray(target), c, IGNORE)
    assert_backend(got, be)
    assert be.dtype_name(got) == "int64"
    expected = sk_confusion_matrix(target.ravel(), pred.ravel(), labels=[0, 1, 2])
    assert_close(got, expected, what="confusion_matrix")
    per = confusion_matrix(be.asarray(pred), be.asarray(target), c, IGNORE, per_image=True)
    for i in range(2):
        sk_i = sk_confusion_matrix(target[i], pred[i], labels=[0, 1, 2])
        assert_close(per[i, ...], sk_i, what=f"confusion_matrix of image {i}")


def test_values_outside_the_classes_are_not_counted_like_sklearn():
    pred = np.array([0, 1, 7, -1, 2, 1])
    target = np.array([0, 9, 1, 1, 2, -3])
    np.testing.assert_array_equal(
        confusion_matrix(pred, target, 3), sk_confusion_matrix(target, pred, labels=[0, 1, 2])
    )


def test_device_pure(no_sync):
    import array_api_strict as xs

    dev = xs.Device("device1")
    pred = xs.asarray(np.array([[[0, 1], [2, 2]]]), device=dev)
    target = xs.asarray(np.array([[[0, 1], [1, 255]]]), device=dev)
    ev = evaluate_segmentation(pred, target, 3, IGNORE)
    assert ev.dataset.mean_iou.device == dev
    assert ev.per_image.class_iou.shape == (1, 3)


# ----------------------------------------------------------------------------- dataset level


@given(maps=label_maps())
def test_dataset_scores_equal_torchmetrics(be, maps):
    pred, target, c = maps
    ev = evaluate_segmentation(be.asarray(pred), be.asarray(target), c, IGNORE)
    d = ev.dataset
    p, t = flat(pred), flat(target)
    cm = to_numpy(ev.confusion)
    both_absent = (cm.sum(0) + cm.sum(1)) == 0

    def tm(metric, **kw):
        return metric(c, ignore_index=IGNORE, **kw)(p, t).numpy()

    if cm.sum() == 0:  # every pixel ignored: nothing is defined
        assert np.isnan(to_numpy(d.mean_iou)) and np.isnan(to_numpy(d.pixel_accuracy))
        return
    iou_none = tm(MulticlassJaccardIndex, average="none")
    np.testing.assert_allclose(
        to_numpy(d.class_iou)[~both_absent], iou_none[~both_absent], rtol=RTOL
    )
    assert np.isnan(to_numpy(d.class_iou)[both_absent]).all()
    np.testing.assert_allclose(
        to_numpy(d.mean_iou), tm(MulticlassJaccardIndex, average="macro"), rtol=RTOL
    )
    np.testing.assert_allclose(
        to_numpy(d.frequency_weighted_iou),
        tm(MulticlassJaccardIndex, average="weighted"),
        rtol=RTOL,
    )
    np.testing.assert_allclose(
        to_numpy(d.pixel_accuracy), tm(MulticlassAccuracy, average="micro"), rtol=RTOL
    )
    np.testing.assert_allclose(
        to_numpy(d.mean_dice), tm(MulticlassF1Score, average="macro"), rtol=RTOL
    )
    dice_none = tm(MulticlassF1Score, average="none")
    np.testing.assert_allclose(
        to_numpy(d.class_dice)[~both_absent], dice_none[~both_absent], rtol=RTOL
    )
    # mean accuracy: torchmetrics counts a predicted-but-absent class as 0, we (mmseg) skip it
    in_target = cm.sum(1) > 0
    acc_none = tm(MulticlassAccuracy, average="none")
    np.testing.assert_allclose(
        to_numpy(d.class_accuracy)[in_target], acc_none[in_target], rtol=RTOL
    )
    assert np.isnan(to_numpy(d.class_accuracy)[~in_target]).all()
    if np.array_equal(in_target, ~both_absent):
        np.testing.assert_allclose(
            to_numpy(d.mean_accuracy), tm(MulticlassAccuracy, average="macro"), rtol=RTOL
        )


@given(label_maps())
def test_dataset_scores_equal_mmsegmentation_exactly(maps):
    pred, target, c = maps
    d = evaluate_segmentation(pred, target, c, IGNORE).dataset
    ref = mmseg_metrics(pred, target, c)
    assert_close(d.class_iou, ref["IoU"], what="IoU")
    assert_close(d.class_accuracy, ref["Acc"], what="Acc")
    assert_close(d.class_dice, ref["Dice"], what="Dice")
    assert_close(d.pixel_accuracy, np.float64(ref["aAcc"]), what="aAcc")
    for ours, key in ((d.mean_iou, "IoU"), (d.mean_accuracy, "Acc"), (d.mean_dice, "Dice")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of all-NaN is NaN
            expected = np.nanmean(ref[key])
        np.testing.assert_allclose(to_numpy(ours), expected, rtol=1e-15, err_msg=f"m{key}")


def test_absent_class_policy_by_hand():
    """Class 2 is nowhere, class 3 only predicted: NaN and 0 IoU; mIoU skips only the NaN."""
    target = np.array([[0, 0, 1, 1]])
    pred = np.array([[0, 0, 1, 3]])
    d = evaluate_segmentation(pred, target, 4).dataset
    np.testing.assert_array_equal(d.class_iou, [1.0, 0.5, np.nan, 0.0])
    assert d.mean_iou == pytest.approx(1.5 / 3)
    np.testing.assert_array_equal(d.class_accuracy, [1.0, 0.5, np.nan, np.nan])
    assert d.mean_accuracy == 0.75
    tm_acc = MulticlassAccuracy(4, average="macro")(flat(pred), flat(target)).item()
    assert tm_acc == pytest.approx(1.5 / 3)  # torchmetrics: class 3 counts, as 0
    np.testing.assert_array_equal(d.class_dice, [1.0, 2 / 3, np.nan, 0.0])
    assert d.frequency_weighted_iou == pytest.approx(0.5 * 1.0 + 0.5 * 0.5)


# ----------------------------------------------------------------------------- per image


@given(maps=label_maps(ignore=False))
def test_per_image_scores_equal_torchmetrics(be, maps):
    pred, target, c = maps
    ev = evaluate_segmentation(be.asarray(pred), be.asarray(target), c)
    tp, tt = torch.from_numpy(pred), torch.from_numpy(target)
    from torchmetrics.functional.segmentation import mean_iou

    per_class = mean_iou(tp, tt, c, per_class=True, input_format="index").numpy()
    ours = to_numpy(ev.per_image.class_iou)
    np.testing.assert_allclose(np.where(np.isnan(ours), -1.0, ours), per_class, rtol=RTOL)
    np.testing.assert_allclose(
        to_numpy(ev.per_image.mean_iou),
        mean_iou(tp, tt, c, input_format="index").numpy(),
        rtol=RTOL,
    )
    metric = MeanIoU(c, per_class=True, input_format="index")
    mean = to_numpy(ev.per_image_mean.class_iou)
    np.testing.assert_allclose(
        np.where(np.isnan(mean), -1.0, mean), metric(tp, tt).numpy(), rtol=RTOL
    )
    pooled = MeanIoU(c, input_format="index")(tp, tt).item()  # the mean over (image, class) pairs
    assert np.nanmean(ours) == pytest.approx(pooled, rel=RTOL)
    for average, field in (("macro", "mean_dice"), ("none", "class_dice")):
        dice = DiceScore(c, average=average, input_format="index")(tp, tt).numpy()
        np.testing.assert_allclose(to_numpy(getattr(ev.per_image_mean, field)), dice, rtol=RTOL)
    glob = DiceScore(c, average="macro", aggregation_level="global", input_format="index")
    np.testing.assert_allclose(to_numpy(ev.dataset.mean_dice), glob(tp, tt).numpy(), rtol=RTOL)


def test_every_backend_gives_the_numpy_scores(be):
    pred, target, c = _fixed_maps()
    ref = evaluate_segmentation(pred, target, c, IGNORE)
    got = evaluate_segmentation(be.asarray(pred), be.asarray(target), c, IGNORE)
    rtol = 0 if be.name == "numpy" else 1e-6
    for part in ("dataset", "per_image", "per_image_mean"):
        for name in (
            "pixel_accuracy",
            "class_iou",
            "mean_iou",
            "frequency_weighted_iou",
            "class_accuracy",
            "mean_accuracy",
            "class_dice",
            "mean_dice",
        ):
            value = getattr(getattr(got, part), name)
            if isinstance(value, np.generic):  # NumPy's reductions give NumPy scalars
                assert be.name == "numpy"
            else:
                assert_backend(value, be)
            assert_close(
                value,
                getattr(getattr(ref, part), name),
                what=f"{part}.{name}",
                rtol=rtol,
                check_dtype=False,
            )


def _fixed_maps():
    rng = np.random.default_rng(3)
    target = rng.integers(0, 4, (3, 6, 7))
    target[0] = np.where(target[0] == 2, 0, target[0])  # class 2 absent from image 0
    pred = np.where(rng.random(target.shape) < 0.3, rng.integers(0, 5, target.shape), target)
    pred = np.where(pred == 4, 3, pred)
    target = np.where(rng.random(target.shape) < 0.1, IGNORE, target)
    return pred, target, 5


def test_scores_of_a_stack_are_the_scores_of_each_matrix():
    pred, target, c = _fixed_maps()
    per = confusion_matrix(pred, target, c, IGNORE, per_image=True)
    stacked = segmentation_scores(per)
    for i in range(len(per)):
        one = segmentation_scores(per[i])
        np.testing.assert_array_equal(stacked.class_iou[i], one.class_iou)
        np.testing.assert_array_equal(stacked.mean_dice[i], one.mean_dice)


# ----------------------------------------------------------------------------- bad input


def test_bad_input_is_named():
    a = np.zeros((2, 3), np.int64)
    with pytest.raises(TypeError, match="pred must hold integer"):
        confusion_matrix(a.astype(float), a, 3)
    with pytest.raises(ValueError, match="one shape"):
        confusion_matrix(a, a[:1], 3)
    with pytest.raises(ValueError, match="num_classes"):
        confusion_matrix(a, a, 0)
    with pytest.raises(ValueError, match="ignore_index must be an int outside"):
        confusion_matrix(a, a, 3, ignore_index=1)
    with pytest.raises(TypeError, match="one array library"):
        confusion_matrix(a, torch.zeros((2, 3), dtype=torch.int64), 3)
    with pytest.raises(ValueError, match="confmat must have shape"):
        segmentation_scores(np.zeros((2, 3)))


def test_inputs_are_not_mutated():
    pred, target, c = _fixed_maps()
    p0, t0 = pred.copy(), target.copy()
    evaluate_segmentation(pred, target, c, IGNORE)
    np.testing.assert_array_equal(pred, p0)
    np.testing.assert_array_equal(target, t0)
