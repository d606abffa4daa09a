"""Benchmark entries for minivision.nn.losses: forward + backward against torch autograd.

* ``sigmoid_focal_loss``: 100,000 logits (RetinaNet-sized: about 1,100 anchors x 91 classes),
  sum reduction, loss and gradient; torch computes the loss and ``autograd.grad``.
* ``fastrcnn_loss``: 512 sampled RoIs x 91 classes (Mask R-CNN's box head on COCO), both losses
  and both gradients in one call (``fastrcnn_loss_and_grad``, which shares the softmax between
  the two passes as autograd's saved tensors do; the separate ``fastrcnn_loss`` and
  ``fastrcnn_loss_backward`` are checked for agreement too); torch runs
  ``roi_heads.fastrcnn_loss`` and ``autograd.grad``.

Both sides run in float32 on the CPU with torch's default thread count (the ops are
elementwise or small reductions); agreement is checked before timing.
"""

from __future__ import annotations

from . import Row, timeit


def bench_focal(repeats: int) -> list[Row]:
    import numpy as np
    import torch
    import torchvision.ops

    from ..nn.losses import sigmoid_focal_loss, sigmoid_focal_loss_backward

    rng = np.random.default_rng(0)
    x = (rng.standard_normal(100_000) * 3).astype(np.float32)
    y = (rng.uniform(size=100_000) < 0.01).astype(np.float32)
    yt = torch.from_numpy(y)

    def mine():
        return sigmoid_focal_loss(x, y, reduction="sum"), sigmoid_focal_loss_backward(
            x, y, reduction="sum"
        )

    def ref():
        xt = torch.from_numpy(x).requires_grad_(True)
        loss = torchvision.ops.sigmoid_focal_loss(xt, yt, reduction="sum")
        (g,) = torch.autograd.grad(loss, xt)
        return loss.detach(), g

    (lm, gm), (lr, gr) = mine(), ref()
    if not (
        np.allclose(lm, lr.numpy(), rtol=1e-4) and np.allclose(gm, gr.numpy(), rtol=1e-4, atol=1e-6)
    ):
        raise AssertionError("sigmoid_focal_loss disagrees with torchvision")
    t_mine, t_ref = timeit(mine, ref, repeats)
    return [Row("focal_loss", "100k logits, fwd+bwd", t_mine, t_ref, "torchvision + autograd")]


def bench_fastrcnn(repeats: int) -> list[Row]:
    import numpy as np
    import torch
    from torchvision.models.detection import roi_heads

    from ..detection.losses import fastrcnn_loss, fastrcnn_loss_and_grad, fastrcnn_loss_backward

    rng = np.random.default_rng(1)
    r, k1 = 512, 91
    logits = rng.standard_normal((r, k1)).astype(np.float32)
    reg = (rng.standard_normal((r, 4 * k1)) * 0.3).astype(np.float32)
    labels = np.where(rng.uniform(size=r) < 0.25, rng.integers(1, k1, size=r), 0).astype(np.int64)
    targets = (rng.standard_normal((r, 4)) * 0.3).astype(np.float32)
    lab_t, tgt_t = torch.from_numpy(labels), torch.from_numpy(targets)

    def mine():
        return fastrcnn_loss_and_grad(logits, reg, labels, targets)

    def separate():
        return fastrcnn_loss(logits, reg, labels, targets), fastrcnn_loss_backward(
            logits, reg, labels, targets
        )

    def ref():
        lt = torch.from_numpy(logits).requires_grad_(True)
        rt = torch.from_numpy(reg).requires_grad_(True)
        c, b = roi_heads.fastrcnn_loss(lt, rt, [lab_t], [tgt_t])
        gl, gr = torch.autograd.grad(c + b, (lt, rt))
        return (c.detach(), b.detach()), (gl, gr)

    (losses_r, grads_r) = ref()
    for losses_m, grads_m in (mine(), separate()):
        for a, b in zip(losses_m + grads_m, losses_r + grads_r):
            if not np.allclose(a, b.numpy(), rtol=1e-4, atol=1e-6):
                raise AssertionError("fastrcnn_loss disagrees with torchvision")
    t_mine, t_ref = timeit(mine, ref, repeats)
    return [Row("fastrcnn_loss", "512 RoIs x 91, fwd+bwd", t_mine, t_ref, "torchvision + autograd")]


BENCHMARKS = {"sigmoid_focal_loss": bench_focal, "fastrcnn_loss": bench_fastrcnn}
