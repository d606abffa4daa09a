"""Lesson 08 battery: detection losses (BCE, focal, smooth L1 and its gradient, Fast R-CNN).

The expected values come from minivision.nn.losses (pinned to torch / torchvision by the tests).
The mistakes are the classic ones: log(sigmoid(x)) computed naively (inf/NaN for large logits)
or log(1 + e^x) overflowing, the focal loss's alpha on the wrong class or its modulating
factor blind to the target, smooth L1 without the 1/beta or the -beta/2 offset, the box
gradient with the wrong sign or without 1/beta, and in the Fast R-CNN loss: the box loss
averaged over the positives only, background proposals regressed, one-hot targets without the
background class, a softmax without the max subtraction or the log taken of rounded
probabilities, and beta 1 instead of 1/9.
"""

from __future__ import annotations

import numpy as np

from ..detection.losses import fastrcnn_loss
from ..nn import losses as L
from ._core import Battery, Case, FunctionBattery, Mistake

# ----------------------------------------------------------------------------- references


def _bce(x, y):
    return L.binary_cross_entropy_with_logits(x, y, reduction="none")


def _focal(x, y, alpha=0.25, gamma=2.0):
    return L.sigmoid_focal_loss(x, y, alpha, gamma, reduction="none")


def _sl1(input, target, beta=1.0):
    return L.smooth_l1_loss(input, target, reduction="none", beta=beta)


def _sl1_backward(input, target, beta=1.0):
    return L.smooth_l1_loss_backward(input, target, reduction="none", beta=beta)


# ----------------------------------------------------------------------------- inputs

_rng = np.random.default_rng(8)
MODERATE_X = np.round(_rng.normal(0, 3, 12), 3)
MODERATE_Y = (_rng.uniform(size=12) < 0.4).astype(float)
SOFT_Y = np.round(_rng.uniform(size=12), 2)
BIG_X = np.array([-100.0, 100.0, -100.0, 100.0, -40.0, 40.0])
BIG_Y = np.array([0.0, 0.0, 1.0, 1.0, 0.5, 0.5])
HUGE_X = np.array([-1000.0, 1000.0, -1000.0, 1.0])
HUGE_Y = np.array([1.0, 1.0, 0.0, 0.0])

Z_IN = np.round(_rng.normal(0, 0.6, (6, 4)), 3)
Z_TARGET = np.round(_rng.normal(0, 0.6, (6, 4)), 3)
Z_IN[0, 0], Z_TARGET[0, 0] = 0.75, 0.25  # |z| exactly 0.5 (= beta in one case)


def _rcnn(r=10, k1=4, seed=0, scale=2.0, positives=True):
    rng = np.random.default_rng(seed)
    logits = np.round(rng.normal(0, scale, (r, k1)), 3)
    reg = np.round(rng.normal(0, 0.3, (r, 4 * k1)), 3)
    labels = rng.integers(1, k1, r) * (rng.uniform(size=r) < 0.4) if positives else np.zeros(r)
    targets = np.round(rng.normal(0, 0.3, (r, 4)), 3)
    return logits, reg, labels.astype(np.int64), targets


def _large_logits():
    """Row 0: its own class at logit 800 (exp overflows); row 1: its class 910 below the row's
    maximum (its probability underflows to 0). The log-sum-exp handles both."""
    logits, reg, labels, targets = _rcnn(seed=1)
    logits[0], labels[0] = [800.0, 0.0, 0.0, 0.0], 0
    logits[1], labels[1] = [0.0, 900.0, -10.0, 5.0], 2
    return logits, reg, labels, targets


# ----------------------------------------------------------------------------- mistakes


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _bce_naive(x, y):
    s = _sigmoid(x)
    return -(y * np.log(s) + (1 - y) * np.log(1 - s))


def _bce_overflow(x, y):
    return np.log1p(np.exp(x)) - x * y


