"""Gaussian smoothing with scipy.ndimage's 'reflect' border, bit for bit: one home for both users.

Felzenszwalb–Huttenlocher smooths the image before it builds the graph
(:mod:`minivision.proposals.felzenszwalb`, on the input's backend); selective search's texture
features take oriented Gaussian derivatives (:mod:`minivision.proposals.ss_features`, NumPy).
Both use :func:`gaussian_kernel1d` for the taps (computed on the host, as Python floats) and
:func:`correlate1d` for the filtering (array code, any backend).

Host island (DESIGN.md §2) for the taps, which are computed in NumPy on the host (scipy's exact
values); the filtering itself runs on the input's backend.
"""

from __future__ import annotations

import numpy as np

from .._backend import device

__all__ = ["gaussian_kernel1d", "correlate1d", "gaussian_filter2d"]


def gaussian_kernel1d(sigma: float) -> tuple[float, ...]:
    """scipy.ndimage's Gaussian taps for ``sigma``, ``truncate=4``: radius ``int(4 sigma + 0.5)``.

    Computed exactly as ``scipy.ndimage._filters._gaussian_kernel1d`` does (NumPy ``exp`` and
    ``sum``), so that smoothing with these taps reproduces ``gaussian_filter`` bit for bit.
    Returns the taps ``(g[-r], ..., g[0], ..., g[r])`` as Python floats; ``()`` means "no
    smoothing" (scipy skips an axis whose sigma is at most 1e-15).
    """
    if sigma <= 1e-15:
        return ()
    radius = int(4.0 * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x**2)
    return tuple((phi / phi.sum()).tolist())


def _reflect_index(i: int, n: int) -> int:
    """scipy.ndimage's 'reflect' border (d c b a | a b c d | d c b a), repeating for short lines."""
    i %= 2 * n
    return i if i < n else 2 * n - 1 - i


def correlate1d(xp, x, taps, axis):
    """Correlate ``x`` with ``taps`` (odd length) along ``axis``, scipy's 'reflect' border.

    Symmetric taps (a Gaussian) are added in the order of scipy's C loop for symmetric kernels
    (centre first, then the pairs from the outside in), so the float64 result is bit-identical;
    other taps (a derivative of a Gaussian) are added left to right.
    """
    n = x.shape[axis]
    r = len(taps) // 2
    idx = xp.asarray(
        [_reflect_index(i, n) for i in range(-r, n + r)], dtype=xp.int64, device=device(x)
    )
    padded = xp.take(x, idx, axis=axis)  # (..., n + 2r, ...) along axis

    def shifted(start):
        sl = [slice(None)] * x.ndim
        sl[axis] = slice(start, start + n)
        return padded[tuple(sl)]

    taps = [float(t) for t in taps]
    if taps != taps[::-1]:
        out = shifted(0) * taps[0]
        for i in range(1, len(taps)):
            out = out + shifted(i) * taps[i]
        return out
    out = shifted(r) * taps[r]
    for d in range(r, 0, -1):
        out = out + (shifted(r - d) + shifted(r + d)) * taps[r - d]
    return out


def gaussian_filter2d(xp, image, sigma):
    """``scipy.ndimage.gaussian_filter(image, (sigma, sigma, 0), mode='reflect')``, exactly."""
    taps = gaussian_kernel1d(sigma)
    if not taps:
        return image
    return correlate1d(xp, correlate1d(xp, image, taps, 0), taps, 1)
