"""The tour (``minivision tour``): its stages in pipeline order, each on the default and other images."""

from __future__ import annotations

import matplotlib
import numpy as np

from minivision.cli import main
from minivision.tour import STAGES, load_image, stage_anchors

matplotlib.use("Agg")



def test_stages_run_in_pipeline_order():
    """Segments -> proposals -> boxes and IoU -> features -> anchors -> NMS -> RoI crops -> masks."""
    names = [s.__name__ for s in STAGES]
    assert names == [
        "stage_segmentation",
        "stage_proposals",
        "stage_boxes",
        "stage_features",
        "stage_anchors",
        "stage_nms",
        "stage_roi_crops",
        "stage_masks",
    ]


def test_anchor_stage_on_the_default_image(tmp_path):
    image, _ = load_image()
    stage = stage_anchors(image, tmp_path, default=True)
    assert (tmp_path / "06_anchors.png").stat().st_size > 10_000
    assert stage.figures == ["06_anchors.png"]
    # every object gets positives (the low-quality rule), and the text says how many
    assert "65472 anchors" in stage.text
    counts = [
        int(part.split()[-1])
        for part in stage.text.split("Positives per object: ")[1].split(";")[0].split(", ")
    ]
    assert len(counts) == 6 and min(counts) >= 1


def test_anchor_stage_on_a_non_square_image(tmp_path):
    image = (np.random.default_rng(0).random((150, 230, 3)) * 255).astype(np.uint8)
    stage = stage_anchors(image, tmp_path, default=False)
    assert "192 x 256 padded image" in stage.text
    assert (tmp_path / "06_anchors.png").exists()



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


def test_tour_on_a_file_that_is_not_an_image(tmp_path, capsys):
    """Not a picture: a clear error naming IMAGE and the file, exit code 2, no traceback."""
    path = tmp_path / "notes.png"
    path.write_text("this is text, not a PNG")
    assert main(["tour", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "IMAGE must be a picture" in err and "notes.png" in err
    assert "Traceback" not in err
