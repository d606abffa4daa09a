"""The training loop: seeded data, a progress bar, a loss curve, atomic checkpoints, exact resume.

Every model of minivision trains through :func:`train`. The model-specific part is two small
functions the caller writes:

* ``batch_fn(step, rng) -> batch`` makes the batch of step ``step`` (0, 1, ...) from ``rng``,
  a generator that :func:`batch_rng` derives from ``(seed, step)`` alone. The data a step sees
  is therefore a function of the seed and the step number, so a resumed run rebuilds exactly
  the batches the interrupted run would have seen, without replaying the earlier ones.
* ``step_fn(batch, rng) -> loss`` runs forward, loss and backward (the model's parameters
  receive their ``.grad``) and returns the loss, a scalar array (or float). ``rng`` is the
  run's persistent generator for randomness outside the model (sampled anchors, augmentation);
  its state is saved in every checkpoint, and so is the state of every generator a module of
  the model holds (``Dropout(rng=...)``), found by walking ``model.named_modules()``.

The loop around them is the usual one: ``optimizer.zero_grad()``, ``step_fn``,
``optimizer.step()``, ``scheduler.step()``. Every ``checkpoint_every`` steps (and at the end)
it writes ``out_dir/checkpoint.npz`` with the model's ``state_dict()`` (parameters and buffers),
the optimizer's and the scheduler's state, the generator's state and the step; then
``loss.png`` (the loss curve) and ``history.json`` (losses and evaluations). Each file is
written to a temporary name and moved into place with ``os.replace``, so an interruption at
any moment leaves the previous checkpoint whole. Calling :func:`train` again with the same
``out_dir`` resumes from the checkpoint: stopping at step 500 and resuming to step 1000 gives
parameters bit-identical to an uninterrupted run of 1000 steps. (Steps after the last
checkpoint are recomputed, identically; a run is never checkpointed mid-step, because a
forward pass may already have changed buffers such as BatchNorm's running statistics.)

A model plugs in like this (``minivision.nn`` layers and losses)::

    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, rng=0), nn.ReLU(), ...)
    optimizer = Adam(model.parameters(), lr=1e-3)

    def batch_fn(step, rng):
        return make_batch(rng, batch_size=32)        # images (N, 3, H, W), labels (N,)

    def step_fn(batch, rng):
        images, labels = batch
        logits = model(images)
        model.backward(cross_entropy_backward(logits, labels))
        return cross_entropy(logits, labels)

    history = train(model, optimizer, step_fn, batch_fn, 1000, seed=0, out_dir="runs/cnn")

The loop reads the loss back to the host only every ``log_every`` steps (one copy of the
stacked losses), so on a GPU the steps in between never wait for the device. This module is a
host island (DESIGN.md §2): NumPy for checkpoint files and the loss log, never inside a step.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from array_api_compat import array_namespace, is_array_api_obj

from ._backend import from_numpy, to_numpy

__all__ = ["train", "batch_rng", "save_checkpoint", "load_checkpoint", "History", "atomic_write"]

CHECKPOINT = "checkpoint.npz"
FORMAT = 1


def batch_rng(seed: int, step: int) -> np.random.Generator:
    """The generator of batch ``step`` in a run seeded ``seed``: a function of the two only.

    ``numpy.random.default_rng([seed, step])`` (a ``SeedSequence`` of both numbers), the same on
    every machine and NumPy version that keeps PCG64's stream.
    """
    return np.random.default_rng([seed, step])


@dataclass
class History:
    """What a run did: one loss per step (from step 1), the evaluations, where it wrote."""

    losses: list[float] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)  # {"step": s, metric: value, ...}
    resumed_from: int = 0
    seconds: float = 0.0
    out_dir: Path | None = None

    @property
    def step(self) -> int:
        return len(self.losses)


# ----------------------------------------------------------------------------- checkpoints


def _state_arrays(model) -> dict:
    """``model.state_dict()`` with parameter objects (if any) replaced by their arrays."""
    out = {}
    for name, value in model.state_dict().items():
        out[name] = value.data if hasattr(value, "grad") and not is_array_api_obj(value) else value
    return out


def _model_generators(model) -> dict:
    """Every ``numpy.random.Generator`` held by a module of ``model``, by ``module.attribute``."""
    modules = model.named_modules() if hasattr(model, "named_modules") else [("", model)]
    found, seen = {}, set()
    for prefix, module in modules:
        for attr, value in vars(module).items():
            if isinstance(value, np.random.Generator) and id(value) not in seen:
                seen.add(id(value))
                found[f"{prefix}.{attr}" if prefix else attr] = value
    return found


def _write_npz(f, arrays: dict) -> None:
    np.savez(f, **arrays)


def atomic_write(path: Path, write) -> None:
    """``write(file)`` into a temporary file beside ``path``, then rename it onto ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_checkpoint(path, model, optimizer, *, step: int, seed: int, scheduler=None, rng=None,
                    history: History | None = None) -> None:
    """Write everything a resume needs into one ``.npz`` file, atomically.

    Keys: ``model/<name>`` (each entry of ``model.state_dict()``, torch's names),
    ``optimizer/<index>/<buffer>`` (the optimizer's per-parameter arrays), ``losses`` and
    ``meta``, a JSON string with the step, the seed, the optimizer's parameter groups and
    counters, the scheduler's ``state_dict()``, and the ``bit_generator.state`` of ``rng`` and
    of every generator the model's modules hold (``Dropout(rng=...)``).
    No pickles: ``numpy.load(path)`` reads it with ``allow_pickle=False``.
    """
    arrays = {f"model/{k}": to_numpy(v) for k, v in _state_arrays(model).items()}
    opt_state = optimizer.state_dict()
    counters = {}
    for i, buffers in opt_state["state"].items():
        for key, value in buffers.items():
            if is_array_api_obj(value):
                arrays[f"optimizer/{i}/{key}"] = to_numpy(value)
            else:
                counters.setdefault(str(i), {})[key] = value
    groups = [{k: v for k, v in g.items()} for g in opt_state["param_groups"]]
    history = history or History()
    arrays["losses"] = np.asarray(history.losses, dtype=np.float64)
    meta = {
        "format": FORMAT,
        "step": int(step),
        "seed": int(seed),
        "optimizer": {"type": type(optimizer).__name__, "param_groups": groups, "counters": counters},
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "rng": None if rng is None else rng.bit_generator.state,
        "model_generators": {k: g.bit_generator.state for k, g in _model_generators(model).items()},
        "evals": history.evals,
    }
    arrays["meta"] = np.asarray(json.dumps(meta))
    atomic_write(Path(path), lambda f: _write_npz(f, arrays))


