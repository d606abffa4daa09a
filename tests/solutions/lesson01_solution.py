"""A learner's correct solution to lessons/01_convolution.py, written with plain NumPy.

It does not import minivision: the checker must accept an independent, correct implementation.
This one uses sliding_window_view and einsum, unlike minivision.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def conv2d_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


def _windows(x, kernel_size, stride, padding):
    """(N, C, Ho, Wo, kH, kW) view of the windows of the zero-padded input."""
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel_size), _pair(stride), _pair(padding)
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    return sliding_window_view(xpad, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]


def im2col(x, kernel_size, stride=1, padding=0):
    win = _windows(x, kernel_size, stride, padding)
    n, c, ho, wo, kh, kw = win.shape
    return win.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * kh * kw, ho * wo)


def conv2d(x, weight, bias=None, stride=1, padding=0):
    win = _windows(x, weight.shape[2:], stride, padding)
    out = np.einsum("ncijuv,ocuv->noij", win, weight)
    if bias is not None:
        out = out + bias[None, :, None, None]
    return out


def conv2d_backward(grad_output, x, weight, stride=1, padding=0):
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    kh, kw = weight.shape[2:]
    win = _windows(x, (kh, kw), stride, padding)
    grad_w = np.einsum("noij,ncijuv->ocuv", grad_output, win)
    grad_b = grad_output.sum(axis=(0, 2, 3))
    n, c, h, w = x.shape
    ho, wo = grad_output.shape[2:]
    grad_pad = np.zeros((n, c, h + 2 * ph, w + 2 * pw))
    for u in range(kh):
        for v in range(kw):
            contrib = np.einsum("noij,oc->ncij", grad_output, weight[:, :, u, v])
            grad_pad[:, :, u : u + sh * (ho - 1) + 1 : sh, v : v + sw * (wo - 1) + 1 : sw] += (
                contrib
            )
    return grad_pad[:, :, ph : ph + h, pw : pw + w], grad_w, grad_b


def max_pool2d(x, kernel_size, stride=None):
    stride = kernel_size if stride is None else stride
    return _windows(x, kernel_size, stride, 0).max(axis=(4, 5))


def max_pool2d_backward(grad_output, x, kernel_size, stride=None):
    stride = kernel_size if stride is None else stride
    (kh, kw), (sh, sw) = _pair(kernel_size), _pair(stride)
    win = _windows(x, kernel_size, stride, 0)
    n, c, ho, wo = win.shape[:4]
    first = win.reshape(n, c, ho, wo, kh * kw).argmax(axis=-1)  # argmax: first maximum
    u, v = np.divmod(first, kw)
    rows = np.arange(ho)[:, None] * sh + u
    cols = np.arange(wo)[None, :] * sw + v
    grad = np.zeros_like(x, dtype=float)
    nn, cc = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
    np.add.at(grad, (nn[..., None, None], cc[..., None, None], rows, cols), grad_output)
    return grad
