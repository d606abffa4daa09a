"""Lesson 01 battery: output sizes, im2col, conv2d and its backward pass, max pooling and its backward.

The expected values come from minivision.nn.functional.conv and minivision.nn.functional.pool (pinned to torch by the
tests). The mistakes are the classic ones: a true (flipped) convolution instead of the
cross-correlation deep learning uses, padding applied to the wrong axes, an output size off by
one, the kernel left unflipped when deriving the input gradient, overlapping pooling windows
that overwrite instead of accumulate, and the gradient of a max sent to every tied maximum.
"""

from __future__ import annotations

import numpy as np

from ..nn.functional import conv as C
from ..nn.functional import pool as P
from ._core import Battery, Case, FunctionBattery, Mistake

# ----------------------------------------------------------------------------- inputs

RNG = np.random.default_rng(1)
# The 5 x 5 example of the notebook, and an asymmetric kernel (so that flipping it shows).
X5 = np.arange(25.0).reshape(1, 1, 5, 5)
K3 = np.array([[[[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [0.5, 1.0, -1.5]]]])
X = RNG.integers(-4, 5, (2, 3, 7, 6)) / 2.0
W = RNG.integers(-4, 5, (4, 3, 3, 2)) / 2.0
B = np.array([0.5, -1.0, 2.0, 0.0])
X3 = RNG.integers(-4, 5, (3, 2, 6, 5)) / 2.0  # batch 3
W3 = RNG.integers(-4, 5, (2, 2, 2, 3)) / 2.0
TIES = RNG.integers(0, 3, (2, 2, 7, 7)).astype(np.float64)  # many tied maxima
POOL = RNG.standard_normal((2, 3, 6, 6))


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _out(size, kernel_size, stride=1, padding=0, dilation=1):
    x = np.zeros((1, 1, 1, size))
    w = np.zeros((1, 1, 1, kernel_size))
    return int(
        C.conv2d(x, w, stride=(1, stride), padding=(0, padding), dilation=(1, dilation)).shape[-1]
    )


def _im2col(x, kernel_size, stride=1, padding=0):
    return C.im2col(x, kernel_size, 1, padding, stride)


def _max_pool(x, kernel_size, stride=None):
    return P.max_pool2d(x, kernel_size, stride)


def _max_pool_backward(grad_output, x, kernel_size, stride=None):
    return P.max_pool2d_backward(grad_output, x, kernel_size, stride)


# ----------------------------------------------------------------------------- mistakes

OFF_BY_ONE = (
    "an output size off by one",
    "the number of windows is floor((H + 2p - k) / s) + 1: the last window starts at "
    "(Ho - 1) * s and must end inside the padded input; count the start positions, not the gaps",
)
WRONG_AXES = (
    "padding applied to the wrong axes",
    "padding=(pH, pW) adds pH rows at the top and bottom (axis 2, height) and pW columns on the "
    "left and right (axis 3, width); the batch and channel axes are never padded",
)


def _size_no_plus_one(size, kernel_size, stride=1, padding=0, dilation=1):
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride


def _size_pad_once(size, kernel_size, stride=1, padding=0, dilation=1):
    return (size + padding - dilation * (kernel_size - 1) - 1) // stride + 1


def _size_no_dilation(size, kernel_size, stride=1, padding=0, dilation=1):
    return (size + 2 * padding - kernel_size) // stride + 1


def _size_ceil(size, kernel_size, stride=1, padding=0, dilation=1):
    return -(-(size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride) + 1


def _im2col_swapped(x, kernel_size, stride=1, padding=0):
    return C.im2col(x, kernel_size, 1, _pair(padding)[::-1], stride)


def _im2col_offset_major(x, kernel_size, stride=1, padding=0):
    cols = _im2col(x, kernel_size, stride, padding)
    n, ck, length = cols.shape
    k = int(np.prod(_pair(kernel_size)))
    return cols.reshape(n, ck // k, k, length).transpose(0, 2, 1, 3).reshape(n, ck, length)


def _im2col_short(x, kernel_size, stride=1, padding=0):
    kh, kw = _pair(kernel_size)
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    ho = (x.shape[2] + 2 * ph - kh) // sh + 1
    wo = (x.shape[3] + 2 * pw - kw) // sw + 1
    cols = _im2col(x, kernel_size, stride, padding).reshape(x.shape[0], -1, ho, wo)
    return cols[:, :, :-1, :-1].reshape(x.shape[0], cols.shape[1], -1)


def _conv_flipped(x, weight, bias=None, stride=1, padding=0):
    return C.conv2d(x, np.ascontiguousarray(weight[..., ::-1, ::-1]), bias, stride, padding)


def _conv_swapped(x, weight, bias=None, stride=1, padding=0):
    return C.conv2d(x, weight, bias, stride, _pair(padding)[::-1])


def _conv_short(x, weight, bias=None, stride=1, padding=0):
    return C.conv2d(x, weight, bias, stride, padding)[..., :-1, :-1]


def _conv_no_bias(x, weight, bias=None, stride=1, padding=0):
    return C.conv2d(x, weight, None, stride, padding)


def _conv_no_stride(x, weight, bias=None, stride=1, padding=0):
    return C.conv2d(x, weight, bias, 1, padding)


def _backward_unflipped(grad_output, x, weight, stride=1, padding=0):
    gx, gw, gb = C.conv2d_backward(grad_output, x, weight, stride, padding)
    flipped = np.ascontiguousarray(weight[..., ::-1, ::-1])
    return C.conv2d_backward(grad_output, x, flipped, stride, padding)[0], gw, gb


def _backward_batch_mean(grad_output, x, weight, stride=1, padding=0):
    gx, gw, gb = C.conv2d_backward(grad_output, x, weight, stride, padding)
    return gx, gw / x.shape[0], gb / x.shape[0]


def _backward_padded(grad_output, x, weight, stride=1, padding=0):
    ph, pw = _pair(padding)
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    gx, gw, gb = C.conv2d_backward(grad_output, xpad, weight, stride, 0)
    return gx, gw, gb


def _pool_stride_one(x, kernel_size, stride=None):
    return P.max_pool2d(x, kernel_size, 1 if stride is None else stride)


def _pool_short(x, kernel_size, stride=None):
    return P.max_pool2d(x, kernel_size, stride)[..., :-1, :-1]


def _pool_hw_swapped(x, kernel_size, stride=None):
    stride = kernel_size if stride is None else stride
    return P.max_pool2d(x, _pair(kernel_size)[::-1], _pair(stride)[::-1])


def _windows(x, kernel_size, stride):
    """Yield (i, j, rows, cols) for every pooling window (no padding), row-major."""
    kh, kw = _pair(kernel_size)
    sh, sw = _pair(kernel_size if stride is None else stride)
    ho, wo = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
    for i in range(ho):
        for j in range(wo):
            rows, cols = slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw)
            yield i, j, rows, cols


def _pool_back_all_ties(grad_output, x, kernel_size, stride=None):
    gx = np.zeros_like(x)
    for i, j, rows, cols in _windows(x, kernel_size, stride):
        win = x[:, :, rows, cols]
        hit = win == win.max(axis=(2, 3), keepdims=True)
        gx[:, :, rows, cols] += hit * grad_output[:, :, i, j][:, :, None, None]
    return gx


def _pool_back_overwrite(grad_output, x, kernel_size, stride=None):
    _, idx = P.max_pool2d(x, kernel_size, stride, return_indices=True)
    gx = np.zeros_like(x).reshape(x.shape[0], x.shape[1], -1)
    for i, j, _, _ in _windows(x, kernel_size, stride):
        for n in range(x.shape[0]):
            for c in range(x.shape[1]):
                gx[n, c, idx[n, c, i, j]] = grad_output[n, c, i, j]
    return gx.reshape(x.shape)


def _pool_back_spread(grad_output, x, kernel_size, stride=None):
    return P.avg_pool2d_backward(grad_output, x, kernel_size, stride)


BATTERY = Battery(
    lesson="01",
    title="lesson 01, convolution and pooling",
    functions=[
        FunctionBattery(
            "conv2d_output_size",
            _out,
            [
                Case("size 5, kernel 3", (5, 3)),
                Case("size 8, kernel 3, padding 2", (8, 3, 1, 2)),
                Case("size 12, kernel 3, stride 2, dilation 3", (12, 3, 2, 0, 3)),
                Case("size 10, kernel 3, stride 2, padding 1, dilation 3", (10, 3, 2, 1, 3)),
                Case("size 8, kernel 2, stride 3", (8, 2, 3)),
            ],
            [
                Mistake(*OFF_BY_ONE, _size_no_plus_one),
                Mistake(
                    "padding counted once",
                    "padding p adds p cells on *each* side: the padded length is H + 2p",
                    _size_pad_once,
                ),
                Mistake(
                    "dilation ignored",
                    "a dilated kernel spans d(k - 1) + 1 cells, not k",
                    _size_no_dilation,
                ),
                Mistake(
                    "rounding up",
                    "conv2d rounds the number of steps down (floor); only pooling's ceil_mode rounds up",
                    _size_ceil,
                ),
            ],
        ),
        FunctionBattery(
            "im2col",
            _im2col,
            [
                Case("the 5 x 5 example, kernel 3", (X5, 3)),
                Case("kernel (3, 2), stride (1, 2), padding (1, 0)", (X, (3, 2), (1, 2), (1, 0))),
                Case("kernel 2, stride 2, padding (0, 1)", (X3, 2, 2, (0, 1))),
            ],
            [
                Mistake(*WRONG_AXES, _im2col_swapped),
                Mistake(
                    "rows ordered (kernel offset, channel)",
                    "row c * kH * kW + u * kW + v holds channel c under kernel offset (u, v): channel "
                    "first, so that the rows match weight.reshape(C_out, -1)",
                    _im2col_offset_major,
                ),
                Mistake(*OFF_BY_ONE, _im2col_short),
            ],
        ),
        FunctionBattery(
            "conv2d",
            C.conv2d,
            [
                Case("the 5 x 5 example with an asymmetric 3 x 3 kernel", (X5, K3)),
                Case("padding (1, 0), bias", (X, W, B, 1, (1, 0))),
                Case("stride 2, padding 1, bias", (X, W, B, 2, 1)),
                Case("stride (2, 3), padding (0, 1), no bias", (X3, W3, None, (2, 3), (0, 1))),
            ],
            [
                Mistake(
                    "convolution flipped instead of cross-correlation",
                    "deep learning's 'convolution' does not flip the kernel: out[i, j] = "
                    "sum x[i*s + u, j*s + v] * w[u, v] (cross-correlation), as torch computes it",
                    _conv_flipped,
                ),
                Mistake(*WRONG_AXES, _conv_swapped),
                Mistake(*OFF_BY_ONE, _conv_short),
                Mistake(
                    "the bias forgotten",
                    "add bias[o] to every pixel of output channel o",
                    _conv_no_bias,
                ),
                Mistake(
                    "the stride ignored",
                    "window (i, j) starts at (i * sH, j * sW) of the padded input",
                    _conv_no_stride,
                ),
            ],
        ),
        FunctionBattery(
            "conv2d_backward",
            C.conv2d_backward,
            [
                Case(
                    "padding 1",
                    (RNG.integers(-4, 5, (2, 4, 7, 7)) / 2.0, X, W, 1, (1, 1)),
                ),
                Case(
                    "stride 2, padding (1, 0)",
                    (RNG.integers(-4, 5, (2, 4, 4, 3)) / 2.0, X, W, 2, (1, 0)),
                ),
                Case(
                    "batch of 3, stride (2, 1)",
                    (RNG.integers(-4, 5, (3, 2, 3, 3)) / 2.0, X3, W3, (2, 1), 0),
                ),
            ],
            [
                Mistake(
                    "the kernel not rotated in the input gradient",
                    "grad_input[n, c, h, w] sums grad_output * w[o, c, u, v] over the windows that "
                    "read (h, w). Written as a cross-correlation of the zero-padded grad_output, "
                    "that needs the kernel rotated by 180 degrees (w[..., ::-1, ::-1]); with "
                    "im2col it is simply col2im(W^T @ grad_output)",
                    _backward_unflipped,
                ),
                Mistake(
                    "weight and bias gradients averaged over the batch",
                    "the loss sums over the batch, so the weight gradient sums the images' "
                    "contributions (divide in the loss, not here)",
                    _backward_batch_mean,
                ),
                Mistake(
                    "the padding left on grad_input",
                    "col2im gives the gradient of the padded input; crop the padding off "
                    "(grad_pad[:, :, pH:pH + H, pW:pW + W]) to get the input's",
                    _backward_padded,
                ),
            ],
        ),
        FunctionBattery(
            "max_pool2d",
            _max_pool,
            [
                Case("2 x 2 windows, stride = kernel (the default)", (POOL, 2)),
                Case("overlapping 3 x 3 windows, stride 2", (TIES, 3, 2)),
                Case("kernel (2, 3), stride (1, 2)", (POOL, (2, 3), (1, 2))),
            ],
            [
                Mistake(
                    "stride defaulting to 1",
                    "torch's stride defaults to kernel_size (non-overlapping windows), not 1",
                    _pool_stride_one,
                ),
                Mistake(*OFF_BY_ONE, _pool_short),
                Mistake(
                    "kernel height and width swapped",
                    "kernel_size=(kH, kW): kH runs down the rows (axis 2), kW along the columns (axis 3)",
                    _pool_hw_swapped,
                ),
            ],
        ),
        FunctionBattery(
            "max_pool2d_backward",
            _max_pool_backward,
            [
                Case(
                    "2 x 2 windows",
                    (RNG.standard_normal((2, 3, 3, 3)), POOL, 2),
                ),
                Case(
                    "overlapping 3 x 3 windows, stride 2, with ties",
                    (RNG.standard_normal((2, 2, 3, 3)), TIES, 3, 2),
                ),
            ],
            [
                Mistake(
                    "the gradient sent to every tied maximum",
                    "the max is one input cell, so its gradient goes to that one cell: the first "
                    "maximum of the window in row-major order (torch's choice)",
                    _pool_back_all_ties,
                ),
                Mistake(
                    "overlapping windows overwrite instead of accumulate",
                    "a cell that wins two overlapping windows gets both gradients: use +=, "
                    "not =, when writing into grad_input",
                    _pool_back_overwrite,
                ),
                Mistake(
                    "the gradient spread over the window",
                    "that is average pooling's backward; max pooling sends everything to the maximum",
                    _pool_back_spread,
                ),
            ],
        ),
    ],
)
