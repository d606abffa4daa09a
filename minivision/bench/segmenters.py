"""Benchmark entries for lesson 15's segmenters: one training step, and the trained models' scores.

``segmenter_step``: one training step (zero_grad -> forward -> per-pixel cross-entropy ->
backward -> Adam) of each network of :mod:`minivision.segmentation` in its shipped configuration
on a batch of Shapes scenes, against the same network written with ``torch.nn`` holding the same
weights (:mod:`minivision.bench.torch_segmenters`), torch autograd and ``torch.optim.Adam``, with
as many torch threads as NumPy's BLAS uses. Before timing, the two sides' losses on the batch
must agree (in eval mode: each library draws its own dropout masks).

``segmenter_quality``: the side-by-side training the lesson reports. For each shipped segmenter
``<model>_shapes``, the torch transcription starts from the *same initial weights* (the model
built from the manifest's seed), sees the *same batches in the same order* for the same number of
steps with ``torch.optim.Adam`` at the same learning rate; then both are scored on the manifest's
held-out scenes with the same code (:func:`minivision.segmentation.recipes.score_maps`). The
minivision side is the shipped checkpoint itself, which the manifest's command reproduces: a run
is a function of its seed (``tests/test_segmenter_training.py`` checks that a resumed run is
bit-identical to an uninterrupted one). Long: minutes per model; run it by name.
"""

from __future__ import annotations

import time

import numpy as np

from . import Row, blas_threads, timeit

STEP_BATCH = 8


def _torch_twin(model):
    """The torch transcription of ``model`` with the same weights (eval/train mode copied)."""
    from .torch_segmenters import torch_segmenter

    return torch_segmenter(model).train(model.training)


def bench_segmenter_step(repeats: int) -> list[Row]:
    import torch

    from ..nn.optim import Adam
    from ..segmentation.recipes import (
        MODELS,
        SegmenterConfig,
        build_segmenter,
        make_batch,
        segmentation_loss,
        segmentation_loss_backward,
    )

    torch.set_num_threads(blas_threads())
    rows = []
    for name in MODELS:
        config = SegmenterConfig(model=name)
        ours = build_segmenter(config, seed=0)
        theirs = _torch_twin(ours)
        opt_ours = Adam(ours.parameters(), lr=config.lr)
        opt_theirs = torch.optim.Adam(theirs.parameters(), lr=config.lr)
        images, maps = make_batch(config.dataset(STEP_BATCH, 0), range(STEP_BATCH))
        ti, tm = torch.from_numpy(images), torch.from_numpy(maps)

        def step_ours(ours=ours, opt=opt_ours, config=config, images=images, maps=maps):
            opt.zero_grad()
            logits = ours(images)
            ours.backward(segmentation_loss_backward(logits, maps))
            opt.step()
            return segmentation_loss(logits, maps)

        def step_theirs(theirs=theirs, opt=opt_theirs, config=config, ti=ti, tm=tm):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(theirs(ti), tm)
            loss.backward()
            opt.step()
            return loss

        # the two sides agree (in eval mode: dropout masks are each library's own draws)
        ours.eval()
        first = float(segmentation_loss(ours(images), maps))
        with torch.no_grad():
            first_ref = torch.nn.functional.cross_entropy(theirs.eval()(ti), tm).item()
        ours.train(), theirs.train()
        if abs(first - first_ref) > 1e-4 * max(1.0, abs(first_ref)):
            raise AssertionError(f"segmenter_step {name}: losses differ, {first} vs {first_ref}")
        t_mine, t_ref = timeit(step_ours, step_theirs, repeats)
        s = config.image_size
        rows.append(Row(name, f"B={STEP_BATCH}, {s}x{s}, Adam", t_mine, t_ref,
                        f"torch.nn + autograd, {torch.get_num_threads()} threads"))  # fmt: skip
    return rows


def train_torch_twin(manifest: dict):
    """Train the torch transcription of a shipped model from the same start, data and steps.

    Returns ``(torch model in eval mode, seconds)``.
    """
    import torch

    from ..segmentation.recipes import SegmenterConfig, build_segmenter, make_batch

    config = SegmenterConfig(**manifest["config"])
    theirs = _torch_twin(build_segmenter(config, seed=manifest["seed"]).train())
    opt = torch.optim.Adam(theirs.parameters(), lr=config.lr)
    train_set, b = config.dataset(2**31 - 1, manifest["seed"]), config.batch_size
    torch.manual_seed(manifest["seed"])  # dropout masks: torch's own stream
    t0 = time.perf_counter()
    for step in range(manifest["steps"]):
        images, maps = make_batch(train_set, range(step * b, step * b + b))
        opt.zero_grad()
        torch.nn.functional.cross_entropy(theirs(torch.from_numpy(images)), torch.from_numpy(maps)).backward()
        opt.step()
    return theirs.eval(), time.perf_counter() - t0


def torch_predict(theirs, dataset, stride: int, batch_size: int = 50) -> np.ndarray:
    """``(N, H, W)`` argmax class maps of a torch segmenter over ``dataset`` (sizes divisible)."""
    import torch

    from ..data import collate

    maps = []
    with torch.no_grad():
        for start in range(0, len(dataset), batch_size):
            items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
            images, _ = collate(items, size_divisible=stride)
            logits = theirs(torch.from_numpy(images))
            h, w = items[0]["image"].shape[:2]
            maps.append(logits.argmax(1)[:, :h, :w].numpy())
    return np.concatenate(maps)


QUALITY_KEYS = ("pixel_accuracy", "miou", "boundary_iou")


def bench_segmenter_quality(repeats: int) -> list[Row]:
    import torch

    from ..segmentation.recipes import SegmenterConfig, evaluate, score_maps
    from ..weights import available, load_pretrained

    torch.set_num_threads(blas_threads())
    names = [n for n in available() if n != "localizer_shapes"]
    print(f"segmenter_quality: {len(names)} shipped segmenters, torch retrained side by side")
    print(f"{'model':<24}" + "".join(f"{k:>16}" for k in QUALITY_KEYS) + f"{'mIoU diff':>11}")
    for name in names:
        ours = load_pretrained(name)
        manifest = ours.manifest
        config = SegmenterConfig(**manifest["config"])
        val = config.dataset(config.val_size, config.val_seed)
        mine = evaluate(ours, val)
        theirs, seconds = train_torch_twin(manifest)
        maps = torch_predict(theirs, val, ours.output_stride)
        target = np.stack([val[i]["semantic"] for i in range(len(val))])
        ref = score_maps(maps, target, config.num_classes, config.classes)
        for side, s in (("minivision", mine), ("torch", ref)):
            line = f"{name + ' ' + side:<24}" + "".join(f"{s[k]:>16.4f}" for k in QUALITY_KEYS)
            print(line + (f"{mine['miou'] - ref['miou']:>+11.4f}" if side == "torch" else ""))
        print(f"{'':<24}torch trained {manifest['steps']} steps in {seconds:.0f} s")
    return []  # scores, not timings: printed above


BENCHMARKS = {"segmenter_step": bench_segmenter_step, "segmenter_quality": bench_segmenter_quality}
