"""Batching, horizontal flips and seeded shuffling of item dicts.

:func:`collate` turns item dicts into a network batch as torchvision's detection models expect
it (``GeneralizedRCNNTransform.batch_images``): images scaled to [0, 1], channels first, padded
with zeros at the bottom and right to a common size that is a multiple of ``size_divisible``
(the feature maps of a stride-32 backbone then line up with the pixels). Targets keep their own
size. :class:`RandomHorizontalFlip` mirrors the pixels and moves boxes, masks and the semantic
map with them (``torchvision.transforms.v2.RandomHorizontalFlip``). :func:`batches` visits a
dataset in an order fixed by ``(seed, epoch)``, so a training run can be repeated and resumed.

Host island (DESIGN.md §2): NumPy in, NumPy out; the training loop moves a batch to its backend.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

import numpy as np

from ._targets import check_count, check_item

__all__ = ["collate", "hflip", "RandomHorizontalFlip", "batch_indices", "batches"]


def collate(items: Sequence[dict], size_divisible: int = 32):
    """Stack item dicts into a padded image batch and a list of targets.

    Parameters
    ----------
    items : sequence of dict
        Item dicts (``image`` (H_i, W_i, 3) uint8 and their targets), at least one.
    size_divisible : int
        The batch's height and width are the largest ``H_i``, ``W_i`` rounded up to a multiple
        of this (torchvision's default 32); 1 = no rounding.

    Returns
    -------
    images : float32 array of shape (N, 3, H, W)
        Pixels times 1/255 (as ``torchvision.transforms.v2.functional.to_dtype(..., scale=True)``),
        image ``i`` in the top-left corner ``[:, :H_i, :W_i]``, zeros elsewhere.
    targets : list of dict
        Each item without its ``image``, plus ``image_size`` = ``(H_i, W_i)``. The arrays are
        the items' own (not copied).
    """
    if isinstance(items, dict) or not isinstance(items, Sequence) or len(items) == 0:
        raise ValueError("items must be a non-empty sequence of item dicts")
    size_divisible = check_count("size_divisible", size_divisible, minimum=1)
    sizes = [check_item(item, f"items[{i}]") for i, item in enumerate(items)]
    height = math.ceil(max(h for h, _ in sizes) / size_divisible) * size_divisible
    width = math.ceil(max(w for _, w in sizes) / size_divisible) * size_divisible
    images = np.zeros((len(items), 3, height, width), dtype=np.float32)
    targets = []
    for i, (item, (h, w)) in enumerate(zip(items, sizes)):
        images[i, :, :h, :w] = item["image"].transpose(2, 0, 1)  # (H, W, 3) -> (3, H, W)
        targets.append({k: v for k, v in item.items() if k != "image"} | {"image_size": (h, w)})
    images *= np.float32(1 / 255)
    return images, targets


def hflip(item: dict) -> dict:
    """The item mirrored left-right: pixels, ``masks`` and ``semantic`` flipped, boxes moved.

    In continuous coordinates column ``c`` goes to ``W - 1 - c`` and an edge at ``x`` to
    ``W - x``, so a box ``(x1, y1, x2, y2)`` becomes ``(W - x2, y1, W - x1, y2)`` -- still the
    tight box of its flipped mask. Other keys are kept. Returns a new dict; the input is
    unchanged.
    """
    _, w = check_item(item)
    out = dict(item)
    out["image"] = np.ascontiguousarray(item["image"][:, ::-1])
    if "masks" in item:
        out["masks"] = np.ascontiguousarray(np.asarray(item["masks"])[:, :, ::-1])
    if "semantic" in item:
        out["semantic"] = np.ascontiguousarray(np.asarray(item["semantic"])[:, ::-1])
    if "boxes" in item:
        boxes = np.asarray(item["boxes"])
        flipped = boxes.copy()
        flipped[:, 0] = w - boxes[:, 2]
        flipped[:, 2] = w - boxes[:, 0]
        out["boxes"] = flipped
    return out


class RandomHorizontalFlip:
    """Flip an item left-right (:func:`hflip`) with probability ``p``, from a seeded generator.

    Parameters
    ----------
    p : float
        Probability of a flip, in [0, 1].
    seed : int or numpy.random.Generator
        Its own generator: the same seed and the same sequence of calls give the same flips.
        :meth:`state_dict` / :meth:`load_state_dict` save and restore it, for exact resume.
    """

    def __init__(self, p: float = 0.5, seed=0):
        if not isinstance(p, numbers.Real) or not 0 <= p <= 1:
            raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)
        self.rng = _generator(seed)

    def __call__(self, item: dict) -> dict:
        return hflip(item) if self.rng.random() < self.p else item

    def state_dict(self) -> dict:
        return {"p": self.p, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.p = float(state["p"])
        self.rng.bit_generator.state = state["rng"]

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


def batch_indices(
    n: int,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    epoch: int = 0,
    drop_last: bool = False,
) -> list[np.ndarray]:
    """The index batches of one epoch over ``n`` items.

    With ``shuffle`` the order is a permutation drawn from ``default_rng([seed, epoch])`` (the
    stable argsort of uniform draws, which every machine computes alike): the same
    ``(seed, epoch)`` gives the same batches, and each epoch its own order. ``drop_last``
    drops a final batch smaller than ``batch_size``.
    """
    n = check_count("n", n, minimum=0)
    batch_size = check_count("batch_size", batch_size, minimum=1)
    seed = check_count("seed", seed, minimum=0)
    epoch = check_count("epoch", epoch, minimum=0)
    if shuffle:
        order = np.argsort(np.random.default_rng([seed, epoch]).random(n), kind="stable")
    else:
        order = np.arange(n)
    stop = n - n % batch_size if drop_last else n
    return [order[start : start + batch_size] for start in range(0, stop, batch_size)]


def batches(
    dataset,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    epoch: int = 0,
    drop_last: bool = False,
    transform: Callable[[dict], dict] | None = None,
    collate_fn: Callable[[list], object] | None = None,
):
    """Yield the batches of one epoch: lists of items (or ``collate_fn`` of them).

    ``dataset`` is any sequence of item dicts (``len`` and integer indexing); the order is
    :func:`batch_indices`' for ``(seed, epoch)``. ``transform`` is applied to each item as it
    is read (e.g. a :class:`RandomHorizontalFlip`); ``collate_fn`` (e.g. :func:`collate`) to
    each batch.
    """
    for index in batch_indices(len(dataset), batch_size, shuffle, seed, epoch, drop_last):
        items = [dataset[int(i)] for i in index]
        if transform is not None:
            items = [transform(item) for item in items]
        yield items if collate_fn is None else collate_fn(items)


def _generator(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(check_count("seed", seed, minimum=0))
