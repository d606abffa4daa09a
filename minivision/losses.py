"""Losses of the R-CNN family, forward and backward: L = L_cls + L_box (+ L_mask).

Elementwise building blocks with torch's reductions (``"none"`` / ``"mean"`` / ``"sum"``):
:func:`smooth_l1_loss`, :func:`l1_loss`, :func:`cross_entropy`,
:func:`binary_cross_entropy_with_logits`, :func:`sigmoid_focal_loss` and the IoU-family box
losses :func:`generalized_box_iou_loss`, :func:`distance_box_iou_loss`,
:func:`complete_box_iou_loss`; then the detector losses exactly as torchvision 0.29.1 computes
them: :func:`fastrcnn_loss` and :func:`rpn_loss` (the mask loss lives in :mod:`minivision.masks`);
:func:`fastrcnn_loss_and_grad` returns the Fast R-CNN losses and gradients from one pass.

Every loss ``f(pred, ...)`` has a ``f_backward(pred, ..., grad_output=None)`` that returns
dL/d(pred), the gradient with respect to the *prediction* argument (the first one), written out
by hand with the chain rule; ``grad_output`` is the upstream gradient (shape of the loss; ``None``
means 1). Where torch splits a gradient (``maximum``/``minimum`` ties get half each) we do too,
so the gradients equal torch autograd's.

Empty inputs follow torch: ``"mean"`` of an empty elementwise loss is NaN (0/0), ``"sum"`` is 0;
the IoU losses return 0 for an empty mean (torchvision guards them). Cross-entropy with every
target ignored is NaN. These are the reference's choices and we keep them (lesson 08 explains why
a training loop should never feed an empty batch rather than rely on either value).

All functions are device-pure: masks and ``where`` replace torchvision's boolean indexing, so no
shape depends on the data.
"""

from __future__ import annotations

import math

from ._backend import scatter_add
from ._validate import namespace_of

__all__ = [
    "smooth_l1_loss",
    "smooth_l1_loss_backward",
    "l1_loss",
    "l1_loss_backward",
    "cross_entropy",
    "cross_entropy_backward",
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_backward",
    "sigmoid_focal_loss",
    "sigmoid_focal_loss_backward",
    "generalized_box_iou_loss",
    "generalized_box_iou_loss_backward",
    "distance_box_iou_loss",
    "distance_box_iou_loss_backward",
    "complete_box_iou_loss",
    "complete_box_iou_loss_backward",
    "fastrcnn_loss",
    "fastrcnn_loss_backward",
    "fastrcnn_loss_and_grad",
    "rpn_loss",
    "rpn_loss_backward",
]

REDUCTIONS = ("none", "mean", "sum")


# ----------------------------------------------------------------------------- helpers


