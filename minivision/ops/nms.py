"""Non-maximum suppression: greedy (torchvision's ``nms``), batched, soft, and exact in parallel.

A detector fires many overlapping boxes on every object. Greedy NMS keeps the best-scoring box,
drops every box that overlaps it by more than ``iou_threshold`` (IoU), and repeats with the best
of the rest. Whether a box survives depends on which boxes above it survived, so the algorithm
is sequential by nature; this module computes its result in two exact ways:

* ``path="host"`` -- the greedy scan itself, on the CPU (:mod:`minivision.ops._nms_host`, a host
  island: one ``to_numpy`` in, one ``from_numpy`` out). It goes through the score-sorted boxes
  a block at a time and compares each kept box only with the boxes near it, so it is faster
  than torchvision's scalar loop while taking exactly the same decisions.
* ``path="device"`` -- blocked **Cluster-NMS** (Zheng et al., "Enhancing Geometric Factors in
  Model Learning and Inference for Object Detection and Instance Segmentation", 2021): no loop
  over boxes at all, only array operations on the input's device. For a block of boxes,
  ``keep[j] = not any(keep[i] and IoU(i, j) > t for i < j)`` is iterated as a whole-block
  matrix operation until nothing changes; the unique fixed point of that equation *is* the
  greedy result (proof in :func:`minivision.ops._nms_core.resolve_block`), so the iteration is exact, not an
  approximation. We chose it over torchvision's CUDA bitmask because the bitmask's final
  scan is sequential per box and needs a custom kernel; Cluster-NMS runs unchanged on every
  Array API library (and is tested on all of them against the greedy scan).

``path="auto"`` (the default) takes the host path for NumPy and torch CPU tensors and the
device path for everything else (CuPy, torch CUDA tensors, array-api-strict's test devices).

Conventions: boxes ``(x1, y1, x2, y2)``, IoU exactly as ``torchvision.ops.box_iou`` computes it,
threshold strict (``IoU > t`` suppresses), compared in double precision as torchvision's C++
kernel does. All functions return new arrays and never modify their inputs.
"""

from __future__ import annotations

from .._backend import device, from_numpy, is_host, namespace_of, to_numpy
from .._validate import check_number
from . import _nms_host
from ._nms_core import overlaps, resolve_block

__all__ = ["nms", "batched_nms", "soft_nms"]

# Boxes per block of the device path: a block costs (B, B) masks and its rounds of iteration.
DEVICE_BLOCK = 4096

PATHS = ("auto", "host", "device")


# ----------------------------------------------------------------------------- public API


def nms(boxes, scores, iou_threshold: float, *, path: str = "auto"):
    """Greedy non-maximum suppression: the indices of the boxes to keep.

    Visit the boxes in decreasing score order; keep a box unless a box kept before it overlaps
    it by ``IoU > iou_threshold``.

    Parameters
    ----------
    boxes : float32 or float64 array of shape (N, 4)
        ``(x1, y1, x2, y2)``, continuous coordinates.
    scores : array of shape (N,), same dtype as ``boxes``
    iou_threshold : float
        A box is suppressed when its IoU with a kept box is **strictly** greater. The float32
        IoU is compared with the threshold *as a double*, like torchvision's kernel: boxes whose
        float32 IoU is ``float32(0.3) = 0.30000001`` are suppressed at ``0.3``. ``t < 0``
        suppresses even disjoint boxes (IoU 0 > t); ``t >= 1`` suppresses nothing.
    path : {"auto", "host", "device"}
        How to compute the (identical) result; see the module docstring.

    Returns
    -------
    int64 array of shape (K,)
        Indices of the kept boxes, in decreasing score order. Equal scores keep the lower index
        first (a stable sort); NaN scores sort first, as torch sorts them. A box with a NaN
        coordinate, or a zero-area box against its zero-area twin (IoU 0/0), has IoU NaN,
        which never exceeds the threshold: such boxes neither suppress nor are suppressed.
        Inverted boxes (x2 < x1 and y2 < y1) have a positive area but overlap nothing.

    Notes
    -----
    Mirrors ``torchvision.ops.nms`` (0.29.1) exactly, edge cases included. float16 is refused
    (torchvision's CPU kernel refuses it too; its IoU is too coarse for a threshold).
    **Declared syncs**: the host path copies the inputs to the host once and the result back
    once. The device path syncs once per round of the fixed-point iteration (a ``bool`` of
    "did anything change?", usually 2-6 rounds per block of 4096 boxes) and once at the end
    (``nonzero``: the number of kept boxes decides the output's size).
    """
    xp = namespace_of(boxes=boxes, scores=scores)
    _check_boxes_scores(xp, boxes, scores)
    t = check_number("iou_threshold", iou_threshold)
    return _greedy(xp, boxes, scores, None, t, _check_path(path))


