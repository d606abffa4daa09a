"""`minivision check 08`: stubs fail cleanly, a correct solution passes, planted mistakes are named.

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
STUBS = ROOT / "lessons" / "08_losses.py"
SOLUTION = Path(__file__).parents[1] / "solutions" / "lesson08_solution.py"

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def test_stubs_fail_cleanly():
    assert_stubs_fail_cleanly("08", STUBS, 5)


def test_reference_solution_passes():
    assert_solution_passes("08", 5)


def bce_textbook(x, y):
    p = 1.0 / (1.0 + np.exp(-x))
    return -y * np.log(p) - (1 - y) * np.log(1 - p)


def bce_softplus(x, y):
    return np.log(1 + np.exp(x)) - y * x


def focal(alpha_neg=False, target_blind=False):
    def f(x, y, alpha=0.25, gamma=2.0):
        ls = np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))
        ce = (1 - y) * x - ls
        p = np.exp(ls)
        one_minus = (1 - p) if target_blind else 1 - (p * y + (1 - p) * (1 - y))
        a = alpha * (1 - y) + (1 - alpha) * y if alpha_neg else alpha * y + (1 - alpha) * (1 - y)
        return a * one_minus**gamma * ce

    return f


def sl1(no_beta=False, no_offset=False):
    def f(input, target, beta=1.0):
        z = np.abs(input - target)
        quad = 0.5 * z * z if no_beta else 0.5 * z * z / beta
        lin = z if no_offset else z - beta / 2
        return np.where(z < beta, quad, lin)

    return f


def sl1_grad(flip=False, no_beta=False):
    def f(input, target, beta=1.0):
        d = (target - input) if flip else (input - target)
        return np.where(np.abs(d) < beta, d if no_beta else d / beta, np.sign(d))

    return f


def frcnn(pos_only=False, bg_boxes=False, drop_bg=False, softmax=None, beta=1 / 9):
    """softmax: None (log-sum-exp), "naive" (exp(x)/sum, then log) or "shifted" (max first)."""

    def f(class_logits, box_regression, labels, regression_targets):
        r = labels.shape[0]
        if softmax is None:
            z = class_logits - class_logits.max(1)[:, None]
            logp = z - np.log(np.exp(z).sum(1))[:, None]
        else:
            e = np.exp(
                class_logits if softmax == "naive" else class_logits - class_logits.max(1)[:, None]
            )
            logp = np.log(e / e.sum(1)[:, None])
        nll = -logp[np.arange(r), labels]
        if drop_bg:
            nll = np.where(labels == 0, 0.0, nll)
        cls = nll.mean()
        use = np.ones(r, bool) if bg_boxes else labels > 0
        idx = np.flatnonzero(use)
        pred = box_regression.reshape(r, -1, 4)[idx, labels[idx]]
        box = sl1()(pred, regression_targets[idx], beta).sum()
        return cls, box / (max(int((labels > 0).sum()), 0) if pos_only else r)

    return f


PLANTED = [
    ("binary_cross_entropy_with_logits", bce_textbook, "log(sigmoid(x)) computed naively"),
    ("binary_cross_entropy_with_logits", bce_softplus, "log(1 + exp(x)) overflowing"),
    ("sigmoid_focal_loss", focal(alpha_neg=True), "alpha on the negatives"),
    ("sigmoid_focal_loss", focal(target_blind=True), "a modulating factor that ignores the target"),
    ("smooth_l1_loss", sl1(no_beta=True), "0.5 z^2 without dividing by beta"),
    ("smooth_l1_loss", sl1(no_offset=True), "the linear branch without -beta/2"),
    ("smooth_l1_loss_backward", sl1_grad(flip=True), "the wrong sign of the box gradient"),
    (
        "smooth_l1_loss_backward",
        sl1_grad(no_beta=True),
        "the quadratic branch's gradient without 1/beta",
    ),
    ("fastrcnn_loss", frcnn(pos_only=True), "the box loss averaged over the positives only"),
    ("fastrcnn_loss", frcnn(bg_boxes=True), "background proposals regressed"),
    ("fastrcnn_loss", frcnn(drop_bg=True), "one-hot targets without the background class"),
    ("fastrcnn_loss", frcnn(softmax="naive"), "a softmax without subtracting the row maximum"),
    ("fastrcnn_loss", frcnn(softmax="shifted"), "the log of softmax probabilities"),
    ("fastrcnn_loss", frcnn(beta=1.0), "beta 1 instead of 1/9"),
]


@pytest.mark.parametrize("fn,wrong,mistake", PLANTED, ids=[f"{p[0]}-{p[2]}" for p in PLANTED])
def test_planted_mistake_is_recognised(fn, wrong, mistake):
    assert_planted_mistake_named("08", load_solution("08"), fn, wrong, mistake)


def test_the_learner_versions_without_mistakes_are_correct():
    report = check_module(
        "08",
        replaced(
            load_solution("08"),
            sigmoid_focal_loss=focal(),
            smooth_l1_loss=sl1(),
            smooth_l1_loss_backward=sl1_grad(),
            fastrcnn_loss=frcnn(),
        ),
    )
    assert report.ok, report.text()


@pytest.mark.parametrize("path,code", [(STUBS, 1), (SOLUTION, 0)])
def test_command_line_exit_codes(path, code):
    assert_cli_exit_code("08", path, code)
