"""A folder of photographs with YOLO-format boxes and polygons, as the same item dicts as Shapes.

The layout is the one of the course's ``coco128-train`` folder (its README)::

    root/images/NAME.jpg      the photographs (any format imageio reads)
    root/labels/NAME.txt      one object per line: ``class cx cy w h``, normalised to [0, 1] by
                              the image width and height; or ``class x1 y1 x2 y2 ...``, a polygon
                              (Ultralytics' YOLO segmentation format), whose extent is its box
    root/segments/NAME.txt    optional instance polygons, ``class x1 y1 x2 y2 ...`` normalised
    root/names.yaml           class names, ``names:`` then ``  0: person`` lines (or a list)

An image without a label file has no objects (YOLO's convention for background images).

``segments/`` may come from another annotation than ``labels/`` -- in coco128 the polygons are
COCO's panoptic segments, numbered with COCO's category ids, and their extents differ from the
boxes (median IoU 0.95). So each polygon is paired with a box by its *extent*, not its class
id: greedily, highest IoU first, one to one, IoU >= ``match_iou``. A box left without a polygon
gets an empty mask and ``has_mask`` False; a polygon left without a box is not used.

Host island (DESIGN.md §2): files in, NumPy arrays out.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Sequence
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from ..ops.boxes import box_iou
from ._targets import rasterise_polygon, semantic_from_masks

__all__ = ["YoloFolder", "read_names"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class YoloFolder(Sequence):
    """The images of a YOLO-format folder with their boxes, labels and polygon masks.

    Parameters
    ----------
    root : str or Path
        The folder holding ``images/`` (and ``labels/``, ``segments/``, ``names.yaml``).
    classes : sequence of str, optional
        Class names for label ids 0..K-1; default: read from ``names.yaml`` (or ``data.yaml``).
    match_iou : float
        The least IoU between a box and a ``segments/`` polygon's extent to pair them.

    Items
    -----
    ``ds[i]`` is a dict with the keys of :class:`minivision.data.Shapes`' items, objects in the
    label file's order: ``image`` (H, W, 3) uint8 (grey images repeated, alpha dropped),
    ``boxes`` (N, 4) float32 xyxy in pixels (YOLO's ``x1 = (cx - w/2) * W`` ..., clipped to the
    image), ``labels`` (N,) int64 = YOLO class id + 1 (0 is background), ``masks`` (N, H, W)
    bool (each polygon's pixels whose centre lies inside it), ``semantic`` (H, W) int64 (where
    masks overlap the smallest wins), ``image_id`` = ``i``; and two of its own: ``has_mask``
    (N,) bool, and ``file_name``, the image's name inside ``images/``.
    """

    def __init__(self, root, classes: Sequence[str] | None = None, match_iou: float = 0.5):
        self.root = Path(root)
        if not (self.root / "images").is_dir():
            raise ValueError(f"root must be a folder with an images/ folder inside, got {root!r}")
        self.files = sorted(
            p.name for p in (self.root / "images").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
        )
        if classes is None:
            names = [
                self.root / n for n in ("names.yaml", "data.yaml") if (self.root / n).is_file()
            ]
            if not names:
                raise ValueError(
                    f"root has no names.yaml or data.yaml to name the classes ({root!r}); "
                    "pass classes="
                )
            classes = read_names(names[0])
        if isinstance(classes, str) or not isinstance(classes, Sequence) or not classes:
            raise ValueError(f"classes must be a non-empty sequence of names, got {classes!r}")
        self.classes = tuple(str(c) for c in classes)
        if not isinstance(match_iou, numbers.Real) or not 0 < match_iou <= 1:
            raise ValueError(f"match_iou must be in (0, 1], got {match_iou!r}")
        self.match_iou = float(match_iou)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i):
        if isinstance(i, bool) or not isinstance(i, numbers.Integral):
            raise TypeError(f"YoloFolder indices must be integers, got {type(i).__name__}")
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} is out of range for {len(self)} images")
        i = int(i) % len(self)
        name = self.files[i]
        image = _read_rgb(self.root / "images" / name)
        h, w = image.shape[:2]
        stem = Path(name).stem
        labels, boxes, polygons = self._read_labels(self.root / "labels" / f"{stem}.txt", w, h)
        masks = np.zeros((len(labels), h, w), dtype=bool)
        has_mask = np.zeros(len(labels), dtype=bool)
        for k, xy in enumerate(polygons):  # polygons written in labels/ themselves
            if xy is not None:
                masks[k], has_mask[k] = rasterise_polygon(xy, h, w), True
        segments = self.root / "segments" / f"{stem}.txt"
        if segments.is_file():
            free = np.flatnonzero(~has_mask)
            found = [xy for _, (_, xy) in _read_rows(segments, w, h, polygon_only=True)]
            for k, j in _match(
                boxes[free], np.asarray([_extent(xy) for xy in found]), self.match_iou
            ):
                masks[free[k]], has_mask[free[k]] = rasterise_polygon(found[j], h, w), True
        return {
            "image": image,
            "boxes": boxes,
            "labels": labels,
            "masks": masks,
            "semantic": semantic_from_masks(masks, labels),
            "image_id": i,
            "has_mask": has_mask,
            "file_name": name,
        }

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return f"YoloFolder({str(self.root)!r}, {len(self)} images, {len(self.classes)} classes)"

    def _read_labels(self, path: Path, w: int, h: int):
        """(N,) int64 labels 1..K, (N, 4) float32 boxes, N polygons (or None) of a label file."""
        if not path.is_file():
            return np.zeros(0, np.int64), np.zeros((0, 4), np.float32), []
        labels, boxes, polygons = [], [], []
        for lineno, (cls, values) in _read_rows(path, w, h):
            if not 0 <= cls < len(self.classes):
                raise ValueError(
                    f"{path}:{lineno}: class id {cls} is not among the {len(self.classes)} "
                    "classes of names.yaml"
                )
            if values.shape == (4,):  # cx cy w h, already in pixels
                cx, cy, bw, bh = values
                box, xy = np.array([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]), None
            else:
                box, xy = _extent(values), values
            labels.append(cls + 1)
            boxes.append(box)
            polygons.append(xy)
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        np.clip(boxes, 0, [w, h, w, h], out=boxes)
        return np.asarray(labels, dtype=np.int64), boxes.astype(np.float32), polygons


def read_names(path) -> tuple[str, ...]:
    """Class names from a YOLO ``names.yaml`` / ``data.yaml``: the ``names:`` key, written as
    ``  0: person`` lines, ``- person`` lines, an inline ``[person, bicycle]`` list or an inline
    ``{0: person, 1: bicycle}`` mapping."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    start = [k for k, line in enumerate(lines) if re.match(r"names\s*:", line)]
    if not start:
        raise ValueError(f"{path} has no 'names:' key")
    head = lines[start[0]].split(":", 1)[1].strip()
    unquote = lambda s: s.strip().strip("'\"")  # noqa: E731
    if head.startswith("["):
        return tuple(unquote(s) for s in head.strip("[]").split(",") if s.strip())
    if head.startswith("{"):  # {0: person, 1: bicycle}
        body = [pair for pair in head.strip("{}").split(",") if pair.strip()]
    else:
        body = []
        for line in lines[start[0] + 1 :]:
            if line.strip() and not line[:1].isspace() and not line.startswith("-"):
                break  # the next top-level key
            body.append(line)
    names = {}
    for line in body:
        if m := re.match(r"\s*(\d+)\s*:\s*(.+)$", line):
            names[int(m.group(1))] = unquote(m.group(2))
        elif m := re.match(r"\s*-\s*(.+)$", line):
            names[len(names)] = unquote(m.group(1))
    if sorted(names) != list(range(len(names))) or not names:
        raise ValueError(f"{path}: names must be numbered 0..K-1, got ids {sorted(names)}")
    return tuple(names[k] for k in range(len(names)))