def batched_nms(boxes, scores, idxs, iou_threshold: float, *, path: str = "auto"):
    """Greedy NMS within each category: boxes of different categories never suppress each other.

    Parameters
    ----------
    boxes : float32 or float64 array of shape (N, 4)
    scores : array of shape (N,), same dtype as ``boxes``
    idxs : integer array of shape (N,)
        The category of each box -- a class label, an image index, a pyramid level; any
        integers, negative and non-contiguous ones included.
    iou_threshold : float
        As in :func:`nms`.
    path : {"auto", "host", "device"}

    Returns
    -------
    int64 array of shape (K,)
        The kept indices, in decreasing score order (ties: lower index first; NaN first).

    Notes
    -----
    Mirrors ``torchvision.ops.batched_nms`` where torchvision is right, and is right where it
    is not. torchvision runs one ``nms`` over boxes shifted by ``idx * (max_coordinate + 1)``
    (the "coordinate trick") for N <= 1000 boxes on the CPU, and a loop over categories above
    that. The trick only separates the categories if every coordinate is > -1 relative to the
    largest one and the offsets leave enough float precision: two identical boxes
    ``[-100, -100, 0, 0]`` of categories 0 and 1 overlap after shifting (IoU 0.98) and one is
    dropped, and at offsets of ~1e7 float32 rounding moves IoUs across the threshold.
    minivision never shifts boxes: it runs the greedy scan of :func:`nms` in which a box may
    only suppress boxes of its own category -- that is the per-category result by definition,
    whatever the coordinates. (Above 1000 boxes torchvision re-sorts its result with an
    unstable sort, so equal scores may come out in a different order than here; the set of
    indices is the same.) Declared syncs as in :func:`nms`.
    """
    xp = namespace_of(boxes=boxes, scores=scores, idxs=idxs)
    _check_boxes_scores(xp, boxes, scores)
    if idxs.ndim != 1 or idxs.shape[0] != boxes.shape[0]:
        raise ValueError(
            f"idxs must have shape (N,) = ({boxes.shape[0]},) to match boxes, got {tuple(idxs.shape)}"
        )
    if not xp.isdtype(idxs.dtype, "integral"):
        raise TypeError(f"idxs must have an integer dtype, got {idxs.dtype}")
    t = check_number("iou_threshold", iou_threshold)
    return _greedy(xp, boxes, scores, idxs, t, _check_path(path))


def soft_nms(
    boxes,
    scores,
    iou_threshold: float = 0.3,
    sigma: float = 0.5,
    score_threshold: float = 0.001,
    method: str = "linear",
):
    """Soft-NMS (Bodla et al., ICCV 2017): decay the scores of overlapping boxes, don't drop them.

    Repeatedly select the box ``M`` with the highest current score and multiply the score of
    every remaining box ``b`` by a weight that falls with ``IoU(M, b)``:

    * ``method="linear"``: ``1 - IoU`` if ``IoU > N_t`` else 1 (``N_t`` = ``iou_threshold``);
    * ``method="gaussian"``: ``exp(-IoU**2 / sigma)`` for every box (``iou_threshold`` unused).

    Selection stops when the highest remaining score is below ``score_threshold`` (the paper's
    code drops such boxes as they fall below it, which gives the same kept list).

    Parameters
    ----------
    boxes : float32 or float64 array of shape (N, 4)
    scores : array of shape (N,), same dtype as ``boxes``, all finite
    iou_threshold : float
        ``N_t`` of the paper. We decay when ``IoU > N_t`` (strict, as in the authors' code and
        torchvision's ``nms``; the paper writes ``>=``), compared as a double like :func:`nms`.
    sigma : float > 0
        Width of the Gaussian penalty.
    score_threshold : float
        Boxes are selected while the highest current score is ``>= score_threshold``.
    method : {"linear", "gaussian"}

    Returns
    -------
    keep : int64 array of shape (K,)
        Indices of the selected boxes, in selection order (decreasing decayed score). Equal
        current scores select the lower index first.
    new_scores : array of shape (K,), the scores' dtype
        The decayed score of each selected box when it was selected (its final score).

    Notes
    -----
    With ``method="linear"`` and every weight 0 instead of ``1 - IoU`` this is greedy NMS
    (plus the score threshold). The decay is computed in the scores' dtype; an IoU of NaN
    (degenerate boxes) decays nothing. torchvision has no soft-NMS; the tests compare with a
    textbook loop. **Host island**: one ``to_numpy`` in, a NumPy loop (sequential: every
    selection changes the scores the next one compares), one ``from_numpy`` out.
    """
    xp = namespace_of(boxes=boxes, scores=scores)
    _check_boxes_scores(xp, boxes, scores)
    t = check_number("iou_threshold", iou_threshold)
    sigma = check_number("sigma", sigma)
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    score_threshold = check_number("score_threshold", score_threshold)
    if method not in ("linear", "gaussian"):
        raise ValueError(f"method must be 'linear' or 'gaussian', got {method!r}")
    keep, new_scores = _nms_host.soft(
        to_numpy(boxes), to_numpy(scores), t, sigma, score_threshold, method
    )
    return from_numpy(keep, like=boxes), from_numpy(new_scores, like=scores)


