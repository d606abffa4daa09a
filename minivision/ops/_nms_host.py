"""Host island of :mod:`minivision.ops.nms`: greedy NMS and soft-NMS on the CPU, in NumPy.

Greedy NMS is sequential by nature -- whether box ``j`` survives depends on which boxes above it
survived -- so on the CPU the fastest exact method is the greedy scan itself, made cheap in two
ways (both proved below, and tested against torchvision and a textbook loop):

1. **Blocks.** The score-sorted boxes are taken a block of ``B`` still-alive boxes at a time. A
   block's boxes are already known to survive every box kept *before* the block; among
   themselves they are resolved by the fixed-point iteration of :func:`minivision.ops._nms_core.resolve_block` on the
   ``B x B`` suppression mask. The block's kept boxes then suppress later boxes in one
   vectorised step, and the suppressed ones are never looked at again.
2. **Only nearby boxes.** A box can only suppress boxes that lie near it, and how near is fixed
   by the threshold (see :class:`CandidateIndex`). The later boxes are indexed once by their
   centres, so each kept box compares itself with a few dozen neighbours instead of all ``N``.

The IoU of every compared pair is computed with torchvision's operation order in the boxes'
dtype, and compared with the threshold as the C++ kernel does (``float(ovr) > double(t)``), so
the decisions -- and the kept list -- are identical to ``torchvision.ops.nms``.

This module imports NumPy (ruff's TID251 is silenced on purpose); :mod:`minivision.ops.nms` calls
it after one ``to_numpy`` and returns through one ``from_numpy``.
"""

from __future__ import annotations

import numpy as np

from ._nms_core import iou_above, overlaps, resolve_block

# Boxes resolved together in one block of the greedy scan (tests shrink it to hit every branch).
BLOCK = 128

# Rows x columns of one dense IoU tile: small enough for every temporary to stay in cache.
TILE = 1 << 15

# Relative margin on the threshold for the spatial pruning. The float32 IoU carries about twenty
# roundings of relative size 2**-24 (< 2e-6 in all) against the exact IoU of the same
# coordinates; the margin is fifty times that.
MARGIN = 1e-4


# ----------------------------------------------------------------------------- IoU tests


def pair_overlaps(b, i, j, tf):
    """``IoU(b_i, b_j) > t`` for the index pairs ``(i[k], j[k])``: bool (K,); same arithmetic."""
    bi, bj = np.take(b, i, axis=1), np.take(b, j, axis=1)  # (5, K) each
    w = np.minimum(bi[2], bj[2]) - np.maximum(bi[0], bj[0])
    h = np.minimum(bi[3], bj[3]) - np.maximum(bi[1], bj[1])
    return iou_above(np, w, h, bi[4] + bj[4], tf)


# ----------------------------------------------------------------------------- spatial index


