"""``minivision proposals``: results, resuming, and a proposals file that is never corrupt."""

from __future__ import annotations

import io as _io

import numpy as np
import pytest
from skimage import data, io

import minivision.proposals.runner as proposals
from minivision.cli import main
from minivision.proposals.runner import load_proposals, run_proposals, save_atomic
from minivision.proposals.selective_search import selective_search


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "images"
    d.mkdir()
    a = data.astronaut()
    io.imsave(d / "a.png", a[40:80, 180:230], check_contrast=False)
    io.imsave(d / "b.png", a[200:236, 100:150], check_contrast=False)
    io.imsave(d / "c.png", data.camera()[100:130, 200:240], check_contrast=False)  # grey
    (d / "notes.txt").write_text("not an image")
    return d


def _expected(path):
    return np.asarray(selective_search(io.imread(path), "single"), dtype=np.float32)


def test_cli_writes_every_image(folder, tmp_path, capsys):
    out = tmp_path / "boxes.npz"
    argv = ["proposals", str(folder), "--out", str(out), "--mode", "single", "--workers", "2"]
    assert main(argv) == 0
    assert "3 images" in capsys.readouterr().out
    got = load_proposals(out)
    assert sorted(got) == ["a.png", "b.png", "c.png"]
    for name, boxes in got.items():
        np.testing.assert_array_equal(boxes, _expected(folder / name))


def test_resume_skips_finished_images(folder, tmp_path):
    out = tmp_path / "boxes.npz"
    sentinel = np.array([[1, 2, 3, 4]], dtype=np.float32)
    save_atomic(out, {"a.png": sentinel})
    stream = _io.StringIO()
    got = run_proposals(folder, out, "single", workers=1, stream=stream)
    assert "1/3" in stream.getvalue()  # the bar starts with a.png already done
    np.testing.assert_array_equal(got["a.png"], sentinel)  # not recomputed
    on_disk = load_proposals(out)
    np.testing.assert_array_equal(on_disk["a.png"], sentinel)
    np.testing.assert_array_equal(on_disk["b.png"], _expected(folder / "b.png"))


def test_failure_keeps_finished_work(folder, tmp_path):
    (folder / "bad.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "boxes.npz"
    with pytest.raises((OSError, ValueError)):
        run_proposals(folder, out, "single", workers=1, stream=_io.StringIO())
    saved = load_proposals(out)  # a complete, readable file with what finished
    assert "bad.png" not in saved and saved
    for name, boxes in saved.items():
        np.testing.assert_array_equal(boxes, _expected(folder / name))
    (folder / "bad.png").unlink()
    got = run_proposals(folder, out, "single", workers=1, stream=_io.StringIO())
    assert sorted(got) == ["a.png", "b.png", "c.png"]


def test_crash_while_writing_leaves_old_file(tmp_path, monkeypatch):
    out = tmp_path / "boxes.npz"
    save_atomic(out, {"a.png": np.zeros((1, 4), np.float32)})
    before = out.read_bytes()

    def crash(f, **arrays):
        f.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(proposals.np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        save_atomic(out, {"a.png": np.ones((2, 4), np.float32)})
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["boxes.npz"]  # no temporary left behind


def test_bad_arguments(folder, tmp_path, capsys):
    out = tmp_path / "x.npz"
    assert main(["proposals", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "IMAGES_DIR" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["proposals", str(empty), "--out", str(out)]) == 2
    assert main(["proposals", str(folder), "--out", str(out), "--workers", "0"]) == 2
    junk = tmp_path / "junk.npz"
    junk.write_text("junk")
    assert main(["proposals", str(folder), "--out", str(junk)]) == 2
    assert "not a proposals file" in capsys.readouterr().err
    assert junk.read_text() == "junk"  # never overwritten
