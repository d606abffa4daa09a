"""Helpers shared by the datasets: boxes, semantic maps and polygons from instance masks.

Host island (DESIGN.md §2): the datasets produce NumPy arrays, so these helpers are NumPy.
Conventions are DESIGN.md §3's: a box is ``(x1, y1, x2, y2)`` in continuous pixel coordinates
(pixel ``(r, c)`` covers ``[c, c+1) x [r, r+1)``), so a mask's tight box ends one past its last
column and row, as ``pycocotools.mask.toBbox`` reports it.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = [
    "boxes_from_masks",
    "check_count",
    "check_item",
    "rasterise_polygon",
    "semantic_from_masks",
]


def boxes_from_masks(masks: np.ndarray) -> np.ndarray:
    """(N, H, W) masks -> (N, 4) float32 tight xyxy boxes, x2/y2 one past the last pixel.

    ``minivision.masks_to_boxes`` (torchvision's convention) gives the last column and row
    themselves; the continuous box adds one to both. An empty mask gives ``(0, 0, 0, 0)``.
    """
    masks = np.asarray(masks, dtype=bool)
    n, h, w = masks.shape
    rows, cols = masks.any(axis=2), masks.any(axis=1)  # (N, H), (N, W): line holds a pixel
    boxes = np.stack(
        [
            cols.argmax(axis=1),  # the first maximum: the first occupied column
            rows.argmax(axis=1),
            w - cols[:, ::-1].argmax(axis=1),  # one past the last occupied column
            h - rows[:, ::-1].argmax(axis=1),
        ],
        axis=1,
    ).astype(np.float32)  # (N, 4)
    boxes[~rows.any(axis=1)] = 0.0
    return boxes


def semantic_from_masks(masks: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N, H, W) bool masks and (N,) labels -> (H, W) int64 class map, 0 = background.

    Where masks overlap (real annotations; Shapes' masks never do) the *smallest* mask wins,
    since a small object that overlaps a large one is usually in front of it; equal areas go to
    the later mask.
    """
    masks = np.asarray(masks, dtype=bool)
    n, h, w = masks.shape
    semantic = np.zeros((h, w), dtype=np.int64)
    areas = masks.reshape(n, h * w).sum(axis=1)
    for k in np.argsort(-areas, kind="stable"):  # largest first: later paints cover it
        semantic[masks[k]] = labels[k]
    return semantic


def rasterise_polygon(xy: np.ndarray, height: int, width: int) -> np.ndarray:
    """(P, 2) polygon vertices ``(x, y)`` in continuous pixel coordinates -> (H, W) bool mask.

    A pixel belongs to the polygon when its *centre* ``(c + 0.5, r + 0.5)`` lies inside, by
    the even-odd rule (so the zero-width bridges of YOLO's merged multi-part polygons add
    nothing). Scan-line fill: each row's centre line crosses some edges (an edge owns the
    half-open span ``[y_min, y_max)`` of its rows, so a vertex is counted once); every crossing
    toggles the pixels whose centres lie to its right, and a running parity of toggles along
    the row is the mask. COCO's own rasteriser (``pycocotools`` ``frPoly``) traces the
    boundary at 5x resolution instead and can differ on pixels the outline cuts.
    """
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    mask = np.zeros((height, width), dtype=bool)
    if len(xy) < 3:
        return mask
    x0, y0 = xy[:, 0], xy[:, 1]  # (E,) edge k runs from vertex k to vertex k + 1
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    r_lo = max(0, math.ceil(y0.min() - 0.5))  # rows whose centre line meets the polygon
    r_hi = min(height, math.ceil(y0.max() - 0.5))
    if r_lo >= r_hi:
        return mask
    yc = np.arange(r_lo, r_hi) + 0.5  # (R,) centre lines
    crosses = (yc[:, None] >= np.minimum(y0, y1)) & (yc[:, None] < np.maximum(y0, y1))  # (R, E)
    rows, edges = np.nonzero(crosses)
    t = (yc[rows] - y0[edges]) / (y1[edges] - y0[edges])
    x = x0[edges] + t * (x1[edges] - x0[edges])  # where the centre line crosses the edge
    first = np.clip(np.floor(x - 0.5).astype(np.int64) + 1, 0, width)  # first c with c + 0.5 > x
    toggles = np.bincount(rows * (width + 1) + first, minlength=len(yc) * (width + 1))
    inside = np.cumsum(toggles.reshape(len(yc), width + 1), axis=1) % 2 == 1  # (R, W + 1)
    mask[r_lo:r_hi] = inside[:, :width]
    return mask


def check_count(name: str, value, *, minimum: int) -> int:
    """An integer (not a bool) >= ``minimum``, or a TypeError/ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_item(item, name: str = "item") -> tuple[int, int]:
    """Check an item dict's ``image`` (H, W, 3) uint8 and the targets' shapes; return (H, W)."""
    if not isinstance(item, dict):
        raise TypeError(
            f"{name} must be a dict with 'image', 'boxes', ..., got {type(item).__name__}"
        )
    image = item.get("image")
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise ValueError(f"{name}['image'] must be an (H, W, 3) array, got shape {shape}")
    if image.dtype != np.uint8:
        raise TypeError(f"{name}['image'] must be uint8, got {image.dtype}")
    h, w = image.shape[:2]
    n = None  # the object count, from the first of boxes / labels / masks
    for key, tail, text in (
        ("boxes", (4,), "(N, 4)"),
        ("labels", (), "(N,)"),
        ("masks", (h, w), f"(N, {h}, {w})"),
    ):
        if key in item:
            shape = np.shape(item[key])
            if len(shape) != 1 + len(tail) or shape[1:] != tail or n not in (None, shape[0]):
                raise ValueError(f"{name}['{key}'] must have shape {text}, got {shape}")
            n = shape[0]
    if "semantic" in item and np.shape(item["semantic"]) != (h, w):
        raise ValueError(
            f"{name}['semantic'] must have shape ({h}, {w}), got {np.shape(item['semantic'])}"
        )
    return h, w
