"""COCO JSON -> flat NumPy tables for :func:`minivision.eval.coco_evaluate` (host island).

This is what pycocotools' ``COCO(...)``, ``COCO.loadRes(...)`` and ``COCOeval._prepare`` do,
without Python objects per annotation past the first read: one pass over the dicts pulls each
field into an array, and every later step is array code. The rules that decide the numbers
(which annotations count, which order ties keep, which area a detection has) are pycocotools';
they are listed, named, in the docstring of :mod:`minivision.eval.coco`.

Host island (DESIGN.md §2): JSON in, NumPy out.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from ..data import rle_batch as rb
from ..data import rle_poly as rp


@dataclass
class GroundTruth:
    """The evaluated ground truth, one row per kept annotation (input order)."""

    img_ids: np.ndarray  # (I,) sorted unique image ids
    cat_ids: np.ndarray  # (K,) sorted unique category ids
    image: np.ndarray  # (G,) index into img_ids
    category: np.ndarray  # (G,) index into cat_ids
    id_is_zero: np.ndarray  # (G,) bool: pycocotools reads a match to id 0 as no match
    area: np.ndarray  # (G,) float64, the annotation's own "area" field
    crowd: np.ndarray  # (G,) bool
    ignore: np.ndarray  # (G,) bool, the annotation's own "ignore" field (unused by default)
    bbox: np.ndarray | None  # (G, 4) xywh float64 (bbox evaluation)
    masks: rb.Intervals | None  # segm evaluation


@dataclass
class Detections:
    """The evaluated detections, one row per result (input order; ids are 1..N as loadRes)."""

    image: np.ndarray  # (N,) index into img_ids
    category: np.ndarray  # (N,) index into cat_ids
    score: np.ndarray  # (N,) float64
    area: np.ndarray  # (N,) float64: box w*h or mask area, as loadRes sets it
    bbox: np.ndarray | None  # (N, 4) xywh float64
    masks: rb.Intervals | None


def read_json(obj, what):
    """A dict/list as given, or the parsed JSON file at path ``obj``."""
    if isinstance(obj, (str, os.PathLike)):
        try:
            with open(obj) as f:
                return json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{what}: {os.fspath(obj)!r} is not valid JSON ({err})") from None
        except OSError as err:
            raise ValueError(f"{what}: cannot read {os.fspath(obj)!r} ({err})") from None
    return obj


def _field(records, key, what, default=None):
    """``[r[key] for r in records]`` with an error naming the first record that lacks it."""
    try:
        if default is None:
            return [r[key] for r in records]
        return [r.get(key, default) for r in records]
    except (KeyError, TypeError, AttributeError):
        for i, r in enumerate(records):
            if not isinstance(r, dict):
                raise ValueError(f"{what}[{i}] must be a dict, got {type(r).__name__}") from None
            if default is None and key not in r:
                raise ValueError(f"{what}[{i}] has no {key!r} field") from None
        raise


def _numbers(values, what, key, shape=None):
    """float64 array of ``values`` (one per record); an error names a non-numeric record."""
    if len(values) == 0:
        return np.zeros((0,) + (shape or ()))
    try:
        a = np.array(values, dtype=np.float64)
        if shape is not None and a.shape[1:] != shape:
            raise ValueError
    except (TypeError, ValueError):
        for i, v in enumerate(values):
            try:
                b = np.array(v, dtype=np.float64)
            except (TypeError, ValueError):
                b = None
            if b is None or (shape is not None and b.shape != shape):
                want = "a number" if shape is None else f"{shape[0]} numbers"
                raise ValueError(f"{what}[{i}][{key!r}] must be {want}, got {v!r}") from None
        raise
    return a.reshape((len(values),) + (shape or ()))


def _check_finite(a, what, key):
    bad = ~np.isfinite(a) if a.ndim == 1 else ~np.isfinite(a).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{what}[{i}][{key!r}] must be finite, got {a[i].tolist()}")


def _check_boxes(b, what):
    _check_finite(b, what, "bbox")
    bad = (b[:, 2] < 0) | (b[:, 3] < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{what}[{i}]['bbox'] = {b[i].tolist()} has a negative width or height "
            "(COCO boxes are [x, y, width, height])"
        )


def _lookup(ids, table):
    """(index of each id in the sorted ``table``, whether it is there at all)."""
    pos = np.searchsorted(table, ids)
    pos = np.minimum(pos, max(len(table) - 1, 0))
    ok = (table[pos] == ids) if len(table) else np.zeros(len(ids), dtype=bool)
    return pos, ok


def load_gt(gt, iou_type):
    gt = read_json(gt, "gt")
    if not isinstance(gt, dict):
        raise ValueError(f"gt must be a COCO dict with 'images' and 'annotations', got {type(gt).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(gt.get(key), list):
            raise ValueError(f"gt[{key!r}] must be a list")
    images, anns, cats = gt["images"], gt["annotations"], gt["categories"]
    img_ids = np.unique(_numbers(_field(images, "id", "gt['images']"), "gt['images']", "id"))
    cat_ids = np.unique(_numbers(_field(cats, "id", "gt['categories']"), "gt['categories']", "id"))
    what = "gt['annotations']"
    ann_id = _numbers(_field(anns, "id", what), what, "id")
    if len(np.unique(ann_id)) != len(ann_id):
        _, first, counts = np.unique(ann_id, return_index=True, return_counts=True)
        dup = ann_id[first[counts > 1][0]]
        i = int(np.flatnonzero(ann_id == dup)[1])
        raise ValueError(f"{what}[{i}]['id'] = {dup:g} repeats an earlier annotation id")
    image = _numbers(_field(anns, "image_id", what), what, "image_id")
    category = _numbers(_field(anns, "category_id", what), what, "category_id")
    # pycocotools looks annotations up by image and category: others simply do not take part.
    img_pos, img_ok = _lookup(image, img_ids)
    cat_pos, cat_ok = _lookup(category, cat_ids)
    keep = np.flatnonzero(img_ok & cat_ok)
    kept = [anns[i] for i in keep] if len(keep) != len(anns) else anns
    area = _numbers(_field(kept, "area", what), what, "area")
    _check_finite(area, what, "area")
    crowd = _numbers(_field(kept, "iscrowd", what, default=0), what, "iscrowd") != 0
    ignore = _numbers(_field(kept, "ignore", what, default=0), what, "ignore") != 0
    bbox = masks = None
    if iou_type == "bbox":
        bbox = _numbers(_field(kept, "bbox", what), what, "bbox", shape=(4,))
        _check_boxes(bbox, what)
    else:
        hw = _image_sizes(images, img_ids)
        size = hw[img_pos[keep]]
        masks = _masks(_field(kept, "segmentation", what), size, what, keep)[0]
    return GroundTruth(
        img_ids, cat_ids, img_pos[keep], cat_pos[keep], ann_id[keep] == 0,
        area, crowd, ignore, bbox, masks,
    )


def _image_sizes(images, img_ids):
    """(I, 2) int64 (height, width) of each sorted image id (the last entry wins, as COCO's index)."""
    what = "gt['images']"
    ids = _numbers(_field(images, "id", what), what, "id")
    h = _numbers(_field(images, "height", what), what, "height")
    w = _numbers(_field(images, "width", what), what, "width")
    hw = np.zeros((len(img_ids), 2), dtype=np.int64)
    hw[np.searchsorted(img_ids, ids)] = np.stack([h, w], axis=1).astype(np.int64)
    return hw


def _masks(segs, size, what, index):
    """Polygons, uncompressed or compressed RLE -> ``Intervals`` (pycocotools' annToRLE)."""
    kinds = rp.classify_segmentations(segs, lambda i: f"{what}[{int(index[i])}]['segmentation']")
    counts, offsets, h, w = rp.segmentations_to_counts(segs, kinds, size)
    bad = (h != size[:, 0]) | (w != size[:, 1])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{what}[{int(index[i])}]['segmentation'] has size {[int(h[i]), int(w[i])]}, "
            f"but its image is {size[i].tolist()} (height, width)"
        )
    return rb.Intervals.from_counts(counts, offsets, h, w), counts, offsets


