"""U-Net (Ronneberger, Fischer & Brox, MICCAI 2015): an encoder-decoder with concatenated skips.

The encoder halves the map and doubles the channels at each level; the decoder climbs back with
2x2 transposed convolutions, and at each level *concatenates* the encoder's map of that size to
what it up-sampled, so the fine "where" of the encoder meets the coarse "what" of the bottom:

    level 1 (C1, H)    ---------------------------------- concat -> double conv -> 1x1 -> logits
      level 2 (C2, H/2)   -------------------- concat -> double conv -> up
        ...                                    up
          bottom (C_L, H / 2^(L-1)) -> double conv

Each "double conv" is two 3x3 conv-BN-ReLU. The paper's convolutions are unpadded, so its maps
shrink and each skip is cropped to the decoder's size (572 -> 388 pixels); here they are padded
(size kept), the skips need no crop, and ``H``, ``W`` must be multiples of ``2^(L-1)``. The
concatenation's backward *splits* the gradient along the channels: the first ``C`` channels go
back to the skip, the rest to the up-sampling path.
"""

from __future__ import annotations

from .._backend import array_namespace
from ..nn import Conv2d, ConvTranspose2d, MaxPool2d, Sequential
from ._blocks import conv_bn_relu, seed_stream, widths_tuple
from .base import Segmenter

__all__ = ["UNet"]


def _double_conv(c_in, c_out, seeds):
    return Sequential(*conv_bn_relu(c_in, c_out, seeds), *conv_bn_relu(c_out, c_out, seeds))


class UNet(Segmenter):
    """U-Net with ``len(widths)`` levels (the last is the bottom).

    Parameters
    ----------
    classes : sequence of str
    widths : ints
        Channels of each level, top to bottom, e.g. (16, 32, 64, 128).
    seed : int

    Keys: ``down{i}`` (double convs of the encoder, ``i = 1..L``; ``down{L}`` is the bottom),
    ``up{i}`` (the transposed conv from level ``i + 1`` to ``i``), ``dec{i}`` (the decoder's
    double conv at level ``i``), ``out`` (the 1x1 classifier).
    """

    def __init__(self, classes=("square", "circle", "triangle"), *, widths=(16, 32, 64, 128),
                 seed: int = 0):  # fmt: skip
        super().__init__(classes)
        self.widths = w = widths_tuple(widths)
        if len(w) < 2:
            raise ValueError(f"widths must hold at least 2 levels, got {widths!r}")
        self.output_stride = 2 ** (len(w) - 1)
        seeds = seed_stream(seed)
        c_in = 3
        for i, c in enumerate(w, start=1):  # encoder, top to bottom
            setattr(self, f"down{i}", _double_conv(c_in, c, seeds))
            c_in = c
        for i in reversed(range(1, len(w))):  # decoder, bottom to top
            setattr(self, f"up{i}", ConvTranspose2d(w[i], w[i - 1], 2, stride=2, rng=next(seeds)))
            setattr(self, f"dec{i}", _double_conv(2 * w[i - 1], w[i - 1], seeds))
        self.out = Conv2d(w[0], self.num_classes, 1, rng=next(seeds))
        self._pools = [MaxPool2d(2) for _ in range(len(w) - 1)]  # one cache per level (no weights)

    def forward(self, x):
        self.check_input(x)
        xp = array_namespace(x)
        levels = len(self.widths)
        skips = []
        h = x
        for i in range(1, levels + 1):
            h = getattr(self, f"down{i}")(h)  # (N, C_i, H / 2^(i-1), ...)
            if i < levels:
                skips.append(h)
                h = self._pools[i - 1](h)
        for i in reversed(range(1, levels)):
            up = getattr(self, f"up{i}")(h)  # (N, C_i, ...) at level i's size
            h = getattr(self, f"dec{i}")(xp.concat([skips[i - 1], up], axis=1))
        return self.out(h)  # (N, K + 1, H, W)

    def backward(self, grad_output):
        levels = len(self.widths)
        g = self.out.backward(grad_output)
        grad_skips = {}
        for i in range(1, levels):  # decoder in reverse: top to bottom
            g = getattr(self, f"dec{i}").backward(g)  # (N, 2 C_i, ...)
            c = self.widths[i - 1]
            grad_skips[i] = g[:, :c]  # the concatenation splits its gradient
            g = getattr(self, f"up{i}").backward(g[:, c:])
        for i in reversed(range(1, levels + 1)):  # encoder in reverse: bottom to top
            g = getattr(self, f"down{i}").backward(g)
            if i > 1:  # level i - 1's map went to the pool *and* the skip: the gradients add
                g = self._pools[i - 2].backward(g) + grad_skips[i - 1]
        return g
