"""Polygons, boxes and COCO segmentation fields -> RLE counts, for many at once (host island).

``rleFrPoly`` / ``rleFrBbox`` of pycocotools' ``maskApi.c`` and ``COCO.annToRLE``, vectorised
over all polygons; the CSR layout is the one of ``rle_batch.py``.
"""

from __future__ import annotations

import numpy as np

from .rle_batch import (
    counts_to_intervals,
    csr,
    intervals_to_counts,
    ragged_arange,
    strings_to_counts,
    union_intervals,
)

POLYGON, UNCOMPRESSED, COMPRESSED = 0, 1, 2


def polygons_to_counts(polys, h, w):
    """``rleFrPoly`` for many polygons at once: flat coordinate lists, (n,) heights, widths.

    maskApi scales the polygon by 5 and walks each edge in integer steps along its longer
    axis (the other coordinate rounded, ``(int)(a + s * t + .5)``). Only the steps where the
    walk passes from upsampled column ``5c + 2`` to ``5c + 3`` -- across the centre of pixel
    column ``c`` -- leave a mark: the run boundary at pixel ``(c, ceil((v + .5) / 5 - .5))``.
    Those steps are computed directly (for edges walked along x, every fifth step; for steep
    edges, the one step where the rounded x changes), with maskApi's own arithmetic, so no
    other point of the walk is generated. Sorted, the marks are the run boundaries.
    """
    n = len(polys)
    h = np.asarray(h, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    k = np.array([len(p) // 2 for p in polys], dtype=np.int64)
    xy = np.concatenate([np.asarray(p, dtype=np.float64)[: 2 * kk] for p, kk in zip(polys, k)]) if n else np.zeros(0)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        x = np.trunc(5 * xy[0::2] + 0.5).astype(np.int64)
        y = np.trunc(5 * xy[1::2] + 0.5).astype(np.int64)
        voff = csr(k)
        nxt = np.arange(len(x)) + 1
        nxt[voff[1:][k > 0] - 1] = voff[:-1][k > 0]  # x[k] = x[0]
        xs, ys, xe, ye = x, y, x[nxt], y[nxt]
        dx, dy = np.abs(xe - xs), np.abs(ys - ye)
        flip = ((dx >= dy) & (xs > xe)) | ((dx < dy) & (ys > ye))
        xs, xe = np.where(flip, xe, xs), np.where(flip, xs, xe)
        ys, ye = np.where(flip, ye, ys), np.where(flip, ys, ye)
        horiz = dx >= dy
        s = np.where(horiz, (ye - ys) / dx.astype(np.float64), (xe - xs) / dy.astype(np.float64))
    e_poly = np.repeat(np.arange(n), k)
    u_max = 5 * (w[e_poly] - 1) + 2  # the last column centre inside the image
    # Edges walked along x: the step t -> t + 1 crosses a centre when xs + t = 5c + 2.
    hz = np.flatnonzero(horiz & (dx > 0))
    t_lo = np.maximum(0, 2 - xs[hz])
    t_lo += (2 - xs[hz] - t_lo) % 5
    t_hi = np.minimum(dx[hz] - 1, u_max[hz] - xs[hz])
    cnt = np.maximum((t_hi - t_lo) // 5 + 1, 0)
    he = np.repeat(hz, cnt)
    t = (np.repeat(t_lo, cnt) + 5 * ragged_arange(cnt)).astype(np.float64)
    v0 = np.trunc(ys[he] + s[he] * t + 0.5)
    v1 = np.trunc(ys[he] + s[he] * (t + 1) + 0.5)
    h_u, h_v = xs[he] + t.astype(np.int64), np.minimum(v0, v1).astype(np.int64)
    # Steep edges: the rounded x changes at most once per column; find that step exactly.
    vt = np.flatnonzero(~horiz & (dx > 0))

    def col(e, t):
        return np.trunc(xs[e] + s[e] * t + 0.5).astype(np.int64)

    u0, u1 = col(vt, 0.0), col(vt, dy[vt].astype(np.float64))
    lo_u, hi_u = np.minimum(u0, u1), np.maximum(u0, u1)  # crossings U -> U + 1, lo_u <= U < hi_u
    c_lo = np.maximum(lo_u, 2)
    c_lo += (2 - c_lo) % 5
    c_hi = np.minimum(hi_u - 1, u_max[vt])
    cnt = np.maximum((c_hi - c_lo) // 5 + 1, 0)
    ve = np.repeat(vt, cnt)
    U = np.repeat(c_lo, cnt) + 5 * ragged_arange(cnt)
    guess = np.floor((U + 0.5 - xs[ve]) / s[ve])
    step = np.full(len(ve), -1, dtype=np.int64)
    for delta in (0, -1, 1, -2, 2, -3, 3):
        tt = np.clip(guess + delta, 0, dy[ve] - 1)
        a, b = col(ve, tt), col(ve, tt + 1)
        hit = (step < 0) & (np.minimum(a, b) == U) & (np.maximum(a, b) == U + 1)
        step[hit] = tt[hit].astype(np.int64)
    if (step < 0).any():
        raise AssertionError("polygon rasterisation: a column crossing was not found")
    v_u, v_v = U, ys[ve] + step
    # Marks -> boundary pixel index x * h + y, as maskApi (doubles, then ceil and clamp).
    u = np.concatenate([h_u, v_u])
    v = np.concatenate([h_v, v_v])
    own = e_poly[np.concatenate([he, ve])]
    xd = (u.astype(np.float64) + 0.5) / 5 - 0.5
    keep = (np.floor(xd) == xd) & (xd >= 0) & (xd <= (w[own] - 1).astype(np.float64))
    xd, v, own = xd[keep], v[keep], own[keep]
    yd = (v.astype(np.float64) + 0.5) / 5 - 0.5
    yd = np.ceil(np.clip(yd, 0, h[own].astype(np.float64)))
    a = xd.astype(np.int64) * h[own] + yd.astype(np.int64)
    # Terminator h * w per polygon; sort per polygon; differences; then maskApi's merge of
    # zero differences (two boundaries at one pixel cancel).
    a = np.concatenate([a, h * w])
    own = np.concatenate([own, np.arange(n)])
    a = a % (1 << 32)
    order = np.lexsort((a, own))
    a, own = a[order], own[order]
    off = csr(np.bincount(own, minlength=n))
    diff = np.diff(np.concatenate([[0], a]))
    first = off[:-1]
    diff[first] = a[first]
    return _merge_zero_runs(diff, off)


def _merge_zero_runs(a, off):
    """maskApi's ``b`` loop: ``b[0] = a[0]``; a zero skips itself and folds the next value in."""
    n = len(off) - 1
    idx = np.arange(len(a))
    is_first = np.zeros(len(a), dtype=bool)
    is_first[off[:-1][off[:-1] < off[1:]]] = True
    mark = is_first | (a > 0)
    last_mark = np.maximum.accumulate(np.where(mark, idx, -1))
    prev_mark = np.empty(len(a), dtype=np.int64)
    if len(a):
        prev_mark[0] = -1
        prev_mark[1:] = last_mark[:-1]
    zeros_before = idx - prev_mark - 1
    new = is_first | ((a > 0) & (zeros_before % 2 == 0))
    starts = np.flatnonzero(new)
    counts = np.add.reduceat(a, starts) if len(starts) else a[:0]
    owner = np.repeat(np.arange(n), np.diff(off))
    return counts.astype(np.int64), csr(np.bincount(owner[starts], minlength=n))


def boxes_to_polygons(bb):
    """``rleFrBbox``'s polygon for each [x, y, w, h] row: (xs,ys) (xs,ye) (xe,ye) (xe,ys)."""
    bb = np.asarray(bb, dtype=np.float64).reshape(-1, 4)
    xs, ys = bb[:, 0], bb[:, 1]
    xe, ye = xs + bb[:, 2], ys + bb[:, 3]
    return list(np.stack([xs, ys, xs, ye, xe, ye, xe, ys], axis=1))


# --- segmentations as COCO files hold them (COCO.annToRLE) ---------------------------------


def classify_segmentations(segs, name):
    """POLYGON, UNCOMPRESSED or COMPRESSED for each segmentation; errors name the record."""
    kinds = np.empty(len(segs), dtype=np.int64)
    for i, s in enumerate(segs):
        if isinstance(s, list):
            kinds[i] = POLYGON
        elif isinstance(s, dict) and "counts" in s and "size" in s:
            kinds[i] = UNCOMPRESSED if isinstance(s["counts"], list) else COMPRESSED
        else:
            raise ValueError(f"{name(i)} must be polygons or an RLE dict with 'counts' and 'size'")
    return kinds


def segmentations_to_counts(segs, kinds, size):
    """annToRLE for many annotations: polygons (merged), uncompressed and compressed RLE.

    ``size`` (N, 2) is each annotation's image (height, width), used for polygons; RLEs carry
    their own. Returns (counts, offsets, h, w).
    """
    n = len(segs)
    h = np.zeros(n, dtype=np.int64)
    w = np.zeros(n, dtype=np.int64)
    parts = {}
    comp = np.flatnonzero(kinds == COMPRESSED)
    if len(comp):
        c, o = strings_to_counts([segs[i]["counts"] for i in comp])
        parts[COMPRESSED] = (comp, c, o)
    unc = np.flatnonzero(kinds == UNCOMPRESSED)
    if len(unc):
        arrs = [np.asarray(segs[i]["counts"], dtype=np.int64) % (1 << 32) for i in unc]
        lens = np.array([len(a) for a in arrs], dtype=np.int64)
        parts[UNCOMPRESSED] = (unc, np.concatenate(arrs) if arrs else np.zeros(0, np.int64), csr(lens))
    rles = np.concatenate([comp, unc])
    if len(rles):
        hw = np.array([segs[i]["size"] for i in rles], dtype=np.int64).reshape(len(rles), 2)
        h[rles], w[rles] = hw[:, 0], hw[:, 1]
    poly = np.flatnonzero(kinds == POLYGON)
    if len(poly):
        h[poly], w[poly] = size[poly, 0], size[poly, 1]
        flat, owner = [], []
        for i in poly:
            for p in segs[i]:
                flat.append(p)
                owner.append(i)
        owner = np.asarray(owner, dtype=np.int64)
        pc, po = polygons_to_counts(flat, h[owner], w[owner])
        s, e, io = counts_to_intervals(pc, po)
        grp = np.repeat(owner, np.diff(io))
        us, ue, uo = union_intervals(s, e, grp, n)
        uc, uoff = intervals_to_counts(us, ue, uo, h * w)
        parts[POLYGON] = (poly, uc, uoff)
    if len(parts) == 1 and POLYGON not in parts:  # one kind of RLE only: already in order
        (_, c, o), = parts.values()
        return c, o, h, w
    # Stitch the parts back into input order.
    lens = np.zeros(n, dtype=np.int64)
    for kind, (idx, _, o) in parts.items():
        if kind == POLYGON:
            lens[idx] = np.diff(o)[idx]
        else:
            lens[idx] = np.diff(o)
    off = csr(lens)
    counts = np.zeros(off[-1], dtype=np.int64)
    for kind, (idx, c, o) in parts.items():
        src_rows = idx if kind == POLYGON else np.arange(len(idx))
        ln = np.diff(o)[src_rows]
        dst = np.repeat(off[idx], ln) + ragged_arange(ln)
        src = np.repeat(o[src_rows], ln) + ragged_arange(ln)
        counts[dst] = c[src]
    return counts, off, h, w
