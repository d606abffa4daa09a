"""Benchmark entries for minivision.proposals.felzenszwalb (against scikit-image, single-threaded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import Row, timeit

# ../shared/data/coco128-train beside the repository (the course workspace); optional.
COCO_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "coco128-train"
COCO_IMAGE = "000000000009.jpg"  # 640 x 480 (W x H), colour


def _workloads():
    from skimage import data, io

    yield "astronaut 512x512", data.astronaut()
    path = COCO_DIR / "images" / COCO_IMAGE
    if path.is_file():
        yield "coco 640x480", io.imread(path)
    else:
        print(f"felzenszwalb: skipping the COCO photograph, {path} is absent")


def bench_felzenszwalb(repeats: int) -> list[Row]:
    from skimage.segmentation import felzenszwalb as sk_felzenszwalb

    from ..proposals.felzenszwalb import felzenszwalb

    params = dict(scale=100, sigma=0.5, min_size=50)
    rows = []
    for name, image in _workloads():
        ours = felzenszwalb(image, **params)
        ref = sk_felzenszwalb(image, **params)
        if not np.array_equal(ours, ref):
            raise AssertionError(f"felzenszwalb disagrees with scikit-image on {name}")
        mine, theirs = timeit(
            lambda image=image: felzenszwalb(image, **params),
            lambda image=image: sk_felzenszwalb(image, **params),
            repeats,
        )
        rows.append(
            Row(
                "felzenszwalb",
                f"{name} k=100 s=.5 m=50",
                mine,
                theirs,
                "skimage.segmentation.felzenszwalb",
            )
        )
    return rows


BENCHMARKS = {"felzenszwalb": bench_felzenszwalb}
