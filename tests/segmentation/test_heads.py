"""torchvision's segmentation heads -- ``FCNHead``, ``ASPP`` and ``DeepLabHead`` -- against ours
with the same weights: outputs, the input gradient, every parameter gradient and BatchNorm's
running statistics, in training and eval mode, on every backend.

Training mode keeps the dropout (FCNHead's p = 0.1, ASPP's p = 0.5): both sides use the same
mask, recorded from torch and replayed in ours (tests/segmentation/conftest.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.models.segmentation import deeplabv3 as tv_deeplab
from torchvision.models.segmentation import fcn as tv_fcn

from minivision.segmentation import ASPP, ASPPConv, ASPPPooling, DeepLabHead, FCNHead

MODES = [pytest.param(True, id="train"), pytest.param(False, id="eval")]


def _x(shape, seed=1):
    """A float32-representable float64 input."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32).astype(np.float64)


@pytest.mark.parametrize("training", MODES)
def test_fcn_head_matches_torchvision(be, no_sync, training, seg_compare, seg_randomise):
    torch.manual_seed(0)
    ref = seg_randomise(tv_fcn.FCNHead(16, 4))
    ours = FCNHead(16, 4, rng=0)
    assert list(ours.state_dict()) == list(ref.state_dict())
    seg_compare(ours, ref, _x((3, 16, 6, 5)), training=training, be=be, what="FCNHead")


@pytest.mark.parametrize("training", MODES)
@pytest.mark.parametrize("out_channels", [256, 12])
def test_aspp_matches_torchvision(be, no_sync, training, out_channels, seg_compare, seg_randomise):
    torch.manual_seed(1)
    ref = seg_randomise(tv_deeplab.ASPP(8, (1, 2, 3), out_channels))
    ours = ASPP(8, (1, 2, 3), out_channels, rng=0)
    assert list(ours.state_dict()) == list(ref.state_dict())
    seg_compare(ours, ref, _x((2, 8, 7, 6)), training=training, be=be, what="ASPP")


@pytest.mark.parametrize("training", MODES)
def test_deeplab_head_matches_torchvision(be, no_sync, training, seg_compare, seg_randomise):
    torch.manual_seed(2)
    ref = seg_randomise(tv_deeplab.DeepLabHead(8, 4, (2, 3)))
    ours = DeepLabHead(8, 4, (2, 3), rng=0)
    assert list(ours.state_dict()) == list(ref.state_dict())
    seg_compare(ours, ref, _x((2, 8, 6, 6)), training=training, be=be, what="DeepLabHead")


@pytest.mark.parametrize("training", MODES)
def test_aspp_branches_match_torchvision(training, seg_compare, seg_randomise):
    """The two branch types on their own: the atrous conv and the image-pooling broadcast."""
    torch.manual_seed(3)
    x = _x((3, 5, 6, 7))
    seg_compare(ASPPConv(5, 6, 2), seg_randomise(tv_deeplab.ASPPConv(5, 6, 2)), x,
                training=training, what="ASPPConv")  # fmt: skip
    seg_compare(ASPPPooling(5, 6), seg_randomise(tv_deeplab.ASPPPooling(5, 6)), x,
                training=training, what="ASPPPooling")  # fmt: skip


def test_aspp_pooling_needs_two_samples_in_training_as_torch():
    """BatchNorm over a (1, C, 1, 1) map in training has one value per channel: both raise."""
    x = _x((1, 5, 4, 4))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        tv_deeplab.ASPPPooling(5, 6).train()(torch.from_numpy(x).float())
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        ASPPPooling(5, 6).train()(x.astype(np.float32))


def test_deeplab_head_without_aspp_is_a_plain_conv_block():
    head = DeepLabHead(8, 4, (2, 3), 16, aspp=False)
    assert [k for k in head.state_dict() if k.startswith("0.")] == [
        "0.0.weight", "0.1.weight", "0.1.bias", "0.1.running_mean", "0.1.running_var",
        "0.1.num_batches_tracked",
    ]  # fmt: skip
    assert tuple(head.state_dict()["0.0.weight"].shape) == (16, 8, 3, 3)
