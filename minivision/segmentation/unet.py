"""U-Net (Ronneberger, Fischer & Brox, MICCAI 2015): an encoder-decoder with concatenated skips.

The encoder is a stack of levels, each a *double convolution* (3x3 conv-BN-ReLU twice) followed
by a 2x2 max-pool, so level ``l`` sees the image at ``1 / 2**l``. The decoder climbs back: at
each level it upsamples the coarser map 2x with a learned ``ConvTranspose2d(c', c, 2,
stride=2)``, **concatenates** the encoder's map of that level along the channels ``[skip,
up]``, and mixes the two with another double convolution; a final 1x1 convolution gives the
``K + 1`` logits. The skips hand the decoder the fine detail the pooling threw away, and the
concatenation (rather than FCN's sum) lets it learn how to combine them.

Differences from the paper: padded convolutions (``padding=1``) keep every map's size, so the
skips need no cropping and the output has the input's size (the paper's valid convolutions
shrink each map and crop the skip to the centre, giving a smaller output), BatchNorm after each
convolution, and much smaller widths. The total stride is ``2 ** (len(widths) - 1)``.

Backward: the concatenation's gradient *splits* along the channels, the skip's part adds to
what flows back into that encoder level from below.
"""

from __future__ import annotations

from ..nn import Conv2d, ConvTranspose2d, MaxPool2d, Sequential
from ._blocks import SeedStream, concat, conv_bn_relu, split_channels
from .base import Segmenter

__all__ = ["UNet"]


def double_conv(c_in: int, c_out: int, seeds: SeedStream) -> Sequential:
    """3x3 conv-BN-ReLU twice: children ``0, 1, 2`` and ``3, 4, 5``."""
    return Sequential(*conv_bn_relu(c_in, c_out, seeds), *conv_bn_relu(c_out, c_out, seeds))


class UNet(Segmenter):
    """U-Net with ``len(widths)`` levels.

    Parameters
    ----------
    classes : sequence of str
    widths : ints
        The levels' widths, finest first (at least two).
    seed : int
        Layer ``i`` (data-flow order) is initialised from seed ``1000 * seed + i``.

    Shapes: ``x`` (N, 3, H, W), H and W multiples of ``2 ** (len(widths) - 1)`` -> logits
    (N, K + 1, H, W). Children: ``encoder.l`` (double convs), ``ups.j`` and ``decoder.j`` (the
    ``j``-th decoder step, coarsest first), ``classifier`` (the 1x1 conv).
    """

    def __init__(self, classes=("square", "circle", "triangle"), *, widths=(16, 32, 64, 128),
                 seed=0):  # fmt: skip
        super().__init__(classes)
        widths = tuple(int(w) for w in widths)
        if len(widths) < 2 or min(widths) < 1:
            raise ValueError(f"widths must be at least two positive ints, got {widths!r}")
        self.widths = widths
        self.output_stride = 2 ** (len(widths) - 1)
        seeds, c_in = SeedStream(seed), 3
        encoder = []
        for c in widths:
            encoder.append(double_conv(c_in, c, seeds))
            c_in = c
        self.encoder = Sequential(*encoder)
        self.pools = Sequential(*[MaxPool2d(2) for _ in widths[:-1]])
        ups, decoder = [], []
        for level in range(len(widths) - 2, -1, -1):  # coarsest decoder step first
            c, c_below = widths[level], widths[level + 1]
            ups.append(ConvTranspose2d(c_below, c, 2, stride=2, rng=seeds()))
            decoder.append(double_conv(2 * c, c, seeds))  # [skip (c), up (c)] -> c
        self.ups, self.decoder = Sequential(*ups), Sequential(*decoder)
        self.classifier = Conv2d(widths[0], self.num_outputs, 1, rng=seeds())

    def forward(self, x):
        self.check_input(x)
        skips = []
        for level, block in enumerate(self.encoder):
            x = block(x)  # (N, widths[level], H / 2**level, W / 2**level)
            if level < len(self.widths) - 1:
                skips.append(x)
                x = self.pools[level](x)
        self._cache = {"sizes": []}
        for j, (up, block) in enumerate(zip(self.ups, self.decoder)):
            skip = skips[-1 - j]
            u = up(x)  # (N, c, 2h, 2w): the skip's size
            self._cache["sizes"].append((skip.shape[1], u.shape[1]))
            x = block(concat([skip, u]))
        return self.classifier(x)  # (N, K + 1, H, W)

    def backward(self, grad_output):
        (sizes,) = self._cached("sizes")
        g = self.classifier.backward(grad_output)
        grad_skips = []
        for j in range(len(self.decoder) - 1, -1, -1):  # finest decoder step first
            g_skip, g_up = split_channels(self.decoder[j].backward(g), sizes[j])
            grad_skips.append(g_skip)  # finest level first
            g = self.ups[j].backward(g_up)
        for level in range(len(self.widths) - 1, -1, -1):
            if level < len(self.widths) - 1:  # the pool's input also fed the skip: grads add
                g = self.pools[level].backward(g) + grad_skips[level]
            g = self.encoder[level].backward(g)
        return g

    def extra_repr(self):
        return f"classes={self.classes}, widths={self.widths}"
