"""IoU-family box losses, forward and backward: GIoU, DIoU and CIoU.

:func:`generalized_box_iou_loss`, :func:`distance_box_iou_loss` and :func:`complete_box_iou_loss`
mirror ``torchvision.ops`` (0.29.1): element-wise over paired ``(..., 4)`` xyxy boxes (both of
one shape: no broadcasting; torch raises on ``(5, 4)`` with ``(1, 5, 4)``), torch's
reductions, and 0 (not NaN) for the mean of an empty input, as torchvision guards it. Each has a
``f_backward(boxes1, boxes2, ..., grad_output=None)`` returning dL/d(boxes1) by the chain rule
through the intersection, the union and the enclosing box (:class:`IoUTerms`), with torch's
half-and-half split of the gradient at ``maximum``/``minimum`` ties. Device-pure.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from .._backend import namespace_of
from ._loss_core import check_reduction, check_same_shape, reduce, upstream

__all__ = [
    "generalized_box_iou_loss",
    "generalized_box_iou_loss_backward",
    "distance_box_iou_loss",
    "distance_box_iou_loss_backward",
    "complete_box_iou_loss",
    "complete_box_iou_loss_backward",
]



def _iou_loss_inputs(boxes1, boxes2, reduction):
    xp = namespace_of(boxes1=boxes1, boxes2=boxes2)
    for name, b in (("boxes1", boxes1), ("boxes2", boxes2)):
        if b.ndim == 0 or b.shape[-1] != 4:
            raise ValueError(f"{name} must have shape (..., 4), got {tuple(b.shape)}")
        if not (xp.isdtype(b.dtype, "real floating") or xp.isdtype(b.dtype, "integral")):
            raise TypeError(f"{name} must have a real numeric dtype, got {b.dtype}")
    check_same_shape(boxes1, boxes2, "boxes1", "boxes2")  # paired boxes: no broadcasting
    check_reduction(reduction)

    def up(b):  # torchvision's _upcast_non_float: anything but float32/64 -> float32
        return b if b.dtype in (xp.float32, xp.float64) else xp.astype(b, xp.float32)

    b1, b2 = up(boxes1), up(boxes2)
    dtype = xp.result_type(b1, b2)
    b1, b2 = xp.astype(b1, dtype), xp.astype(b2, dtype)
    return xp, b1, b2


def _max_share(xp, a, b):
    """d max(a, b)/da as torch defines it: 1 where a > b, 1/2 at a tie, 0 otherwise."""
    return xp.astype(a > b, a.dtype) + 0.5 * xp.astype(a == b, a.dtype)


def _min_share(xp, a, b):
    return xp.astype(a < b, a.dtype) + 0.5 * xp.astype(a == b, a.dtype)


class IoUTerms(NamedTuple):
    """What the three IoU losses share: both boxes' corners (``g``: the second, target box),
    the intersection corners ``k`` and its ``mask`` (non-empty), ``inter``, ``union`` and the
    enclosing box's corners ``c``. Each field has the pair shape ``(...)``."""

    x1: object
    y1: object
    x2: object
    y2: object
    x1g: object
    y1g: object
    x2g: object
    y2g: object
    xk1: object
    yk1: object
    xk2: object
    yk2: object
    mask: object
    inter: object
    union: object
    xc1: object
    yc1: object
    xc2: object
    yc2: object


def _iou_loss_terms(xp, b1, b2) -> IoUTerms:
    """Everything the three IoU losses share, in torchvision's operation order."""
    x1, y1, x2, y2 = (b1[..., i] for i in range(4))
    x1g, y1g, x2g, y2g = (b2[..., i] for i in range(4))
    xk1, yk1 = xp.maximum(x1, x1g), xp.maximum(y1, y1g)
    xk2, yk2 = xp.minimum(x2, x2g), xp.minimum(y2, y2g)
    mask = (yk2 > yk1) & (xk2 > xk1)
    inter = xp.where(mask, (xk2 - xk1) * (yk2 - yk1), xp.zeros_like(x1))
    union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - inter
    xc1, yc1 = xp.minimum(x1, x1g), xp.minimum(y1, y1g)
    xc2, yc2 = xp.maximum(x2, x2g), xp.maximum(y2, y2g)
    return IoUTerms(
        x1, y1, x2, y2, x1g, y1g, x2g, y2g, xk1, yk1, xk2, yk2, mask, inter, union,
        xc1, yc1, xc2, yc2,
    )


