"""nn.init and the layers' default initialisation against torch, in distribution.

Our numbers come from a NumPy generator, torch's from its own, so the test compares
distributions: a two-sample Kolmogorov-Smirnov test between large samples of both (seeded, so
deterministic), the bounds of the uniform ones and the standard deviation of the normal ones.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import assert_close
from scipy import stats

import minivision.nn as nn
from minivision._backend import to_numpy
from minivision.nn import init


def sample(shape, fill, **kw):
    p = nn.Parameter(np.zeros(shape, np.float32))
    fill(p, generator=np.random.default_rng(0), **kw)
    return to_numpy(p.data).ravel().astype(np.float64)


def torch_sample(shape, fill, **kw):
    t = torch.empty(shape)
    fill(t, generator=torch.Generator().manual_seed(0), **kw)
    return t.numpy().ravel().astype(np.float64)


def same_distribution(ours, theirs, what):
    result = stats.ks_2samp(ours, theirs)
    assert result.pvalue > 1e-3, (
        f"{what}: KS statistic {result.statistic:.4f}, p = {result.pvalue:.2g}"
    )


# (name, shape, keyword arguments)
SCHEMES = [
    ("kaiming_uniform_", (64, 32, 3, 3), {}),
    ("kaiming_uniform_", (64, 32, 3, 3), dict(a=math.sqrt(5))),
    ("kaiming_uniform_", (64, 32, 3, 3), dict(mode="fan_out", nonlinearity="relu")),
    ("kaiming_normal_", (128, 50), dict(nonlinearity="relu")),
    ("kaiming_normal_", (16, 40, 5, 5), dict(a=0.2, mode="fan_out")),
    ("xavier_uniform_", (100, 300), dict(gain=init.calculate_gain("tanh"))),
    ("xavier_normal_", (30, 20, 3, 3), {}),
    ("uniform_", (20000,), dict(a=-2.0, b=3.0)),
    ("normal_", (20000,), dict(mean=1.5, std=0.3)),
]


@pytest.mark.parametrize("scheme", SCHEMES, ids=[f"{s[0]}-{i}" for i, s in enumerate(SCHEMES)])
def test_scheme_matches_torch_in_distribution(scheme):
    name, shape, kw = scheme
    ours = sample(shape, getattr(init, name), **kw)
    theirs = torch_sample(shape, getattr(torch.nn.init, name), **kw)
    same_distribution(ours, theirs, f"{name}{kw}")
    # the bound (uniform) or the spread (normal) itself, against what torch drew
    if "uniform" in name:
        assert np.abs(ours).max() <= np.abs(theirs).max() * 1.01 + 1e-12
        assert np.abs(ours).max() >= np.abs(theirs).max() * 0.99
    assert ours.std() == pytest.approx(theirs.std(), rel=0.03)


def test_bounds_and_gains_by_formula():
    # kaiming_uniform_, leaky_relu with a = 0: bound = sqrt(2) * sqrt(3 / fan_in), fan_in = 32 * 9
    w = sample((64, 32, 3, 3), init.kaiming_uniform_)
    bound = math.sqrt(2) * math.sqrt(3 / 288)
    assert w.max() <= bound and w.min() >= -bound and w.max() > 0.99 * bound
    # fan_out = 64 * 9
    w = sample((64, 32, 3, 3), init.kaiming_normal_, mode="fan_out", nonlinearity="relu")
    assert w.std() == pytest.approx(math.sqrt(2 / 576), rel=0.02)
    for nl, param in [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None),
                      ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.3), ("selu", None)]:  # fmt: skip
        assert init.calculate_gain(nl, param) == pytest.approx(
            torch.nn.init.calculate_gain(nl, param)
        )
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(nn.Parameter(np.zeros(5)))
    with pytest.raises(ValueError, match="mode"):
        init.kaiming_uniform_(nn.Parameter(np.zeros((2, 2))), mode="fan_avg")
    with pytest.raises(TypeError, match="Parameter"):
        init.zeros_(np.zeros(3))


def test_constant_fills_and_seeds(be):
    p = nn.Parameter(be.asarray(np.zeros((2, 3))))
    assert np.all(to_numpy(init.constant_(p, 0.25).data) == 0.25)
    assert np.all(to_numpy(init.ones_(p).data) == 1) and np.all(to_numpy(init.zeros_(p).data) == 0)
    assert be.dtype_name(p.data) == ("float64" if be.name == "numpy" else "float32")
    a = to_numpy(init.normal_(p, generator=7).data).copy()
    b = to_numpy(init.normal_(p, generator=7).data)
    assert np.array_equal(a, b), "the same seed gives the same weights"


@pytest.mark.parametrize(
    "ours,theirs",
    [
        (lambda: nn.Conv2d(16, 32, 3, rng=0), lambda: torch.nn.Conv2d(16, 32, 3)),
        (lambda: nn.Conv2d(8, 32, (3, 5), groups=4, rng=0), lambda: torch.nn.Conv2d(8, 32, (3, 5), groups=4)),
        # torch's fan quirk: fan_in of a transposed convolution is C_out / groups * kH * kW
        (lambda: nn.ConvTranspose2d(8, 64, 4, rng=0), lambda: torch.nn.ConvTranspose2d(8, 64, 4)),
        (lambda: nn.Linear(300, 200, rng=0), lambda: torch.nn.Linear(300, 200)),
    ],
    ids=["conv", "conv-groups", "convT", "linear"],
)  # fmt: skip
def test_default_initialisation_is_torchs(ours, theirs):
    torch.manual_seed(0)
    layer, ref = ours(), theirs()
    for name, p in ref.named_parameters():
        mine = to_numpy(getattr(layer, name).data)
        assert mine.shape == tuple(p.shape) and mine.dtype == np.float32
        same_distribution(mine.ravel(), p.detach().numpy().ravel(), f"{type(ref).__name__}.{name}")
        # torch's bound for both: 1 / sqrt(fan_in), fan_in as torch computes it from the weight
        fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(ref.weight)
        bound = 1 / math.sqrt(fan_in)
        assert np.abs(p.detach().numpy()).max() <= bound
        assert np.abs(mine).max() <= bound
        if mine.size > 1000:
            assert np.abs(mine).max() > 0.99 * bound


def test_layer_seeds_are_reproducible():
    a, b, c = nn.Conv2d(3, 4, 3, rng=5), nn.Conv2d(3, 4, 3, rng=5), nn.Conv2d(3, 4, 3, rng=6)
    assert np.array_equal(a.weight.data, b.weight.data) and np.array_equal(a.bias.data, b.bias.data)
    assert not np.array_equal(a.weight.data, c.weight.data)
    bn = nn.BatchNorm2d(4)
    ref = torch.nn.BatchNorm2d(4)
    for key, value in ref.state_dict().items():
        assert_close(bn.state_dict()[key], value.numpy(), what=key)
    gn = nn.GroupNorm(2, 4)
    assert np.all(gn.weight.data == 1) and np.all(gn.bias.data == 0)


def d2l_bilinear_kernel(in_channels, out_channels, kernel_size):
    """d2l.ai section 14.10 (FCN), verbatim in torch but in float64."""
    factor = (kernel_size + 1) // 2
    if kernel_size % 2 == 1:
        center = factor - 1
    else:
        center = factor - 0.5
    og = (
        torch.arange(kernel_size, dtype=torch.float64).reshape(-1, 1),
        torch.arange(kernel_size, dtype=torch.float64).reshape(1, -1),
    )
    filt = (1 - torch.abs(og[0] - center) / factor) * (1 - torch.abs(og[1] - center) / factor)
    weight = torch.zeros((in_channels, out_channels, kernel_size, kernel_size), dtype=torch.float64)
    weight[range(in_channels), range(out_channels), :, :] = filt
    return weight


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 16, 64])
def test_bilinear_equals_fcn_kernel(k):
    p = nn.Parameter(np.zeros((3, 3, k, k)))
    init.bilinear_(p)
    assert_close(p.data, d2l_bilinear_kernel(3, 3, k).numpy(), what=f"bilinear_ k={k}")


def test_bilinear_transposed_conv_upsamples_bilinearly():
    """FCN's claim: ConvTranspose2d(k=2s, stride=s, padding=s/2) with this kernel is bilinear
    upsampling (torch's align_corners=False) away from the border."""
    layer = nn.ConvTranspose2d(2, 2, 4, stride=2, padding=1, bias=False).to(dtype="float64")
    init.bilinear_(layer.weight)
    x = np.random.default_rng(0).standard_normal((1, 2, 6, 7))
    y = to_numpy(layer(x))
    ref = torch.nn.functional.interpolate(
        torch.from_numpy(x), scale_factor=2, mode="bilinear"
    ).numpy()
    assert_close(y[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], what="interior", rtol=1e-12, atol=1e-12)
    depthwise = nn.Parameter(np.zeros((3, 1, 3, 3)))
    init.bilinear_(depthwise)
    assert np.all(depthwise.data[:, 0] == d2l_bilinear_kernel(1, 1, 3).numpy()[0, 0])
    with pytest.raises(ValueError, match="bilinear_ needs"):
        init.bilinear_(nn.Parameter(np.zeros((3, 2, 4, 4))))
