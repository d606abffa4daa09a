"""The tour's RoI stage (lessons 05 and 07): figures written and linked, any image size."""

from __future__ import annotations

import numpy as np

from minivision.cli import main


def test_tour_has_the_roi_crops_stage(tmp_path):
    assert main(["tour", "--out", str(tmp_path)]) == 0
    index = (tmp_path / "index.html").read_text()
    assert "RoI crops (lessons 05 and 07)" in index
    for name in ["05_roi_grid.png", "05_roi_crops.png"]:
        assert (tmp_path / name).stat().st_size > 10_000
        assert name in index


def test_roi_stage_on_small_images(tmp_path):
    from skimage import io

    for shape in [(120, 200), (20, 30)]:
        path = tmp_path / f"img{shape[0]}.png"
        io.imsave(path, (np.random.default_rng(0).random(shape) * 255).astype(np.uint8))
        assert main(["tour", str(path), "--out", str(tmp_path / f"out{shape[0]}")]) == 0
        assert (tmp_path / f"out{shape[0]}" / "05_roi_crops.png").exists()
