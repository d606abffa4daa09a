"""``minivision.segmentation`` -- semantic segmentation networks (lesson 15).

Each network maps ``(N, 3, H, W)`` images to ``(N, K + 1, H, W)`` logits (channel 0 = the
background) and back by hand (``backward``); :meth:`Segmenter.predict` gives class maps of
images of any size.

* :class:`FCN` -- FCN-32s / 16s / 8s: 1x1 score layers, learned 2x transposed convolutions
  initialised bilinear, skip fusions by addition, a fixed bilinear final upsampling
  (:class:`FixedBilinearUpsample`) (Long et al. 2015); :class:`FCNHead` is torchvision's;
* :class:`UNet` -- encoder-decoder with concatenated skips (Ronneberger et al. 2015);
* :class:`DeepLabV3` -- dilated backbone (output stride 8), :class:`ASPP` and
  :class:`DeepLabHead` as torchvision's (Chen et al. 2017);
* :class:`SegNet` -- decoder unpooling with the encoder's max-pool indices (Badrinarayanan
  et al. 2017);
* :mod:`~minivision.segmentation.losses` -- the soft Dice loss :func:`dice_loss` and its
  backward (per-pixel cross-entropy is :func:`minivision.nn.losses.cross_entropy` on
  ``(N, C, H, W)`` logits and ``(N, H, W)`` targets).
"""

from . import losses
from ._blocks import FixedBilinearUpsample
from .base import Segmenter
from .deeplab import ASPP, ASPPConv, ASPPPooling, DeepLabHead, DeepLabV3
from .fcn import FCN, FCNBackbone, FCNHead
from .losses import dice_loss, dice_loss_backward
from .segnet import SegNet
from .unet import UNet

__all__ = [
    "Segmenter",
    "FCN",
    "FCNBackbone",
    "FCNHead",
    "FixedBilinearUpsample",
    "UNet",
    "DeepLabV3",
    "DeepLabHead",
    "ASPP",
    "ASPPConv",
    "ASPPPooling",
    "SegNet",
    "losses",
    "dice_loss",
    "dice_loss_backward",
]
