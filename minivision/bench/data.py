"""Benchmark entries for minivision.data.

``shapes``: generating 100 scenes of 128 x 128 (default settings, and textured with noise)
against *reading the same images* back from PNG bytes in memory with imageio -- making a
scene with all its targets should cost about what loading a stored image costs.

``to_coco``: the COCO export of 100 default scenes (uncompressed RLE of every mask, boxes,
areas) against ``pycocotools.mask.encode`` + ``toBbox`` + ``area`` of the same masks.
"""

from __future__ import annotations

import io

import numpy as np

from . import Row, timeit


def bench_shapes(repeats: int) -> list[Row]:
    import imageio.v3 as iio

    from ..data import Shapes

    rows = []
    for name, kw in [("default", {}), ("texture+noise", dict(background="texture", noise=8.0))]:
        ds = Shapes(100, **kw)
        pngs = []
        for item in ds:
            buffer = io.BytesIO()
            iio.imwrite(buffer, item["image"], extension=".png")
            pngs.append(buffer.getvalue())
        if not all(np.array_equal(iio.imread(p), ds[i]["image"]) for i, p in enumerate(pngs)):
            raise AssertionError("PNG round trip changed the benchmark images")
        mine, ref = timeit(
            lambda ds=ds: [ds[i] for i in range(len(ds))],
            lambda pngs=pngs: [iio.imread(p) for p in pngs],
            max(3, repeats // 3),
            warmup=1,
        )
        rows.append(Row("shapes", f"100 x 128² {name}", mine, ref, "imageio PNG decode"))
    return rows


def bench_to_coco(repeats: int) -> list[Row]:
    from pycocotools import mask as mask_utils

    from ..data import Shapes, to_coco

    items = list(Shapes(100))
    masks = [np.asfortranarray(it["masks"].transpose(1, 2, 0).astype(np.uint8)) for it in items]

    def reference():
        for m in masks:
            rles = mask_utils.encode(m)
            mask_utils.toBbox(rles), mask_utils.area(rles)

    mine, ref = timeit(lambda: to_coco(items, classes=Shapes(0).classes), reference, repeats)
    return [Row("to_coco", "100 x 128² default", mine, ref, "pycocotools encode+toBbox+area")]


BENCHMARKS = {"shapes": bench_shapes, "to_coco": bench_to_coco}