def load_checkpoint(path, model, optimizer, *, scheduler=None, rng=None) -> tuple[dict, History]:
    """Restore a :func:`save_checkpoint` file into ``model``, ``optimizer``, ``scheduler``, ``rng``.

    Arrays go back onto the backend and device of the model's current arrays (the one host ->
    device copy of a resume). A checkpoint of another model, optimizer or schedule raises a
    ``ValueError`` naming what does not fit, before anything is changed. Returns the metadata
    and the history.
    """
    with np.load(path, allow_pickle=False) as npz:
        files = {k: npz[k] for k in npz.files}
    meta = json.loads(str(files.pop("meta")))
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} has checkpoint format {meta.get('format')}, expected {FORMAT}")
    current = _state_arrays(model)
    saved_names = {k[len("model/"):] for k in files if k.startswith("model/")}
    if saved_names != set(current):
        missing, extra = sorted(set(current) - saved_names), sorted(saved_names - set(current))
        raise ValueError(f"{path} does not fit the model: missing {missing}, unexpected {extra}")
    for name, like in current.items():
        arr = files[f"model/{name}"]
        if tuple(arr.shape) != tuple(like.shape) or str(arr.dtype) != _dtype_name(like):
            raise ValueError(
                f"{path}: model entry {name!r} is {arr.dtype}{tuple(arr.shape)}, "
                f"the model has {_dtype_name(like)}{tuple(like.shape)}"
            )
    opt_meta = meta["optimizer"]
    if opt_meta["type"] != type(optimizer).__name__:
        raise ValueError(f"{path} holds a {opt_meta['type']} state, the optimizer is a "
                         f"{type(optimizer).__name__}")
    if (scheduler is None) != (meta["scheduler"] is None):
        raise ValueError(f"{path} was written {'with' if scheduler is None else 'without'} a "
                         f"scheduler, and {'none' if scheduler is None else 'one'} was given")
    generators = _model_generators(model)
    if set(generators) != set(meta["model_generators"]):
        raise ValueError(f"{path} holds the generators {sorted(meta['model_generators'])}, "
                         f"the model has {sorted(generators)}")

    state: dict[int, dict] = {}
    for key, value in files.items():
        if key.startswith("optimizer/"):
            _, i, buffer = key.split("/", 2)
            state.setdefault(int(i), {})[buffer] = value
    for i, counters in opt_meta["counters"].items():
        state.setdefault(int(i), {}).update(counters)
    optimizer.load_state_dict({"state": state, "param_groups": opt_meta["param_groups"]})
    model.load_state_dict({k: from_numpy(files[f"model/{k}"], like=v) for k, v in current.items()})
    if scheduler is not None:
        scheduler.load_state_dict(meta["scheduler"])
    for name, gen in generators.items():
        gen.bit_generator.state = meta["model_generators"][name]
    if rng is not None and meta["rng"] is not None:
        rng.bit_generator.state = meta["rng"]
    history = History(losses=[float(x) for x in files["losses"]], evals=list(meta["evals"]))
    return meta, history


