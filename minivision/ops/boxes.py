"""Boxes: formats, areas and the IoU family (IoU, GIoU, DIoU, CIoU).

Clipping to the image, removing small boxes and boxes around masks live in
:mod:`minivision.ops.box_image` and are re-exported here, so this module offers every function
of ``torchvision.ops.boxes``; the dtype rules both share are in ``_box_dtypes``.

Conventions (lesson 00 teaches them)
------------------------------------
* A box is ``(x1, y1, x2, y2)`` = (left, top, right, bottom) in *continuous* pixel coordinates:
  ``x`` is the column, ``y`` the row; pixel ``(r, c)`` covers ``[c, c+1) x [r, r+1)``.
  Width is ``x2 - x1`` and area ``(x2 - x1) * (y2 - y1)`` -- no legacy "+1" (only ``roi_pool``
  keeps one, because torchvision does).
* Boxes are arrays of shape ``(..., 4)``; the pairwise functions take ``(..., N, 4)`` and
  ``(..., M, 4)`` and return ``(..., N, M)``, broadcasting the leading axes.
* Nothing is checked about the values (``x2 >= x1``, finiteness): that would need a host
  synchronisation. Degenerate boxes give torchvision's results, listed in each docstring.

Every function mirrors the ``torchvision.ops`` function of the same name (0.29.1): arguments,
result dtype and edge cases. All are device-pure (no host synchronisation).
"""

from __future__ import annotations

import math

from .._backend import is_numpy, namespace_of
from .._validate import check_boxes, check_fmt
from ._box_dtypes import as_float, promote_pair, upcast

# The image-limit functions live in their own module; they are re-exported so that
# ``minivision.ops.boxes`` still offers every box function of ``torchvision.ops.boxes``.
from .box_image import clip_boxes_to_image, masks_to_boxes, remove_small_boxes

__all__ = [
    "box_convert",
    "box_area",
    "box_iou",
    "generalized_box_iou",
    "distance_box_iou",
    "complete_box_iou",
    "clip_boxes_to_image",
    "remove_small_boxes",
    "masks_to_boxes",
]

# NumPy evaluates pairwise matrices in blocks of rows of about this many elements so that
# every temporary stays in the CPU cache; GPU libraries get the whole matrix in one go.
_CPU_BLOCK = 1 << 17


# ----------------------------------------------------------------------------- formats


def box_convert(boxes, in_fmt: str, out_fmt: str):
    """Convert boxes between the ``xyxy``, ``xywh`` and ``cxcywh`` formats.

    Parameters
    ----------
    boxes : array of shape (..., 4)
    in_fmt, out_fmt : {"xyxy", "xywh", "cxcywh"}
        ``xyxy`` = (x1, y1, x2, y2) corners; ``xywh`` = (x1, y1, width, height);
        ``cxcywh`` = (centre x, centre y, width, height).

    Returns
    -------
    array of shape (..., 4)
        A new array even when ``in_fmt == out_fmt``. Integer boxes stay integer when the
        conversion only adds and subtracts (xyxy <-> xywh) and become float32 when it halves
        (anything involving cxcywh), as in torchvision. ``xywh`` <-> ``cxcywh`` goes through
        ``xyxy`` (two roundings), also as in torchvision.

    Notes
    -----
    Mirrors ``torchvision.ops.box_convert``. Device-pure.
    """
    xp = namespace_of(boxes=boxes)
    check_boxes(xp, boxes)
    check_fmt("in_fmt", in_fmt)
    check_fmt("out_fmt", out_fmt)
    if in_fmt == out_fmt:
        return xp.asarray(boxes, copy=True)
    if in_fmt != "xyxy":
        boxes = _to_xyxy(xp, boxes, in_fmt)
    if out_fmt == "xyxy":
        return boxes
    x1, y1, x2, y2 = (boxes[..., i] for i in range(4))
    if out_fmt == "xywh":
        return xp.stack((x1, y1, x2 - x1, y2 - y1), axis=-1)
    cx, cy = as_float(xp, x1 + x2) / 2, as_float(xp, y1 + y2) / 2
    return xp.stack((cx, cy, as_float(xp, x2 - x1), as_float(xp, y2 - y1)), axis=-1)


