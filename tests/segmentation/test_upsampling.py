"""FCN's bilinear upsampling: the transposed convolutions with the bilinear kernel are the
interpolation they claim to be, away from the border.

A ``ConvTranspose2d`` of kernel ``2f``, stride ``f`` and padding ``f / 2`` with the bilinear
tent equals ``torch.nn.functional.interpolate(scale_factor=f, mode="bilinear",
align_corners=False)`` except in the outer ``f / 2`` rows and columns: there the interpolation
clamps to the edge pixel, while the transposed convolution lacks the neighbour beyond the edge
(its weights there sum to less than 1).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_backend, assert_close

from minivision._backend import to_numpy
from minivision.segmentation import FCN, FixedBilinearUpsample


def _x(shape, seed=0):
    return np.random.default_rng(seed).random(shape).astype(np.float32).astype(np.float64)


def _interpolate(x, f):
    t = torch.from_numpy(x)
    return F.interpolate(t, scale_factor=f, mode="bilinear", align_corners=False).numpy()


def _tol(be):
    # float64: round-off; float32: the layers' tolerance (tests/nn/test_layers.py)
    return dict(rtol=1e-12, atol=1e-12) if be.name == "numpy" else dict(rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("f", [2, 4, 8, 16, 32])
def test_fixed_upsampling_is_bilinear_interpolation_in_the_interior(be, no_sync, f):
    up = FixedBilinearUpsample(3, f).to(be.xp, be.device, be.float_dtype)
    x = _x((2, 3, 5, 4))
    y = up(be.asarray(x))
    assert_backend(y, be)
    assert tuple(y.shape) == (2, 3, 5 * f, 4 * f)
    ref = _interpolate(x, f)
    b = f // 2
    assert_close(y[..., b:-b, b:-b], ref[..., b:-b, b:-b], what=f"x{f} interior",
                 check_dtype=False, **_tol(be))  # fmt: skip
    # the border is where the two differ: a constant map loses weight there
    ones = to_numpy(up(be.asarray(np.ones((1, 3, 5, 4)))))
    assert np.allclose(ones[..., b:-b, b:-b], 1.0)
    assert np.all(ones[..., :b, :] < 1.0) and np.all(ones[..., -b:, :] < 1.0)
    assert np.all(ones[..., :, :b] < 1.0) and np.all(ones[..., :, -b:] < 1.0)


@pytest.mark.parametrize("f", [2, 8, 32])
def test_fixed_upsampling_is_the_transposed_convolution(be, no_sync, f):
    """Forward and backward (the adjoint, a strided convolution) against torch's
    ``conv_transpose2d`` with the same kernel and its autograd; the kernel is not learned."""
    up = FixedBilinearUpsample(2, f).to(be.xp, be.device, be.float_dtype)
    x = _x((2, 2, 3, 4))
    g = _x((2, 2, 3 * f, 4 * f), seed=1) - 0.5
    xt = torch.tensor(x, requires_grad=True)
    w = torch.from_numpy(np.asarray(to_numpy(up.weight), np.float64))
    F.conv_transpose2d(xt, w, stride=f, padding=f // 2, groups=2).backward(torch.from_numpy(g))
    y = up(be.asarray(x))  # the same numbers as the grouped transposed convolution
    w32 = torch.from_numpy(np.asarray(to_numpy(up.weight)))
    ref = F.conv_transpose2d(torch.from_numpy(x), w32.double(), stride=f, padding=f // 2, groups=2)
    assert_close(y, ref.numpy(), what="forward", check_dtype=False, **_tol(be))
    gx = up.backward(be.asarray(g))
    assert_backend(gx, be)
    assert_close(gx, xt.grad.numpy(), what="grad x", check_dtype=False, **_tol(be))
    assert list(up.parameters()) == [] and list(up.state_dict()) == []


@pytest.mark.parametrize("variant", ["16s", "8s"])
def test_the_learned_2x_layers_start_bilinear(variant):
    model = FCN(variant=variant).to(dtype="float64")
    layers = [model.upscore2] + ([model.upscore_pool4] if variant == "8s" else [])
    x = _x((2, 4, 6, 5))
    ref = _interpolate(x, 2)
    for layer in layers:
        w = np.asarray(layer.weight.data)
        assert w.shape == (4, 4, 4, 4) and layer.bias is None
        off_diagonal = w[~np.eye(4, dtype=bool)]
        assert not np.any(off_diagonal)  # channel c upsamples channel c only
        assert_close(layer(x)[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], what="learned 2x interior",
                     rtol=1e-12, atol=1e-12)  # fmt: skip
        assert layer.weight.requires_grad


def test_fixed_upsampling_bad_arguments():
    with pytest.raises(ValueError, match="factor must be even"):
        FixedBilinearUpsample(3, 3)
    with pytest.raises(ValueError, match="factor"):
        FixedBilinearUpsample(3, 0)
    with pytest.raises(TypeError, match="channels"):
        FixedBilinearUpsample(2.5, 2)
    with pytest.raises(ValueError, match="expects input"):
        FixedBilinearUpsample(3, 2)(np.zeros((1, 4, 4, 4), np.float32))
    with pytest.raises(RuntimeError, match="before forward"):
        FixedBilinearUpsample(3, 2).backward(np.zeros((1, 3, 4, 4), np.float32))
