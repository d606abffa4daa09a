"""Benchmark entries for lesson 06: anchor generation and the RPN's proposal filter.

Workload: the five-level FPN of torchvision's Faster R-CNN (sizes 32 ... 512, ratios 0.5, 1, 2)
on an 800 x 1088 padded image -- feature maps 200 x 272, 100 x 136, 50 x 68, 25 x 34, 13 x 17,
217,413 anchors. ``rpn_proposals`` gets random logits and deltas for all of them, with
torchvision's test-time settings (1,000 per level before NMS, 1,000 after, IoU 0.7); the
reference is what ``RegionProposalNetwork.forward`` runs on them: ``box_coder.decode`` and
``filter_proposals``. NumPy runs on one core, and so does the reference here (one torch thread,
restored afterwards): on a shared two-core machine torch's second thread mostly waits for the
first, and its timings then scatter by a factor of ten, so the one-thread ratio is the one that
compares the algorithms.
"""

from __future__ import annotations

import numpy as np

from . import Row, timeit

IMAGE = (800, 1088)
GRIDS = [(200, 272), (100, 136), (50, 68), (25, 34), (13, 17)]
SIZES = ((32,), (64,), (128,), (256,), (512,))
RATIOS = ((0.5, 1.0, 2.0),) * 5


def _torchvision_generator():
    import torch
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.image_list import ImageList

    images = ImageList(torch.zeros(1, 3, *IMAGE), [IMAGE])
    maps = [torch.zeros(1, 256, h, w) for h, w in GRIDS]
    gen = AnchorGenerator(SIZES, RATIOS)
    return lambda: gen(images, maps)[0]


def bench_anchors(repeats: int) -> list[Row]:
    from ..detection.anchors import AnchorGenerator

    gen = AnchorGenerator(SIZES, RATIOS)
    like = np.zeros(1, dtype=np.float32)
    ref = _torchvision_generator()
    mine = lambda: gen(IMAGE, GRIDS, like=like)  # noqa: E731
    if not np.array_equal(mine(), ref().numpy()):
        raise AssertionError("AnchorGenerator disagrees with torchvision on the FPN workload")
    t_mine, t_ref = timeit(mine, ref, repeats)
    return [
        Row(
            "anchors",
            "FPN 5 levels, 800x1088",
            t_mine,
            t_ref,
            "torchvision AnchorGenerator, 1 thread",
        )
    ]


def bench_rpn_proposals(repeats: int) -> list[Row]:
    import torch
    from torchvision.models.detection.anchor_utils import AnchorGenerator as TvAnchorGenerator
    from torchvision.models.detection.rpn import RegionProposalNetwork

    from ..detection.anchors import AnchorGenerator
    from ..detection.rpn import rpn_proposals

    anchors = AnchorGenerator(SIZES, RATIOS)(
        IMAGE, GRIDS, like=np.zeros(1, np.float32), per_level=True
    )
    per_level = [a.shape[0] for a in anchors]
    g = torch.Generator().manual_seed(0)
    t_obj = torch.randn(sum(per_level), generator=g)
    t_deltas = torch.randn(sum(per_level), 4, generator=g) * 0.5
    obj, deltas = t_obj.numpy(), t_deltas.numpy()
    t_anchors = [torch.from_numpy(np.concatenate(anchors))]
    rpn = RegionProposalNetwork(
        TvAnchorGenerator(SIZES, RATIOS), None, 0.7, 0.3, 256, 0.5,
        dict(training=2000, testing=1000), dict(training=2000, testing=1000), 0.7,
    ).eval()  # fmt: skip

    def ref():
        proposals = rpn.box_coder.decode(t_deltas, t_anchors).view(1, -1, 4)
        return rpn.filter_proposals(proposals, t_obj.view(1, -1), [IMAGE], per_level)

    def mine():
        return rpn_proposals(anchors, obj, deltas, IMAGE, 1000, 1000, 0.7, 0.0, 1e-3)

    (rb,), (rs,) = ref()
    boxes, scores = mine()
    if boxes.shape != tuple(rb.shape) or not (
        np.allclose(boxes, rb.numpy(), rtol=0, atol=1e-3)
        and np.allclose(scores, rs.numpy(), rtol=1e-6)
    ):
        raise AssertionError("rpn_proposals disagrees with torchvision on the FPN workload")
    t_mine, t_ref = timeit(mine, ref, repeats)
    workload = f"{sum(per_level)} anchors, 5 lvls"
    return [
        Row(
            "rpn_proposals",
            workload,
            t_mine,
            t_ref,
            "torchvision decode + filter_proposals, 1 thread",
        )
    ]


def _one_thread(entry):
    def run(repeats: int) -> list[Row]:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return entry(repeats)
        finally:
            torch.set_num_threads(threads)

    return run


BENCHMARKS = {
    "anchors": _one_thread(bench_anchors),
    "rpn_proposals": _one_thread(bench_rpn_proposals),
}
