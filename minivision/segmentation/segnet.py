"""SegNet (Badrinarayanan, Kendall & Cipolla, TPAMI 2017): unpooling with the encoder's indices.

The encoder is VGG-like: stages of two 3x3 conv-BN-ReLU and a 2x2 max-pool that *remembers
where each maximum was* (``MaxPool2d(2, return_indices=True)``). The decoder mirrors it: each
stage first **unpools** (``MaxUnpool2d(2)``) -- it writes every value back at the position its
encoder stage's maximum came from, zeros elsewhere, a sparse map with the encoder's boundaries
-- and then densifies it with two 3x3 conv-BN-ReLU; the last convolution gives the ``K + 1``
logits (no BN/ReLU after it). Unlike U-Net, only the indices cross from encoder to decoder (a
few bits per pixel, not whole feature maps), and unpooling has no weights to learn.

Backward: unpooling's gradient gathers the upstream gradient at the same indices (the pooling's
backward, read the other way). The indices are integers: no gradient flows through them.
"""

from __future__ import annotations

from ..nn import Conv2d, MaxPool2d, MaxUnpool2d, Sequential
from ._blocks import SeedStream, conv_bn_relu
from .base import Segmenter

__all__ = ["SegNet"]


class SegNet(Segmenter):
    """SegNet with ``len(widths)`` encoder and decoder stages.

    Parameters
    ----------
    classes : sequence of str
    widths : ints
        The encoder stages' widths, finest first; decoder stage ``l`` maps ``widths[l]`` back
        to ``widths[l - 1]`` (the last one to ``K + 1``).
    seed : int
        Layer ``i`` (data-flow order) is initialised from seed ``1000 * seed + i``.

    Shapes: ``x`` (N, 3, H, W), H and W multiples of ``2 ** len(widths)`` -> logits
    (N, K + 1, H, W). Children: ``encoder.l`` (conv-BN-ReLU x2: ``0..5``), ``decoder.j``
    (coarsest first; the last one's child ``3`` is the final conv).
    """

    def __init__(self, classes=("square", "circle", "triangle"), *, widths=(16, 32, 64), seed=0):
        super().__init__(classes)
        widths = tuple(int(w) for w in widths)
        if len(widths) < 1 or min(widths) < 1:
            raise ValueError(f"widths must be positive ints, got {widths!r}")
        self.widths = widths
        self.output_stride = 2 ** len(widths)
        seeds, c_in, encoder = SeedStream(seed), 3, []
        for c in widths:
            encoder.append(Sequential(*conv_bn_relu(c_in, c, seeds), *conv_bn_relu(c, c, seeds)))
            c_in = c
        self.encoder = Sequential(*encoder)
        self.pools = Sequential(*[MaxPool2d(2, return_indices=True) for _ in widths])
        self.unpools = Sequential(*[MaxUnpool2d(2) for _ in widths])
        decoder = []
        for level in range(len(widths) - 1, -1, -1):
            c = widths[level]
            if level > 0:
                layers = conv_bn_relu(c, c, seeds) + conv_bn_relu(c, widths[level - 1], seeds)
            else:  # the last stage ends in the classifier: a plain 3x3 conv to K + 1
                layers = conv_bn_relu(c, c, seeds)
                layers.append(Conv2d(c, self.num_outputs, 3, padding=1, rng=seeds()))
            decoder.append(Sequential(*layers))
        self.decoder = Sequential(*decoder)

    def forward(self, x):
        self.check_input(x)
        indices = []
        for block, pool in zip(self.encoder, self.pools):
            x, idx = pool(block(x))  # (N, c, h / 2, w / 2) and where each maximum was
            indices.append(idx)
        for j, (unpool, block) in enumerate(zip(self.unpools, self.decoder)):
            x = block(unpool(x, indices[-1 - j]))  # back to (N, c, h, w), then densified
        return x  # (N, K + 1, H, W)

    def backward(self, grad_output):
        g = grad_output
        for j in range(len(self.decoder) - 1, -1, -1):
            g = self.unpools[j].backward(self.decoder[j].backward(g))
        for level in range(len(self.encoder) - 1, -1, -1):
            g = self.encoder[level].backward(self.pools[level].backward(g))
        return g

    def extra_repr(self):
        return f"classes={self.classes}, widths={self.widths}"
