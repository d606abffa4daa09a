"""Benchmark entries for minivision.eval: COCO evaluation against pycocotools.

The workload is a COCO-val-sized synthetic evaluation generated with a fixed seed: 5,000
images of 640 x 480, 80 categories, about 7 ground-truth objects per image (1 in 50 a crowd
region), and 100 detections per image -- jittered copies of the objects (the right category
mostly) plus clutter, with scores rounded to 0.001 so that ties occur as in real detector
output. The reference time is pycocotools' ``evaluate()`` + ``accumulate()`` (its loading,
``loadRes`` and ``summarize`` are not counted); minivision's is the whole ``coco_evaluate``
call from the same dicts (loading, matching, accumulation and summary). pycocotools runs once
(it takes minutes), minivision's time is the best of up to three calls; both results must be
equal bit for bit before a row is printed.

``coco_segm`` runs the same 5,000 images with masks (objects as polygons, crowd regions as
uncompressed RLE, detections as compressed RLE masks); pycocotools takes about a minute there.
"""

from __future__ import annotations

import contextlib
import copy
import io
import time

import numpy as np

from . import Row


def synthetic_coco(n_images=5000, n_categories=80, seed=0, masks=False, width=640, height=480):
    """(gt dict, list of result dicts): a seeded COCO-like evaluation.

    With ``masks=True`` objects are polygons (crowd regions uncompressed RLE, as in COCO
    files) and detections are compressed RLE masks of jittered polygons, with boxes.
    """
    rng = np.random.default_rng(seed)
    images = [{"id": i + 1, "width": width, "height": height} for i in range(n_images)]
    cats = [{"id": c + 1, "name": f"class{c + 1}"} for c in range(n_categories)]
    anns, dts = [], []
    for im in images:
        n_obj = int(rng.poisson(7))
        img_cats = rng.integers(1, n_categories + 1, size=max(1, int(rng.integers(1, 5))))
        side = np.exp(rng.uniform(np.log(6), np.log(350), size=(n_obj, 2)))
        wh = np.minimum(side, [width - 1, height - 1])
        xy = rng.uniform(0, 1, size=(n_obj, 2)) * ([width, height] - wh)
        boxes = np.concatenate([xy, wh], axis=1).round(2)
        cat = rng.choice(img_cats, size=n_obj)
        crowd = rng.random(n_obj) < 0.02
        # Detections: 1-4 jittered copies per object, the rest clutter, 100 in all.
        copies = rng.integers(1, 5, size=n_obj)
        src = np.repeat(np.arange(n_obj), copies)[:100]
        jit = boxes[src] + rng.normal(0, 0.08, (len(src), 4)) * np.repeat(boxes[src, 2:], 2, axis=1)
        n_clutter = 100 - len(src)
        cwh = np.exp(rng.uniform(np.log(6), np.log(300), size=(n_clutter, 2)))
        cxy = rng.uniform(0, 1, size=(n_clutter, 2)) * np.maximum([width, height] - cwh, 1)
        dboxes = np.concatenate([jit, np.concatenate([cxy, cwh], axis=1)])
        dboxes[:, 2:] = np.maximum(dboxes[:, 2:], 1.0)
        dboxes = dboxes.round(2)
        dcat = np.concatenate([
            np.where(rng.random(len(src)) < 0.9, cat[src], rng.choice(img_cats, len(src))),
            rng.integers(1, n_categories + 1, size=n_clutter),
        ])
        score = rng.random(100).round(3)
        for j in range(n_obj):
            a = {"id": len(anns) + 1, "image_id": im["id"], "category_id": int(cat[j]),
                 "bbox": boxes[j].tolist(), "iscrowd": int(crowd[j])}
            if masks:
                a["segmentation"] = [_ellipse(boxes[j], rng)]
            else:
                a["area"] = float((boxes[j, 2] * boxes[j, 3] * rng.uniform(0.5, 0.9)).round(2))
            anns.append(a)
        for j in range(100):
            d = {"image_id": im["id"], "category_id": int(dcat[j]), "score": float(score[j])}
            d["segmentation" if masks else "bbox"] = _ellipse(dboxes[j], rng) if masks else dboxes[j].tolist()
            dts.append(d)
    if masks:
        _rasterise(anns, dts, height, width)
    return {"images": images, "categories": cats, "annotations": anns}, dts


