"""DeepLab v3 (Chen, Papandreou, Schroff & Adam, 2017): atrous convolution and ASPP.

Pooling buys context at the price of resolution. DeepLab keeps the resolution instead: after
three stride-2 stages (output stride 8) the backbone's later stages *dilate* their 3x3
convolutions (rate 2, then 4) -- the kernel's taps spread ``r`` pixels apart, so the receptive
field grows as if the map had been pooled, but the map keeps its size.

**ASPP** (atrous spatial pyramid pooling) then looks at several scales at once: parallel
branches on the same map -- a 1x1 conv, one 3x3 conv per atrous rate and an *image pooling*
branch (global average, 1x1 conv, broadcast back by bilinear upsampling) -- each conv-BN-ReLU,
concatenated along the channels and projected by a 1x1 conv-BN-ReLU (+ Dropout(0.5)).
:class:`DeepLabHead` follows it with a 3x3 conv-BN-ReLU and a 1x1 conv to the ``K + 1``
logits, which are upsampled bilinearly (``align_corners=False``) to the input's size, as
torchvision's ``DeepLabV3.forward``. :class:`ASPP`, :class:`ASPPConv`, :class:`ASPPPooling`
and :class:`DeepLabHead` have torchvision's children and state_dict keys.

Backward: the branches all read the same map, so their input gradients *add*; the
concatenation's gradient splits along the channels.
"""

from __future__ import annotations

from ..nn import AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Dropout, MaxPool2d, ReLU, Sequential
from ..nn.functional.interpolate import interpolate, interpolate_backward
from ..nn.module import Module
from ._blocks import SeedStream, concat, conv_bn_relu, seed_stream, split_channels
from .base import Segmenter

__all__ = ["ASPPConv", "ASPPPooling", "ASPP", "DeepLabHead", "DeepLabV3"]


class ASPPConv(Sequential):
    """One atrous branch: 3x3 conv with ``padding = dilation = rate`` (no bias), BN, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, dilation: int, *, rng=None):
        seeds = seed_stream(rng)
        super().__init__(
            Conv2d(
                in_channels,
                out_channels,
                3,
                padding=dilation,
                dilation=dilation,
                bias=False,
                rng=seeds(),
            ),  # fmt: skip
            BatchNorm2d(out_channels),
            ReLU(),
        )


class ASPPPooling(Sequential):
    """Image-level features: AdaptiveAvgPool2d(1), 1x1 conv (no bias), BN, ReLU, then bilinear
    upsampling of the ``(1, 1)`` vector back to the input's size (a broadcast)."""

    def __init__(self, in_channels: int, out_channels: int, *, rng=None):
        seeds = seed_stream(rng)
        super().__init__(
            AdaptiveAvgPool2d(1),
            Conv2d(in_channels, out_channels, 1, bias=False, rng=seeds()),
            BatchNorm2d(out_channels),
            ReLU(),
        )

    def forward(self, x):
        size = tuple(x.shape[-2:])
        y = super().forward(x)  # (N, C, 1, 1)
        self._cache = {"y": y, "size": size}
        return interpolate(y, size=size, mode="bilinear", align_corners=False)

    def backward(self, grad_output):
        y, size = self._cached("y", "size")
        g = interpolate_backward(grad_output, y, size=size, mode="bilinear", align_corners=False)
        return super().backward(g)


class ASPP(Module):
    """torchvision's ``ASPP(in_channels, atrous_rates, out_channels=256)``.

    Children: ``convs.0`` (1x1 conv-BN-ReLU), ``convs.1 ...`` (one :class:`ASPPConv` per rate),
    ``convs.-1`` (:class:`ASPPPooling`), ``project`` (1x1 conv ``(len(convs) * C) -> C``, BN,
    ReLU, Dropout(0.5)). ``rng``: an int ``s`` seeds the layers (data-flow order) with ``s,
    s + 1, ...``; a model's :class:`SeedStream` continues its own count.
    """

    def __init__(self, in_channels: int, atrous_rates, out_channels: int = 256, *, rng=None):
        super().__init__()
        seeds = seed_stream(rng)
        rates = tuple(int(r) for r in atrous_rates)
        branches = [Sequential(Conv2d(in_channels, out_channels, 1, bias=False, rng=seeds()),
                               BatchNorm2d(out_channels), ReLU())]  # fmt: skip
        branches += [ASPPConv(in_channels, out_channels, r, rng=seeds) for r in rates]
        branches.append(ASPPPooling(in_channels, out_channels, rng=seeds))
        self.convs = Sequential(*branches)
        self.project = Sequential(
            Conv2d(len(branches) * out_channels, out_channels, 1, bias=False, rng=seeds()),
            BatchNorm2d(out_channels),
            ReLU(),
            Dropout(0.5, rng=seeds()),
        )

    def forward(self, x):
        outs = [branch(x) for branch in self.convs]  # each (N, C, H, W)
        self._cache = {"sizes": [o.shape[1] for o in outs]}
        return self.project(concat(outs))  # (N, C, H, W)

    def backward(self, grad_output):
        (sizes,) = self._cached("sizes")
        parts = split_channels(self.project.backward(grad_output), sizes)
        g = None
        for branch, part in zip(self.convs, parts):  # every branch read x: the gradients add
            gx = branch.backward(part)
            g = gx if g is None else g + gx
        return g


