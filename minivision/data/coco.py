"""COCO JSON export and import: our item dicts <-> the dict that ``pycocotools.coco.COCO`` reads.

COCO's annotation format (Lin et al., 2014; cocodataset.org/#format-data)::

    {"info": {...}, "licenses": [],
     "images": [{"id", "width", "height", "file_name"}, ...],
     "annotations": [{"id", "image_id", "category_id", "bbox": [x, y, w, h], "area",
                      "iscrowd", "segmentation"}, ...],
     "categories": [{"id", "name", "supercategory"}, ...]}

``bbox`` is ``[x1, y1, x2 - x1, y2 - y1]`` of our xyxy box (continuous pixels, as COCO's), so a
mask's box here equals ``pycocotools.mask.toBbox`` of its RLE; ``area`` is the mask's pixel
count, as ``pycocotools.mask.area``. Annotation ids start at 1 (``COCOeval`` reads an id of 0
as "no match").

Masks are written as *uncompressed* RLE, ``{"counts": [run lengths], "size": [h, w]}``: the
pixels read in column-major (Fortran) order, alternating runs of 0s and 1s, starting with a
(possibly empty) run of 0s -- the form ``pycocotools.mask.frPyObjects`` accepts, valid for any
COCO tool. The compact string form of ``counts`` (compressed RLE, used by COCO's own files and
by result files) is the codec of :mod:`minivision.data.rle`.

Host island (DESIGN.md §2): NumPy and plain Python lists (JSON-ready).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

from ._targets import rasterise_polygon, semantic_from_masks

__all__ = ["to_coco", "from_coco", "mask_to_rle", "rle_to_mask"]


def mask_to_rle(mask: np.ndarray) -> dict:
    """(H, W) mask -> uncompressed COCO RLE ``{"counts": [int, ...], "size": [H, W]}``.

    The first run counts 0s (it is 0 when the top-left pixel is set); any non-zero pixel is
    foreground, as in pycocotools.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must have shape (H, W), got {mask.shape}")
    h, w = mask.shape
    mask = mask.astype(bool, copy=False)
    cols = np.flatnonzero(mask.any(axis=0))  # only these columns hold runs of 1s
    if cols.size == 0:
        return {"counts": [h * w], "size": [int(h), int(w)]}
    c1, c2 = int(cols[0]), int(cols[-1]) + 1
    flat = mask[:, c1:c2].ravel(order="F")  # (H * (c2 - c1),) column by column
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1  # where a new run starts
    runs = np.diff(change, prepend=0, append=flat.size).tolist()
    # the zeros of the columns before c1 and after c2 join the first and last runs
    if flat[0]:
        runs.insert(0, c1 * h)  # (possibly empty) leading run of 0s
    else:
        runs[0] += c1 * h
    if flat[-1]:
        if c2 < w:
            runs.append((w - c2) * h)
    else:
        runs[-1] += (w - c2) * h
    return {"counts": runs, "size": [int(h), int(w)]}


def rle_to_mask(rle: dict) -> np.ndarray:
    """Uncompressed COCO RLE -> (H, W) bool mask (the inverse of :func:`mask_to_rle`)."""
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, (str, bytes)):
        raise ValueError(
            "rle['counts'] is compressed RLE (a string); decode it with minivision.data.rle"
        )
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 1 or (counts < 0).any() or counts.sum() != h * w:
        raise ValueError(f"rle['counts'] must be run lengths adding up to h*w = {h * w}")
    values = np.arange(len(counts)) % 2 == 1  # runs alternate 0, 1, 0, ...
    return np.repeat(values, counts).reshape(w, h).T  # column-major back to (H, W)


def to_coco(dataset, indices=None, *, classes: Sequence[str] | None = None) -> dict:
    """The COCO annotation dict of a dataset's items, ready for ``json.dump`` and pycocotools.

    Parameters
    ----------
    dataset : Shapes, YoloFolder, or any sequence of item dicts
        Items with ``boxes`` (N, 4) xyxy, ``labels`` (N,) in 1..K and ``masks`` (N, H, W), and
        ``image`` (H, W, 3) (or ``height`` and ``width``). ``image_id`` (default: the index)
        and ``file_name`` are used when present.
    indices : iterable of int, optional
        The items to export, in this order; default all.
    classes : sequence of str, optional
        Names of labels 1..K; default ``dataset.classes``.

    Returns
    -------
    dict
        ``info``, ``licenses``, ``images``, ``annotations``, ``categories`` (see the module
        docstring). An object whose item says ``has_mask`` False (a YOLO box without a polygon)
        gets its box as a polygon segmentation and the box's area, so that segmentation tools
        still read the file.

    Examples
    --------
    >>> from pycocotools.coco import COCO  # doctest: +SKIP
    >>> coco = COCO(); coco.dataset = to_coco(Shapes(10)); coco.createIndex()  # doctest: +SKIP
    """
    if classes is None:
        classes = getattr(dataset, "classes", None)
        if classes is None:
            raise ValueError("classes must be given when the dataset has no .classes")
    if isinstance(classes, str) or not isinstance(classes, Sequence):
        raise TypeError(f"classes must be a sequence of names, got {classes!r}")
    if indices is None:
        indices = range(len(dataset))
    from minivision import __version__

    images, annotations = [], []
    for i in indices:
        if isinstance(i, bool) or not isinstance(i, numbers.Integral):
            raise TypeError(f"indices must hold integers, got {i!r}")
        item = dataset[i]
        h, w = _size(item, f"dataset[{i}]")
        image_id = int(item.get("image_id", i))
        images.append(
            {
                "id": image_id,
                "width": w,
                "height": h,
                "file_name": str(item.get("file_name", f"{image_id:06d}.png")),
            }
        )
        boxes = np.asarray(item["boxes"], dtype=np.float64).reshape(-1, 4)
        labels = np.asarray(item["labels"]).reshape(-1)
        if len(labels) != len(boxes):
            raise ValueError(f"dataset[{i}]: {len(boxes)} boxes but {len(labels)} labels")
        if len(labels) and not (1 <= labels.min() and labels.max() <= len(classes)):
            raise ValueError(f"dataset[{i}]['labels'] must be in 1..{len(classes)}, got {labels}")
        masks = item.get("masks")
        has_mask = np.asarray(item.get("has_mask", np.full(len(labels), masks is not None)))
        for k in range(len(labels)):
            x1, y1, x2, y2 = (float(v) for v in boxes[k])
            if has_mask[k]:
                segmentation = mask_to_rle(masks[k])
                area = int(np.count_nonzero(masks[k]))
            else:
                segmentation = [[x1, y1, x2, y1, x2, y2, x1, y2]]
                area = (x2 - x1) * (y2 - y1)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(labels[k]),
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": area,
                    "iscrowd": 0,
                    "segmentation": segmentation,
                }
            )
    return {
        "info": {
            # a dataset object describes itself; a plain list of items would print every array
            "description": repr(dataset) if hasattr(dataset, "classes") else "item dicts",
            "version": f"minivision {__version__}",
        },
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": k + 1, "name": str(name), "supercategory": "object"}
            for k, name in enumerate(classes)
        ],
    }


