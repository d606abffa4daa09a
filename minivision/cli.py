"""The command line: ``minivision tour | check | bench | proposals | eval | train | segment``."""

from __future__ import annotations

import argparse
import json
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="minivision",
        description="The classical R-CNN family from scratch: lessons, checks and a tour.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser(
        "tour", help="run the pipeline on a photograph and write an illustrated report"
    )
    t.add_argument(
        "image",
        nargs="?",
        default=None,
        metavar="IMAGE",
        help="an image file (default: scikit-image's astronaut)",
    )
    t.add_argument(
        "--out",
        default="minivision-tour",
        metavar="DIR",
        help="folder for the PNG figures and index.html (default: %(default)s)",
    )

    c = sub.add_parser("check", help="grade your exercise file for a lesson")
    c.add_argument("lesson", metavar="LESSON", help="lesson number, e.g. 00")
    c.add_argument("file", metavar="FILE", help="your exercise file, e.g. lessons/00_boxes.py")
    c.add_argument(
        "--timeout", type=float, default=5.0, help="seconds per case (default: %(default)s)"
    )
    c.add_argument(
        "-v", "--verbose", action="store_true", help="show every failing case's inputs and output"
    )

    b = sub.add_parser("bench", help="time minivision against its reference libraries")
    b.add_argument("ops", nargs="*", metavar="OP", help="benchmarks to run (default: all)")
    b.add_argument(
        "--repeats", type=int, default=15, help="timed calls per entry (default: %(default)s)"
    )
    b.add_argument(
        "--data",
        default=None,
        metavar="DIR",
        help="YOLO-format dataset for the ss_quality entry (default: ../shared/data/coco128-train)",
    )
    pr = sub.add_parser(
        "proposals", help="selective search region proposals for a folder of images"
    )
    pr.add_argument("images", metavar="IMAGES_DIR", help="folder of images (jpg, png, ...)")
    pr.add_argument("--out", required=True, metavar="FILE", help="output .npz (resumed if present)")
    pr.add_argument(
        "--mode", default="fast", choices=("single", "fast", "quality"), help="default: fast"
    )
    pr.add_argument("--workers", type=int, default=None, help="processes (default: every CPU core)")
    ev = sub.add_parser(
        "eval", help="COCO AP/AR of detection results (pycocotools' 12-line summary)"
    )
    ev.add_argument("gt", metavar="GT.json", help="COCO ground truth (images, annotations, categories)")
    ev.add_argument("dt", metavar="DT.json", help="COCO results (a list of detections)")
    ev.add_argument(
        "--iou-type", choices=["bbox", "segm"], default="bbox", help="boxes or masks (default: %(default)s)"
    )
    tr = sub.add_parser(
        "train", help="train a model on synthetic Shapes scenes (resumes a run in the same --out)"
    )
    tr.add_argument("model", metavar="MODEL", help="the model to train: localizer, fcn32s, "
                    "fcn16s, fcn8s, unet, deeplab, deeplab_no_aspp or segnet")
    tr.add_argument("--steps", type=int, required=True, help="total optimisation steps")
    tr.add_argument("--seed", type=int, default=0, help="data and initialisation seed (default: 0)")
    tr.add_argument("--out", required=True, metavar="DIR", help="checkpoint, loss.png, history.json")
    tr.add_argument("--batch-size", type=int, default=None, help="default: the model's config")
    tr.add_argument("--lr", type=float, default=None, help="learning rate (default: the config's)")
    tr.add_argument("--image-size", type=int, default=None, help="scene side in pixels")
    tr.add_argument("--checkpoint-every", type=int, default=100, help="default: %(default)s")
    sg = sub.add_parser("segment", help="label every pixel of images with a trained segmenter")
    sg.add_argument("checkpoint", metavar="CHECKPOINT",
                    help="a shipped model (unet_shapes, ...) or a `minivision train` folder")
    sg.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    sg.add_argument("--out", default="minivision-segment", metavar="DIR",
                    help="folder for <image>.png colour maps and <image>.npy class maps "
                         "(default: %(default)s)")
    return p


