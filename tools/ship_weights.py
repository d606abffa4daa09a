"""Turn finished ``minivision train`` runs into shipped checkpoints in ``minivision/weights``.

    python tools/ship_weights.py RUN_DIR [RUN_DIR ...] --commit HASH

Each run folder (``config.json``, ``checkpoint.npz``, ``history.json``) becomes
``<model>_shapes.npz`` + ``<model>_shapes.json``; the manifest records the command that
reproduces the run, the commit it ran at, the train and val data and the metrics measured here
on the val scenes (``config.val_size`` scenes of seed ``config.val_seed``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from minivision.segmentation.recipes import SegmenterConfig, evaluate
from minivision.weights import export_run, load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--commit", required=True, help="the commit the runs were trained at")
    args = parser.parse_args()
    for run in args.runs:
        config = json.loads((run / "config.json").read_text())
        model_name, seed, steps = config["model"], config["seed"], config["steps"]
        cfg = SegmenterConfig(**{k: v for k, v in config.items() if k not in ("seed", "steps")})
        metrics = evaluate(load_model(run), cfg.dataset(cfg.val_size, cfg.val_seed))
        data = (f"image_size={cfg.image_size}, min_size={cfg.min_size}, "
                f"max_objects={cfg.max_objects}")  # fmt: skip
        path = export_run(
            run, f"{model_name}_shapes",
            command=f"minivision train {model_name} --steps {steps} --seed {seed} "
                    f"--out runs/{model_name} --checkpoint-every 500",
            commit=f"{args.commit} (the defaults of SegmenterConfig at that commit)",
            train_data=f"Shapes(seed={seed}, {data}), scenes 0..{steps * cfg.batch_size - 1}",
            val_data=f"Shapes({cfg.val_size}, seed={cfg.val_seed}, {data})",
            metrics={k: round(v, 4) for k, v in metrics.items()},
        )  # fmt: skip
        print(f"{path.name}: {path.stat().st_size / 1024:.0f} KiB, val mIoU {metrics['miou']:.4f}, "
              f"boundary IoU {metrics['boundary_iou']:.4f}")


if __name__ == "__main__":
    main()
