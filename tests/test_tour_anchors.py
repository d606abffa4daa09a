"""The tour's lesson-06 stage: anchors and matched positives, on the default and a given image."""

from __future__ import annotations

import matplotlib
import numpy as np

from minivision.tour import STAGES, load_image, stage_anchors

matplotlib.use("Agg")


def test_stage_is_registered_after_the_proposals_and_before_nms():
    names = [s.__name__ for s in STAGES]
    assert "stage_anchors" in names
    assert names.index("stage_proposals") < names.index("stage_anchors") < names.index("stage_nms")


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
