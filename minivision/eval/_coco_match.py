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

from .._backend import run_starts


@dataclass
class Matching:
    """Per detection (rank order within its group), flags for every area range and threshold."""

    order: np.ndarray  # (N',) detection rows kept (rank < max_dets[-1]), sorted by group/score
    rank: np.ndarray  # (N',) position within its group after the score sort
    base_fp: np.ndarray  # (N', A) bool: false positive if unmatched (inside the area range)
    cand: np.ndarray  # (C,) the detections (indices into order) that have candidate pairs
    tp: np.ndarray  # (A, T, C) bool, for the candidates only (all others: never TP)
    fp: np.ndarray  # (A, T, C) bool, for the candidates only (all others: base_fp)
    npig: np.ndarray  # (K, A) non-ignored ground truths per category and area range


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
    d_starts, d_seg = run_starts(d_group[d_order])
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

    # 2. Sweep: step s decides the s-th detection with candidates of every group. Only those
    # detections get a row of ``match_c``; every other one is unmatched.
    cand_d = np.unique(pair_d)
    row_of = np.full(n, -1, dtype=np.int64)
    row_of[cand_d] = np.arange(len(cand_d))
    match_c = np.full((len(cand_d), A, T), -1, dtype=np.int32)
    if len(pair_d):
        c_starts, c_seg = run_starts(d_group[d_order[cand_d]])
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
            seg_starts, seg = run_starts(pd)
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
            match_c[row_of[pd[seg_starts]]] = chosen
            di, ai, ti = np.nonzero(got)
            taken[chosen[di, ai, ti], ai, ti] = True

    # 3. Flags: a match to an ignored ground truth is neither TP nor FP; an unmatched detection
    # outside the area range is ignored.
    out = d_out[d_order]  # (n, A)
    matched = match_c >= 0
    # A sentinel row (index -1 -> the appended row) keeps the gathers valid.
    zero_id = np.append(gt.id_is_zero, False)
    g_ign_pad = np.vstack([g_ign, np.zeros((1, A), dtype=bool)])
    safe = np.where(matched, match_c, ng)
    counted = matched & ~zero_id[safe] if zero_id_quirk else matched
    a_idx = np.arange(A)[None, :, None]
    d_ign = (matched & g_ign_pad[safe, a_idx]) | (~counted & out[cand_d][:, :, None])
    tp = (counted & ~d_ign).transpose(1, 2, 0)
    fp = (~counted & ~d_ign).transpose(1, 2, 0)
    return Matching(d_order, rank, ~out, cand_d, tp, fp, npig)


def accumulate(m: Matching, dt, iou_thrs, rec_thrs, max_dets, K, use_cats):
    """precision (T, R, K, A, M), recall (T, K, A, M), scores (T, R, K, A, M) as COCOeval.

    One pass per (area range, max_dets) covers every category and threshold. Only the true
    positives need precision values: between two of them precision can only fall, so the
    envelope ``max(pr[i:])`` is a maximum over true positives at or after ``i``, and the index
    ``searchsorted(rc, r)`` is the ``c_r``-th true positive, ``c_r`` the least count whose
    recall ``c / npig`` reaches ``r``.
    """
    T, R, A, M = len(iou_thrs), len(rec_thrs), m.npig.shape[1], len(max_dets)
    precision = -np.ones((T, R, K, A, M))
    recall = -np.ones((T, K, A, M))
    scores = -np.ones((T, R, K, A, M))
    rows = m.order
    k_of = dt.category[rows] if use_cats else np.zeros(len(rows), dtype=np.int64)
    # Per category: score descending, ties by image (accumulate concatenates images in order),
    # then by rank within the image (its own stable sort).
    order = np.lexsort((m.rank, dt.image[rows], -dt.score[rows], k_of))
    where = np.empty(len(order), dtype=np.int64)
    where[order] = np.arange(len(order))
    c_where = where[m.cand]  # sorted position of each candidate detection
    rank, k_all, sc_all = m.rank[order], k_of[order], dt.score[rows[order]]
    base_all = m.base_fp[order]  # (n, A)
    for mi, max_det in enumerate(max_dets):
        keep = rank < max_det
        new_pos = np.cumsum(keep) - 1
        k_sel, sc = k_all[keep], sc_all[keep]
        k_lo = np.searchsorted(k_sel, np.arange(K), side="left")
        nd = np.searchsorted(k_sel, np.arange(K), side="right") - k_lo  # (K,)
        c_keep = np.flatnonzero(keep[c_where])
        c_sort = c_keep[np.argsort(c_where[c_keep], kind="stable")]
        c_pos = new_pos[c_where[c_sort]]  # increasing positions of the candidates kept
        for a in range(A):
            npig = m.npig[:, a]  # (K,)
            has = npig > 0
            flags = _Flags(base_all[keep, a], c_pos, m.tp[a][:, c_sort], m.fp[a][:, c_sort])
            q, ss, rec = _one_setting(flags, k_sel, sc, k_lo, nd, npig, rec_thrs)
            recall[:, has, a, mi] = rec[:, has]
            precision[:, :, has, a, mi] = q[:, :, has]
            scores[:, :, has, a, mi] = ss[:, :, has]
    return precision, recall, scores


