"""Benchmark entries for minivision.ops: RoIAlign and RoI pooling, forward and forward+backward.

The workload of torchvision-semantics.md §16: a 1 x 256 x 50 x 68 float32 feature map (an
800 x 1088 image at stride 16), 512 RoIs drawn around 50 clusters and clipped to the image,
7 x 7 output, spatial_scale 1/16, sampling_ratio 2, a fixed random upstream gradient.
torchvision's CPU kernels are single-threaded loops, so torch runs with one thread here (its
thread count is restored afterwards).
"""

from __future__ import annotations

import numpy as np

from . import Row, timeit

SCALE = 1.0 / 16


def clustered_rois(n=512, n_clusters=50, image=(800, 1088), seed=4):
    """(n, 5) float32 RoIs in image 0: boxes around cluster centres, clipped to the image."""
    import torch

    g = torch.Generator().manual_seed(seed)
    h, w = image
    centres = torch.rand(n_clusters, 2, generator=g) * torch.tensor([w, h])
    sizes = 20 + torch.rand(n_clusters, 2, generator=g) * 180
    cid = torch.randint(0, n_clusters, (n,), generator=g)
    ctr = centres[cid] + torch.randn(n, 2, generator=g) * sizes[cid] * 0.15
    wh = sizes[cid] * (1 + 0.2 * torch.randn(n, 2, generator=g)).clamp(min=0.3)
    boxes = torch.cat([ctr - wh / 2, ctr + wh / 2], 1)
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
    return torch.cat([torch.zeros(n, 1), boxes], 1).float().numpy()


def workload():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 256, 50, 68), dtype=np.float32)
    grad = rng.standard_normal((512, 256, 7, 7), dtype=np.float32)
    return x, clustered_rois(), grad


def _single_threaded(run):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run()
    finally:
        torch.set_num_threads(threads)


def bench_roi_align(repeats: int) -> list[Row]:
    import torch
    import torchvision.ops

    from ..ops import roi_align, roi_align_backward

    x, rois, grad = workload()
    tx, tr, tg = torch.from_numpy(x), torch.from_numpy(rois), torch.from_numpy(grad)
    txg = tx.clone().requires_grad_()

    def mine():
        return roi_align(x, rois, 7, SCALE, 2)

    def ref():
        return torchvision.ops.roi_align(tx, tr, 7, SCALE, 2)

    def mine_fb():
        roi_align(x, rois, 7, SCALE, 2)
        return roi_align_backward(grad, rois, x.shape, SCALE, 2)

    def ref_fb():
        txg.grad = None
        torchvision.ops.roi_align(txg, tr, 7, SCALE, 2).backward(tg)
        return txg.grad

    if not np.allclose(mine(), ref().numpy(), rtol=1e-5, atol=1e-5):
        raise AssertionError("roi_align disagrees with torchvision on the benchmark workload")
    if not np.allclose(mine_fb(), ref_fb().numpy(), rtol=1e-5, atol=1e-4):
        raise AssertionError("roi_align_backward disagrees with torch autograd on the workload")

    def run():
        f = timeit(mine, ref, repeats)
        fb = timeit(mine_fb, ref_fb, max(3, repeats // 3))
        return f, fb

    (m, r), (mfb, rfb) = _single_threaded(run)
    name = "torchvision.ops.roi_align (1 thread)"
    return [
        Row("roi_align", "fwd 512 RoIs 7x7 sr=2", m, r, name),
        Row("roi_align", "fwd+bwd 512 RoIs", mfb, rfb, name + " + autograd"),
    ]


def bench_roi_pool(repeats: int) -> list[Row]:
    import torch
    import torchvision.ops

    from ..ops import roi_pool, roi_pool_backward

    x, rois, grad = workload()
    tx, tr, tg = torch.from_numpy(x), torch.from_numpy(rois), torch.from_numpy(grad)
    txg = tx.clone().requires_grad_()

    def mine():
        return roi_pool(x, rois, 7, SCALE)

    def ref():
        return torchvision.ops.roi_pool(tx, tr, 7, SCALE)

    def mine_fb():
        _, argmax = roi_pool(x, rois, 7, SCALE, return_argmax=True)
        return roi_pool_backward(grad, rois, argmax, x.shape)

    def ref_fb():
        txg.grad = None
        torchvision.ops.roi_pool(txg, tr, 7, SCALE).backward(tg)
        return txg.grad

    if not np.array_equal(mine(), ref().numpy()):
        raise AssertionError("roi_pool disagrees with torchvision on the benchmark workload")
    if not np.array_equal(mine_fb(), ref_fb().numpy()):
        raise AssertionError("roi_pool_backward disagrees with torch autograd on the workload")

    def run():
        return timeit(mine, ref, repeats), timeit(mine_fb, ref_fb, repeats)

    (m, r), (mfb, rfb) = _single_threaded(run)
    name = "torchvision.ops.roi_pool (1 thread)"
    return [
        Row("roi_pool", "fwd 512 RoIs 7x7", m, r, name),
        Row("roi_pool", "fwd+bwd 512 RoIs", mfb, rfb, name + " + autograd"),
    ]


BENCHMARKS = {"roi_align": bench_roi_align, "roi_pool": bench_roi_pool}
