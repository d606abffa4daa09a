"""Boxes and the image they live in: clip them to it, drop the small ones, box each mask.

These are the steps that sit between a detector's raw boxes and its output (a region proposal
network clips its proposals to the image and removes the tiny ones before NMS), and the step that
turns an instance mask into its box. Conventions as in :mod:`minivision.ops.boxes` (lesson 00):
xyxy boxes in continuous pixel coordinates, ``x`` the column; image sizes are ``(height, width)``.

Every function mirrors the ``torchvision.ops`` function of the same name (0.29.1). All are
device-pure except :func:`remove_small_boxes`, whose output size depends on the values (one
declared sync).
"""

from __future__ import annotations

import numbers
import operator

from .._backend import device, namespace_of
from .._validate import check_boxes, check_image_size
from ._box_dtypes import as_float

__all__ = ["clip_boxes_to_image", "remove_small_boxes", "masks_to_boxes"]


def clip_boxes_to_image(boxes, size):
    """Clip boxes so that they lie inside an image of ``size = (height, width)``.

    Parameters
    ----------
    boxes : array of shape (..., 4), xyxy
    size : (int, int)
        ``(height, width)`` -- rows first, as in ``image.shape[:2]``. x is clamped to
        ``[0, width]`` and y to ``[0, height]``: the right edge of the last pixel column is
        ``x = width``, not ``width - 1``, in continuous coordinates.

    Returns
    -------
    array of shape (..., 4), same dtype. NaN coordinates stay NaN. Boxes entirely outside the
    image become zero-width or zero-height boxes on its border; nothing removes them here.

    Notes
    -----
    Mirrors ``torchvision.ops.clip_boxes_to_image``. Device-pure.
    """
    xp = namespace_of(boxes=boxes)
    check_boxes(xp, boxes)
    height, width = check_image_size("size", size)
    x = xp.clip(boxes[..., 0::2], min=0, max=width)
    y = xp.clip(boxes[..., 1::2], min=0, max=height)
    # (..., 2) and (..., 2) -> (..., 2, 2) -> (..., 4) back in x1, y1, x2, y2 order
    return xp.reshape(xp.stack((x, y), axis=-1), boxes.shape)


def remove_small_boxes(boxes, min_size: float):
    """Indices of the boxes whose width **and** height are at least ``min_size``.

    Parameters
    ----------
    boxes : array of shape (N, 4), xyxy
    min_size : float
        A side exactly equal to ``min_size`` is kept (torchvision's docstring says "larger
        than", its code uses ``>=``; we follow the code). Inverted boxes have negative sides and
        are removed for any ``min_size >= 0``; NaN sides are removed.

    Returns
    -------
    integer array of shape (K,), increasing.

    Notes
    -----
    Mirrors ``torchvision.ops.remove_small_boxes``. **One declared sync**: the number of kept
    boxes depends on the values, so the device must report it to the host (``xp.nonzero``).
    """
    xp = namespace_of(boxes=boxes)
    check_boxes(xp, boxes, min_ndim=2, shape_text="(N, 4)")
    if boxes.ndim != 2:
        raise ValueError(f"boxes must have shape (N, 4), got {tuple(boxes.shape)}")
    if isinstance(min_size, bool) or not isinstance(min_size, numbers.Real):
        raise TypeError(f"min_size must be a number, got {type(min_size).__name__}")
    # a NumPy scalar becomes the Python number it holds (an integer stays an integer)
    min_size = (
        operator.index(min_size) if isinstance(min_size, numbers.Integral) else float(min_size)
    )
    ws, hs = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    if isinstance(min_size, float) and not xp.isdtype(boxes.dtype, "real floating"):
        ws, hs = (
            as_float(xp, ws),
            as_float(xp, hs),
        )  # torch compares int sides to a float in float32
    keep = (ws >= min_size) & (hs >= min_size)
    return xp.nonzero(keep)[0]


def masks_to_boxes(masks):
    """The tightest box around each mask, in pixel-index coordinates.

    Parameters
    ----------
    masks : array of shape (N, H, W)
        Any dtype; a pixel belongs to the mask where it is non-zero.

    Returns
    -------
    float32 array of shape (N, 4)
        ``(x1, y1, x2, y2)`` = (first column, first row, last column, last row) holding a mask
        pixel. Note the inclusive ends: a one-pixel mask gives a zero-area box, and the box does
        **not** cover the mask's last pixel in continuous coordinates (add 1 to x2 and y2 for
        that). An empty mask gives ``(0, 0, 0, 0)``.

    Notes
    -----
    Mirrors ``torchvision.ops.masks_to_boxes``, with one deliberate difference: masks with no
    pixels (``H == 0`` or ``W == 0``) give ``N`` empty boxes, where torchvision returns a
    ``(0, 4)`` array that has lost the masks' count. Device-pure: first and last occupied
    rows and columns are found with ``argmax`` over ``any``, not with ``nonzero``.
    """
    xp = namespace_of(masks=masks)
    if masks.ndim != 3:
        raise ValueError(f"masks must have shape (N, H, W), got {tuple(masks.shape)}")
    n, h, w = masks.shape
    dev = device(masks)
    if h == 0 or w == 0:
        return xp.zeros((n, 4), dtype=xp.float32, device=dev)
    filled = masks != 0 if masks.dtype != xp.bool else masks
    rows = xp.astype(xp.any(filled, axis=2), xp.int8)  # (N, H): row holds a mask pixel
    cols = xp.astype(xp.any(filled, axis=1), xp.int8)  # (N, W)
    y1 = xp.argmax(rows, axis=1)  # the first maximum: the first occupied row
    x1 = xp.argmax(cols, axis=1)
    y2 = (h - 1) - xp.argmax(xp.flip(rows, axis=1), axis=1)
    x2 = (w - 1) - xp.argmax(xp.flip(cols, axis=1), axis=1)
    boxes = xp.astype(xp.stack((x1, y1, x2, y2), axis=1), xp.float32)  # (N, 4)
    occupied = xp.any(rows != 0, axis=1)[:, None]  # (N, 1)
    return xp.where(occupied, boxes, xp.zeros_like(boxes))
