"""Lesson 08 exercise: detection losses.

Fill in each function below with NumPy, then grade your work with

    minivision check 08 lessons/08_losses.py

The checker runs every function on a battery of small cases, compares with the reference
(torch / torchvision semantics) and, when a case fails, tells you which classic mistake your
output matches. Work through notebooks/08_losses.ipynb first.

Conventions: every loss here is element-wise (no reduction) except fastrcnn_loss; logits may be
as large as +-1000 and must still give finite, exact losses. Do not change the input arrays.
"""

from __future__ import annotations

import numpy as np


def binary_cross_entropy_with_logits(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Element-wise BCE of logits x against targets y in [0, 1] (soft targets allowed).

    loss = -[y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))], computed so that it stays finite
    and exact for |x| up to 1000 (hint: log sigmoid(x) = min(x, 0) - log1p(exp(-|x|))).
    """
    raise NotImplementedError("lesson 08: binary_cross_entropy_with_logits")


def sigmoid_focal_loss(x: np.ndarray, y: np.ndarray, alpha: float = 0.25, gamma: float = 2.0):
    """RetinaNet's focal loss, element-wise: alpha_t (1 - p_t)^gamma BCE(x, y).

    p = sigmoid(x), p_t = p y + (1 - p)(1 - y), alpha_t = alpha y + (1 - alpha)(1 - y).
    """
    raise NotImplementedError("lesson 08: sigmoid_focal_loss")


def smooth_l1_loss(input: np.ndarray, target: np.ndarray, beta: float = 1.0) -> np.ndarray:
    """Element-wise smooth L1: with z = |input - target|, 0.5 z^2 / beta if z < beta, else
    z - 0.5 beta (beta > 0 here)."""
    raise NotImplementedError("lesson 08: smooth_l1_loss")


def smooth_l1_loss_backward(input: np.ndarray, target: np.ndarray, beta: float = 1.0):
    """d smooth_l1_loss / d input, element-wise (same shape as input); 0 where input == target."""
    raise NotImplementedError("lesson 08: smooth_l1_loss_backward")


def fastrcnn_loss(class_logits, box_regression, labels, regression_targets):
    """Fast R-CNN's multi-task loss, as torchvision computes it. Returns (cls_loss, box_loss).

    class_logits (R, K+1), box_regression (R, 4(K+1)), labels (R,) ints in [0, K] (0 =
    background), regression_targets (R, 4).
    cls_loss: softmax cross-entropy, mean over all R proposals (stable for large logits).
    box_loss: smooth L1 with beta = 1/9, summed over the proposals with label > 0 and the four
    columns of *their own class* (box_regression.reshape(R, K+1, 4)[i, labels[i]]), divided by R.
    """
    raise NotImplementedError("lesson 08: fastrcnn_loss")
