"""``minivision proposals IMAGES_DIR --out FILE``: selective search over a folder of images.

R-CNN computes its region proposals once, before training, and reads them from disk. This is
that step, a host island of the command line (NumPy arrays, files and processes, no device):

* every core: the images are shared among ``--workers`` processes (default: all CPUs);
* a progress bar on stderr (images done, seconds per image, time left);
* resumable: ``FILE`` (a NumPy ``.npz``, one ``(N, 4)`` float32 xyxy array per image, keyed by
  file name) is rewritten every few seconds with everything finished so far; a new run reads
  it and computes only the images that are missing;
* crash-safe: each write goes to a temporary file in the same folder, is flushed to disk, and
  replaces ``FILE`` with ``os.replace`` -- atomic, so ``FILE`` is always either the previous
  complete version or the new complete version, never half written.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from ._workers import cpu_count

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}

__all__ = ["run_proposals", "load_proposals", "save_atomic"]


def load_proposals(path) -> dict[str, np.ndarray]:
    """Read a proposals file: {image file name: (N, 4) float32 xyxy boxes}."""
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def save_atomic(path, results: dict[str, np.ndarray]) -> None:
    """Write ``results`` to ``path`` (.npz) so that a crash never leaves a corrupt file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **results)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _work(path: str, mode: str):
    """One image, in a worker process: (file name, float32 boxes)."""
    from skimage import io

    from .selective_search import selective_search

    image = io.imread(path)
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]  # PNG alpha: proposals are about the colours
    boxes = selective_search(image, mode, workers=1)  # the processes already use every core
    return Path(path).name, np.asarray(boxes, dtype=np.float32)


def _bar(done, total, started, t0, stream):
    width = 30
    filled = int(width * done / total) if total else width
    rate = (time.perf_counter() - t0) / max(done - started, 1)
    left = rate * (total - done)
    stream.write(
        f"\rproposals [{'#' * filled}{'.' * (width - filled)}] {done}/{total} images, "
        f"{rate:.1f} s/img, {left / 60:.1f} min left "
    )
    stream.flush()


def run_proposals(
    images_dir, out, mode="fast", workers=None, checkpoint_s=10.0, stream=sys.stderr
) -> dict[str, np.ndarray]:
    """Selective search on every image of ``images_dir``; results in ``out`` (see module doc).

    Returns the complete {file name: boxes} dictionary. Images already in ``out`` are skipped.
    """
    from .selective_search import MODES

    if mode not in MODES:
        raise ValueError(f"--mode must be one of {tuple(MODES)}, got {mode!r}")
    images_dir, out = Path(images_dir), Path(out)
    if not images_dir.is_dir():
        raise FileNotFoundError(f"IMAGES_DIR {images_dir} is not a folder")
    paths = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(f"IMAGES_DIR {images_dir} holds no images ({sorted(IMAGE_SUFFIXES)})")
    if workers is None:
        workers = cpu_count()
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    results: dict[str, np.ndarray] = {}
    if out.exists():
        try:
            results = load_proposals(out)
        except Exception as err:  # not ours, or written by something else
            raise ValueError(f"--out {out} exists but is not a proposals file ({err})") from None
    todo = [p for p in paths if p.name not in results]
    total, started = len(paths), len(paths) - len(todo)
    t0 = time.perf_counter()
    _bar(started, total, started, t0, stream)
    if not todo:
        stream.write("\n")
        return results
    last_save = time.perf_counter()
    dirty = False
    try:
        with ProcessPoolExecutor(max_workers=min(workers, len(todo))) as pool:
            futures = [pool.submit(_work, str(p), mode) for p in todo]
            try:
                for fut in as_completed(futures):
                    name, boxes = fut.result()
                    results[name] = boxes
                    dirty = True
                    _bar(len(results), total, started, t0, stream)
                    if time.perf_counter() - last_save >= checkpoint_s:
                        save_atomic(out, results)
                        last_save, dirty = time.perf_counter(), False
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    finally:
        if dirty:
            save_atomic(out, results)  # keep what finished, even on Ctrl-C or an error
        stream.write("\n")
    return results
