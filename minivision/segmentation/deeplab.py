"""DeepLab v3 (Chen, Papandreou, Schroff & Adam, 2017): atrous convolution and ASPP.

Pooling buys a large receptive field and loses resolution. An *atrous* (dilated) convolution
buys the receptive field without the loss: a 3x3 kernel with dilation ``r`` reads the pixels
``r`` apart, so it covers ``(2r + 1)^2`` pixels with 9 weights, and the map keeps its size. The
backbone here stops striding at 1/8 (``output_stride = 8``) and dilates its last stages by 2
and 4 instead -- the receptive field grows as if it had kept pooling.

*Atrous spatial pyramid pooling* (ASPP) then looks at each position at several scales at once:

    x -> [ 1x1 conv | 3x3 conv rate r1 | ... | 3x3 conv rate rn | image pooling ] -> concat
      -> 1x1 conv (project) -> BN -> ReLU -> Dropout(0.5)

each branch conv-BN-ReLU; the *image pooling* branch averages the whole map to one vector
(global context: "is there a circle anywhere?"), maps it with a 1x1 conv and spreads it back over
the map (bilinear up-sampling of a 1x1 map, i.e. a copy to every position). :class:`ASPP` and
:class:`DeepLabHead` are torchvision's modules (``torchvision.models.segmentation.deeplabv3``),
same structure and ``state_dict`` names; ``DeepLabHead(..., channels=256)`` is torchvision's
exactly. :class:`DeepLabV3` up-samples the stride-8 logits to the input size bilinearly
(``align_corners=False``), as torchvision's ``DeepLabV3.forward``.
"""

from __future__ import annotations

from .._backend import array_namespace
from ..nn import AdaptiveAvgPool2d, Conv2d, Dropout, MaxPool2d, Module, Sequential
from ..nn.functional.interpolate import interpolate, interpolate_backward
from ._blocks import conv_bn_relu, seed_stream, widths_tuple
from .base import Segmenter

__all__ = ["ASPPPooling", "ASPP", "DeepLabHead", "DeepLabBackbone", "DeepLabV3"]


class ASPPPooling(Sequential):
    """Image pooling: ``AdaptiveAvgPool2d(1) -> 1x1 conv -> BN -> ReLU``, then back to the map's
    size (torchvision's ``ASPPPooling``)."""

    def __init__(self, in_channels: int, out_channels: int, *, seeds):
        super().__init__(AdaptiveAvgPool2d(1), *conv_bn_relu(in_channels, out_channels, seeds,
                                                             kernel_size=1))  # fmt: skip

    def forward(self, x):
        pooled = super().forward(x)  # (N, C, 1, 1)
        self._size = tuple(x.shape[-2:])
        self._pooled = pooled
        return interpolate(pooled, size=self._size, mode="bilinear", align_corners=False)

    def backward(self, grad_output):
        g = interpolate_backward(grad_output, self._pooled, size=self._size, mode="bilinear",
                                 align_corners=False)  # fmt: skip
        return super().backward(g)


class ASPP(Module):
    """torchvision's ``ASPP(in_channels, atrous_rates, out_channels=256)``.

    ``convs.0`` the 1x1 branch, ``convs.1 .. convs.n`` one atrous 3x3 branch per rate,
    ``convs.n+1`` the image pooling; ``project`` the 1x1 fusion with dropout 0.5.
    Shapes: (N, C_in, H, W) -> (N, out_channels, H, W).
    """

    def __init__(self, in_channels: int, atrous_rates, out_channels: int = 256, *, rng=None):
        super().__init__()
        seeds = seed_stream(rng)
        rates = tuple(int(r) for r in atrous_rates)
        if not rates or min(rates) < 1:
            raise ValueError(f"atrous_rates must be positive integers, got {atrous_rates!r}")
        branches = [conv_bn_relu(in_channels, out_channels, seeds, kernel_size=1)]
        branches += [conv_bn_relu(in_channels, out_channels, seeds, dilation=r) for r in rates]
        branches.append(ASPPPooling(in_channels, out_channels, seeds=seeds))
        self.convs = Sequential(*branches)  # a list of branches, not a chain
        self.project = Sequential(
            *conv_bn_relu(len(branches) * out_channels, out_channels, seeds, kernel_size=1),
            Dropout(0.5, rng=next(seeds)),
        )
        self.out_channels = out_channels

    def forward(self, x):
        xp = array_namespace(x)
        branches = [branch(x) for branch in self.convs]  # each (N, out, H, W)
        return self.project(xp.concat(branches, axis=1))  # (N, out, H, W)

    def backward(self, grad_output):
        g = self.project.backward(grad_output)  # (N, branches * out, H, W)
        c = self.out_channels
        grad = None
        for i, branch in enumerate(self.convs):  # every branch read x: their gradients add
            gi = branch.backward(g[:, i * c:(i + 1) * c])
            grad = gi if grad is None else grad + gi
        return grad


