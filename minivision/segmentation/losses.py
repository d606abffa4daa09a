"""The soft Dice loss (Milletari et al., V-Net, 2016), with its backward pass.

Cross-entropy weighs every pixel alike, so a class that covers few pixels weighs little. The
Dice coefficient of a class compares the predicted and true *areas*, ``2 |P ∩ G| / (|P| + |G|)``;
with soft predictions ``p = softmax(z)`` over the classes and one-hot targets ``g``, per class
``c`` (sums over the batch and every pixel)

    D_c = (2 sum p_c g_c + eps) / (sum p_c + sum g_c + eps),      L = 1 - mean_c D_c,

every class counting equally. ``eps`` (1 by default) keeps an absent class (no true and almost
no predicted pixels) at ``D_c ~ 1`` instead of 0 / 0. Pixels whose target is ``ignore_index``
are left out of every sum.

Backward: with ``I_c = sum p_c g_c`` and ``T_c = sum p_c + sum g_c``,
``dL/dp_c = -(1/C) (2 g_c (T_c + eps) - (2 I_c + eps)) / (T_c + eps)^2``, then through the
softmax, ``dL/dz = p * (dL/dp - sum_c p_c dL/dp_c)``. Device-pure.
"""

from __future__ import annotations

from .._backend import array_namespace

__all__ = ["dice_loss", "dice_loss_backward"]


def _parts(logits, target, ignore_index):
    xp = array_namespace(logits)
    if logits.ndim != 4:
        raise ValueError(f"logits must be (N, C, H, W), got shape {tuple(logits.shape)}")
    if tuple(target.shape) != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(f"target must be (N, H, W) = {(logits.shape[0], *logits.shape[2:])}, "
                         f"got {tuple(target.shape)}")  # fmt: skip
    if not xp.isdtype(target.dtype, "integral"):
        raise TypeError(f"target must hold integer class indices, got {target.dtype}")
    z = logits - xp.max(logits, axis=1, keepdims=True)
    p = xp.exp(z)
    p = p / xp.sum(p, axis=1, keepdims=True)  # (N, C, H, W)
    classes = xp.reshape(xp.arange(logits.shape[1], device=None), (1, -1, 1, 1))
    g = xp.astype(target[:, None] == xp.astype(classes, target.dtype), p.dtype)  # one-hot
    keep = None
    if ignore_index is not None:
        keep = xp.astype(target[:, None] != ignore_index, p.dtype)  # (N, 1, H, W)
        g = g * keep
    return xp, p, g, keep


def _sums(xp, p, g, keep):
    pk = p if keep is None else p * keep
    inter = xp.sum(pk * g, axis=(0, 2, 3))  # (C,)
    total = xp.sum(pk, axis=(0, 2, 3)) + xp.sum(g, axis=(0, 2, 3))
    return inter, total


def dice_loss(logits, target, *, ignore_index=None, eps: float = 1.0):
    """``1 - mean_c D_c`` of ``(N, C, H, W)`` logits against ``(N, H, W)`` class indices (0-d)."""
    xp, p, g, keep = _parts(logits, target, ignore_index)
    inter, total = _sums(xp, p, g, keep)
    return 1.0 - xp.mean((2 * inter + eps) / (total + eps))


def dice_loss_backward(logits, target, *, ignore_index=None, eps: float = 1.0, grad_output=None):
    """dL/d(logits) of :func:`dice_loss`, ``(N, C, H, W)``; ``grad_output`` scales it."""
    xp, p, g, keep = _parts(logits, target, ignore_index)
    inter, total = _sums(xp, p, g, keep)
    c = logits.shape[1]
    den = xp.reshape(total + eps, (1, -1, 1, 1))
    num = xp.reshape(2 * inter + eps, (1, -1, 1, 1))
    grad_p = -(2 * g * den - num) / (den * den) / c  # dL/dp, (N, C, H, W)
    if keep is not None:
        grad_p = grad_p * keep
    grad = p * (grad_p - xp.sum(p * grad_p, axis=1, keepdims=True))
    return grad if grad_output is None else grad * grad_output