def load_dt(dt, gt: GroundTruth, gt_json, iou_type):
    """Results -> :class:`Detections`, as ``COCO.loadRes`` prepares them."""
    dt = read_json(dt, "dt")
    if not isinstance(dt, list):
        raise ValueError(f"dt must be a list of COCO result dicts, got {type(dt).__name__}")
    what = "dt"
    n = len(dt)
    image = _numbers(_field(dt, "image_id", what), what, "image_id") if n else np.zeros(0)
    category = _numbers(_field(dt, "category_id", what), what, "category_id") if n else np.zeros(0)
    img_pos, img_ok = _lookup(image, gt.img_ids)
    if not img_ok.all():
        i = int(np.flatnonzero(~img_ok)[0])
        raise ValueError(f"dt[{i}]['image_id'] = {dt[i]['image_id']!r} is not an image of gt")
    cat_pos, cat_ok = _lookup(category, gt.cat_ids)
    if not cat_ok.all():
        i = int(np.flatnonzero(~cat_ok)[0])
        raise ValueError(f"dt[{i}]['category_id'] = {dt[i]['category_id']!r} is not a category of gt")
    score = _numbers(_field(dt, "score", what), what, "score") if n else np.zeros(0)
    if np.isnan(score).any():
        i = int(np.flatnonzero(np.isnan(score))[0])
        raise ValueError(f"dt[{i}]['score'] is NaN")
    # loadRes picks one branch for all results from the first one: boxes, else masks.
    box_branch = n == 0 or ("bbox" in dt[0] and not _is_empty_list(dt[0]["bbox"]))
    bbox = masks = None
    if not box_branch and not (isinstance(dt[0], dict) and "segmentation" in dt[0]):
        raise ValueError("dt[0] has neither a 'bbox' nor a 'segmentation': nothing to evaluate")
    hw = _image_sizes(gt_json["images"], gt.img_ids) if iou_type == "segm" or not box_branch else None
    if box_branch:
        bbox = _numbers(_field(dt, "bbox", what), what, "bbox", shape=(4,)) if n else np.zeros((0, 4))
        _check_boxes(bbox, what)
        area = bbox[:, 2] * bbox[:, 3]
        if iou_type == "segm":
            segs = [d.get("segmentation") for d in dt]
            for i in np.flatnonzero([s is None for s in segs]):
                x, y, bw, bh = dt[i]["bbox"]
                segs[i] = [[x, y, x, y + bh, x + bw, y + bh, x + bw, y]]
            masks = _masks(segs, hw[img_pos], what, np.arange(n))[0]
    else:
        masks, counts, offsets = _masks(_field(dt, "segmentation", what), hw[img_pos], what, np.arange(n))
        area = rb.area(counts, offsets).astype(np.float64)
        if iou_type == "bbox":
            given = ["bbox" in d for d in dt]
            bbox = rb.counts_to_bbox(counts, offsets, masks.h, masks.w)
            if any(given):
                idx = np.flatnonzero(given)
                bbox[idx] = _numbers([dt[i]["bbox"] for i in idx], what, "bbox", shape=(4,))
            _check_boxes(bbox, what)
    return Detections(img_pos, cat_pos, score, area, bbox, masks)


def _is_empty_list(v):
    return isinstance(v, list) and len(v) == 0

