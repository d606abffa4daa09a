"""Fully convolutional networks (Long, Shelhamer & Darrell, CVPR 2015): FCN-32s, 16s and 8s.

A classifier becomes a segmenter when its fully connected layers become 1x1 convolutions: the
network then maps an image of any size to a coarse *map* of class scores, here at 1/32 of the
input (five stages, each halving the resolution with a 2x2 max-pool). Three ways back to full
resolution, the paper's three variants:

* **FCN-32s** upsamples the ``/32`` scores 32x in one step, a transposed convolution with a
  fixed bilinear kernel (:class:`FixedBilinearUpsample`) -- coarse, blobby maps;
* **FCN-16s** first upsamples them 2x with a *learned* transposed convolution (initialised to
  bilinear interpolation), adds a 1x1 "score" layer read from ``pool4`` (``/16``, finer), and
  upsamples that sum 16x;
* **FCN-8s** does it once more with ``pool3`` (``/8``) and upsamples 8x.

The score layers on ``pool4`` and ``pool3`` start at zero (as the paper), so a freshly built
FCN-8s predicts exactly what FCN-32s would; training then learns to use the finer maps. The
scores at ``/32`` come from torchvision's :class:`FCNHead` (3x3 conv ``C -> C // 4``, BN, ReLU,
Dropout(0.1), 1x1 conv to ``K + 1``).

Differences from the paper: the convolutions are padded ("same" size), so when the stride 32
divides the input every map lines up and no crop is needed (the paper pads the image by 100
and crops each skip at offsets 5, 9 and 31 -- the lesson's exercise), and each convolution is
followed by BatchNorm. The backward pass is the forward in reverse; the skips' gradients *add*
(``s16 = up(s32) + score4`` sends ``g`` to both terms).
"""

from __future__ import annotations

from ..nn import BatchNorm2d, Conv2d, Dropout, MaxPool2d, ReLU, Sequential, init
from ._blocks import FixedBilinearUpsample, SeedStream, bilinear_up2, conv_bn_relu, seed_stream
from .base import Segmenter

__all__ = ["FCNHead", "FCNBackbone", "FCN"]

_VARIANTS = ("32s", "16s", "8s")


class FCNHead(Sequential):
    """torchvision's ``FCNHead(in_channels, channels)``: 3x3 conv ``in -> in // 4`` (no bias),
    BatchNorm, ReLU, Dropout(0.1), 1x1 conv ``-> channels``. Same children and state_dict keys
    (``0.weight``, ``1.running_mean``, ``4.bias``, ...). ``rng`` seeds the 3x3 conv, the
    dropout masks and the 1x1 conv: an int ``s`` gives them ``s``, ``s + 1``, ``s + 2``; a
    model's :class:`SeedStream` its next three seeds."""

    def __init__(self, in_channels: int, channels: int, *, rng=None):
        inter = in_channels // 4
        seeds = seed_stream(rng)
        super().__init__(
            Conv2d(in_channels, inter, 3, padding=1, bias=False, rng=seeds()),
            BatchNorm2d(inter),
            ReLU(),
            Dropout(0.1, rng=seeds()),
            Conv2d(inter, channels, 1, rng=seeds()),
        )


class FCNBackbone(Sequential):
    """Five stages ``(conv3x3-BN-ReLU) x convs -> MaxPool2d(2)``: stride 2, 4, 8, 16, 32.

    ``forward(x)`` returns the outputs of the last three stages, ``(pool3, pool4, pool5)`` at
    ``/8``, ``/16`` and ``/32``; ``backward((g3, g4, g5))`` (None for an unused one) sums what
    each stage receives: its skip's gradient plus what flows back from the stage above.
    """

    def __init__(self, widths, seeds: SeedStream, *, convs=(1, 1, 2, 2, 2)):
        stages, c_in = [], 3
        for c, n in zip(widths, convs):
            layers = []
            for _ in range(n):
                layers += conv_bn_relu(c_in, c, seeds)
                c_in = c
            stages.append(Sequential(*layers, MaxPool2d(2)))
        super().__init__(*stages)

    def forward(self, x):
        feats = []
        for stage in self:
            x = stage(x)
            feats.append(x)
        return tuple(feats[-3:])  # pool3 (/8), pool4 (/16), pool5 (/32)

    def backward(self, grads):
        stages = list(self)
        g = None
        for i in range(len(stages) - 1, -1, -1):
            skip = i - (len(stages) - 3)  # index into grads for the last three stages
            if skip >= 0 and grads[skip] is not None:
                g = grads[skip] if g is None else g + grads[skip]
            g = stages[i].backward(g)
        return g