def _to_xyxy(xp, boxes, fmt):
    a, b, w, h = (boxes[..., i] for i in range(4))
    if fmt == "xywh":
        return xp.stack((a, b, a + w, b + h), axis=-1)
    a, b, w, h = (as_float(xp, t) for t in (a, b, w, h))
    return xp.stack((a - 0.5 * w, b - 0.5 * h, a + 0.5 * w, b + 0.5 * h), axis=-1)


def box_area(boxes, fmt: str = "xyxy"):
    """Area of each box.

    Parameters
    ----------
    boxes : array of shape (..., 4)
    fmt : {"xyxy", "xywh", "cxcywh"}

    Returns
    -------
    array of shape (...)
        ``(x2 - x1) * (y2 - y1)`` for xyxy, ``w * h`` otherwise. float16 boxes give float32,
        small integer types give int32 (torchvision's up-casting against overflow). An inverted
        box (x2 < x1) is not clamped: one inverted side gives a negative area, two a positive one.

    Notes
    -----
    Mirrors ``torchvision.ops.box_area``. Device-pure.
    """
    xp = namespace_of(boxes=boxes)
    check_boxes(xp, boxes)
    check_fmt("fmt", fmt)
    boxes = upcast(xp, boxes)
    if fmt == "xyxy":
        return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    return boxes[..., 2] * boxes[..., 3]


# ----------------------------------------------------------------------------- pairwise


