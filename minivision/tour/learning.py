"""Tour stages of the trained models (lessons 09-10): the shipped classify-and-localise CNN on
held-out Shapes scenes, and how COCO's AP scores it.

These stages do not read the tour's photograph: the shipped network was trained on 32 x 32
synthetic scenes (``minivision/weights/localizer_shapes.json`` says how), so the tour shows it
on scenes of the same kind that it never saw.

Host island (DESIGN.md §2): the tour draws pictures with NumPy and matplotlib.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import Stage, save_figure

__all__ = ["load_shipped_localizer", "stage_training", "stage_evaluation"]

SCENES = 200  # held-out scenes scored by both stages
SEED = 7  # a seed neither the training data (0) nor the validation set used


def load_shipped_localizer():
    """The localizer checkpoint that ships in ``minivision/weights`` and the config it was
    trained with; the model is in eval mode."""
    import json

    from ..detection.localizer import Localizer, LocalizerConfig

    folder = Path(__file__).resolve().parents[1] / "weights"  # minivision/weights
    manifest = json.loads((folder / "localizer_shapes.json").read_text(encoding="utf-8"))
    config = LocalizerConfig(**manifest["config"])
    model = Localizer(config)
    with np.load(folder / "localizer_shapes.npz") as saved:
        model.load_state_dict(dict(saved))
    model.eval()
    return model, config, manifest


def _predictions(model, scenes):
    return model.predict([scenes[i]["image"] for i in range(len(scenes))])


def stage_training(image, out: Path, default: bool) -> Stage:
    """Lesson 09: what the trained network predicts, and the first-layer kernels it learned."""
    import matplotlib.pyplot as plt

    from ..detection.localizer import evaluate
    from ..viz import draw_boxes, show_image

    model, config, manifest = load_shipped_localizer()
    scenes = config.dataset(SCENES, seed=SEED)
    scores = evaluate(model, scenes)
    preds = _predictions(model, scenes)

    shown = 8
    fig, axes = plt.subplots(2, shown, figsize=(1.6 * shown, 3.6))
    for k in range(shown):
        item, pred = scenes[k], preds[k]
        name = model.classes[int(pred["labels"][0]) - 1]
        show_image(axes[0, k], item["image"], f"{name} {float(pred['scores'][0]):.2f}")
        draw_boxes(axes[0, k], np.concatenate([item["boxes"], pred["boxes"]]),
                   colors=["#3cb44b", "#e6194b"], linewidth=1.2)  # fmt: skip
    kernels = np.asarray(model.features[0].weight.data)  # (C1, 3, 3, 3): the first conv layer
    for k in range(shown):
        ax = axes[1, k]
        if k < len(kernels):
            w = kernels[k].transpose(1, 2, 0)
            ax.imshow((w - w.min()) / max(float(np.ptp(w)), 1e-12), interpolation="nearest")
            ax.set_title(f"kernel {k}", fontsize=8)
    for ax in axes.ravel():
        ax.axis("off")
    save_figure(fig, out / "09_localizer.png", dpi=90)

    text = (
        f"A small CNN (three conv-BatchNorm-ReLU-pool blocks of {', '.join(map(str, config.channels))} "
        f"channels, a hidden layer of {config.hidden}, a class head and a box head) trained from "
        f"scratch with minivision.nn and minivision.training: {manifest['command']}. It treats "
        f"localisation as regression: {len(model.classes)} class logits and 4 box numbers, one "
        f"loss alpha * cross-entropy + (1 - alpha) * squared error (alpha = {config.alpha}). On "
        f"{SCENES} {config.image_size} x {config.image_size} scenes it never saw (seed {SEED}): "
        f"class accuracy {scores['accuracy']:.3f}, mean IoU of the predicted box "
        f"{scores['mean_iou']:.3f}. Top row: green the true box, red the prediction, with the "
        f"class and its softmax probability; bottom row: the first layer's 3 x 3 RGB kernels, "
        f"rescaled to show their pattern (lesson 09)."
    )
    return Stage("A network that learned to classify and localise (lesson 09)", text,
                 ["09_localizer.png"])  # fmt: skip


def stage_evaluation(image, out: Path, default: bool) -> Stage:
    """Lesson 10: the same predictions scored as COCO scores a detector."""
    import matplotlib.pyplot as plt

    from ..data import to_coco
    from ..eval import coco_evaluate
    from ..viz import plot_pr_curves

    model, config, _ = load_shipped_localizer()
    scenes = config.dataset(SCENES, seed=SEED)
    gt = to_coco(scenes)
    detections = []
    for image_id, pred in enumerate(_predictions(model, scenes)):
        x1, y1, x2, y2 = (float(v) for v in pred["boxes"][0])
        detections.append({"image_id": image_id, "category_id": int(pred["labels"][0]),
                           "bbox": [x1, y1, x2 - x1, y2 - y1],
                           "score": float(pred["scores"][0])})  # fmt: skip
    result = coco_evaluate(gt, detections, "bbox")
    ap, ap50, ap75 = (float(v) for v in result.stats[:3])

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    plot_pr_curves(ax, result, by="iou")
    ax.set_title("precision-recall at each IoU threshold (COCO, bbox)")
    save_figure(fig, out / "10_pr_curves.png", dpi=90)

    text = (
        f"The same {SCENES} predictions scored with COCO's bbox AP, exactly as pycocotools "
        f"computes it (minivision.eval.coco_evaluate): AP@[.50:.95] {ap:.3f}, AP@.50 {ap50:.3f}, "
        f"AP@.75 {ap75:.3f}. A correct class and a box of IoU 0.8 count as a true positive up "
        f"to the threshold 0.8 and as a miss (and a false positive) above it, so the curves "
        f"fall as the threshold rises: COCO's averaged AP rewards boxes that are tight, not "
        f"only right (lesson 10)."
    )
    return Stage("Scoring the detector: COCO AP (lesson 10)", text, ["10_pr_curves.png"])
