"""Every layer against ``torch.nn`` with the same weights: forward, input and parameter gradients.

The torch module is built first (float32, torch's own initialisation); its ``state_dict()`` is
loaded into ours through ``load_state_dict``. The reference runs in float64 on weights and inputs
that are exactly representable in float32, so float32 backends see the same numbers, rounded
only by their own arithmetic. Gradients come from torch autograd with a random upstream gradient.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from helpers import assert_backend, assert_close

import minivision.nn as nn
from minivision._backend import to_numpy


def tolerances(be):
    # float64 NumPy against float64 torch: round-off only
    return dict(rtol=1e-10, atol=1e-12) if be.name == "numpy" else dict(rtol=2e-4, atol=2e-5)


def to_backend(module, be):
    dtype = "float64" if be.name == "numpy" else "float32"
    return module.to(be.xp, be.device, dtype)


def run_both(ours, ref, x, be, *, training=True, seed=0, what=""):
    """Load ref's weights into ours, run forward + backward on both, compare everything."""
    ref64 = copy.deepcopy(ref).double()
    to_backend(ours, be)
    ours.load_state_dict(ref.state_dict())
    ours.train(training)
    ref64.train(training)
    rng = np.random.default_rng(seed)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    yt = ref64(xt)
    g = rng.standard_normal(tuple(yt.shape)).astype(np.float32).astype(np.float64)
    yt.backward(torch.from_numpy(g))
    y = ours(be.asarray(x))
    gx = ours.backward(be.asarray(g))
    tol = tolerances(be)
    name = what or type(ours).__name__
    assert_backend(y, be)
    assert_close(y, yt.detach().numpy(), what=f"{name} forward", check_dtype=False, **tol)
    assert_close(gx, xt.grad.numpy(), what=f"{name} input gradient", check_dtype=False, **tol)
    ref_params = dict(ref64.named_parameters())
    assert sorted(ref_params) == sorted(n for n, _ in ours.named_parameters())
    for pname, p in ours.named_parameters():
        assert_close(
            p.grad, ref_params[pname].grad.numpy(), what=f"{name} {pname}.grad",
            check_dtype=False, **tol,
        )  # fmt: skip
    ref_buffers = dict(ref64.named_buffers())
    for bname, b in ours.named_buffers():
        assert_close(
            b, ref_buffers[bname].numpy(), what=f"{name} {bname}", check_dtype=False, **tol
        )
    return ours, ref64


