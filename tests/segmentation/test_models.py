"""The four segmenters against their torch transcriptions (minivision.bench.torch_segmenters),
built from ``torch.nn`` layers and torchvision's FCNHead / ASPP with the same weights: outputs,
the input gradient, every parameter gradient and BatchNorm's running statistics, in training
and eval mode; then the backends, the input checks, predict and seeding.

Training mode keeps the dropout of FCN's head and DeepLab's ASPP: both sides use the same
masks, recorded from torch and replayed in ours (conftest.py). BatchNorm parameters and
statistics and FCN's zero-initialised score layers are randomised first, so that every path
(each skip of FCN-8s included) carries a gradient.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_backend

from minivision._backend import to_numpy
from minivision.bench.torch_segmenters import torch_segmenter
from minivision.segmentation import FCN, DeepLabV3, SegNet, UNet

MODES = [pytest.param(True, id="train"), pytest.param(False, id="eval")]

# small widths keep the tests fast; the defaults are exercised by the seeding and size tests
MODELS = {
    "fcn32s": lambda seed=0: FCN(variant="32s", widths=(4, 8, 8, 8, 16), seed=seed),
    "fcn16s": lambda seed=0: FCN(variant="16s", widths=(4, 8, 8, 8, 16), seed=seed),
    "fcn8s": lambda seed=0: FCN(variant="8s", widths=(4, 8, 8, 8, 16), seed=seed),
    "unet": lambda seed=0: UNet(widths=(4, 8, 8, 16), seed=seed),
    "deeplab": lambda seed=0: DeepLabV3(widths=(4, 8, 8, 8, 8), aspp_channels=8, seed=seed),
    "deeplab-noaspp": lambda seed=0: DeepLabV3(
        widths=(4, 8, 8, 8), aspp_channels=8, aspp=False, seed=seed
    ),
    "segnet": lambda seed=0: SegNet(widths=(4, 8, 8), seed=seed),
}
DEFAULTS = {
    "fcn32s": lambda seed=0: FCN(variant="32s", seed=seed),
    "fcn16s": lambda seed=0: FCN(variant="16s", seed=seed),
    "fcn8s": lambda seed=0: FCN(seed=seed),
    "unet": lambda seed=0: UNet(seed=seed),
    "deeplab": lambda seed=0: DeepLabV3(seed=seed),
    "deeplab-noaspp": lambda seed=0: DeepLabV3(aspp=False, seed=seed),
    "segnet": lambda seed=0: SegNet(seed=seed),
}


def _images(shape, seed=1):
    """float32-representable pixels in [0, 1]."""
    return np.random.default_rng(seed).random(shape).astype(np.float32).astype(np.float64)


def _reference(name, seg_randomise, seed=0):
    ours = MODELS[name](seed)
    ref = seg_randomise(torch_segmenter(ours), seed)
    return ours, ref


@pytest.mark.parametrize("training", MODES)
@pytest.mark.parametrize("name", list(MODELS))
def test_model_matches_its_torch_transcription(name, training, seg_compare, seg_randomise):
    ours, ref = _reference(name, seg_randomise)
    assert list(ours.state_dict()) == list(ref.state_dict())
    x = _images((2, 3, 64, 96))
    y, _ = seg_compare(ours, ref, x, training=training, what=name)
    assert y.shape == (2, 4, 64, 96)


@pytest.mark.parametrize("name", ["fcn8s", "unet", "deeplab", "segnet"])
def test_model_on_every_backend_agrees_with_numpy(be, no_sync, name, seg_compare, seg_randomise):
    """Device-pure forward and backward (no host sync: the no_sync fixture), training mode with
    the dropout masks replayed, against torch as on NumPy (float32 tolerance off NumPy)."""
    ours, ref = _reference(name, seg_randomise)
    y, gx = seg_compare(ours, ref, _images((2, 3, 32, 64)), training=True, be=be, what=name)
    assert_backend(y, be)
    assert_backend(gx, be)


@pytest.mark.parametrize("name", list(DEFAULTS))
@pytest.mark.parametrize("size", [(64, 64), (96, 64), (128, 96)])
def test_any_size_the_stride_divides_works(name, size):
    model = DEFAULTS[name]().eval()
    h, w = size
    y = model(_images((1, 3, h, w)).astype(np.float32))
    assert y.shape == (1, 4, h, w) and y.dtype == np.float32
    assert model.backward(np.ones_like(y)).shape == (1, 3, h, w)


@pytest.mark.parametrize("name", list(DEFAULTS))
def test_bad_input_is_a_value_error_naming_x(name):
    model = DEFAULTS[name]()
    s = model.output_stride
    x = np.zeros((1, 3, 64, 64), np.float32)
    with pytest.raises(ValueError, match=rf"x has size {64 + s // 2}x64.*stride {s}"):
        model(np.zeros((1, 3, 64 + s // 2, 64), np.float32))
    with pytest.raises(ValueError, match=r"x has size 64x70"):
        model(np.zeros((1, 3, 64, 70), np.float32))
    with pytest.raises(ValueError, match=r"x must have 3 channels"):
        model(np.zeros((1, 4, 64, 64), np.float32))
    with pytest.raises(ValueError, match=r"x must be a batch of images \(N, 3, H, W\)"):
        model(x[0])
    with pytest.raises(ValueError, match=r"x must be a batch"):
        model(x[None])
    assert not np.any(x)


@pytest.mark.parametrize("name", list(DEFAULTS))
def test_predict_gives_maps_of_each_image_size(name):
    model = DEFAULTS[name]()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(37, 50), (64, 29)]]
    maps = model.predict(images)
    assert model.training  # the mode is restored
    assert [m.shape for m in maps] == [(37, 50), (64, 29)]
    assert all(m.dtype == np.int64 and m.min() >= 0 and m.max() <= 3 for m in maps)
    # each map is the argmax of the padded batch's logits, cropped
    s = model.output_stride
    hp, wp = -(-64 // s) * s, -(-50 // s) * s
    batch = np.zeros((2, 3, hp, wp), np.float32)
    for i, im in enumerate(images):
        batch[i, :, : im.shape[0], : im.shape[1]] = im.transpose(2, 0, 1) / np.float32(255)
    logits = model.eval()(batch)
    for i, (im, m) in enumerate(zip(images, maps)):
        assert np.array_equal(m, logits[i].argmax(0)[: im.shape[0], : im.shape[1]])
    model.eval()
    model.predict(images[:1])
    assert not model.training


@pytest.mark.parametrize("name", list(DEFAULTS))
def test_same_seed_same_weights_different_seed_different(name):
    a, b, c = (DEFAULTS[name](seed) for seed in (3, 3, 4))
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert list(sa) == list(sb) == list(sc)
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)
    convs = [k for k in sa if k.endswith("weight") and sa[k].ndim == 4]
    same = {k for k in convs if np.array_equal(sa[k], sc[k])}
    fixed = {"upscore2.weight", "upscore_pool4.weight", "score_pool4.weight", "score_pool3.weight"}
    assert same == fixed & set(convs)  # only FCN's bilinear and zero-initialised layers agree


def test_state_dict_round_trips_through_torch():
    """``torch_model.load_state_dict`` of our state_dict is strict; loading it back is too."""
    for name in MODELS:
        ours = MODELS[name]()
        ref = torch_segmenter(ours)
        other = MODELS[name](seed=5)
        other.load_state_dict(ref.state_dict())
        for k, v in ours.state_dict().items():
            assert np.array_equal(to_numpy(other.state_dict()[k]), to_numpy(v)), (name, k)


def test_fcn_parameters_and_the_fixed_upsampling():
    """The learned 2x layers are Parameters; the final bilinear upsampling is neither learned
    nor saved (a non-persistent buffer), and the score layers on pool3/pool4 start at zero."""
    model = FCN(variant="8s")
    names = [n for n, _ in model.named_parameters()]
    assert "upscore2.weight" in names and "upscore_pool4.weight" in names
    assert not any(n.startswith("upscore.") for n in names)
    assert not any(k.startswith("upscore.") for k in model.state_dict())
    for layer in ("score_pool4", "score_pool3"):
        assert not np.any(model.state_dict()[f"{layer}.weight"])
        assert not np.any(model.state_dict()[f"{layer}.bias"])
    assert model.upscore.factor == 8
    assert FCN(variant="16s").upscore.factor == 16 and FCN(variant="32s").upscore.factor == 32
    assert not hasattr(FCN(variant="32s"), "upscore2")


def test_unet_and_segnet_strides():
    assert UNet(widths=(4, 8)).output_stride == 2
    assert UNet().output_stride == 8
    assert SegNet().output_stride == 8 and SegNet(widths=(4, 8)).output_stride == 4
    assert FCN().output_stride == 32 and DeepLabV3().output_stride == 8


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="variant"):
        FCN(variant="4s")
    with pytest.raises(ValueError, match="widths"):
        FCN(widths=(8, 8, 8))
    with pytest.raises(ValueError, match="widths"):
        UNet(widths=(8,))
    with pytest.raises(ValueError, match="widths"):
        DeepLabV3(widths=(8, 8, 8))
    with pytest.raises(ValueError, match="classes"):
        SegNet(classes=())
    with pytest.raises(TypeError, match="seed"):
        UNet(seed=1.5)


def test_backward_before_forward_is_a_clear_error():
    for name in ("unet", "deeplab", "fcn8s", "segnet"):
        model = MODELS[name]()
        with pytest.raises(RuntimeError, match="before forward"):
            model.backward(np.zeros((1, 4, 32, 32), np.float32))


def test_gradient_reaches_each_fcn_skip(seg_randomise):
    """The score layers on pool3 and pool4 receive gradients (their values are checked against
    torch in the reference test; here, that the skips are not dead ends)."""
    ours, ref = _reference("fcn8s", seg_randomise)
    ours.load_state_dict(ref.state_dict())
    ours.to(dtype="float64").eval()
    x = _images((1, 3, 64, 64))
    y = ours(x)
    ours.zero_grad()
    ours.backward(np.ones_like(y))
    assert np.any(ours.score_pool3.weight.grad) and np.any(ours.score_pool4.weight.grad)


@pytest.mark.parametrize("name", ["fcn8s", "deeplab"])
def test_predict_on_every_backend_matches_numpy(be, name):
    """predict moves the padded batch onto the model's backend and the maps back to NumPy."""
    ref = MODELS[name]()
    ours = MODELS[name]().to(be.xp, be.device, "float64" if be.name == "numpy" else "float32")
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(33, 40), (20, 64)]]
    got, want = ours.predict(images), ref.predict(images)
    for g, w in zip(got, want):
        assert isinstance(g, np.ndarray) and g.dtype == np.int64 and g.shape == w.shape
        assert np.mean(g == w) > 0.99  # float32 vs float64 logits may flip a near-tie


@pytest.mark.parametrize("training", MODES)
def test_deeplab_with_256_channels_uses_torchvisions_deeplab_head(training, seg_compare,
                                                                   seg_randomise):  # fmt: skip
    from torchvision.models.segmentation.deeplabv3 import DeepLabHead as TVDeepLabHead

    ours = DeepLabV3(widths=(4, 4, 8, 8), atrous_rates=(2, 3), aspp_channels=256)
    ref = seg_randomise(torch_segmenter(ours))
    assert type(ref.classifier) is TVDeepLabHead
    seg_compare(ours, ref, _images((2, 3, 32, 32)), training=training, what="deeplab-256")
