"""COCO detection metrics (AP/AR for boxes and masks), bit-exact with pycocotools 2.0.11.

``coco_evaluate(gt, dt)`` is ``COCO(gt)``, ``cocoGt.loadRes(dt)``, ``COCOeval(...)``,
``evaluate()``, ``accumulate()`` and ``summarize()`` in one call, with every array equal bit for
bit to pycocotools' -- ``stats``, ``precision`` (T, R, K, A, M), ``recall`` (T, K, A, M) and
``scores`` -- and the matching vectorised over images and categories (``_coco_match.py``), so
it runs many times faster than the Python loops it mirrors.

The metric (Lin et al., "Microsoft COCO", 2014; the evaluation page of cocodataset.org)
----------------------------------------------------------------------------------------
For each category, image, area range and IoU threshold ``t`` in .50:.05:.95, detections are
matched greedily, best score first, to ground truth of the same category and image; a match
is a true positive, a detection left over is a false positive. Precision and recall along the
score-sorted detections give a PR curve; its monotone envelope read at 101 recall points and
averaged is AP. AR is the final recall. Both are averaged over categories (and thresholds).

The rules, by name (each reproduced; a trap has a keyword to turn it off)
------------------------------------------------------------------------
``stable-score-sort``
    Detections are sorted by score with a stable sort: equal scores keep their input order
    (per image), and across images the image order (sorted ids) decides.
``iou-at-least``
    A match needs IoU >= ``min(t, 1 - 1e-10)`` (VOC: > 0.5), so t = 1.0 still matches a perfect box.
``greedy-best-unmatched``
    Each detection takes the unmatched ground truth with the highest IoU; an IoU tie goes to
    the *later* ground truth in file order. A real (not ignored) ground truth always beats an
    ignored one, whatever the IoUs.
``crowd-absorbs``
    A crowd region (``iscrowd=1``) is never used up: it absorbs any number of detections, each
    neither TP nor FP, and its IoU is intersection / *detection* area.
``iscrowd-overrides-ignore`` (trap; ``ignore_flag=True`` honours it)
    pycocotools overwrites each annotation's own ``ignore`` field with ``iscrowd``: an
    ``ignore: 1`` that is not a crowd is evaluated as a normal object.
``area-ranges-closed``
    Ranges include both ends: an object of area exactly 32² = 1024 is "small" *and* "medium".
    Ground truth outside the range is ignored (matchable, not counted); a detection outside it
    is ignored only if unmatched.
``gt-area-from-annotation``
    A ground truth's area is its ``area`` field (the mask area in COCO files), not its box.
``dt-area-from-box-or-mask``
    loadRes sets a detection's area to box ``w * h`` when results carry boxes -- even in a
    ``segm`` evaluation -- and to the mask area when they carry only masks. Which branch
    applies is decided by the *first* result.
``loadres-rewrites``
    loadRes numbers detections 1..N, sets ``iscrowd = 0``, fills ``bbox`` from a mask
    (``toBbox``) and, in a segm evaluation of boxes, uses the box as a polygon mask.
``max-dets-per-image-per-category``
    ``max_dets`` caps detections per image *and category* (the top-scored ones), not per image.
    The list is sorted first.
``absent-category-minus-one``
    A category (or area range) without non-ignored ground truth has precision and recall -1 and
    is left out of every mean; a category with ground truth but no detection counts as 0.
``unreached-recall-zero``
    Recall points beyond the last detection's recall get precision 0.
``ap-at-max-dets-100`` (trap; ``ap_at_max_dets_100=False`` uses ``max(max_dets)``)
    ``stats[0]`` (AP) reads maxDets = 100 literally: a ``max_dets`` without 100 gives AP = -1.
    The other stats read ``max_dets[0]``, ``[1]``, ``[2]`` of the sorted list (pycocotools
    crashes with fewer than three; here the last one stands in).
``gt-id-zero-is-a-miss`` (trap; ``zero_id_quirk=False`` counts it)
    pycocotools stores the matched ground truth's *id* and tests it for truth, so a detection
    matched to an annotation with ``id: 0`` is scored as unmatched (a false positive).

Where pycocotools crashes or silently misreads, this module does the defined thing and says so:
an empty result list is evaluated (every AP 0 where ground truth exists); a missing
``iscrowd`` is 0; a detection whose image or category is not in ``gt``, a NaN score, a negative
box side, a repeated annotation id, a mask whose size is not its image's, or malformed JSON
raise ``ValueError`` naming the record and field; ground truth of images or categories not
listed in ``gt`` takes no part (as in pycocotools); and an IoU that is NaN (box sides so small,
< 1e-154, that their product underflows to 0 / 0) never matches, where pycocotools' ``<`` test
would accept it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data import rle_iou
from . import _coco_load, _coco_match

DEFAULT_AREA_RANGES = {
    "all": (0**2, 1e5**2),
    "small": (0**2, 32**2),
    "medium": (32**2, 96**2),
    "large": (96**2, 1e5**2),
}


@dataclass
class COCOEvalResult:
    """The output of :func:`coco_evaluate` (pycocotools' ``COCOeval.eval`` and ``.stats``).

    Attributes
    ----------
    stats : array of shape (12,)
        AP, AP50, AP75, AP small/medium/large, AR1, AR10, AR100, AR small/medium/large.
    precision : array of shape (T, R, K, A, M)
        ``COCOeval.eval["precision"]``: IoU thresholds x recall points x categories x area
        ranges x max detections; -1 where a category has no ground truth.
    recall : array of shape (T, K, A, M)
    scores : array of shape (T, R, K, A, M)
        The detection score at which each recall point is reached (0 if never).
    category_ap : array of shape (K,)
        AP@[.50:.95] of each category (area "all", the largest max_dets); -1 without ground truth.
    """

    stats: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    scores: np.ndarray
    category_ap: np.ndarray
    cat_ids: np.ndarray
    img_ids: np.ndarray
    iou_thresholds: np.ndarray
    rec_thresholds: np.ndarray
    max_dets: tuple
    area_labels: tuple
    area_ranges: np.ndarray
    iou_type: str
    lines: tuple

    def summary(self) -> str:
        """The 12 lines ``COCOeval.summarize()`` prints, newline-separated."""
        return "\n".join(self.lines)

    def per_category_ap(self) -> dict:
        """``{category id: AP@[.50:.95]}`` (``-1.0`` for a category without ground truth)."""
        return {_plain(c): float(a) for c, a in zip(self.cat_ids, self.category_ap)}


def _plain(x):
    return int(x) if float(x).is_integer() else float(x)


def coco_evaluate(
    gt,
    dt,
    iou_type="bbox",
    *,
    iou_thresholds=None,
    rec_thresholds=None,
    max_dets=(1, 10, 100),
    area_ranges=None,
    use_cats=True,
    ignore_flag=False,
    ap_at_max_dets_100=True,
    zero_id_quirk=True,
) -> COCOEvalResult:
    """COCO AP/AR of detections ``dt`` against ground truth ``gt`` (pycocotools' COCOeval).

    Parameters
    ----------
    gt : dict or path
        COCO ground truth: ``images`` (``id``; ``height``, ``width`` for masks),
        ``categories`` (``id``) and ``annotations`` (``id``, ``image_id``, ``category_id``,
        ``area``, ``iscrowd``, ``bbox`` as [x, y, w, h] and/or ``segmentation`` as polygons,
        uncompressed or compressed RLE).
    dt : list of dict or path
        COCO results: ``image_id``, ``category_id``, ``score`` and ``bbox`` and/or
        ``segmentation`` (compressed RLE, as ``minivision.data.rle.encode`` writes).
    iou_type : {"bbox", "segm"}
    iou_thresholds, rec_thresholds : sequence of float, optional
        Default ``linspace(.5, .95, 10)`` and ``linspace(0, 1, 101)`` (pycocotools' Params).
    max_dets : sequence of int
        Detections kept per image and category; sorted as pycocotools sorts it.
    area_ranges : dict label -> (lo, hi), or sequence of (lo, hi), optional
        Default all / small / medium / large; a sequence takes those labels by position.
    use_cats : bool
        False pools categories (proposal scoring): K = 1.
    ignore_flag, ap_at_max_dets_100, zero_id_quirk : bool
        Opt-outs of pycocotools' traps (module docstring); the defaults are pycocotools.

    Returns
    -------
    COCOEvalResult

    Notes
    -----
    Host island: JSON in, NumPy arrays out. ``dt`` and ``gt`` are not modified (loadRes
    writes ids and areas into the caller's dicts; this does not).
    """
    if iou_type not in ("bbox", "segm"):
        raise ValueError(f"iou_type must be 'bbox' or 'segm', got {iou_type!r}")
    iou_thrs = _thresholds(iou_thresholds, np.linspace(0.5, 0.95, 10), "iou_thresholds")
    rec_thrs = _thresholds(rec_thresholds, np.linspace(0.0, 1.00, 101), "rec_thresholds")
    max_dets = _max_dets(max_dets)
    labels, rngs = _area_ranges(area_ranges)

    gt_json = _coco_load.read_json(gt, "gt")
    g = _coco_load.load_gt(gt_json, iou_type)
    d = _coco_load.load_dt(dt, g, gt_json, iou_type)
    if iou_type == "bbox":
        def pair_iou(d_rows, g_rows, crowd):
            return rle_iou.box_pair_iou(d.bbox[d_rows], g.bbox[g_rows], crowd)
    else:
        def pair_iou(d_rows, g_rows, crowd):
            return rle_iou.mask_pair_iou(d.masks, d_rows, g.masks, g_rows, crowd)

    m = _coco_match.match(
        g, d, pair_iou, iou_thrs, rngs, max_dets[-1], use_cats, ignore_flag, zero_id_quirk
    )
    K = len(g.cat_ids) if use_cats else 1
    precision, recall, scores = _coco_match.accumulate(
        m, d, iou_thrs, rec_thrs, max_dets, K, use_cats
    )
    stats, lines = _summarize(precision, recall, iou_thrs, labels, max_dets, ap_at_max_dets_100)
    all_a = labels.index("all") if "all" in labels else 0
    category_ap = np.array([_mean_valid(precision[:, :, k, all_a, -1]) for k in range(K)])
    return COCOEvalResult(
        stats, precision, recall, scores, category_ap,
        g.cat_ids if use_cats else np.array([-1.0]), g.img_ids, iou_thrs, rec_thrs,
        tuple(max_dets), tuple(labels), rngs, iou_type, tuple(lines),
    )


def _mean_valid(s):
    s = s[s > -1]
    return -1.0 if len(s) == 0 else float(np.mean(s))


def _thresholds(value, default, name):
    if value is None:
        return default
    a = np.asarray(value, dtype=np.float64).reshape(-1)
    if len(a) == 0 or not np.isfinite(a).all():
        raise ValueError(f"{name} must be a non-empty sequence of finite numbers, got {value!r}")
    return a


def _max_dets(value):
    try:
        md = sorted(int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"max_dets must be a sequence of ints, got {value!r}") from None
    if not md or md[0] < 0:
        raise ValueError(f"max_dets must be a non-empty sequence of ints >= 0, got {value!r}")
    return md


def _area_ranges(value):
    if value is None:
        value = DEFAULT_AREA_RANGES
    if isinstance(value, dict):
        labels, pairs = list(value), list(value.values())
    else:
        pairs = list(value)
        names = list(DEFAULT_AREA_RANGES)
        labels = [names[i] if i < len(names) else f"range{i}" for i in range(len(pairs))]
    rngs = np.asarray(pairs, dtype=np.float64)
    if rngs.ndim != 2 or rngs.shape[1] != 2 or len(rngs) == 0 or np.isnan(rngs).any():
        raise ValueError(f"area_ranges must be (lo, hi) pairs, got {value!r}")
    return labels, rngs


def _summarize(precision, recall, iou_thrs, labels, max_dets, ap_at_100):
    """``COCOeval.summarize()``'s 12 numbers and lines, with its exact slicing and means."""
    labels = list(labels)
    md = [max_dets[min(i, len(max_dets) - 1)] for i in range(3)]
    i_str = " {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} ] = {:0.3f}"

    def one(ap, iou_thr=None, area="all", mdets=100):
        title = "Average Precision" if ap else "Average Recall"
        kind = "(AP)" if ap else "(AR)"
        iou_str = (
            f"{iou_thrs[0]:0.2f}:{iou_thrs[-1]:0.2f}" if iou_thr is None else f"{iou_thr:0.2f}"
        )
        aind = [i for i, lbl in enumerate(labels) if lbl == area]
        mind = [i for i, m in enumerate(max_dets) if m == mdets]
        s = precision if ap else recall
        if iou_thr is not None:
            s = s[np.where(iou_thr == iou_thrs)[0]]
        s = s[:, :, :, aind, mind] if ap else s[:, :, aind, mind]
        mean = -1 if len(s[s > -1]) == 0 else np.mean(s[s > -1])
        return mean, i_str.format(title, kind, iou_str, area, mdets, mean)

    first = 100 if ap_at_100 else max_dets[-1]
    calls = [
        (1, None, "all", first), (1, 0.5, "all", md[2]), (1, 0.75, "all", md[2]),
        (1, None, "small", md[2]), (1, None, "medium", md[2]), (1, None, "large", md[2]),
        (0, None, "all", md[0]), (0, None, "all", md[1]), (0, None, "all", md[2]),
        (0, None, "small", md[2]), (0, None, "medium", md[2]), (0, None, "large", md[2]),
    ]
    stats = np.zeros((12,))
    lines = []
    for i, args in enumerate(calls):
        stats[i], line = one(*args)
        lines.append(line)
    return stats, lines