def _iou_grad(xp, t, g_inter, g_union, g_xc1, g_yc1, g_xc2, g_yc2):
    """Chain rule from (inter, union, enclosing corners) back to the four coordinates of boxes1."""
    x1, y1, x2, y2 = t.x1, t.y1, t.x2, t.y2
    maskf = xp.astype(t.mask, x1.dtype)
    g_inter = g_inter - g_union  # union = area1 + area2 - inter
    gi = g_inter * maskf
    dw, dh = t.xk2 - t.xk1, t.yk2 - t.yk1
    g_xk1, g_xk2, g_yk1, g_yk2 = -gi * dh, gi * dh, -gi * dw, gi * dw
    w, h = x2 - x1, y2 - y1  # area1 = w * h
    gx1 = -g_union * h + g_xk1 * _max_share(xp, x1, t.x1g) + g_xc1 * _min_share(xp, x1, t.x1g)
    gy1 = -g_union * w + g_yk1 * _max_share(xp, y1, t.y1g) + g_yc1 * _min_share(xp, y1, t.y1g)
    gx2 = g_union * h + g_xk2 * _min_share(xp, x2, t.x2g) + g_xc2 * _max_share(xp, x2, t.x2g)
    gy2 = g_union * w + g_yk2 * _min_share(xp, y2, t.y2g) + g_yc2 * _max_share(xp, y2, t.y2g)
    return xp.stack([gx1, gy1, gx2, gy2], axis=-1)


def _iou_reduce(xp, loss, reduction):
    return reduce(xp, loss, reduction, empty_mean_zero=True)


def generalized_box_iou_loss(boxes1, boxes2, reduction: str = "none", eps: float = 1e-7):
    """GIoU loss ``1 - IoU + (C - U)/C`` of paired boxes (Rezatofighi et al. 2019).

    Element-wise over ``(..., 4)`` pairs (torchvision's ``ops.generalized_box_iou_loss``, not
    pairwise): ``iou = I/(U + eps)``, ``C`` the area of the smallest enclosing box, loss
    ``1 - (iou - (C - U)/(C + eps))``. Unlike ``1 - IoU`` it keeps a gradient for boxes that do
    not overlap: the enclosing-box term pulls them together. The intersection is set only where
    both overlaps are strictly positive (gradient 0 elsewhere); inputs that are not
    float32/float64 become float32; an empty mean is 0. Device-pure.
    """
    xp, b1, b2 = _iou_loss_inputs(boxes1, boxes2, reduction)
    t = _iou_loss_terms(xp, b1, b2)
    iou = t.inter / (t.union + eps)
    area_c = (t.xc2 - t.xc1) * (t.yc2 - t.yc1)
    loss = 1 - (iou - ((area_c - t.union) / (area_c + eps)))
    return _iou_reduce(xp, loss, reduction)


def generalized_box_iou_loss_backward(
    boxes1, boxes2, reduction: str = "none", eps: float = 1e-7, grad_output=None
):
    """dL/d(boxes1) of :func:`generalized_box_iou_loss` (float32/float64, shape of boxes1)."""
    xp, b1, b2 = _iou_loss_inputs(boxes1, boxes2, reduction)
    t = _iou_loss_terms(xp, b1, b2)
    inter, union = t.inter, t.union
    cw, ch = t.xc2 - t.xc1, t.yc2 - t.yc1
    area_c = cw * ch
    g = upstream(xp, inter, reduction, grad_output)
    ue, ce = union + eps, area_c + eps
    g_inter = -g / ue
    g_union = g * (inter / (ue * ue) - 1 / ce)
    g_c = g * (ue / (ce * ce))  # d/dC of (C - U)/(C + eps)
    return _iou_grad(xp, t, g_inter, g_union, -g_c * ch, -g_c * cw, g_c * ch, g_c * cw)


def _diou_terms(xp, t, eps):
    dx, dy = t.xc2 - t.xc1, t.yc2 - t.yc1
    diag = (dx**2) + (dy**2) + eps
    xp_, yp_ = (t.x2 + t.x1) / 2, (t.y2 + t.y1) / 2
    xg_, yg_ = (t.x1g + t.x2g) / 2, (t.y1g + t.y2g) / 2
    rho = ((xp_ - xg_) ** 2) + ((yp_ - yg_) ** 2)
    iou = t.inter / (t.union + eps)
    return 1 - iou + (rho / diag), iou, dx, dy, diag, rho, xp_ - xg_, yp_ - yg_


