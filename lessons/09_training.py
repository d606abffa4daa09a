"""Lesson 09 exercise: a network that learns -- backward passes, optimizer steps, BatchNorm.

Fill in each function below with NumPy, then grade your work with

    minivision check 09 lessons/09_training.py

The checker runs every function on a battery of small cases, compares with minivision.nn
(whose layers and optimizers the test suite pins to torch.nn / torch.optim) and, when a case
fails, tells you which classic mistake your output matches. Work through
notebooks/09_training.ipynb first.

Conventions: float64 NumPy arrays; a Linear layer computes y = x @ weight.T + bias with weight
of shape (out_features, in_features), as torch. "grad_output" is dL/d(output) and already
carries whatever 1/N the loss's mean put in. Return new arrays; do not change the inputs.
"""

from __future__ import annotations

import numpy as np


def linear_backward(x: np.ndarray, weight: np.ndarray, grad_output: np.ndarray):
    """Backward pass of y = x @ weight.T + bias, for x (N, in), weight (out, in).

    Returns (grad_x (N, in), grad_weight (out, in), grad_bias (out,)).
    """
    raise NotImplementedError("lesson 09: linear_backward")


def relu_backward(x: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
    """dL/dx of y = max(x, 0), given dL/dy; torch's convention: the gradient is 0 at x == 0."""
    raise NotImplementedError("lesson 09: relu_backward")


def tied_linear_backward(x1, x2, weight, grad_y1, grad_y2) -> np.ndarray:
    """dL/d(weight) when one bias-free Linear weight is used twice: y1 = x1 @ W.T and
    y2 = x2 @ W.T (a shared layer, e.g. two heads on one trunk read the same features).

    x1 (N1, in), x2 (N2, in), weight (out, in), grad_y1 (N1, out), grad_y2 (N2, out).
    """
    raise NotImplementedError("lesson 09: tied_linear_backward")


def softmax_cross_entropy_backward(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """dL/d(logits) of the mean softmax cross-entropy L = mean_i -log softmax(logits_i)[labels_i].

    logits (N, C), labels (N,) ints in 0..C-1; stable for logits of +-1000. Returns (N, C).
    """
    raise NotImplementedError("lesson 09: softmax_cross_entropy_backward")


def gradient_descent(x, y, weight, lr: float, steps: int) -> np.ndarray:
    """Fit y ~ x @ weight.T (no bias) by ``steps`` steps of plain gradient descent on the mean
    squared error L = mean((x @ weight.T - y) ** 2) (the mean over every element), starting
    from ``weight``. Keep a gradient buffer as a layer would. Returns the final weight.

    x (N, in), y (N, out), weight (out, in).
    """
    raise NotImplementedError("lesson 09: gradient_descent")


def sgd_momentum_step(param, grad, buf, lr: float, momentum: float = 0.9,
                      weight_decay: float = 0.0, nesterov: bool = False):
    """One step of torch.optim.SGD with momentum (dampening 0). Returns (new_param, new_buf).

    ``buf`` is the momentum buffer from the previous step, or None on the first step. The
    weight decay is an L2 term (weight_decay * param joins the gradient).
    """
    raise NotImplementedError("lesson 09: sgd_momentum_step")


def adam_step(param, grad, exp_avg, exp_avg_sq, step: int, lr: float = 1e-3,
              betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
              decoupled: bool = False):
    """One step of torch.optim.Adam (decoupled=False) or torch.optim.AdamW (decoupled=True).

    ``exp_avg``, ``exp_avg_sq`` are the moments after the previous step (zeros before the
    first); ``step`` is the number of this step, 1 for the first. Weight decay: Adam adds
    weight_decay * param to the gradient; AdamW multiplies param by (1 - lr * weight_decay)
    before the update. Returns (new_param, new_exp_avg, new_exp_avg_sq).
    """
    raise NotImplementedError("lesson 09: adam_step")


def batchnorm_forward(x, weight, bias, running_mean, running_var, training: bool,
                      momentum: float = 0.1, eps: float = 1e-5):
    """BatchNorm2d's forward pass on x (N, C, H, W), as torch.nn.BatchNorm2d.

    In training, normalise each channel with the batch's mean and (biased) variance and update
    the running estimates with ``momentum``; in eval, normalise with the running estimates.
    Returns (y, new_running_mean, new_running_var) (the running ones unchanged in eval).
    """
    raise NotImplementedError("lesson 09: batchnorm_forward")
