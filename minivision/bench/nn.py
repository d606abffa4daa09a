"""Benchmark entries for minivision.nn: one training step of a small CNN against torch.

The issue's workload: four 3x3 convolutions (16-32-64-64 channels), each followed by BatchNorm,
ReLU and a 2x2 max-pool, then Linear(4096, 128), ReLU, Linear(128, 10), on a batch of 16 RGB
128x128 images, float32. Two rows: forward + loss + backward, and the whole step with a plain
SGD update (``p -= lr * grad`` on both sides, so no optimiser class is timed). Both sides load
the same weights and get the same batch; torch runs with as many threads as NumPy's BLAS may use
(``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` if set, else the CPU count; printed in the
workload). On a machine shared with other work, set ``OPENBLAS_NUM_THREADS=1``: OpenBLAS threads
that find their cores busy spin, and a 16x4096 @ 4096x128 product then takes 300 ms, not 0.5.

:func:`peak_memory` measures the peak resident memory of one step on each side, each in a fresh
process (peak RSS over three steps minus the RSS after setup): run ``python -m
minivision.bench.nn`` to print it.
"""

from __future__ import annotations

import numpy as np

from . import Row, blas_threads, timeit

BATCH, SIZE, CLASSES, LR = 16, 128, 10, 0.01


def build(nn):
    """The benchmark CNN from ``torch.nn`` or ``minivision.nn`` (same names, same layout)."""
    layers = []
    for c_in, c_out in [(3, 16), (16, 32), (32, 64), (64, 64)]:
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                   nn.MaxPool2d(2)]  # fmt: skip
    side = SIZE // 16
    layers += [nn.Flatten(), nn.Linear(64 * side * side, 128), nn.ReLU(), nn.Linear(128, CLASSES)]
    return nn.Sequential(*layers)


def _setup(threads=None):
    import torch

    import minivision.nn as mnn

    torch.set_num_threads(threads or blas_threads())
    torch.manual_seed(0)
    ref = build(torch.nn)
    ours = build(mnn)
    ours.load_state_dict(ref.state_dict())
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, 3, SIZE, SIZE), dtype=np.float32)
    y = rng.integers(0, CLASSES, BATCH)
    return ours, ref, x, y


def _ours_step(model, x, y, update):
    from ..nn.losses import cross_entropy, cross_entropy_backward

    model.zero_grad()
    logits = model(x)
    loss = cross_entropy(logits, y)
    model.backward(cross_entropy_backward(logits, y))
    if update:
        for p in model.parameters():
            p.data -= LR * p.grad
    return loss


def _torch_step(model, tx, ty, update):
    import torch
    import torch.nn.functional as F

    model.zero_grad()
    loss = F.cross_entropy(model(tx), ty)
    loss.backward()
    if update:
        with torch.no_grad():
            for p in model.parameters():
                p -= LR * p.grad
    return loss


def bench_nn(repeats: int) -> list[Row]:
    import torch

    import minivision.nn as mnn

    ours, ref, x, y = _setup()
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    l_ours = float(_ours_step(ours, x, y, False))
    l_ref = float(_torch_step(ref, tx, ty, False).detach())
    if abs(l_ours - l_ref) > 1e-4 * max(1.0, abs(l_ref)):
        raise AssertionError(f"nn benchmark: loss {l_ours} differs from torch's {l_ref}")
    # Only the head is compared: in float32 a max-pool window whose two largest values differ
    # by a rounding error may pick another winner than torch's and route earlier layers'
    # gradients elsewhere (the tests check every layer in float64, to 1e-12).
    grads = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        if not isinstance(ours[int(name.split(".")[0])], mnn.Linear):
            continue
        ref_grad = grads[name].grad.numpy()
        if np.max(np.abs(p.grad - ref_grad)) > 1e-3 * float(np.max(np.abs(ref_grad))):
            raise AssertionError(f"nn benchmark: {name}.grad differs from torch's")
    work = f"CNN 16x3x{SIZE}x{SIZE}, {torch.get_num_threads()} thr"
    rows = []
    for update, what in [(False, "fwd+bwd"), (True, "SGD step")]:
        mine, theirs = timeit(
            lambda u=update: _ours_step(ours, x, y, u),
            lambda u=update: _torch_step(ref, tx, ty, u),
            repeats,
        )
        rows.append(Row("nn", f"{work} {what}", mine, theirs, "torch.nn + autograd"))
    return rows


def _status_kib(field: str):
    """``VmRSS`` / ``VmHWM`` of this process in KiB from /proc (Linux), or None."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _peak_child(side: str) -> None:
    """In a fresh process: peak RSS growth (MiB) over three training steps of one side.

    Linux's ``ru_maxrss`` is inherited from the parent across ``exec``, so the peak is read
    from ``VmHWM`` after resetting it (``/proc/self/clear_refs``); ``ru_maxrss`` elsewhere.
    """
    import resource

    import torch

    ours, ref, x, y = _setup()
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    before = _status_kib("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak-RSS counter VmHWM to the current RSS
    except OSError:
        before = None
    if before is None:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(3):
        if side == "minivision":
            _ours_step(ours, x, y, True)
        else:
            _torch_step(ref, tx, ty, True)
    after = _status_kib("VmHWM")
    if after is None:
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((after - before) / 1024.0)


def peak_memory() -> dict[str, float]:
    """Peak resident-memory growth (MiB) of a training step, minivision and torch, each in its
    own process; plus tracemalloc's exact peak of NumPy allocations on our side."""
    import subprocess
    import sys
    import tracemalloc

    out = {}
    for side in ("minivision", "torch"):
        code = f"from minivision.bench.nn import _peak_child; _peak_child({side!r})"
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        out[f"{side} peak RSS MiB"] = float(done.stdout.split()[-1])
    ours, _, x, y = _setup()
    _ours_step(ours, x, y, True)
    tracemalloc.start()
    _ours_step(ours, x, y, True)
    out["minivision tracemalloc peak MiB"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return out


BENCHMARKS = {"nn": bench_nn}


if __name__ == "__main__":
    from . import run

    run(["nn"], repeats=5)
    for key, value in peak_memory().items():
        print(f"{key:<34} {value:8.1f}")