class CandidateIndex:
    """Which boxes can a kept box r suppress? Those whose centre lies in a window around r.

    Pruning is valid for ``t >= 0``, where ``IoU > t`` needs a positive intersection. The IoU
    computed in float differs from the exact IoU of the same coordinates by a relative error
    below 2e-6 (see MARGIN), so a computed ``IoU > t`` implies an exact ``IoU > t'`` with
    ``t' = t (1 - MARGIN)``. Write ``ox``, ``oy``
    for the overlaps of the x- and y-intervals and ``m = min(h_r, h_j) >= oy``. Then

        ``ox oy (1 + t') > t' (w_r h_r + w_j h_j) >= t' (w_r + w_j) m``  so
        ``ox > t' (w_r + w_j) / (1 + t')``.

    As ``ox <= min(w_r, w_j)``, the widths satisfy ``t' w_r < w_j < w_r / t'``; as
    ``ox <= x2_j - x1_r = cx_j + w_j / 2 - x1_r``, the centre satisfies ``cx_j > x1_r - g(w_j)``
    with ``g(w) = w / 2 - t' (w_r + w) / (1 + t')``, which grows with ``w`` (``t' < 1``). So
    ``cx_j`` lies within ``g(min(W_max, w_r / t'))`` outside box r -- the same on the right
    and in y. The window is tight (a box of equal height touching it exists): at ``t = 0`` it is
    r grown by ``W_max / 2`` (any overlap at all), at 1/2 box r itself, at 0.7 the middle 43%.

    The centres are filed once in a grid of cells (about half a typical box wide and a quarter
    tall), sorted by cell number ``row * COLS + col``; a window covers a rectangle of cells,
    which is one contiguous run of sorted cell numbers per row of cells. Cell numbers are a
    monotone function of the (float64) centre, so no filed box whose centre lies in a window
    can fall outside that window's cells.

    Only *proper* boxes (finite, ``x1 < x2``, ``y1 < y2``) are filed: any other box has IoU 0
    or NaN with everything and, for ``t >= 0``, neither suppresses nor is suppressed. The
    threshold-dependent windows assume the float IoU is accurate, which only underflow can
    spoil; :meth:`build` falls back to the overlap-only window when a box's area is below
    2**-60 or ``t' < 2**-20``, and returns None (compare all pairs) for ``t < 0`` or
    coordinates beyond 2**100.
    """

    COLS, ROWS = 256, 127  # cell numbers fit in int16, so filing is one radix sort

    @classmethod
    def build(cls, b, t):
        """File the proper boxes of ``b`` (5, N) for the threshold ``t`` (None: cannot prune)."""
        if t < 0:
            return None
        x1, y1, x2, y2 = np.asarray(b[:4], dtype=np.float64)  # exact for float32 boxes
        with np.errstate(invalid="ignore", over="ignore"):
            proper = np.isfinite(x1 + y1 + x2 + y2) & (x1 < x2) & (y1 < y2)
        w, h = (x2 - x1)[proper], (y2 - y1)[proper]
        if w.size == 0:
            w = h = np.ones(1)  # nothing is filed; any grid will do
        elif np.abs(b[:4, proper]).max() > 2.0**100:
            return None
        self = cls()
        self.proper, self.tp = proper, t * (1 - MARGIN)
        self.plain = self.tp < 2.0**-20 or float((w * h).min()) < 2.0**-60
        self.w_max, self.h_max = float(w.max()), float(h.max())
        cx, cy = (x1 + x2) * 0.5, (y1 + y2) * 0.5
        px, py = (cx[proper], cy[proper]) if proper.any() else (np.zeros(1), np.zeros(1))
        self.x0, self.y0 = float(px.min()), float(py.min())
        self.cw = max(float(np.median(w)) / 2, (float(px.max()) - self.x0) / (cls.COLS - 1))
        self.ch = max(float(np.median(h)) / 4, (float(py.max()) - self.y0) / (cls.ROWS - 1))
        with np.errstate(invalid="ignore"):
            cell = self._cells(cx, cy)
        cell = np.where(proper, cell, -1).astype(np.int16)  # -1: never inside a window
        by_cell = np.argsort(cell, kind="stable")
        self.keys, self.members = cell[by_cell].astype(np.int64), by_cell
        return self

    def _grid(self, v, v0, size, top):
        """Column (or row) of each coordinate: floor((v - v0) / size) clipped to [0, top]."""
        return np.clip(np.floor((v - v0) / size), 0, top).astype(np.int64)

    def _cells(self, cx, cy):
        cols = self._grid(cx, self.x0, self.cw, self.COLS - 1)
        return self._grid(cy, self.y0, self.ch, self.ROWS - 1) * self.COLS + cols

    def drop(self, alive):
        """Forget the filed boxes that are no longer alive (the keys stay sorted)."""
        live = alive[self.members]
        self.keys, self.members = self.keys[live], self.members[live]

    def candidates(self, b, rows):
        """Index pairs ``(row, col)`` covering every filed box ``col`` that ``row`` could suppress."""
        rows = rows[self.proper[rows]]
        x1, y1, x2, y2 = np.asarray(np.take(b[:4], rows, axis=1), dtype=np.float64)
        xlo, xhi = _window(x1, x2, self.tp, self.w_max, self.plain)
        ylo, yhi = _window(y1, y2, self.tp, self.h_max, self.plain)
        c_lo = self._grid(xlo, self.x0, self.cw, self.COLS - 1)
        c_hi = self._grid(xhi, self.x0, self.cw, self.COLS - 1)
        r_lo = self._grid(ylo, self.y0, self.ch, self.ROWS - 1)
        r_hi = self._grid(yhi, self.y0, self.ch, self.ROWS - 1)
        n_q = np.maximum(r_hi - r_lo + 1, 0)  # rows of cells per box (0: an empty window)
        q = _expand(n_q)  # (Q,) one query per (box, row of cells)
        first = (r_lo[q] + _ramp(n_q)) * self.COLS
        lo = np.searchsorted(self.keys, first + c_lo[q], side="left")
        hi = np.searchsorted(self.keys, first + c_hi[q], side="right")
        run = np.maximum(hi - lo, 0)
        pair = _expand(run)  # (P,) one entry per (query, filed box)
        return rows[q[pair]], self.members[lo[pair] + _ramp(run)]


