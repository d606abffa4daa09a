"""The soft Dice loss against a torch autograd transcription of its formula (written here),
and the per-pixel cross-entropy of a segmenter's logits against torch's F.cross_entropy.

The reference, with ``p = softmax(logits, dim=1)``, ``y`` the one-hot target and ``m`` the mask
of kept pixels, sums over the batch and every pixel:

    D_c = (2 sum m p_c y_c + eps) / (sum m p_c + sum m y_c + eps),    loss_c = 1 - D_c

"mean" and "sum" run over the classes present in the (kept) target; "none" is every class.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_backend, assert_close

from minivision._backend import to_numpy
from minivision.nn.losses import cross_entropy, cross_entropy_backward
from minivision.segmentation import dice_loss, dice_loss_backward


def torch_dice(logits, target, ignore_index=None, eps=1.0, reduction="mean"):
    c = logits.shape[1]
    p = torch.softmax(logits, dim=1)
    keep = (
        torch.ones_like(target, dtype=torch.bool)
        if ignore_index is None
        else target != ignore_index
    )
    m = keep.to(logits.dtype).unsqueeze(1)
    y = F.one_hot(torch.where(keep, target, 0).clamp(0, c - 1), c).movedim(-1, 1).to(logits.dtype)
    y = y * m
    dims = (0, *range(2, logits.ndim))
    inter = (p * m * y).sum(dims)
    total = (p * m).sum(dims) + y.sum(dims)
    loss = 1 - (2 * inter + eps) / (total + eps)
    if reduction == "none":
        return loss
    present = y.sum(dims) > 0
    return loss[present].sum() if reduction == "sum" else loss[present].mean()


def _tol(be):
    return dict(rtol=1e-10, atol=1e-12) if be.name == "numpy" else dict(rtol=2e-4, atol=2e-5)


CASES = {
    "plain": dict(),
    "ignore": dict(ignore_index=255),
    "eps0": dict(eps=0.0),
    "eps-small+ignore": dict(eps=1e-3, ignore_index=255),
}


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("shape", [(2, 4, 6, 5), (3, 3, 7)])
def test_dice_loss_matches_the_torch_transcription(be, no_sync, shape, case, reduction):
    kw = CASES[case]
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 2).astype(np.float32).astype(np.float64)
    t = rng.integers(0, shape[1] - 1, (shape[0], *shape[2:]))  # the last class is absent
    if "ignore_index" in kw:
        t.flat[::3] = 255
    xb, tb = be.asarray(x), be.asarray(t, "int64")
    got = dice_loss(xb, tb, reduction=reduction, **kw)
    xt = torch.tensor(x, requires_grad=True)
    ref = torch_dice(xt, torch.from_numpy(t), reduction=reduction, **kw)
    assert_backend(got, be)
    assert_close(got, ref.detach().numpy(), what=f"dice {case}", check_dtype=False, **_tol(be))
    up = None if reduction != "none" else rng.standard_normal(shape[1])
    ref.backward(torch.ones_like(ref) if up is None else torch.from_numpy(up))
    g = dice_loss_backward(xb, tb, reduction=reduction, grad_output=None if up is None
                           else be.asarray(up), **kw)  # fmt: skip
    assert_backend(g, be)
    assert_close(g, xt.grad.numpy(), what=f"dice grad {case}", check_dtype=False, **_tol(be))


def test_dice_loss_scaled_upstream_and_limits():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 4, 4))
    t = rng.integers(0, 3, (2, 4, 4))
    g1 = dice_loss_backward(x, t)
    assert_close(dice_loss_backward(x, t, grad_output=np.asarray(2.5)), 2.5 * g1, rtol=1e-14)
    # a confident, correct prediction has (almost) no Dice loss
    onehot = np.moveaxis(np.eye(3)[t], -1, 1) * 50.0
    assert float(dice_loss(onehot, t, eps=0.0)) < 1e-12
    # every pixel ignored: no class present, the mean is NaN (as cross-entropy's)
    with np.errstate(invalid="ignore"):
        assert math.isnan(float(dice_loss(x, np.full((2, 4, 4), 7), ignore_index=7)))


def test_dice_loss_bad_input():
    x, t = np.zeros((2, 3, 4, 4)), np.zeros((2, 4, 4), int)
    with pytest.raises(ValueError, match="target"):
        dice_loss(x, np.zeros((2, 4), int))
    with pytest.raises(ValueError, match="target"):
        dice_loss(x, np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="logits"):
        dice_loss(np.zeros(3), np.zeros((), int))
    with pytest.raises(TypeError, match="logits"):
        dice_loss(np.zeros((2, 3, 4, 4), int), t)
    with pytest.raises(ValueError, match="reduction"):
        dice_loss(x, t, reduction="avg")
    with pytest.raises(ValueError, match="eps"):
        dice_loss(x, t, eps=-1)
    with pytest.raises(ValueError, match="grad_output"):
        dice_loss_backward(x, t, reduction="none", grad_output=np.ones(4))


@pytest.mark.parametrize("kw", [{}, {"ignore_index": 255}, {"label_smoothing": 0.1}])
def test_per_pixel_cross_entropy_of_a_segmenter(be, no_sync, kw):
    """(N, K + 1, H, W) logits with (N, H, W) maps, as the segmenters train."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 4, 8, 8)).astype(np.float32).astype(np.float64)
    t = rng.integers(0, 4, (2, 8, 8))
    t[0, :2] = 255
    xb, tb = be.asarray(x), be.asarray(t, "int64")
    xt = torch.tensor(x, requires_grad=True)
    ii = kw.get("ignore_index", -100)
    if ii == -100:
        t = np.where(t == 255, 0, t)
        tb = be.asarray(t, "int64")
    ref = F.cross_entropy(xt, torch.from_numpy(t), **kw)
    ref.backward()
    assert_close(cross_entropy(xb, tb, **kw), ref.detach().numpy(), what="CE",
                 check_dtype=False, **_tol(be))  # fmt: skip
    g = cross_entropy_backward(xb, tb, **kw)
    assert_close(to_numpy(g), xt.grad.numpy(), what="CE grad", check_dtype=False, **_tol(be))
