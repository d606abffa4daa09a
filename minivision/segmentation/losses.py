"""The soft Dice loss of segmentation (Milletari et al. 2016, V-Net), with its backward pass.

Cross-entropy scores every pixel on its own, so a small object's pixels are a small part of the
loss. The Dice coefficient of a class measures the *overlap* of the predicted and true regions,
``2 |P n Y| / (|P| + |Y|)``, whatever their size. Its soft version replaces the predicted
region by the softmax probabilities ``p`` (so it is differentiable); with ``y`` the one-hot
target and ``m`` the mask of pixels that are not ``ignore_index``, summed over the batch and
every pixel (one Dice per class over the whole batch):

    I_c = sum_i m_i p_ci y_ci,        S_c = sum_i m_i (p_ci + y_ci)
    D_c = (2 I_c + eps) / (S_c + eps),     loss_c = 1 - D_c

``eps`` (default 1, "smooth") keeps a class that is absent from both the target and the
prediction at ``D_c = 1``. The reduction runs over the classes *present* in the target (``sum_i
m_i y_ci > 0``): ``"mean"`` averages ``loss_c`` over them (NaN if none is present, as
cross-entropy with every pixel ignored), ``"sum"`` adds them; ``"none"`` returns all ``C``
per-class losses. A label outside ``[0, C)`` that is not ``ignore_index`` belongs to no class
(it cannot be checked without reading the data).

Backward, with ``a_c`` the weight of ``loss_c`` in the reduction (``1 / #present`` or 1 for a
present class, 0 for an absent one; ``grad_output[c]`` for ``"none"``):

    dL/dp_ci = -a_c m_i (2 y_ci - D_c) / (S_c + eps)

and then through the softmax, ``dL/dx_i = p_i * (g_i - sum_c p_ci g_ci)``. Device-pure.
"""

from __future__ import annotations

from .._backend import namespace_of
from .._validate import check_number

__all__ = ["dice_loss", "dice_loss_backward"]

_REDUCTIONS = ("none", "mean", "sum")


def _parts(logits, target, ignore_index, eps, reduction):
    """Softmax, masked one-hot target and the per-class sums ``I_c``, ``S_c``, ``present_c``."""
    xp = namespace_of(logits=logits, target=target)
    if not hasattr(logits, "ndim") or logits.ndim < 2:
        raise ValueError(
            f"logits must have shape (N, C, d1, ...), got {tuple(getattr(logits, 'shape', ()))}"
        )
    if not xp.isdtype(logits.dtype, "real floating"):
        raise TypeError(f"logits must have a real floating-point dtype, got {logits.dtype}")
    expected = (logits.shape[0], *logits.shape[2:])
    if tuple(target.shape) != expected or not xp.isdtype(target.dtype, "integral"):
        raise ValueError(
            f"target must be an integer array of shape {expected} for logits of shape "
            f"{tuple(logits.shape)}, got {target.dtype} {tuple(target.shape)}"
        )
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    eps = check_number("eps", eps, minimum=0)
    if ignore_index is not None:
        ignore_index = check_number("ignore_index", ignore_index, integer=True)
    c = logits.shape[1]
    axes = (0, *range(2, logits.ndim))  # everything but the class axis
    shifted = logits - xp.max(logits, axis=1, keepdims=True)
    e = xp.exp(shifted)
    p = e / xp.sum(e, axis=1, keepdims=True)  # (N, C, ...)
    classes = xp.reshape(
        xp.arange(c, dtype=target.dtype, device=target.device), (1, c) + (1,) * (logits.ndim - 2)
    )
    y = xp.astype(target[:, None, ...] == classes, logits.dtype)  # (N, C, ...) one-hot
    if ignore_index is None:
        m = None
    else:
        m = xp.astype(target != ignore_index, logits.dtype)[:, None, ...]  # (N, 1, ...)
        y = y * m
    pm = p if m is None else p * m
    inter = xp.sum(pm * y, axis=axes)  # I_c, (C,)
    y_sum = xp.sum(y, axis=axes)
    total = xp.sum(pm, axis=axes) + y_sum  # S_c
    present = xp.astype(y_sum > 0, logits.dtype)
    return xp, p, y, m, inter, total, present, eps, axes


def dice_loss(logits, target, *, ignore_index=None, eps=1.0, reduction="mean"):
    """Soft Dice loss of ``logits`` (N, C, d1, ...) against class indices ``target`` (N, d1,
    ...): ``1 - D_c`` per class, reduced over the classes present (module docstring).

    Returns a 0-d array (``"mean"``, ``"sum"``) or the ``(C,)`` per-class losses (``"none"``).
    """
    xp, p, y, m, inter, total, present, eps, _ = _parts(logits, target, ignore_index, eps,
                                                        reduction)  # fmt: skip
    loss = 1.0 - (2.0 * inter + eps) / (total + eps)  # (C,)
    if reduction == "none":
        return loss
    summed = xp.sum(loss * present)
    return xp.asarray(summed if reduction == "sum" else summed / xp.sum(present))


def dice_loss_backward(logits, target, *, ignore_index=None, eps=1.0, reduction="mean",
                       grad_output=None):  # fmt: skip
    """dL/d(logits) of :func:`dice_loss`, ``(N, C, d1, ...)``; ``grad_output`` is the upstream
    gradient (a scalar, or ``(C,)`` for ``reduction="none"``; None means 1)."""
    xp, p, y, m, inter, total, present, eps, _ = _parts(logits, target, ignore_index, eps,
                                                        reduction)  # fmt: skip
    c = logits.shape[1]
    if reduction == "none":
        a = xp.ones_like(inter) if grad_output is None else grad_output
        if tuple(a.shape) != (c,):
            raise ValueError(f"grad_output must have shape ({c},), got {tuple(a.shape)}")
    else:
        a = present if reduction == "sum" else present / xp.sum(present)
        if grad_output is not None:
            a = a * grad_output
    dice = (2.0 * inter + eps) / (total + eps)  # D_c, (C,)
    shape = (1, c) + (1,) * (logits.ndim - 2)
    coef = xp.reshape(-a / (total + eps), shape)  # (1, C, 1, ...)
    g_p = coef * (2.0 * y - xp.reshape(dice, shape))  # dL/dp, (N, C, ...)
    if m is not None:
        g_p = g_p * m
    return p * (g_p - xp.sum(p * g_p, axis=1, keepdims=True))  # through the softmax
