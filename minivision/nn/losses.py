"""Generic losses, forward and backward: regression (smooth L1, L1) and classification.

Elementwise building blocks with torch's reductions (``"none"`` / ``"mean"`` / ``"sum"``):
:func:`smooth_l1_loss`, :func:`l1_loss`, :func:`cross_entropy`,
:func:`binary_cross_entropy_with_logits` and :func:`sigmoid_focal_loss`. The IoU-family box
losses are in :mod:`minivision.nn.box_losses`; the detectors' multi-task losses in
:mod:`minivision.detection.losses`.

Every loss ``f(pred, ...)`` has a ``f_backward(pred, ..., grad_output=None)`` that returns
dL/d(pred), the gradient with respect to the *prediction* argument (the first one), written out
by hand with the chain rule; ``grad_output`` is the upstream gradient (shape of the loss; ``None``
means 1). Where torch splits a gradient (``maximum``/``minimum`` ties get half each) we do too,
so the gradients equal torch autograd's.

Empty inputs follow torch: ``"mean"`` of an empty elementwise loss is NaN (0/0), ``"sum"`` is 0.
Cross-entropy with every target ignored is NaN. These are the reference's choices and we keep
them (lesson 08 explains why a training loop should never feed an empty batch rather than rely
on either value).

Every array argument must be real: a complex or bool array is a ``TypeError`` naming it (torch
drops the imaginary part or raises an unrelated error); the predictions must be floating-point.

All functions are device-pure: masks and ``where`` replace torch's boolean indexing, so no shape
depends on the data.
"""

from __future__ import annotations

import math

from .._backend import namespace_of
from ._loss_core import (
    as_0d,
    check_float,
    check_real,
    check_reduction,
    check_same_shape,
    log_sigmoid,
    log_softmax,
    reduce,
    sigmoid,
    smooth_l1,
    smooth_l1_grad,
    upstream,
)

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
]


# ----------------------------------------------------------------------------- L1 family


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
    check_float(xp, input, "input")
    check_real(xp, target, "target")
    check_same_shape(input, target, "input", "target")
    check_reduction(reduction)
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    return reduce(xp, smooth_l1(xp, xp.abs(input - target), beta), reduction)


def smooth_l1_loss_backward(
    input, target, reduction: str = "mean", beta: float = 1.0, grad_output=None
):
    """dL/d(input) of :func:`smooth_l1_loss`: ``z/beta`` inside, ``sign(z)`` outside, 0 at 0."""
    xp = namespace_of(input=input, target=target)
    check_float(xp, input, "input")
    check_real(xp, target, "target")
    check_same_shape(input, target, "input", "target")
    check_reduction(reduction)
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    return smooth_l1_grad(xp, input - target, beta) * upstream(xp, input, reduction, grad_output)


def l1_loss(input, target, reduction: str = "mean"):
    """Mean absolute error ``|input - target|``, torch's ``F.l1_loss``. Device-pure."""
    return smooth_l1_loss(input, target, reduction, beta=0.0)


def l1_loss_backward(input, target, reduction: str = "mean", grad_output=None):
    """dL/d(input) of :func:`l1_loss`: ``sign(input - target)`` (0 where they are equal)."""
    return smooth_l1_loss_backward(input, target, reduction, 0.0, grad_output)


# ----------------------------------------------------------------------------- cross-entropy


def _as_rows(input, target):
    """torch's input layouts as one ``(M, C)`` table of logit rows and ``(M,)`` targets.

    ``(N, C)`` with ``(N,)`` is the table itself; ``(N, C, d1, ..., dk)`` with ``(N, d1, ...,
    dk)`` (a per-pixel loss) moves the class axis last and flattens the rest, row ``m`` being
    one position of one sample; ``(C,)`` with a 0-d target is one row. Returns the rows, the
    targets and the shape of the unreduced loss (``target.shape``).
    """
    xp = namespace_of(input=input, target=target)
    check_float(xp, input, "input")
    if input.ndim == 0:
        raise ValueError("input must have shape (C,), (N, C) or (N, C, d1, ...), got a 0-d array")
    if input.ndim == 1:
        expected = ()
    else:
        expected = (input.shape[0], *input.shape[2:])
    if tuple(target.shape) != expected or not xp.isdtype(target.dtype, "integral"):
        raise ValueError(
            f"target must be an integer array of shape {expected} for input of shape "
            f"{tuple(input.shape)}, got {target.dtype} {tuple(target.shape)}"
        )
    c = input.shape[0] if input.ndim == 1 else input.shape[1]
    if input.ndim > 2:  # (N, C, d1, ..., dk) -> (N, d1, ..., dk, C) -> (M, C)
        input = xp.permute_dims(input, (0, *range(2, input.ndim), 1))
    return xp.reshape(input, (-1, c)), xp.reshape(target, (-1,)), expected


