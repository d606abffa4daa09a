"""The two steps both NMS paths share: the IoU test of box pairs, and resolving one block.

:mod:`minivision.ops.nms` runs them on the input's backend (the device path, one sync per
round of :func:`resolve_block`); :mod:`minivision.ops._nms_host` runs them on NumPy arrays
(with ``numpy`` itself as ``xp``: the compat wrappers cost a lot on 128 x 128 blocks). Array code: no library is imported here (the
NumPy fast path of the clamp is :func:`minivision._backend.clamp_min`).
"""

from __future__ import annotations

from .._backend import clamp_min

__all__ = ["iou_above", "overlaps", "resolve_block"]


def iou_above(xp, w, h, area_sum, tf):
    """``IoU > tf`` from the raw overlap sides ``w``, ``h`` and the two areas' sum (any shape).

    torchvision's operation order: ``inter = max(w, 0) * max(h, 0)``, then
    ``inter / (area_sum - inter)``; ``tf`` is the threshold in the boxes' dtype
    (:func:`minivision.ops._nms_host.comparable_threshold`).
    """
    inter = clamp_min(xp, w, 0.0) * clamp_min(xp, h, 0.0)
    return inter / (area_sum - inter) > tf


def overlaps(xp, r, c, tf, rc=None, cc=None):
    """``IoU(r_i, c_j) > t`` for every row box against every column box: bool (R, C).

    ``r`` and ``c`` hold the five rows ``x1, y1, x2, y2, area`` (a tuple of 1-D arrays or a
    (5, N) array). With categories ``rc``/``cc`` only boxes of the same category can overlap.
    """
    w = xp.minimum(r[2][:, None], c[2]) - xp.maximum(r[0][:, None], c[0])  # (R, C)
    h = xp.minimum(r[3][:, None], c[3]) - xp.maximum(r[1][:, None], c[1])
    hit = iou_above(xp, w, h, r[4][:, None] + c[4], tf)
    if rc is not None:
        hit = hit & (rc[:, None] == cc)
    return hit


def resolve_block(xp, s, alive):
    """Greedy NMS inside one block, given its suppression mask: the fixed point of

    ``keep[j] = alive[j] and not any(keep[i] and s[i, j] for i < j)``.

    ``s`` is the strictly upper-triangular (B, B) mask ``IoU > t`` in score order. The equation
    has exactly one solution (decide ``j = 0, 1, ...`` in turn: each right-hand side involves
    only earlier entries), and it is the greedy result (Cluster-NMS, Zheng et al. 2021).
    Iterating the right-hand side from any start fixes at least one more leading entry per
    round, so a round that changes nothing has reached it: usually 2-6 rounds, at most
    ``B + 1`` (chains of boxes each overlapping the next take more). **One sync per round.**
    """
    keep = alive
    for _ in range(s.shape[0] + 1):
        new = alive & ~xp.any(s & keep[:, None], axis=0)
        if bool(xp.all(new == keep)):  # the declared sync: has the iteration settled?
            return keep
        keep = new
    raise AssertionError("unreachable: the iteration settles within B + 1 rounds")
