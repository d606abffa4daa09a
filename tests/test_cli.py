"""The command line: tour writes its report, bench prints its table, bad input exits cleanly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minivision.bench import run
from minivision.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_tour_on_the_default_image(tmp_path, capsys):
    assert main(["tour", "--out", str(tmp_path)]) == 0
    assert "wrote" in capsys.readouterr().out
    index = (tmp_path / "index.html").read_text()
    assert "skimage.data.astronaut()" in index
    for name in ["00_boxes.png", "00_iou.png"]:
        assert (tmp_path / name).stat().st_size > 10_000
        assert name in index


def test_tour_on_a_given_image(tmp_path):
    from skimage import io

    image = (np.random.default_rng(0).random((120, 200)) * 255).astype(np.uint8)
    path = tmp_path / "gray.png"
    io.imsave(path, image)
    assert main(["tour", str(path), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "00_boxes.png").exists()


def test_tour_missing_image_is_a_clear_error(tmp_path, capsys):
    assert main(["tour", str(tmp_path / "nope.jpg"), "--out", str(tmp_path)]) == 2
    assert "IMAGE must be an image file" in capsys.readouterr().err


def test_bench_prints_a_row_per_op():
    lines = []
    rows = run(["box_iou"], repeats=1, out=lines.append)
    assert [r.op for r in rows] == ["box_iou"]
    assert rows[0].minivision_ms > 0 and rows[0].reference_ms > 0
    assert any(line.startswith("box_iou") for line in lines)


def test_bench_unknown_op(capsys):
    assert main(["bench", "no_such_op"]) == 2
    assert "OP must be among" in capsys.readouterr().err


def test_python_dash_m_entry_point():
    proc = subprocess.run(
        [sys.executable, "-m", "minivision", "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "tour" in proc.stdout and "check" in proc.stdout


@pytest.mark.parametrize("nb", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(nb):
    cells = json.loads(nb.read_text())["cells"]
    dirty = [
        i
        for i, c in enumerate(cells)
        if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))
    ]
    assert not dirty, f"{nb.name}: cells {dirty} have outputs; clear them before committing"


def test_bench_data_is_passed_as_an_argument(tmp_path, capsys, monkeypatch):
    """--data reaches the quality entry as an argument (the process environment is untouched)."""
    monkeypatch.delenv("MINIVISION_COCO128", raising=False)
    absent = tmp_path / "no-such-dataset"
    assert main(["bench", "ss_quality", "--data", str(absent), "--repeats", "1"]) == 0
    assert f"{absent} is absent" in capsys.readouterr().out
    import os

    assert "MINIVISION_COCO128" not in os.environ
