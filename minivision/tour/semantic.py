"""The tour's lesson-15 stage: every shipped segmenter labels the pixels of the same scenes."""

from __future__ import annotations

from pathlib import Path

from .common import Stage, save_figure

SCENES, SEED, SHOWN = 100, 5_000_011, 5
ORDER = ["fcn32s", "fcn8s", "unet", "deeplab", "segnet"]


def stage_semantic(image, out: Path, default: bool) -> Stage:
    """Lesson 15: semantic maps of the shipped FCN, U-Net, DeepLab and SegNet, and their scores."""
    import matplotlib.pyplot as plt

    from ..segmentation.recipes import SegmenterConfig, evaluate
    from ..viz import show_class_map, show_image
    from ..weights import available, load_pretrained

    names = [m for m in ORDER if f"{m}_shapes" in available()]
    models = [load_pretrained(f"{m}_shapes") for m in names]
    config = SegmenterConfig(**models[0].manifest["config"])
    scenes = config.dataset(SCENES, seed=SEED)
    labels = ["background", *config.classes]
    shown = [scenes[i] for i in range(SHOWN)]
    maps = [model.predict([s["image"] for s in shown]) for model in models]

    rows = 2 + len(models)
    fig, axes = plt.subplots(rows, SHOWN, figsize=(1.7 * SHOWN, 1.75 * rows))
    for k, scene in enumerate(shown):
        show_image(axes[0, k], scene["image"], "image" if k == 0 else None)
        show_class_map(axes[1, k], scene["semantic"], labels if k == 0 else None,
                       "truth" if k == 0 else None)  # fmt: skip
        for r, (name, predicted) in enumerate(zip(names, maps)):
            show_class_map(axes[2 + r, k], predicted[k], None, name if k == 0 else None)
    for ax in axes.ravel():
        ax.axis("off")
    save_figure(fig, out / "15_semantic_maps.png", dpi=90)

    scores = {name: evaluate(model, scenes) for name, model in zip(names, models)}
    table = "; ".join(f"{n}: mIoU {s['miou']:.3f}, boundary IoU {s['boundary_iou']:.3f}"
                      for n, s in scores.items())  # fmt: skip
    text = (
        f"Semantic segmentation gives every pixel a class -- {', '.join(labels)} -- without "
        f"telling two objects of one class apart (instance segmentation, the masks above, "
        f"does). Five fully convolutional networks trained from scratch on Shapes scenes "
        f"(minivision/weights/*_shapes.json say how) label {SCENES} {config.image_size} x "
        f"{config.image_size} scenes they never saw (seed {SEED}): {table}. FCN-32s upsamples "
        f"a map 32 times coarser than the image and blurs the outlines; FCN-8s adds the skips "
        f"from finer layers, U-Net concatenates every scale, DeepLab keeps a stride-8 map with "
        f"atrous convolutions and pools context with ASPP, SegNet unpools with the encoder's "
        f"max locations (lesson 15)."
    )
    return Stage("Every pixel a class: semantic segmentation (lesson 15)", text,
                 ["15_semantic_maps.png"])  # fmt: skip
