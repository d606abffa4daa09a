"""``python -m minivision bench [OP ...]``: minivision against its reference, in one process.

Every entry times minivision and the reference on the same fixed, realistic workload: two
warm-up calls, then the median of ``repeats`` calls. The ratio minivision / reference is what
the issues set targets for (<= 1.0 means minivision is at least as fast). Timings are printed,
never asserted in a test. References whose kernel is single-threaded are run with one torch
thread; the others keep torch's default thread count, which the header prints.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass
class Row:
    op: str
    workload: str
    minivision_ms: float
    reference_ms: float
    reference: str

    @property
    def ratio(self) -> float:
        return self.minivision_ms / self.reference_ms


def timeit(mine: Callable[[], object], ref: Callable[[], object], repeats: int, warmup: int = 2):
    """Median wall times (ms) of ``mine()`` and ``ref()`` after ``warmup`` calls of each.

    The calls alternate, so that a burst of load from elsewhere on a shared machine slows
    both sides alike instead of whichever happened to be running.
    """
    for _ in range(warmup):
        mine()
        ref()
    times = ([], [])
    for _ in range(repeats):
        for fn, bucket in zip((mine, ref), times):
            t0 = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - t0)
    return tuple(statistics.median(t) * 1e3 for t in times)


def random_boxes(n, seed, scale=500.0):
    """n float32 xyxy boxes with corners in [0, scale) and sides in [0, scale)."""
    rng = np.random.default_rng(seed)
    b = rng.random((n, 4), dtype=np.float32) * scale
    b[:, 2:] += b[:, :2]
    return b


def bench_box_iou(repeats: int) -> list[Row]:
    import torch
    import torchvision.ops

    from .boxes import box_iou

    a, b = random_boxes(2000, 1), random_boxes(2000, 2)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    if not np.array_equal(box_iou(a, b), torchvision.ops.box_iou(ta, tb).numpy(), equal_nan=True):
        raise AssertionError("box_iou disagrees with torchvision on the benchmark workload")
    mine, ref = timeit(lambda: box_iou(a, b), lambda: torchvision.ops.box_iou(ta, tb), repeats)
    return [Row("box_iou", "2000 x 2000 float32", mine, ref, "torchvision.ops.box_iou")]


BENCHMARKS: dict[str, Callable[[int], list[Row]]] = {
    "box_iou": bench_box_iou,
}


def run(ops=None, repeats: int = 15, out=print) -> list[Row]:
    import torch

    ops = list(ops or BENCHMARKS)
    unknown = [op for op in ops if op not in BENCHMARKS]
    if unknown:
        raise ValueError(f"OP must be among {sorted(BENCHMARKS)}, got {unknown}")
    out(
        f"numpy {np.__version__}, torch {torch.__version__}, torch threads {torch.get_num_threads()}, "
        f"median of {repeats} calls after 2 warm-ups"
    )
    rows = [row for op in ops for row in BENCHMARKS[op](repeats)]
    header = f"{'op':<12} {'workload':<24} {'minivision ms':>14} {'reference ms':>13} {'ratio':>6}  reference"
    out(header)
    out("-" * len(header))
    for r in rows:
        out(
            f"{r.op:<12} {r.workload:<24} {r.minivision_ms:>14.2f} {r.reference_ms:>13.2f} "
            f"{r.ratio:>6.2f}  {r.reference}"
        )
    return rows