def from_coco(coco: dict, *, masks: bool = True) -> list[dict]:
    """Item dicts from a COCO annotation dict, one per entry of ``images``, in its order.

    Parameters
    ----------
    coco : dict
        A COCO annotation dict (``json.load`` of an instances file, or :func:`to_coco`).
    masks : bool
        Decode ``segmentation`` into ``masks``/``semantic``. Uncompressed RLE is decoded
        exactly; polygons are rasterised by pixel centre (COCO's ``frPoly`` can differ on
        pixels the outline cuts); compressed RLE needs :mod:`minivision.data.rle` and raises
        ``ValueError`` here -- pass ``masks=False`` for boxes only.

    Returns
    -------
    list of dict
        ``image_id``, ``file_name``, ``height``, ``width``, ``boxes`` (N, 4) float32 xyxy,
        ``labels`` (N,) int64 = ``category_id`` (as in the file: COCO's own ids are not
        contiguous), ``iscrowd`` (N,) bool, and with ``masks=True`` ``masks`` (N, H, W) bool and
        ``semantic`` (H, W) int64. There is no ``image``: the pixels are not in the JSON.
    """
    if not isinstance(coco, dict):
        raise TypeError(f"coco must be a dict, got {type(coco).__name__}")
    missing = [k for k in ("images", "annotations") if k not in coco]
    if missing:
        raise ValueError(f"coco must have 'images' and 'annotations', missing {missing}")
    per_image = {img["id"]: [] for img in coco["images"]}
    for ann in coco["annotations"]:
        if ann["image_id"] not in per_image:
            raise ValueError(f"annotation {ann.get('id')} names unknown image_id {ann['image_id']}")
        per_image[ann["image_id"]].append(ann)
    items = []
    for img in coco["images"]:
        anns = per_image[img["id"]]
        h, w = int(img["height"]), int(img["width"])
        xywh = np.asarray([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
        item = {
            "image_id": img["id"],
            "file_name": img.get("file_name", ""),
            "height": h,
            "width": w,
            "boxes": np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1).astype(
                np.float32
            ),
            "labels": np.asarray([a["category_id"] for a in anns], dtype=np.int64),
            "iscrowd": np.asarray([bool(a.get("iscrowd", 0)) for a in anns], dtype=bool),
        }
        if masks:
            stack = np.zeros((len(anns), h, w), dtype=bool)
            for k, ann in enumerate(anns):
                stack[k] = _decode(ann, h, w)
            item["masks"] = stack
            item["semantic"] = semantic_from_masks(stack, item["labels"])
        items.append(item)
    return items


def _decode(ann: dict, h: int, w: int) -> np.ndarray:
    """One annotation's ``segmentation`` -> (H, W) bool mask."""
    seg = ann.get("segmentation")
    if isinstance(seg, dict):
        if [int(v) for v in seg.get("size", ())] != [h, w]:
            raise ValueError(
                f"annotation {ann.get('id')}: RLE size {seg.get('size')} != [{h}, {w}]"
            )
        try:
            return rle_to_mask(seg)
        except ValueError as err:
            raise ValueError(f"annotation {ann.get('id')}: {err}") from None
    if isinstance(seg, list):  # polygons [[x1, y1, x2, y2, ...], ...] of one object: their union
        mask = np.zeros((h, w), dtype=bool)
        for poly in seg:
            mask |= rasterise_polygon(np.asarray(poly, dtype=np.float64).reshape(-1, 2), h, w)
        return mask
    raise ValueError(f"annotation {ann.get('id')} has no segmentation to decode; pass masks=False")


def _size(item, name: str) -> tuple[int, int]:
    """(H, W) of an item: its image, else its ``height``/``width``, else its masks."""
    if "image" in item:
        return tuple(int(v) for v in np.shape(item["image"])[:2])
    if "height" in item and "width" in item:
        return int(item["height"]), int(item["width"])
    if "masks" in item:
        return tuple(int(v) for v in np.shape(item["masks"])[1:3])
    raise ValueError(f"{name} has no 'image', 'height'/'width' or 'masks' to give its size")
