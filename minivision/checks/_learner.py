"""Importing a learner's file, and saying where in it something went wrong.

Everything here speaks about the learner's own file: an import problem becomes one paragraph
(file, line, the line of code, what to do), and an exception raised anywhere -- in NumPy, in
minivision -- is placed at the deepest line of the learner's file that led to it.
"""

from __future__ import annotations

import importlib.util
import linecache
import os
import sys
import sysconfig
import traceback
from pathlib import Path

_PACKAGE = str(Path(__file__).resolve().parents[1])  # minivision/
_LIBRARY = tuple(
    str(Path(p).resolve())
    for p in {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
) + (_PACKAGE,)


class LearnerImportError(Exception):
    """The learner's file could not be imported; ``str(err)`` is the paragraph to print."""


def _is_library(filename: str) -> bool:
    if filename.startswith("<"):  # <frozen importlib._bootstrap>, <string>
        return True
    path = os.path.realpath(filename)
    return path.startswith(_LIBRARY)


def learner_frame(tb, path: str | None = None):
    """The deepest frame of traceback ``tb`` in the learner's code, and whether it is the last.

    With ``path`` (the exercise file), frames of the files in its folder (the file and the
    helpers it imports from there); without it (functions handed in directly), frames outside
    the standard library, the installed packages and minivision.
    Returns ``(frame summary or None, raised_deeper)``.
    """
    frames = traceback.extract_tb(tb)
    if path is not None:
        folder = os.path.dirname(os.path.realpath(path))
        mine = [f for f in frames if os.path.dirname(os.path.realpath(f.filename)) == folder]
    else:
        mine = [f for f in frames if not _is_library(f.filename)]
    if not mine:
        return None, True
    return mine[-1], mine[-1] is not frames[-1]


def describe_exception(err: BaseException, path: str | None = None) -> str:
    """``raised ValueError: ... at line 12 of nms.py: m = scores.min()`` for the learner's line."""
    text = f"raised {type(err).__name__}: {err}"
    frame, deeper = learner_frame(err.__traceback__, path)
    if frame is None:
        return text
    where = f"line {frame.lineno} of {Path(frame.filename).name}"
    inner = ""
    if deeper:
        last = traceback.extract_tb(err.__traceback__)[-1]
        inner = f" (the error itself came from {_owner(last.filename)}, called from your line)"
    return f"{text}\n  at {where}: {(frame.line or '').strip()}{inner}"


def _owner(filename: str) -> str:
    parts = Path(filename).parts
    for name in ("numpy", "cupy", "scipy", "minivision"):
        if name in parts:
            return f"{name}'s {Path(filename).name}"
    return Path(filename).name


def _import_paragraph(err: BaseException, path: Path) -> str:
    if isinstance(err, SyntaxError) and (err.filename is None or Path(err.filename) == path):
        line = (err.text or linecache.getline(str(path), err.lineno or 0)).rstrip("\n")
        caret = ""
        if err.offset and line:
            indent = len(line) - len(line.lstrip())
            caret = "\n      " + " " * (max(err.offset - 1, indent) - indent) + "^"
        return (
            f"{path} could not be imported: it has a syntax error.\n"
            f"  line {err.lineno}:\n      {line.strip()}{caret}\n"
            f"  {type(err).__name__}: {err.msg}\n"
            f"Fix that line (the mistake can also be just before it, e.g. an unclosed bracket) "
            f"and run the check again."
        )
    frame, _ = learner_frame(err.__traceback__, str(path))
    where = ""
    if frame is not None:
        where = f"  line {frame.lineno}:\n      {(frame.line or '').strip()}\n"
    elif isinstance(err, SyntaxError):  # in a module the file imports
        where = f"  (in {err.filename}, line {err.lineno}: {(err.text or '').strip()})\n"
    advice = (
        "Code at the top level of the file runs when the file is imported: fix that line, or move "
        'code that is not a definition under `if __name__ == "__main__":`.'
    )
    if isinstance(err, ModuleNotFoundError):
        advice = (
            f"No module named {err.name!r} is installed or sits next to your file "
            f"({path.parent}). Check the name; a helper of yours must be in that folder."
        )
    return (
        f"{path} could not be imported: it raised an error before any check ran.\n"
        f"{where}  {type(err).__name__}: {err}\n{advice}"
    )


def import_learner_file(path) -> object:
    """Import the exercise file as a module, its folder importable (for a sibling helper file).

    Raises ``LearnerImportError`` with one paragraph for the learner on any failure.
    """
    path = Path(path).resolve()
    name = f"_minivision_learner_{path.stem.replace('-', '_').replace('.', '_')}"
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as err:  # noqa: BLE001 -- SystemExit at import is a learner bug too
        raise LearnerImportError(_import_paragraph(err, path)) from None
    finally:
        sys.modules.pop(name, None)
    return module


def borrowed(module, names) -> list[str]:
    """Warnings for the functions under test that the file takes from minivision itself.

    Both ``from minivision import box_iou`` (the name itself is minivision's) and a wrapper
    around an imported ``minivision...box_iou`` (under any alias) are caught.
    """
    own = getattr(module, "__name__", "")
    found = {}
    for alias, value in vars(module).items() if hasattr(module, "__dict__") else ():
        origin = getattr(value, "__module__", "") or ""
        real = getattr(value, "__name__", alias)
        if callable(value) and origin.split(".")[0] == "minivision" and origin != own:
            if real in names or alias in names:
                found.setdefault(real if real in names else alias, f"{origin}.{real}")
    return [
        f"WARNING: your file imports minivision's own {name} ({where}): the check then compares "
        f"minivision with itself, which proves nothing. Write {name} yourself."
        for name, where in found.items()
    ]
