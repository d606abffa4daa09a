"""Lesson 15's segmenters trained: short honest runs learn, resume is exact, the shipped models
reach their floors on held-out scenes and show the papers' findings, and ``minivision segment``
and ``load_pretrained`` behave (DESIGN.md §8)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from skimage import io

import minivision
from minivision.cli import main
from minivision.segmentation.recipes import MODELS, SegmenterConfig, evaluate
from minivision.weights import available, load_model, load_pretrained

SEGMENTERS = ["fcn32s", "fcn16s", "fcn8s", "unet", "deeplab", "deeplab_no_aspp", "segnet"]
HELD_OUT = 2_000_017  # a seed neither the training nor the manifests' val sets use


def _params(out):
    with np.load(out / "checkpoint.npz", allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files if k.startswith(("model/", "optimizer/"))}


def test_every_segmenter_is_a_train_model():
    assert sorted(MODELS) == sorted(SEGMENTERS)


def test_a_short_unet_run_learns_more_than_the_background(tmp_path, capsys):
    """250 steps on 32 x 32 scenes: the loss falls and every class is found somewhat.

    Predicting background everywhere would give IoU 0 for every shape class (mIoU = IoU of
    the background / 4, about 0.2): a run that learned nothing fails the mIoU floor.
    """
    out = tmp_path / "unet"
    args = ["train", "unet", "--steps", "250", "--seed", "5", "--out", str(out),
            "--image-size", "32", "--batch-size", "8", "--checkpoint-every", "250"]  # fmt: skip
    assert main(args) == 0
    assert "held-out pixel_accuracy" in capsys.readouterr().out
    history = json.loads((out / "history.json").read_text())
    losses = history["losses"]
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5])
    scores = history["evals"][-1]
    assert scores["miou"] > 0.45, scores
    assert min(scores[f"iou_{c}"] for c in ("square", "circle", "triangle")) > 0.2, scores


@pytest.mark.parametrize("model, size", [("deeplab", "32"), ("fcn8s", "64")])  # both hold Dropout
def test_resume_is_bit_identical(tmp_path, capsys, model, size):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    common = ["--seed", "2", "--checkpoint-every", "2", "--image-size", size, "--batch-size", "2"]
    assert main(["train", model, "--steps", "4", "--out", str(straight), *common]) == 0
    assert main(["train", model, "--steps", "2", "--out", str(resumed), *common]) == 0
    assert main(["train", model, "--steps", "4", "--out", str(resumed), *common]) == 0
    a, b = _params(straight), _params(resumed)
    assert a.keys() == b.keys() and len(a) > 20
    for key in a:
        assert np.array_equal(a[key], b[key]), f"{key} differs after resuming"


def test_an_image_size_the_stride_does_not_divide_is_refused(tmp_path, capsys):
    assert main(["train", "fcn8s", "--steps", "1", "--image-size", "48", "--out",
                 str(tmp_path / "x")]) == 2  # fmt: skip
    assert "image_size must be a multiple of 32" in capsys.readouterr().err


# ----------------------------------------------------------------------------- shipped models


def _held_out(name, n=100):
    model = load_pretrained(name)
    config = SegmenterConfig(**model.manifest["config"])
    return model, evaluate(model, config.dataset(n, HELD_OUT))


@pytest.fixture(scope="module")
def shipped_scores():
    return {name: _held_out(name)[1] for name in available() if name != "localizer_shapes"}


def test_every_segmenter_ships(shipped_scores):
    assert sorted(shipped_scores) == sorted(f"{m}_shapes" for m in SEGMENTERS)


@pytest.mark.parametrize("name, floor", [("unet_shapes", 0.85), ("deeplab_shapes", 0.85),
                                         ("fcn8s_shapes", 0.75), ("segnet_shapes", 0.75)])  # fmt: skip
def test_shipped_models_reach_their_floors_on_held_out_scenes(shipped_scores, name, floor):
    assert shipped_scores[name]["miou"] >= floor, shipped_scores[name]


def test_fcn8s_draws_sharper_boundaries_than_fcn32s(shipped_scores):
    """Long et al.: the skips from pool4 and pool3 recover the detail the stride-32 map lost."""
    s8, s32 = shipped_scores["fcn8s_shapes"], shipped_scores["fcn32s_shapes"]
    assert s8["boundary_iou"] > s32["boundary_iou"] + 0.02, (s8, s32)


def test_manifests_record_how_each_model_was_made():
    for name in available():
        manifest = load_pretrained(name).manifest
        assert {"command", "commit", "seed", "steps", "config", "metrics"} <= set(manifest)
        assert f"--seed {manifest['seed']}" in manifest["command"]
        assert f"--steps {manifest['steps']}" in manifest["command"]
        size = (minivision.weights.FOLDER / f"{name}.npz").stat().st_size
        assert size <= 2 * 2**20, f"{name}.npz is {size} bytes"


def test_predict_follows_the_segmenter_api_on_any_size():
    model = load_pretrained("unet_shapes")
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(64, 64), (37, 90)]]
    maps = model.predict(images)
    assert [m.shape for m in maps] == [(64, 64), (37, 90)]
    assert all(m.dtype == np.int64 and m.min() >= 0 and m.max() <= 3 for m in maps)
    assert model.classes == ("square", "circle", "triangle")
    assert not model.training


def test_load_pretrained_refuses_an_unknown_name():
    with pytest.raises(ValueError, match="name must be one of"):
        load_pretrained("resnet_shapes")
    with pytest.raises(ValueError, match="CHECKPOINT must be one of"):
        load_model("no/such/folder")


# ----------------------------------------------------------------------------- minivision segment


def test_segment_writes_maps_and_skips_a_bad_file(tmp_path, capsys):
    config = SegmenterConfig()
    scene = config.dataset(1, HELD_OUT)[0]
    good, bad = tmp_path / "scene.png", tmp_path / "notes.png"
    io.imsave(good, scene["image"], check_contrast=False)
    bad.write_text("not a picture")
    out = tmp_path / "out"
    code = main(["segment", "unet_shapes", str(bad), str(good), "--out", str(out)])
    text = capsys.readouterr()
    assert code == 1 and "skipped" in text.err and str(bad) in text.err
    classes = np.load(out / "scene.npy")
    assert classes.shape == scene["semantic"].shape
    assert np.mean(classes == scene["semantic"]) > 0.9
    assert io.imread(out / "scene.png").shape == (*classes.shape, 3)
    assert not list(out.glob(".*.tmp"))


def test_segment_a_16_bit_png(tmp_path, capsys):
    path = tmp_path / "deep.png"
    grey = SegmenterConfig().dataset(1, 3)[0]["image"].mean(axis=2).astype(np.uint16) * 257
    io.imsave(path, grey, check_contrast=False)  # a 16-bit greyscale PNG
    assert main(["segment", "unet_shapes", str(path), "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "deep.npy").is_file()


def test_segment_refuses_an_unknown_checkpoint(tmp_path, capsys):
    assert main(["segment", "nothing_shapes", "x.png", "--out", str(tmp_path)]) == 2
    assert "CHECKPOINT must be one of" in capsys.readouterr().err
