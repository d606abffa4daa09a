"""nn.functional: interpolate, max_unpool2d and adaptive_avg_pool2d with their backward passes,
against torch.nn.functional and torch autograd; and nn.gradcheck."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_backend, assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

import minivision.nn as nn
from minivision.nn.functional import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    interpolate,
    interpolate_backward,
    max_unpool2d,
    max_unpool2d_backward,
)


def tolerances(be):
    return dict(rtol=1e-10, atol=1e-12) if be.name == "numpy" else dict(rtol=2e-5, atol=2e-5)


def data(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32).astype(np.float64)


def check_interpolate(be, shape, kw, seed=0):
    x = data(shape, seed)
    xt = torch.tensor(x, requires_grad=True)
    yt = F.interpolate(xt, **kw)
    g = data(tuple(yt.shape), seed + 1)
    yt.backward(torch.from_numpy(g))
    y = interpolate(be.asarray(x), **kw)
    gx = interpolate_backward(be.asarray(g), be.asarray(x), **kw)
    assert_backend(y, be)
    tol = tolerances(be)
    assert_close(y, yt.detach().numpy(), what=f"interpolate{kw}", check_dtype=False, **tol)
    assert_close(gx, xt.grad.numpy(), what=f"interpolate_backward{kw}", check_dtype=False, **tol)


CASES = [
    ((2, 3, 4, 5), dict(scale_factor=2)),
    ((1, 2, 3, 5), dict(size=(7, 3))),
    ((1, 2, 5, 7), dict(size=(2, 3))),  # downsampling
    ((1, 1, 3, 4), dict(size=13)),
    ((1, 2, 5, 6), dict(scale_factor=2.5)),
    ((1, 2, 5, 6), dict(scale_factor=(1.7, 0.6))),
    ((1, 2, 9, 6), dict(scale_factor=1 / 3, recompute_scale_factor=True)),
    ((1, 2, 4, 5), dict(size=(8, 10), mode="bilinear")),
    ((1, 2, 4, 5), dict(size=(7, 3), mode="bilinear", align_corners=True)),
    ((1, 2, 4, 5), dict(size=(1, 1), mode="bilinear", align_corners=True)),
    ((1, 2, 1, 1), dict(size=(3, 4), mode="bilinear")),
    ((2, 3, 6, 5), dict(scale_factor=(2.5, 0.5), mode="bilinear")),
    ((1, 2, 6, 5), dict(scale_factor=1.5, mode="bilinear", recompute_scale_factor=True)),
    ((1, 2, 8, 8), dict(size=(3, 5), mode="bilinear", align_corners=False)),
]


@pytest.mark.parametrize("shape,kw", CASES, ids=[str(kw) for _, kw in CASES])
def test_interpolate_matches_torch(be, shape, kw):
    check_interpolate(be, shape, kw)


@settings(max_examples=40)
@given(
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    out_h=st.integers(1, 20),
    out_w=st.integers(1, 20),
    mode=st.sampled_from(["nearest", "bilinear-false", "bilinear-true"]),
    use_scale=st.booleans(),
    scale=st.floats(0.3, 4.0),
)
def test_interpolate_hypothesis(h, w, out_h, out_w, mode, use_scale, scale):
    """float64 NumPy against torch on drawn sizes and scale factors."""
    import array_api_compat.numpy as npx
    from conftest import Backend

    be = Backend("numpy", npx, "cpu", npx.float64)
    kw = {"mode": mode.split("-")[0]}
    if mode != "nearest":
        kw["align_corners"] = mode.endswith("true")
    if use_scale:
        if int(h * scale) < 1 or int(w * scale) < 1:
            return
        kw["scale_factor"] = scale
    else:
        kw["size"] = (out_h, out_w)
    check_interpolate(be, (1, 2, h, w), kw)


def test_nearest_index_rule():
    """torch's floor(d * scale) in float32: 3 -> 7 reads 0 0 0 1 1 2 2."""
    x = np.arange(3.0)[None, None, None, :]
    assert interpolate(x, size=(1, 7))[0, 0, 0].tolist() == [0, 0, 0, 1, 1, 2, 2]


def test_interpolate_bad_input():
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(ValueError, match="either size or scale_factor"):
        interpolate(x, size=2, scale_factor=2)
    with pytest.raises(ValueError, match="mode"):
        interpolate(x, size=2, mode="bicubic")
    with pytest.raises(ValueError, match="align_corners"):
        interpolate(x, size=2, align_corners=True)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        interpolate(np.zeros((4, 4)), size=2)
    with pytest.raises(ValueError, match="grad_output must have"):
        interpolate_backward(np.zeros((1, 1, 3, 3)), x, size=2)


def test_interpolate_is_device_pure(no_sync):
    import array_api_strict as xs

    x = xs.asarray(data((1, 2, 4, 5)), dtype=xs.float32, device=xs.Device("device1"))
    for kw in (dict(size=(7, 3)), dict(scale_factor=2.5, mode="bilinear")):
        y = interpolate(x, **kw)
        interpolate_backward(xs.ones_like(y), x, **kw)


# ----------------------------------------------------------------------------- max_unpool2d


UNPOOL = [
    (dict(kernel_size=2), (2, 3, 8, 6), None),
    (dict(kernel_size=3, stride=2, padding=1), (1, 2, 7, 8), "input"),  # overlapping windows
    (dict(kernel_size=(2, 3), stride=(1, 2)), (1, 2, 5, 7), "input"),
    (dict(kernel_size=2, stride=2), (1, 2, 7, 7), "input"),  # odd size: output_size needed
    (dict(kernel_size=3, stride=3), (1, 1, 6, 9), None),
]


