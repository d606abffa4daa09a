"""Pooling from scratch: max_pool2d and avg_pool2d, forward and backward.

Both slide a ``kH x kW`` window like a convolution (see :mod:`minivision.nn.functional._window`) but reduce it
with ``max`` or ``mean`` instead of a weighted sum, channel by channel. Both walk the ``kH * kW``
kernel offsets; at each offset one strided slice covers that cell of *every* window at once.

Window rules (torch 2.14.1, which these functions mirror)
---------------------------------------------------------
* Output length ``floor((L + 2p - d(k - 1) - 1) / s) + 1``; with ``ceil_mode`` the division
  rounds up, but a last window that would start in the right padding is dropped.
* ``padding`` is at most ``k // 2``; ``stride`` defaults to ``kernel_size``.
* max pooling pads with -inf (a padded cell never wins); average pooling pads with zeros and
  divides by the window size clipped to the padded input (``count_include_pad=True``), by the
  number of real cells (``False``), or by ``divisor_override``.

All functions are **device-pure**; the backward passes route gradients with one strided slice
add per kernel offset (no scatter), so they are deterministic on the GPU too.
"""

from __future__ import annotations

import operator

from ..._backend import device, namespace_of
from ..._validate import check_grad_output
from ._window import batched, fold, out_size, pad, pair, unbatch, window

__all__ = ["max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward"]


def _pool_args(xp, input, kernel_size, stride, padding, dilation, ceil_mode):
    x, unbatched = batched(xp, input)
    kernel = pair("kernel_size", kernel_size, 1)
    stride = kernel if stride is None else pair("stride", stride, 1)
    padding = pair("padding", padding, 0)
    dilation = pair("dilation", dilation, 1)
    if not isinstance(ceil_mode, bool):
        raise TypeError(f"ceil_mode must be a bool, got {ceil_mode!r}")
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(
            f"padding must be at most half the kernel size, got padding {padding} "
            f"for kernel_size {kernel}"
        )
    grid = tuple(
        out_size(n, k, s, 2 * p, d, ceil_mode)
        for n, k, s, p, d in zip(x.shape[2:], kernel, stride, padding, dilation)
    )
    if min(grid) < 1:
        raise ValueError(
            f"input of size {tuple(x.shape[2:])} is too small for kernel_size {kernel}, "
            f"stride {stride}, padding {padding}, dilation {dilation}: output size {grid}"
        )
    return x, unbatched, kernel, stride, padding, dilation, grid


def _canvas(hw, kernel, stride, padding, dilation, grid):
    """Padded size holding every window: 2p more than the input, more still if ceil_mode's
    last window runs past the right padding. Returns (top, bottom, left, right) pads."""
    pads = []
    for n, k, s, p, d, o in zip(hw, kernel, stride, padding, dilation, grid):
        needed = (o - 1) * s + d * (k - 1) + 1
        pads += [p, max(p, needed - n - p)]
    return tuple(pads)


def _cells(xp, dev, hw, kernel, stride, padding, dilation, grid):
    """For every kernel offset (row-major), the flat index ``h * W + w`` of the input cell it
    reads in each window, shape (Ho, Wo), or -2 where that cell is padding."""
    h_in, w_in = hw
    rows = xp.arange(grid[0], dtype=xp.int64, device=dev) * stride[0] - padding[0]  # (Ho,)
    cols = xp.arange(grid[1], dtype=xp.int64, device=dev) * stride[1] - padding[1]  # (Wo,)
    out = []
    for u in range(kernel[0]):
        h = rows + u * dilation[0]
        for v in range(kernel[1]):
            w = cols + v * dilation[1]
            inside = ((h >= 0) & (h < h_in))[:, None] & ((w >= 0) & (w < w_in))[None, :]
            out.append(xp.where(inside, h[:, None] * w_in + w[None, :], -2))
    return out


def _lowest(xp, dtype):
    if xp.isdtype(dtype, "real floating"):
        return -float("inf")
    return xp.iinfo(dtype).min


