"""COCO's run-length encoded masks, byte-for-byte as ``pycocotools.mask`` 2.0.11 (host island).

A binary mask of shape (H, W) is read **column by column** (Fortran / MATLAB order: pixel
index ``x * H + y``) and stored as the lengths of its alternating runs, zeros first: the mask
``[0 0 1 1 1 0 1]`` is ``[2, 3, 1, 1]`` and ``[1 1 1 1 1 1 0]`` is ``[0, 6, 1]``. COCO files
then compress the counts into a string (:func:`rleToString`): from the fourth count on, each is
stored as its difference to the count two before, in 5-bit groups written as the characters
``'0'`` .. ``'o'`` (bit 0x20: more groups follow; bit 0x10 of the last group: negative) --
LEB128 with 6-bit characters. An RLE object is ``{"size": [H, W], "counts": b"..."}``.

Functions (pycocotools' names and return types):

* :func:`encode` (H, W) or (H, W, N) uint8/bool masks -> RLE dict(s);  :func:`decode` back;
* :func:`area`, :func:`toBbox` ([x, y, w, h], float64), :func:`iou` (boxes or masks, with
  crowd regions), :func:`merge` (union, or intersection);
* :func:`frPyObjects`: polygons (rasterised as maskApi's ``rleFrPoly``: 5x supersampling, a
  pixel belongs to the polygon when its centre does), boxes ``[x, y, w, h]`` (as their
  4-corner polygon) and uncompressed RLE (``counts`` a list) -> compressed RLE.

Every routine is vectorised over all masks and runs (``rle_batch.py``, ``rle_poly.py``); none
loops per pixel or per run (only ``merge`` of RLEs with empty runs *inside* -- which no encoder
writes -- replays maskApi's merge loop). Counts are decoded with 64-bit arithmetic; maskApi's
decoder shifts 32-bit ints, so the two agree for count differences below 2^29 (any image up to
512 megapixels).

Where pycocotools crashes or returns memory it never wrote, this module does the defined
thing: ``encode`` takes any memory layout and bool masks (pycocotools wants Fortran-ordered
uint8); ``frPyObjects`` takes a list of boxes and a single flat polygon (pycocotools raises
``TypeError``); ``decode`` of counts that sum to less than H*W fills the rest with 0 (pycocotools
leaves it uninitialised), and more than H*W is a ``ValueError`` as there; ``merge`` of masks of
different sizes and ``iou`` of masks of different sizes raise ``ValueError`` (pycocotools
returns an empty mask / IoU -1); ``iou`` with an empty side returns a (m, n) array, not ``[]``.
Quirks kept: a run ends wherever the *byte value* changes, so a uint8 mask with values other
than 0 and 1 encodes extra runs (``decode`` reads them back as alternating 0/1).
"""

from __future__ import annotations

import numpy as np

from . import rle_batch as rb
from . import rle_iou
from . import rle_poly as rp

__all__ = [
    "encode", "decode", "area", "toBbox", "iou", "merge", "frPyObjects",
    "rleToString", "rleFrString",
]


def _rle(h, w, string):
    return {"size": [int(h), int(w)], "counts": string}


def _parse(rles, name="rleObjs"):
    """List of RLE dicts -> (counts, offsets, h, w); compressed or uncompressed counts."""
    if not isinstance(rles, list) or not all(isinstance(r, dict) for r in rles):
        raise TypeError(f"{name} must be an RLE dict or a list of RLE dicts")
    for i, r in enumerate(rles):
        if "counts" not in r or "size" not in r:
            raise ValueError(f"{name}[{i}] must have 'counts' and 'size'")
    kinds = np.array(
        [rp.UNCOMPRESSED if isinstance(r["counts"], list) else rp.COMPRESSED for r in rles],
        dtype=np.int64,
    )
    counts, offsets, h, w = rp.segmentations_to_counts(rles, kinds, np.zeros((len(rles), 2), np.int64))
    return counts, offsets, h, w


def rleToString(counts) -> bytes:
    """maskApi's ``rleToString``: run lengths -> the compressed COCO string (bytes)."""
    c = np.asarray(counts, dtype=np.int64).reshape(-1) % (1 << 32)
    return rb.counts_to_strings(c, np.array([0, len(c)]))[0]


def rleFrString(string) -> np.ndarray:
    """maskApi's ``rleFrString``: the compressed COCO string -> run lengths (uint32)."""
    counts, _ = rb.strings_to_counts([string])
    return counts.astype(np.uint32)