def _dtype_name(x) -> str:
    return str(to_numpy(array_namespace(x).reshape(x, (-1,))[:0]).dtype)


# ----------------------------------------------------------------------------- progress, plot


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    m, s = divmod(int(seconds + 0.5), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}"


class _Progress:
    """A one-line progress bar on a terminal; one line per update in a log file."""

    def __init__(self, stream, total: int, start: int):
        self.stream, self.total, self.start = stream, total, start
        self.t0 = time.perf_counter()
        self.tty = hasattr(stream, "isatty") and stream.isatty()

    def update(self, step: int, loss: float, lr: float | None, final: bool = False) -> None:
        elapsed = time.perf_counter() - self.t0
        rate = (step - self.start) / elapsed if elapsed > 0 else float("nan")
        left = (self.total - step) / rate if rate > 0 else float("inf")
        width = 24
        done = int(width * step / self.total) if self.total else width
        bar = "#" * done + "-" * (width - done)
        lr_text = "" if lr is None else f" | lr {lr:.3g}"
        line = (f"step {step:>{len(str(self.total))}}/{self.total} [{bar}] loss {loss:.4g}"
                f"{lr_text} | {rate:.1f} steps/s | {_clock(left)} left")
        end = "\n" if final or not self.tty else ""
        self.stream.write(("\r" if self.tty else "") + line + end)
        self.stream.flush()

    def message(self, text: str) -> None:
        self.stream.write(("\n" if self.tty else "") + text + "\n")
        self.stream.flush()


