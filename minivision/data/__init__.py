"""Data to learn from: synthetic scenes, YOLO folders, COCO JSON, batching and flips.

Host code (DESIGN.md §2): datasets produce NumPy arrays on the host; a training loop moves each
batch to its backend. Item dicts share one layout everywhere (see :class:`Shapes`): ``image``
(H, W, 3) uint8, ``boxes`` (N, 4) float32 xyxy in continuous pixels, ``labels`` (N,) int64 in
1..K, ``masks`` (N, H, W) bool, ``semantic`` (H, W) int64 (0 = background) and ``image_id``.
COCO's RLE mask codec, byte for byte pycocotools' ``mask`` module, is :mod:`minivision.data.rle`.
"""

from . import rle
from .coco import from_coco, to_coco
from .shapes import SHAPE_KINDS, Shapes
from .transforms import RandomHorizontalFlip, batch_indices, batches, collate, hflip
from .yolo import YoloFolder, read_names

__all__ = [
    "Shapes",
    "SHAPE_KINDS",
    "YoloFolder",
    "read_names",
    "to_coco",
    "from_coco",
    "collate",
    "hflip",
    "RandomHorizontalFlip",
    "batch_indices",
    "batches",
    "rle",
]
