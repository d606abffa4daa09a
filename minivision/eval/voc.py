"""PASCAL VOC detection AP: the 11-point (VOC2007) and the all-point (VOC2010+) rule.

The rules of the VOC devkit (Everingham et al., IJCV 2010, §4.2; the MATLAB ``VOCevaldet`` and
its Python port ``voc_eval.py`` in py-faster-rcnn), which differ from COCO's in several places:

* boxes are inclusive pixel indices, so width is ``x2 - x1 + 1`` (the "+1"; ``plus_one=False``
  for continuous boxes);
* a detection is a true positive when its IoU with its **best-overlapping** ground truth of the
  same class is **strictly greater** than 0.5 (COCO: ``>=``) and that ground truth has not been
  claimed by a higher-scored detection; if it has, the detection is a false positive -- it does
  *not* fall back to its second-best ground truth (COCO does);
* a detection whose best ground truth is "difficult" is neither a true nor a false positive, and
  difficult objects are not counted among the positives;
* detections are ranked by decreasing score; equal scores keep their input order (image order,
  then order within the image), as MATLAB's stable ``sort`` does.

This module is a host island (DESIGN.md §2): the inputs are copied to the host once and the
matching is NumPy, vectorised over all detections of all images at once (every detection finds
its best ground truth independently; only "first claim wins" needs an order, and that is the
first occurrence in score order) -- no Python loop over detections or images.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._backend import to_numpy

__all__ = ["voc_ap", "voc_evaluate", "VOCResult"]

# The devkit's recall thresholds, np.arange(0, 1.1, 0.1) (np.linspace(0, 1, 11) gives the same):
# 0.30000000000000004, 0.6000000000000001 and 0.7000000000000001 are not the nearest doubles of
# 0.3, 0.6, 0.7, so a recall of exactly 3/10 does not reach the "0.3" point. Kept as they are:
# the published numbers use them.
_VOC07_RECALLS = np.arange(0.0, 1.1, 0.1)


def _host(x, name, dtype=np.float64):
    try:
        a = np.asarray(to_numpy(x) if hasattr(x, "__array_namespace__") else x, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__}") from err
    return a


def voc_ap(recall, precision, use_07_metric: bool = False) -> float:
    """Average precision from a precision-recall curve, by the VOC devkit's rule.

    Parameters
    ----------
    recall, precision : arrays of shape (D,)
        The curve in decreasing score order (as :func:`voc_evaluate` returns it): after the
        ``d``-th detection, recall = TP / positives and precision = TP / (TP + FP).
    use_07_metric : bool
        ``True``: VOC2007's 11-point interpolated AP, the mean over ``t = 0, 0.1, ..., 1`` of the
        highest precision at recall ``>= t`` (0 where no point reaches ``t``). ``False``
        (VOC2010 and later): the area under the precision *envelope* -- precision made
        non-increasing from right to left, ``p_interp(r) = max_{r' >= r} p(r')`` -- summed over
        the points where recall changes, with the sentinels (0, 0) and (1, 0) at both ends.

    Returns
    -------
    float
        NaN if any recall is NaN (a class without positives).

    Notes
    -----
    The same arithmetic as py-faster-rcnn's ``voc_ap`` in the same order (its 11 thresholds
    from ``np.arange(0, 1.1, 0.1)``, its running sum of ``p / 11``), so the results are equal to
    the last bit. NaN precision (0 / 0, which the devkit's ``tp / (tp + fp)`` gives while the
    first detections only hit difficult objects) is refused: MATLAB's ``max`` skips it and NumPy's
    does not, so the two devkits disagree there; :func:`voc_evaluate` writes 0 (detectron2's fix,
    which equals MATLAB's result).
    """
    rec = _host(recall, "recall")
    prec = _host(precision, "precision")
    if rec.ndim != 1 or rec.shape != prec.shape:
        raise ValueError(
            f"recall and precision must be 1-D of one length, got {rec.shape} and {prec.shape}"
        )
    if np.isnan(prec).any():
        raise ValueError(
            "precision has NaN values (0 / 0?): write 0 where no detection counted yet"
        )
    if np.isnan(rec).any():
        return float("nan")
    if use_07_metric:
        # (11, D): which points reach each recall threshold
        reach = rec[None, :] >= _VOC07_RECALLS[:, None]
        best = np.max(np.where(reach, prec[None, :], -np.inf), axis=1, initial=-np.inf)
        ap = 0.0
        for p in np.where(np.isneginf(best), 0.0, best):
            ap = ap + p / 11.0
        return float(ap)
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # the envelope, right to left
    i = np.flatnonzero(mrec[1:] != mrec[:-1])  # where recall changes
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


@dataclass
class VOCResult:
    """Per-class VOC results; every dict is keyed by class label.

    ``precision[c]`` and ``recall[c]`` are the curves over class ``c``'s detections in
    decreasing score order (one point per detection, difficult hits included as repeated
    points, as in the devkit); ``ap[c]`` is NaN for a class without positives.
    """

    ap: dict = field(default_factory=dict)
    precision: dict = field(default_factory=dict)
    recall: dict = field(default_factory=dict)
    num_positives: dict = field(default_factory=dict)
    use_07_metric: bool = False

    @property
    def map(self) -> float:
        """Mean AP over the classes that have positives (NaN if none has)."""
        values = [v for v in self.ap.values() if not np.isnan(v)]
        return float(np.mean(values)) if values else float("nan")


def _records(items, name, keys, with_difficult=False):
    """Concatenate per-image dicts into flat host arrays: image index, labels, boxes, ..."""
    if not isinstance(items, (list, tuple)):
        raise TypeError(
            f"{name} must be a list with one dict per image, got {type(items).__name__}"
        )
    image, labels, boxes, extra = [], [], [], []
    for i, rec in enumerate(items):
        if not isinstance(rec, dict) or any(k not in rec for k in keys):
            raise ValueError(f"{name}[{i}] must be a dict with keys {keys}")
        b = _host(rec["boxes"], f"{name}[{i}]['boxes']")
        if b.size == 0:
            b = b.reshape(0, 4)
        if b.ndim != 2 or b.shape[1] != 4:
            raise ValueError(f"{name}[{i}]['boxes'] must have shape (N, 4), got {b.shape}")
        lab = _host(rec["labels"], f"{name}[{i}]['labels']", np.int64).reshape(-1)
        if len(lab) != len(b):
            raise ValueError(f"{name}[{i}] has {len(b)} boxes but {len(lab)} labels")
        if not np.isfinite(b).all():
            raise ValueError(f"{name}[{i}]['boxes'] has a NaN or infinite coordinate")
        if np.any(b[:, 2] < b[:, 0]) or np.any(b[:, 3] < b[:, 1]):
            bad = int(np.flatnonzero((b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1]))[0])
            raise ValueError(
                f"{name}[{i}]['boxes'][{bad}] = {b[bad].tolist()} has x2 < x1 or y2 < y1"
            )
        if with_difficult:
            d = rec.get("difficult")
            d = np.zeros(len(b), bool) if d is None else _host(d, f"{name}[{i}]['difficult']", bool)
            if d.shape != (len(b),):
                raise ValueError(f"{name}[{i}]['difficult'] must have shape ({len(b)},)")
        else:
            d = _host(rec["scores"], f"{name}[{i}]['scores']").reshape(-1)
            if len(d) != len(b):
                raise ValueError(f"{name}[{i}] has {len(b)} boxes but {len(d)} scores")
            if np.isnan(d).any():
                raise ValueError(f"{name}[{i}]['scores'] has NaN values")
        image.append(np.full(len(b), i, np.int64))
        labels.append(lab)
        boxes.append(b)
        extra.append(d)
    cat = np.concatenate
    if not items:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0)
    return cat(image), cat(labels), cat(boxes), cat(extra)


def _pair_iou(a, b, plus):
    """IoU of box pairs ``a[k]``, ``b[k]`` in the devkit's operation order: (K, 4), (K, 4) -> (K,)."""
    iw = np.maximum(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]) + plus, 0.0)
    ih = np.maximum(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]) + plus, 0.0)
    inters = iw * ih
    uni = (
        (a[:, 2] - a[:, 0] + plus) * (a[:, 3] - a[:, 1] + plus)
        + (b[:, 2] - b[:, 0] + plus) * (b[:, 3] - b[:, 1] + plus)
        - inters
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        return inters / uni


def _best_ground_truth(det_key, det_boxes, gt_key, gt_boxes, plus):
    """Each detection's best IoU and the index of that ground truth among those with its key.

    The key is (image, class). Ties go to the ground truth listed first, as ``np.argmax``.
    Returns ``(ovmax, jmax)``: (D,) floats (``-inf`` without candidates) and (D,) indices.
    """
    order = np.argsort(gt_key, kind="stable")
    sorted_key = gt_key[order]
    start = np.searchsorted(sorted_key, det_key, side="left")
    count = np.searchsorted(sorted_key, det_key, side="right") - start  # (D,)
    # one row per (detection, candidate ground truth) pair
    pair_det = np.repeat(np.arange(len(det_key)), count)  # (P,)
    rank = np.arange(len(pair_det)) - np.repeat(np.cumsum(count) - count, count)
    pair_gt = order[np.repeat(start, count) + rank]
    iou = _pair_iou(det_boxes[pair_det], gt_boxes[pair_gt], plus)
    # first pair of each detection after sorting by (detection, -IoU, rank) = its argmax
    best = np.lexsort((rank, -iou, pair_det))
    first = best[np.flatnonzero(np.diff(pair_det[best], prepend=-1) != 0)]
    ovmax = np.full(len(det_key), -np.inf)
    jmax = np.zeros(len(det_key), np.int64)
    ovmax[pair_det[first]] = iou[first]
    jmax[pair_det[first]] = pair_gt[first]
    return ovmax, jmax


def voc_evaluate(
    gt,
    dt,
    *,
    iou_threshold: float = 0.5,
    use_07_metric: bool = False,
    plus_one: bool = True,
) -> VOCResult:
    """PASCAL VOC detection evaluation: per-class AP and precision-recall curves.

    Parameters
    ----------
    gt : list of dicts, one per image
        ``{"boxes": (G, 4) xyxy, "labels": (G,) int[, "difficult": (G,) bool]}``.
    dt : list of dicts, one per image (the same images, in the same order)
        ``{"boxes": (D, 4) xyxy, "scores": (D,), "labels": (D,) int}`` -- a detector's
        ``predict`` output (DESIGN.md §8).
    iou_threshold : float
        A match needs IoU **>** this (VOC: 0.5).
    use_07_metric : bool
        11-point AP (VOC2007) instead of the all-point AP (VOC2010+); see :func:`voc_ap`.
    plus_one : bool
        VOC's inclusive pixel boxes (width ``x2 - x1 + 1``). ``False`` for continuous boxes.

    Returns
    -------
    VOCResult
        For every label in ``gt`` or ``dt``: AP, curves, number of positives; ``.map``.

    Notes
    -----
    Equal to py-faster-rcnn's ``voc_eval`` (the tests hold it to a transcription of that code),
    with two defined choices where it is undefined: before the first counted detection the
    precision is 0, not 0 / 0 (as detectron2 and MATLAB's NaN-skipping ``max`` give); and a
    class without positives has NaN recall and AP and is left out of ``map`` (the devkit
    divides by zero). Host island: one copy to the host, NumPy, no loop per detection.
    """
    if isinstance(gt, (list, tuple)) and isinstance(dt, (list, tuple)) and len(gt) != len(dt):
        raise ValueError(f"gt and dt must list the same images, got {len(gt)} and {len(dt)} dicts")
    if not 0.0 <= float(iou_threshold) <= 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
    g_img, g_lab, g_box, g_diff = _records(gt, "gt", ("boxes", "labels"), with_difficult=True)
    d_img, d_lab, d_box, d_score = _records(dt, "dt", ("boxes", "scores", "labels"))
    g_diff = g_diff.astype(bool)
    classes = np.union1d(g_lab, d_lab)  # (L,)
    n_cls = max(len(classes), 1)
    g_cls = np.searchsorted(classes, g_lab)
    d_cls = np.searchsorted(classes, d_lab)
    plus = 1.0 if plus_one else 0.0
    ovmax, jmax = _best_ground_truth(
        d_img * n_cls + d_cls, d_box, g_img * n_cls + g_cls, g_box, plus
    )

    # rank: by class, then decreasing score, equal scores in input order (lexsort is stable)
    order = np.lexsort((-d_score, d_cls))
    hit = ovmax[order] > iou_threshold
    difficult = np.zeros(len(order), bool)
    difficult[hit] = g_diff[jmax[order][hit]]
    claim = hit & ~difficult
    tp = np.zeros(len(order), bool)
    claimed = np.flatnonzero(claim)
    _, first = np.unique(jmax[order][claimed], return_index=True)  # first claim of each object
    tp[claimed[first]] = True
    fp = ~hit | (claim & ~tp)

    result = VOCResult(use_07_metric=use_07_metric)
    npos = np.bincount(g_cls[~g_diff], minlength=len(classes))
    bounds = np.searchsorted(d_cls[order], np.arange(len(classes) + 1))
    for c, label in enumerate(classes.tolist()):
        lo, hi = bounds[c], bounds[c + 1]
        tp_c = np.cumsum(tp[lo:hi], dtype=np.float64)
        fp_c = np.cumsum(fp[lo:hi], dtype=np.float64)
        counted = tp_c + fp_c
        prec = np.divide(tp_c, counted, out=np.zeros_like(tp_c), where=counted > 0)
        rec = tp_c / npos[c] if npos[c] > 0 else np.full_like(tp_c, np.nan)
        result.precision[label] = prec
        result.recall[label] = rec
        result.num_positives[label] = int(npos[c])
        result.ap[label] = voc_ap(rec, prec, use_07_metric) if npos[c] > 0 else float("nan")
    return result
