"""Private helpers every loss module shares: reductions, checks and stable activations.

Used by :mod:`minivision.nn.losses`, :mod:`minivision.nn.box_losses`,
:mod:`minivision.detection.losses` and :mod:`minivision.detection.masks`. All device-pure.
"""

from __future__ import annotations

import math

REDUCTIONS = ("none", "mean", "sum")


def check_reduction(reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def check_float(xp, x, name):
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(f"{name} must have a real floating-point dtype, got {x.dtype}")


def check_real(xp, x, name):
    """A real number array: floating or integer; complex and bool are ``TypeError`` (``None``: ok)."""
    if x is None or not hasattr(x, "dtype"):
        return
    if not (xp.isdtype(x.dtype, "real floating") or xp.isdtype(x.dtype, "integral")):
        raise TypeError(f"{name} must have a real floating-point or integer dtype, got {x.dtype}")


def check_same_shape(a, b, name_a, name_b):
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(
            f"{name_b} must have the shape of {name_a} {tuple(a.shape)}, got {tuple(b.shape)}"
        )


def reduce(xp, loss, reduction, empty_mean_zero=False):
    """torch's reductions; an empty mean is NaN (0/0), or 0 where torchvision guards it."""
    if reduction == "none":
        return loss
    total = xp.sum(loss)
    if reduction == "sum":
        return as_0d(xp, total)
    n = math.prod(loss.shape)
    if n == 0:
        return as_0d(xp, total * 0 if empty_mean_zero else total * math.nan)
    return as_0d(xp, total / n)


def as_0d(xp, value):
    """A 0-d array, not a NumPy scalar (NumPy's reductions return scalars)."""
    return xp.asarray(value)


def upstream(xp, unreduced, reduction, grad_output):
    """The gradient arriving at each element of the unreduced loss (a scalar or an array).

    ``grad_output`` is the gradient of the reduced loss (``None``: 1); ``"mean"`` spreads it
    over the elements (an empty loss has no elements, hence no gradient to spread).
    """
    g = 1.0 if grad_output is None else grad_output
    if reduction == "mean":
        n = math.prod(unreduced.shape)
        return g / n if n else g
    return g

def smooth_l1(xp, z, beta):
    """Elementwise smooth L1 of ``z = |input - target|`` (torch's formula and operation order)."""
    if beta == 0:
        return z
    return xp.where(z < beta, ((0.5 * z) * z) / beta, z - 0.5 * beta)


def smooth_l1_grad(xp, d, beta):
    """d smooth_l1(d) / dd of ``d = input - target``: ``d/beta`` inside, ``sign(d)`` outside."""
    if beta == 0:
        return xp.sign(d)
    return xp.where(xp.abs(d) < beta, d / beta, xp.sign(d))


def log_softmax(xp, x):
    """log p = x - max - log sum exp(x - max), row-wise: never overflows (log-sum-exp trick)."""
    shifted = x - xp.max(x, axis=-1, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))


def log_sigmoid(xp, x):
    """log sigmoid(x) = min(x, 0) - log1p(exp(-|x|)): exact and finite for |x| = 100."""
    return xp.minimum(x, xp.zeros_like(x)) - xp.log1p(xp.exp(-xp.abs(x)))


def sigmoid(xp, x):
    """sigmoid without overflow: exp(-|x|) is <= 1 on both branches."""
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def concat_parts(xp, parts, name):
    if isinstance(parts, (list, tuple)):
        if not parts:
            raise ValueError(f"{name} must not be an empty list")
        return xp.concat(list(parts), axis=0)
    return parts
