"""The transposed convolution ("deconvolution"): conv2d's input gradient, used as a layer.

Each input pixel ``(i, j)`` stamps a copy of the kernel, scaled by its value, onto the output at
``(i sH - pH + u dH, j sW - pW + v dW)``; overlapping stamps add up. That is exactly how
:func:`minivision.conv2d_backward` sends gradients back to the input -- ``col2im(W^T @ x)`` --
so ``conv_transpose2d`` with a weight, stride, padding and dilation is the adjoint of ``conv2d``
with the same ones, and its backward pass is a ``conv2d`` again. FCN and U-Net use it as a
learned upsampling (stride 2, kernel 4, padding 1 doubles the size).

Both functions mirror ``torch.nn.functional.conv_transpose2d`` (torch 2.14.1), argument order
included (``output_padding, groups, dilation``), and are **device-pure**.
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
    require_float,
    weight_grad,
)
from ._window import batched, pair, unbatch

__all__ = ["conv_transpose2d", "conv_transpose2d_backward"]


def _transpose_args(xp, input, weight, bias, stride, padding, output_padding, groups, dilation):
    x, unbatched = batched(xp, input)
    check_dtypes(input=input, weight=weight, bias=bias)
    check_weight(xp, weight, "weight", x.shape[1], check_groups(groups), transposed=True)
    geo = geometry(tuple(weight.shape[2:]), stride, padding, dilation, groups, allow_strings=False)
    c_out = weight.shape[1] * geo.groups
    check_bias(bias, c_out)
    op = pair("output_padding", output_padding, 0)
    for o, s, d in zip(op, geo.stride, geo.dilation):
        if o >= max(s, d):
            raise ValueError(
                f"output_padding must be smaller than stride or dilation, got {output_padding!r} "
                f"with stride {geo.stride} and dilation {geo.dilation}"
            )
    t, _, l, _ = geo.pads
    hw = tuple(
        (n - 1) * s - 2 * p + d * (k - 1) + o + 1
        for n, s, p, d, k, o in zip(x.shape[2:], geo.stride, (t, l), geo.dilation, geo.kernel, op)
    )
    if min(hw) < 1:
        raise ValueError(
            f"conv_transpose2d output size {hw} is too small: input {tuple(x.shape[2:])}, "
            f"stride {geo.stride}, padding {(t, l)}, kernel {geo.kernel}, dilation {geo.dilation}"
        )
    return x, unbatched, geo, hw


def conv_transpose2d(
    input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
):
    """Transposed convolution ("deconvolution"): the adjoint of :func:`conv2d`, as a learned upsampling.

    Parameters
    ----------
    input : array of shape (N, C_in, H, W) or (C_in, H, W)
    weight : array of shape (C_in, C_out / groups, kH, kW)
        Note the order: input channels first (it is a conv2d weight from C_out to C_in).
    bias : array of shape (C_out,), optional
    stride, padding, output_padding, dilation : int or (int, int)
        Those of the :func:`conv2d` this is the adjoint of. ``output_padding`` (smaller than the
        stride or the dilation) adds rows/columns at the bottom/right, to pick among the input
        sizes that conv2d maps to the same output size.
    groups : int
        torch's argument order: ``output_padding, groups, dilation``.

    Returns
    -------
    array of shape (N, C_out, Ho, Wo)
        ``Ho = (H - 1) sH - 2 pH + dH (kH - 1) + output_padding + 1``.

    Notes
    -----
    Each input pixel ``(i, j)`` spreads ``x * w[c, o, u, v]`` to output ``(i sH - pH + u dH,
    j sW - pW + v dW)``: ``col2im(weight^T @ input)``, the same code as conv2d's input gradient.
    Mirrors ``torch.nn.functional.conv_transpose2d``. Device-pure.
    """
    xp = namespace_of(input=input, weight=weight, bias=bias)
    x, unbatched, geo, hw = _transpose_args(
        xp, input, weight, bias, stride, padding, output_padding, groups, dilation
    )
    xc, wc, bc = in_compute_dtype(xp, x.dtype, x, weight, bias)
    out = input_grad(xp, xc, wc, geo, hw)
    if bc is not None:
        out = out + bc[:, None, None]
    return unbatch(xp.astype(out, x.dtype, copy=False), unbatched)


def conv_transpose2d_backward(
    grad_output, input, weight, stride=1, padding=0, output_padding=0, groups=1, dilation=1
):
    """Gradients of :func:`conv_transpose2d` with respect to its input, weight and bias.

    Returns
    -------
    grad_input : array of shape (N, C_in, H, W)
        ``conv2d(grad_output, weight, stride, padding, dilation, groups)`` -- the adjoint of the
        adjoint -- over exactly the ``H x W`` windows (an ``output_padding >= stride`` would
        otherwise add one).
    grad_weight : array of shape (C_in, C_out / groups, kH, kW)
        ``input @ im2col(grad_output)^T``, summed over the batch.
    grad_bias : array of shape (C_out,)

    Notes
    -----
    Arguments as for :func:`conv_transpose2d`, after ``grad_output`` (the forward output's
    shape). Device-pure.
    """
    xp = namespace_of(grad_output=grad_output, input=input, weight=weight)
    x, unbatched, geo, hw = _transpose_args(
        xp, input, weight, None, stride, padding, output_padding, groups, dilation
    )
    check_grad(grad_output, (x.shape[0], weight.shape[1] * geo.groups, *hw), unbatched)
    gy, _ = batched(xp, grad_output, "grad_output")
    require_float(xp, x)
    check_dtypes(grad_output=grad_output, input=input)
    gyc, xc, wc = in_compute_dtype(xp, x.dtype, gy, x, weight)
    gx = forward(xp, gyc, wc, geo, x.shape[2:])
    gw = weight_grad(xp, xc, gyc, geo)
    return gradients(xp, gx, gw, gyc, x.dtype, unbatched)
