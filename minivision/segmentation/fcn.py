"""Fully convolutional networks (Long, Shelhamer & Darrell, CVPR 2015): FCN-32s, -16s and -8s.

A classifier becomes a segmenter when its fully connected layers become convolutions: a 1x1
convolution is a fully connected layer applied at every position, so the network no longer
fixes the input size and returns a *map* of class scores, one per ``32 x 32`` cell of the image.

    backbone          pool3 (/8) --- pool4 (/16) --- pool5 (/32)
    FCN-32s           score = head(pool5)                                 -> upsample x32
    FCN-16s           score = up2(head(pool5)) + score_pool4(pool4)        -> upsample x16
    FCN-8s            score = up2(that) + score_pool3(pool3)               -> upsample x8

``head`` is torchvision's :class:`FCNHead` (3x3 conv, BN, ReLU, dropout, 1x1 conv to the K + 1
classes). The skips' 1x1 score layers start at **zero** (the paper: the network starts as the
coarser one and learns what the finer layer adds); the 2x up-sampling layers ``up2`` are
transposed convolutions *initialised* to bilinear interpolation (:func:`minivision.nn.init.
bilinear_`) and then learned; the final up-sampling is a transposed convolution with the
bilinear kernel that stays *fixed* (not a parameter), as in the paper.

Cropping: the paper pads the first convolution by 100 pixels so that any input size survives
VGG's valid convolutions, and crops each map to align it with the next (the offsets 5, 9 and 31
of ``fcn.berkeleyvision.org``); lesson 15's exercise does that arithmetic. Here every convolution
is padded to keep its map's size, so when the stride divides the input all maps line up and no
crop is needed: ``H`` and ``W`` must be multiples of 32.
"""

from __future__ import annotations

from .._backend import array_namespace
from ..nn import Conv2d, ConvTranspose2d, Dropout, MaxPool2d, Module, Parameter, Sequential, init
from ..nn.functional.conv import conv2d
from ..nn.functional.conv_transpose import conv_transpose2d
from ._blocks import conv_bn_relu, seed_stream, widths_tuple
from .base import Segmenter

__all__ = ["FCNHead", "FCNBackbone", "FCN"]


class FCNHead(Sequential):
    """torchvision's ``FCNHead(in_channels, channels)``: the classifier on the last feature map.

    ``Conv2d(C, C // 4, 3, padding=1, bias=False) -> BatchNorm2d -> ReLU -> Dropout(0.1) ->
    Conv2d(C // 4, channels, 1)``; keys ``0.weight``, ``1.*``, ``4.weight``, ``4.bias`` as
    torchvision's. ``rng``: an integer seed (layer ``i`` draws from ``1000 * rng + i``), a
    Generator or None.
    """

    def __init__(self, in_channels: int, channels: int, *, rng=None):
        seeds = seed_stream(rng)
        inter = in_channels // 4
        super().__init__(
            *conv_bn_relu(in_channels, inter, seeds),
            Dropout(0.1, rng=next(seeds)),
            Conv2d(inter, channels, 1, rng=next(seeds)),
        )


class FCNBackbone(Module):
    """Five stages of ``conv-BN-ReLU x 2 -> 2x2 max-pool``: maps at strides 2, 4, 8, 16, 32.

    ``forward(x)`` returns ``(pool3, pool4, pool5)``, the maps the FCN variants read;
    ``backward(g3, g4, g5)`` takes a gradient for each (None = no gradient) and returns the
    input gradient: a map read twice (by the next stage and by a skip) receives the *sum*.
    """

    def __init__(self, widths=(16, 32, 64, 64, 128), *, seeds):
        super().__init__()
        self.widths = widths_tuple(widths, 5)
        c_in = 3
        for i, c in enumerate(self.widths, start=1):
            stage = Sequential(*conv_bn_relu(c_in, c, seeds), *conv_bn_relu(c, c, seeds),
                               MaxPool2d(2))  # fmt: skip
            setattr(self, f"stage{i}", stage)
            c_in = c

    def forward(self, x):
        h = self.stage2(self.stage1(x))  # (N, C2, H/4, W/4)
        pool3 = self.stage3(h)  # (N, C3, H/8, W/8)
        pool4 = self.stage4(pool3)  # (N, C4, H/16, W/16)
        pool5 = self.stage5(pool4)  # (N, C5, H/32, W/32)
        return pool3, pool4, pool5

    def backward(self, grad_pool3, grad_pool4, grad_pool5):
        g = self.stage5.backward(grad_pool5)
        g = g if grad_pool4 is None else g + grad_pool4  # pool4 feeds stage5 and the skip
        g = self.stage4.backward(g)
        g = g if grad_pool3 is None else g + grad_pool3
        return self.stage1.backward(self.stage2.backward(self.stage3.backward(g)))


