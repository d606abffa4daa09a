"""``Segmenter``: what every network of this package shares -- its classes, its output stride,
the input checks and :meth:`Segmenter.predict` (DESIGN.md §8's segmenter API).

A segmenter maps an image batch ``(N, 3, H, W)`` in [0, 1] to class logits ``(N, K + 1, H, W)``
at the input's size: channel 0 is the background, channel ``k`` the class ``classes[k - 1]``.
It is *fully convolutional*: no layer fixes the input size, so any ``H, W`` that its
``output_stride`` (the product of its down-sampling strides) divides works. ``predict`` accepts
any image size: it pads the image at the bottom and right to the next multiple and crops the
map back.
"""

from __future__ import annotations

from .._backend import array_namespace, from_numpy, to_numpy
from ..data import collate
from ..nn import Module

__all__ = ["Segmenter"]


class Segmenter(Module):
    """Base class: ``classes`` (names of labels 1..K), ``output_stride``, ``predict``.

    Subclasses set ``self.output_stride`` and implement ``forward`` (calling
    :meth:`check_input` first) and ``backward``.
    """

    output_stride = 1

    def __init__(self, classes):
        super().__init__()
        if isinstance(classes, str) or not all(isinstance(c, str) and c for c in classes):
            raise ValueError(f"classes must be a sequence of class names, got {classes!r}")
        self.classes = tuple(classes)
        if not self.classes:
            raise ValueError("classes must name at least one class")

    @property
    def num_classes(self) -> int:
        """Output channels: the classes and the background."""
        return len(self.classes) + 1

    def check_input(self, x):
        """Raise a ValueError naming ``x`` unless it is ``(N, 3, H, W)`` with H, W multiples of
        the output stride."""
        if not hasattr(x, "shape") or x.ndim != 4 or x.shape[1] != 3:
            shape = tuple(getattr(x, "shape", ())) or type(x).__name__
            raise ValueError(f"x must be an (N, 3, H, W) image batch, got {shape}")
        s = self.output_stride
        if x.shape[2] % s or x.shape[3] % s:
            raise ValueError(
                f"x must have a height and width that the output stride {s} of "
                f"{type(self).__name__} divides, got {tuple(x.shape[2:])} (pad the images, "
                f"as predict does)"
            )

    def predict(self, images) -> list:
        """Class maps of a list of ``(H, W, 3)`` uint8 images: a list of ``(H, W)`` int64 arrays.

        Runs in eval mode (and restores the previous mode); images of any size are padded with
        zeros to a multiple of ``output_stride`` and the maps cropped back. NumPy results.
        """
        if isinstance(images, dict) or not isinstance(images, (list, tuple)) or not images:
            raise ValueError("images must be a non-empty list of (H, W, 3) uint8 images")
        batch, targets = collate([{"image": im} for im in images], self.output_stride)
        was_training = self.training
        self.eval()
        like = next(iter(self.parameters())).data
        try:
            logits = self(from_numpy(batch, like))  # (N, K + 1, Hp, Wp)
        finally:
            self.train(was_training)
        xp = array_namespace(logits)
        classes = to_numpy(xp.argmax(logits, axis=1))  # (N, Hp, Wp)
        return [classes[i, :h, :w].astype("int64") for i, (h, w) in
                enumerate(t["image_size"] for t in targets)]  # fmt: skip
