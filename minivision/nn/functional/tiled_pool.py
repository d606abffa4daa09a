"""Max pooling over non-overlapping tiles (stride = kernel, no padding, no dilation): a fast path.

The CNNs of the lessons pool with ``MaxPool2d(2)``: every input cell belongs to exactly one
``kH x kW`` tile, so the general machinery of :func:`minivision.pool.max_pool2d` (a running
``where`` per kernel offset, flat indices, padding) is more than needed. Here the ``kH * kW``
strided slices ``x[..., u::kH, v::kW]`` are combined with ``maximum`` and the *winner* of each
tile is kept as a small offset ``k = u * kW + v``; the backward pass sends each tile's gradient to
its winner by multiplying with the 0/1 masks ``winner == k`` and writing each product into its
strided slice of a zero map (every cell of the tiling is written exactly once).

Same results as :func:`~minivision.pool.max_pool2d` / ``torch.nn.functional.max_pool2d``:
among equal maxima the first offset in row-major order wins; a tile holding NaN outputs NaN and
its winner is its *last* NaN (torch's "larger or NaN replaces"); a tile of only -inf reports
its first cell. The one difference: an infinite ``grad_output`` gives NaN (``inf * 0``) in the
cells that did not win, where a select would give 0. Rows and columns past the last whole tile
(floor mode) get zero gradient. **Device-pure.**
"""

from __future__ import annotations

from ..._backend import device, namespace_of

__all__ = ["tiled_max_pool2d", "tiled_max_pool2d_backward", "tile_winner_indices"]


def _slices(x, kernel, grid):
    (kh, kw), (ho, wo) = kernel, grid
    xt = x[:, :, : ho * kh, : wo * kw]
    return [xt[:, :, u::kh, v::kw] for u in range(kh) for v in range(kw)]  # K x (N, C, Ho, Wo)


def _check(xp, x, kernel):
    if x.ndim != 4:
        raise ValueError(f"input must have shape (N, C, H, W), got {tuple(x.shape)}")
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(f"input must have a real floating-point dtype, got {x.dtype}")
    grid = (x.shape[2] // kernel[0], x.shape[3] // kernel[1])
    if min(grid) < 1:
        raise ValueError(f"input of size {tuple(x.shape[2:])} is smaller than the tile {kernel}")
    return grid


def tiled_max_pool2d(input, kernel_size):
    """Maximum of each ``kH x kW`` tile, and which cell of the tile won.

    Parameters
    ----------
    input : array of shape (N, C, H, W), real floating dtype
    kernel_size : (int, int)
        The tile; also the stride.

    Returns
    -------
    output : array of shape (N, C, H // kH, W // kW)
    winner : int8 array of the same shape (int32 for tiles of over 127 cells)
        Offset ``u * kW + v`` of the winning cell inside its tile.
    """
    xp = namespace_of(input=input)
    kernel = tuple(kernel_size)
    grid = _check(xp, input, kernel)
    cells = _slices(input, kernel, grid)
    # torch's scan: a cell replaces the running maximum if it is larger or NaN; maximum()
    # gives the same running value (NaN sticks), the 0/1 mask r moves the winner
    best = cells[0]
    small = xp.int8 if len(cells) <= 127 else xp.int32  # less memory traffic for the winner
    winner = xp.zeros(best.shape, dtype=small, device=device(best))
    for k, cell in enumerate(cells[1:], start=1):
        r = xp.astype((cell > best) | xp.isnan(cell), small)
        winner = winner + (k - winner) * r
        best = xp.maximum(best, cell)
    return best, winner


def tiled_max_pool2d_backward(grad_output, winner, kernel_size, input_shape):
    """Gradient of :func:`tiled_max_pool2d`: each tile's gradient at its winning cell.

    Parameters
    ----------
    grad_output : array of shape (N, C, Ho, Wo)
    winner : integer array of the same shape, from :func:`tiled_max_pool2d`
    kernel_size : (int, int)
    input_shape : (N, C, H, W)

    Returns
    -------
    array of shape ``input_shape``
    """
    xp = namespace_of(grad_output=grad_output, winner=winner)
    (kh, kw) = tuple(kernel_size)
    n, c, h, w = input_shape
    ho, wo = grad_output.shape[2:]
    if tuple(winner.shape) != tuple(grad_output.shape) or (ho, wo) != (h // kh, w // kw):
        raise ValueError(
            f"grad_output and winner must have the pooled shape {(n, c, h // kh, w // kw)}, got "
            f"{tuple(grad_output.shape)} and {tuple(winner.shape)}"
        )
    dtype = grad_output.dtype
    gx = xp.zeros((n, c, h, w), dtype=dtype, device=device(grad_output))
    for k in range(kh * kw):
        u, v = divmod(k, kw)
        # every cell of the tiling is written once; rows and columns past it stay 0
        gx[:, :, u : ho * kh : kh, v : wo * kw : kw] = grad_output * xp.astype(winner == k, dtype)
    return gx


def tile_winner_indices(winner, kernel_size, width: int):
    """torch's flat indices ``h * W + w`` (int64) of the winners, as ``return_indices`` gives."""
    xp = namespace_of(winner=winner)
    kh, kw = tuple(kernel_size)
    ho, wo = winner.shape[2:]
    dev = device(winner)
    w64 = xp.astype(winner, xp.int64)
    rows = xp.arange(ho, dtype=xp.int64, device=dev)[:, None] * kh + w64 // kw  # (N, C, Ho, Wo)
    cols = xp.arange(wo, dtype=xp.int64, device=dev)[None, :] * kw + w64 % kw
    return rows * width + cols