@dataclass
class _Flags:
    """TP/FP flags of n sorted detections: ``base`` (n,) for all, exact (T, C) at ``pos``."""

    base: np.ndarray
    pos: np.ndarray
    tp: np.ndarray
    fp: np.ndarray

    def __post_init__(self):
        T, C = self.fp.shape
        self._base_cum = np.zeros(len(self.base) + 1, dtype=np.int64)  # [j + 1]: up to j
        np.cumsum(self.base, out=self._base_cum[1:])
        self._corr = np.zeros((T, C + 1), dtype=np.int64)  # [:, c + 1]: up to candidate c
        np.cumsum(self.fp.astype(np.int64) - self.base[self.pos][None, :], axis=1, out=self._corr[:, 1:])

    def fp_cum(self, t, j):
        """Cumulative false positives up to and including position ``j`` (row ``t``)."""
        c = np.searchsorted(self.pos, j, side="right")  # candidates at positions <= j
        return self._base_cum[j + 1] + self._corr[t, c]


def _one_setting(flags, k_sel, sc, k_lo, nd, npig, rec_thrs):
    """Precision (T, R, K), scores (T, R, K) and recall (T, K) for one area range and maxDets.

    ``flags``: the detections sorted by category, then score, as :class:`_Flags`.
    """
    T = flags.tp.shape[0]
    K, R = len(nd), len(rec_thrs)
    n = len(k_sel)
    ti, jc = np.nonzero(flags.tp)  # true positives, sorted by (t, position)
    j = flags.pos[jc]
    seg = ti * K + k_sel[j]  # (t, k) segment of each
    n_tp = np.bincount(seg, minlength=T * K)  # (T*K,)
    first = np.zeros(T * K + 1, dtype=np.int64)
    np.cumsum(n_tp, out=first[1:])
    c = np.arange(len(j)) - first[seg] + 1  # tp count at each true positive
    t_k = np.repeat(np.arange(T), K)
    before = flags.fp_cum(t_k, np.tile(k_lo, T) - 1)  # (T*K,) false positives before each segment
    tpf = c.astype(np.float64)
    fpf = (flags.fp_cum(ti, j) - before[seg]).astype(np.float64)
    pr = tpf / (fpf + tpf + np.spacing(1))
    # Reversed running maximum within each segment (a dense (T*K, max count) table).
    width = max(int(n_tp.max(initial=0)), 1)
    env = np.full((T * K, width), -np.inf)
    env[seg, c - 1] = pr
    env = np.maximum.accumulate(env[:, ::-1], axis=1)[:, ::-1]
    sc_tab = np.zeros((T * K, width))
    sc_tab[seg, c - 1] = sc[j]
    with np.errstate(divide="ignore", invalid="ignore"):
        rec = np.where(nd[None, :] > 0, n_tp.reshape(T, K) / npig[None, :], 0.0)  # (T, K)
        # c_r per (k, r): least integer c >= 0 with fl(c / npig) >= r (floor(r * npig) +- 1).
        approx = np.floor(rec_thrs[None, :] * npig[:, None]) - 1
        c_r = np.full((K, R), -1, dtype=np.int64)
        for d in range(3, -1, -1):
            cand = np.maximum(approx + d, 0)
            c_r = np.where((cand / npig[:, None]) >= rec_thrs[None, :], cand.astype(np.int64), c_r)
    ok_k = (c_r >= 0)[None] & (c_r[None] <= n_tp.reshape(T, K)[:, :, None])  # (T, K, R)
    ok_k &= (nd > 0)[None, :, None]
    reached = np.cumprod(ok_k, axis=2).astype(bool)  # pycocotools stops at the first miss
    row = np.arange(T * K).reshape(T, K)[:, :, None]
    col = np.clip(c_r[None] - 1, 0, width - 1)
    q = np.where(reached, np.where(c_r[None] > 0, env[row, col], np.maximum(env[row, 0], 0.0)), 0.0)
    # A threshold reached with c_r = 0 sits at the segment's first detection.
    first_sc = sc[np.minimum(k_lo, max(n - 1, 0))] if n else np.zeros(K)
    ss = np.where(reached, np.where(c_r[None] > 0, sc_tab[row, col], first_sc[None, :, None]), 0.0)
    return q.transpose(0, 2, 1), ss.transpose(0, 2, 1), rec
