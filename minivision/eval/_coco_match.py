"""COCOeval's ``evaluate()`` and ``accumulate()``, vectorised over images and categories.

pycocotools walks image x category x area range x IoU threshold x detection x ground truth in
Python. Here the same greedy rule runs as array code:

1. **Pairs.** Every (detection, ground truth) pair that shares a group (image and category, or
   only image when ``use_cats=False``) gets its IoU in one vectorised call. Pairs below the
   lowest threshold can never match and are dropped at once.
2. **Sweep.** The greedy matching is sequential only *within* a group: a detection may take a
   ground truth only if no better-scored detection of its group took it first. So the
   detections that still have candidate pairs are numbered 0, 1, 2 ... within their group, and
   step ``s`` decides detection ``s`` of *every* group at once, for all A area ranges and all T
   thresholds together ((P_s, A, T) arrays, segment reductions per detection).
3. **Accumulate.** Per category, detections sorted by score (stable: image order, then rank),
   cumulative true/false positives for all (A, T) at once, the precision envelope by a reversed
   running maximum, and the recall thresholds looked up by ``searchsorted``.

Every floating-point operation is the one pycocotools performs, in the same order, so the
arrays are bit-identical (``tests/eval/test_coco.py``). Host island (DESIGN.md §2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Matching:
    """Per detection (rank order within its group), flags for every area range and threshold."""

    order: np.ndarray  # (N',) detection rows kept (rank < max_dets[-1]), sorted by group/score
    rank: np.ndarray  # (N',) position within its group after the score sort
    tp: np.ndarray  # (N', A, T) bool
    fp: np.ndarray  # (N', A, T) bool
    npig: np.ndarray  # (K, A) non-ignored ground truths per category and area range


def _segments(sorted_keys):
    """Start index of each run of equal values and the run id of every element."""
    n = len(sorted_keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    return starts, np.cumsum(new) - 1


def match(gt, dt, pair_iou, iou_thrs, area_rngs, max_det, use_cats, ignore_flag, zero_id_quirk):
    """Greedy COCO matching; ``pair_iou(d_rows, g_rows)`` gives the IoU of each pair (float64)."""
    K = len(gt.cat_ids) if use_cats else 1
    A, T = len(area_rngs), len(iou_thrs)
    lo, hi = area_rngs[:, 0], area_rngs[:, 1]

    # Groups: (image, category) or image; ties keep input order (by category, then input
    # order, when categories are pooled: pycocotools concatenates the per-category lists).
    ng = len(gt.image)
    g_group = gt.image * K + (gt.category if use_cats else 0)
    g_tie = np.arange(ng) if use_cats else gt.category * ng + np.arange(ng)
    g_order = np.lexsort((g_tie, g_group))
    nd = len(dt.image)
    d_group = dt.image * K + (dt.category if use_cats else 0)
    d_tie = np.arange(nd) if use_cats else dt.category * nd + np.arange(nd)
    d_order = np.lexsort((d_tie, -dt.score, d_group))
    d_starts, d_seg = _segments(d_group[d_order])
    rank = np.arange(nd) - d_starts[d_seg] if nd else np.zeros(0, dtype=np.int64)
    keep = rank < max_det  # computeIoU keeps the top maxDets[-1] per group
    d_order, rank = d_order[keep], rank[keep]
    n = len(d_order)

    # Ground-truth flags per area range: crowd (or, opted in, "ignore") and outside the range.
    g_base_ign = gt.crowd | (gt.ignore if ignore_flag else False)
    g_ign = g_base_ign[:, None] | (gt.area[:, None] < lo) | (gt.area[:, None] > hi)  # (G, A)
    d_out = (dt.area[:, None] < lo) | (dt.area[:, None] > hi)  # (N, A)
    npig = np.zeros((K, A), dtype=np.int64)
    gk = gt.category if use_cats else np.zeros(ng, dtype=np.int64)
    np.add.at(npig, gk, ~g_ign)

    # 1. Pairs within each group: detection-major, ground truth in input order.
    gs_group = g_group[g_order]
    g_lo = np.searchsorted(gs_group, d_group[d_order], side="left")
    g_hi = np.searchsorted(gs_group, d_group[d_order], side="right")
    per = g_hi - g_lo
    pair_d = np.repeat(np.arange(n), per)  # index into the kept, sorted detections
    first = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(per, out=first[1:])
    pair_g = g_order[np.repeat(g_lo - first[:-1], per) + np.arange(first[-1])]
    iou = pair_iou(d_order[pair_d], pair_g, gt.crowd[pair_g])
    thr = np.minimum(iou_thrs, 1 - 1e-10)
    live = iou >= thr.min() if T else np.zeros(len(iou), dtype=bool)
    pair_d, pair_g, iou = pair_d[live], pair_g[live], iou[live]

    # 2. Sweep: step s decides the s-th detection with candidates of every group.
    match_g = np.full((n, A, T), -1, dtype=np.int64)
    if len(pair_d):
        cand_d, first_pair = np.unique(pair_d, return_index=True)
        c_starts, c_seg = _segments(d_group[d_order[cand_d]])
        step_of_d = np.zeros(n, dtype=np.int64)
        step_of_d[cand_d] = np.arange(len(cand_d)) - c_starts[c_seg]
        by_step = np.argsort(step_of_d[pair_d], kind="stable")
        pair_d, pair_g, iou = pair_d[by_step], pair_g[by_step], iou[by_step]
        step_starts = np.searchsorted(step_of_d[pair_d], np.arange(step_of_d.max() + 2))
        taken = np.zeros((ng, A, T), dtype=bool)
        crowd = gt.crowd
        for s in range(len(step_starts) - 1):
            a, b = step_starts[s], step_starts[s + 1]
            pd, pg, pi = pair_d[a:b], pair_g[a:b], iou[a:b]
            seg_starts, seg = _segments(pd)
            over = pi[:, None] >= thr  # (P, T)
            cand = over[:, None, :] & (~taken[pg] | crowd[pg, None, None])  # (P, A, T)
            ign = g_ign[pg][:, :, None]  # (P, A, 1)
            reg = cand & ~ign
            any_reg = np.logical_or.reduceat(reg, seg_starts, axis=0)  # (D, A, T)
            final = np.where(any_reg[seg], reg, cand)
            val = np.where(final, pi[:, None, None], -1.0)
            best = np.maximum.reduceat(val, seg_starts, axis=0)
            # Ties go to the last ground truth in pycocotools' scan (``<`` skips, ``==`` takes).
            pos = np.where(final & (val == best[seg]), np.arange(len(pd))[:, None, None], -1)
            choice = np.maximum.reduceat(pos, seg_starts, axis=0)  # (D, A, T)
            got = choice >= 0
            chosen = np.where(got, pg[np.maximum(choice, 0)], -1)
            match_g[pd[seg_starts]] = chosen
            di, ai, ti = np.nonzero(got)
            taken[chosen[di, ai, ti], ai, ti] = True

    # 3. Flags: a match to an ignored ground truth is neither TP nor FP; an unmatched detection
    # outside the area range is ignored.
    matched = match_g >= 0
    # A sentinel row (index -1 -> the appended row) keeps the gathers valid without ground truth.
    zero_id = np.append(gt.id_is_zero, False)
    g_ign_pad = np.vstack([g_ign, np.zeros((1, A), dtype=bool)])
    safe = np.where(matched, match_g, ng)
    counted = matched & ~zero_id[safe] if zero_id_quirk else matched
    a_idx = np.arange(A)[None, :, None]
    d_ign = (matched & g_ign_pad[safe, a_idx]) | (~counted & d_out[d_order][:, :, None])
    tp = counted & ~d_ign
    fp = ~counted & ~d_ign
    return Matching(d_order, rank, tp, fp, npig)


def accumulate(m: Matching, dt, iou_thrs, rec_thrs, max_dets, K, use_cats):
    """precision (T, R, K, A, M), recall (T, K, A, M), scores (T, R, K, A, M) as COCOeval."""
    T, R, A, M = len(iou_thrs), len(rec_thrs), m.npig.shape[1], len(max_dets)
    precision = -np.ones((T, R, K, A, M))
    recall = -np.ones((T, K, A, M))
    scores = -np.ones((T, R, K, A, M))
    rows = m.order
    k_of = dt.category[rows] if use_cats else np.zeros(len(rows), dtype=np.int64)
    # Per category: score descending, ties by image (accumulate concatenates images in order),
    # then by rank within the image (its own stable sort).
    order = np.lexsort((m.rank, dt.image[rows], -dt.score[rows], k_of))
    k_sorted = k_of[order]
    k_lo = np.searchsorted(k_sorted, np.arange(K), side="left")
    k_hi = np.searchsorted(k_sorted, np.arange(K), side="right")
    eps = np.spacing(1)
    for k in range(K):
        sel_k = order[k_lo[k]:k_hi[k]]
        for mi, max_det in enumerate(max_dets):
            sel = sel_k[m.rank[sel_k] < max_det]
            sc = dt.score[rows[sel]]
            tp_sum = np.cumsum(m.tp[sel], axis=0).astype(np.float64)  # (nd, A, T)
            fp_sum = np.cumsum(m.fp[sel], axis=0).astype(np.float64)
            nd = len(sel)
            for a in range(A):
                npig = m.npig[k, a]
                if npig == 0:
                    continue
                tp, fp = tp_sum[:, a, :].T, fp_sum[:, a, :].T  # (T, nd)
                rc = tp / npig
                pr = tp / (fp + tp + eps)
                recall[:, k, a, mi] = rc[:, -1] if nd else 0
                # Monotone envelope: precision at recall r is the best precision at recall >= r.
                pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
                for t in range(T):
                    inds = np.searchsorted(rc[t], rec_thrs, side="left")
                    bad = np.flatnonzero(inds >= nd)
                    stop = bad[0] if len(bad) else R  # pycocotools stops at the first miss
                    q = np.zeros(R)
                    ss = np.zeros(R)
                    q[:stop] = pr[t, inds[:stop]]
                    ss[:stop] = sc[inds[:stop]]
                    precision[t, :, k, a, mi] = q
                    scores[t, :, k, a, mi] = ss
    return precision, recall, scores
