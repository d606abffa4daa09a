"""Boundary measures: how well a segmentation follows the outlines, not only the areas.

Region IoU forgives a blurred outline on a large object: the few misplaced pixels along the edge
are a small share of its area. Two measures look at the edge alone.

Boundary IoU (Cheng et al., CVPR 2021)
--------------------------------------
The *inner boundary band* of a binary mask ``G`` is the mask minus its erosion by ``d`` pixels,
``G_d ∩ G`` in the paper's notation: the mask's pixels within distance ``d`` of its contour. With
the bands of the target ``G`` and of the prediction ``P``,

    boundary IoU = |(G_d ∩ G) ∩ (P_d ∩ P)| / |(G_d ∩ G) ∪ (P_d ∩ P)|.

``d = max(1, round(dilation_ratio * sqrt(H**2 + W**2)))`` with the paper's ``dilation_ratio =
0.02`` (Python's ``round``, as the authors' ``mask_to_boundary``). Their code erodes with a 3x3
square ``d`` times after a one-pixel zero border, so a mask cut by the image border has a band
there too. ``d`` erosions by a 3x3 square are one erosion by a ``(2d+1) x (2d+1)`` square with
zeros outside the image, and a binary erosion by a square is a box count: a pixel survives when
its whole window is foreground, i.e. when the window holds ``(2d+1)**2`` ones. The counts come
from running sums (a summed-area table), so the cost does not grow with ``d``.

For label maps, :func:`semantic_boundary_iou` treats each class as a binary mask, sums its band
intersections and unions over the whole data set (as the confusion-matrix scores of
:mod:`minivision.eval.segmentation` sum pixels) and follows their policy for absent classes: a
class with an empty union has NaN boundary IoU and the mean over classes skips it.

Boundary F-score (Csurka et al., BMVC 2013; the DAVIS benchmark's ``F``)
------------------------------------------------------------------------
The one-pixel contour of a mask is where it differs from its right, lower or lower-right
neighbour (DAVIS' ``seg2bmap``, image edges replicated). A predicted contour pixel is *matched*
when a target contour pixel lies within the tolerance ``r`` (Euclidean, a disk: skimage's
``disk(r)``), and the other way round; precision and recall are the matched shares and
``F = 2PR / (P + R)``. ``r = ceil(bound_th * sqrt(H**2 + W**2))`` for ``bound_th < 1`` (DAVIS'
0.008), else ``bound_th`` pixels. A disk dilation is one horizontal box test per row offset.

All functions are array code and device-pure (no host synchronisation, no data-dependent shape).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .._backend import device, namespace_of
from .._validate import check_number
from ._class_args import check_class_arguments
from ._nan import nan_divide, nanmean

__all__ = [
    "boundary_width",
    "mask_to_boundary",
    "boundary_iou",
    "semantic_boundary_iou",
    "BoundaryIoUScores",
    "boundary_f_score",
]


# ----------------------------------------------------------------------------- checks


def _check_masks(xp, arrays: dict, *, min_ndim=2):
    """Integer or bool arrays of one shape with an (H, W) pair of last axes."""
    for name, a in arrays.items():
        if not (xp.isdtype(a.dtype, "integral") or a.dtype == xp.bool):
            raise TypeError(f"{name} must hold integer or bool labels, got dtype {a.dtype}")
        if a.ndim < min_ndim:
            raise ValueError(f"{name} must have shape (..., H, W), got {tuple(a.shape)}")
    shapes = {name: tuple(a.shape) for name, a in arrays.items()}
    if len(set(shapes.values())) > 1:
        given = " and ".join(str(s) for s in shapes.values())
        raise ValueError(f"{' and '.join(shapes)} must have one shape, got {given}")


def _check_ratio(dilation_ratio) -> float:
    return check_number("dilation_ratio", dilation_ratio, positive=True)


def boundary_width(height: int, width: int, dilation_ratio: float = 0.02) -> int:
    """The band width ``d = max(1, round(dilation_ratio * image diagonal))`` in pixels.

    Python's ``round`` (halves to even), as the authors' ``mask_to_boundary``.
    """
    ratio = _check_ratio(dilation_ratio)
    return max(1, int(round(ratio * math.sqrt(height**2 + width**2))))


# ----------------------------------------------------------------------------- box counts


def _pad_last(xp, x, before: int, after: int, axis: int):
    """Zero-pad one of the last two axes of an integer array."""
    shape = list(x.shape)
    pieces = []
    for n in (before, after):
        shape[axis] = n
        pieces.append(xp.zeros(tuple(shape), dtype=x.dtype, device=device(x)))
    return xp.concat([pieces[0], x, pieces[1]], axis=axis)


def _window_sum(xp, x, radius: int, axis: int):
    """Sum over the window ``[i - radius, i + radius]`` along ``axis``, zeros outside."""
    n = x.shape[axis]
    padded = _pad_last(xp, x, radius, radius, axis)  # (..., n + 2r) along axis
    run = xp.cumulative_sum(padded, axis=axis, include_initial=True)  # (..., n + 2r + 1)
    k = 2 * radius + 1
    hi = [slice(None)] * x.ndim
    lo = [slice(None)] * x.ndim
    hi[axis], lo[axis] = slice(k, k + n), slice(0, n)
    return run[tuple(hi)] - run[tuple(lo)]


def _erode(xp, mask, d: int):
    """Erosion of bool masks (..., H, W) by a (2d+1)^2 square, zeros outside the image."""
    ones = xp.astype(mask, xp.int32)
    count = _window_sum(xp, _window_sum(xp, ones, d, axis=-1), d, axis=-2)
    return count == (2 * d + 1) ** 2


def _dilate_disk(xp, mask, radius: int):
    """Dilation of bool masks (..., H, W) by skimage's ``disk(radius)``: offsets dy^2 + dx^2 <= r^2.

    For each row offset ``dy`` the disk is a horizontal run of half-width ``floor(sqrt(r^2 -
    dy^2))``: a horizontal box test, then a shift of the rows by ``dy``. Nothing outside the
    image counts (OpenCV's ``dilate`` border).
    """
    h = mask.shape[-2]
    ones = xp.astype(mask, xp.int32)
    out = xp.zeros(mask.shape, dtype=xp.bool, device=device(mask))
    for dy in range(-radius, radius + 1):
        if abs(dy) >= h:
            continue
        half = math.isqrt(radius * radius - dy * dy)
        row_hit = _window_sum(xp, ones, half, axis=-1) > 0  # (..., H, W)
        # out[y] |= row_hit[y + dy]: a shift of the rows, False beyond the image
        if dy >= 0:
            shifted = row_hit[..., dy:, :]
            fill = xp.zeros(
                (*mask.shape[:-2], dy, mask.shape[-1]), dtype=xp.bool, device=device(mask)
            )
            shifted = xp.concat([shifted, fill], axis=-2)
        else:
            shifted = row_hit[..., : h + dy, :]
            fill = xp.zeros(
                (*mask.shape[:-2], -dy, mask.shape[-1]), dtype=xp.bool, device=device(mask)
            )
            shifted = xp.concat([fill, shifted], axis=-2)
        out = out | shifted
    return out


# ----------------------------------------------------------------------------- boundary IoU


def mask_to_boundary(mask, dilation_ratio: float = 0.02):
    """The inner boundary band ``G_d ∩ G`` of binary masks: the mask minus its erosion by ``d``.

    Parameters
    ----------
    mask : bool or integer array of shape (..., H, W)
        Binary masks (nonzero = foreground).
    dilation_ratio : float
        ``d = max(1, round(dilation_ratio * sqrt(H**2 + W**2)))`` pixels (the paper's 0.02).

    Returns
    -------
    bool array of shape (..., H, W)
        The pixels of the mask within ``d`` of its contour or of the image border: the authors'
        ``mask_to_boundary`` (``cv2.copyMakeBorder`` + ``cv2.erode`` with a 3x3 square ``d``
        times). Device-pure.
    """
    xp = namespace_of(mask=mask)
    _check_masks(xp, {"mask": mask})
    d = boundary_width(mask.shape[-2], mask.shape[-1], dilation_ratio)
    fg = mask != 0 if mask.dtype != xp.bool else mask
    return fg & ~_erode(xp, fg, d)


def _default_float(xp, x):
    info = xp.__array_namespace_info__()
    return info.default_dtypes(device=device(x))["real floating"]


def boundary_iou(pred, target, dilation_ratio: float = 0.02):
    """Boundary IoU of binary masks (Cheng et al. 2021), one value per mask.

    Parameters
    ----------
    pred, target : bool or integer arrays of one shape (..., H, W)
        Binary masks (nonzero = foreground); the measure is symmetric.
    dilation_ratio : float
        Band width as a share of the image diagonal (see :func:`mask_to_boundary`).

    Returns
    -------
    float array of shape (...)
        ``|band(target) ∩ band(pred)| / |band(target) ∪ band(pred)|``; NaN where both masks are
        empty (0 / 0, as the authors' code). The array library's default float. Device-pure.
    """
    xp = namespace_of(pred=pred, target=target)
    _check_masks(xp, {"pred": pred, "target": target})
    bp = mask_to_boundary(pred, dilation_ratio)
    bt = mask_to_boundary(target, dilation_ratio)
    dtype = _default_float(xp, pred)
    inter = xp.sum(xp.astype(bp & bt, dtype), axis=(-2, -1))
    union = xp.sum(xp.astype(bp | bt, dtype), axis=(-2, -1))
    return nan_divide(xp, inter, union)


@dataclass(frozen=True)
class BoundaryIoUScores:
    """Per-class boundary IoU of label maps over a data set (:func:`semantic_boundary_iou`)."""

    intersection: object  # (C,) int64: band pixels shared by prediction and target
    union: object  # (C,) int64
    class_iou: object  # (C,) intersection / union, NaN for an empty union
    mean_iou: object  # () NaN-mean over the classes


def semantic_boundary_iou(
    pred, target, num_classes: int, ignore_index=None, *, dilation_ratio: float = 0.02
) -> BoundaryIoUScores:
    """Boundary IoU of each class of semantic label maps, counts summed over the data set.

    Parameters
    ----------
    pred, target : integer arrays of one shape (N, H, W) (or (H, W) for one image)
        Predicted and true class of each pixel, classes ``0 .. C-1`` (background included).
    num_classes : int
        ``C``.
    ignore_index : int, optional
        Target value of pixels that are not scored. Such a pixel belongs to no class of the
        target (so a band may run along it) and is left out of every count.
    dilation_ratio : float
        Band width as a share of each image's diagonal (see :func:`mask_to_boundary`).

    Returns
    -------
    BoundaryIoUScores
        Per class ``c``: the bands of ``target == c`` and ``pred == c`` in each image, their
        intersection and union counted over all images; ``class_iou`` NaN where the union is
        empty (the class is absent from both), ``mean_iou`` skipping NaN. Equal to a loop over
        classes of :func:`mask_to_boundary` with the counts added up. Device-pure.
    """
    xp = namespace_of(pred=pred, target=target)
    _check_masks(xp, {"pred": pred, "target": target})
    for name, a in (("pred", pred), ("target", target)):
        if a.dtype == xp.bool:
            raise TypeError(f"{name} must hold integer class indices, got dtype {a.dtype}")
    check_class_arguments(num_classes, ignore_index)
    _check_ratio(dilation_ratio)
    if pred.ndim == 2:
        pred, target = pred[None, ...], target[None, ...]
    elif pred.ndim != 3:
        raise ValueError(f"pred must have shape (N, H, W) or (H, W), got {tuple(pred.shape)}")
    classes = xp.reshape(xp.arange(num_classes, dtype=xp.int64, device=device(pred)), (1, -1, 1, 1))
    p = xp.astype(pred, xp.int64)[:, None, ...] == classes  # (N, C, H, W) one-hot
    t = xp.astype(target, xp.int64)[:, None, ...] == classes
    bp = mask_to_boundary(p, dilation_ratio)
    bt = mask_to_boundary(t, dilation_ratio)
    both, either = bp & bt, bp | bt
    if ignore_index is not None:
        scored = (target != ignore_index)[:, None, ...]  # (N, 1, H, W)
        both, either = both & scored, either & scored
    inter = xp.sum(xp.astype(both, xp.int64), axis=(0, 2, 3))  # (C,)
    union = xp.sum(xp.astype(either, xp.int64), axis=(0, 2, 3))
    dtype = _default_float(xp, pred)
    iou = nan_divide(xp, xp.astype(inter, dtype), xp.astype(union, dtype))
    return BoundaryIoUScores(
        intersection=inter, union=union, class_iou=iou, mean_iou=nanmean(xp, iou)
    )


# ----------------------------------------------------------------------------- boundary F


def _contour(xp, mask):
    """DAVIS' ``seg2bmap``: pixels that differ from the right, lower or lower-right neighbour.

    Beyond the last row and column the mask is repeated, so the image edge is no contour.
    """
    right = xp.concat([mask[..., :, 1:], mask[..., :, -1:]], axis=-1)  # (..., H, W)
    below = xp.concat([mask[..., 1:, :], mask[..., -1:, :]], axis=-2)
    diag = xp.concat([right[..., 1:, :], right[..., -1:, :]], axis=-2)
    return (mask ^ right) | (mask ^ below) | (mask ^ diag)


def boundary_f_score(pred, target, bound_th: float = 0.008):
    """Boundary F-score of binary masks (Csurka et al. 2013), the DAVIS ``f_measure``.

    Parameters
    ----------
    pred, target : bool or integer arrays of one shape (..., H, W)
        Binary masks (nonzero = foreground).
    bound_th : float
        Distance tolerance: ``ceil(bound_th * sqrt(H**2 + W**2))`` pixels when below 1 (DAVIS'
        0.008), else ``bound_th`` pixels (rounded down to whole pixels).

    Returns
    -------
    float array of shape (...)
        ``2 P R / (P + R)`` (0 when ``P + R = 0``) with precision ``P`` = share of the predicted
        contour within the tolerance of the target's and recall ``R`` the converse. DAVIS'
        conventions for empty contours: none predicted -> ``P = 1``; none in the target -> ``R =
        1`` (so two empty masks score 1, an empty against a non-empty one 0). Device-pure.
    """
    xp = namespace_of(pred=pred, target=target)
    _check_masks(xp, {"pred": pred, "target": target})
    th = check_number("bound_th", bound_th, positive=True)
    h, w = pred.shape[-2], pred.shape[-1]
    radius = int(th) if th >= 1 else math.ceil(th * math.sqrt(h * h + w * w))
    fg_p = pred != 0 if pred.dtype != xp.bool else pred
    fg_t = target != 0 if target.dtype != xp.bool else target
    cp, ct = _contour(xp, fg_p), _contour(xp, fg_t)
    dtype = _default_float(xp, pred)

    def count(m):
        return xp.sum(xp.astype(m, dtype), axis=(-2, -1))

    n_p, n_t = count(cp), count(ct)
    matched_p = count(cp & _dilate_disk(xp, ct, radius))
    matched_t = count(ct & _dilate_disk(xp, cp, radius))
    one = xp.ones_like(n_p)
    precision = xp.where(n_p == 0, one, matched_p / xp.where(n_p == 0, one, n_p))
    recall = xp.where(n_t == 0, one, matched_t / xp.where(n_t == 0, one, n_t))
    total = precision + recall
    f = 2 * precision * recall / xp.where(total == 0, one, total)
    return xp.where(total == 0, xp.zeros_like(f), f)