def make_input(shape, seed=1):
    """Random input exactly representable in float32."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32).astype(np.float64)


# (id, torch constructor, minivision constructor, input shape)
CASES = [
    ("conv", lambda: torch.nn.Conv2d(3, 5, 3, padding=1), lambda: nn.Conv2d(3, 5, 3, padding=1), (2, 3, 8, 7)),
    (
        "conv-groups-dilation-nonsquare",
        lambda: torch.nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(2, 1), dilation=(2, 3), groups=2, bias=False),
        lambda: nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(2, 1), dilation=(2, 3), groups=2, bias=False),
        (2, 4, 11, 9),
    ),
    ("conv-stride-gt-kernel", lambda: torch.nn.Conv2d(3, 2, 2, stride=3), lambda: nn.Conv2d(3, 2, 2, stride=3), (1, 3, 10, 8)),
    (
        "conv-same-even",
        lambda: torch.nn.Conv2d(2, 3, 4, padding="same", dilation=2),
        lambda: nn.Conv2d(2, 3, 4, padding="same", dilation=2),
        (2, 2, 7, 9),
    ),
    ("conv-depthwise", lambda: torch.nn.Conv2d(4, 4, 3, groups=4), lambda: nn.Conv2d(4, 4, 3, groups=4), (2, 4, 6, 5)),
    (
        "convT",
        lambda: torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1),
        lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1),
        (2, 4, 5, 6),
    ),
    (
        "convT-groups-dilation-outpad",
        lambda: torch.nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 3), padding=(1, 0), output_padding=(1, 2), groups=2, dilation=2),
        lambda: nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 3), padding=(1, 0), output_padding=(1, 2), groups=2, dilation=2),
        (2, 4, 4, 3),
    ),
    (
        "convT-stride-gt-kernel",
        lambda: torch.nn.ConvTranspose2d(3, 2, 2, stride=3, bias=False),
        lambda: nn.ConvTranspose2d(3, 2, 2, stride=3, bias=False),
        (1, 3, 4, 5),
    ),
    ("linear", lambda: torch.nn.Linear(7, 3), lambda: nn.Linear(7, 3), (2, 5, 7)),
    ("linear-nobias", lambda: torch.nn.Linear(4, 6, bias=False), lambda: nn.Linear(4, 6, bias=False), (3, 4)),
    ("relu", torch.nn.ReLU, nn.ReLU, (2, 3, 4, 5)),
    ("leaky-relu", lambda: torch.nn.LeakyReLU(0.2), lambda: nn.LeakyReLU(0.2), (2, 3, 4, 5)),
    ("sigmoid", torch.nn.Sigmoid, nn.Sigmoid, (2, 3, 4, 5)),
    ("flatten", torch.nn.Flatten, nn.Flatten, (2, 3, 4, 5)),
    ("flatten-1-2", lambda: torch.nn.Flatten(1, 2), lambda: nn.Flatten(1, 2), (2, 3, 4, 5)),
    ("maxpool", lambda: torch.nn.MaxPool2d(2), lambda: nn.MaxPool2d(2), (2, 3, 8, 6)),
    (
        "maxpool-ceil-pad",
        lambda: torch.nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
        lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
        (2, 3, 8, 7),
    ),
    (
        "maxpool-dilation-nonsquare",
        lambda: torch.nn.MaxPool2d((2, 3), stride=(3, 1), dilation=(2, 1)),
        lambda: nn.MaxPool2d((2, 3), stride=(3, 1), dilation=(2, 1)),
        (1, 2, 9, 7),
    ),
    ("avgpool", lambda: torch.nn.AvgPool2d(2), lambda: nn.AvgPool2d(2), (2, 3, 8, 6)),
    (
        "avgpool-ceil-nopadcount",
        lambda: torch.nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
        lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
        (2, 3, 8, 7),
    ),
    ("adaptive-avg", lambda: torch.nn.AdaptiveAvgPool2d((3, 5)), lambda: nn.AdaptiveAvgPool2d((3, 5)), (2, 3, 7, 11)),
    ("adaptive-avg-global", lambda: torch.nn.AdaptiveAvgPool2d(1), lambda: nn.AdaptiveAvgPool2d(1), (2, 3, 5, 4)),
    ("adaptive-avg-none", lambda: torch.nn.AdaptiveAvgPool2d((None, 2)), lambda: nn.AdaptiveAvgPool2d((None, 2)), (1, 2, 3, 5)),
    ("adaptive-avg-up", lambda: torch.nn.AdaptiveAvgPool2d((5, 7)), lambda: nn.AdaptiveAvgPool2d((5, 7)), (1, 2, 3, 4)),
    ("upsample-nearest", lambda: torch.nn.Upsample(scale_factor=2), lambda: nn.Upsample(scale_factor=2), (2, 3, 4, 5)),
    (
        "upsample-nearest-size",
        lambda: torch.nn.Upsample(size=(7, 3)),
        lambda: nn.Upsample(size=(7, 3)),
        (2, 3, 3, 5),
    ),
    (
        "upsample-bilinear",
        lambda: torch.nn.Upsample(size=(7, 9), mode="bilinear"),
        lambda: nn.Upsample(size=(7, 9), mode="bilinear"),
        (2, 3, 4, 5),
    ),
    (
        "upsample-bilinear-corners",
        lambda: torch.nn.Upsample(scale_factor=(2.5, 1.5), mode="bilinear", align_corners=True),
        lambda: nn.Upsample(scale_factor=(2.5, 1.5), mode="bilinear", align_corners=True),
        (2, 3, 4, 5),
    ),
    ("batchnorm", lambda: torch.nn.BatchNorm2d(3), lambda: nn.BatchNorm2d(3), (4, 3, 5, 6)),
    (
        "batchnorm-cumulative",
        lambda: torch.nn.BatchNorm2d(3, momentum=None, eps=1e-3),
        lambda: nn.BatchNorm2d(3, momentum=None, eps=1e-3),
        (2, 3, 4, 5),
    ),
    ("batchnorm-noaffine", lambda: torch.nn.BatchNorm2d(3, affine=False), lambda: nn.BatchNorm2d(3, affine=False), (4, 3, 2, 3)),
    (
        "batchnorm-untracked",
        lambda: torch.nn.BatchNorm2d(3, track_running_stats=False),
        lambda: nn.BatchNorm2d(3, track_running_stats=False),
        (4, 3, 2, 3),
    ),
    ("groupnorm", lambda: torch.nn.GroupNorm(2, 4), lambda: nn.GroupNorm(2, 4), (2, 4, 5, 3)),
    ("groupnorm-layer", lambda: torch.nn.GroupNorm(1, 4, eps=1e-3), lambda: nn.GroupNorm(1, 4, eps=1e-3), (3, 4, 2, 3)),
    ("groupnorm-instance-noaffine", lambda: torch.nn.GroupNorm(4, 4, affine=False), lambda: nn.GroupNorm(4, 4, affine=False), (2, 4, 3, 3)),
]  # fmt: skip


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_layer_matches_torch(be, case, training):
    name, make_ref, make_ours, shape = case
    torch.manual_seed(0)
    run_both(make_ours(), make_ref(), make_input(shape), be, training=training, what=name)


def test_batchnorm_running_stats_after_several_steps(be):
    """Three training steps, then eval: running mean/var (unbiased), counter and eval output."""
    for momentum in (0.1, None, 0.7):
        ref = torch.nn.BatchNorm2d(3, momentum=momentum)
        ours = to_backend(nn.BatchNorm2d(3, momentum=momentum), be)
        ours.load_state_dict(ref.state_dict())
        ref64 = ref.double()
        for step in range(3):
            x = make_input((2 + step, 3, 4, 5), seed=10 + step) * (step + 1) + step
            ref64(torch.from_numpy(x))
            ours(be.asarray(x))
        assert int(to_numpy(ours.num_batches_tracked)) == 3
        for bname, b in ref64.named_buffers():
            assert_close(
                getattr(ours, bname), b.numpy(), what=f"{bname} (momentum={momentum})",
                check_dtype=False, **tolerances(be),
            )  # fmt: skip
        run_both(ours, ref, make_input((2, 3, 4, 5), seed=20), be, training=False)


def test_sequential_cnn_end_to_end(be):
    """A small CNN of several layers against torch: every parameter's gradient, train mode."""

    def build(mod):
        return mod.Sequential(
            mod.Conv2d(3, 8, 3, padding=1),
            mod.BatchNorm2d(8),
            mod.ReLU(),
            mod.MaxPool2d(2),
            mod.Conv2d(8, 16, 3, stride=2, padding=1, bias=False),
            mod.GroupNorm(4, 16),
            mod.LeakyReLU(0.1),
            mod.Upsample(scale_factor=2, mode="bilinear"),
            mod.AvgPool2d(2),
            mod.AdaptiveAvgPool2d((2, 2)),
            mod.Flatten(),
            mod.Linear(64, 10),
            mod.Sigmoid(),
            mod.Linear(10, 4),
        )

    torch.manual_seed(0)
    ref = build(torch.nn)
    ours = build(nn)
    assert list(ours.state_dict()) == list(ref.state_dict())
    run_both(ours, ref, make_input((3, 3, 16, 12)), be, training=True, what="Sequential CNN")


