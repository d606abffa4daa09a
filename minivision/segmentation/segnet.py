"""SegNet (Badrinarayanan, Kendall & Cipolla, TPAMI 2017): up-sampling by max-unpooling.

An encoder of ``conv-BN-ReLU x 2 -> 2x2 max-pool`` stages remembers *where* each pooling window's
maximum was (``MaxPool2d(2, return_indices=True)``); the mirrored decoder puts each value back
at that place (``MaxUnpool2d``), zeros elsewhere, and convolutions fill the sparse map in. The
indices cost a few bits per pixel instead of U-Net's whole feature maps, and boundaries come
back where the encoder saw them.

    enc1 -> pool (idx1) -> enc2 -> pool (idx2) -> ... -> unpool (idx_L) -> dec_L -> ... -> unpool (idx1) -> dec1

``dec1``'s last convolution outputs the K + 1 class logits (no BN, no ReLU). ``H`` and ``W`` must
be multiples of ``2^L``. The backward of an unpooling gathers the gradient at the same indices
(:func:`minivision.nn.functional.max_unpool2d_backward`), which is then the gradient of the
pooled values.
"""

from __future__ import annotations

from ..nn import Conv2d, MaxPool2d, MaxUnpool2d, Sequential
from ._blocks import conv_bn_relu, seed_stream, widths_tuple
from .base import Segmenter

__all__ = ["SegNet"]


class SegNet(Segmenter):
    """SegNet with ``len(widths)`` encoder stages.

    Keys: ``enc{i}`` (double conv of stage ``i``), ``dec{i}`` (the decoder at stage ``i``: two
    convolutions back to stage ``i - 1``'s width; ``dec1`` ends in the 1x1-free class conv).
    """

    def __init__(self, classes=("square", "circle", "triangle"), *, widths=(16, 32, 64),
                 seed: int = 0):  # fmt: skip
        super().__init__(classes)
        self.widths = w = widths_tuple(widths)
        self.output_stride = 2 ** len(w)
        seeds = seed_stream(seed)
        c_in = 3
        for i, c in enumerate(w, start=1):
            setattr(self, f"enc{i}", Sequential(*conv_bn_relu(c_in, c, seeds), *conv_bn_relu(c, c, seeds)))
            c_in = c
        for i in reversed(range(1, len(w) + 1)):
            c = w[i - 1]
            if i > 1:
                tail = conv_bn_relu(c, w[i - 2], seeds)
            else:  # the classifier: a plain 3x3 convolution to the classes
                tail = [Conv2d(c, self.num_classes, 3, padding=1, rng=next(seeds))]
            setattr(self, f"dec{i}", Sequential(*conv_bn_relu(c, c, seeds), *tail))
        self._pools = [MaxPool2d(2, return_indices=True) for _ in w]
        self._unpools = [MaxUnpool2d(2) for _ in w]

    def forward(self, x):
        self.check_input(x)
        h, indices = x, []
        for i in range(1, len(self.widths) + 1):
            h, idx = self._pools[i - 1](getattr(self, f"enc{i}")(h))  # (N, C_i, H / 2^i, ...)
            indices.append(idx)
        for i in reversed(range(1, len(self.widths) + 1)):
            h = getattr(self, f"dec{i}")(self._unpools[i - 1](h, indices[i - 1]))
        return h  # (N, K + 1, H, W)

    def backward(self, grad_output):
        g = grad_output
        for i in range(1, len(self.widths) + 1):  # decoder in reverse
            g = self._unpools[i - 1].backward(getattr(self, f"dec{i}").backward(g))
        for i in reversed(range(1, len(self.widths) + 1)):  # encoder in reverse
            g = getattr(self, f"enc{i}").backward(self._pools[i - 1].backward(g))
        return g
