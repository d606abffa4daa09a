"""``Segmenter``: what every semantic segmentation network here shares.

A semantic segmenter maps an image ``(3, H, W)`` to one score per class and pixel, ``(K + 1, H,
W)`` logits (channel 0 is the background, DESIGN.md §3); the predicted map is their argmax. The
networks are *fully convolutional*: no layer depends on the input's size, so any ``H, W`` that
the network's total stride (``output_stride``) divides works. :meth:`Segmenter.predict` takes
images of any size by padding them bottom/right with zeros to the next multiple and cropping
the maps back.
"""

from __future__ import annotations

from .._backend import array_namespace, from_numpy, to_numpy
from ..data import collate
from ..nn import Module

__all__ = ["Segmenter"]


class Segmenter(Module):
    """Base class: ``classes``, ``output_stride``, the input check and :meth:`predict`.

    Subclasses set ``self.output_stride`` and implement ``forward`` / ``backward``; they call
    :meth:`check_input` first in ``forward``.
    """

    output_stride: int = 1

    def __init__(self, classes):
        super().__init__()
        classes = tuple(classes)
        if not classes or not all(isinstance(c, str) for c in classes):
            raise ValueError(f"classes must be a non-empty sequence of names, got {classes!r}")
        self.classes = classes

    @property
    def num_outputs(self) -> int:
        """``K + 1``: one logit per class and one for the background (channel 0)."""
        return len(self.classes) + 1

    def check_input(self, x) -> None:
        """Raise a ValueError naming ``x`` unless it is ``(N, 3, H, W)`` with the stride
        dividing ``H`` and ``W`` (metadata only: no host sync)."""
        if not hasattr(x, "shape") or x.ndim != 4:
            shape = tuple(getattr(x, "shape", ()))
            raise ValueError(f"x must be a batch of images (N, 3, H, W), got shape {shape}")
        if x.shape[1] != 3:
            raise ValueError(f"x must have 3 channels (RGB), got shape {tuple(x.shape)}")
        h, w = x.shape[2:]
        s = self.output_stride
        if h % s or w % s:
            raise ValueError(
                f"x has size {h}x{w}, but {type(self).__name__}'s output stride {s} must divide "
                f"its height and width (pad it, as predict does)"
            )

    def predict(self, images) -> list:
        """Class maps of ``(H, W, 3)`` uint8 images (any sizes): a list of ``(H, W)`` int64.

        Runs in eval mode (restoring the mode after) on the model's backend and dtype: the
        images are padded with zeros to a multiple of ``output_stride``, as ``collate(items,
        size_divisible=output_stride)``, and each map is cropped back to its image's size.
        """
        was_training = self.training
        self.eval()
        try:
            batch, targets = collate(
                [{"image": im} for im in images], size_divisible=self.output_stride
            )
            like = next(iter(self.parameters())).data  # the model's backend, device, dtype
            x = array_namespace(like).astype(from_numpy(batch, like), like.dtype)
            logits = to_numpy(self(x))  # (N, K + 1, Hp, Wp)
        finally:
            self.train(was_training)
        xp = array_namespace(logits)
        labels = xp.astype(xp.argmax(logits, axis=1), xp.int64)  # (N, Hp, Wp)
        return [labels[i, :h, :w] for i, (h, w) in enumerate(t["image_size"] for t in targets)]