def test_gradients_accumulate(be):
    """Two forward/backward passes sum their parameter gradients, as torch's two backward calls."""
    torch.manual_seed(0)
    ref = torch.nn.Conv2d(3, 4, 3, stride=2).double()
    ours = to_backend(nn.Conv2d(3, 4, 3, stride=2), be)
    ours.load_state_dict(ref.state_dict())
    for seed in (1, 2):
        x = make_input((2, 3, 7, 7), seed=seed)
        g = make_input((2, 4, 3, 3), seed=seed + 10)
        ref(torch.from_numpy(x)).backward(torch.from_numpy(g))
        ours(be.asarray(x))
        ours.backward(be.asarray(g))
    for pname, p in ref.named_parameters():
        assert_close(getattr(ours, pname).grad, p.grad.numpy(), what=f"accumulated {pname}.grad",
                     check_dtype=False, **tolerances(be))  # fmt: skip
    ours.zero_grad()
    assert all(p.grad is None for p in ours.parameters())


def test_maxpool_return_indices_and_unpool(be):
    torch.manual_seed(0)
    x = make_input((2, 3, 7, 8))
    for kw in (dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1)):
        xt = torch.tensor(x, requires_grad=True)
        yt, it = torch.nn.functional.max_pool2d(xt, return_indices=True, **kw)
        ut = torch.nn.functional.max_unpool2d(yt, it, output_size=x.shape[-2:], **kw)
        g = make_input(tuple(ut.shape), seed=3)
        ut.backward(torch.from_numpy(g))
        pool = nn.MaxPool2d(return_indices=True, **kw)
        unpool = nn.MaxUnpool2d(**kw)
        y, i = pool(be.asarray(x))
        assert_close(i, it.numpy(), what="MaxPool2d indices")
        u = unpool(y, i, output_size=x.shape[-2:])
        assert_close(u, ut.detach().numpy(), what="MaxUnpool2d forward", check_dtype=False)
        gx = pool.backward(unpool.backward(be.asarray(g)))
        assert_close(gx, xt.grad.numpy(), what="pool-unpool gradient", check_dtype=False,
                     **tolerances(be))  # fmt: skip


