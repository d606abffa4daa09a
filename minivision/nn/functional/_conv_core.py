"""The machinery conv2d and conv_transpose2d share: geometry, checks and the three products.

A transposed convolution is the adjoint of a convolution, so the two modules run the same
three matrix products with their roles swapped (:func:`forward` is ``conv2d``'s output and
``conv_transpose2d``'s input gradient; :func:`input_grad` the other way round). Array code,
device-pure.
"""

from __future__ import annotations

from typing import NamedTuple

from ..._backend import device, is_numpy
from ._window import fold_into, out_size, pad, pair, unbatch, unfold


class Geometry(NamedTuple):
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pads: tuple[int, int, int, int]  # top, bottom, left, right
    groups: int


# ----------------------------------------------------------------------------- arguments


def same_pads(kernel, dilation):
    """torch's ``padding="same"``: ``d(k - 1)`` in total, the odd one out on the bottom/right."""
    pads = []
    for k, d in zip(kernel, dilation):
        total = d * (k - 1)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


def check_groups(groups) -> int:
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    return groups


def geometry(kernel, stride, padding, dilation, groups, *, allow_strings=True):
    stride = pair("stride", stride, 1)
    dilation = pair("dilation", dilation, 1)
    if isinstance(padding, str) and allow_strings:
        if padding not in ("same", "valid"):
            raise ValueError(f'padding must be an int, a pair, "same" or "valid", got {padding!r}')
        if padding == "same" and stride != (1, 1):
            raise ValueError(f'padding="same" needs stride 1, got stride={stride}')
        pads = same_pads(kernel, dilation) if padding == "same" else (0, 0, 0, 0)
    else:
        ph, pw = pair("padding", padding, 0)
        pads = (ph, ph, pw, pw)
    return Geometry(tuple(kernel), stride, dilation, pads, check_groups(groups))


def output_grid(geo: Geometry, hw) -> tuple[int, int]:
    """Output size of a convolution over an (H, W) input; the padded input must hold the kernel."""
    t, b, l, r = geo.pads
    padded = (hw[0] + t + b, hw[1] + l + r)
    span = tuple(d * (k - 1) + 1 for k, d in zip(geo.kernel, geo.dilation))
    if padded[0] < span[0] or padded[1] < span[1]:
        raise ValueError(
            f"kernel size {geo.kernel} with dilation {geo.dilation} spans {span}, larger than the "
            f"padded input {padded} (input {tuple(hw)} plus padding)"
        )
    return tuple(
        out_size(n, k, s, p0 + p1, d)
        for n, k, s, d, (p0, p1) in zip(hw, geo.kernel, geo.stride, geo.dilation, ((t, b), (l, r)))
    )


def check_weight(xp, weight, name, c_in, groups, *, transposed):
    expected = "(C_in, C_out / groups, kH, kW)" if transposed else "(C_out, C_in / groups, kH, kW)"
    if weight.ndim != 4:
        raise ValueError(f"{name} must have shape {expected}, got {tuple(weight.shape)}")
    if c_in % groups:
        raise ValueError(f"input channels ({c_in}) must be divisible by groups ({groups})")
    if transposed:
        if weight.shape[0] != c_in:
            raise ValueError(
                f"{name} has shape {tuple(weight.shape)}: {expected} needs {c_in} rows for an "
                f"input with {c_in} channels"
            )
    else:
        if weight.shape[0] % groups:
            raise ValueError(
                f"{name} has {weight.shape[0]} output channels, not divisible by groups ({groups})"
            )
        if weight.shape[1] * groups != c_in:
            raise ValueError(
                f"{name} has shape {tuple(weight.shape)}: {expected} expects "
                f"{weight.shape[1] * groups} input channels with groups={groups}, "
                f"but the input has {c_in}"
            )


def check_dtypes(**arrays):
    given = {k: v for k, v in arrays.items() if v is not None}
    dtypes = {str(v.dtype) for v in given.values()}
    if len(dtypes) > 1:
        listed = ", ".join(f"{k}: {v.dtype}" for k, v in given.items())
        raise TypeError(f"{', '.join(given)} must have one dtype, got {listed}")


def check_bias(bias, c_out):
    if bias is not None and tuple(bias.shape) != (c_out,):
        raise ValueError(f"bias must have shape ({c_out},), got {tuple(bias.shape)}")


def check_grad(grad_output, expected_shape, unbatched):
    """grad_output must have the forward output's shape (unbatched if the input was)."""
    expected_shape = tuple(expected_shape)[1:] if unbatched else tuple(expected_shape)
    if tuple(grad_output.shape) != expected_shape:
        raise ValueError(
            f"grad_output must have the forward output's shape {tuple(expected_shape)}, "
            f"got {tuple(grad_output.shape)}"
        )


def compute_dtype(xp, dtype):
    """float16/bfloat16 go through float32, as torch's CPU kernels accumulate in float32."""
    if xp.isdtype(dtype, "real floating") and dtype not in (xp.float32, xp.float64):
        return xp.float32
    return dtype


# ----------------------------------------------------------------------------- the three products