def encode(bimask):
    """RLE of a (H, W) mask (-> dict) or of each [:, :, i] of a (H, W, N) stack (-> list).

    Parameters
    ----------
    bimask : array of shape (H, W) or (H, W, N), uint8 or bool
    """
    m = np.asarray(bimask)
    if m.dtype == np.bool_:
        m = m.view(np.uint8)
    if m.dtype != np.uint8 or m.ndim not in (2, 3):
        raise ValueError(f"bimask must be a (H, W) or (H, W, N) uint8 array, got {m.dtype} {m.shape}")
    single = m.ndim == 2
    if single:
        m = m[:, :, None]
    h, w, n = m.shape
    flat = np.ascontiguousarray(m.transpose(2, 1, 0)).reshape(n, h * w)  # column-major per mask
    counts, offsets = rb.encode_flat(flat)
    out = [_rle(h, w, s) for s in rb.counts_to_strings(counts, offsets)]
    return out[0] if single else out


def decode(rleObjs):
    """Mask(s) of RLE(s): a dict -> (H, W) uint8; a list -> (H, W, N) uint8, Fortran order."""
    single = isinstance(rleObjs, dict)
    counts, offsets, h, w = _parse([rleObjs] if single else rleObjs)
    n = len(h)
    if n == 0:
        raise ValueError("decode needs at least one RLE")
    if (h != h[0]).any() or (w != w[0]).any():
        raise ValueError("decode: all RLEs in one call must have the same size")
    H, W = int(h[0]), int(w[0])
    total = np.add.reduceat(counts, offsets[:-1]) if len(counts) else np.zeros(n, np.int64)
    total[offsets[:-1] == offsets[1:]] = 0
    if (total > H * W).any():
        raise ValueError("Invalid RLE mask representation")
    starts, ends, ioff = rb.counts_to_intervals(counts, offsets)
    # Paint +1 at starts and -1 at ends of the foreground intervals, then a running sum.
    delta = np.zeros((n, H * W + 1), dtype=np.int8)
    own = rb.segment_ids(ioff)
    np.add.at(delta, (own, starts), 1)
    np.add.at(delta, (own, ends), -1)
    flat = np.cumsum(delta[:, : H * W], axis=1, dtype=np.int8).astype(np.uint8)
    masks = flat.reshape(n, W, H).transpose(2, 1, 0)  # (H, W, N), Fortran-ordered memory
    return masks[:, :, 0] if single else masks


def area(rleObjs):
    """Foreground pixels of each RLE (uint32; a scalar for a dict)."""
    single = isinstance(rleObjs, dict)
    counts, offsets, _, _ = _parse([rleObjs] if single else rleObjs)
    a = (rb.area(counts, offsets) % (1 << 32)).astype(np.uint32)
    return a[0] if single else a


def toBbox(rleObjs):
    """Bounding box [x, y, w, h] (float64) of each RLE, as maskApi's ``rleToBbox``."""
    single = isinstance(rleObjs, dict)
    counts, offsets, h, w = _parse([rleObjs] if single else rleObjs)
    bb = rb.counts_to_bbox(counts, offsets, h, w)
    return bb[0] if single else bb


def merge(rleObjs, intersect=False):
    """Union (or intersection, ``intersect=True``) of a list of RLEs, as one RLE dict."""
    counts, offsets, h, w = _parse(rleObjs)
    n = len(h)
    if n == 0:
        return _rle(0, 0, b"")
    if (h != h[0]).any() or (w != w[0]).any():
        raise ValueError("merge: all RLEs must have the same size (pycocotools returns an empty mask)")
    if n == 1:
        return _rle(h[0], w[0], rb.counts_to_strings(counts, offsets)[0])
    hw = int(h[0] * w[0])
    lens = np.diff(offsets)
    total = np.add.reduceat(counts, offsets[:-1]) if len(counts) else np.zeros(n, np.int64)
    total[lens == 0] = 0
    pos = rb.ragged_arange(lens)
    canonical = ((counts > 0) | (pos == 0)).all() and (total == hw).all()
    if not canonical:
        out = _merge_sweep([counts[offsets[i]:offsets[i + 1]] for i in range(n)], hw, intersect)
    else:
        s, e, io = rb.counts_to_intervals(counts, offsets)
        grp = np.zeros(len(s), dtype=np.int64)
        us, ue, uo = rb.union_intervals(s, e, grp, 1, need=[n if intersect else 1])
        out, _ = rb.intervals_to_counts(us, ue, uo, [hw])
    return _rle(h[0], w[0], rleToString(out))


def _merge_sweep(cnts, hw, intersect):
    """maskApi's ``rleMerge`` loop, transcribed (only for RLEs with empty runs inside)."""
    a_cnts = list(cnts[0])
    for b_cnts in cnts[1:]:
        A, B = a_cnts, list(b_cnts)
        ca = A[0] if A else 0
        cb = B[0] if B else 0
        v = va = vb = 0
        a = b = 1
        cc, ct, out = 0, 1, []
        while ct > 0:
            c = min(ca, cb)
            cc += c
            ct = 0
            ca -= c
            if not ca and a < len(A):
                ca, a, va = A[a], a + 1, not va
            ct += ca
            cb -= c
            if not cb and b < len(B):
                cb, b, vb = B[b], b + 1, not vb
            ct += cb
            vp = v
            v = (va and vb) if intersect else (va or vb)
            if v != vp or ct == 0:
                out.append(cc)
                cc = 0
        a_cnts = out
    return np.asarray(a_cnts, dtype=np.int64)