def _read_rows(path: Path, w: int, h: int, polygon_only: bool = False):
    """Yield ``(lineno, (class id, values in pixels))``: (4,) cx cy w h or (P, 2) polygons."""
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            cls, *values = line.split()
            cls, values = int(cls), np.asarray(values, dtype=np.float64)
        except ValueError:
            raise ValueError(f"{path}:{lineno}: expected numbers, got {line!r}") from None
        if not np.isfinite(values).all():
            raise ValueError(f"{path}:{lineno}: coordinates must be finite, got {line!r}")
        if len(values) == 4 and not polygon_only:
            yield lineno, (cls, values * [w, h, w, h])
        elif len(values) >= 6 and len(values) % 2 == 0:
            yield lineno, (cls, values.reshape(-1, 2) * [w, h])  # (P, 2) x, y
        else:
            want = "a polygon x1 y1 x2 y2 ..." if polygon_only else "'cx cy w h' or a polygon"
            raise ValueError(f"{path}:{lineno}: expected a class id and {want}, got {line!r}")


def _extent(xy: np.ndarray) -> np.ndarray:
    """(P, 2) polygon -> (4,) its bounding box x1 y1 x2 y2."""
    return np.concatenate([xy.min(axis=0), xy.max(axis=0)])


def _match(boxes: np.ndarray, extents: np.ndarray, threshold: float):
    """Greedy one-to-one pairs (box k, polygon j), highest IoU first, IoU >= threshold."""
    if len(boxes) == 0 or len(extents) == 0:
        return []
    iou = box_iou(boxes.astype(np.float64), extents.astype(np.float64))  # (B, S)
    pairs = []
    for flat in np.argsort(-iou, axis=None, kind="stable"):
        k, j = divmod(int(flat), iou.shape[1])
        if iou[k, j] < threshold:
            break
        if all(k != a and j != b for a, b in pairs):
            pairs.append((k, j))
    return pairs


def _read_rgb(path: Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8: grey repeated, alpha dropped."""
    try:
        image = iio.imread(path)
    except Exception as err:  # imageio raises many types for a file it cannot read
        raise ValueError(f"{path} is not an image imageio can read: {err}") from None
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
        raise ValueError(
            f"{path}: expected an 8-bit RGB or grey image, got {image.shape} {image.dtype}"
        )
    return np.ascontiguousarray(image[..., :3])
