"""Benchmark entries for minivision.nn.optim: one optimizer step over a ~1M-parameter model.

The parameters are float32 arrays shaped like the issue's small CNN (four 3x3 convolutions with
16-32-64-64 channels and their biases, then two Linear layers), 1.1 M numbers in 12 arrays, with
fixed random gradients. One call is one ``step()`` over all of them:

* ``sgd_momentum``: SGD with momentum 0.9, Nesterov, weight decay 1e-4;
* ``adam``: Adam with the default betas and weight decay 0.

The reference is ``torch.optim`` on tensors holding the same values, once with
``foreach=False`` (the single-tensor loop whose formulas ours copies) and once with torch's
default (``foreach=None``: the multi-tensor ``_foreach_*`` kernels where torch chooses them).
Both sides run on the CPU with one thread: NumPy's elementwise operations are single-threaded,
so torch gets one thread too (on a busy machine torch's thread pool can also make its step ten
times slower, which says nothing about the optimizer). Agreement is checked on fresh copies
(five steps, max |diff| <= 1e-5 in float32) before timing.
"""

from __future__ import annotations

from . import Row, timeit

SHAPES = [
    (16, 3, 3, 3), (16,), (32, 16, 3, 3), (32,), (64, 32, 3, 3), (64,), (64, 64, 3, 3), (64,),
    (1024, 1024), (1024,), (10, 1024), (10,),
]


class _Param:
    def __init__(self, data):
        self.data, self.grad = data, None


def _problem():
    import numpy as np

    rng = np.random.default_rng(0)
    data = [rng.standard_normal(s).astype(np.float32) * 0.1 for s in SHAPES]
    grads = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    return data, grads


def _bench(name, ours_cls, torch_cls, kwargs, repeats):
    import numpy as np
    import torch

    data, grads = _problem()
    n = sum(a.size for a in data)

    def make_ours():
        ps = [_Param(a.copy()) for a in data]
        for p, g in zip(ps, grads):
            p.grad = g
        return ps, ours_cls(ps, **kwargs)

    def make_torch(foreach):
        ts = [torch.tensor(a, requires_grad=True) for a in data]
        for t, g in zip(ts, grads):
            t.grad = torch.from_numpy(g)
        return ts, torch_cls(ts, foreach=foreach, **kwargs)

    ps, opt = make_ours()
    ts, ref = make_torch(False)
    for _ in range(5):
        opt.step()
        ref.step()
    worst = max(float(np.max(np.abs(p.data - t.detach().numpy()))) for p, t in zip(ps, ts))
    if worst > 1e-5:
        raise AssertionError(f"{name}: minivision and torch.optim differ by {worst:.3g}")

    rows = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for foreach, label in ((False, "foreach=False"), (None, "default")):
            _, opt = make_ours()
            _, ref = make_torch(foreach)
            with torch.no_grad():
                t_mine, t_ref = timeit(opt.step, ref.step, repeats)
            rows.append(Row(name, f"{n / 1e6:.2f}M params, {label}", t_mine, t_ref,
                            "torch.optim, 1 thread"))
    finally:
        torch.set_num_threads(threads)
    return rows


def bench_sgd(repeats: int) -> list[Row]:
    import torch

    from ..nn.optim import SGD

    kwargs = dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)
    return _bench("sgd_momentum", SGD, torch.optim.SGD, kwargs, repeats)


def bench_adam(repeats: int) -> list[Row]:
    import torch

    from ..nn.optim import Adam

    return _bench("adam", Adam, torch.optim.Adam, dict(lr=1e-3), repeats)


BENCHMARKS = {"sgd_momentum": bench_sgd, "adam": bench_adam}
