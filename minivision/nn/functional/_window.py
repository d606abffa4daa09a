"""Sliding windows, shared by convolution and pooling: arguments, sizes, padding, im2col, col2im.

A 2-D window op slides a ``kH x kW`` window over a zero-padded feature map ``(N, C, H, W)``.
Window ``(i, j)`` reads the padded cells

    (i * sH + u * dH,  j * sW + v * dW)    for u < kH, v < kW

(stride ``s``, dilation ``d``). Read the other way round, **kernel offset** ``(u, v)`` reads one
strided slice of the padded map, of the output's shape ``(Ho, Wo)``:

    xpad[:, :, u*dH : u*dH + (Ho-1)*sH + 1 : sH,  v*dW : v*dW + (Wo-1)*sW + 1 : sW]

So ``kH * kW`` slices give every window at once (:func:`unfold`, im2col), and adding an array
back into those ``kH * kW`` slices is its adjoint (:func:`fold`, col2im): no scatter, no index
arrays, and the overlaps between windows accumulate by themselves. Everything here reads only
shapes, never array values: device-pure.
"""

from __future__ import annotations

import operator

from ..._backend import device

__all__ = ["pair", "batched", "unbatch", "out_size", "pad", "window", "unfold", "fold", "fold_into"]


def pair(name: str, value, minimum: int) -> tuple[int, int]:
    """``value`` as ``(for H, for W)``: an int is used for both, a pair is taken as it is."""
    if isinstance(value, (tuple, list)) and len(value) == 2:
        items = tuple(value)
    else:
        items = (value, value)
    try:
        if any(isinstance(v, bool) for v in items):
            raise TypeError
        items = tuple(operator.index(v) for v in items)
    except TypeError:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}") from None
    if min(items) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return items


def batched(xp, x, name: str = "input"):
    """``x`` as ``(N, C, H, W)``, and whether it came unbatched as ``(C, H, W)`` (torch accepts both)."""
    if x.ndim not in (3, 4):
        raise ValueError(f"{name} must have shape (N, C, H, W) or (C, H, W), got {tuple(x.shape)}")
    if not (xp.isdtype(x.dtype, "real floating") or xp.isdtype(x.dtype, "integral")):
        raise TypeError(f"{name} must have a real floating-point or integer dtype, got {x.dtype}")
    return (x[None, ...], True) if x.ndim == 3 else (x, False)


def unbatch(x, was_unbatched: bool):
    return x[0, ...] if was_unbatched else x


def out_size(length: int, k: int, s: int, pad_total: int, d: int, ceil_mode: bool = False) -> int:
    """Number of windows along one axis: ``floor((L + pads - d(k - 1) - 1) / s) + 1``.

    With ``ceil_mode`` the division rounds up, but the last window must start inside the input
    or the left/top padding (``pad_total / 2`` of it), as torch's pooling requires.
    """
    span = length + pad_total - d * (k - 1) - 1
    if not ceil_mode:
        return span // s + 1
    n = -(-span // s) + 1
    if (n - 1) * s >= length + pad_total // 2:
        n -= 1
    return n


def pad(xp, x, top: int, bottom: int, left: int, right: int, value=0):
    """``x`` (N, C, H, W) with ``value`` rows/columns added on each side (a new array)."""
    if top == bottom == left == right == 0:
        return x
    n, c, h, w = x.shape
    out = xp.full(
        (n, c, top + h + bottom, left + w + right), value, dtype=x.dtype, device=device(x)
    )
    out[:, :, top : top + h, left : left + w] = x
    return out


def window(offset: tuple[int, int], grid: tuple[int, int], stride, dilation, row0: int = 0):
    """The index of the strided slice that kernel offset ``(u, v)`` reads, over a grid of windows
    whose first row starts ``row0`` rows down the padded map."""
    (u, v), (ho, wo), (sh, sw), (dh, dw) = offset, grid, stride, dilation
    top = row0 + u * dh
    return (
        slice(None),
        slice(None),
        slice(top, top + (ho - 1) * sh + 1, sh),
        slice(v * dw, v * dw + (wo - 1) * sw + 1, sw),
    )


def unfold(xp, xpad, kernel, grid, stride, dilation, row0: int = 0):
    """im2col: (N, C, Hp, Wp) -> (N, C, kH*kW, Ho, Wo), entry ``[n, c, u*kW + v, i, j]`` being
    the padded cell that window ``(i, j)`` multiplies with kernel offset ``(u, v)``."""
    kh, kw = kernel
    slices = [
        xpad[window((u, v), grid, stride, dilation, row0)] for u in range(kh) for v in range(kw)
    ]
    return xp.stack(slices, axis=2)


def fold_into(out, cols, kernel, stride, dilation, row0: int = 0):
    """col2im, the adjoint of :func:`unfold`, added into ``out`` (N, C, Hp, Wp) in place: each
    offset's slice of cols (N, C, kH*kW, Ho, Wo) goes back where it came from, so cells that
    several windows share receive the sum. ``out`` must be the caller's own new array."""
    ho, wo = cols.shape[-2:]
    kh, kw = kernel
    for u in range(kh):
        for v in range(kw):
            out[window((u, v), (ho, wo), stride, dilation, row0)] += cols[:, :, u * kw + v, ...]
    return out


def fold(xp, cols, canvas, kernel, stride, dilation):
    """col2im into a new zero canvas of size ``canvas`` = (Hp, Wp)."""
    n, c = cols.shape[:2]
    out = xp.zeros((n, c, *canvas), dtype=cols.dtype, device=device(cols))
    return fold_into(out, cols, kernel, stride, dilation)
