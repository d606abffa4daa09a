"""NaN-aware division and mean, the absent-class policy of the segmentation scores.

A score whose denominator is 0 is NaN, and a mean over classes skips NaN (see
:mod:`minivision.eval.segmentation`). Shared by the region and the boundary scores.
"""

from __future__ import annotations


def nan_divide(xp, num, den):
    """num / den with NaN where den == 0 (and no 0 / 0 warning)."""
    zero = den == 0
    safe = xp.where(zero, xp.ones_like(den), den)
    return xp.where(zero, xp.full_like(num, float("nan")), num / safe)


def nanmean(xp, x, axis=-1):
    """Mean over ``axis`` of the non-NaN entries; NaN where all are NaN."""
    valid = ~xp.isnan(x)
    total = xp.sum(xp.where(valid, x, xp.zeros_like(x)), axis=axis)
    return nan_divide(xp, total, xp.sum(xp.astype(valid, x.dtype), axis=axis))
