"""Benchmark entries for minivision.nn.functional.conv: a VGG-sized 3x3 convolution, forward and forward+backward.

torch's CPU convolution (oneDNN) uses all its threads; NumPy's matmul uses OpenBLAS's threads,
so both sides run with the default thread count of the machine (printed in the header).
"""

from __future__ import annotations

import numpy as np

from . import Row, timeit

WORKLOAD = "1x64x128x128 * 64x64x3x3"


def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 64, 128, 128), dtype=np.float32)
    w = rng.standard_normal((64, 64, 3, 3), dtype=np.float32) / 24.0  # unit-variance output
    gy = rng.standard_normal((1, 64, 128, 128), dtype=np.float32)
    return x, w, gy


def _agree(name, mine, ref):
    """float32 sums in another order: agree to 1e-5 of the largest value."""
    err = float(np.max(np.abs(mine - ref)))
    if err > 1e-5 * float(np.max(np.abs(ref))):
        raise AssertionError(f"{name} disagrees with torch on the benchmark workload: {err:.3g}")


def bench_conv2d(repeats: int) -> list[Row]:
    import torch
    import torch.nn.functional as F

    from ..nn.functional.conv import conv2d, conv2d_backward

    x, w, gy = _data()
    tx, tw, tgy = (torch.from_numpy(a) for a in (x, w, gy))
    _agree("conv2d", conv2d(x, w, padding=1), F.conv2d(tx, tw, padding=1).numpy())

    def ref_fwd():
        with torch.no_grad():
            return F.conv2d(tx, tw, padding=1)

    mine, ref = timeit(lambda: conv2d(x, w, padding=1), ref_fwd, repeats)
    rows = [Row("conv2d", f"{WORKLOAD} fwd", mine, ref, "torch.nn.functional.conv2d")]

    def mine_both():
        conv2d(x, w, padding=1)
        return conv2d_backward(gy, x, w, padding=1)

    txg, twg = tx.clone().requires_grad_(), tw.clone().requires_grad_()

    def ref_both():
        txg.grad = twg.grad = None
        F.conv2d(txg, twg, padding=1).backward(tgy)
        return txg.grad, twg.grad

    (gx, gw, _), (rgx, rgw) = mine_both(), ref_both()
    _agree("conv2d_backward (input)", gx, rgx.numpy())
    _agree("conv2d_backward (weight)", gw, rgw.numpy())
    mine, ref = timeit(mine_both, ref_both, repeats)
    rows.append(Row("conv2d", f"{WORKLOAD} fwd+bwd", mine, ref, "torch autograd"))
    return rows


BENCHMARKS = {"conv2d": bench_conv2d}