def _trainers() -> dict:
    """MODEL name -> (config class, recipe(config, seed) -> dict for ``training.train``).

    Each detector or segmenter adds its entry here.
    """
    from functools import partial

    from .detection.localizer import LocalizerConfig
    from .detection.localizer import training_recipe as localizer_recipe
    from .segmentation.recipes import MODELS, SegmenterConfig
    from .segmentation.recipes import training_recipe as segmenter_recipe

    trainers = {"localizer": (LocalizerConfig, localizer_recipe)}
    for name in MODELS:
        trainers[name] = (partial(SegmenterConfig, model=name), segmenter_recipe)
    return trainers


def _train(args) -> int:
    from pathlib import Path

    from .training import train

    trainers = _trainers()
    if args.model not in trainers:
        raise ValueError(f"MODEL must be one of {sorted(trainers)}, got {args.model!r}")
    if args.steps < 1:
        raise ValueError(f"--steps must be a positive integer, got {args.steps}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out must be a folder, {out} is a file")
    config_cls, recipe = trainers[args.model]
    overrides = {"batch_size": args.batch_size, "lr": args.lr, "image_size": args.image_size}
    for name, value in overrides.items():
        if value is not None and not value > 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {value}")
    config = config_cls(**{k: v for k, v in overrides.items() if v is not None})
    parts = recipe(config, args.seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(
        {"model": args.model, "seed": args.seed, "steps": args.steps, **config.to_dict()}, indent=1
    ))
    history = train(parts["model"], parts["optimizer"], parts["step_fn"], parts["batch_fn"],
                    args.steps, seed=args.seed, out_dir=out, eval_fn=parts["eval_fn"],
                    eval_every=args.steps, checkpoint_every=args.checkpoint_every)  # fmt: skip
    final = history.evals[-1] if history.evals else parts["eval_fn"](parts["model"].eval())
    scores = ", ".join(f"{k} {v:.4f}" for k, v in final.items() if k != "step")
    print(f"minivision train {args.model}: step {history.step}, final loss "
          f"{history.losses[-1]:.4f}; held-out {scores}; wrote {out}/")  # fmt: skip
    return 0


def _segment(args) -> int:
    """Run a segmenter on each image; a file that cannot be read is reported and skipped."""
    from pathlib import Path

    import numpy as np
    from PIL import Image

    from .tour.common import load_image
    from .training import atomic_write
    from .viz import class_map_colors
    from .weights import load_model

    model = load_model(args.checkpoint)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = ["background", *model.classes]
    failed = 0
    for path in args.images:
        try:
            image, _ = load_image(path)
        except (FileNotFoundError, ValueError) as err:
            print(f"minivision segment: skipped {path}: {err}", file=sys.stderr)
            failed += 1
            continue
        (classes,) = model.predict([image])  # (H, W) int64
        stem = out / Path(path).stem
        atomic_write(stem.with_suffix(".npy"), lambda f, c=classes: np.save(f, c))
        atomic_write(stem.with_suffix(".png"),
                     lambda f, c=classes: Image.fromarray(class_map_colors(c)).save(f, format="PNG"))
        counts = np.bincount(classes.ravel(), minlength=len(names))
        share = ", ".join(f"{n} {c / classes.size:.0%}" for n, c in zip(names, counts) if c)
        print(f"{path}: {share} -> {stem}.png")
    return 1 if failed else 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "tour":
            from .tour import run_tour

            index = run_tour(args.image, args.out)
            print(f"minivision tour: wrote {index.parent}/ (open {index})")
            return 0
        if args.command == "check":
            from .checks._core import main_check

            return main_check(args.lesson, args.file, args.timeout, args.verbose)
        if args.command == "bench":
            from .bench import run

            run(args.ops, repeats=args.repeats, data=args.data)
            return 0
        if args.command == "proposals":
            from .proposals.runner import run_proposals

            results = run_proposals(args.images, args.out, args.mode, args.workers)
            n = sum(len(b) for b in results.values())
            print(f"minivision proposals: {len(results)} images, {n} boxes in {args.out}")
            return 0
        if args.command == "eval":
            from .eval import coco_evaluate

            print(coco_evaluate(args.gt, args.dt, args.iou_type).summary())
            return 0
        if args.command == "train":
            return _train(args)
        if args.command == "segment":
            return _segment(args)
    except (FileNotFoundError, ValueError) as err:
        print(f"minivision {args.command}: {err}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
