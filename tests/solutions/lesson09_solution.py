"""A learner's correct lesson 09 file, written with NumPy only (not from minivision's code)."""

from __future__ import annotations

import numpy as np


def linear_backward(x, weight, grad_output):
    return grad_output @ weight, grad_output.T @ x, grad_output.sum(axis=0)


def relu_backward(x, grad_output):
    return grad_output * (x > 0)


def tied_linear_backward(x1, x2, weight, grad_y1, grad_y2):
    grad = np.zeros_like(weight)
    grad += grad_y1.T @ x1
    grad += grad_y2.T @ x2
    return grad


def softmax_cross_entropy_backward(logits, labels):
    shifted = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(shifted)
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(labels)), labels] -= 1.0
    return p / len(labels)


def gradient_descent(x, y, weight, lr, steps):
    w = weight.astype(float).copy()
    for _ in range(steps):
        grad = np.zeros_like(w)
        residual = x @ w.T - y
        grad += (2.0 / residual.size) * residual.T @ x
        w = w - lr * grad
    return w


def sgd_momentum_step(param, grad, buf, lr, momentum=0.9, weight_decay=0.0, nesterov=False):
    d = grad + weight_decay * param
    buf = d.copy() if buf is None else momentum * buf + d
    direction = d + momentum * buf if nesterov else buf
    return param - lr * direction, buf


def adam_step(param, grad, exp_avg, exp_avg_sq, step, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
              weight_decay=0.0, decoupled=False):
    beta1, beta2 = betas
    if decoupled:
        param = param * (1.0 - lr * weight_decay)
    else:
        grad = grad + weight_decay * param
    m = beta1 * exp_avg + (1.0 - beta1) * grad
    v = beta2 * exp_avg_sq + (1.0 - beta2) * grad**2
    m_hat = m / (1.0 - beta1**step)
    v_hat = v / (1.0 - beta2**step)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def batchnorm_forward(x, weight, bias, running_mean, running_var, training, momentum=0.1,
                      eps=1e-5):
    axes = (0, 2, 3)
    if training:
        mean = x.mean(axis=axes)
        var = ((x - mean[:, None, None]) ** 2).mean(axis=axes)
        m = x.size // x.shape[1]
        running_mean = (1 - momentum) * running_mean + momentum * mean
        running_var = (1 - momentum) * running_var + momentum * var * m / (m - 1)
    else:
        mean, var = running_mean, running_var
    shape = (1, -1, 1, 1)
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    return y * weight.reshape(shape) + bias.reshape(shape), running_mean, running_var