def test_convtranspose_output_size(be):
    torch.manual_seed(0)
    ref = torch.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1).double()
    ours = to_backend(nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1), be)
    ours.load_state_dict(ref.state_dict())
    x = make_input((1, 2, 4, 5))
    yt = ref(torch.from_numpy(x), output_size=(8, 9))
    y = ours(be.asarray(x), output_size=(8, 9))
    assert_close(y, yt.detach().numpy(), what="output_size", check_dtype=False, **tolerances(be))
    with pytest.raises(ValueError, match="output size"):
        ours(be.asarray(x), output_size=(10, 9))


def test_dropout_eval_matches_torch(be):
    run_both(
        nn.Dropout(0.3, rng=0), torch.nn.Dropout(0.3), make_input((2, 3, 4)), be, training=False
    )


def test_dropout_training(be):
    """Inverted dropout: kept elements scaled by 1/(1-p), ~p dropped, backward uses the same mask."""
    p = 0.3
    layer = nn.Dropout(p, rng=0)
    x = be.asarray(np.ones((64, 100)))
    y = to_numpy(layer(x))
    kept = y != 0
    assert np.allclose(y[kept], 1 / (1 - p), rtol=1e-6)
    assert abs((~kept).mean() - p) < 0.01  # 6400 draws: sd of the fraction ~0.006
    g = to_numpy(layer.backward(be.asarray(np.full((64, 100), 2.0))))
    assert np.array_equal(g != 0, kept) and np.allclose(g[kept], 2 / (1 - p), rtol=1e-6)
    same = nn.Dropout(p, rng=0)
    assert np.array_equal(to_numpy(same(x)), y), "the same seed gives the same mask"
    assert np.array_equal(to_numpy(nn.Dropout(1.0, rng=0)(x)), np.zeros((64, 100)))
    assert to_numpy(nn.Dropout(0.0)(x)).min() == 1.0
    layer.eval()
    assert layer(x) is x


def test_default_training_flag_and_modes():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, rng=0), nn.BatchNorm2d(2), nn.Dropout(0.5, rng=0))
    assert all(m.training for m in model.modules())
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


# ----------------------------------------------------------------------------- bad input


def test_wrong_channel_count_names_in_channels():
    x = np.zeros((1, 4, 8, 8), np.float32)
    with pytest.raises(ValueError, match=r"in_channels=3.*4 channels"):
        nn.Conv2d(3, 2, 3, rng=0)(x)
    with pytest.raises(ValueError, match=r"in_channels=5"):
        nn.ConvTranspose2d(5, 2, 3, rng=0)(x)
    with pytest.raises(ValueError, match=r"num_features=3"):
        nn.BatchNorm2d(3)(x)
    with pytest.raises(ValueError, match=r"num_channels=6"):
        nn.GroupNorm(2, 6)(x)
    with pytest.raises(ValueError, match=r"in_features=5"):
        nn.Linear(5, 2, rng=0)(np.zeros((2, 4), np.float32))