def plot_losses(path, history: History) -> None:
    """The loss curve (raw and a moving average) as a PNG, written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    losses = np.asarray(history.losses)
    steps = np.arange(1, len(losses) + 1)
    fig = Figure(figsize=(6, 3.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(steps, losses, lw=0.8, alpha=0.5, label="loss")
    window = max(1, len(losses) // 20)
    if window > 1:
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1:], smooth, lw=1.8, label=f"mean of {window}")
    if len(losses) and np.all(losses > 0):
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.15, top=0.95)
    atomic_write(Path(path), lambda f: fig.savefig(f, format="png"))


# ----------------------------------------------------------------------------- the loop


def _losses_to_host(pending: list) -> list[float]:
    """One host copy for a run of device scalars (the only sync of the training loop)."""
    out, arrays = [], [x for x in pending if not isinstance(x, numbers.Real)]
    if arrays:
        xp = array_namespace(*arrays)
        host = iter(to_numpy(xp.stack([xp.reshape(x, ()) for x in arrays])).tolist())
    for x in pending:
        out.append(float(x) if isinstance(x, numbers.Real) else float(next(host)))
    return out


def _check_count(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def train(model, optimizer, step_fn, batch_fn, steps: int, *, seed: int, out_dir,
          scheduler=None, rng: np.random.Generator | None = None, checkpoint_every: int = 100,
          log_every: int = 10, eval_fn=None, eval_every: int | None = None, resume: bool = True,
          progress: bool = True, stream=None, plot: bool = True) -> History:
    """Train ``model`` for ``steps`` steps, resuming from ``out_dir/checkpoint.npz`` if present.

    Parameters
    ----------
    model : Module
        Anything with ``state_dict()`` / ``load_state_dict()`` (and, if present, ``train()`` /
        ``eval()``, switched around evaluations).
    optimizer : minivision.nn.optim.Optimizer
        Over the model's parameters.
    step_fn : callable ``(batch, rng) -> loss``
        Forward, loss and backward of one batch; the loop zeroes the gradients before it and
        calls ``optimizer.step()`` after it.
    batch_fn : callable ``(step, rng) -> batch``
        The batch of ``step`` (0-based), drawn from ``rng = batch_rng(seed, step)``.
    steps : int
        Total number of steps of the run (a resumed run continues up to it).
    seed : int
        Seeds the data (:func:`batch_rng`) and, when ``rng`` is None, the step generator.
        Initialise the model from a seed of its own before calling.
    out_dir : path
        Where ``checkpoint.npz``, ``loss.png`` and ``history.json`` go.
    scheduler : LRScheduler, optional
        Stepped after every optimizer step.
    rng : numpy.random.Generator, optional
        The generator ``step_fn`` receives; default ``numpy.random.default_rng(seed)``. Its
        state is checkpointed and restored, so randomness inside the model resumes exactly.
    checkpoint_every, log_every : int
        Steps between checkpoints (one is also written at the end) and between progress lines.
    eval_fn : callable ``model -> dict[str, float]``, optional
        Called every ``eval_every`` steps (default: at each checkpoint) and at the end.
    resume : bool, default True
        Continue from an existing checkpoint (False: start again and overwrite it).
    progress : bool, default True
        Print a progress line (steps, loss, lr, steps/s, time left) to ``stream`` (stderr).
    plot : bool, default True
        Draw ``loss.png`` at the end, and at checkpoints at most once a minute (a plot takes
        a good fraction of a second).

    Returns
    -------
    History
        Every step's loss (from step 1, the resumed part included) and the evaluations.
    """
    steps = _check_count("steps", steps, 0)
    seed = _check_count("seed", seed, 0)
    checkpoint_every = _check_count("checkpoint_every", checkpoint_every, 1)
    log_every = _check_count("log_every", log_every, 1)
    eval_every = checkpoint_every if eval_every is None else _check_count("eval_every", eval_every, 1)
    for name, fn in (("step_fn", step_fn), ("batch_fn", batch_fn)):
        if not callable(fn):
            raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed) if rng is None else rng
    stream = sys.stderr if stream is None else stream
    path = out_dir / CHECKPOINT

    history = History(out_dir=out_dir)
    if resume and path.exists():
        with np.load(path, allow_pickle=False) as npz:  # check before restoring anything
            saved = json.loads(str(npz["meta"]))
        if saved["seed"] != seed:
            raise ValueError(f"{path} was written with seed {saved['seed']}, got seed={seed}")
        if saved["step"] > steps:
            raise ValueError(f"{path} is at step {saved['step']}, beyond steps={steps}")
        meta, history = load_checkpoint(path, model, optimizer, scheduler=scheduler, rng=rng)
        history.out_dir, history.resumed_from = out_dir, meta["step"]
    start = history.step
    bar = _Progress(stream, steps, start) if progress else None
    if bar and start:
        bar.message(f"resuming {path} at step {start}")
    t0, pending = time.perf_counter(), []
    last_plot = t0

    def flush(step):
        values = _losses_to_host(pending)
        pending.clear()
        for i, v in enumerate(values):
            if not math.isfinite(v):
                raise FloatingPointError(f"the loss is {v} at step {step - len(values) + i + 1}")
        history.losses.extend(values)

    def evaluate(step):
        if hasattr(model, "eval"):
            model.eval()
        metrics = {k: float(v) for k, v in eval_fn(model).items()}
        if hasattr(model, "train"):
            model.train()
        history.evals.append({"step": step, **metrics})
        if bar:
            bar.message(f"eval at step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))

    for step in range(start, steps):
        batch = batch_fn(step, batch_rng(seed, step))
        optimizer.zero_grad()
        loss = step_fn(batch, rng)
        if tuple(getattr(loss, "shape", ())) not in ((), (1,)):
            raise ValueError(f"step_fn must return a scalar loss, got shape {tuple(loss.shape)}")
        pending.append(loss)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        done = step + 1
        if done % log_every == 0 or done % checkpoint_every == 0 or done == steps:
            flush(done)
            if bar:
                window = history.losses[-log_every:]
                lr = optimizer.param_groups[0].get("lr") if optimizer.param_groups else None
                bar.update(done, sum(window) / len(window), lr, final=done == steps)
        if eval_fn is not None and (done % eval_every == 0 or done == steps):
            evaluate(done)
        if done % checkpoint_every == 0 or done == steps:
            save_checkpoint(path, model, optimizer, step=done, seed=seed, scheduler=scheduler,
                            rng=rng, history=history)
            draw = plot and (done == steps or time.perf_counter() - last_plot > 60)
            _write_logs(out_dir, history, seed, draw)
            last_plot = time.perf_counter() if draw else last_plot
    if start == steps and history.losses:
        _write_logs(out_dir, history, seed, plot)
    history.seconds = time.perf_counter() - t0
    return history


def _write_logs(out_dir: Path, history: History, seed: int, draw: bool) -> None:
    record = {"seed": seed, "steps": history.step, "losses": history.losses, "evals": history.evals}
    text = json.dumps(record).encode()
    atomic_write(out_dir / "history.json", lambda f: f.write(text))
    if draw and history.losses:
        plot_losses(out_dir / "loss.png", history)