class DeepLabHead(Sequential):
    """torchvision's ``DeepLabHead(in_channels, num_classes, atrous_rates)`` (when
    ``channels=256``): ASPP, 3x3 conv-BN-ReLU, 1x1 conv to ``num_classes``.

    ``aspp=False`` is the ablation: child ``0`` is one plain 3x3 conv-BN-ReLU of the same width
    (a :class:`~minivision.nn.Sequential`, keys ``0.0.weight`` ...) instead of the ASPP.
    """

    def __init__(self, in_channels: int, num_classes: int, atrous_rates=(12, 24, 36),
                 channels: int = 256, *, aspp: bool = True, rng=None):  # fmt: skip
        seeds = seed_stream(rng)
        if aspp:
            first = ASPP(in_channels, atrous_rates, channels, rng=seeds)
        else:
            first = Sequential(Conv2d(in_channels, channels, 3, padding=1, bias=False,
                                      rng=seeds()), BatchNorm2d(channels), ReLU())  # fmt: skip
        super().__init__(
            first,
            Conv2d(channels, channels, 3, padding=1, bias=False, rng=seeds()),
            BatchNorm2d(channels),
            ReLU(),
            Conv2d(channels, num_classes, 1, rng=seeds()),
        )


class DeepLabV3(Segmenter):
    """DeepLab v3 on a small backbone of output stride 8.

    Parameters
    ----------
    classes : sequence of str
    widths : ints (at least four)
        Backbone stages (conv3x3-BN-ReLU twice each): the first three end in a 2x2 max-pool
        (stride 8); stage ``j >= 3`` (0-based) keeps the size and dilates by ``2 ** (j - 2)``.
    atrous_rates : ints
        The ASPP's 3x3 branches' dilation rates (the paper uses 6, 12, 18 at output stride 16;
        our maps are 8x8 for a 64x64 image, so smaller rates).
    aspp_channels : int
        Width of the ASPP branches and the head.
    aspp : bool
        False replaces the ASPP by one 3x3 conv-BN-ReLU of the same width (the ablation).
    seed : int

    Shapes: ``x`` (N, 3, H, W), H and W multiples of 8 -> logits (N, K + 1, H, W). Children:
    ``backbone`` (a Sequential of stages) and ``classifier`` (:class:`DeepLabHead`), as
    torchvision's ``DeepLabV3``.
    """

    output_stride = 8

    def __init__(self, classes=("square", "circle", "triangle"), *, widths=(16, 32, 64, 64),
                 atrous_rates=(2, 4, 6), aspp_channels=32, aspp=True, seed=0):  # fmt: skip
        super().__init__(classes)
        widths = tuple(int(w) for w in widths)
        if len(widths) < 4 or min(widths) < 1:
            raise ValueError(f"widths must be at least four positive ints, got {widths!r}")
        self.widths, self.atrous_rates = widths, tuple(int(r) for r in atrous_rates)
        self.aspp_channels, self.aspp = int(aspp_channels), bool(aspp)
        seeds, stages, c_in = SeedStream(seed), [], 3
        for j, c in enumerate(widths):
            d = 1 if j < 3 else 2 ** (j - 2)  # stride 2, 2, 2, then dilation 2, 4, ...
            layers = conv_bn_relu(c_in, c, seeds, dilation=d)
            layers += conv_bn_relu(c, c, seeds, dilation=d)
            stages.append(Sequential(*layers, MaxPool2d(2)) if j < 3 else Sequential(*layers))
            c_in = c
        self.backbone = Sequential(*stages)
        self.classifier = DeepLabHead(widths[-1], self.num_outputs, self.atrous_rates,
                                      self.aspp_channels, aspp=self.aspp, rng=seeds)  # fmt: skip

    def forward(self, x):
        self.check_input(x)
        size = tuple(x.shape[-2:])
        y = self.classifier(self.backbone(x))  # (N, K + 1, H/8, W/8)
        self._cache = {"y": y, "size": size}
        return interpolate(y, size=size, mode="bilinear", align_corners=False)

    def backward(self, grad_output):
        y, size = self._cached("y", "size")
        g = interpolate_backward(grad_output, y, size=size, mode="bilinear", align_corners=False)
        return self.backbone.backward(self.classifier.backward(g))

    def extra_repr(self):
        return (f"classes={self.classes}, widths={self.widths}, atrous_rates={self.atrous_rates}, "
                f"aspp_channels={self.aspp_channels}, aspp={self.aspp}")  # fmt: skip