# ----------------------------------------------------------------------------- checks


def _check_boxes_scores(xp, boxes, scores):
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {tuple(boxes.shape)}")
    if boxes.dtype not in (xp.float32, xp.float64):
        raise TypeError(
            f"boxes must have dtype float32 or float64 (as torchvision's nms), got {boxes.dtype}"
        )
    if scores.ndim != 1 or scores.shape[0] != boxes.shape[0]:
        raise ValueError(
            f"scores must have shape (N,) = ({boxes.shape[0]},) to match boxes, "
            f"got {tuple(scores.shape)}"
        )
    if scores.dtype != boxes.dtype:
        raise TypeError(
            f"scores must have the same dtype as boxes ({boxes.dtype}), got {scores.dtype}"
        )




def _check_path(path) -> str:
    if path not in PATHS:
        raise ValueError(f"path must be one of {PATHS}, got {path!r}")
    return path


# ----------------------------------------------------------------------------- dispatch


def _greedy(xp, boxes, scores, idxs, t, path):
    if boxes.shape[0] == 0:
        return xp.zeros(0, dtype=xp.int64, device=device(boxes))
    if path == "auto":
        path = "host" if is_host(xp, boxes) else "device"
    if path == "host":
        cats = None if idxs is None else to_numpy(idxs)
        keep = _nms_host.nms(to_numpy(boxes), to_numpy(scores), t, cats)
        return from_numpy(keep, like=boxes)
    return _nms_device(xp, boxes, scores, idxs, t)


# ----------------------------------------------------------------------------- device path


def _score_order(xp, scores):
    """Indices sorting ``scores`` descending, equal scores by index, NaN first (as torch does)."""
    order = xp.argsort(-scores, stable=True)  # every library sorts NaN last
    is_number = xp.astype(~xp.isnan(xp.take(scores, order)), xp.int8)  # 0 for NaN
    return xp.take(order, xp.argsort(is_number, stable=True))


def _nms_device(xp, boxes, scores, idxs, t):
    """Blocked Cluster-NMS: exact greedy NMS with whole-block array operations only.

    The score-sorted boxes are cut into blocks of ``DEVICE_BLOCK``. Block ``a`` is resolved by
    :func:`minivision.ops._nms_core.resolve_block`, given which of its boxes earlier blocks already suppressed; its kept
    boxes then suppress boxes of every later block ``c`` through one (B, B) tile of IoUs, the
    tiles of torchvision's CUDA bitmask kernel. Shapes never depend on the data, so the only
    syncs are the rounds of :func:`minivision.ops._nms_core.resolve_block` and the final ``nonzero``.
    """
    n = boxes.shape[0]
    order = _score_order(xp, scores)
    b = xp.take(boxes, order, axis=0)  # (N, 4) in score order
    x1, y1, x2, y2 = (b[:, i] for i in range(4))
    cols = (x1, y1, x2, y2, (x2 - x1) * (y2 - y1))  # (N,) each; area as torchvision computes it
    cats = None if idxs is None else xp.take(idxs, order)
    tf = _nms_host.comparable_threshold(t, boxes.dtype == xp.float32)

    starts = list(range(0, n, DEVICE_BLOCK))
    spans = [(s, min(s + DEVICE_BLOCK, n)) for s in starts]
    suppressed = [xp.zeros(e - s, dtype=xp.bool, device=device(boxes)) for s, e in spans]
    kept = []
    for a, (s, e) in enumerate(spans):
        rows = tuple(v[s:e] for v in cols)
        rc = None if cats is None else cats[s:e]
        tile = xp.triu(overlaps(xp, rows, rows, tf, rc, rc), k=1)  # (B, B), i < j only
        keep = resolve_block(xp, tile, ~suppressed[a])
        kept.append(keep)
        for c in range(a + 1, len(spans)):
            s2, e2 = spans[c]
            cc = None if cats is None else cats[s2:e2]
            hit = overlaps(xp, rows, tuple(v[s2:e2] for v in cols), tf, rc, cc)
            suppressed[c] = suppressed[c] | xp.any(hit & keep[:, None], axis=0)
    keep = xp.concat(kept)
    return xp.take(order, xp.nonzero(keep)[0])  # the declared sync: how many were kept
