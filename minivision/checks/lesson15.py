"""Lesson 15 battery: bilinear up-sampling kernel, FCN's skip fusion, ASPP, dataset mIoU.

The expected values come from minivision: :func:`minivision.nn.init.bilinear_` (FCN's
``upsample_filt``), :func:`~minivision.nn.functional.conv_transpose.conv_transpose2d` and
:func:`~minivision.nn.functional.conv.conv2d` (pinned to torch by the nn tests) and
:func:`minivision.eval.evaluate_segmentation` (pinned to torchmetrics and scikit-learn). The
mistakes are the classic ones: an up-sampling kernel that is not the bilinear tent (a constant
or box kernel, the tent centred wrongly, channels mixed), the skip's crop offset off by one or
centred, the atrous rate ignored, the image-pooling branch max-pooled or the branches' ReLU left
out, mIoU averaged per image, the background class left out, absent classes counted as 0.
"""

from __future__ import annotations

import numpy as np

from ..eval import evaluate_segmentation
from ..nn import Parameter, init
from ..nn.functional.conv import conv2d
from ..nn.functional.conv_transpose import conv_transpose2d
from ._core import Battery, Case, FunctionBattery, Mistake

# ----------------------------------------------------------------------------- references


def _bilinear(channels, factor, *, centre=None, mix=False, box=False, ones=False):
    k = 2 * factor - factor % 2
    w = np.zeros((channels, channels, k, k))
    if ones:
        return np.ones_like(w)
    if centre is None and not box:
        base = init.bilinear_(Parameter(w.copy())).data
    else:
        f = (k + 1) // 2
        m = (f - 1 if k % 2 == 1 else f - 0.5) if centre is None else centre(f)
        tent = np.abs(np.arange(k) - m) < f / 2 if box else np.clip(1 - np.abs(np.arange(k) - m) / f, 0, None)
        base = np.zeros_like(w)
        base[np.arange(channels), np.arange(channels)] = np.outer(tent, tent)
    if mix:
        base = np.broadcast_to(base[np.arange(channels), np.arange(channels)][0], w.shape).copy()
    return base


def _bilinear_kernel(channels, factor):
    return _bilinear(channels, factor)


def _fusion(coarse, skip, weight, offset, *, shift=0, centred=False):
    up = conv_transpose2d(coarse, weight, None, stride=2)  # (N, K, 2h + 2, 2w + 2)
    hu, wu = up.shape[-2:]
    if centred:
        top, left = (skip.shape[2] - hu) // 2, (skip.shape[3] - wu) // 2
    else:
        top = left = offset + shift
    return up + skip[:, :, top:top + hu, left:left + wu]


def _fcn_skip_fusion(coarse, skip, weight, offset):
    return _fusion(coarse, skip, weight, offset)


def _aspp(x, w_1x1, w_atrous, rates, w_pool, w_project, *, no_dilation=False, max_pool=False,
          branch_relu=True):  # fmt: skip
    act = (lambda a: np.maximum(a, 0)) if branch_relu else (lambda a: a)
    branches = [act(conv2d(x, w_1x1))]
    for w, r in zip(w_atrous, rates):
        d = 1 if no_dilation else int(r)
        branches.append(act(conv2d(x, w, None, 1, d, d)))
    pooled = x.max(axis=(2, 3), keepdims=True) if max_pool else x.mean(axis=(2, 3), keepdims=True)
    branches.append(np.broadcast_to(act(conv2d(pooled, w_pool)), branches[0].shape))
    return np.maximum(conv2d(np.concatenate(branches, axis=1), w_project), 0)


def _aspp_forward(x, w_1x1, w_atrous, rates, w_pool, w_project):
    return _aspp(x, w_1x1, w_atrous, rates, w_pool, w_project)


def _mean_iou(pred, target, num_classes):
    return float(evaluate_segmentation(pred, target, num_classes).dataset.mean_iou)


def _miou_per_image(pred, target, num_classes):
    return float(evaluate_segmentation(pred, target, num_classes).per_image_mean.mean_iou)


def _miou_without_background(pred, target, num_classes):
    iou = evaluate_segmentation(pred, target, num_classes).dataset.class_iou[1:]
    return float(np.nanmean(iou))


def _miou_absent_as_zero(pred, target, num_classes):
    iou = evaluate_segmentation(pred, target, num_classes).dataset.class_iou
    return float(np.nan_to_num(iou, nan=0.0).mean())


# ----------------------------------------------------------------------------- cases

_rng = np.random.default_rng(15)
COARSE = _rng.standard_normal((2, 3, 3, 4))
SKIP = _rng.standard_normal((2, 3, 22, 24))  # the centred crop starts at 7, not at 5 or 1
UP = _bilinear(3, 2) + 0.05 * _rng.standard_normal((3, 3, 4, 4))  # a learned, near-bilinear layer
X = _rng.standard_normal((2, 4, 7, 9))
W1 = _rng.standard_normal((3, 4, 1, 1))
WA = [_rng.standard_normal((3, 4, 3, 3)) for _ in range(2)]
WP = _rng.standard_normal((3, 4, 1, 1))
WPROJ = _rng.standard_normal((3, 12, 1, 1))
X_POS = np.abs(X) + 0.1  # all-positive input: max and mean pooling differ, ReLUs matter less
# two images: class 1 fills most of image 0, class 3 a few pixels of image 1, class 2 never
TARGET = np.zeros((2, 8, 8), dtype=np.int64)
TARGET[0, 1:7, 1:7] = 1
TARGET[1, 0:2, 0:2] = 3
PRED = TARGET.copy()
PRED[0, 1:7, 5:7] = 0
PRED[1, 0:1, 0:2] = 0
PRED[1, 6:8, 6:8] = 1
RANDOM_TARGET = _rng.integers(0, 4, (3, 10, 10))
RANDOM_PRED = np.where(_rng.random((3, 10, 10)) < 0.7, RANDOM_TARGET, _rng.integers(0, 4, (3, 10, 10)))