class DeepLabHead(Sequential):
    """torchvision's ``DeepLabHead``: ASPP -> 3x3 conv-BN-ReLU -> 1x1 conv to the classes.

    ``channels`` is ASPP's and the 3x3 conv's width (torchvision fixes it at 256).
    """

    def __init__(self, in_channels: int, num_classes: int, atrous_rates=(12, 24, 36), *,
                 channels: int = 256, rng=None):  # fmt: skip
        seeds = seed_stream(rng)
        super().__init__(
            ASPP(in_channels, atrous_rates, channels, rng=next(seeds)),
            *conv_bn_relu(channels, channels, seeds),
            Conv2d(channels, num_classes, 1, rng=next(seeds)),
        )


class DeepLabBackbone(Module):
    """Stages of ``conv-BN-ReLU x 2``: three end in a 2x2 max-pool (stride 8), the rest keep the
    size and dilate their convolutions instead (rates 2, 4, ...): ``output_stride = 8``."""

    def __init__(self, widths=(16, 32, 64, 64), *, seeds):
        super().__init__()
        self.widths = widths_tuple(widths)
        if len(self.widths) < 3:
            raise ValueError(f"widths must hold at least 3 stages, got {widths!r}")
        c_in = 3
        for i, c in enumerate(self.widths):
            d = 1 if i < 3 else 2 ** (i - 2)
            layers = [*conv_bn_relu(c_in, c, seeds, dilation=d), *conv_bn_relu(c, c, seeds, dilation=d)]
            setattr(self, f"stage{i + 1}", Sequential(*layers, *([MaxPool2d(2)] if i < 3 else [])))
            c_in = c

    def forward(self, x):
        for i in range(len(self.widths)):
            x = getattr(self, f"stage{i + 1}")(x)
        return x  # (N, C_last, H/8, W/8)

    def backward(self, grad_output):
        for i in reversed(range(len(self.widths))):
            grad_output = getattr(self, f"stage{i + 1}").backward(grad_output)
        return grad_output


class DeepLabV3(Segmenter):
    """A small DeepLab v3: :class:`DeepLabBackbone` (stride 8) -> :class:`DeepLabHead` -> bilinear
    up-sampling to the input size.

    Parameters
    ----------
    classes : sequence of str
    widths : ints
        Backbone stages (three pooled, the rest dilated).
    atrous_rates : ints
        ASPP's rates, for a map 8 times smaller than the image (torchvision's (12, 24, 36) are
        for 65 x 65 maps of 513 x 513 images).
    aspp_channels : int
        Width of ASPP and the head.
    aspp : bool
        False replaces ASPP by one 3x3 conv-BN-ReLU of the same width: the ablation that shows
        what the pyramid adds.
    seed : int
    """

    output_stride = 8

    def __init__(self, classes=("square", "circle", "triangle"), *, widths=(16, 32, 64, 64),
                 atrous_rates=(2, 4, 6), aspp_channels: int = 32, aspp: bool = True,
                 seed: int = 0):  # fmt: skip
        super().__init__(classes)
        seeds = seed_stream(seed)
        self.backbone = DeepLabBackbone(widths, seeds=seeds)
        c = self.backbone.widths[-1]
        if aspp:
            self.classifier = DeepLabHead(c, self.num_classes, atrous_rates,
                                          channels=aspp_channels, rng=next(seeds))  # fmt: skip
        else:
            self.classifier = Sequential(
                *conv_bn_relu(c, aspp_channels, seeds), *conv_bn_relu(aspp_channels, aspp_channels, seeds),
                Conv2d(aspp_channels, self.num_classes, 1, rng=next(seeds)),
            )  # fmt: skip
        self.aspp = bool(aspp)

    def forward(self, x):
        self.check_input(x)
        logits = self.classifier(self.backbone(x))  # (N, K + 1, H/8, W/8)
        self._cache = {"logits": logits, "size": tuple(x.shape[-2:])}
        return interpolate(logits, size=self._cache["size"], mode="bilinear", align_corners=False)

    def backward(self, grad_output):
        logits, size = self._cached("logits", "size")
        g = interpolate_backward(grad_output, logits, size=size, mode="bilinear",
                                 align_corners=False)  # fmt: skip
        return self.backbone.backward(self.classifier.backward(g))
