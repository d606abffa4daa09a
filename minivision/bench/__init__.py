"""``python -m minivision bench [OP ...]``: minivision against its reference, in one process.

Every entry times minivision and the reference on the same fixed, realistic workload: two
warm-up calls, then the median of ``repeats`` calls. The ratio minivision / reference is what
the issues set targets for (<= 1.0 means minivision is at least as fast). Timings are printed,
never asserted in a test. Each module of this package adds its entries in a ``BENCHMARKS``
dict (op name -> function of ``repeats`` returning rows). References whose kernel is single-threaded are run with one torch
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


def blas_threads() -> int:
    """The thread count NumPy's BLAS uses: its environment variables, else every CPU.

    Training-step entries give torch as many threads, so both sides compute alike.
    """
    import os

    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return os.cpu_count() or 1


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    """The shortest wall time of ``repeat`` calls of ``fn()``, in **seconds** (the notebooks' timer).

    The minimum, not the mean: on a shared machine every disturbance only adds time, so the
    fastest call is the best estimate of the code's own cost.
    """
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


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


def _discover() -> dict[str, Callable[[int], list[Row]]]:
    """Every module in this package contributes a ``BENCHMARKS`` dict: op name -> entry."""
    import importlib
    import pkgutil

    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.update(getattr(module, "BENCHMARKS", {}))  # helper modules have none
    return found


def run(ops=None, repeats: int = 15, out=print, data=None) -> list[Row]:
    """Run the entries ``ops`` (default: all) and print one row each; returns the rows.

    ``data`` is the YOLO-format dataset folder for the entries that measure on real photographs
    (``ss_quality``); an entry receives it when its function has a ``data`` parameter.
    """
    import inspect

    import torch

    benchmarks = _discover()
    ops = list(ops or benchmarks)
    unknown = [op for op in ops if op not in benchmarks]
    if unknown:
        raise ValueError(f"OP must be among {sorted(benchmarks)}, got {unknown}")
    out(
        f"numpy {np.__version__}, torch {torch.__version__}, torch threads {torch.get_num_threads()}, "
        f"median of {repeats} calls after 2 warm-ups"
    )
    rows = []
    for op in ops:
        entry = benchmarks[op]
        takes_data = "data" in inspect.signature(entry).parameters
        rows += entry(repeats, data=data) if takes_data else entry(repeats)
    header = f"{'op':<12} {'workload':<24} {'minivision ms':>14} {'reference ms':>13} {'ratio':>6}  reference"
    out(header)
    out("-" * len(header))
    for r in rows:
        out(
            f"{r.op:<12} {r.workload:<24} {r.minivision_ms:>14.2f} {r.reference_ms:>13.2f} "
            f"{r.ratio:>6.2f}  {r.reference}"
        )
    return rows