@pytest.mark.parametrize("kw,shape,size", UNPOOL, ids=[str(u[0]) for u in UNPOOL])
def test_max_unpool2d_matches_torch(be, kw, shape, size):
    x = data(shape)
    pooled, idx = F.max_pool2d(torch.from_numpy(x), return_indices=True, **kw)
    output_size = shape[-2:] if size == "input" else None
    pt = pooled.clone().requires_grad_(True)
    ut = F.max_unpool2d(pt, idx, output_size=output_size, **kw)
    g = data(tuple(ut.shape), 1)
    ut.backward(torch.from_numpy(g))
    u = max_unpool2d(
        be.asarray(pooled.numpy()), be.asarray(idx.numpy()), output_size=output_size, **kw
    )
    gp = max_unpool2d_backward(
        be.asarray(g), be.asarray(pooled.numpy()), be.asarray(idx.numpy()), output_size=output_size, **kw
    )  # fmt: skip
    assert_backend(u, be)
    assert_close(u, ut.detach().numpy(), what="max_unpool2d", check_dtype=False)
    assert_close(gp, pt.grad.numpy(), what="max_unpool2d_backward", check_dtype=False)


def test_max_unpool2d_last_write_wins_and_unbatched():
    values = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    indices = np.array([[[[0, 0], [5, 0]]]])  # three writes to cell 0: the last (row-major) wins
    out = max_unpool2d(values, indices, 2)
    # torch's CPU kernel splits a plane between threads, which then race on a shared cell; its
    # one-thread order is the defined one
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ref = F.max_unpool2d(torch.from_numpy(values), torch.from_numpy(indices), 2)
    finally:
        torch.set_num_threads(threads)
    assert ref.flatten()[0] == 4.0
    assert_close(out, ref.numpy(), what="duplicate indices")
    assert_close(max_unpool2d(values[0], indices[0], 2), ref.numpy()[0], what="unbatched")


def test_max_unpool2d_bad_input():
    v, i = np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 2), np.int64)
    with pytest.raises(ValueError, match="indices must have input's shape"):
        max_unpool2d(v, i[..., :1], 2)
    with pytest.raises(TypeError, match="integer dtype"):
        max_unpool2d(v, v, 2)
    with pytest.raises(ValueError, match="invalid output_size"):
        max_unpool2d(v, i, 2, output_size=(9, 9))


def test_max_unpool2d_is_device_pure(no_sync):
    import array_api_strict as xs

    dev = xs.Device("device1")
    x = data((1, 2, 6, 6))
    pooled, idx = F.max_pool2d(torch.from_numpy(x), 2, return_indices=True)
    v = xs.asarray(pooled.numpy(), device=dev)
    i = xs.asarray(idx.numpy(), device=dev)
    u = max_unpool2d(v, i, 2)
    max_unpool2d_backward(xs.ones_like(u), v, i, 2)


# ----------------------------------------------------------------------------- adaptive pool


@pytest.mark.parametrize(
    "hw,out", [((7, 11), (3, 5)), ((5, 4), 1), ((3, 4), (5, 7)), ((6, 6), (None, 4))]
)
def test_adaptive_avg_pool2d_matches_torch(be, hw, out):
    x = data((2, 3, *hw))
    xt = torch.tensor(x, requires_grad=True)
    yt = F.adaptive_avg_pool2d(xt, out)
    g = data(tuple(yt.shape), 1)
    yt.backward(torch.from_numpy(g))
    y = adaptive_avg_pool2d(be.asarray(x), out)
    gx = adaptive_avg_pool2d_backward(be.asarray(g), be.asarray(x), out)
    assert_close(
        y, yt.detach().numpy(), what="adaptive_avg_pool2d", check_dtype=False, **tolerances(be)
    )
    assert_close(gx, xt.grad.numpy(), what="adaptive backward", check_dtype=False, **tolerances(be))


def test_adaptive_avg_pool2d_keeps_infinities_in_their_band():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 0, 0] = np.inf
    ref = F.adaptive_avg_pool2d(torch.from_numpy(x), 2).numpy()
    assert_close(adaptive_avg_pool2d(x, 2), ref, what="inf input")


# ----------------------------------------------------------------------------- gradcheck


def test_gradcheck_passes_on_layers_and_catches_a_wrong_backward():
    rng = np.random.default_rng(0)
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1, rng=0).to(dtype="float64")
    x = rng.standard_normal((1, 2, 5, 4))
    result = nn.gradcheck(conv, [x], conv.backward, parameters=list(conv.parameters()))
    assert result.max_abs_error < 1e-7
    bn = nn.BatchNorm2d(3).to(dtype="float64")
    nn.gradcheck(
        bn, [rng.standard_normal((2, 3, 2, 2))], bn.backward, parameters=list(bn.parameters())
    )
    up = nn.Upsample(size=(5, 3), mode="bilinear", align_corners=True)
    nn.gradcheck(up, [rng.standard_normal((1, 1, 3, 4))], up.backward)

    class LeakyForgetsSlope(nn.LeakyReLU):
        def backward(self, grad_output):
            return np.where(self._cached("x")[0] > 0, grad_output, 0.0)  # the classic mistake

    bad = LeakyForgetsSlope(0.3)
    with pytest.raises(nn.GradcheckError, match=r"gradient of input 0 differs at"):
        nn.gradcheck(bad, [rng.standard_normal((3, 4))], bad.backward)
    with pytest.raises(TypeError, match="float64"):
        nn.gradcheck(bad, [np.zeros(3, np.float32)], bad.backward)
