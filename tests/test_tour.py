"""The tour (``minivision tour``): its stages in pipeline order, each on the default and other images."""

from __future__ import annotations

import matplotlib
import numpy as np

from minivision.cli import main
from minivision.tour import STAGES, load_image, stage_anchors

matplotlib.use("Agg")



def test_stages_run_in_pipeline_order():
    """Segments -> proposals -> boxes and IoU -> features -> anchors -> NMS -> RoI crops -> masks
    -> a trained network -> its COCO score -> semantic maps."""
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
        "stage_training",
        "stage_evaluation",
        "stage_semantic",
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


def _shipped_predictions():
    from minivision.tour.learning import SCENES, SEED, load_shipped_localizer

    model, config, _ = load_shipped_localizer()
    scenes = config.dataset(SCENES, seed=SEED)
    return scenes, model.predict([scenes[i]["image"] for i in range(len(scenes))])


def test_training_stage_reports_the_shipped_model_on_unseen_scenes(tmp_path):
    from minivision.tour import stage_training

    image, _ = load_image()
    stage = stage_training(image, tmp_path, default=True)
    assert (tmp_path / "09_localizer.png").stat().st_size > 10_000
    # the numbers in the text, recomputed here from the predictions with plain NumPy: the lesson
    # 09 targets (accuracy >= 0.95, mean IoU >= 0.8) on scenes of a seed training never used
    scenes, preds = _shipped_predictions()
    correct, ious = [], []
    for i, pred in enumerate(preds):
        truth = scenes[i]["boxes"][0].astype(np.float64)
        box = pred["boxes"][0].astype(np.float64)
        inter = np.prod(np.clip(np.minimum(box[2:], truth[2:]) - np.maximum(box[:2], truth[:2]), 0, None))
        union = np.prod(box[2:] - box[:2]) + np.prod(truth[2:] - truth[:2]) - inter
        ious.append(inter / union)
        correct.append(int(pred["labels"][0]) == int(scenes[i]["labels"][0]))
    accuracy, mean_iou = np.mean(correct), np.mean(ious)
    assert accuracy >= 0.95 and mean_iou >= 0.8, (accuracy, mean_iou)
    assert f"class accuracy {accuracy:.3f}" in stage.text
    assert f"mean IoU of the predicted box {mean_iou:.3f}" in stage.text


def test_evaluation_stage_equals_pycocotools(tmp_path):
    from coco_reference import pycocotools_eval

    from minivision.data import to_coco
    from minivision.tour import stage_evaluation

    image, _ = load_image()
    stage = stage_evaluation(image, tmp_path, default=True)
    assert (tmp_path / "10_pr_curves.png").stat().st_size > 10_000
    scenes, preds = _shipped_predictions()
    dt = []
    for i, p in enumerate(preds):
        x1, y1, x2, y2 = (float(v) for v in p["boxes"][0])
        dt.append({"image_id": i, "category_id": int(p["labels"][0]),
                   "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(p["scores"][0])})  # fmt: skip
    E, _ = pycocotools_eval(to_coco(scenes), dt, "bbox")
    ap, ap50, ap75 = E.stats[:3]
    assert f"AP@[.50:.95] {ap:.3f}, AP@.50 {ap50:.3f}, AP@.75 {ap75:.3f}" in stage.text
    assert ap50 > ap75 > ap  # the curves fall as the IoU threshold rises