_NOT_BILINEAR = (
    "an up-sampling kernel that is not the bilinear tent",
    "FCN initialises its transposed convolutions to bilinear interpolation, not randomly or "
    "with a constant: each tap is (1 - |u - m| / f)(1 - |v - m| / f) with f = (k + 1) // 2",
)

BATTERY = Battery(
    lesson="15",
    title="lesson 15, semantic segmentation",
    functions=[
        FunctionBattery(
            "bilinear_kernel",
            _bilinear_kernel,
            [Case("2 channels, factor 2", (2, 2)), Case("3 channels, factor 4", (3, 4)),
             Case("1 channel, factor 3 (odd kernel)", (1, 3)),
             Case("2 channels, factor 8", (2, 8))],  # fmt: skip
            [
                Mistake(*_NOT_BILINEAR, lambda c, f: _bilinear(c, f, ones=True)),
                Mistake(
                    "a box kernel (nearest-neighbour up-sampling)",
                    "a box of ones copies each value to an f x f block (nearest); bilinear "
                    "weighs each tap by its distance from the centre: a tent",
                    lambda c, f: _bilinear(c, f, box=True),
                ),
                Mistake(
                    "the tent centred at f - 1 for an even kernel",
                    "an even kernel (2f taps) has its centre between two taps, at f - 0.5; "
                    "f - 1 is the centre of an odd one",
                    lambda c, f: _bilinear(c, f, centre=lambda ff: ff - 1),
                ),
                Mistake(
                    "every channel up-sampling every other channel",
                    "channel c maps to channel c only: weight[c, o] is the tent when o == c and "
                    "zero otherwise, or the channels are summed into each other",
                    lambda c, f: _bilinear(c, f, mix=True),
                ),
            ],
            rtol=1e-12,
        ),
        FunctionBattery(
            "fcn_skip_fusion",
            _fcn_skip_fusion,
            [Case("offset 5 (FCN-16s)", (COARSE, SKIP, UP, 5)),
             Case("offset 1", (COARSE, SKIP, UP, 1)),
             Case("offset 0, one image", (COARSE[:1], SKIP[:1, :, :8, :10], UP, 0))],  # fmt: skip
            [
                Mistake(
                    "the crop offset off by one (one too far)",
                    "crop rows and columns offset .. offset + size - 1 of the skip: its slice "
                    "starts at index offset, not offset + 1",
                    lambda c, s, w, o: _fusion(c, s, w, o, shift=1),
                ),
                Mistake(
                    "the crop offset off by one (one too early)",
                    "crop rows and columns offset .. offset + size - 1 of the skip: its slice "
                    "starts at index offset, not offset - 1",
                    lambda c, s, w, o: _fusion(c, s, w, o, shift=-1),
                ),
                Mistake(
                    "a centred crop instead of the given offset",
                    "the offset follows from the network's padding and strides (5 for FCN's "
                    "pool4, 9 for pool3), not from centring the two maps",
                    lambda c, s, w, o: _fusion(c, s, w, o, centred=True),
                ),
            ],
            rtol=1e-10,
        ),
        FunctionBattery(
            "aspp_forward",
            _aspp_forward,
            [Case("rates 2 and 3", (X, W1, WA, (2, 3), WP, WPROJ)),
             Case("positive input, rates 1 and 4", (X_POS, W1, WA, (1, 4), WP, WPROJ))],  # fmt: skip
            [
                Mistake(
                    "the atrous rate ignored (dilation 1)",
                    "an atrous branch reads pixels rate apart: dilation = padding = rate",
                    lambda *a: _aspp(*a, no_dilation=True),
                ),
                Mistake(
                    "max instead of mean in the image-pooling branch",
                    "the image-level branch is a global *average* pooling",
                    lambda *a: _aspp(*a, max_pool=True),
                ),
                Mistake(
                    "the branches' ReLU left out",
                    "every branch is conv -> (BN) -> ReLU before the concatenation",
                    lambda *a: _aspp(*a, branch_relu=False),
                ),
            ],
            rtol=1e-10,
        ),
        FunctionBattery(
            "mean_iou",
            _mean_iou,
            [Case("two images, a small class in one", (PRED, TARGET, 4)),
             Case("random maps", (RANDOM_PRED, RANDOM_TARGET, 4)),
             Case("perfect prediction", (TARGET, TARGET, 4))],  # fmt: skip
            [
                Mistake(
                    "mIoU averaged per image",
                    "count TP, FP and FN over every pixel of the data set first (one confusion "
                    "matrix), then divide: a per-image mean lets a few pixels weigh as much as "
                    "a whole image",
                    _miou_per_image,
                ),
                Mistake(
                    "the background class left out",
                    "class 0 is a class like the others: include it in the mean",
                    _miou_without_background,
                ),
                Mistake(
                    "an absent class counted as IoU 0",
                    "a class in neither map has no IoU (0 / 0): leave it out of the mean",
                    _miou_absent_as_zero,
                ),
            ],
            rtol=1e-10,
        ),
    ],
)
