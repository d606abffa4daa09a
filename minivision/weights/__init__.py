"""Small checkpoints written by ``minivision train`` (DESIGN.md §8), and the one way to load them.

Each shipped model is two files here: ``<model>_shapes.npz`` (the ``state_dict``, torch's names)
and ``<model>_shapes.json``, its manifest: the command that trained it, seed, steps, commit,
the config, the train and val data and the metric measured on the val data. Nothing here
downloads; the files ship in the package.

* :func:`load_pretrained` -- a shipped model by name (``"unet_shapes"``), in eval mode;
* :func:`load_model` -- a shipped name, or the folder of a ``minivision train`` run;
* :func:`export_run` -- turn a finished run folder into a shipped pair of files.

Host island (DESIGN.md §2): it reads and writes ``.npz`` files with NumPy; a loaded model's
arrays are NumPy until ``model.to(xp)`` moves them.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import numpy as np

from .._backend import to_numpy
from ..training import atomic_write

__all__ = ["FOLDER", "available", "load_pretrained", "load_model", "build_model", "export_run"]

FOLDER = Path(__file__).resolve().parent


def _registry() -> dict:
    """Model name (a run's ``config.json["model"]``) -> (config class, build(config) -> model)."""
    from ..detection.localizer import Localizer, LocalizerConfig
    from ..segmentation.recipes import MODELS, SegmenterConfig, build_segmenter

    found = {"localizer": (LocalizerConfig, Localizer)}
    for name in MODELS:
        found[name] = (SegmenterConfig, build_segmenter)
    return found


def available() -> list[str]:
    """The names :func:`load_pretrained` accepts (one per ``*.json`` manifest here)."""
    return sorted(p.stem for p in FOLDER.glob("*_shapes.json"))


def build_model(model: str, config: dict):
    """An untrained network ``model`` (a ``minivision train`` MODEL name) with ``config``.

    Keys of ``config`` that are not fields of the model's config class (a run's ``seed``,
    ``steps``) are ignored.
    """
    registry = _registry()
    if model not in registry:
        raise ValueError(f"model must be one of {sorted(registry)}, got {model!r}")
    config_cls, build = registry[model]
    names = {f.name for f in fields(config_cls)}
    return build(config_cls(**{k: v for k, v in config.items() if k in names}))


def _load_state(model, path: Path):
    with np.load(path, allow_pickle=False) as saved:
        state = {k[len("model/"):] if k.startswith("model/") else k: saved[k] for k in saved.files
                 if k not in ("meta", "losses") and not k.startswith("optimizer/")}  # fmt: skip
    current = model.state_dict()
    if set(state) != set(current):
        missing, extra = sorted(set(current) - set(state)), sorted(set(state) - set(current))
        raise ValueError(f"{path} does not fit the model: missing {missing}, unexpected {extra}")
    model.load_state_dict({k: np.asarray(v, dtype=np.float32) if v.dtype == np.float16 else v
                           for k, v in state.items()})  # fmt: skip
    return model.eval()


def load_pretrained(name: str):
    """The shipped model ``name`` (see :func:`available`), in eval mode, with ``.manifest``."""
    if not isinstance(name, str) or name not in available():
        raise ValueError(f"name must be one of {available()}, got {name!r}")
    manifest = json.loads((FOLDER / f"{name}.json").read_text(encoding="utf-8"))
    model = _load_state(build_model(manifest["model"], manifest["config"]), FOLDER / f"{name}.npz")
    model.manifest = manifest
    return model


def load_model(source):
    """A shipped name (``"unet_shapes"``) or a ``minivision train`` run folder, in eval mode.

    A run folder holds ``config.json`` (the MODEL name and config) and ``checkpoint.npz``.
    """
    if isinstance(source, str) and source in available():
        return load_pretrained(source)
    folder = Path(source)
    if not (folder / "config.json").is_file() or not (folder / "checkpoint.npz").is_file():
        raise ValueError(f"CHECKPOINT must be one of {available()} or a `minivision train` "
                         f"folder with config.json and checkpoint.npz, got {str(source)!r}")  # fmt: skip
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    model = _load_state(build_model(config["model"], config), folder / "checkpoint.npz")
    model.manifest = {"model": config["model"], "config": config}
    return model


def export_run(run_dir, name: str, *, command: str, commit: str, train_data: str, val_data: str,
               metrics: dict, folder=None) -> Path:
    """Write ``<name>.npz`` (float32 state) and ``<name>.json`` from a finished run folder."""
    run_dir = Path(run_dir)
    folder = FOLDER if folder is None else Path(folder)
    config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    history = json.loads((run_dir / "history.json").read_text(encoding="utf-8"))
    model = _load_state(build_model(config["model"], config), run_dir / "checkpoint.npz")
    state = {k: to_numpy(v) for k, v in model.state_dict().items()}
    atomic_write(folder / f"{name}.npz", lambda f: np.savez(f, **state))
    manifest = {
        "name": name,
        "model": config["model"],
        "command": command,
        "commit": commit,
        "seed": config["seed"],
        "steps": history["steps"],
        "config": {k: v for k, v in config.items() if k not in ("seed", "steps")},
        "train_data": train_data,
        "val_data": val_data,
        "metrics": metrics,
        "final_loss": round(float(np.mean(history["losses"][-50:])), 5),
    }
    text = (json.dumps(manifest, indent=1) + "\n").encode()
    atomic_write(folder / f"{name}.json", lambda f: f.write(text))
    return folder / f"{name}.npz"