def _check_reduction(reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _check_float(xp, x, name):
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(f"{name} must have a real floating-point dtype, got {x.dtype}")


def _check_same_shape(a, b, name_a, name_b):
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(
            f"{name_b} must have the shape of {name_a} {tuple(a.shape)}, got {tuple(b.shape)}"
        )


def _reduce(xp, loss, reduction, empty_mean_zero=False):
    """torch's reductions; an empty mean is NaN (0/0), or 0 where torchvision guards it."""
    if reduction == "none":
        return loss
    total = xp.sum(loss)
    if reduction == "sum":
        return _0d(xp, total)
    n = math.prod(loss.shape)
    if n == 0:
        return _0d(xp, total * 0 if empty_mean_zero else total * math.nan)
    return _0d(xp, total / n)


def _0d(xp, value):
    """A 0-d array, not a NumPy scalar (NumPy's reductions return scalars)."""
    return xp.asarray(value)


def _upstream(xp, unreduced, reduction, grad_output):
    """The gradient arriving at each element of the unreduced loss (a scalar or an array).

    ``grad_output`` is the gradient of the reduced loss (``None``: 1); ``"mean"`` spreads it
    over the elements (an empty loss has no elements, hence no gradient to spread).
    """
    g = 1.0 if grad_output is None else grad_output
    if reduction == "mean":
        n = math.prod(unreduced.shape)
        return g / n if n else g
    return g


# ----------------------------------------------------------------------------- L1 family


def _smooth_l1(xp, z, beta):
    """Elementwise smooth L1 of ``z = |input - target|`` (torch's formula and operation order)."""
    if beta == 0:
        return z
    return xp.where(z < beta, ((0.5 * z) * z) / beta, z - 0.5 * beta)


def _smooth_l1_grad(xp, d, beta):
    """d smooth_l1(d) / dd of ``d = input - target``: ``d/beta`` inside, ``sign(d)`` outside."""
    if beta == 0:
        return xp.sign(d)
    return xp.where(xp.abs(d) < beta, d / beta, xp.sign(d))


def smooth_l1_loss(input, target, reduction: str = "mean", beta: float = 1.0):
    """Smooth L1 (Huber / beta) loss of Fast R-CNN, torch's ``F.smooth_l1_loss``.

    .. math:: \\ell(z) = 0.5 z^2 / \\beta \\;\\text{if}\\; |z| < \\beta \\;\\text{else}\\;
              |z| - 0.5\\beta, \\qquad z = \\text{input} - \\text{target}

    Girshick (Fast R-CNN, eq. 3) uses it for box regression because it is quadratic near 0
    (a smooth minimum) and linear far away (bounded gradient for outliers). ``beta = 0`` is plain
    L1; ``|z| == beta`` takes the linear branch, as torch does. Device-pure.

    Parameters
    ----------
    input, target : arrays of one shape, real floating dtype.
    reduction : "none" | "mean" | "sum". An empty mean is NaN, an empty sum 0 (torch).
    beta : float >= 0.
    """
    xp = namespace_of(input=input, target=target)
    _check_float(xp, input, "input")
    _check_same_shape(input, target, "input", "target")
    _check_reduction(reduction)
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    return _reduce(xp, _smooth_l1(xp, xp.abs(input - target), beta), reduction)


def smooth_l1_loss_backward(
    input, target, reduction: str = "mean", beta: float = 1.0, grad_output=None
):
    """dL/d(input) of :func:`smooth_l1_loss`: ``z/beta`` inside, ``sign(z)`` outside, 0 at 0."""
    xp = namespace_of(input=input, target=target)
    _check_float(xp, input, "input")
    _check_same_shape(input, target, "input", "target")
    _check_reduction(reduction)
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    return _smooth_l1_grad(xp, input - target, beta) * _upstream(xp, input, reduction, grad_output)


def l1_loss(input, target, reduction: str = "mean"):
    """Mean absolute error ``|input - target|``, torch's ``F.l1_loss``. Device-pure."""
    return smooth_l1_loss(input, target, reduction, beta=0.0)


def l1_loss_backward(input, target, reduction: str = "mean", grad_output=None):
    """dL/d(input) of :func:`l1_loss`: ``sign(input - target)`` (0 where they are equal)."""
    return smooth_l1_loss_backward(input, target, reduction, 0.0, grad_output)


# ----------------------------------------------------------------------------- cross-entropy


def _log_softmax(xp, x):
    """log p = x - max - log sum exp(x - max), row-wise: never overflows (log-sum-exp trick)."""
    shifted = x - xp.max(x, axis=-1, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))