def max_pool2d(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    """Maximum over each window.

    Parameters
    ----------
    input : array of shape (N, C, H, W) or (C, H, W)
        Real floating or integer dtype.
    kernel_size, stride, padding, dilation : int or (int, int)
        ``stride`` defaults to ``kernel_size``; ``padding <= kernel_size // 2``.
    ceil_mode : bool
        Round the number of windows up (see the module docstring).
    return_indices : bool
        Also return where each maximum came from.

    Returns
    -------
    output : array of shape (N, C, Ho, Wo)
    indices : int64 array of shape (N, C, Ho, Wo), if ``return_indices``
        Flat index ``h * W + w`` of the winning cell in its *unpadded* ``(H, W)`` plane.

    Notes
    -----
    Mirrors ``torch.nn.functional.max_pool2d``, ties and NaN included: the kernel offsets are
    visited in row-major order and a cell replaces the running maximum if it is larger **or
    NaN**, so among equal maxima the first wins and among NaNs the last. A window of only -inf
    reports its first real cell.

    One deliberate difference: with dilation a window can fall entirely in the padding (e.g.
    ``W = 2``, ``kernel_size=(1, 2)``, ``padding=(0, 1)``, ``dilation=(1, 3)`` reads columns -1
    and 2). Its value is -inf in both libraries, but torch reports a flat index outside the plane
    (2 here), and its backward pass then adds that window's gradient into the *next channel*.
    minivision reports -1 and its backward routes nothing: such an output depends on no input.
    Device-pure.
    """
    xp = namespace_of(input=input)
    if not isinstance(return_indices, bool):
        raise TypeError(f"return_indices must be a bool, got {return_indices!r}")
    x, unbatched, kernel, stride, padding, dilation, grid = _pool_args(
        xp, input, kernel_size, stride, padding, dilation, ceil_mode
    )
    dev = device(x)
    hw = tuple(x.shape[2:])
    xpad = pad(xp, x, *_canvas(hw, kernel, stride, padding, dilation, grid))
    cells = _cells(xp, dev, hw, kernel, stride, padding, dilation, grid)
    # torch starts from the first real cell's index with a running max of -inf
    first = cells[0]
    for cell in cells[1:]:
        first = xp.where(first >= 0, first, cell)
    first = xp.where(first >= 0, first, -1)
    best = xp.full((*x.shape[:2], *grid), _lowest(xp, x.dtype), dtype=x.dtype, device=dev)
    index = xp.broadcast_to(first, best.shape)
    floating = xp.isdtype(x.dtype, "real floating")
    for k, cell in enumerate(cells):
        u, v = divmod(k, kernel[1])
        value = xpad[window((u, v), grid, stride, dilation)]  # (N, C, Ho, Wo)
        wins = value > best
        if floating:
            wins = wins | xp.isnan(value)
        wins = wins & (cell >= 0)
        best = xp.where(wins, value, best)
        index = xp.where(wins, cell, index)
    best, index = unbatch(best, unbatched), unbatch(index, unbatched)
    return (best, index) if return_indices else best


def max_pool2d_backward(
    grad_output,
    input,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode=False,
    indices=None,
):
    """Gradient of :func:`max_pool2d` with respect to its input: each window's gradient goes to
    the cell that won it.

    Parameters
    ----------
    grad_output : array of shape (N, C, Ho, Wo)
    input, kernel_size, stride, padding, dilation, ceil_mode
        As given to :func:`max_pool2d`.
    indices : int64 array of shape (N, C, Ho, Wo), optional
        From ``max_pool2d(..., return_indices=True)``; recomputed when not given.

    Returns
    -------
    array of shape (N, C, H, W)
        A cell that wins several overlapping windows receives the sum of their gradients; a cell
        that wins none gets 0.

    Notes
    -----
    torch's ``max_pool2d_with_indices_backward`` argument order. For each kernel offset, the
    windows whose winner sits under that offset add their gradient to that offset's slice.
    Device-pure.
    """
    xp = namespace_of(grad_output=grad_output, input=input, indices=indices)
    x, unbatched, kernel, stride, padding, dilation, grid = _pool_args(
        xp, input, kernel_size, stride, padding, dilation, ceil_mode
    )
    _check_grad(xp, grad_output, x, grid, unbatched)
    if indices is None:
        _, indices = max_pool2d(input, kernel, stride, padding, dilation, ceil_mode, True)
    elif tuple(indices.shape) != tuple(grad_output.shape):
        raise ValueError(
            f"indices must have grad_output's shape {tuple(grad_output.shape)}, "
            f"got {tuple(indices.shape)}"
        )
    gy, _ = batched(xp, grad_output, "grad_output")
    idx, _ = batched(xp, indices, "indices")
    dev = device(x)
    hw = tuple(x.shape[2:])
    t, b, l, r = _canvas(hw, kernel, stride, padding, dilation, grid)
    cells = _cells(xp, dev, hw, kernel, stride, padding, dilation, grid)
    # (N, C, K, Ho, Wo): the gradient each window sends to its kernel offset k
    routed = xp.stack([xp.where(idx == cell, gy, 0.0) for cell in cells], axis=2)
    gx = fold(xp, routed, (t + hw[0] + b, l + hw[1] + r), kernel, stride, dilation)
    return unbatch(gx[:, :, t : t + hw[0], l : l + hw[1]], unbatched)


def _check_grad(xp, grad_output, x, grid, unbatched):
    expected = (*x.shape[:2], *grid)
    expected = expected[1:] if unbatched else expected
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(f"gradients need a real floating-point input, got {x.dtype}")
    check_grad_output(grad_output, expected, x)


# ----------------------------------------------------------------------------- average


def _divisor(xp, dev, hw, kernel, stride, padding, grid, count_include_pad, divisor_override):
    """(Ho, Wo) number each window's sum is divided by (torch's rule, see the module docstring)."""
    if divisor_override is not None:
        return xp.full(grid, divisor_override, dtype=xp.int64, device=dev)
    sizes = []
    for n, k, s, p, o in zip(hw, kernel, stride, padding, grid):
        start = xp.arange(o, dtype=xp.int64, device=dev) * s - p
        end = xp.clip(start + k, max=n + p)
        if count_include_pad:
            sizes.append(end - start)  # the window clipped to the padded input
        else:
            sizes.append(xp.clip(end, max=n) - xp.clip(start, min=0))  # real cells only
    return sizes[0][:, None] * sizes[1][None, :]


def _avg_args(
    xp, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
):
    if not isinstance(count_include_pad, bool):
        raise TypeError(f"count_include_pad must be a bool, got {count_include_pad!r}")
    if divisor_override is not None:
        try:
            if isinstance(divisor_override, bool):
                raise TypeError
            divisor_override = operator.index(divisor_override)
        except TypeError:
            raise TypeError(f"divisor_override must be an int, got {divisor_override!r}") from None
        if divisor_override == 0:
            raise ValueError("divisor_override must not be zero")
    x, unbatched, kernel, stride, padding, _, grid = _pool_args(
        xp, input, kernel_size, stride, padding, 1, ceil_mode
    )
    hw = tuple(x.shape[2:])
    div = _divisor(
        xp, device(x), hw, kernel, stride, padding, grid, count_include_pad, divisor_override
    )
    return x, unbatched, kernel, stride, padding, grid, div


def avg_pool2d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    """Mean over each window.

    Parameters
    ----------
    input : array of shape (N, C, H, W) or (C, H, W)
        Real floating or integer dtype.
    kernel_size, stride, padding : int or (int, int)
        ``stride`` defaults to ``kernel_size``; ``padding <= kernel_size // 2``.
    ceil_mode : bool
    count_include_pad : bool
        Divide by the window size including zero padding (clipped to the padded input), or
        by the number of real cells only.
    divisor_override : int, optional
        Divide every sum by this instead.

    Returns
    -------
    array of shape (N, C, Ho, Wo), ``input``'s dtype
        Float sums run over the window in row-major order, as torch's CPU kernel does, so
        float results are bit-for-bit torch's. Integer input is divided with truncation toward
        zero, as torch does for int64.

    Notes
    -----
    Mirrors ``torch.nn.functional.avg_pool2d``. Device-pure.
    """
    xp = namespace_of(input=input)
    x, unbatched, kernel, stride, padding, grid, div = _avg_args(
        xp, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    )
    hw = tuple(x.shape[2:])
    floating = xp.isdtype(x.dtype, "real floating")
    acc = x.dtype if not floating or x.dtype == xp.float64 else xp.float32
    xpad = pad(
        xp, xp.astype(x, acc, copy=False), *_canvas(hw, kernel, stride, padding, (1, 1), grid)
    )
    total = xp.zeros((*x.shape[:2], *grid), dtype=acc, device=device(x))
    for u in range(kernel[0]):
        for v in range(kernel[1]):
            total = total + xpad[window((u, v), grid, stride, (1, 1))]
    if floating:
        out = total / xp.astype(div, acc)
    else:  # C division: truncate toward zero
        div = xp.astype(div, acc)
        q = xp.abs(total) // xp.abs(div)
        out = xp.where((total < 0) != (div < 0), -q, q)
    return unbatch(xp.astype(out, x.dtype, copy=False), unbatched)


def avg_pool2d_backward(
    grad_output,
    input,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    """Gradient of :func:`avg_pool2d` with respect to its input: each window spreads
    ``grad / divisor`` evenly over its cells (padding cells' share is dropped).

    Parameters
    ----------
    grad_output : array of shape (N, C, Ho, Wo)
    input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
        As given to :func:`avg_pool2d`.

    Returns
    -------
    array of shape (N, C, H, W)

    Notes
    -----
    torch's ``avg_pool2d_backward`` argument order. The same ``grad / divisor`` slice is added
    at every kernel offset. Device-pure.
    """
    xp = namespace_of(grad_output=grad_output, input=input)
    x, unbatched, kernel, stride, padding, grid, div = _avg_args(
        xp, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    )
    _check_grad(xp, grad_output, x, grid, unbatched)
    gy, _ = batched(xp, grad_output, "grad_output")
    acc = x.dtype if x.dtype == xp.float64 else xp.float32
    share = xp.astype(gy, acc) / xp.astype(div, acc)  # (N, C, Ho, Wo)
    hw = tuple(x.shape[2:])
    t, b, l, r = _canvas(hw, kernel, stride, padding, (1, 1), grid)
    k = kernel[0] * kernel[1]
    spread = xp.broadcast_to(share[:, :, None, ...], (*share.shape[:2], k, *grid))
    gx = fold(xp, spread, (t + hw[0] + b, l + hw[1] + r), kernel, stride, (1, 1))
    gx = gx[:, :, t : t + hw[0], l : l + hw[1]]
    return unbatch(xp.astype(gx, x.dtype, copy=False), unbatched)