def _rows_to_input(xp, g, shape):
    """The inverse of :func:`_as_rows` for a gradient: ``(M, C)`` back to the input's layout."""
    if len(shape) <= 2:
        return xp.reshape(g, shape)
    moved = (shape[0], *shape[2:], shape[1])  # (N, d1, ..., dk, C)
    g = xp.reshape(g, moved)
    k = len(shape)
    return xp.permute_dims(g, (0, k - 1, *range(1, k - 1)))


def _ce_parts(input, target, weight, ignore_index, label_smoothing):
    xp = namespace_of(input=input, target=target, weight=weight)
    c = input.shape[1]
    check_real(xp, weight, "weight")
    if weight is not None and tuple(weight.shape) != (c,):
        raise ValueError(f"weight must have shape ({c},), got {tuple(weight.shape)}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    valid = target != ignore_index  # (N,)
    # a label outside [0, C) that is not ignore_index cannot be reported without reading it
    # (torch raises): its row's loss and gradient are NaN instead (as in fastrcnn_loss)
    bad = valid & ((target < 0) | (target >= c))  # (N,)
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
    return xp, coef, w_t, valid, bad


def cross_entropy(
    input,
    target,
    weight=None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
):
    """Softmax cross-entropy over class indices, torch's ``F.cross_entropy``.

    .. math:: \\ell_i = -w_{t_i} \\log p_{i, t_i}, \\quad
              \\log p_{i,c} = x_{i,c} - m_i - \\log \\textstyle\\sum_k e^{x_{i,k} - m_i}

    with ``m_i`` the row maximum (the stable log-sum-exp). Samples whose target is
    ``ignore_index`` contribute nothing; ``"mean"`` divides by the summed weights of the kept
    samples (their count when unweighted), so all-ignored gives NaN, as in torch. Label smoothing
    ``eps`` mixes in the uniform target: ``(1 - eps) nll + eps/C sum_c w_c (-log p_c)``.
    Device-pure.

    Per-pixel (semantic segmentation): ``input (N, C, d1, ..., dk)`` with ``target (N, d1, ...,
    dk)`` is the same loss with one sample per position (the class axis is axis 1); ``"mean"``
    averages over every kept position of every image, ``"none"`` returns ``(N, d1, ..., dk)``.

    Parameters
    ----------
    input : (N, C), (N, C, d1, ..., dk) or (C,) float logits.
    target : (N,), (N, d1, ..., dk) or () integer class indices in ``[0, C)``, or
        ``ignore_index`` (probability targets, torch's float ``target``, are not supported).
        Any other value cannot be checked without reading the data (torch raises): that row's
        loss is NaN, so the ``"mean"`` and ``"sum"`` are NaN too, and
        :func:`cross_entropy_backward` gives NaN in that row (the other rows keep their
        gradients) -- as in :func:`minivision.detection.fastrcnn_loss`.
    weight : optional (C,) class weights.
    """
    check_reduction(reduction)
    rows, target, shape = _as_rows(input, target)  # (M, C), (M,)
    xp, coef, w_t, valid, bad = _ce_parts(rows, target, weight, ignore_index, label_smoothing)
    loss = -xp.sum(coef * log_softmax(xp, rows), axis=1)  # (M,)
    loss = xp.where(bad, math.nan, loss)
    if reduction == "none":
        return xp.reshape(loss, shape)
    if reduction == "sum":
        return as_0d(xp, xp.sum(loss))
    return as_0d(xp, xp.sum(loss) / xp.sum(w_t))


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
    ``softmax(x) - onehot(t)``. Ignored rows get 0 (also when every row is ignored); a row
    whose target is outside ``[0, C)`` and not ``ignore_index`` gets NaN. Any layout of
    :func:`cross_entropy`; with ``reduction="none"`` the ``grad_output`` has the target's shape.
    """
    check_reduction(reduction)
    shape = tuple(input.shape)
    rows, target, loss_shape = _as_rows(input, target)  # (M, C), (M,)
    xp, coef, w_t, valid, bad = _ce_parts(rows, target, weight, ignore_index, label_smoothing)
    p = xp.exp(log_softmax(xp, rows))
    g = p * xp.sum(coef, axis=1, keepdims=True) - coef  # (M, C)
    up = 1.0 if grad_output is None else grad_output
    if reduction == "none" and grad_output is not None:
        if tuple(grad_output.shape) != loss_shape:
            raise ValueError(
                f"grad_output must have the loss's shape {loss_shape}, got "
                f"{tuple(grad_output.shape)}"
            )
        up = xp.reshape(up, (-1, 1))
    elif reduction == "mean":
        up = up / xp.sum(w_t)
    g = xp.where(valid[:, None], g * up, xp.zeros_like(g))
    return _rows_to_input(xp, xp.where(bad[:, None], math.nan, g), shape)


# ----------------------------------------------------------------------------- sigmoid losses


def _bce_checks(input, target, weight, pos_weight, reduction):
    xp = namespace_of(input=input, target=target, weight=weight, pos_weight=pos_weight)
    check_float(xp, input, "input")
    for name, a in (("target", target), ("weight", weight), ("pos_weight", pos_weight)):
        check_real(xp, a, name)
    check_same_shape(input, target, "input", "target")
    check_reduction(reduction)
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
    ls = log_sigmoid(xp, input)
    if pos_weight is None:
        loss = (1 - y) * input - ls
    else:
        loss = (1 - y) * input - (1 + (pos_weight - 1) * y) * ls
    if weight is not None:
        loss = loss * weight
    return reduce(xp, loss, reduction)


def binary_cross_entropy_with_logits_backward(
    input, target, weight=None, reduction: str = "mean", pos_weight=None, grad_output=None
):
    """dL/dx of :func:`binary_cross_entropy_with_logits`: ``(1 - y) - (1 + (p-1) y) sigma(-x)``.

    With ``pos_weight = 1`` this is the familiar ``sigmoid(x) - y``.
    """
    xp = _bce_checks(input, target, weight, pos_weight, reduction)
    y = xp.astype(target, input.dtype)
    s_neg = sigmoid(xp, -input)
    if pos_weight is None:
        g = sigmoid(xp, input) - y
    else:
        g = (1 - y) - (1 + (pos_weight - 1) * y) * s_neg
    if weight is not None:
        g = g * weight
    g = g * upstream(xp, input, reduction, grad_output)
    return xp.broadcast_to(g, input.shape) if tuple(g.shape) != tuple(input.shape) else g


def _focal_checks(inputs, targets, alpha, reduction):
    xp = namespace_of(inputs=inputs, targets=targets)
    check_float(xp, inputs, "inputs")
    check_real(xp, targets, "targets")
    check_same_shape(inputs, targets, "inputs", "targets")
    if not (0 <= alpha <= 1) and alpha != -1:
        raise ValueError(f"alpha must be in [0, 1] or -1 (no weighting), got {alpha}")
    check_reduction(reduction)
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
    p = sigmoid(xp, inputs)
    ce = (1 - y) * inputs - log_sigmoid(xp, inputs)
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return reduce(xp, loss, reduction)


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
    p = sigmoid(xp, inputs)
    ce = (1 - y) * inputs - log_sigmoid(xp, inputs)
    one_m = 1 - (p * y + (1 - p) * (1 - y))
    dpt = p * (1 - p) * (2 * y - 1)
    g = (p - y) * one_m**gamma - gamma * one_m ** (gamma - 1) * ce * dpt if gamma != 0 else p - y
    if alpha >= 0:
        g = (alpha * y + (1 - alpha) * (1 - y)) * g
    return g * upstream(xp, inputs, reduction, grad_output)
