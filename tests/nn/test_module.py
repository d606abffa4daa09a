"""Module bookkeeping against torch.nn.Module: names, state_dict keys, loading, modes, moving."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from helpers import assert_close

import minivision.nn as nn
from minivision._backend import to_numpy


def build(mod):
    """The same network in torch.nn or minivision.nn: nested Sequentials, BatchNorm buffers."""
    return mod.Sequential(
        mod.Sequential(mod.Conv2d(3, 4, 3), mod.BatchNorm2d(4), mod.ReLU()),
        mod.MaxPool2d(2),
        mod.Flatten(),
        mod.Linear(4 * 3 * 3, 5, bias=False),
    )


def test_names_and_state_dict_keys_are_torchs():
    ours, ref = build(nn), build(torch.nn)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in ref.named_buffers()]
    assert list(ours.state_dict()) == list(ref.state_dict())
    for key, value in ours.state_dict().items():
        assert tuple(value.shape) == tuple(ref.state_dict()[key].shape), key
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in ref.named_modules()]


def test_load_torch_state_dict_and_back():
    torch.manual_seed(0)
    ref = build(torch.nn)
    ref[0][1].running_mean.uniform_()
    ref[0][1].num_batches_tracked += 7
    ours = build(nn)
    ours.load_state_dict(ref.state_dict())
    for key, value in ref.state_dict().items():
        assert_close(ours.state_dict()[key], value.numpy(), what=key)
    # loading copies: changing torch's tensors afterwards leaves ours alone
    with torch.no_grad():
        ref[0][0].weight.add_(1.0)
    assert not np.allclose(to_numpy(ours[0][0].weight.data), ref[0][0].weight.detach().numpy())
    # and ours loads back into torch
    back = build(torch.nn)
    back.load_state_dict(
        {k: torch.from_numpy(np.array(to_numpy(v))) for k, v in ours.state_dict().items()}
    )
    for key, value in ours.state_dict().items():
        assert_close(back.state_dict()[key].numpy(), to_numpy(value), what=key)


def test_load_state_dict_accepts_numpy_and_keeps_dtype():
    layer = nn.Linear(3, 2, rng=0)
    sd = {"weight": np.ones((2, 3)), "bias": np.zeros(2)}  # float64 into a float32 module
    layer.load_state_dict(sd)
    assert layer.weight.data.dtype == np.float32 and np.all(layer.weight.data == 1)
    sd["weight"][0, 0] = 5.0
    assert layer.weight.data[0, 0] == 1.0, "load_state_dict must copy"


def test_load_state_dict_errors_name_the_key():
    ours = build(nn)
    good = build(torch.nn).state_dict()
    missing = OrderedDict((k, v) for k, v in good.items() if k != "0.1.running_var")
    with pytest.raises(KeyError, match=r"missing keys \['0.1.running_var'\]"):
        ours.load_state_dict(missing)
    extra = OrderedDict(good, **{"9.weight": torch.zeros(1)})
    with pytest.raises(KeyError, match=r"unexpected keys \['9.weight'\]"):
        ours.load_state_dict(extra)
    bad = OrderedDict(good)
    bad["3.weight"] = torch.zeros(5, 35)
    before = to_numpy(ours[0][0].weight.data).copy()
    with pytest.raises(
        ValueError, match=r"3.weight has shape \(5, 35\), the module expects \(5, 36\)"
    ):
        ours.load_state_dict(bad)
    assert np.array_equal(to_numpy(ours[0][0].weight.data), before), "nothing loaded on error"
    m, u = ours.load_state_dict(extra, strict=False)
    assert (m, u) == ([], ["9.weight"])
    m, u = ours.load_state_dict(missing, strict=False)
    assert (m, u) == (["0.1.running_var"], [])


def test_shared_parameter_listed_once_and_accumulates():
    """A layer used twice: one Parameter, the sum of both uses' gradients."""
    layer = nn.Linear(3, 3, rng=0).to(dtype="float64")
    model = nn.Module()
    model.a = layer
    model.b = layer
    assert len(list(model.parameters())) == 2
    ref = torch.nn.Linear(3, 3).double()
    layer.load_state_dict(ref.state_dict())
    x = np.random.default_rng(0).standard_normal((4, 3))
    ref(ref(torch.from_numpy(x))).sum().backward()
    h = layer(x)
    y = layer(h)
    # a module caches its last forward pass only, so a layer used twice needs two modules'
    # worth of caches: replay the first use before its backward pass
    g = layer.backward(np.ones_like(y))
    layer(x)
    layer.backward(g)
    assert_close(
        layer.weight.grad,
        ref.weight.grad.numpy(),
        what="shared weight grad",
        rtol=1e-12,
        atol=1e-13,
    )


def test_sequential_indexing():
    seq = nn.Sequential(nn.ReLU(), nn.Sigmoid(), nn.Flatten())
    assert len(seq) == 3 and isinstance(seq[1], nn.Sigmoid) and isinstance(seq[-1], nn.Flatten)
    sub = seq[1:]
    assert isinstance(sub, nn.Sequential) and len(sub) == 2 and sub[0] is seq[1]
    assert [n for n, _ in sub.named_children()] == ["1", "2"]
    seq.append(nn.ReLU())
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2", "3"]
    assert list(seq) == [seq[i] for i in range(4)]
    with pytest.raises(TypeError, match="Sequential argument 1"):
        nn.Sequential(nn.ReLU(), "relu")


def test_train_eval_zero_grad_requires_grad():
    model = build(nn)
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    model.backward(np.ones_like(model(x)))
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad(set_to_none=False)
    assert all(np.all(to_numpy(p.grad) == 0) for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    model[0][0].requires_grad_(False)
    model.backward(np.ones_like(model(x)))
    assert model[0][0].weight.grad is None and model[3].weight.grad is not None
    assert model.eval() is model and not model[0][1].training


def test_to_moves_every_array(be):
    model = build(nn)
    model.to(be.xp, be.device, "float64" if be.name == "numpy" else "float32")
    for name, value in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            assert be.dtype_name(value) == "int64"
        else:
            assert be.dtype_name(value) == ("float64" if be.name == "numpy" else "float32")
    x = be.asarray(np.zeros((1, 3, 8, 8)))
    y = model(x)
    model.backward(be.xp.ones_like(y))


def test_parameter_and_registration_errors():
    with pytest.raises(TypeError, match="data must be an array"):
        nn.Parameter([1.0, 2.0])
    p = nn.Parameter(np.zeros(3))
    with pytest.raises(ValueError, match="gradient of shape"):
        p.accumulate_grad(np.zeros(4))
    m = nn.Module()
    with pytest.raises(TypeError, match="Parameter or None"):
        m.register_parameter("w", np.zeros(3))
    with pytest.raises(NotImplementedError):
        m(1)

    class Forgot(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.zeros(1))

    with pytest.raises(AttributeError, match="super"):
        Forgot()