def _bilinear_up2(channels: int, seeds) -> ConvTranspose2d:
    """A learned 2x up-sampling: ``ConvTranspose2d(C, C, 4, stride=2, padding=1)``, bilinear start."""
    up = ConvTranspose2d(channels, channels, 4, stride=2, padding=1, bias=False, rng=next(seeds))
    init.bilinear_(up.weight)
    return up


class FCN(Segmenter):
    """FCN-32s, -16s or -8s on :class:`FCNBackbone`.

    Parameters
    ----------
    classes : sequence of str
        Names of labels 1..K (label 0 is the background).
    variant : {"32s", "16s", "8s"}
        The stride of the finest map the score is fused from.
    widths : five ints
        Channels of the backbone's stages.
    seed : int
        Initialisation: layer ``i`` draws from ``1000 * seed + i``.

    Shapes: ``x`` (N, 3, H, W), H and W multiples of 32 -> logits (N, K + 1, H, W).
    """

    output_stride = 32

    def __init__(self, classes=("square", "circle", "triangle"), *, variant: str = "8s",
                 widths=(16, 32, 64, 64, 128), seed: int = 0):  # fmt: skip
        super().__init__(classes)
        if variant not in ("32s", "16s", "8s"):
            raise ValueError(f"variant must be '32s', '16s' or '8s', got {variant!r}")
        self.variant = variant
        seeds = seed_stream(seed)
        k = self.num_classes
        self.backbone = FCNBackbone(widths, seeds=seeds)
        w = self.backbone.widths
        self.head = FCNHead(w[4], k, rng=next(seeds))
        if variant in ("16s", "8s"):
            self.up2_pool5 = _bilinear_up2(k, seeds)
            self.score_pool4 = Conv2d(w[3], k, 1, rng=next(seeds))
            init.zeros_(self.score_pool4.weight)
            init.zeros_(self.score_pool4.bias)
        if variant == "8s":
            self.up2_pool4 = _bilinear_up2(k, seeds)
            self.score_pool3 = Conv2d(w[2], k, 1, rng=next(seeds))
            init.zeros_(self.score_pool3.weight)
            init.zeros_(self.score_pool3.bias)
        self.factor = int(variant[:-1])  # the final, fixed up-sampling
        like = self.head[4].weight.data
        xp = array_namespace(like)
        kernel = Parameter(xp.zeros((k, 1, 2 * self.factor, 2 * self.factor), dtype=like.dtype))
        # (K + 1, 1, 2f, 2f), depthwise: a buffer, so no optimiser moves it and no state_dict
        # holds it (torch's transcription builds the same kernel)
        self.register_buffer("upsample_kernel", init.bilinear_(kernel).data, persistent=False)

    def _upsample_args(self):
        return dict(stride=self.factor, padding=self.factor // 2, groups=self.num_classes)

    def forward(self, x):
        self.check_input(x)
        pool3, pool4, pool5 = self.backbone(x)
        score = self.head(pool5)  # (N, K + 1, H/32, W/32)
        if self.variant in ("16s", "8s"):
            score = self.up2_pool5(score) + self.score_pool4(pool4)  # (N, K + 1, H/16, W/16)
        if self.variant == "8s":
            score = self.up2_pool4(score) + self.score_pool3(pool3)  # (N, K + 1, H/8, W/8)
        self._cache = {"score": score}
        return conv_transpose2d(score, self.upsample_kernel, None,
                                **self._upsample_args())  # (N, K + 1, H, W)  # fmt: skip

    def backward(self, grad_output):
        self._cached("score")
        # the adjoint of the fixed transposed convolution is the convolution with its kernel
        g = conv2d(grad_output, self.upsample_kernel, None, **self._upsample_args())
        grad_pool3 = grad_pool4 = None
        if self.variant == "8s":
            grad_pool3 = self.score_pool3.backward(g)  # the sum splits: each addend gets g
            g = self.up2_pool4.backward(g)
        if self.variant in ("16s", "8s"):
            grad_pool4 = self.score_pool4.backward(g)
            g = self.up2_pool5.backward(g)
        return self.backbone.backward(grad_pool3, grad_pool4, self.head.backward(g))
