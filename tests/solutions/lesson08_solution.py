"""A learner's correct solution to lessons/08_losses.py, written with plain NumPy.

It does not import minivision: the checker must accept an independent, correct implementation.
"""

import numpy as np


def _log_sigmoid(x):
    return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


def binary_cross_entropy_with_logits(x, y):
    return (1 - y) * x - _log_sigmoid(x)


def sigmoid_focal_loss(x, y, alpha=0.25, gamma=2.0):
    p = np.exp(_log_sigmoid(x))
    p_t = p * y + (1 - p) * (1 - y)
    return (
        (alpha * y + (1 - alpha) * (1 - y))
        * (1 - p_t) ** gamma
        * binary_cross_entropy_with_logits(x, y)
    )


def smooth_l1_loss(input, target, beta=1.0):
    z = np.abs(input - target)
    return np.where(z < beta, 0.5 * z * z / beta, z - 0.5 * beta)


def smooth_l1_loss_backward(input, target, beta=1.0):
    d = input - target
    return np.where(np.abs(d) < beta, d / beta, np.sign(d))


def fastrcnn_loss(class_logits, box_regression, labels, regression_targets):
    r = len(labels)
    m = class_logits.max(axis=1, keepdims=True)
    logp = class_logits - m - np.log(np.exp(class_logits - m).sum(axis=1, keepdims=True))
    cls = -logp[np.arange(r), labels].mean()
    pos = np.flatnonzero(labels > 0)
    picked = box_regression.reshape(r, -1, 4)[pos, labels[pos]]
    box = smooth_l1_loss(picked, regression_targets[pos], 1 / 9).sum() / r
    return cls, box