def _rasterise(anns, dts, height, width, chunk=20000):
    """Polygon areas, crowd regions as uncompressed RLE, detections as compressed RLE + box."""
    from ..data import rle_batch as rb
    from ..data import rle_poly as rp

    for lo in range(0, len(anns), chunk):
        part = anns[lo:lo + chunk]
        counts, off = rp.polygons_to_counts([a["segmentation"][0] for a in part],
                                            np.full(len(part), height), np.full(len(part), width))
        areas = rb.area(counts, off)
        for i, a in enumerate(part):
            a["area"] = float(areas[i])
            if a["iscrowd"]:
                a["segmentation"] = {"size": [height, width],
                                     "counts": counts[off[i]:off[i + 1]].tolist()}
    for lo in range(0, len(dts), chunk):
        part = dts[lo:lo + chunk]
        counts, off = rp.polygons_to_counts([d["segmentation"] for d in part],
                                            np.full(len(part), height), np.full(len(part), width))
        boxes = rb.counts_to_bbox(counts, off, np.full(len(part), height), np.full(len(part), width))
        strings = rb.counts_to_strings(counts, off)
        for i, d in enumerate(part):
            d["segmentation"] = {"size": [height, width], "counts": strings[i].decode()}
            d["bbox"] = boxes[i].tolist()


def _ellipse(box, rng, n=16):
    """A 16-vertex jittered ellipse inscribed in box [x, y, w, h], as a flat COCO polygon."""
    x, y, w, h = box
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = rng.uniform(0.85, 1.0, n)
    px = x + w / 2 + r * np.cos(t) * w / 2
    py = y + h / 2 + r * np.sin(t) * h / 2
    return np.stack([px, py], axis=1).round(2).ravel().tolist()


def _pycocotools(gt, dt, iou_type):
    """Seconds of pycocotools' evaluate() + accumulate(), and its stats."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = copy.deepcopy(gt)
        cg.createIndex()
        cd = cg.loadRes(copy.deepcopy(dt))
        E = COCOeval(cg, cd, iou_type)
        t0 = time.perf_counter()
        E.evaluate()
        E.accumulate()
        seconds = time.perf_counter() - t0
        E.summarize()
    return seconds, E


def _entry(op, iou_type, n_images, repeats):
    from ..eval import coco_evaluate

    gt, dt = synthetic_coco(n_images, seed=0, masks=iou_type == "segm")
    ref_s, E = _pycocotools(gt, dt, iou_type)
    mine = []
    for _ in range(max(1, min(repeats, 3))):
        t0 = time.perf_counter()
        res = coco_evaluate(gt, dt, iou_type)
        mine.append(time.perf_counter() - t0)
    same = (
        np.array_equal(res.precision, E.eval["precision"])
        and np.array_equal(res.recall, E.eval["recall"])
        and np.array_equal(res.stats, np.asarray(E.stats))
    )
    if not same:
        raise AssertionError(f"coco_evaluate ({iou_type}) disagrees with pycocotools on the benchmark")
    workload = f"{n_images} img x 80 cat, {len(dt) // n_images} det"
    return [Row(op, workload, min(mine) * 1e3, ref_s * 1e3, "pycocotools evaluate+accumulate")]


def bench_coco_bbox(repeats: int) -> list[Row]:
    return _entry("coco_bbox", "bbox", 5000, repeats)


def bench_coco_segm(repeats: int) -> list[Row]:
    return _entry("coco_segm", "segm", 5000, repeats)


BENCHMARKS = {"coco_bbox": bench_coco_bbox, "coco_segm": bench_coco_segm}
