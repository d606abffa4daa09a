"""``minivision train``: a short honest run learns, a resumed run is bit-identical, bad arguments
exit with 2 and say why."""

from __future__ import annotations

import json

import numpy as np
import pytest

from minivision.cli import main

TINY = ["--image-size", "16", "--batch-size", "8", "--lr", "0.01"]


def _params(out):
    with np.load(out / "checkpoint.npz", allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files if k.startswith(("model/", "optimizer/"))}


def test_a_short_run_learns(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "localizer", "--steps", "40", "--seed", "3", "--out", str(out), *TINY]) == 0
    text = capsys.readouterr().out
    assert "final loss" in text and "held-out accuracy" in text and "mean_iou" in text
    losses = json.loads((out / "history.json").read_text())["losses"]
    assert len(losses) == 40
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < 0.7 * first, f"the loss fell only from {first:.3f} to {last:.3f}"
    assert (out / "loss.png").is_file() and (out / "config.json").is_file()


def test_resume_is_bit_identical(tmp_path, capsys):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    common = ["--seed", "1", "--checkpoint-every", "3", *TINY]
    assert main(["train", "localizer", "--steps", "8", "--out", str(straight), *common]) == 0
    assert main(["train", "localizer", "--steps", "5", "--out", str(resumed), *common]) == 0
    assert main(["train", "localizer", "--steps", "8", "--out", str(resumed), *common]) == 0
    assert "resuming" in capsys.readouterr().err
    a, b = _params(straight), _params(resumed)
    assert a.keys() == b.keys() and len(a) > 10
    for key in a:
        assert np.array_equal(a[key], b[key]), f"{key} differs after resuming"
    la = json.loads((straight / "history.json").read_text())["losses"]
    lb = json.loads((resumed / "history.json").read_text())["losses"]
    assert la == lb


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "resnet", "--steps", "3"], "MODEL must be one of ['deeplab', 'deeplab_no_aspp', 'fcn16s'"),
        (["train", "localizer", "--steps", "0"], "--steps must be a positive integer"),
        (["train", "localizer", "--steps", "3", "--lr", "-1"], "--lr must be positive"),
        (["train", "localizer", "--steps", "3", "--image-size", "20"], "multiple of 8"),
    ],
)
def test_bad_arguments_exit_2(tmp_path, capsys, args, message):
    assert main([*args, "--out", str(tmp_path / "x")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x" / "checkpoint.npz").exists()


def test_an_out_that_is_a_file_exits_2(tmp_path, capsys):
    path = tmp_path / "taken"
    path.write_text("not a folder")
    assert main(["train", "localizer", "--steps", "3", "--out", str(path)]) == 2
    assert "--out must be a folder" in capsys.readouterr().err
    assert path.read_text() == "not a folder"


def test_a_non_integer_step_count_is_an_argparse_error(tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["train", "localizer", "--steps", "many", "--out", str(tmp_path)])
    assert exc.value.code == 2


def test_an_interrupted_run_resumes_bit_identically(tmp_path, monkeypatch, capsys):
    """A run killed between checkpoints (here at step 7, the last checkpoint at 6) and started
    again with the same command ends where an uninterrupted run ends."""
    import minivision.detection.localizer as localizer

    straight, broken = tmp_path / "straight", tmp_path / "broken"
    args = ["--steps", "9", "--seed", "2", "--checkpoint-every", "3", *TINY]
    assert main(["train", "localizer", "--out", str(straight), *args]) == 0

    real, calls = localizer.make_batch, []

    def dying(*a, **k):
        calls.append(1)
        if len(calls) == 8:  # the batch of step 7
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(localizer, "make_batch", dying)
    with pytest.raises(KeyboardInterrupt):
        main(["train", "localizer", "--out", str(broken), *args])
    monkeypatch.setattr(localizer, "make_batch", real)
    assert main(["train", "localizer", "--out", str(broken), *args]) == 0
    assert "resuming" in capsys.readouterr().err
    a, b = _params(straight), _params(broken)
    for key in a:
        assert np.array_equal(a[key], b[key]), f"{key} differs after the interruption"
