"""Convolution from scratch: im2col, conv2d and its backward pass.

What is computed (lesson 01 derives it)
----------------------------------------
``conv2d`` is a *cross-correlation*, as in every deep-learning library (the kernel is not flipped):

    out[n, o, i, j] = bias[o] + sum_{c in group(o), u, v} xpad[n, c, i*sH + u*dH, j*sW + v*dW] * w[o, c', u, v]

with ``xpad`` the input zero-padded by ``padding``, ``c' = c - g * C_in/groups`` the channel inside
group ``g = o // (C_out/groups)``, and ``Ho = floor((H + 2pH - dH(kH - 1) - 1) / sH) + 1``.

How (the "im2col" trick of Chellapilla et al., 2006, used by Caffe and cuDNN's GEMM path)
------------------------------------------------------------------------------------------
Copy every window into a column (:func:`im2col`: ``(N, C*kH*kW, Ho*Wo)``), and the whole
convolution becomes **one matrix product** ``(C_out, C*kH*kW) @ (C*kH*kW, Ho*Wo)`` -- one per
group, batched by ``matmul``. The backward pass is two more products: ``grad_weight`` =
``grad_out @ cols^T`` and ``grad_cols`` = ``w^T @ grad_out``, and :func:`col2im` adds the
columns back onto the image (a strided slice add per kernel offset; overlapping windows sum).
On NumPy the products run block by block over rows of windows (see ``_CPU_BLOCK``): the same
arithmetic, without a fresh 40 MB column matrix per call; other libraries get one product.
That last step *is* the transposed convolution (:mod:`minivision.nn.functional.conv_transpose`, built from the
same three products): the gradient of ``conv2d`` with respect to its input, i.e. its adjoint,
which segmentation networks (FCN, U-Net) use as a learned upsampling.

:func:`conv2d_naive` is the textbook loop over output pixels, kept for teaching; the tests check
that it agrees with :func:`conv2d`.

Every function mirrors ``torch.nn.functional`` (torch 2.14.1): names, argument order, int-or-pair
arguments, ``padding="same"/"valid"`` for ``conv2d``, unbatched ``(C, H, W)`` input, and the
error cases. All are **device-pure**: no host synchronisation; shapes depend only on shapes.
Float16 and bfloat16 are computed in float32 and rounded back (torch accumulates in float32 too).
"""

from __future__ import annotations

from typing import NamedTuple

from ..._backend import device, is_numpy, namespace_of
from ._window import batched, fold, fold_into, out_size, pad, pair, unbatch, unfold

__all__ = ["im2col", "col2im", "conv2d", "conv2d_naive", "conv2d_backward"]


class _Geometry(NamedTuple):
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pads: tuple[int, int, int, int]  # top, bottom, left, right
    groups: int


# ----------------------------------------------------------------------------- arguments


def _same_pads(kernel, dilation):
    """torch's ``padding="same"``: ``d(k - 1)`` in total, the odd one out on the bottom/right."""
    pads = []
    for k, d in zip(kernel, dilation):
        total = d * (k - 1)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


def _groups(groups) -> int:
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    return groups


def _geometry(kernel, stride, padding, dilation, groups, *, allow_strings=True):
    stride = pair("stride", stride, 1)
    dilation = pair("dilation", dilation, 1)
    if isinstance(padding, str) and allow_strings:
        if padding not in ("same", "valid"):
            raise ValueError(f'padding must be an int, a pair, "same" or "valid", got {padding!r}')
        if padding == "same" and stride != (1, 1):
            raise ValueError(f'padding="same" needs stride 1, got stride={stride}')
        pads = _same_pads(kernel, dilation) if padding == "same" else (0, 0, 0, 0)
    else:
        ph, pw = pair("padding", padding, 0)
        pads = (ph, ph, pw, pw)
    return _Geometry(tuple(kernel), stride, dilation, pads, _groups(groups))


