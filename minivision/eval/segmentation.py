"""Semantic-segmentation metrics: the confusion matrix and every score read from it.

Each pixel is one classification, so a label map ``pred`` against ``target`` fills a
``(C, C)`` confusion matrix ``M`` (row = true class, column = predicted class; scikit-learn's
and torchmetrics' layout). Per class ``c``: true positives ``TP_c = M[c, c]``, false negatives
``FN_c = sum_j M[c, j] - TP_c``, false positives ``FP_c = sum_i M[i, c] - TP_c``, and

* pixel accuracy  ``sum_c TP_c / sum M``  (torchmetrics ``MulticlassAccuracy(average="micro")``,
  mmsegmentation ``aAcc``);
* class accuracy  ``TP_c / (TP_c + FN_c)`` (recall), its mean over classes is *mean accuracy*;
* IoU (Jaccard)   ``TP_c / (TP_c + FP_c + FN_c)``, its mean is *mIoU*;
* frequency-weighted IoU ``sum_c (TP_c + FN_c) IoU_c / sum M`` (Long et al., FCN, 2015);
* Dice (F1)       ``2 TP_c / (2 TP_c + FP_c + FN_c)``, its mean is *mDice*.

Absent classes -- the policy, stated once
-----------------------------------------
A score whose denominator is 0 is **NaN**, and every mean over classes skips NaN (a NaN-mean).
So a class absent from both ``pred`` and ``target`` has NaN IoU and Dice and does not pull mIoU
down (mmsegmentation's ``nanmean``; torchmetrics' ``MulticlassJaccardIndex`` gives such a class
weight 0, and ``MeanIoU`` marks it -1). A class that is predicted but absent from the target has
IoU 0 and Dice 0 (it is all false positives) but NaN accuracy, since its recall is 0 / 0:
mean accuracy then follows mmsegmentation (``nanmean`` of ``TP / label area``), whereas
torchmetrics' ``MulticlassAccuracy(average="macro")`` counts that class as 0.

Dataset-level or per image
--------------------------
:func:`evaluate_segmentation` gives both: the scores of the *summed* matrix (every pixel of the
data set weighs the same: mmsegmentation's ``IoUMetric``, torchmetrics' ``MulticlassJaccardIndex``)
and the scores of each image's own matrix (torchmetrics' ``MeanIoU`` and ``DiceScore``, which
average per image). They differ: a class that covers a few pixels of one image counts little in
the first and as much as any other in the second.

All functions are array code and device-pure (no host synchronisation, no data-dependent shape):
the matrix is one scatter-add (:func:`minivision._backend.scatter_add`), the scores are
element-wise arithmetic on it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from .._backend import device, namespace_of, scatter_add
from ._class_args import check_class_arguments
from ._nan import nan_divide as _divide
from ._nan import nanmean as _nanmean

__all__ = [
    "confusion_matrix",
    "segmentation_scores",
    "evaluate_segmentation",
    "SegmentationScores",
    "SegmentationEvaluation",
]


def confusion_matrix(pred, target, num_classes: int, ignore_index=None, *, per_image=False):
    """Count (true class, predicted class) pairs over all pixels.

    Parameters
    ----------
    pred, target : integer (or bool) arrays of one shape, e.g. (N, H, W) or (H, W)
        Predicted and true class of each pixel (for scores, pass ``argmax`` over the class axis).
    num_classes : int
        ``C``; classes are ``0 .. C-1``.
    ignore_index : int, optional
        Target value of pixels that are not scored (VOC and Cityscapes use 255). It must not be
        a class: to leave a class out of a mean, drop its entry from the per-class scores.
    per_image : bool
        Count each index of the first axis (each image) separately.

    Returns
    -------
    int64 array of shape (C, C), or (N, C, C) with ``per_image``
        ``M[i, j]`` = number of pixels of true class ``i`` predicted as ``j``.

    Notes
    -----
    A pixel whose target or prediction lies outside ``[0, C)`` is not counted (an ignored pixel
    is one such): scikit-learn's ``confusion_matrix(..., labels=range(C))`` drops those samples
    too. No value is checked, which would need a host synchronisation. Device-pure: one
    scatter-add into ``C * C`` (or ``N * C * C``) bins.
    """
    xp = namespace_of(pred=pred, target=target)
    for name, a in (("pred", pred), ("target", target)):
        if not (xp.isdtype(a.dtype, "integral") or a.dtype == xp.bool):
            raise TypeError(f"{name} must hold integer class indices, got dtype {a.dtype}")
    if tuple(pred.shape) != tuple(target.shape):
        raise ValueError(
            f"pred and target must have one shape, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    check_class_arguments(num_classes, ignore_index)
    if per_image and pred.ndim < 1:
        raise ValueError("per_image needs arrays with an image axis first, got 0-d arrays")
    c = num_classes
    n = pred.shape[0] if per_image else 1
    p = xp.reshape(xp.astype(pred, xp.int64), (n, -1))  # (N, P)
    t = xp.reshape(xp.astype(target, xp.int64), (n, -1))
    counted = (p >= 0) & (p < c) & (t >= 0) & (t < c)
    if ignore_index is not None:
        counted = counted & (t != ignore_index)
    dev = device(p)
    image = xp.reshape(xp.arange(n, dtype=xp.int64, device=dev), (n, 1))
    bins = xp.where(counted, (image * c + t) * c + p, xp.zeros_like(p))  # (N, P) in [0, N*C*C)
    zeros = xp.zeros((n * c * c,), dtype=xp.int64, device=dev)
    counts = scatter_add(
        zeros, xp.reshape(bins, (-1,)), xp.reshape(xp.astype(counted, xp.int64), (-1,))
    )
    return xp.reshape(counts, (n, c, c) if per_image else (c, c))


@dataclass(frozen=True)
class SegmentationScores:
    """Scores read from a confusion matrix; each field has the matrix's leading axes ``(...)``.

    ``class_*`` fields have a last axis of length ``C``. NaN marks an undefined score (0 / 0)
    and every ``mean_*`` skips NaN (see the module docstring for the policy).
    """

    pixel_accuracy: object  # (...)
    class_accuracy: object  # (..., C)
    mean_accuracy: object  # (...)
    class_iou: object  # (..., C)
    mean_iou: object  # (...)
    frequency_weighted_iou: object  # (...)
    class_dice: object  # (..., C)
    mean_dice: object  # (...)


def segmentation_scores(confmat, dtype=None) -> SegmentationScores:
    """Every score of the module docstring from a confusion matrix (or a stack of them).

    Parameters
    ----------
    confmat : array of shape (..., C, C)
        Rows are true classes, columns predicted ones (:func:`confusion_matrix`).
    dtype : floating dtype, optional
        Of the scores; default the array library's default float (float64 in NumPy, float32 in
        torch).

    Returns
    -------
    SegmentationScores
        Device-pure.
    """
    xp = namespace_of(confmat=confmat)
    if confmat.ndim < 2 or confmat.shape[-1] != confmat.shape[-2]:
        raise ValueError(f"confmat must have shape (..., C, C), got {tuple(confmat.shape)}")
    if dtype is None:
        info = xp.__array_namespace_info__()
        dtype = info.default_dtypes(device=device(confmat))["real floating"]
    m = xp.astype(confmat, dtype)
    c = m.shape[-1]
    eye = xp.eye(c, dtype=xp.bool, device=device(m))
    tp = xp.sum(xp.where(eye, m, xp.zeros_like(m)), axis=-1)  # (..., C): the diagonal
    true_c = xp.sum(m, axis=-1)  # TP + FN: pixels of each true class (the row sums)
    pred_c = xp.sum(m, axis=-2)  # TP + FP: pixels predicted as each class
    total = xp.sum(true_c, axis=-1)  # (...)
    union = true_c + pred_c - tp
    iou = _divide(xp, tp, union)
    accuracy = _divide(xp, tp, true_c)
    dice = _divide(xp, 2 * tp, true_c + pred_c)
    # (support * IoU) / total, summed, as torchmetrics' average="weighted"; absent classes add 0
    weighted = _divide(xp, xp.where(true_c > 0, true_c * iou, xp.zeros_like(iou)), total[..., None])
    return SegmentationScores(
        pixel_accuracy=_divide(xp, xp.sum(tp, axis=-1), total),
        class_accuracy=accuracy,
        mean_accuracy=_nanmean(xp, accuracy),
        class_iou=iou,
        mean_iou=_nanmean(xp, iou),
        frequency_weighted_iou=xp.sum(weighted, axis=-1),
        class_dice=dice,
        mean_dice=_nanmean(xp, dice),
    )


@dataclass(frozen=True)
class SegmentationEvaluation:
    """Dataset-level and per-image scores side by side (see the module docstring).

    ``dataset``: scores of the summed matrix. ``per_image``: scores of each image's matrix,
    every field with a leading axis ``N``. ``per_image_mean``: those averaged over the images,
    skipping NaN (an image without a class says nothing about it) -- torchmetrics' per-image
    convention: ``MeanIoU(per_class=True)`` is ``per_image_mean.class_iou`` (with -1 for NaN)
    and ``DiceScore(average="macro")`` is ``per_image_mean.mean_dice``.
    """

    confusion: object  # (C, C)
    per_image_confusion: object  # (N, C, C)
    dataset: SegmentationScores
    per_image: SegmentationScores
    per_image_mean: SegmentationScores


def evaluate_segmentation(pred, target, num_classes: int, ignore_index=None):
    """Confusion matrices and all scores of a batch of label maps, dataset-level and per image.

    Parameters
    ----------
    pred, target : integer arrays of shape (N, H, W)
    num_classes, ignore_index
        As in :func:`confusion_matrix`.

    Returns
    -------
    SegmentationEvaluation
        Device-pure.
    """
    xp = namespace_of(pred=pred, target=target)
    per_image = confusion_matrix(pred, target, num_classes, ignore_index, per_image=True)
    confusion = xp.sum(per_image, axis=0)
    scores = segmentation_scores(per_image)
    means = {f.name: _nanmean(xp, getattr(scores, f.name), axis=0) for f in fields(scores)}
    return SegmentationEvaluation(
        confusion=confusion,
        per_image_confusion=per_image,
        dataset=segmentation_scores(confusion),
        per_image=scores,
        per_image_mean=SegmentationScores(**means),
    )