def iou(dt, gt, iscrowd):
    """IoU of every detection with every ground truth: (len(dt), len(gt)) float64.

    ``dt``, ``gt``: both lists of RLE dicts, or both boxes ((N, 4) array or list of [x, y, w, h]).
    ``iscrowd[j]`` true makes ground truth ``j`` a crowd region: IoU = intersection / area(dt).
    """
    crowd = np.asarray(iscrowd, dtype=bool).reshape(-1)
    boxes = [_as_boxes(x) for x in (dt, gt)]
    m, n = (len(b) if b is not None else len(x) for b, x in zip(boxes, (dt, gt)))
    if len(crowd) != n:
        raise ValueError("iou(iscrowd=) must have the same length as gt")
    if m == 0 or n == 0:
        return np.zeros((m, n))
    if (boxes[0] is None) != (boxes[1] is None):
        raise TypeError("dt and gt must both be boxes or both be RLEs")
    di, gi = np.repeat(np.arange(m), n), np.tile(np.arange(n), m)
    if boxes[0] is not None:
        out = rle_iou.box_pair_iou(boxes[0][di], boxes[1][gi], crowd[gi])
        return out.reshape(m, n)
    tabs = []
    for objs in (dt, gt):
        counts, offsets, h, w = _parse(objs)
        tabs.append(rb.Intervals.from_counts(counts, offsets, h, w))
    if (tabs[0].h[di] != tabs[1].h[gi]).any() or (tabs[0].w[di] != tabs[1].w[gi]).any():
        raise ValueError("iou: dt and gt masks must have the same size (pycocotools gives -1)")
    return rle_iou.mask_pair_iou(tabs[0], di, tabs[1], gi, crowd[gi]).reshape(m, n)


def _as_boxes(objs):
    """(N, 4) float64 if ``objs`` are boxes, None if they are RLE dicts."""
    if isinstance(objs, np.ndarray):
        b = objs.astype(np.float64)
        if b.ndim != 2 or b.shape[1] != 4:
            raise ValueError("an array input is for boxes and must have shape (N, 4)")
        return b
    if not isinstance(objs, list):
        raise TypeError("dt and gt must be lists (of boxes or RLE dicts) or (N, 4) arrays")
    if all(isinstance(o, dict) for o in objs):
        return None if objs else np.zeros((0, 4))
    b = np.asarray(objs, dtype=np.float64)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError("list input must be boxes [x, y, w, h] or RLE dicts")
    return b


def frPyObjects(pyobj, h, w):
    """Compressed RLE from polygons, boxes or uncompressed RLE (what COCO files hold).

    Parameters
    ----------
    pyobj : list of polygons ``[[x1, y1, x2, y2, ...], ...]`` (-> list), one flat polygon
        (-> dict), boxes as an (N, 4) array or list of [x, y, w, h] (-> list), one box
        (-> dict), an uncompressed RLE dict ``{"size": [h, w], "counts": [...]}`` (-> dict)
        or a list of them (-> list). Uncompressed RLE keeps its own size.
    h, w : int
        Image height and width.
    """
    h, w = int(h), int(w)
    if isinstance(pyobj, np.ndarray):
        return _from_polys(rp.boxes_to_polygons(pyobj), h, w)
    if isinstance(pyobj, dict):
        return _from_uncompressed([pyobj])[0]
    if not isinstance(pyobj, list) or not pyobj:
        raise TypeError("frPyObjects: input type is not supported")
    first = pyobj[0]
    if isinstance(first, dict):
        return _from_uncompressed(pyobj)
    if isinstance(first, (list, tuple, np.ndarray)):
        if len(first) == 4:
            return _from_polys(rp.boxes_to_polygons(pyobj), h, w)
        return _from_polys(pyobj, h, w)
    if len(pyobj) == 4:
        return _from_polys(rp.boxes_to_polygons([pyobj]), h, w)[0]
    return _from_polys([pyobj], h, w)[0]


def _from_polys(polys, h, w):
    n = len(polys)
    counts, offsets = rp.polygons_to_counts(list(polys), np.full(n, h), np.full(n, w))
    return [_rle(h, w, s) for s in rb.counts_to_strings(counts, offsets)]


def _from_uncompressed(objs):
    for i, o in enumerate(objs):
        if not (isinstance(o, dict) and "counts" in o and "size" in o):
            raise TypeError(f"frPyObjects: item {i} is not an RLE dict")
    counts = [np.asarray(o["counts"], dtype=np.uint32).astype(np.int64) for o in objs]
    lens = np.array([len(c) for c in counts], dtype=np.int64)
    allc = np.concatenate(counts) if counts else np.zeros(0, np.int64)
    strings = rb.counts_to_strings(allc, rb.csr(lens))
    return [_rle(o["size"][0], o["size"][1], s) for o, s in zip(objs, strings)]
