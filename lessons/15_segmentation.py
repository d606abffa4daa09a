"""Lesson 15 exercise: the pieces of a semantic segmenter -- up-sampling, skips, ASPP, mIoU.

Fill in each function below with NumPy, then grade your work with

    minivision check 15 lessons/15_segmentation.py

The checker runs every function on a battery of small cases, compares with the reference
(minivision's transposed and atrous convolutions and its segmentation metrics, which the tests
pin to torch and torchmetrics) and, when a case fails, tells you which classic mistake your
output matches. Work through notebooks/15_semantic_segmentation.ipynb first.

Conventions:
* maps are (N, C, H, W) float arrays; class maps are (N, H, W) integer arrays, 0 = background;
* a transposed convolution with stride s scatters each input value times the kernel onto the
  output: out[n, o, s*i + u, s*j + v] += x[n, c, i, j] * w[c, o, u, v]  (no padding, no bias);
* a convolution with dilation r and padding p reads x at (i - p + r*u, j - p + r*v), zeros
  outside (cross-correlation, as torch).

Do not change the input arrays.
"""

from __future__ import annotations

import numpy as np


def bilinear_kernel(channels: int, factor: int) -> np.ndarray:
    """FCN's bilinear up-sampling weight for a transposed convolution of stride ``factor``.

    Shape (channels, channels, k, k) with k = 2 * factor - factor % 2; channel c maps to
    channel c only (zeros elsewhere), with the tent k2(u, v) = (1 - |u - m| / f)(1 - |v - m| / f),
    f = (k + 1) // 2 and m = f - 1 if k is odd else f - 0.5. float64.
    """
    raise NotImplementedError("lesson 15: bilinear_kernel")


def fcn_skip_fusion(coarse_score, skip_score, up_weight, offset: int) -> np.ndarray:
    """One FCN skip, as in the original (pad-100) network: up-sample, crop, add.

    ``coarse_score`` (N, K, h, w) is up-sampled 2x by a transposed convolution with
    ``up_weight`` (K, K, 4, 4), stride 2, no padding -- an (N, K, 2h + 2, 2w + 2) map;
    ``skip_score`` (N, K, H, W), the finer layer's scores, is cropped to that size starting at
    row and column ``offset``; the result is their sum, (N, K, 2h + 2, 2w + 2).
    """
    raise NotImplementedError("lesson 15: fcn_skip_fusion")


def aspp_forward(x, w_1x1, w_atrous, rates, w_pool, w_project) -> np.ndarray:
    """DeepLab v3's atrous spatial pyramid pooling in eval mode, with BatchNorm folded away.

    x (N, C, H, W). Branches, each followed by a ReLU:
    * ``w_1x1`` (D, C, 1, 1): a 1x1 convolution;
    * ``w_atrous[i]`` (D, C, 3, 3): a 3x3 convolution with dilation ``rates[i]`` and padding
      ``rates[i]`` (the map keeps its size);
    * image pooling: the mean of x over H and W, a 1x1 convolution with ``w_pool`` (D, C, 1, 1),
      then that (N, D) vector copied to every position.
    Concatenate the branches in that order along the channels -- (N, (2 + len(rates)) D, H, W) --
    and project with the 1x1 convolution ``w_project`` (D, (2 + len(rates)) D, 1, 1) and a
    ReLU. Returns (N, D, H, W). No biases anywhere.
    """
    raise NotImplementedError("lesson 15: aspp_forward")


def mean_iou(pred, target, num_classes: int) -> float:
    """Mean IoU of class maps over a whole data set.

    pred, target (N, H, W) ints in 0..num_classes-1 (0, the background, is a class). Count
    TP, FP and FN of each class over *all* pixels of all images (one confusion matrix), IoU_c =
    TP / (TP + FP + FN); a class absent from both pred and target has no IoU and is left out of
    the mean. Returns a float.
    """
    raise NotImplementedError("lesson 15: mean_iou")