def _ce_parts(input, target, weight, ignore_index, label_smoothing):
    xp = namespace_of(input=input, target=target, weight=weight)
    _check_float(xp, input, "input")
    if input.ndim != 2:
        raise ValueError(f"input must have shape (N, C), got {tuple(input.shape)}")
    n, c = input.shape
    if tuple(target.shape) != (n,) or not xp.isdtype(target.dtype, "integral"):
        raise ValueError(
            f"target must be an integer array of shape ({n},), got {target.dtype} "
            f"{tuple(target.shape)}"
        )
    if weight is not None and tuple(weight.shape) != (c,):
        raise ValueError(f"weight must have shape ({c},), got {tuple(weight.shape)}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    valid = target != ignore_index  # (N,)
    classes = xp.arange(c, dtype=target.dtype, device=target.device)
    hit = (target[:, None] == classes[None, :]) & valid[:, None]  # one-hot, 0 on ignored rows
    onehot = xp.astype(hit, input.dtype)  # (N, C)
    validf = xp.astype(valid, input.dtype)
    if weight is None:
        w, w_t = None, validf  # every class weighs 1; ignored rows 0
        coef = onehot if label_smoothing == 0 else (1.0 - label_smoothing) * onehot
    else:
        w = xp.astype(weight, input.dtype)
        w_t = xp.sum(onehot * w, axis=1)  # weight of each sample's class, 0 if ignored
        coef = (1.0 - label_smoothing) * onehot * w_t[:, None]
    # coefficient of -log p_c in the per-sample loss (label smoothing spreads eps/C to all)
    if label_smoothing != 0:
        spread = validf[:, None] if w is None else w[None, :] * validf[:, None]
        coef = coef + (label_smoothing / c) * spread
    return xp, coef, w_t, valid


def cross_entropy(
    input,
    target,
    weight=None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
):
    """Softmax cross-entropy over class indices, torch's ``F.cross_entropy`` for ``(N, C)``.

    .. math:: \\ell_i = -w_{t_i} \\log p_{i, t_i}, \\quad
              \\log p_{i,c} = x_{i,c} - m_i - \\log \\textstyle\\sum_k e^{x_{i,k} - m_i}

    with ``m_i`` the row maximum (the stable log-sum-exp). Samples whose target is
    ``ignore_index`` contribute nothing; ``"mean"`` divides by the summed weights of the kept
    samples (their count when unweighted), so all-ignored gives NaN, as in torch. Label smoothing
    ``eps`` mixes in the uniform target: ``(1 - eps) nll + eps/C sum_c w_c (-log p_c)``.
    Device-pure.

    Parameters
    ----------
    input : (N, C) float logits.  target : (N,) integer class indices.
    weight : optional (C,) class weights.
    """
    _check_reduction(reduction)
    xp, coef, w_t, valid = _ce_parts(input, target, weight, ignore_index, label_smoothing)
    loss = -xp.sum(coef * _log_softmax(xp, input), axis=1)  # (N,)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return _0d(xp, xp.sum(loss))
    return _0d(xp, xp.sum(loss) / xp.sum(w_t))


def cross_entropy_backward(
    input,
    target,
    weight=None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    grad_output=None,
):
    """dL/d(input) of :func:`cross_entropy`: ``p_j * sum_c a_c - a_j`` per row.

    ``a_c`` is the coefficient of ``-log p_c`` in the row's loss (``w_t`` on the target class,
    plus ``eps w_c / C`` with smoothing); without weights or smoothing this is the familiar
    ``softmax(x) - onehot(t)``. Ignored rows get 0 (also when every row is ignored).
    """
    _check_reduction(reduction)
    xp, coef, w_t, valid = _ce_parts(input, target, weight, ignore_index, label_smoothing)
    p = xp.exp(_log_softmax(xp, input))
    g = p * xp.sum(coef, axis=1, keepdims=True) - coef  # (N, C)
    up = 1.0 if grad_output is None else grad_output
    if reduction == "none":
        up = up if grad_output is None else up[:, None]
    elif reduction == "mean":
        up = up / xp.sum(w_t)
    return xp.where(valid[:, None], g * up, xp.zeros_like(g))


# ----------------------------------------------------------------------------- sigmoid losses


def _log_sigmoid(xp, x):
    """log sigmoid(x) = min(x, 0) - log1p(exp(-|x|)): exact and finite for |x| = 100."""
    return xp.minimum(x, xp.zeros_like(x)) - xp.log1p(xp.exp(-xp.abs(x)))


def _sigmoid(xp, x):
    """sigmoid without overflow: exp(-|x|) is <= 1 on both branches."""
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _bce_checks(input, target, weight, pos_weight, reduction):
    xp = namespace_of(input=input, target=target, weight=weight, pos_weight=pos_weight)
    _check_float(xp, input, "input")
    _check_same_shape(input, target, "input", "target")
    _check_reduction(reduction)
    return xp


def binary_cross_entropy_with_logits(
    input, target, weight=None, reduction: str = "mean", pos_weight=None
):
    """Binary cross-entropy on logits, torch's ``F.binary_cross_entropy_with_logits``.

    .. math:: \\ell = (1 - y)\\,x - (1 + (p - 1)\\,y)\\,\\log\\sigma(x)

    which equals ``-[p y log s + (1 - y) log(1 - s)]`` with ``s = sigmoid(x)`` but never takes
    the log of a rounded-to-zero probability: ``log sigmoid(x) = min(x, 0) - log1p(e^{-|x|})``
    (so ``x = +-100`` gives exact, finite losses). ``pos_weight`` (broadcast over the last axis)
    up-weights positives; ``weight`` multiplies the result. Soft targets are allowed.
    Device-pure.
    """
    xp = _bce_checks(input, target, weight, pos_weight, reduction)
    y = xp.astype(target, input.dtype)
    ls = _log_sigmoid(xp, input)
    if pos_weight is None:
        loss = (1 - y) * input - ls
    else:
        loss = (1 - y) * input - (1 + (pos_weight - 1) * y) * ls
    if weight is not None:
        loss = loss * weight
    return _reduce(xp, loss, reduction)


def binary_cross_entropy_with_logits_backward(
    input, target, weight=None, reduction: str = "mean", pos_weight=None, grad_output=None
):
    """dL/dx of :func:`binary_cross_entropy_with_logits`: ``(1 - y) - (1 + (p-1) y) sigma(-x)``.

    With ``pos_weight = 1`` this is the familiar ``sigmoid(x) - y``.
    """
    xp = _bce_checks(input, target, weight, pos_weight, reduction)
    y = xp.astype(target, input.dtype)
    s_neg = _sigmoid(xp, -input)
    if pos_weight is None:
        g = _sigmoid(xp, input) - y
    else:
        g = (1 - y) - (1 + (pos_weight - 1) * y) * s_neg
    if weight is not None:
        g = g * weight
    g = g * _upstream(xp, input, reduction, grad_output)
    return xp.broadcast_to(g, input.shape) if tuple(g.shape) != tuple(input.shape) else g


def _focal_checks(inputs, targets, alpha, reduction):
    xp = namespace_of(inputs=inputs, targets=targets)
    _check_float(xp, inputs, "inputs")
    _check_same_shape(inputs, targets, "inputs", "targets")
    if not (0 <= alpha <= 1) and alpha != -1:
        raise ValueError(f"alpha must be in [0, 1] or -1 (no weighting), got {alpha}")
    _check_reduction(reduction)
    return xp


def sigmoid_focal_loss(inputs, targets, alpha: float = 0.25, gamma: float = 2, reduction="none"):
    """Focal loss of RetinaNet (Lin et al. 2017), torchvision's ``ops.sigmoid_focal_loss``.

    .. math:: FL = \\alpha_t (1 - p_t)^{\\gamma}\\, \\mathrm{BCE}(x, y), \\quad
              p_t = p y + (1 - p)(1 - y), \\; \\alpha_t = \\alpha y + (1 - \\alpha)(1 - y)

    The modulating factor ``(1 - p_t)^gamma`` shrinks the loss of the many easy negatives so the
    rare hard examples dominate. ``alpha = -1`` switches the class weighting off; any other alpha
    outside [0, 1] is a ``ValueError``. Default reduction is ``"none"`` (torchvision's); the mean
    of an empty input is NaN (torchvision has no guard here). Device-pure.
    """
    xp = _focal_checks(inputs, targets, alpha, reduction)
    y = xp.astype(targets, inputs.dtype)
    p = _sigmoid(xp, inputs)
    ce = (1 - y) * inputs - _log_sigmoid(xp, inputs)
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return _reduce(xp, loss, reduction)


def sigmoid_focal_loss_backward(
    inputs, targets, alpha: float = 0.25, gamma: float = 2, reduction="none", grad_output=None
):
    """dFL/dx = a_t [(p - y)(1 - p_t)^g - g (1 - p_t)^(g-1) CE p (1 - p)(2y - 1)].

    The gradient flows through both the cross-entropy and the modulating factor, as in torch
    autograd; for ``gamma < 1`` at a saturated logit (``p_t == 1``) it is NaN (``inf * 0``), in
    torch too.
    """
    xp = _focal_checks(inputs, targets, alpha, reduction)
    y = xp.astype(targets, inputs.dtype)
    p = _sigmoid(xp, inputs)
    ce = (1 - y) * inputs - _log_sigmoid(xp, inputs)
    one_m = 1 - (p * y + (1 - p) * (1 - y))
    dpt = p * (1 - p) * (2 * y - 1)
    g = (p - y) * one_m**gamma - gamma * one_m ** (gamma - 1) * ce * dpt if gamma != 0 else p - y
    if alpha >= 0:
        g = (alpha * y + (1 - alpha) * (1 - y)) * g
    return g * _upstream(xp, inputs, reduction, grad_output)


# ----------------------------------------------------------------------------- IoU losses


def _iou_loss_inputs(boxes1, boxes2, reduction):
    xp = namespace_of(boxes1=boxes1, boxes2=boxes2)
    for name, b in (("boxes1", boxes1), ("boxes2", boxes2)):
        if b.ndim == 0 or b.shape[-1] != 4:
            raise ValueError(f"{name} must have shape (..., 4), got {tuple(b.shape)}")
        if not (xp.isdtype(b.dtype, "real floating") or xp.isdtype(b.dtype, "integral")):
            raise TypeError(f"{name} must have a real numeric dtype, got {b.dtype}")
    _check_reduction(reduction)

    def up(b):  # torchvision's _upcast_non_float: anything but float32/64 -> float32
        return b if b.dtype in (xp.float32, xp.float64) else xp.astype(b, xp.float32)

    b1, b2 = up(boxes1), up(boxes2)
    dtype = xp.result_type(b1, b2)
    b1, b2 = xp.astype(b1, dtype), xp.astype(b2, dtype)
    b1, b2 = xp.broadcast_arrays(b1, b2)
    return xp, b1, b2


def _max_share(xp, a, b):
    """d max(a, b)/da as torch defines it: 1 where a > b, 1/2 at a tie, 0 otherwise."""
    return xp.astype(a > b, a.dtype) + 0.5 * xp.astype(a == b, a.dtype)


def _min_share(xp, a, b):
    return xp.astype(a < b, a.dtype) + 0.5 * xp.astype(a == b, a.dtype)


def _iou_loss_terms(xp, b1, b2):
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
    return locals()


def _iou_grad(xp, t, g_inter, g_union, g_xc1, g_yc1, g_xc2, g_yc2):
    """Chain rule from (inter, union, enclosing corners) back to the four coordinates of boxes1."""
    x1, y1, x2, y2 = t["x1"], t["y1"], t["x2"], t["y2"]
    maskf = xp.astype(t["mask"], x1.dtype)
    g_inter = g_inter - g_union  # union = area1 + area2 - inter
    gi = g_inter * maskf
    dw, dh = t["xk2"] - t["xk1"], t["yk2"] - t["yk1"]
    g_xk1, g_xk2, g_yk1, g_yk2 = -gi * dh, gi * dh, -gi * dw, gi * dw
    w, h = x2 - x1, y2 - y1  # area1 = w * h
    gx1 = -g_union * h + g_xk1 * _max_share(xp, x1, t["x1g"]) + g_xc1 * _min_share(xp, x1, t["x1g"])
    gy1 = -g_union * w + g_yk1 * _max_share(xp, y1, t["y1g"]) + g_yc1 * _min_share(xp, y1, t["y1g"])
    gx2 = g_union * h + g_xk2 * _min_share(xp, x2, t["x2g"]) + g_xc2 * _max_share(xp, x2, t["x2g"])
    gy2 = g_union * w + g_yk2 * _min_share(xp, y2, t["y2g"]) + g_yc2 * _max_share(xp, y2, t["y2g"])
    return xp.stack([gx1, gy1, gx2, gy2], axis=-1)


def _iou_reduce(xp, loss, reduction):
    return _reduce(xp, loss, reduction, empty_mean_zero=True)


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
    iou = t["inter"] / (t["union"] + eps)
    area_c = (t["xc2"] - t["xc1"]) * (t["yc2"] - t["yc1"])
    loss = 1 - (iou - ((area_c - t["union"]) / (area_c + eps)))
    return _iou_reduce(xp, loss, reduction)


def generalized_box_iou_loss_backward(
    boxes1, boxes2, reduction: str = "none", eps: float = 1e-7, grad_output=None
):
    """dL/d(boxes1) of :func:`generalized_box_iou_loss` (float32/float64, shape of boxes1)."""
    xp, b1, b2 = _iou_loss_inputs(boxes1, boxes2, reduction)
    t = _iou_loss_terms(xp, b1, b2)
    inter, union = t["inter"], t["union"]
    cw, ch = t["xc2"] - t["xc1"], t["yc2"] - t["yc1"]
    area_c = cw * ch
    g = _upstream(xp, inter, reduction, grad_output)
    ue, ce = union + eps, area_c + eps
    g_inter = -g / ue
    g_union = g * (inter / (ue * ue) - 1 / ce)
    g_c = g * (ue / (ce * ce))  # d/dC of (C - U)/(C + eps)
    return _iou_grad(xp, t, g_inter, g_union, -g_c * ch, -g_c * cw, g_c * ch, g_c * cw)


def _diou_terms(xp, t, eps):
    dx, dy = t["xc2"] - t["xc1"], t["yc2"] - t["yc1"]
    diag = (dx**2) + (dy**2) + eps
    xp_, yp_ = (t["x2"] + t["x1"]) / 2, (t["y2"] + t["y1"]) / 2
    xg_, yg_ = (t["x1g"] + t["x2g"]) / 2, (t["y1g"] + t["y2g"]) / 2
    rho = ((xp_ - xg_) ** 2) + ((yp_ - yg_) ** 2)
    iou = t["inter"] / (t["union"] + eps)
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
    inter, ue = t["inter"], t["union"] + eps
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
    return _diou_grad(xp, t, eps, _upstream(xp, t["inter"], reduction, grad_output))


_DIOU_EPS = 1e-7  # torchvision's complete_box_iou_loss always uses this inside its DIoU part


def _ciou_v(xp, t):
    wp, hp = t["x2"] - t["x1"], t["y2"] - t["y1"]
    wg, hg = t["x2g"] - t["x1g"], t["y2g"] - t["y1g"]
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
    g = _upstream(xp, t["inter"], reduction, grad_output)
    grad = _diou_grad(xp, t, _DIOU_EPS, g)
    iou = _diou_terms(xp, t, _DIOU_EPS)[1]
    v, diff, wp, hp = _ciou_v(xp, t)
    alpha = v / (1 - iou + v + eps)
    r = wp / hp
    # d v / d r = 4/pi^2 * 2 diff * (-1 / (1 + r^2)); r = w/h
    g_r = g * alpha * (4 / (math.pi**2)) * 2 * diff * (-1 / (1 + r * r))
    g_w, g_h = g_r / hp, -g_r * wp / (hp * hp)
    return grad + xp.stack([-g_w, -g_h, g_w, g_h], axis=-1)


# ----------------------------------------------------------------------------- detector losses


def _cat(xp, parts, name):
    if isinstance(parts, (list, tuple)):
        if not parts:
            raise ValueError(f"{name} must not be an empty list")
        return xp.concat(list(parts), axis=0)
    return parts


def _fastrcnn_inputs(class_logits, box_regression, labels, regression_targets):
    """Concatenate per-image lists and check shapes and dtypes (metadata only)."""
    if isinstance(labels, (list, tuple)) or isinstance(regression_targets, (list, tuple)):
        xp = namespace_of(class_logits=class_logits)
        labels = _cat(xp, labels, "labels")
        regression_targets = _cat(xp, regression_targets, "regression_targets")
    xp = namespace_of(
        class_logits=class_logits,
        box_regression=box_regression,
        labels=labels,
        regression_targets=regression_targets,
    )
    _check_float(xp, class_logits, "class_logits")
    if class_logits.ndim != 2:
        raise ValueError(f"class_logits must have shape (R, K+1), got {tuple(class_logits.shape)}")
    r, k1 = class_logits.shape
    if tuple(box_regression.shape) != (r, 4 * k1):
        raise ValueError(
            f"box_regression must have shape ({r}, {4 * k1}) = (R, 4(K+1)), "
            f"got {tuple(box_regression.shape)}"
        )
    if tuple(labels.shape) != (r,) or not xp.isdtype(labels.dtype, "integral"):
        raise ValueError(f"labels must be integers of shape ({r},), got {tuple(labels.shape)}")
    if tuple(regression_targets.shape) != (r, 4):
        raise ValueError(
            f"regression_targets must have shape ({r}, 4), got {tuple(regression_targets.shape)}"
        )
    return xp, labels, regression_targets


def _fastrcnn_forward(xp, class_logits, box_regression, labels, regression_targets, losses=True):
    """The intermediates both gradients need (what autograd saves), and the two losses.

    Each proposal needs one entry of its logits row, ``class_logits[i, label_i]``, and one
    4-vector of its regression row, ``box_regression[i, 4 label_i : 4 label_i + 4]``; both are
    read with the flat index ``i (K+1) + label_i`` into a reshaped view (one ``take`` each: no
    one-hot mask, no boolean indexing). ``losses=False`` (the backward pass) skips the two sums.
    """
    r, k1 = class_logits.shape
    lab = xp.astype(labels, xp.int64)
    valid = lab != -100  # torch's default ignore_index: such rows leave the classification mean
    pos = lab > 0  # background (0) proposals have no box loss
    # Labels outside [0, K] (other than -100) cannot be reported without reading them (torch
    # raises): their rows get NaN loss and NaN gradients, and clamping keeps the index in range.
    bad = ((lab < 0) & valid) | (lab >= k1)
    t = xp.minimum(xp.maximum(lab, 0), k1 - 1)
    flat = xp.arange(r, dtype=xp.int64, device=lab.device) * k1 + t  # (R,)
    # softmax with the row maximum subtracted (the log-sum-exp trick): p = e / s
    shifted = class_logits - xp.max(class_logits, axis=1, keepdims=True)  # (R, K+1)
    e = xp.exp(shifted)
    s = xp.sum(e, axis=1)  # (R,), >= 1
    n = xp.sum(xp.astype(valid, class_logits.dtype))  # kept proposals
    # box_regression[i, label_i] - target_i, zero for negatives (no loss, and no NaN leaking in)
    picked = xp.take(xp.reshape(box_regression, (r * k1, 4)), flat, axis=0)  # (R, 4)
    d = xp.where(pos[:, None], picked - xp.astype(regression_targets, picked.dtype), 0.0)
    d = xp.where(bad[:, None], math.nan, d)
    saved = (valid, bad, flat, e, s, n, d)
    if not losses:
        return None, None, saved
    # -log p_{i, label_i} = log s_i - shifted_{i, label_i}
    nll = xp.log(s) - xp.take(xp.reshape(shifted, (-1,)), flat)  # (R,)
    nll = xp.where(bad, math.nan, nll)
    cls = xp.sum(xp.where(valid, nll, 0.0)) / n  # mean over kept proposals; 0/0 = NaN if none
    box_sum = xp.sum(_smooth_l1(xp, xp.abs(d), 1 / 9))
    box = box_sum / r if r else box_sum * math.nan  # divided by ALL sampled proposals
    return _0d(xp, cls), _0d(xp, box), saved


def _fastrcnn_grads(xp, saved, box_shape, grad_cls, grad_box):
    """``(dL/d class_logits, dL/d box_regression)`` from the saved forward intermediates."""
    valid, bad, flat, e, s, n, d = saved
    r, k1 = e.shape
    gc = 1.0 if grad_cls is None else grad_cls
    gb = 1.0 if grad_box is None else grad_box
    # cross-entropy: coef_i (p_i - onehot(label_i)), coef_i = grad_cls / n on kept rows, else 0
    # (NaN on rows with an out-of-range label); p_i = e_i / s_i, and the one-hot part is a
    # scatter of -coef_i to the flat index
    coef = xp.where(valid, gc / xp.maximum(n, 1.0), 0.0)  # (R,)
    coef = xp.where(bad, math.nan, coef)
    g = xp.reshape(e * (coef / s)[:, None], (-1,))
    g_cls = xp.reshape(scatter_add(g, flat, -coef), (r, k1))
    # smooth L1 (beta = 1/9): the 4 gradients of row i go to entries 4 flat_i + j, j = 0..3, of
    # the flattened (R, 4(K+1)) gradient, i.e. to the 4 columns of its class (d = 0: negatives)
    g_d = _smooth_l1_grad(xp, d, 1 / 9) * (gb / max(r, 1))  # (R, 4)
    quad = xp.arange(4, dtype=flat.dtype, device=flat.device)
    cols = xp.reshape(flat[:, None] * 4 + quad[None, :], (-1,))  # (4R,)
    zeros = xp.zeros(r * k1 * 4, dtype=g_d.dtype, device=g_d.device)
    g_reg = xp.reshape(scatter_add(zeros, cols, xp.reshape(g_d, (-1,))), box_shape)
    return g_cls, g_reg


def fastrcnn_loss(class_logits, box_regression, labels, regression_targets):
    """Fast R-CNN multi-task loss, exactly torchvision's ``roi_heads.fastrcnn_loss``.

    ``cls = cross_entropy(class_logits, labels)`` (mean over all sampled proposals) and
    ``box = sum_{i: label_i > 0} smooth_l1(box_regression[i, label_i] - target_i, beta=1/9) / R``:
    the box loss is divided by **all** R sampled proposals, not by the positives, so no positives
    gives a box loss of 0. Only the regression of the proposal's own class is penalised.

    Parameters
    ----------
    class_logits : (R, K+1) float.  box_regression : (R, 4(K+1)) float.
    labels : (R,) int in [0, K], or a list of per-image arrays (concatenated, as torchvision
        does). A label of -100 (torch's ``ignore_index``) leaves the proposal out of the
        classification loss, as in torchvision; other values outside [0, K] cannot be checked
        without reading the data (torch raises): they make both losses and their rows of the
        gradients NaN.
    regression_targets : (R, 4), or a list of per-image arrays.

    Returns
    -------
    (classification_loss, box_loss) : two scalars. R = 0 gives NaN for both (0/0), as torch.
    Device-pure: the picked entries are read with a flat index and the positives selected with a
    mask, not by boolean indexing.
    """
    xp, labels, targets = _fastrcnn_inputs(class_logits, box_regression, labels, regression_targets)
    cls, box, _ = _fastrcnn_forward(xp, class_logits, box_regression, labels, targets)
    return cls, box


def fastrcnn_loss_backward(
    class_logits, box_regression, labels, regression_targets, grad_cls=None, grad_box=None
):
    """Gradients of :func:`fastrcnn_loss`: ``(dL/d class_logits, dL/d box_regression)``.

    ``grad_cls`` / ``grad_box`` are the upstream gradients of the two losses (default 1). The
    class gradient of row i is ``(softmax(x_i) - onehot(label_i)) * grad_cls / N`` (N kept
    proposals: R unless some labels are -100); the box gradient is non-zero only in the 4
    columns of each positive proposal's class. When both losses and gradients are wanted,
    :func:`fastrcnn_loss_and_grad` computes the shared softmax once.
    """
    xp, labels, targets = _fastrcnn_inputs(class_logits, box_regression, labels, regression_targets)
    _, _, saved = _fastrcnn_forward(xp, class_logits, box_regression, labels, targets, losses=False)
    return _fastrcnn_grads(xp, saved, box_regression.shape, grad_cls, grad_box)


def fastrcnn_loss_and_grad(
    class_logits, box_regression, labels, regression_targets, grad_cls=None, grad_box=None
):
    """:func:`fastrcnn_loss` and :func:`fastrcnn_loss_backward` in one call, sharing their work.

    Returns ``((classification_loss, box_loss), (dL/d class_logits, dL/d box_regression))``,
    equal to the two separate calls. Why a fused function: the backward pass needs what the
    forward pass computed -- the softmax of each row (``exp(x - max)`` and its sum) and each
    proposal's picked class entry and regression offsets -- exactly the tensors torch autograd
    saves during the forward pass. Two separate calls compute them twice (the row max, the
    exponentials and the row sums dominate the cost); a training step wants both, so this is the
    function a training loop calls. Device-pure.
    """
    xp, labels, targets = _fastrcnn_inputs(class_logits, box_regression, labels, regression_targets)
    cls, box, saved = _fastrcnn_forward(xp, class_logits, box_regression, labels, targets)
    grads = _fastrcnn_grads(xp, saved, box_regression.shape, grad_cls, grad_box)
    return (cls, box), grads


def _rpn_parts(objectness, pred_bbox_deltas, labels, regression_targets):
    xp = namespace_of(objectness=objectness, pred_bbox_deltas=pred_bbox_deltas)
    labels = _cat(xp, labels, "labels")
    regression_targets = _cat(xp, regression_targets, "regression_targets")
    namespace_of(objectness=objectness, labels=labels, regression_targets=regression_targets)
    _check_float(xp, objectness, "objectness")
    a = objectness.shape[0] if objectness.ndim else 0
    if objectness.ndim not in (1, 2) or (objectness.ndim == 2 and objectness.shape[1] != 1):
        raise ValueError(f"objectness must have shape (A,) or (A, 1), got {objectness.shape}")
    if tuple(pred_bbox_deltas.shape) != (a, 4):
        raise ValueError(
            f"pred_bbox_deltas must have shape ({a}, 4), got {tuple(pred_bbox_deltas.shape)}"
        )
    if tuple(labels.shape) != (a,):
        raise ValueError(f"labels must have shape ({a},), got {tuple(labels.shape)}")
    if tuple(regression_targets.shape) != (a, 4):
        raise ValueError(
            f"regression_targets must have shape ({a}, 4), got {tuple(regression_targets.shape)}"
        )
    obj = xp.reshape(objectness, (a,))
    lab = xp.astype(labels, obj.dtype)
    pos = lab == 1
    sampled = xp.astype((lab == 1) | (lab == 0), obj.dtype)
    n = xp.sum(sampled)
    deltas = xp.where(pos[:, None], pred_bbox_deltas, xp.zeros_like(pred_bbox_deltas))
    targets = xp.where(
        pos[:, None], xp.astype(regression_targets, deltas.dtype), xp.zeros_like(deltas)
    )
    return xp, obj, lab, pos, sampled, n, deltas, targets


def rpn_loss(objectness, pred_bbox_deltas, labels, regression_targets):
    """RPN loss given sampled anchors (torchvision's ``RegionProposalNetwork.compute_loss``).

    ``labels`` marks each anchor 1 (sampled positive), 0 (sampled negative) or -1 (not
    sampled: ignored), i.e. the output of matching + ``BalancedPositiveNegativeSampler``.

    * objectness loss: BCE-with-logits, mean over the sampled anchors (positives + negatives);
    * box loss: smooth L1 (beta = 1/9, sum) over the sampled positives, divided by the number of
      **sampled** anchors (positives + negatives) -- not by the positives.

    Lists of per-image arrays are concatenated. Returns ``(loss_objectness, loss_rpn_box_reg)``.
    No sampled anchor gives NaN for both (0/0), as torch. Device-pure.
    """
    xp, obj, lab, pos, sampled, n, deltas, targets = _rpn_parts(
        objectness, pred_bbox_deltas, labels, regression_targets
    )
    y = xp.where(pos, xp.ones_like(obj), xp.zeros_like(obj))
    bce = binary_cross_entropy_with_logits(obj, y, reduction="none")
    loss_obj = xp.sum(xp.where(sampled > 0, bce, xp.zeros_like(bce))) / n
    loss_box = smooth_l1_loss(deltas, targets, "sum", 1 / 9) / n
    return _0d(xp, loss_obj), _0d(xp, loss_box)


def rpn_loss_backward(
    objectness, pred_bbox_deltas, labels, regression_targets, grad_obj=None, grad_box=None
):
    """Gradients of :func:`rpn_loss`: ``(dL/d objectness, dL/d pred_bbox_deltas)``."""
    xp, obj, lab, pos, sampled, n, deltas, targets = _rpn_parts(
        objectness, pred_bbox_deltas, labels, regression_targets
    )
    go = 1.0 if grad_obj is None else grad_obj
    gb = 1.0 if grad_box is None else grad_box
    y = xp.where(pos, xp.ones_like(obj), xp.zeros_like(obj))
    g_obj = (_sigmoid(xp, obj) - y) * (go / n)
    g_obj = xp.where(sampled > 0, g_obj, xp.zeros_like(g_obj))  # 0, not 0 * inf, if none sampled
    g_obj = xp.reshape(g_obj, objectness.shape)
    g_box = smooth_l1_loss_backward(deltas, targets, "sum", 1 / 9) * (gb / n)
    return g_obj, xp.where(pos[:, None], g_box, xp.zeros_like(g_box))
