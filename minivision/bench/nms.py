"""Benchmark entries for minivision.ops.nms: greedy NMS on clustered boxes, as detectors produce them.

The workload is the generator of torchvision-semantics.md §16: boxes jittered around 50
cluster centres in an 800 x 1088 image with random scores, so that most boxes overlap a
better one (2,000 boxes keep 302 at IoU 0.5, 12,000 keep 726). torchvision's CPU kernel is a
single-threaded loop, so it runs with one torch thread (the previous count is restored).
"""

from __future__ import annotations

from . import Row, timeit


def clustered_boxes(n, n_clusters=50, img=(800, 1088), seed=0):
    """``n`` float32 torch boxes around ``n_clusters`` centres, and random scores (§16)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    height, width = img
    centres = torch.rand(n_clusters, 2, generator=g) * torch.tensor([width, height])
    sizes = 20 + torch.rand(n_clusters, 2, generator=g) * 180  # cluster box w, h in [20, 200)
    cid = torch.randint(0, n_clusters, (n,), generator=g)
    ctr = centres[cid] + torch.randn(n, 2, generator=g) * sizes[cid] * 0.15
    wh = sizes[cid] * (1 + 0.2 * torch.randn(n, 2, generator=g)).clamp(min=0.3)
    boxes = torch.cat([ctr - wh / 2, ctr + wh / 2], 1)
    scores = torch.rand(n, generator=g)
    return boxes.float().contiguous(), scores.float().contiguous()


def _row(tb, ts, t, repeats) -> Row:
    import numpy as np
    import torchvision.ops

    from ..ops.nms import nms

    b, s = tb.numpy(), ts.numpy()
    if not np.array_equal(nms(b, s, t), torchvision.ops.nms(tb, ts, t).numpy()):
        raise AssertionError(f"nms disagrees with torchvision on {len(s)} boxes at IoU {t}")
    mine, ref = timeit(lambda: nms(b, s, t), lambda: torchvision.ops.nms(tb, ts, t), repeats)
    workload = f"{len(s)} clustered, IoU {t}"
    return Row("nms", workload, mine, ref, "torchvision.ops.nms, 1 thread")


def bench_nms(repeats: int) -> list[Row]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows = []
        for n, seed in [(2000, 1), (12000, 2)]:
            tb, ts = clustered_boxes(n, seed=seed)
            rows += [_row(tb, ts, t, repeats) for t in (0.5, 0.7)]
        return rows
    finally:
        torch.set_num_threads(threads)


BENCHMARKS = {"nms": bench_nms}
