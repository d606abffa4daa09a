"""How good are region proposals? Recall at IoU thresholds, average recall and MABO.

A proposal method (selective search, lesson 03; an RPN, lesson 06) is judged by whether its
boxes *cover* the objects, before any classifier has looked at them. Everything starts from one
number per ground-truth box: its **best overlap**, the highest IoU of any proposal with it.

* recall at ``t``: the fraction of ground-truth boxes whose best overlap is ``>= t`` (R-CNN
  used ``t = 0.5``; 0.7 asks for tight boxes);
* average recall (Hosang et al., "What makes for effective detection proposals?", TPAMI 2016):
  recall averaged over ``t`` in ``0.5, 0.55, ..., 0.95`` (the discrete form of their
  ``2 * integral_{0.5}^{1} recall(t) dt``, as COCO's AR), which rewards tight boxes;
* MABO (Uijlings et al., selective search, IJCV 2013, §5.1): the *average best overlap* of each
  class's boxes, averaged over the classes (so that frequent classes do not dominate).

All are computed over a data set by concatenating the best overlaps of every image. The
functions are array code on any backend; :func:`best_overlap`, :func:`proposal_recall` and
:func:`average_recall` are device-pure, :func:`mabo` has one declared sync (the set of classes
present).
"""

from __future__ import annotations

from .._backend import device, namespace_of, scatter_add
from .._validate import check_boxes

__all__ = ["best_overlap", "proposal_recall", "average_recall", "mabo", "AR_IOU_THRESHOLDS"]

# 0.5, 0.55, ..., 0.95 exactly as COCO's np.linspace(.5, .95, 10) gives them (its 0.9 is
# 0.8999999999999999, the last bit matters for a best overlap of exactly 0.9)
AR_IOU_THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.8999999999999999, 0.95)


def best_overlap(gt_boxes, proposals, ks=None):
    """Best IoU of each ground-truth box over the proposals (or over the first ``k`` of them).

    Parameters
    ----------
    gt_boxes : array of shape (G, 4)
        xyxy, continuous coordinates (no "+1").
    proposals : array of shape (N, 4)
        Ranked best first, when ``ks`` is given.
    ks : sequence of int, optional
        Budgets: the best IoU among the first ``k`` proposals, for each ``k`` (a budget above
        ``N`` uses all of them) -- the recall-versus-number-of-proposals curve.

    Returns
    -------
    array of shape (G,), or (len(ks), G)
        0 for every ground-truth box when there are no proposals (or ``k = 0``). Device-pure.
    """
    xp = namespace_of(gt_boxes=gt_boxes, proposals=proposals)
    check_boxes(xp, gt_boxes, "gt_boxes", min_ndim=2, shape_text="(G, 4)")
    check_boxes(xp, proposals, "proposals", min_ndim=2, shape_text="(N, 4)")
    if gt_boxes.ndim != 2 or proposals.ndim != 2:
        raise ValueError("gt_boxes and proposals must be 2-D, of shapes (G, 4) and (N, 4)")
    from ..ops.boxes import box_iou

    iou = box_iou(gt_boxes, proposals)  # (G, N)
    zero = xp.zeros((gt_boxes.shape[0],), dtype=iou.dtype, device=device(iou))

    def best(k):
        if k <= 0 or proposals.shape[0] == 0:
            return zero
        return xp.max(iou[:, :k], axis=1)

    if ks is None:
        return best(proposals.shape[0])
    ks = [int(k) for k in ks]
    if not ks:
        raise ValueError("ks must list at least one budget")
    return xp.stack([best(k) for k in ks])


def _thresholds(xp, like, iou_thresholds):
    t = xp.asarray(list(iou_thresholds), dtype=like.dtype, device=device(like))
    if t.ndim != 1 or t.shape[0] == 0:
        raise ValueError("iou_thresholds must be a non-empty sequence of numbers")
    return t


def proposal_recall(best_iou, iou_thresholds=(0.5, 0.7)):
    """Fraction of ground-truth boxes covered with IoU ``>=`` each threshold.

    Parameters
    ----------
    best_iou : array of shape (..., G)
        From :func:`best_overlap` (a leading budget axis is kept).
    iou_thresholds : sequence of float

    Returns
    -------
    array of shape (..., T)
        NaN when there are no ground-truth boxes. Device-pure.
    """
    xp = namespace_of(best_iou=best_iou)
    if not xp.isdtype(best_iou.dtype, "real floating"):
        raise TypeError(f"best_iou must be a floating array, got {best_iou.dtype}")
    t = _thresholds(xp, best_iou, iou_thresholds)
    covered = xp.astype(best_iou[..., None, :] >= t[:, None], best_iou.dtype)  # (..., T, G)
    g = best_iou.shape[-1]
    if g == 0:
        return xp.full(covered.shape[:-1], float("nan"), dtype=best_iou.dtype, device=device(t))
    return xp.sum(covered, axis=-1) / g


def average_recall(best_iou, iou_thresholds=AR_IOU_THRESHOLDS):
    """Average recall over IoU 0.5:0.05:0.95 (Hosang et al.): shape ``(...)``. Device-pure."""
    xp = namespace_of(best_iou=best_iou)
    return xp.mean(proposal_recall(best_iou, iou_thresholds), axis=-1)


def mabo(best_iou, labels):
    """Mean average best overlap: the mean over classes of each class's mean best IoU.

    Parameters
    ----------
    best_iou : array of shape (G,)
    labels : integer array of shape (G,)
        Class of each ground-truth box; only the classes present count.

    Returns
    -------
    0-d array
        NaN without ground-truth boxes. One declared sync: the number of classes present.
    """
    xp = namespace_of(best_iou=best_iou, labels=labels)
    if best_iou.ndim != 1 or tuple(labels.shape) != tuple(best_iou.shape):
        raise ValueError(
            f"best_iou and labels must be 1-D of one length, got {tuple(best_iou.shape)} "
            f"and {tuple(labels.shape)}"
        )
    if not xp.isdtype(labels.dtype, "integral"):
        raise TypeError(f"labels must be integers, got {labels.dtype}")
    if best_iou.shape[0] == 0:
        return xp.asarray(float("nan"), dtype=best_iou.dtype, device=device(best_iou))
    classes, inverse = xp.unique_inverse(labels)  # the sync: how many classes there are
    inverse = xp.reshape(inverse, (-1,))
    k = classes.shape[0]
    zeros = xp.zeros((k,), dtype=best_iou.dtype, device=device(best_iou))
    sums = scatter_add(zeros, inverse, best_iou)
    counts = scatter_add(zeros, inverse, xp.ones_like(best_iou))
    return xp.mean(sums / counts)