def distance_box_iou_loss(boxes1, boxes2, reduction: str = "none", eps: float = 1e-7):
    """DIoU loss ``1 - IoU + rho^2/c^2`` of paired boxes (Zheng et al. 2020).

    ``rho`` is the distance between the centres, ``c`` the diagonal of the enclosing box
    (``c^2 + eps``); the centre term gives disjoint boxes a direct pull towards each other.
    torchvision's ``ops.distance_box_iou_loss``; same conventions as
    :func:`generalized_box_iou_loss`. Device-pure.
    """
    xp, b1, b2 = _iou_loss_inputs(boxes1, boxes2, reduction)
    t = _iou_loss_terms(xp, b1, b2)
    return _iou_reduce(xp, _diou_terms(xp, t, eps)[0], reduction)


def _diou_grad(xp, t, eps, g):
    _, _, dx, dy, diag, rho, cx, cy = _diou_terms(xp, t, eps)
    inter, ue = t.inter, t.union + eps
    g_inter = -g / ue
    g_union = g * inter / (ue * ue)
    g_diag = -g * rho / (diag * diag)
    grad = _iou_grad(
        xp,
        t,
        g_inter,
        g_union,
        -2 * dx * g_diag,
        -2 * dy * g_diag,
        2 * dx * g_diag,
        2 * dy * g_diag,
    )
    g_rho = g / diag  # d rho / d x1 = d rho / d x2 = (x_p - x_g)
    gx, gy = g_rho * cx, g_rho * cy
    return grad + xp.stack([gx, gy, gx, gy], axis=-1)


def distance_box_iou_loss_backward(
    boxes1, boxes2, reduction: str = "none", eps: float = 1e-7, grad_output=None
):
    """dL/d(boxes1) of :func:`distance_box_iou_loss`."""
    xp, b1, b2 = _iou_loss_inputs(boxes1, boxes2, reduction)
    t = _iou_loss_terms(xp, b1, b2)
    return _diou_grad(xp, t, eps, upstream(xp, t.inter, reduction, grad_output))


_DIOU_EPS = 1e-7  # torchvision's complete_box_iou_loss always uses this inside its DIoU part


def _ciou_v(xp, t):
    wp, hp = t.x2 - t.x1, t.y2 - t.y1
    wg, hg = t.x2g - t.x1g, t.y2g - t.y1g
    diff = xp.atan(wg / hg) - xp.atan(wp / hp)
    return (4 / (math.pi**2)) * (diff**2), diff, wp, hp


def complete_box_iou_loss(boxes1, boxes2, reduction: str = "none", eps: float = 1e-7):
    """CIoU loss: DIoU loss + ``alpha v``, ``v`` the aspect-ratio mismatch (Zheng et al. 2020).

    ``v = 4/pi^2 (atan(w_gt/h_gt) - atan(w/h))^2`` and ``alpha = v / (1 - IoU + v + eps)``,
    treated as a constant in the gradient (computed under ``no_grad`` in torchvision).

    torchvision 0.29.1 deviates from its documentation: the ``eps`` argument is used only in
    ``alpha``; the DIoU part always uses ``1e-7``. We keep that behaviour (so results equal
    torchvision's for every ``eps``) and say so here; the tests check it. Zero-area boxes give
    NaN (0/0 in the atan), as in torchvision. Device-pure.
    """
    xp, b1, b2 = _iou_loss_inputs(boxes1, boxes2, reduction)
    t = _iou_loss_terms(xp, b1, b2)
    diou_loss, iou = _diou_terms(xp, t, _DIOU_EPS)[:2]
    v = _ciou_v(xp, t)[0]
    alpha = v / (1 - iou + v + eps)
    return _iou_reduce(xp, diou_loss + alpha * v, reduction)


def complete_box_iou_loss_backward(
    boxes1, boxes2, reduction: str = "none", eps: float = 1e-7, grad_output=None
):
    """dL/d(boxes1) of :func:`complete_box_iou_loss` (``alpha`` held constant, as torch does)."""
    xp, b1, b2 = _iou_loss_inputs(boxes1, boxes2, reduction)
    t = _iou_loss_terms(xp, b1, b2)
    g = upstream(xp, t.inter, reduction, grad_output)
    grad = _diou_grad(xp, t, _DIOU_EPS, g)
    iou = _diou_terms(xp, t, _DIOU_EPS)[1]
    v, diff, wp, hp = _ciou_v(xp, t)
    alpha = v / (1 - iou + v + eps)
    r = wp / hp
    # d v / d r = 4/pi^2 * 2 diff * (-1 / (1 + r^2)); r = w/h
    g_r = g * alpha * (4 / (math.pi**2)) * 2 * diff * (-1 / (1 + r * r))
    g_w, g_h = g_r / hp, -g_r * wp / (hp * hp)
    return grad + xp.stack([-g_w, -g_h, g_w, g_h], axis=-1)
