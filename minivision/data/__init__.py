"""Data: synthetic scenes, COCO JSON and COCO's RLE mask codec (``minivision.data.rle``)."""

from . import rle

__all__ = ["rle"]
