"""IoU of many (detection, ground truth) pairs, as pycocotools' ``maskUtils.iou`` (host island).

Used by :func:`minivision.data.rle.iou` and by the COCO evaluation (``minivision.eval``).

Both follow ``maskApi.c`` operation for operation, so the float64 results are bit-identical:

* boxes (``bbIou``): ``w = min(x1 + w1, x2 + w2) - max(x1, x2)``, the same for ``h``; no overlap
  (``w <= 0`` or ``h <= 0``) is 0; otherwise ``i / u`` with ``u = (da + ga) - i``, or ``u = da``
  (the detection's own area) when the ground truth is a crowd region;
* masks (``rleIou``): intersection ``i`` and union ``u`` counted in pixels, ``i / u`` (crowd:
  ``i / area(dt)``), and 0 when they do not intersect.

The mask intersection never decodes a mask. A mask is a list of foreground intervals
``[s, e)`` of the column-major pixel index, and ``F_d(x)`` -- the number of foreground pixels
of detection ``d`` before index ``x`` -- is one ``searchsorted`` into ``d``'s interval starts.
Then ``|d ∩ g| = Σ over g's intervals of F_d(e) - F_d(s)``: one global ``searchsorted`` for all
pairs at once, after pairs whose bounding boxes do not meet are dropped (maskApi does the same).
"""

from __future__ import annotations

import numpy as np

from . import rle_batch as rb


def box_pair_iou(dbox, gbox, crowd):
    """(P,) IoU of box pairs; ``dbox``, ``gbox`` (P, 4) xywh float64, ``crowd`` (P,) bool."""
    dx, dy, dw, dh = dbox.T
    gx, gy, gw, gh = gbox.T
    w = np.minimum(dw + dx, gw + gx) - np.maximum(dx, gx)
    h = np.minimum(dh + dy, gh + gy) - np.maximum(dy, gy)
    da = dw * dh
    ga = gw * gh
    i = w * h
    u = np.where(crowd, da, da + ga - i)
    out = np.zeros(len(i))
    ok = (w > 0) & (h > 0)
    with np.errstate(invalid="ignore", divide="ignore"):  # denormal sides: 0 / 0, as maskApi
        out[ok] = i[ok] / u[ok]
    return out


def mask_area(masks):
    """(N,) int64 foreground pixel count of each mask of an ``Intervals`` table."""
    lengths = masks.ends - masks.starts
    csum = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=csum[1:])
    return csum[masks.offsets[1:]] - csum[masks.offsets[:-1]]


def mask_pair_iou(dmasks, d_rows, gmasks, g_rows, crowd):
    """(P,) IoU of mask pairs (detection ``d_rows[p]`` of ``dmasks`` with ``g_rows[p]``)."""
    P = len(d_rows)
    out = np.zeros(P)
    if P == 0:
        return out
    dbox = rb.intervals_to_bbox(dmasks.starts, dmasks.ends, dmasks.offsets, dmasks.h, dmasks.w)
    gbox = rb.intervals_to_bbox(gmasks.starts, gmasks.ends, gmasks.offsets, gmasks.h, gmasks.w)
    meet = np.flatnonzero(box_pair_iou(dbox[d_rows], gbox[g_rows], crowd) > 0)
    if len(meet) == 0:
        return out
    d, g = d_rows[meet], g_rows[meet]
    d_area, g_area = mask_area(dmasks), mask_area(gmasks)

    # Global, sorted interval starts of all detection masks: mask j lives at j * span + index.
    span = int(max(dmasks.ends.max(initial=0), gmasks.ends.max(initial=0))) + 1
    n_int = np.diff(dmasks.offsets)
    owner = np.repeat(np.arange(len(n_int)), n_int)
    key = owner * span + dmasks.starts
    lengths = dmasks.ends - dmasks.starts
    before = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=before[1:])  # foreground before each interval (global)

    # Queries: both ends of every interval of the pair's ground truth.
    gn = gmasks.offsets[g + 1] - gmasks.offsets[g]
    q_pair = np.repeat(np.arange(len(meet)), gn)
    q_first = np.zeros(len(meet) + 1, dtype=np.int64)
    np.cumsum(gn, out=q_first[1:])
    q_int = np.repeat(gmasks.offsets[g] - q_first[:-1], gn) + np.arange(q_first[-1])
    q_d = d[q_pair]

    def coverage(x):
        """Foreground pixels of detection ``q_d`` before pixel index ``x``."""
        j = np.searchsorted(key, q_d * span + x, side="right") - 1
        inside = j >= dmasks.offsets[q_d]
        jj = np.maximum(j, 0)
        local = before[jj] - before[dmasks.offsets[q_d]]
        part = np.minimum(x, dmasks.ends[jj]) - dmasks.starts[jj]
        return np.where(inside, local + part, 0)

    inter_q = coverage(gmasks.ends[q_int]) - coverage(gmasks.starts[q_int])
    inter = np.zeros(len(meet), dtype=np.int64)
    np.add.at(inter, q_pair, inter_q)
    union = np.where(crowd[meet], d_area[d], d_area[d] + g_area[g] - inter)
    hit = inter > 0
    res = np.zeros(len(meet))
    res[hit] = inter[hit].astype(np.float64) / union[hit].astype(np.float64)
    out[meet] = res
    return out
