"""Benchmark entry for minivision.eval.segmentation (against torchmetrics, one torch thread).

``seg_metrics``: the confusion matrix of a batch of label maps and every score read from it,
PASCAL-VOC-like (8 images of 512 x 512, 21 classes, 5% of the pixels 255 = ignored), with
``confusion_matrix`` + ``segmentation_scores`` on NumPy against torchmetrics'
``multiclass_jaccard_index`` (confusion matrix, then mIoU), both without value checks. The
mIoU is compared first.
"""

from __future__ import annotations

import numpy as np

from . import Row, timeit


def _maps(n=8, size=512, classes=21, seed=0):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, classes, (n, size // 16, size // 16)).repeat(16, 1).repeat(16, 2)
    noisy = rng.random(target.shape) < 0.2
    pred = np.where(noisy, rng.integers(0, classes, target.shape), target)
    target = np.where(rng.random(target.shape) < 0.05, 255, target)
    return pred.astype(np.int64), target.astype(np.int64), classes


def bench_seg_metrics(repeats: int) -> list[Row]:
    import torch
    from torchmetrics.functional.classification import multiclass_jaccard_index

    from ..eval.segmentation import confusion_matrix, segmentation_scores

    pred, target, c = _maps()
    tp, tt = torch.from_numpy(pred).reshape(-1), torch.from_numpy(target).reshape(-1)

    def ours():
        return segmentation_scores(confusion_matrix(pred, target, c, 255))

    def theirs():
        return multiclass_jaccard_index(tp, tt, c, ignore_index=255, validate_args=False)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        got, ref = float(ours().mean_iou), float(theirs())
        if not np.isclose(got, ref, rtol=1e-6):
            raise AssertionError(f"seg_metrics: mIoU {got} differs from torchmetrics' {ref}")
        mine, other = timeit(ours, theirs, repeats)
    finally:
        torch.set_num_threads(threads)
    return [
        Row(
            "seg_metrics",
            "8x512x512, 21 classes",
            mine,
            other,
            "torchmetrics jaccard (1 thread)",
        )
    ]


BENCHMARKS = {"seg_metrics": bench_seg_metrics}
