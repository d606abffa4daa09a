"""Benchmark entries for minivision.ops.boxes."""

from __future__ import annotations

import numpy as np

from . import Row, timeit


def random_boxes(n, seed, scale=500.0):
    """n float32 xyxy boxes with corners in [0, scale) and sides in [0, scale)."""
    rng = np.random.default_rng(seed)
    b = rng.random((n, 4), dtype=np.float32) * scale
    b[:, 2:] += b[:, :2]
    return b


def bench_box_iou(repeats: int) -> list[Row]:
    import torch
    import torchvision.ops

    from ..ops.boxes import box_iou

    a, b = random_boxes(2000, 1), random_boxes(2000, 2)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    if not np.array_equal(box_iou(a, b), torchvision.ops.box_iou(ta, tb).numpy(), equal_nan=True):
        raise AssertionError("box_iou disagrees with torchvision on the benchmark workload")
    mine, ref = timeit(lambda: box_iou(a, b), lambda: torchvision.ops.box_iou(ta, tb), repeats)
    return [Row("box_iou", "2000 x 2000 float32", mine, ref, "torchvision.ops.box_iou")]


BENCHMARKS = {"box_iou": bench_box_iou}
