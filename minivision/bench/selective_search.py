"""Benchmark and quality entries for minivision.proposals.selective_search (against OpenCV's).

``selective_search``: seconds per image in "fast" mode against
``cv2.ximgproc.segmentation.createSelectiveSearchSegmentation().switchToSelectiveSearchFast()``
on the same photographs, in the same process.

``ss_quality``: proposal quality on a YOLO-format dataset (default ``../shared/data/coco128-train``;
set ``MINIVISION_COCO128`` to use another folder, ``MINIVISION_SS_LIMIT`` to use only the first
N images): recall at IoU 0.5 and 0.7, MABO (paper §5: mean over classes of the mean best IoU of
the class's ground-truth boxes) and boxes per image, for minivision and OpenCV. Also usable as
``python -m minivision.bench.selective_search [--limit N] [--mode fast] [--json FILE]``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from . import Row, timeit

COCO_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "coco128-train"


def dataset_dir() -> Path:
    return Path(os.environ.get("MINIVISION_COCO128", COCO_DIR))


def load_dataset(path, limit=None):
    """[(stem, RGB uint8 image, (G, 4) float64 xyxy pixel boxes, (G,) class ids)], with boxes."""
    from skimage import io

    path = Path(path)
    out = []
    for img_path in sorted((path / "images").glob("*.jpg")):
        label = path / "labels" / (img_path.stem + ".txt")
        if not label.is_file():
            continue
        rows = np.loadtxt(label, ndmin=2)
        if rows.size == 0:
            continue
        image = io.imread(img_path)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        image = image[..., :3]
        h, w = image.shape[:2]
        cx, cy, bw, bh = rows[:, 1] * w, rows[:, 2] * h, rows[:, 3] * w, rows[:, 4] * h
        gt = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        out.append((img_path.stem, image, gt, rows[:, 0].astype(int)))
        if limit is not None and len(out) >= limit:
            break
    return out


def opencv_selective_search(image, mode="fast"):
    """OpenCV's boxes as (N, 4) float64 xyxy (from (x, y, w, h)), in OpenCV's order."""
    import cv2

    ss = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    ss.setBaseImage(np.ascontiguousarray(image[..., ::-1]))  # OpenCV expects BGR
    if mode == "fast":
        ss.switchToSelectiveSearchFast()
    elif mode == "quality":
        ss.switchToSelectiveSearchQuality()
    else:
        ss.switchToSingleStrategy()
    r = ss.process().astype(np.float64).reshape(-1, 4)
    return np.concatenate([r[:, :2], r[:, :2] + r[:, 2:]], axis=1)


def best_iou(gt, boxes):
    """(G,) best IoU of each ground-truth box over ``boxes`` (0 when there are none)."""
    from ..eval.proposals import best_overlap

    return np.asarray(best_overlap(np.asarray(gt, np.float64), np.asarray(boxes, np.float64).reshape(-1, 4)))


def topk_best_iou(gt, boxes, ks):
    """(len(ks), G): best IoU of each ground-truth box among the first k boxes, for each k."""
    from ..eval.proposals import best_overlap

    gt, boxes = np.asarray(gt, np.float64), np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.asarray(best_overlap(gt, boxes, ks))


def summarise(best, classes):
    """recall@0.5, recall@0.7 (IoU >= t) and MABO from per-GT best IoUs and class ids
    (:mod:`minivision.eval.proposals`)."""
    from ..eval.proposals import mabo, proposal_recall

    best, classes = np.asarray(best, np.float64), np.asarray(classes, np.int64)
    r50, r70 = (float(r) for r in proposal_recall(best, (0.5, 0.7)))
    return {"recall@0.5": r50, "recall@0.7": r70, "MABO": float(mabo(best, classes))}


def evaluate(dataset, methods, log=None, match=None):
    """Run every method on every image; returns {name: summary with boxes/img and s/img}.

    ``match=(ours, ref)`` adds a row "<ours> top-N": the first N of ``ours``'s ranked boxes,
    N = the number of boxes ``ref`` gave on the same image (quality at an equal box budget).
    """
    names = list(methods) + ([f"{match[0]} top-N"] if match else [])
    acc = {name: {"best": [], "classes": [], "boxes": [], "seconds": []} for name in names}
    for i, (stem, image, gt, cls) in enumerate(dataset):
        got = {}
        for name, fn in methods.items():
            t0 = time.perf_counter()
            boxes = np.asarray(fn(image))
            acc[name]["seconds"].append(time.perf_counter() - t0)
            got[name] = boxes
        if match:
            got[names[-1]] = got[match[0]][: len(got[match[1]])]
            acc[names[-1]]["seconds"].append(acc[match[0]]["seconds"][-1])
        for name, boxes in got.items():
            acc[name]["boxes"].append(len(boxes))
            acc[name]["best"].extend(best_iou(gt, boxes).tolist())
            acc[name]["classes"].extend(cls.tolist())
        if log is not None:
            log(i + 1, len(dataset), stem, {n: _summary(a) for n, a in acc.items()})
    return {n: _summary(a) for n, a in acc.items()}


def _summary(a):
    s = summarise(a["best"], a["classes"])
    s["images"] = len(a["boxes"])
    s["gt boxes"] = len(a["best"])
    s["boxes/img"] = float(np.mean(a["boxes"]))
    s["s/img"] = float(np.mean(a["seconds"]))
    return s


def _methods(mode):
    from ..proposals.selective_search import selective_search

    return {
        f"minivision {mode}": lambda im: selective_search(im, mode),
        f"opencv {mode}": lambda im: opencv_selective_search(im, mode),
    }


def bench_selective_search(repeats: int) -> list[Row]:
    from ..proposals.selective_search import selective_search

    path = dataset_dir()
    if not path.is_dir():
        print(f"selective_search: skipping, {path} is absent")
        return []
    rows = []
    for stem, image, _, _ in load_dataset(path, limit=2):
        ours = selective_search(image, "fast")
        if ours.shape[1] != 4 or len(ours) == 0:
            raise AssertionError("selective_search returned no boxes")
        h, w = image.shape[:2]
        mine, theirs = timeit(
            lambda image=image: selective_search(image, "fast"),
            lambda image=image: opencv_selective_search(image, "fast"),
            max(1, min(repeats, 3)),
            warmup=1,
        )
        rows.append(Row("ss fast", f"coco {stem[-4:]} {w}x{h}", mine, theirs, "cv2 SS fast"))
    return rows


def bench_quality(repeats: int, data=None) -> list[Row]:
    path = dataset_dir() if data is None else Path(data)
    if not path.is_dir():
        print(f"ss_quality: skipping, {path} is absent")
        return []
    limit = os.environ.get("MINIVISION_SS_LIMIT")
    dataset = load_dataset(path, limit=int(limit) if limit else None)
    results = evaluate(dataset, _methods("fast"), match=("minivision fast", "opencv fast"))
    for name, s in results.items():
        print(_format(name, s))
    ours, ref = results["minivision fast"], results["opencv fast"]
    return [
        Row(
            "ss quality",
            f"{len(dataset)} imgs, s/img",
            ours["s/img"] * 1e3,
            ref["s/img"] * 1e3,
            "cv2 SS fast (quality printed above)",
        )
    ]


def _format(name, s):
    return (
        f"{name:<22} images {s['images']:4d} gt {s['gt boxes']:5d}  R@0.5 {s['recall@0.5']:.3f}  "
        f"R@0.7 {s['recall@0.7']:.3f}  MABO {s['MABO']:.3f}  boxes/img {s['boxes/img']:7.0f}  "
        f"s/img {s['s/img']:.2f}"
    )


BENCHMARKS = {"selective_search": bench_selective_search, "ss_quality": bench_quality}


def main(argv=None):
    import argparse

    p = argparse.ArgumentParser(description="selective search quality against OpenCV")
    p.add_argument("--data", default=str(dataset_dir()))
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--mode", default="fast")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    dataset = load_dataset(args.data, limit=args.limit)[args.start :]

    def log(i, n, stem, summary):
        print(f"[{i}/{n}] {stem}", flush=True)
        for name, s in summary.items():
            print("  " + _format(name, s), flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(summary, indent=1))

    m = _methods(args.mode)
    evaluate(dataset, m, log=log, match=tuple(m))


if __name__ == "__main__":
    main()
