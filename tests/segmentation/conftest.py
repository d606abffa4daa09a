"""What the segmentation reference tests share: random weights, dropout masks, the comparison.

Every comparison runs the torch module in float64 on float32-representable weights and inputs
and ours on the NumPy backend in float64 (or a float32 backend, against our own float64 run),
so the two differ by round-off only. Gradients come from torch autograd with a random upstream
gradient; every parameter's gradient and every buffer (BatchNorm's running statistics after a
training-mode pass) is compared.

Dropout in training mode: both sides use **the same mask**. torch runs first; a forward hook on
each ``torch.nn.Dropout`` records which elements it zeroed, and our ``Dropout`` of the same name
(the models have torch's module names) is handed a generator that replays that mask. Where the
dropout's input is already 0 (a ReLU's zeros) the mask cannot be read back and does not matter:
the output is 0 either way, and the gradient there is zeroed by the ReLU's backward pass.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from helpers import assert_close

from minivision._backend import to_numpy


def f32(a):
    """float32-representable float64 values (exact on every backend)."""
    return np.asarray(a, np.float32).astype(np.float64)


def randomise_(module, seed=0):
    """Random BatchNorm affine parameters and running statistics, and random values in the
    parameters that start at zero (FCN's score layers), so every path carries a gradient and
    eval mode uses non-trivial statistics. Other weights keep their initialisation, rounded to
    float32. In place on a torch module; returns it."""
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.from_numpy(f32(rng.uniform(0.5, 1.5, c))))
                m.bias.copy_(torch.from_numpy(f32(rng.normal(0, 0.2, c))))
                m.running_mean.copy_(torch.from_numpy(f32(rng.normal(0, 0.2, c))))
                m.running_var.copy_(torch.from_numpy(f32(rng.uniform(0.5, 1.5, c))))
        for p in module.parameters():
            if not torch.any(p != 0):
                p.copy_(torch.from_numpy(f32(rng.normal(0, 0.1, tuple(p.shape)))))
    return module


class _Replay:
    """A stand-in for Dropout's generator: ``random(shape)`` is 1 where torch kept, 0 where it
    dropped (Dropout keeps where ``random >= p``)."""

    def __init__(self, keep):
        self.keep = keep

    def random(self, shape):
        assert tuple(shape) == self.keep.shape, (shape, self.keep.shape)
        return self.keep.astype(np.float64)


def _record_masks(ref):
    masks, handles = {}, []
    for name, m in ref.named_modules():
        if isinstance(m, torch.nn.Dropout):

            def hook(mod, inputs, output, name=name):
                x = inputs[0].detach().numpy()
                masks[name] = ~((x != 0) & (output.detach().numpy() == 0))

            handles.append(m.register_forward_hook(hook))
    return masks, handles


def _replay_masks(ours, masks):
    modules = dict(ours.named_modules())
    for name, keep in masks.items():
        assert type(modules[name]).__name__ == "Dropout", name
        modules[name].rng = _Replay(keep)


def run_torch(ref, x, training, seed=0):
    """ref (float64 copy) forward + backward: (output, input grad, param grads, buffers, masks,
    upstream gradient)."""
    ref64 = copy.deepcopy(ref).double().train(training)
    masks, handles = _record_masks(ref64)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    yt = ref64(xt)
    for h in handles:
        h.remove()
    g = f32(np.random.default_rng(seed).standard_normal(tuple(yt.shape)))
    yt.backward(torch.from_numpy(g))
    grads = {n: p.grad.numpy() for n, p in ref64.named_parameters()}
    buffers = {n: b.numpy() for n, b in ref64.named_buffers()}
    return yt.detach().numpy(), xt.grad.numpy(), grads, buffers, masks, g


def run_ours(ours, x, g, training, masks, be=None):
    """ours forward + backward on ``be`` (NumPy float64 if None), the same masks replayed."""
    if be is None:
        ours.to(dtype="float64")
        xs, gs = x, g
    else:
        ours.to(be.xp, be.device, "float64" if be.name == "numpy" else "float32")
        xs, gs = be.asarray(x), be.asarray(g)
    ours.train(training)
    _replay_masks(ours, masks)
    ours.zero_grad()
    y = ours(xs)
    gx = ours.backward(gs)
    grads = {n: p.grad for n, p in ours.named_parameters()}
    return y, gx, grads, dict(ours.state_dict())


def _tol(expected, rel):
    scale = float(np.max(np.abs(expected))) if np.size(expected) else 1.0
    return dict(rtol=rel, atol=rel * scale, check_dtype=False)


def compare(ours, ref, x, *, training, be=None, seed=0, what=""):
    """Load ``ref``'s weights into ``ours``, run both, assert outputs, the input gradient, every
    parameter gradient and every saved buffer agree. Float64 (NumPy): round-off ``1e-9`` of each
    array's largest magnitude; float32 backends: ``2e-4``."""
    ours.load_state_dict(ref.state_dict())
    y_t, gx_t, grads_t, bufs_t, masks, g = run_torch(ref, x, training, seed)
    y, gx, grads, state = run_ours(ours, x, g, training, masks, be)
    rel = 1e-9 if be is None or be.name == "numpy" else 2e-4
    name = what or type(ours).__name__
    assert_close(y, y_t, what=f"{name} forward", **_tol(y_t, rel))
    assert_close(gx, gx_t, what=f"{name} input gradient", **_tol(gx_t, rel))
    assert sorted(grads) == sorted(grads_t), "parameter names differ"
    for n, gt in grads_t.items():
        assert grads[n] is not None, f"{name} {n} received no gradient"
        assert_close(grads[n], gt, what=f"{name} {n}.grad", **_tol(gt, rel))
    assert set(state) <= set(bufs_t) | set(grads_t), "state_dict keys differ"
    for n, bt in bufs_t.items():
        if n in state:
            assert_close(state[n], bt, what=f"{name} buffer {n}", **_tol(bt, rel))
    return y, gx


@pytest.fixture
def seg_compare():
    return compare


@pytest.fixture
def seg_randomise():
    return randomise_


@pytest.fixture
def seg_run_ours():
    return run_ours


def host(a):
    return np.asarray(to_numpy(a))