# On NumPy the windows go in blocks of output rows whose columns hold at most this many elements
# (16 MB of float32): small enough that the allocator reuses the block's memory from call to call
# instead of asking the OS for fresh zeroed pages (a 1x64x128x128 input with a 3x3 kernel has a
# 38 MB column matrix), large enough that a multithreaded BLAS is called only a few times. GPU
# libraries (and torch) get the whole grid in one matrix product.
CPU_BLOCK = 1 << 22


def row_blocks(xp, grid, row_elements):
    """(first, stop) ranges of window rows to process together (one range off NumPy)."""
    rows = max(1, CPU_BLOCK // max(row_elements, 1)) if is_numpy(xp) else grid[0]
    return [(i, min(i + rows, grid[0])) for i in range(0, grid[0], rows)]


def columns(xp, xpad, geo: Geometry, rows, wo):
    """im2col of window rows ``rows = (first, stop)``: (N, g, C/g*kH*kW, rows * Wo)."""
    n, c = xpad.shape[:2]
    k = geo.kernel[0] * geo.kernel[1]
    first, stop = rows
    grid = (stop - first, wo)
    cols = unfold(xp, xpad, geo.kernel, grid, geo.stride, geo.dilation, first * geo.stride[0])
    return xp.reshape(cols, (n, geo.groups, (c // geo.groups) * k, grid[0] * wo))


def forward(xp, x, w, geo: Geometry, grid):
    """Convolve (N, C, H, W) with (O, C/g, kH, kW) over a (Ho, Wo) grid of windows:
    (O/g, C/g*K) @ (C/g*K, L) for each group, L = Ho * Wo."""
    n, c = x.shape[:2]
    o, g = w.shape[0], geo.groups
    k = geo.kernel[0] * geo.kernel[1]
    xpad = pad(xp, x, *geo.pads)
    w = xp.reshape(w, (g, o // g, (c // g) * k))  # (g, O/g, C/g*K)
    blocks = row_blocks(xp, grid, n * c * k * grid[1])
    outs = [xp.matmul(w, columns(xp, xpad, geo, rows, grid[1])) for rows in blocks]
    out = outs[0] if len(outs) == 1 else xp.concat(outs, axis=-1)  # (N, g, O/g, L)
    return xp.reshape(out, (n, o, *grid))


def input_grad(xp, gy, w, geo: Geometry, hw):
    """Adjoint of :func:`forward` in x: (N, O, Ho, Wo) -> (N, C, H, W). Also conv_transpose2d:
    col2im(w^T @ gy), the columns added back where im2col took them from."""
    n, o, ho, wo = gy.shape
    g, cg = geo.groups, w.shape[1]
    k = geo.kernel[0] * geo.kernel[1]
    wt = xp.matrix_transpose(xp.reshape(w, (g, o // g, cg * k)))  # (g, C/g*K, O/g)
    gy = xp.reshape(gy, (n, g, o // g, ho, wo))
    t, b, l, r = geo.pads
    canvas = xp.zeros((n, g * cg, t + hw[0] + b, l + hw[1] + r), dtype=gy.dtype, device=device(gy))
    for first, stop in row_blocks(xp, (ho, wo), n * g * cg * k * wo):
        rows = stop - first
        gy_rows = xp.reshape(gy[:, :, :, first:stop, :], (n, g, o // g, rows * wo))
        cols = xp.reshape(xp.matmul(wt, gy_rows), (n, g * cg, k, rows, wo))  # (N, C, K, rows, Wo)
        fold_into(canvas, cols, geo.kernel, geo.stride, geo.dilation, first * geo.stride[0])
    return canvas[:, :, t : t + hw[0], l : l + hw[1]]


def weight_grad(xp, gy, x, geo: Geometry):
    """Gradient of :func:`forward` in w: grad_out @ cols^T summed over the batch -> (O, C/g, kH, kW)."""
    n, o, ho, wo = gy.shape
    c, g = x.shape[1], geo.groups
    k = geo.kernel[0] * geo.kernel[1]
    xpad = pad(xp, x, *geo.pads)
    gy = xp.reshape(gy, (n, g, o // g, ho, wo))
    gw = None
    for first, stop in row_blocks(xp, (ho, wo), n * c * k * wo):
        gy_rows = xp.reshape(gy[:, :, :, first:stop, :], (n, g, o // g, (stop - first) * wo))
        cols = columns(xp, xpad, geo, (first, stop), wo)  # (N, g, C/g*K, rows * Wo)
        part = xp.sum(xp.matmul(gy_rows, xp.matrix_transpose(cols)), axis=0)  # (g, O/g, C/g*K)
        gw = part if gw is None else gw + part
    return xp.reshape(gw, (o, c // g, *geo.kernel))


def in_compute_dtype(xp, dtype, *arrays):
    cdt = compute_dtype(xp, dtype)
    return tuple(None if a is None else xp.astype(a, cdt, copy=False) for a in arrays)


def gradients(xp, gx, gw, gy, dtype, unbatched):
    """(grad_input, grad_weight, grad_bias) back in the input's dtype; grad_bias sums gy."""
    gb = xp.sum(gy, axis=(0, 2, 3))
    return (
        unbatch(xp.astype(gx, dtype, copy=False), unbatched),
        xp.astype(gw, dtype, copy=False),
        xp.astype(gb, dtype, copy=False),
    )


# ----------------------------------------------------------------------------- im2col / col2im


def require_float(xp, x):
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(f"gradients need a real floating-point input, got {x.dtype}")