def _window(lo, hi, tp, big, plain):
    """Where the centres of the boxes that [lo, hi] can suppress lie, along one axis."""
    size = hi - lo
    if plain:
        grow = 0.5 * big  # any overlap at all
    elif tp >= 1:
        grow = -size  # nothing has IoU > 1: an empty window
    else:
        other = np.minimum(big, size / tp)  # the widest box it can suppress
        grow = other / 2 - tp * (size + other) / (1 + tp)
    slack = 2.0**-30 * (np.abs(lo) + np.abs(hi) + big) + 2.0**-60  # covers float64 rounding
    return lo - grow - slack, hi + grow + slack


def _expand(counts):
    """``[0]*counts[0] + [1]*counts[1] + ...``: the owner of each expanded entry."""
    return np.repeat(np.arange(counts.size), counts)


def _ramp(counts):
    """``[0..counts[0]) + [0..counts[1]) + ...``: the offset of each entry within its owner."""
    ends = np.cumsum(counts)
    return np.arange(ends[-1] if ends.size else 0) - np.repeat(ends - counts, counts)


# ----------------------------------------------------------------------------- greedy NMS


def comparable_threshold(t, single):
    """The threshold to compare a float32 (``single``) or float64 IoU with, as a Python float.

    torchvision compares the float32 IoU with the threshold as a *double*: ``float(ovr) > t``.
    For float32 that is the same as ``ovr > tf`` with ``tf`` the largest float32 ``<= t``
    (no float32 lies strictly between the two), so the comparison can stay in float32. Plain
    ``ovr > t`` on a float32 array would round ``t`` to the *nearest* float32 instead, and
    then ``IoU == float32(0.3) > 0.3`` would not suppress although torchvision does.
    """
    if not single:
        return float(t)
    with np.errstate(over="ignore"):
        tf = np.float32(t)
    if float(tf) > t:
        tf = np.nextafter(tf, np.float32(-np.inf))
    return float(tf)


def score_order(scores):
    """Indices sorting ``scores`` as torchvision's nms does: descending, stable, NaN first."""
    order = np.argsort(-scores, kind="stable")  # ties keep the lower index first; NaN last
    nan = np.isnan(scores[order])
    if nan.any():
        order = np.concatenate([order[nan], order[~nan]])  # torch sorts NaN above everything
    return order


def nms(boxes, scores, t, cats=None):
    """Greedy NMS of host arrays: the kept indices (int64) in descending score order."""
    order = score_order(scores)
    b = np.ascontiguousarray(boxes.T)[:, order]  # (4, N) in score order
    b = np.concatenate([b, ((b[2] - b[0]) * (b[3] - b[1]))[None]])  # (5, N): + area
    pos = greedy(b, t, None if cats is None else cats[order], BLOCK)
    return order[pos].astype(np.int64, copy=False)