def _focal_with(alpha_swapped=False, blind=False):
    def focal(x, y, alpha=0.25, gamma=2.0):
        p = _sigmoid(x)
        ce = _bce(x, y)
        p_t = p * y + (1 - p) * (1 - y)
        factor = (1 - p) ** gamma if blind else (1 - p_t) ** gamma
        a = (
            (1 - alpha) * y + alpha * (1 - y)
            if alpha_swapped
            else alpha * y + (1 - alpha) * (1 - y)
        )
        return a * ce * factor

    return focal


def _sl1_no_beta(input, target, beta=1.0):
    z = np.abs(input - target)
    return np.where(z < beta, 0.5 * z**2, z - 0.5 * beta)


def _sl1_no_offset(input, target, beta=1.0):
    z = np.abs(input - target)
    return np.where(z < beta, 0.5 * z**2 / beta, z)


def _sl1_grad_wrong_sign(input, target, beta=1.0):
    return -_sl1_backward(input, target, beta)


def _sl1_grad_no_beta(input, target, beta=1.0):
    d = input - target
    return np.where(np.abs(d) < beta, d, np.sign(d))


def _fastrcnn_with(
    positives_only=False, regress_background=False, no_bg_class=False, probs=None, beta=1 / 9
):
    """The Fast R-CNN loss with one mistake; ``probs`` = "no max" or "max": log of softmax."""

    def fastrcnn_loss(class_logits, box_regression, labels, regression_targets):
        r, k1 = class_logits.shape
        with np.errstate(all="ignore"):
            if probs is None:
                m = class_logits.max(1, keepdims=True)
                logp = class_logits - m - np.log(np.exp(class_logits - m).sum(1, keepdims=True))
            else:
                e = np.exp(
                    class_logits - (class_logits.max(1, keepdims=True) if probs == "max" else 0)
                )
                logp = np.log(e / e.sum(1, keepdims=True))
        onehot = np.eye(k1)[labels]
        if no_bg_class:
            onehot[:, 0] = 0.0
        cls = -(onehot * logp).sum() / r if probs is None else -logp[np.arange(r), labels].mean()
        rows = np.arange(r) if regress_background else np.flatnonzero(labels > 0)
        picked = box_regression.reshape(r, k1, 4)[rows, labels[rows]]
        box = _sl1(picked, regression_targets[rows], beta).sum()
        with np.errstate(all="ignore"):
            box = box / (np.count_nonzero(labels > 0) if positives_only else r)
        return np.asarray(cls), np.asarray(box)

    return fastrcnn_loss


NAIVE = (
    "log(sigmoid(x)) computed naively",
    "sigmoid(100) rounds to exactly 1, so log(1 - sigmoid(x)) is -inf; use "
    "(1 - y) x - log_sigmoid(x) with log_sigmoid(x) = min(x, 0) - log1p(exp(-|x|))",
)

