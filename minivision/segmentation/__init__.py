"""``minivision.segmentation`` -- semantic segmentation networks, trained on Shapes (lesson 15).

Every pixel gets a class. The networks are fully convolutional (any input size their output
stride divides) and share one API (:class:`~minivision.segmentation.base.Segmenter`):

* :mod:`~minivision.segmentation.fcn` -- FCN-32s / 16s / 8s: 1x1 score layers, bilinear
  transposed convolutions and skip fusion (Long et al. 2015);
* :mod:`~minivision.segmentation.unet` -- U-Net: concatenated skips (Ronneberger et al. 2015);
* :mod:`~minivision.segmentation.deeplab` -- DeepLab v3: atrous convolutions and ASPP (Chen et
  al. 2017);
* :mod:`~minivision.segmentation.segnet` -- SegNet: max-unpooling with the encoder's indices
  (Badrinarayanan et al. 2017);
* :mod:`~minivision.segmentation.losses` -- the soft Dice loss (the per-pixel cross-entropy is
  :func:`minivision.nn.losses.cross_entropy` on ``(N, C, H, W)`` logits);
* :mod:`~minivision.segmentation.recipes` -- their training on Shapes and their scores.
"""

from .base import Segmenter
from .deeplab import ASPP, ASPPPooling, DeepLabHead, DeepLabV3
from .fcn import FCN, FCNBackbone, FCNHead
from .losses import dice_loss, dice_loss_backward
from .segnet import SegNet
from .unet import UNet

__all__ = [
    "Segmenter",
    "FCN",
    "FCNBackbone",
    "FCNHead",
    "UNet",
    "ASPP",
    "ASPPPooling",
    "DeepLabHead",
    "DeepLabV3",
    "SegNet",
    "dice_loss",
    "dice_loss_backward",
]
