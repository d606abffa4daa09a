"""Benchmark entry ``localizer_step``: one training step of lesson 09's classify-and-localise CNN.

One call is ``zero_grad`` -> forward -> loss (alpha CE + (1 - alpha) L2) -> backward -> Adam
step of :class:`minivision.detection.localizer.Localizer` (default config: 32 x 32 scenes,
channels 8-16-32, hidden 64) on a batch of 32 single-object Shapes scenes, against the same
network written with ``torch.nn`` holding the same weights (``load_state_dict``), torch autograd
and ``torch.optim.Adam``. Both run on the CPU with torch's default thread count (NumPy's matrix
products use its BLAS threads). The first step's losses are checked to agree before timing.
"""

from __future__ import annotations

from . import Row, timeit


def _torch_localizer(config):
    import torch

    class TorchLocalizer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            layers, c_in = [], 3
            for ch in config.channels:
                layers += [torch.nn.Conv2d(c_in, ch, 3, padding=1, bias=False),
                           torch.nn.BatchNorm2d(ch), torch.nn.ReLU(), torch.nn.MaxPool2d(2)]  # fmt: skip
                c_in = ch
            self.features = torch.nn.Sequential(*layers)
            side = config.image_size // 8
            self.fc = torch.nn.Sequential(torch.nn.Linear(c_in * side * side, config.hidden),
                                          torch.nn.ReLU())  # fmt: skip
            self.cls_head = torch.nn.Linear(config.hidden, len(config.classes))
            self.box_head = torch.nn.Linear(config.hidden, 4)

        def forward(self, x):
            h = self.fc(self.features(x).flatten(1))
            return torch.cat([self.cls_head(h), self.box_head(h)], 1)

    return TorchLocalizer()


def bench_localizer_step(repeats: int) -> list[Row]:
    import numpy as np
    import torch
    import torch.nn.functional as F

    from ..detection.localizer import (
        Localizer,
        LocalizerConfig,
        localizer_loss,
        localizer_loss_backward,
        make_batch,
    )
    from ..nn.optim import Adam

    config = LocalizerConfig()
    ours = Localizer(config, seed=0)
    theirs = _torch_localizer(config)
    theirs.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in ours.state_dict().items()})
    opt_ours = Adam(ours.parameters(), lr=config.lr)
    opt_theirs = torch.optim.Adam(theirs.parameters(), lr=config.lr)
    images, labels, boxes = make_batch(config.dataset(config.batch_size, 0), range(config.batch_size))
    it, lt, bt = (torch.from_numpy(a) for a in (images, labels, boxes))
    k, alpha = len(config.classes), config.alpha

    def step_ours():
        opt_ours.zero_grad()
        out = ours(images)
        ours.backward(localizer_loss_backward(out, labels, boxes, alpha))
        opt_ours.step()
        return localizer_loss(out, labels, boxes, alpha)

    def step_theirs():
        opt_theirs.zero_grad()
        out = theirs(it)
        loss = alpha * F.cross_entropy(out[:, :k], lt - 1) + (1 - alpha) * (
            (out[:, k:] - bt) ** 2).sum() / len(out)  # fmt: skip
        loss.backward()
        opt_theirs.step()
        return loss

    first, first_ref = float(step_ours()), step_theirs().item()
    if abs(first - first_ref) > 1e-4 * max(1.0, abs(first_ref)):
        raise AssertionError(f"localizer_step: losses differ, {first} vs {first_ref}")
    t_mine, t_ref = timeit(step_ours, step_theirs, repeats)
    workload = f"B={config.batch_size}, {config.image_size}x{config.image_size}, Adam"
    return [Row("localizer", workload, t_mine, t_ref,
                f"torch.nn + autograd, {torch.get_num_threads()} threads")]  # fmt: skip


BENCHMARKS = {"localizer_step": bench_localizer_step}
