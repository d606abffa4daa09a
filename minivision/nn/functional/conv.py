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
On NumPy the products run block by block over rows of windows (see ``CPU_BLOCK``): the same
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

from ..._backend import namespace_of
from ._conv_core import (
    check_bias,
    check_dtypes,
    check_grad,
    check_groups,
    check_weight,
    forward,
    geometry,
    gradients,
    in_compute_dtype,
    input_grad,
    output_grid,
    require_float,
    weight_grad,
)
from ._window import batched, fold, pad, pair, unbatch, unfold

__all__ = ["im2col", "col2im", "conv2d", "conv2d_naive", "conv2d_backward"]


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
    geo = geometry(kernel, stride, padding, dilation, 1, allow_strings=False)
    n, c, h, w = input.shape
    grid = output_grid(geo, (h, w))
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
    geo = geometry(kernel, stride, padding, dilation, 1, allow_strings=False)
    k = kernel[0] * kernel[1]
    if input.ndim != 3 or input.shape[1] % k:
        raise ValueError(
            f"input must have shape (N, C * {k}, L) for kernel_size {kernel}, got {tuple(input.shape)}"
        )
    grid = output_grid(geo, hw)
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
    check_dtypes(input=input, weight=weight, bias=bias)
    check_weight(xp, weight, "weight", x.shape[1], check_groups(groups), transposed=False)
    geo = geometry(tuple(weight.shape[2:]), stride, padding, dilation, groups)
    check_bias(bias, weight.shape[0])
    return x, unbatched, geo, output_grid(geo, x.shape[2:])


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
    xc, wc, bc = in_compute_dtype(xp, x.dtype, x, weight, bias)
    out = forward(xp, xc, wc, geo, grid)
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
    check_grad(grad_output, (x.shape[0], weight.shape[0], *grid), unbatched)
    gy, _ = batched(xp, grad_output, "grad_output")
    require_float(xp, x)
    check_dtypes(grad_output=grad_output, input=input)
    gyc, xc, wc = in_compute_dtype(xp, x.dtype, gy, x, weight)
    gx = input_grad(xp, gyc, wc, geo, x.shape[2:])
    gw = weight_grad(xp, gyc, xc, geo)
    return gradients(xp, gx, gw, gyc, x.dtype, unbatched)