class FCN(Segmenter):
    """FCN-32s, FCN-16s or FCN-8s on a small VGG-like backbone.

    Parameters
    ----------
    classes : sequence of str
        The ``K`` object classes; the network outputs ``K + 1`` channels (0 = background).
    variant : "32s", "16s" or "8s"
    widths : five ints
        The backbone stages' widths (``widths[-1] // 4`` is the head's hidden width).
    seed : int
        Layer ``i`` (data-flow order) is initialised from seed ``1000 * seed + i``.

    Shapes: ``x`` (N, 3, H, W), H and W multiples of 32 -> logits (N, K + 1, H, W).
    Children (state_dict keys, as :func:`minivision.bench.torch_segmenters.torch_fcn`):
    ``backbone``, ``head``, and per variant ``upscore2`` / ``score_pool4`` (16s, 8s),
    ``upscore_pool4`` / ``score_pool3`` (8s); the fixed final ``upscore`` saves nothing.
    """

    output_stride = 32

    def __init__(self, classes=("square", "circle", "triangle"), *, variant="8s",
                 widths=(16, 32, 64, 64, 128), seed=0):  # fmt: skip
        super().__init__(classes)
        if variant not in _VARIANTS:
            raise ValueError(f"variant must be one of {_VARIANTS}, got {variant!r}")
        widths = tuple(int(w) for w in widths)
        if len(widths) != 5 or min(widths) < 4:
            raise ValueError(f"widths must be five ints >= 4, got {widths!r}")
        self.variant, self.widths = variant, widths
        seeds, k1 = SeedStream(seed), self.num_outputs
        self.backbone = FCNBackbone(widths, seeds)
        self.head = FCNHead(widths[4], k1, rng=seeds)
        if variant in ("16s", "8s"):
            self.upscore2 = bilinear_up2(k1, seeds)  # learned, starts bilinear
            self.score_pool4 = _zero_score(widths[3], k1, seeds)
        if variant == "8s":
            self.upscore_pool4 = bilinear_up2(k1, seeds)
            self.score_pool3 = _zero_score(widths[2], k1, seeds)
        self.upscore = FixedBilinearUpsample(k1, {"32s": 32, "16s": 16, "8s": 8}[variant])

    def forward(self, x):
        self.check_input(x)
        pool3, pool4, pool5 = self.backbone(x)
        score = self.head(pool5)  # (N, K+1, H/32, W/32)
        if self.variant in ("16s", "8s"):
            score = self.upscore2(score) + self.score_pool4(pool4)  # (N, K+1, H/16, W/16)
        if self.variant == "8s":
            score = self.upscore_pool4(score) + self.score_pool3(pool3)  # (N, K+1, H/8, W/8)
        return self.upscore(score)  # (N, K+1, H, W)

    def backward(self, grad_output):
        g = self.upscore.backward(grad_output)
        g3 = g4 = None
        if self.variant == "8s":  # s8 = up(s16) + score3(pool3): both terms receive g
            g3 = self.score_pool3.backward(g)
            g = self.upscore_pool4.backward(g)
        if self.variant in ("16s", "8s"):
            g4 = self.score_pool4.backward(g)
            g = self.upscore2.backward(g)
        g5 = self.head.backward(g)
        return self.backbone.backward((g3, g4, g5))

    def extra_repr(self):
        return f"variant={self.variant!r}, classes={self.classes}, widths={self.widths}"


def _zero_score(c_in, c_out, seeds):
    """A 1x1 score layer that starts at zero (weight and bias), as FCN's skips."""
    conv = Conv2d(c_in, c_out, 1, rng=seeds())
    init.zeros_(conv.weight)
    init.zeros_(conv.bias)
    return conv