def test_backward_before_forward_is_a_clear_error():
    for layer in (nn.Conv2d(1, 1, 1, rng=0), nn.Linear(2, 2, rng=0), nn.ReLU(), nn.BatchNorm2d(2),
                  nn.MaxPool2d(2), nn.Upsample(scale_factor=2)):  # fmt: skip
        with pytest.raises(RuntimeError, match="backward called before forward"):
            layer.backward(np.zeros((1, 1, 2, 2), np.float32))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(3, 4, 3, padding_mode="reflect")
    with pytest.raises(TypeError, match="kernel_size"):
        nn.Conv2d(3, 4, 2.5)
    with pytest.raises(ValueError, match="dropout probability"):
        nn.Dropout(1.5)
    with pytest.raises(ValueError, match="num_channels must be divisible by num_groups"):
        nn.GroupNorm(3, 4)
    with pytest.raises(TypeError, match="rng"):
        nn.Linear(2, 2, rng="seed")
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm2d(2)(np.zeros((1, 2, 1, 1), np.float32))


# ----------------------------------------------------------------------------- device-pure


def test_layers_are_device_pure(no_sync):
    import array_api_strict as xs

    dev = xs.Device("device1")
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, rng=0),
        nn.BatchNorm2d(4, momentum=None),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Upsample(scale_factor=2, mode="bilinear"),
        nn.GroupNorm(2, 4),
        nn.LeakyReLU(0.1),
        nn.MaxPool2d(3, stride=1, padding=1),
        nn.AvgPool2d(3, stride=1, padding=1),
        nn.Upsample(size=(9, 7)),
        nn.ConvTranspose2d(4, 2, 2, stride=2, rng=1),
        nn.Dropout(0.2, rng=2),
        nn.AdaptiveAvgPool2d(3),
        nn.Flatten(),
        nn.Linear(18, 5, rng=3),
        nn.Sigmoid(),
    ).to(xs, dev)
    x = xs.asarray(make_input((2, 3, 8, 8)), dtype=xs.float32, device=dev)
    y = model(x)
    gx = model.backward(xs.ones_like(y))
    assert gx.device == dev and y.device == dev
    assert all(p.grad.device == dev for p in model.parameters())
    model.eval()
    model.backward(xs.ones_like(model(x)))


TILED = [
    dict(kernel_size=2),
    dict(kernel_size=(3, 2)),
    dict(kernel_size=2, stride=2, ceil_mode=True),
    dict(kernel_size=3, stride=(3, 3), return_indices=True),
]


@pytest.mark.parametrize("kw", TILED, ids=[str(k) for k in TILED])
def test_maxpool_tiling_fast_path_ties_nan_inf(be, kw):
    """MaxPool2d's tiling path (stride = kernel) against torch: ties (first wins), NaN (last
    NaN wins), -inf tiles, rows and columns left over in floor mode."""
    rng = np.random.default_rng(0)
    shape = (2, 3, 8, 6) if kw.get("ceil_mode") else (2, 3, 7, 9)
    x = np.round(rng.standard_normal(shape) * 2) / 2  # many ties
    x[0, 0, :3, :3] = np.nan
    x[0, 1, 1, 1] = np.nan
    x[1, 0, :3, :3] = -np.inf
    x[1, 1, 3:6, :2] = np.inf
    xt = torch.tensor(x, requires_grad=True)
    ref = torch.nn.functional.max_pool2d(xt, **kw)
    rt, it = ref if kw.get("return_indices") else (ref, None)
    g = make_input(tuple(rt.shape), seed=5)
    rt.backward(torch.from_numpy(g))
    layer = nn.MaxPool2d(**kw)
    out = layer(be.asarray(x))
    y, idx = out if kw.get("return_indices") else (out, None)
    assert layer._cache["tile"] is not None, "this configuration takes the tiling path"
    assert_close(y, rt.detach().numpy(), what="tiled max pool", check_dtype=False)
    if idx is not None:
        assert_close(idx, it.numpy(), what="tiled max pool indices")
    gx = layer.backward(be.asarray(g))
    assert_close(gx, xt.grad.numpy(), what="tiled max pool gradient", check_dtype=False)