BATTERY = Battery(
    lesson="08",
    title="lesson 08, detection losses",
    functions=[
        FunctionBattery(
            "binary_cross_entropy_with_logits",
            _bce,
            [
                Case("twelve moderate logits, hard targets", (MODERATE_X, MODERATE_Y)),
                Case("twelve moderate logits, soft targets", (MODERATE_X, SOFT_Y)),
                Case("logits +-100 and +-40", (BIG_X, BIG_Y)),
                Case("logits +-1000", (HUGE_X, HUGE_Y)),
            ],
            [
                Mistake(*NAIVE, _bce_naive),
                Mistake(
                    "log(1 + exp(x)) overflowing",
                    "exp(1000) overflows to inf; write log(1 + e^x) as max(x, 0) + log1p(e^-|x|)",
                    _bce_overflow,
                ),
            ],
            rtol=1e-9,
        ),
        FunctionBattery(
            "sigmoid_focal_loss",
            _focal,
            [
                Case("twelve logits, hard targets, alpha 0.25, gamma 2", (MODERATE_X, MODERATE_Y)),
                Case(
                    "soft targets, alpha 0.4, gamma 1.5",
                    (MODERATE_X, SOFT_Y),
                    dict(alpha=0.4, gamma=1.5),
                ),
                Case("logits +-100 and +-40", (BIG_X, BIG_Y)),
            ],
            [
                Mistake(
                    "alpha on the negatives",
                    "alpha weighs the positives (alpha y + (1 - alpha)(1 - y)); with alpha = 0.25 "
                    "the rare positives get *less* weight, because the modulating factor already "
                    "down-weights the easy negatives",
                    _focal_with(alpha_swapped=True),
                ),
                Mistake(
                    "a modulating factor that ignores the target",
                    "the factor is (1 - p_t)^gamma with p_t = p for positives and 1 - p for "
                    "negatives: it shrinks the loss of *well-classified* examples",
                    _focal_with(blind=True),
                ),
            ],
        ),
        FunctionBattery(
            "smooth_l1_loss",
            _sl1,
            [
                Case("beta 1", (Z_IN * 3, Z_TARGET * 3), dict(beta=1.0)),
                Case(
                    "small differences, beta 1/18",
                    (Z_IN / 9, Z_TARGET / 9),
                    dict(beta=1 / 18),
                ),
                Case("beta 0.5, one |z| exactly beta", (Z_IN, Z_TARGET), dict(beta=0.5)),
            ],
            [
                Mistake(
                    "0.5 z^2 without dividing by beta",
                    "the quadratic branch is 0.5 z^2 / beta, so that both branches meet with "
                    "slope 1 at |z| = beta",
                    _sl1_no_beta,
                ),
                Mistake(
                    "the linear branch without -beta/2",
                    "the linear branch is |z| - 0.5 beta; without the offset the loss jumps at "
                    "|z| = beta",
                    _sl1_no_offset,
                ),
            ],
        ),
        FunctionBattery(
            "smooth_l1_loss_backward",
            _sl1_backward,
            [
                Case("beta 1", (Z_IN * 3, Z_TARGET * 3), dict(beta=1.0)),
                Case("beta 0.5, one |z| exactly beta", (Z_IN, Z_TARGET), dict(beta=0.5)),
            ],
            [
                Mistake(
                    "the wrong sign of the box gradient",
                    "d/d(input) of |input - target| is sign(input - target): a prediction above "
                    "its target gets a positive gradient (gradient descent then lowers it)",
                    _sl1_grad_wrong_sign,
                ),
                Mistake(
                    "the quadratic branch's gradient without 1/beta",
                    "inside |z| < beta the gradient is z / beta",
                    _sl1_grad_no_beta,
                ),
            ],
        ),
        FunctionBattery(
            "fastrcnn_loss",
            lambda *a: fastrcnn_loss(*a),
            [
                Case("10 proposals, 3 classes + background", _rcnn()),
                Case("logits of 800 and 900", _large_logits()),
                Case("no positive proposal", _rcnn(seed=2, positives=False)),
            ],
            [
                Mistake(
                    "the box loss averaged over the positives only",
                    "torchvision divides the summed smooth-L1 by the number of *all* sampled "
                    "proposals (labels.numel()), so no positives gives 0, not 0/0",
                    _fastrcnn_with(positives_only=True),
                ),
                Mistake(
                    "background proposals regressed",
                    "only proposals with label > 0 have a box target; background rows get no box "
                    "loss",
                    _fastrcnn_with(regress_background=True),
                ),
                Mistake(
                    "one-hot targets without the background class",
                    "background (label 0) is a class like the others: its row's loss is -log p_0",
                    _fastrcnn_with(no_bg_class=True),
                ),
                Mistake(
                    "a softmax without subtracting the row maximum",
                    "exp(x) overflows for x > 709; compute log p = x - max - log sum exp(x - max)",
                    _fastrcnn_with(probs="no max"),
                ),
                Mistake(
                    "the log of softmax probabilities",
                    "a probability of exp(-800) rounds to 0 and its log is -inf; take the log "
                    "analytically: log p = x - max - log sum exp(x - max)",
                    _fastrcnn_with(probs="max"),
                ),
                Mistake(
                    "beta 1 instead of 1/9",
                    "Fast R-CNN's box loss in torchvision uses smooth L1 with beta = 1/9",
                    _fastrcnn_with(beta=1.0),
                ),
            ],
        ),
    ],
)
