"""Lesson 01 exercise: convolution and pooling, forward and backward.

Fill in each function below with NumPy, then grade your work with

    minivision check 01 lessons/01_convolution.py

The checker runs every function on a battery of small cases, compares with the reference
(torch.nn.functional's semantics) and, when a case fails, tells you which classic mistake your
output matches. Work through notebooks/01_convolution.ipynb first; it derives every formula.

Conventions (the same as torch's):
* feature maps are (N, C, H, W): batch, channels, height (rows), width (columns);
* a conv2d weight is (C_out, C_in, kH, kW); no groups and no dilation in this exercise;
* "convolution" means cross-correlation: the kernel is NOT flipped;
* ``stride`` and ``padding`` are an int (both axes) or a pair ``(for H, for W)``; padding adds
  zeros on both sides of an axis.

Loops over kernel offsets (kH * kW of them) are fine; avoid loops over every output pixel in
conv2d (use im2col and one matrix product) and never change the input arrays.
"""

from __future__ import annotations

import numpy as np


def conv2d_output_size(
    size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> int:
    """Number of windows along one axis of length ``size``.

    The kernel spans dilation * (kernel_size - 1) + 1 cells; windows start every ``stride``
    cells of the padded axis (padding on both sides) and must fit inside it.
    """
    raise NotImplementedError("lesson 01: conv2d_output_size")


def im2col(x: np.ndarray, kernel_size, stride=1, padding=0) -> np.ndarray:
    """Every window of the zero-padded input as a column.

    x: (N, C, H, W)  ->  (N, C * kH * kW, Ho * Wo), where row ``c * kH * kW + u * kW + v`` holds,
    for every window (i, j) in row-major order, the padded input cell under kernel offset (u, v)
    of channel c: xpad[n, c, i * sH + u, j * sW + v]. (This is torch.nn.functional.unfold.)
    Hint: for a fixed (u, v), all windows together read one strided slice of xpad.
    """
    raise NotImplementedError("lesson 01: im2col")


def conv2d(x: np.ndarray, weight: np.ndarray, bias=None, stride=1, padding=0) -> np.ndarray:
    """2-D convolution (cross-correlation), as im2col + one matrix product.

    x: (N, C, H, W), weight: (C_out, C, kH, kW), bias: (C_out,) or None
      ->  (N, C_out, Ho, Wo) with
    out[n, o, i, j] = bias[o] + sum_{c, u, v} xpad[n, c, i * sH + u, j * sW + v] * weight[o, c, u, v].
    """
    raise NotImplementedError("lesson 01: conv2d")


def conv2d_backward(
    grad_output: np.ndarray, x: np.ndarray, weight: np.ndarray, stride=1, padding=0
):
    """Gradients of conv2d (bias included) given dL/d(output).

    grad_output: (N, C_out, Ho, Wo)  ->  (grad_x (N, C, H, W), grad_weight (C_out, C, kH, kW),
    grad_bias (C_out,)), summed over the batch. Hint: with cols = im2col(x), the forward pass is
    W @ cols; differentiate the matrix product, then add the column gradients back onto the
    padded image (col2im) and crop the padding.
    """
    raise NotImplementedError("lesson 01: conv2d_backward")


def max_pool2d(x: np.ndarray, kernel_size, stride=None) -> np.ndarray:
    """Maximum over each window (no padding).

    x: (N, C, H, W)  ->  (N, C, Ho, Wo). ``stride`` defaults to ``kernel_size``.
    """
    raise NotImplementedError("lesson 01: max_pool2d")


def max_pool2d_backward(
    grad_output: np.ndarray, x: np.ndarray, kernel_size, stride=None
) -> np.ndarray:
    """Gradient of max_pool2d with respect to x.

    grad_output: (N, C, Ho, Wo)  ->  (N, C, H, W). Each window sends its gradient to the cell
    that holds its maximum -- the first one in row-major order if several are equal -- and a
    cell that wins several overlapping windows receives the sum.
    """
    raise NotImplementedError("lesson 01: max_pool2d_backward")
