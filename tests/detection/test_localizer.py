"""The classify-and-localise CNN of lesson 09 against the same network in torch (same weights),
its loss against torch autograd, its predictions' format, and the shipped checkpoint's scores
on held-out scenes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_backend, assert_close

import minivision
from minivision._backend import to_numpy
from minivision.detection.localizer import (
    Localizer,
    LocalizerConfig,
    evaluate,
    localizer_loss,
    localizer_loss_backward,
    make_batch,
    training_recipe,
)

SMALL = LocalizerConfig(image_size=16, min_size=6, channels=(3, 4, 5), hidden=6)
WEIGHTS = Path(minivision.__file__).parent / "weights" / "localizer_shapes.npz"


class TorchLocalizer(torch.nn.Module):
    """The same network, written with torch.nn and the same parameter names."""

    def __init__(self, c: LocalizerConfig):
        super().__init__()
        layers, c_in = [], 3
        for ch in c.channels:
            layers += [torch.nn.Conv2d(c_in, ch, 3, padding=1, bias=False),
                       torch.nn.BatchNorm2d(ch), torch.nn.ReLU(), torch.nn.MaxPool2d(2)]  # fmt: skip
            c_in = ch
        self.features = torch.nn.Sequential(*layers)
        side = c.image_size // 8
        self.fc = torch.nn.Sequential(torch.nn.Linear(c_in * side * side, c.hidden), torch.nn.ReLU())
        self.cls_head = torch.nn.Linear(c.hidden, len(c.classes))
        self.box_head = torch.nn.Linear(c.hidden, 4)

    def forward(self, x):
        h = self.fc(self.features(x).flatten(1))
        return torch.cat([self.cls_head(h), self.box_head(h)], 1)


def torch_loss(out, labels, boxes, alpha):
    k = out.shape[1] - 4
    l2 = ((out[:, k:] - boxes) ** 2).sum() / out.shape[0]
    return alpha * F.cross_entropy(out[:, :k], labels - 1) + (1 - alpha) * l2


def _batch(n=5, seed=3):
    images, labels, boxes = make_batch(SMALL.dataset(n, seed), range(n))
    noise = np.random.default_rng(seed).uniform(-0.1, 0.1, images.shape)  # no max-pool ties
    return images + noise, labels, boxes


def _tol(be):
    return dict(rtol=1e-10, atol=1e-12) if be.name == "numpy" else dict(rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_forward_and_backward_match_torch(be, training):
    ref = TorchLocalizer(SMALL).double()
    ref.train(training)
    ours = Localizer(SMALL, seed=4).to(be.xp, be.device, "float64" if be.name == "numpy" else "float32")
    ours.load_state_dict(ref.state_dict())
    ours.train(training)
    images, labels, boxes = _batch()
    xt = torch.tensor(images, dtype=torch.float64, requires_grad=True)
    out_t = ref(xt)
    loss_t = torch_loss(out_t, torch.from_numpy(labels), torch.from_numpy(boxes).double(), SMALL.alpha)
    loss_t.backward()

    x, lab, box = be.asarray(images), be.asarray(labels), be.asarray(boxes)
    out = ours(x)
    assert_backend(out, be)
    assert_close(out, out_t.detach().numpy(), what="outputs", check_dtype=False, **_tol(be))
    loss = localizer_loss(out, lab, box, SMALL.alpha)
    assert_close(loss, loss_t.detach().numpy(), what="loss", check_dtype=False, **_tol(be))
    grad_x = ours.backward(localizer_loss_backward(out, lab, box, SMALL.alpha))
    assert_close(grad_x, xt.grad.numpy(), what="input gradient", check_dtype=False, **_tol(be))
    ref_params = dict(ref.named_parameters())
    names = [n for n, _ in ours.named_parameters()]
    assert names == list(ref_params)
    for name, p in ours.named_parameters():
        assert_close(p.grad, ref_params[name].grad.numpy(), what=f"{name}.grad", check_dtype=False,
                     **_tol(be))  # fmt: skip
    if training:  # the running statistics moved as torch's did
        for name, buf in ref.named_buffers():
            assert_close(ours.state_dict()[name], buf.numpy(), what=name, check_dtype=False, **_tol(be))


def test_the_shared_features_receive_the_sum_of_both_heads():
    model = Localizer(SMALL, seed=2).to(dtype="float64")
    images, _, _ = _batch()
    out = model(images)
    g = np.random.default_rng(0).normal(size=out.shape)
    k = len(SMALL.classes)
    h = model.fc(model.flatten(model.features(images)))
    model.zero_grad()
    model.cls_head(h)
    g_cls = model.cls_head.backward(g[:, :k])
    model.box_head(h)
    g_box = model.box_head.backward(g[:, k:])
    model.zero_grad()
    model(images)
    model.backward(g)
    # the hidden layer's weight gradient is what the summed head gradients produce
    fc = model.fc[0]
    pre = model.flatten(model.features(images))
    relu_mask = (pre @ to_numpy(fc.weight.data).T + to_numpy(fc.bias.data)) > 0
    expected = ((g_cls + g_box) * relu_mask).T @ pre
    assert_close(fc.weight.grad, expected, what="fc.0.weight.grad", rtol=1e-10, atol=1e-12)


def test_loss_backward_matches_autograd():
    rng = np.random.default_rng(1)
    out = rng.normal(size=(6, 7))
    labels = rng.integers(1, 4, 6)
    boxes = rng.uniform(size=(6, 4))
    ot = torch.tensor(out, requires_grad=True)
    for alpha in (0.0, 0.3, 1.0):
        ot.grad = None
        torch_loss(ot, torch.from_numpy(labels), torch.from_numpy(boxes), alpha).backward()
        assert_close(localizer_loss_backward(out, labels, boxes, alpha), ot.grad.numpy(),
                     what=f"gradient at alpha {alpha}", rtol=1e-12, atol=1e-15)  # fmt: skip


def test_predict_follows_the_detector_api():
    model = Localizer(SMALL, seed=0)
    scenes = SMALL.dataset(3, seed=1)
    images = [scenes[i]["image"] for i in range(3)]
    model.train()
    preds = model.predict(images)
    assert model.training, "predict must restore the training mode"
    assert len(preds) == 3
    for p in preds:
        assert set(p) == {"boxes", "scores", "labels"}
        assert p["boxes"].shape == (1, 4) and p["boxes"].dtype == np.float32
        assert p["scores"].shape == (1,) and 0 < float(p["scores"][0]) <= 1
        assert p["labels"].dtype == np.int64 and 1 <= int(p["labels"][0]) <= len(model.classes)
        assert np.all((p["boxes"] >= 0) & (p["boxes"] <= SMALL.image_size))
    assert model.classes == ("square", "circle", "triangle")
    for image, before in zip(images, [scenes[i]["image"] for i in range(3)]):
        assert np.array_equal(image, before)


def test_make_batch_normalises_the_one_box():
    ds = SMALL.dataset(4, seed=0)
    images, labels, boxes = make_batch(ds, range(4))
    assert images.shape == (4, 3, 16, 16) and images.dtype == np.float32
    assert labels.dtype == np.int64 and boxes.shape == (4, 4)
    assert_close(boxes * 16, np.stack([ds[i]["boxes"][0] for i in range(4)]), what="boxes",
                 rtol=1e-6, check_dtype=False)  # fmt: skip


def test_the_recipe_trains_the_same_way_twice():
    losses = []
    for _ in range(2):
        parts = training_recipe(LocalizerConfig(image_size=16, min_size=6, batch_size=4), seed=5)
        batch = parts["batch_fn"](2, None)
        losses.append(float(parts["step_fn"](batch, None)))
    assert losses[0] == losses[1]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(image_size=20), "multiple of 8"),
        (dict(channels=(4, 4)), "three positive widths"),
        (dict(alpha=1.5), "alpha must be in [0, 1]"),
    ],
)
def test_bad_config(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        LocalizerConfig(**kwargs)


@pytest.mark.parametrize("seed, n", [(LocalizerConfig().val_seed, 200), (7, 200)])
def test_the_shipped_checkpoint_reaches_its_targets(seed, n):
    config = LocalizerConfig()
    model = Localizer(config)
    with np.load(WEIGHTS) as saved:
        model.load_state_dict(dict(saved))
    scores = evaluate(model, config.dataset(n, seed))
    assert scores["accuracy"] >= 0.95 and scores["mean_iou"] >= 0.8, scores
