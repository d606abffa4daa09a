"""`minivision check 09`: stubs fail cleanly, a correct solution passes, planted mistakes are named.

Each planted mistake is written here the way a learner would write it, independently of the
battery's own wrong versions, and must be recognised -- and only it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from lesson_checks import (
    assert_cli_exit_code,
    assert_planted_mistake_named,
    assert_solution_passes,
    assert_stubs_fail_cleanly,
    load_solution,
    replaced,
)

from minivision.checks import check_module

ROOT = Path(__file__).resolve().parents[2]
STUBS = ROOT / "lessons" / "09_training.py"
SOLUTION = Path(__file__).parents[1] / "solutions" / "lesson09_solution.py"


def test_stubs_fail_cleanly():
    assert_stubs_fail_cleanly("09", STUBS, 8)


def test_reference_solution_passes():
    assert_solution_passes("09", 8)


def linear_mean_again(x, weight, grad_output):
    batch = len(x)
    return grad_output @ weight, np.einsum("no,ni->oi", grad_output, x) / batch, grad_output.mean(0)


def relu_ge(x, grad_output):
    out = grad_output.copy()
    out[x < 0] = 0.0
    return out


def relu_derivative_only(x, grad_output):
    return np.heaviside(x, 0.0)


def tied_last_wins(x1, x2, weight, grad_y1, grad_y2):
    grad = None
    for x, g in ((x1, grad_y1), (x2, grad_y2)):
        grad = g.T @ x  # '=' where '+=' belongs
    return grad


def ce_grad(divide="mean", flip=False):
    def f(logits, labels):
        z = np.exp(logits - logits.max(1)[:, None])
        p = z / z.sum(1)[:, None]
        onehot = np.zeros_like(p)
        onehot[np.arange(len(labels)), labels] = 1
        g = (onehot - p) if flip else (p - onehot)
        n = len(labels)
        return {"mean": g / n, "twice": g / n / n, "none": g}[divide]

    return f


def gd_accumulating(x, y, weight, lr, steps):
    w = weight.copy()
    grad = np.zeros_like(w)  # created once, outside the loop
    for _ in range(steps):
        grad += 2 * (x @ w.T - y).T @ x / y.size
        w = w - lr * grad
    return w


def sgd(decay_late=False, damp_first=False, sutskever=False):
    def f(param, grad, buf, lr, momentum=0.9, weight_decay=0.0, nesterov=False):
        g = grad if decay_late else grad + weight_decay * param
        if sutskever:
            v = lr * g if buf is None else momentum * buf + lr * g
            return param - v, v
        if buf is None:
            new_buf = g * (1 - momentum) if damp_first else g.copy()
        else:
            new_buf = momentum * buf + g
        step = (g + momentum * new_buf) if nesterov else new_buf
        if decay_late:
            step = step + weight_decay * param
        return param - lr * step, new_buf

    return f


def adam(correct=True, decay_after_update=False, adamw_as_l2=False, eps_in_root=False):
    def f(
        param,
        grad,
        exp_avg,
        exp_avg_sq,
        step,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        decoupled=False,
    ):
        b1, b2 = betas
        p = param.copy()
        if not decay_after_update:
            if decoupled and not adamw_as_l2:
                p *= 1 - lr * weight_decay
            else:
                grad = grad + weight_decay * param
        m = b1 * exp_avg + (1 - b1) * grad
        v = b2 * exp_avg_sq + (1 - b2) * grad * grad
        mh, vh = (m / (1 - b1**step), v / (1 - b2**step)) if correct else (m, v)
        p = p - lr * mh / (np.sqrt(vh + eps) if eps_in_root else np.sqrt(vh) + eps)
        if decay_after_update:
            p = p - lr * weight_decay * param
        return p, m, v

    return f


def bn(eval_batch=False, biased=False, swapped=False):
    def f(x, weight, bias, running_mean, running_var, training, momentum=0.1, eps=1e-5):
        c = x.shape[1]
        flat = x.transpose(1, 0, 2, 3).reshape(c, -1)  # (C, N*H*W)
        if training or eval_batch:
            mean, var = flat.mean(1), flat.var(1)
        else:
            mean, var = running_mean, running_var
        if training:
            a = 1 - momentum if swapped else momentum
            running_mean = (1 - a) * running_mean + a * mean
            running_var = (1 - a) * running_var + a * (
                flat.var(1) if biased else flat.var(1, ddof=1)
            )
        y = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + eps)
        return y * weight[:, None, None] + bias[:, None, None], running_mean, running_var

    return f


PLANTED = [
    ("linear_backward", linear_mean_again, "dividing by the batch size twice"),
    ("relu_backward", relu_ge, "ReLU's gradient 1 at exactly 0"),
    ("relu_backward", relu_derivative_only, "returning the mask without the upstream gradient"),
    (
        "tied_linear_backward",
        tied_last_wins,
        "overwriting instead of accumulating a shared parameter's gradient",
    ),
    ("softmax_cross_entropy_backward", ce_grad("twice"), "dividing by the batch size twice"),
    ("softmax_cross_entropy_backward", ce_grad("none"), "the gradient of the summed loss"),
    ("softmax_cross_entropy_backward", ce_grad(flip=True), "onehot - softmax (the wrong sign)"),
    ("gradient_descent", gd_accumulating, "forgetting to zero gradients"),
    (
        "sgd_momentum_step",
        sgd(decay_late=True),
        "weight decay applied to the update instead of the gradient",
    ),
    ("sgd_momentum_step", sgd(damp_first=True), "dampening the first step"),
    ("sgd_momentum_step", sgd(sutskever=True), "the learning rate inside the buffer"),
    ("adam_step", adam(correct=False), "Adam's bias correction left out"),
    ("adam_step", adam(decay_after_update=True), "weight decay added after the Adam update"),
    ("adam_step", adam(adamw_as_l2=True), "AdamW's decay put into the gradient (coupled L2)"),
    ("adam_step", adam(eps_in_root=True), "eps inside the square root"),
    ("batchnorm_forward", bn(eval_batch=True), "BatchNorm using batch statistics at eval time"),
    ("batchnorm_forward", bn(biased=True), "the running variance from the biased batch variance"),
    ("batchnorm_forward", bn(swapped=True), "momentum's weights swapped"),
]


@pytest.mark.parametrize("fn,wrong,mistake", PLANTED, ids=[f"{p[0]}-{p[2]}" for p in PLANTED])
def test_planted_mistake_is_recognised(fn, wrong, mistake):
    assert_planted_mistake_named("09", load_solution("09"), fn, wrong, mistake)


def test_the_learner_versions_without_mistakes_are_correct():
    report = check_module(
        "09",
        replaced(
            load_solution("09"),
            softmax_cross_entropy_backward=ce_grad(),
            sgd_momentum_step=sgd(),
            adam_step=adam(),
            batchnorm_forward=bn(),
        ),
    )
    assert report.ok, report.text()


def test_the_checker_does_not_mutate_or_trust_input_arrays():
    def in_place(x, grad_output):
        grad_output[x <= 0] = 0.0
        return grad_output

    report = check_module("09", replaced(load_solution("09"), relu_backward=in_place))
    assert "changed its input array" in report.text()


@pytest.mark.parametrize("path,code", [(STUBS, 1), (SOLUTION, 0)])
def test_command_line_exit_codes(path, code):
    assert_cli_exit_code("09", path, code)