def greedy(b, t, cats=None, block=BLOCK):
    """Positions (in score order, increasing) of the boxes that greedy NMS keeps.

    ``b`` (5, N) holds ``x1, y1, x2, y2, area`` in descending score order; ``t`` is the threshold
    as a Python float; ``cats`` optional integer categories (batched NMS: a box only suppresses
    boxes of its own category).
    """
    tf = b.dtype.type(comparable_threshold(t, b.dtype == np.float32))
    index = CandidateIndex.build(b, t)
    alive = np.ones(b.shape[1], dtype=bool)  # neither processed nor suppressed yet
    kept, start = [], 0
    while True:
        pending = np.flatnonzero(alive[start:])
        if pending.size == 0:
            break
        blk = pending[:block] + start  # the next `block` alive boxes
        cb = None if cats is None else cats[blk]
        rows = np.take(b, blk, axis=1)  # (5, B)
        s = np.triu(overlaps(np, rows, rows, tf, cb, cb), k=1)
        winners = blk[resolve_block(np, s, np.ones(blk.size, dtype=bool))]
        kept.append(winners)
        alive[start : blk[-1] + 1] = False  # every alive box in this range was in the block
        start = int(blk[-1]) + 1
        if index is None:
            _suppress_dense(b, winners, alive, start, tf, cats)
            continue
        index.drop(alive)
        i, j = index.candidates(b, winners)
        if cats is not None:
            same = cats[i] == cats[j]
            i, j = i[same], j[same]
        alive[j[pair_overlaps(b, i, j, tf)]] = False
    return np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)


def _suppress_dense(b, winners, alive, start, tf, cats):
    """Mark every alive box after ``start`` that a winner overlaps, comparing all pairs."""
    later = np.flatnonzero(alive[start:]) + start
    if later.size == 0:
        return
    rows = np.take(b, winners, axis=1)
    rc = None if cats is None else cats[winners]
    step = max(1, TILE // winners.size)
    for c in range(0, later.size, step):
        cols = later[c : c + step]
        cc = None if cats is None else cats[cols]
        hit = np.any(overlaps(np, rows, np.take(b, cols, axis=1), tf, rc, cc), axis=0)
        alive[cols[hit]] = False


# ----------------------------------------------------------------------------- soft-NMS


def soft(boxes, scores, iou_threshold, sigma, score_threshold, method):
    """Soft-NMS (Bodla et al. 2017) on host arrays: kept indices and their decayed scores."""
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite (soft-NMS multiplies them), got NaN or inf")
    x1, y1, x2, y2 = (np.ascontiguousarray(boxes[:, i]) for i in range(4))
    area = (x2 - x1) * (y2 - y1)
    s = np.array(scores, copy=True)
    left = np.arange(s.size)  # indices still in play, increasing (so ties go to the lower index)
    tf = boxes.dtype.type(comparable_threshold(iou_threshold, boxes.dtype == np.float32))
    one = boxes.dtype.type(1)
    keep, kept_scores = [], []
    while left.size:
        m = int(np.argmax(s))
        if not float(s[m]) >= score_threshold:  # compared as doubles, like the IoU
            break
        keep.append(left[m])
        kept_scores.append(s[m])
        i, rest = left[m], np.concatenate([left[:m], left[m + 1 :]])
        s = np.concatenate([s[:m], s[m + 1 :]])
        w = np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest])
        h = np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest])
        inter = np.maximum(w, 0) * np.maximum(h, 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = inter / ((area[i] + area[rest]) - inter)
            if method == "linear":
                weight = np.where(iou > tf, one - iou, one)
            else:
                weight = np.where(np.isnan(iou), one, np.exp(-(iou * iou) / sigma))
        s = s * weight
        left = rest
    keep = np.asarray(keep, dtype=np.int64)
    return keep, np.asarray(kept_scores, dtype=scores.dtype)