def _grid(geo: _Geometry, hw) -> tuple[int, int]:
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


def _check_weight(xp, weight, name, c_in, groups, *, transposed):
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


def _check_dtypes(**arrays):
    given = {k: v for k, v in arrays.items() if v is not None}
    dtypes = {str(v.dtype) for v in given.values()}
    if len(dtypes) > 1:
        listed = ", ".join(f"{k}: {v.dtype}" for k, v in given.items())
        raise TypeError(f"{', '.join(given)} must have one dtype, got {listed}")


def _check_bias(bias, c_out):
    if bias is not None and tuple(bias.shape) != (c_out,):
        raise ValueError(f"bias must have shape ({c_out},), got {tuple(bias.shape)}")


def _check_grad(grad_output, expected_shape, unbatched):
    """grad_output must have the forward output's shape (unbatched if the input was)."""
    expected_shape = tuple(expected_shape)[1:] if unbatched else tuple(expected_shape)
    if tuple(grad_output.shape) != expected_shape:
        raise ValueError(
            f"grad_output must have the forward output's shape {tuple(expected_shape)}, "
            f"got {tuple(grad_output.shape)}"
        )


def _compute_dtype(xp, dtype):
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
_CPU_BLOCK = 1 << 22


def _row_blocks(xp, grid, row_elements):
    """(first, stop) ranges of window rows to process together (one range off NumPy)."""
    rows = max(1, _CPU_BLOCK // max(row_elements, 1)) if is_numpy(xp) else grid[0]
    return [(i, min(i + rows, grid[0])) for i in range(0, grid[0], rows)]


def _columns(xp, xpad, geo: _Geometry, rows, wo):
    """im2col of window rows ``rows = (first, stop)``: (N, g, C/g*kH*kW, rows * Wo)."""
    n, c = xpad.shape[:2]
    k = geo.kernel[0] * geo.kernel[1]
    first, stop = rows
    grid = (stop - first, wo)
    cols = unfold(xp, xpad, geo.kernel, grid, geo.stride, geo.dilation, first * geo.stride[0])
    return xp.reshape(cols, (n, geo.groups, (c // geo.groups) * k, grid[0] * wo))


def _forward(xp, x, w, geo: _Geometry, grid):
    """Convolve (N, C, H, W) with (O, C/g, kH, kW) over a (Ho, Wo) grid of windows:
    (O/g, C/g*K) @ (C/g*K, L) for each group, L = Ho * Wo."""
    n, c = x.shape[:2]
    o, g = w.shape[0], geo.groups
    k = geo.kernel[0] * geo.kernel[1]
    xpad = pad(xp, x, *geo.pads)
    w = xp.reshape(w, (g, o // g, (c // g) * k))  # (g, O/g, C/g*K)
    blocks = _row_blocks(xp, grid, n * c * k * grid[1])
    outs = [xp.matmul(w, _columns(xp, xpad, geo, rows, grid[1])) for rows in blocks]
    out = outs[0] if len(outs) == 1 else xp.concat(outs, axis=-1)  # (N, g, O/g, L)
    return xp.reshape(out, (n, o, *grid))


def _input_grad(xp, gy, w, geo: _Geometry, hw):
    """Adjoint of :func:`_forward` in x: (N, O, Ho, Wo) -> (N, C, H, W). Also conv_transpose2d:
    col2im(w^T @ gy), the columns added back where im2col took them from."""
    n, o, ho, wo = gy.shape
    g, cg = geo.groups, w.shape[1]
    k = geo.kernel[0] * geo.kernel[1]
    wt = xp.matrix_transpose(xp.reshape(w, (g, o // g, cg * k)))  # (g, C/g*K, O/g)
    gy = xp.reshape(gy, (n, g, o // g, ho, wo))
    t, b, l, r = geo.pads
    canvas = xp.zeros((n, g * cg, t + hw[0] + b, l + hw[1] + r), dtype=gy.dtype, device=device(gy))
    for first, stop in _row_blocks(xp, (ho, wo), n * g * cg * k * wo):
        rows = stop - first
        gy_rows = xp.reshape(gy[:, :, :, first:stop, :], (n, g, o // g, rows * wo))
        cols = xp.reshape(xp.matmul(wt, gy_rows), (n, g * cg, k, rows, wo))  # (N, C, K, rows, Wo)
        fold_into(canvas, cols, geo.kernel, geo.stride, geo.dilation, first * geo.stride[0])
    return canvas[:, :, t : t + hw[0], l : l + hw[1]]


def _weight_grad(xp, gy, x, geo: _Geometry):
    """Gradient of :func:`_forward` in w: grad_out @ cols^T summed over the batch -> (O, C/g, kH, kW)."""
    n, o, ho, wo = gy.shape
    c, g = x.shape[1], geo.groups
    k = geo.kernel[0] * geo.kernel[1]
    xpad = pad(xp, x, *geo.pads)
    gy = xp.reshape(gy, (n, g, o // g, ho, wo))
    gw = None
    for first, stop in _row_blocks(xp, (ho, wo), n * c * k * wo):
        gy_rows = xp.reshape(gy[:, :, :, first:stop, :], (n, g, o // g, (stop - first) * wo))
        cols = _columns(xp, xpad, geo, (first, stop), wo)  # (N, g, C/g*K, rows * Wo)
        part = xp.sum(xp.matmul(gy_rows, xp.matrix_transpose(cols)), axis=0)  # (g, O/g, C/g*K)
        gw = part if gw is None else gw + part
    return xp.reshape(gw, (o, c // g, *geo.kernel))


def _in_compute_dtype(xp, dtype, *arrays):
    cdt = _compute_dtype(xp, dtype)
    return tuple(None if a is None else xp.astype(a, cdt, copy=False) for a in arrays)


def _gradients(xp, gx, gw, gy, dtype, unbatched):
    """(grad_input, grad_weight, grad_bias) back in the input's dtype; grad_bias sums gy."""
    gb = xp.sum(gy, axis=(0, 2, 3))
    return (
        unbatch(xp.astype(gx, dtype, copy=False), unbatched),
        xp.astype(gw, dtype, copy=False),
        xp.astype(gb, dtype, copy=False),
    )


# ----------------------------------------------------------------------------- im2col / col2im


def im2col(input, kernel_size, dilation=1, padding=0, stride=1):
    """Every sliding window as a column: ``torch.nn.functional.unfold``.

    Parameters
    ----------
    input : array of shape (N, C, H, W)
    kernel_size, dilation, padding, stride : int or (int, int)
        torch's ``unfold`` argument order.

    Returns
    -------
    array of shape (N, C * kH * kW, Ho * Wo)
        Row ``c * kH * kW + u * kW + v`` holds, for every window in row-major order, the padded
        input cell under kernel offset ``(u, v)`` of channel ``c``.

    Notes
    -----
    ``kH * kW`` strided slices of the zero-padded input, stacked (no loop over windows).
    Device-pure.
    """
    xp = namespace_of(input=input)
    if input.ndim != 4:
        raise ValueError(f"input must have shape (N, C, H, W), got {tuple(input.shape)}")
    kernel = pair("kernel_size", kernel_size, 1)
    geo = _geometry(kernel, stride, padding, dilation, 1, allow_strings=False)
    n, c, h, w = input.shape
    grid = _grid(geo, (h, w))
    cols = unfold(xp, pad(xp, input, *geo.pads), kernel, grid, geo.stride, geo.dilation)
    return xp.reshape(cols, (n, c * kernel[0] * kernel[1], grid[0] * grid[1]))


def col2im(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Add columns back onto the image, the adjoint of :func:`im2col`: ``torch.nn.functional.fold``.

    Parameters
    ----------
    input : array of shape (N, C * kH * kW, L)
        Columns as :func:`im2col` lays them out; ``L`` must be the number of windows.
    output_size : int or (int, int)
        ``(H, W)`` of the image.
    kernel_size, dilation, padding, stride : int or (int, int)

    Returns
    -------
    array of shape (N, C, H, W)
        Each cell receives the sum of every column entry that :func:`im2col` copied from it.

    Notes
    -----
    One strided slice add per kernel offset -- no scatter, so it is deterministic on the GPU
    too. Device-pure.
    """
    xp = namespace_of(input=input)
    kernel = pair("kernel_size", kernel_size, 1)
    hw = pair("output_size", output_size, 1)
    geo = _geometry(kernel, stride, padding, dilation, 1, allow_strings=False)
    k = kernel[0] * kernel[1]
    if input.ndim != 3 or input.shape[1] % k:
        raise ValueError(
            f"input must have shape (N, C * {k}, L) for kernel_size {kernel}, got {tuple(input.shape)}"
        )
    grid = _grid(geo, hw)
    n, ck, length = input.shape
    if length != grid[0] * grid[1]:
        raise ValueError(
            f"input has {length} columns, but output_size {hw} with these arguments has "
            f"{grid[0]} x {grid[1]} = {grid[0] * grid[1]} windows"
        )
    cols = xp.reshape(input, (n, ck // k, k, *grid))
    t, b, l, r = geo.pads
    canvas = fold(xp, cols, (t + hw[0] + b, l + hw[1] + r), kernel, geo.stride, geo.dilation)
    return canvas[:, :, t : t + hw[0], l : l + hw[1]]


# ----------------------------------------------------------------------------- conv2d


def _conv_args(xp, input, weight, bias, stride, padding, dilation, groups):
    x, unbatched = batched(xp, input)
    _check_dtypes(input=input, weight=weight, bias=bias)
    _check_weight(xp, weight, "weight", x.shape[1], _groups(groups), transposed=False)
    geo = _geometry(tuple(weight.shape[2:]), stride, padding, dilation, groups)
    _check_bias(bias, weight.shape[0])
    return x, unbatched, geo, _grid(geo, x.shape[2:])


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation) as im2col + one matrix product.

    Parameters
    ----------
    input : array of shape (N, C_in, H, W) or (C_in, H, W)
    weight : array of shape (C_out, C_in / groups, kH, kW)
    bias : array of shape (C_out,), optional
    stride, dilation : int or (int, int)
        Step between windows; spacing between kernel taps (``d > 1`` is the dilated / atrous
        convolution of DeepLab).
    padding : int, (int, int), "valid" or "same"
        Zeros added on both sides of each axis. ``"same"`` (stride 1 only) pads ``d(k - 1)`` in
        total with the extra cell, for an even kernel, on the bottom/right, like torch.
    groups : int
        Split the channels into ``groups`` independent convolutions; ``groups = C_in`` with
        ``C_out = C_in`` is a depthwise convolution.

    Returns
    -------
    array of shape (N, C_out, Ho, Wo)
        ``Ho = floor((H + 2pH - dH(kH - 1) - 1) / sH) + 1``, likewise ``Wo``; same dtype as
        ``input``.

    Notes
    -----
    Mirrors ``torch.nn.functional.conv2d``. ``im2col`` of the padded input, then ``matmul``
    with the weight reshaped to ``(groups, C_out / groups, C_in / groups * kH * kW)`` (on NumPy,
    one product per block of output rows). The float sums run in BLAS order, not torch's, so
    float32 results agree to rounding (~1e-6 relative), not bit for bit. Device-pure.
    """
    xp = namespace_of(input=input, weight=weight, bias=bias)
    x, unbatched, geo, grid = _conv_args(xp, input, weight, bias, stride, padding, dilation, groups)
    xc, wc, bc = _in_compute_dtype(xp, x.dtype, x, weight, bias)
    out = _forward(xp, xc, wc, geo, grid)
    if bc is not None:
        out = out + bc[:, None, None]
    return unbatch(xp.astype(out, x.dtype, copy=False), unbatched)


def conv2d_naive(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """The textbook convolution: a loop over output pixels, one window times the kernel each.

    Same arguments, result and checks as :func:`conv2d`, which it exists to explain; it is
    ``Ho * Wo`` times slower in Python overhead. Each step takes the ``(N, C, kH, kW)`` window
    under output pixel ``(i, j)``, multiplies it with every kernel of its group and sums.
    Device-pure.
    """
    xp = namespace_of(input=input, weight=weight, bias=bias)
    x, unbatched, geo, (ho, wo) = _conv_args(
        xp, input, weight, bias, stride, padding, dilation, groups
    )
    n, c = x.shape[:2]
    o, g = weight.shape[0], geo.groups
    (kh, kw), (sh, sw), (dh, dw) = geo.kernel, geo.stride, geo.dilation
    xpad = pad(xp, x, *geo.pads)
    w = xp.reshape(weight, (1, g, o // g, c // g, kh, kw))
    rows = []
    for i in range(ho):
        row = []
        for j in range(wo):
            win = xpad[
                :,
                :,
                i * sh : i * sh + (kh - 1) * dh + 1 : dh,
                j * sw : j * sw + (kw - 1) * dw + 1 : dw,
            ]
            win = xp.reshape(win, (n, g, 1, c // g, kh, kw))  # every kernel of the group sees it
            row.append(xp.sum(win * w, axis=(3, 4, 5)))  # (N, g, O/g)
        rows.append(xp.stack(row, axis=-1))  # (N, g, O/g, Wo)
    out = xp.reshape(xp.stack(rows, axis=-2), (n, o, ho, wo))
    if bias is not None:
        out = out + bias[:, None, None]
    return unbatch(out, unbatched)


def conv2d_backward(grad_output, input, weight, stride=1, padding=0, dilation=1, groups=1):
    """Gradients of :func:`conv2d` with respect to its input, weight and bias.

    Parameters
    ----------
    grad_output : array of shape (N, C_out, Ho, Wo)
        dL/d(output), the shape :func:`conv2d` returned.
    input, weight, stride, padding, dilation, groups
        As given to :func:`conv2d`.

    Returns
    -------
    grad_input : array of shape (N, C_in, H, W)
        ``col2im(weight^T @ grad_output)`` -- the transposed convolution of ``grad_output``.
    grad_weight : array of shape (C_out, C_in / groups, kH, kW)
        ``grad_output @ im2col(input)^T``, summed over the batch.
    grad_bias : array of shape (C_out,)
        ``grad_output`` summed over the batch and both spatial axes (returned whether or not the
        forward pass had a bias).

    Notes
    -----
    What torch autograd computes for ``F.conv2d``; the tests compare in float64. Input cells
    that no window reads (cut off by the stride) get a zero gradient. Device-pure.
    """
    xp = namespace_of(grad_output=grad_output, input=input, weight=weight)
    x, unbatched, geo, grid = _conv_args(xp, input, weight, None, stride, padding, dilation, groups)
    _check_grad(grad_output, (x.shape[0], weight.shape[0], *grid), unbatched)
    gy, _ = batched(xp, grad_output, "grad_output")
    _require_float(xp, x)
    _check_dtypes(grad_output=grad_output, input=input)
    gyc, xc, wc = _in_compute_dtype(xp, x.dtype, gy, x, weight)
    gx = _input_grad(xp, gyc, wc, geo, x.shape[2:])
    gw = _weight_grad(xp, gyc, xc, geo)
    return _gradients(xp, gx, gw, gyc, x.dtype, unbatched)


def _require_float(xp, x):
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(f"gradients need a real floating-point input, got {x.dtype}")