def _pairwise(kernel, boxes1, boxes2, *args, upcast_first=False):
    """Check and promote the inputs, then evaluate ``kernel(xp, b1, b2, *args) -> (..., n, M)``.

    ``upcast_first`` up-casts the boxes first (float16 -> float32), as torchvision's DIoU and
    CIoU do. On NumPy the rows go in blocks so that each temporary fits in the CPU cache (a
    2000 x 2000 IoU matrix has a dozen 16 MB temporaries otherwise); other backends take one
    block.
    """
    xp = namespace_of(boxes1=boxes1, boxes2=boxes2)
    check_boxes(xp, boxes1, "boxes1", min_ndim=2, shape_text="(..., N, 4)")
    check_boxes(xp, boxes2, "boxes2", min_ndim=2, shape_text="(..., M, 4)")
    boxes1, boxes2 = promote_pair(xp, boxes1, boxes2)
    if upcast_first:
        boxes1, boxes2 = upcast(xp, boxes1), upcast(xp, boxes2)
    n, m = boxes1.shape[-2], boxes2.shape[-2]
    rows = n if not is_numpy(xp) else max(1, _CPU_BLOCK // max(m, 1))
    if rows >= n:
        return kernel(xp, boxes1, boxes2, *args)
    blocks = [kernel(xp, boxes1[..., i : i + rows, :], boxes2, *args) for i in range(0, n, rows)]
    return xp.concat(blocks, axis=-2)


def _corners(xp, boxes, fmt):
    """(x1, y1, x2, y2) of each box, each (...), computed per format as torchvision does."""
    a, b, c, d = (boxes[..., i] for i in range(4))
    if fmt == "xywh":
        return a, b, a + c, b + d
    if fmt == "cxcywh":
        a, b = as_float(xp, a), as_float(xp, b)
        half_w, half_h = as_float(xp, c) / 2, as_float(xp, d) / 2
        return a - half_w, b - half_h, a + half_w, b + half_h
    return a, b, c, d


def _split(xp, boxes1, boxes2, fmt="xyxy"):
    """Corners of boxes1 shaped (..., N, 1) and of boxes2 shaped (..., 1, M), for broadcasting."""
    a = tuple(t[..., :, None] for t in _corners(xp, boxes1, fmt))
    b = tuple(xp.expand_dims(t, axis=-2) for t in _corners(xp, boxes2, fmt))
    return a, b


def _inter_union(xp, boxes1, boxes2, fmt="xyxy"):
    """Intersection and union areas, in torchvision's exact operation order (bitwise equal)."""
    area1 = box_area(boxes1, fmt)[..., :, None]  # (..., N, 1)
    area2 = xp.expand_dims(box_area(boxes2, fmt), axis=-2)  # (..., 1, M)
    (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = _split(xp, boxes1, boxes2, fmt)
    # the difference is taken in the input dtype, then up-cast, as torchvision does
    w = upcast(xp, xp.minimum(ax2, bx2) - xp.maximum(ax1, bx1))
    h = upcast(xp, xp.minimum(ay2, by2) - xp.maximum(ay1, by1))
    inter = xp.clip(w, min=0) * xp.clip(h, min=0)
    union = (area1 + area2) - inter
    return inter, union


def _iou_kernel(xp, boxes1, boxes2, fmt="xyxy"):
    inter, union = _inter_union(xp, boxes1, boxes2, fmt)
    return as_float(xp, inter) / as_float(xp, union)


def _enclosing(xp, boxes1, boxes2):
    """Width and height of the smallest box enclosing each pair, clamped at 0."""
    (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = _split(xp, boxes1, boxes2)
    w = upcast(xp, xp.maximum(ax2, bx2) - xp.minimum(ax1, bx1))
    h = upcast(xp, xp.maximum(ay2, by2) - xp.minimum(ay1, by1))
    return xp.clip(w, min=0), xp.clip(h, min=0)


def _giou_kernel(xp, boxes1, boxes2):
    inter, union = _inter_union(xp, boxes1, boxes2)
    iou = as_float(xp, inter) / as_float(xp, union)
    w, h = _enclosing(xp, boxes1, boxes2)
    area_c = w * h
    return iou - as_float(xp, area_c - union) / as_float(xp, area_c)


def _diou_kernel(xp, boxes1, boxes2, eps):
    """DIoU and IoU of each pair (torchvision's ``_box_diou_iou``)."""
    iou = _iou_kernel(xp, boxes1, boxes2)
    w, h = _enclosing(xp, boxes1, boxes2)
    diag2 = as_float(xp, w**2 + h**2) + eps
    (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = _split(xp, boxes1, boxes2)
    acx, acy = as_float(xp, ax1 + ax2) / 2, as_float(xp, ay1 + ay2) / 2
    bcx, bcy = as_float(xp, bx1 + bx2) / 2, as_float(xp, by1 + by2) / 2
    rho2 = (acx - bcx) ** 2 + (acy - bcy) ** 2
    return iou - rho2 / diag2, iou


def _ciou_kernel(xp, boxes1, boxes2, eps):
    diou, iou = _diou_kernel(xp, boxes1, boxes2, eps)
    (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = _split(xp, boxes1, boxes2)
    ratio1 = as_float(xp, ax2 - ax1) / as_float(xp, ay2 - ay1)
    ratio2 = as_float(xp, bx2 - bx1) / as_float(xp, by2 - by1)
    v = (4 / math.pi**2) * (xp.atan(ratio1) - xp.atan(ratio2)) ** 2
    alpha = v / (1 - iou + v + eps)
    return diou - alpha * v


def box_iou(boxes1, boxes2, fmt: str = "xyxy"):
    """Intersection over union of every pair of boxes.

    .. math:: \\mathrm{IoU}(A, B) = \\frac{|A \\cap B|}{|A| + |B| - |A \\cap B|}

    Parameters
    ----------
    boxes1 : array of shape (..., N, 4)
    boxes2 : array of shape (..., M, 4)
        Leading axes broadcast against each other.
    fmt : {"xyxy", "xywh", "cxcywh"}
        Format of both inputs.

    Returns
    -------
    array of shape (..., N, M)
        float32 for integer or float16 boxes, otherwise the boxes' dtype. No epsilon: two
        identical zero-area boxes give 0/0 = NaN; a zero-area box against any other box gives 0;
        an inverted box (both sides negative, so a positive area) overlaps nothing and gives 0.

    Notes
    -----
    Mirrors ``torchvision.ops.box_iou`` with the same operation order, so float32 results are
    bitwise equal. Device-pure.
    """
    check_fmt("fmt", fmt)
    return _pairwise(_iou_kernel, boxes1, boxes2, fmt)


def generalized_box_iou(boxes1, boxes2):
    """Generalized IoU (Rezatofighi et al., CVPR 2019) of every pair of xyxy boxes.

    .. math:: \\mathrm{GIoU} = \\mathrm{IoU} - \\frac{|C| - |A \\cup B|}{|C|}

    where ``C`` is the smallest box enclosing ``A`` and ``B``. Unlike IoU it is negative for
    disjoint boxes and grows as they approach, which gives a box-regression loss a gradient.

    Parameters
    ----------
    boxes1 : array of shape (..., N, 4)
    boxes2 : array of shape (..., M, 4)

    Returns
    -------
    array of shape (..., N, M) in [-1, 1] for valid boxes; dtype as :func:`box_iou`.
        No epsilon (as in torchvision): identical zero-area boxes give NaN; a zero-area box
        against an inverted one can give ``C = 0`` and so +inf. When ``C`` is a *signed* zero
        (an inverted box against coordinates of -0.0) the sign of that infinity follows the
        library's min/max tie-breaking, which differs between NumPy and torch.

    Notes
    -----
    Mirrors ``torchvision.ops.generalized_box_iou``; float32 results are bitwise equal.
    Device-pure.
    """
    return _pairwise(_giou_kernel, boxes1, boxes2)


def distance_box_iou(boxes1, boxes2, eps: float = 1e-7):
    """Distance IoU (Zheng et al., AAAI 2020) of every pair of xyxy boxes.

    .. math:: \\mathrm{DIoU} = \\mathrm{IoU} - \\frac{\\rho^2(b_A, b_B)}{c^2 + \\epsilon}

    with ``rho`` the distance between the box centres and ``c`` the diagonal of the enclosing box.

    Parameters
    ----------
    boxes1 : array of shape (..., N, 4)
    boxes2 : array of shape (..., M, 4)
    eps : float
        Added to ``c**2`` only; the IoU term has none, so a pair of zero-area boxes is NaN.

    Returns
    -------
    array of shape (..., N, M); float32 for integer or float16 boxes.

    Notes
    -----
    Mirrors ``torchvision.ops.distance_box_iou``. Device-pure.
    """
    return _pairwise(_first_of_diou, boxes1, boxes2, eps, upcast_first=True)


def _first_of_diou(xp, boxes1, boxes2, eps):
    return _diou_kernel(xp, boxes1, boxes2, eps)[0]


def complete_box_iou(boxes1, boxes2, eps: float = 1e-7):
    """Complete IoU (Zheng et al., AAAI 2020) of every pair of xyxy boxes.

    .. math:: \\mathrm{CIoU} = \\mathrm{DIoU} - \\alpha v, \\quad
              v = \\frac{4}{\\pi^2}\\left(\\arctan\\frac{w_A}{h_A} -
              \\arctan\\frac{w_B}{h_B}\\right)^2, \\quad
              \\alpha = \\frac{v}{1 - \\mathrm{IoU} + v + \\epsilon}

    ``v`` compares aspect ratios; a box with ``w = h = 0`` has the ratio 0/0 = NaN, which makes
    its whole row or column NaN (as in torchvision); ``h = 0 < w`` gives arctan(inf) = pi/2.

    Parameters
    ----------
    boxes1 : array of shape (..., N, 4)
    boxes2 : array of shape (..., M, 4)
    eps : float

    Returns
    -------
    array of shape (..., N, M); float32 for integer or float16 boxes.

    Notes
    -----
    Mirrors ``torchvision.ops.complete_box_iou``. Device-pure.
    """
    return _pairwise(_ciou_kernel, boxes1, boxes2, eps, upcast_first=True)
