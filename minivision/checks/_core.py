"""The machinery of ``minivision check``: cases, mistakes, running, and the report."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np


def available_lessons() -> list[str]:
    """Lesson ids with a battery: every ``checks/lessonNN.py`` module."""
    import pkgutil

    here = Path(__file__).parent
    return sorted(
        m.name[6:] for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("lesson")
    )


@dataclass
class Case:
    """One input for one function: ``fn(*args, **kwargs)``, described for the learner."""

    name: str
    args: tuple
    kwargs: dict = field(default_factory=dict)


@dataclass
class Mistake:
    """A known-wrong version of a function, and what to tell the learner whose output matches it."""

    name: str
    advice: str
    fn: Callable[..., Any]


@dataclass
class FunctionBattery:
    name: str
    reference: Callable[..., Any]
    cases: list[Case]
    mistakes: list[Mistake] = field(default_factory=list)
    rtol: float = 1e-6
    atol: float = 1e-9
    # compare(got, expected) -> None if they match, else a one-line description; the default
    # is `difference` (values within rtol/atol), e.g. partitions need a renumbering-blind one
    compare: Callable[[Any, Any], str | None] | None = None

    def differs(self, got, expected) -> str | None:
        if self.compare is not None:
            return self.compare(got, expected)
        return difference(got, expected, self.rtol, self.atol)


@dataclass
class Battery:
    lesson: str
    title: str
    functions: list[FunctionBattery]


@dataclass
class FunctionResult:
    name: str
    status: str  # "ok", "failed", "missing", "stub", "error"
    passed: int = 0
    total: int = 0
    messages: list[str] = field(default_factory=list)
    mistakes: list[str] = field(default_factory=list)  # names of the recognised mistakes


@dataclass
class Report:
    battery: Battery
    source: str
    results: list[FunctionResult]

    @property
    def ok(self) -> bool:
        return all(r.status == "ok" for r in self.results)

    def result(self, name: str) -> FunctionResult:
        return next(r for r in self.results if r.name == name)

    def text(self) -> str:
        lines = [
            f"minivision check {self.battery.lesson}: {self.battery.title}",
            f"  file: {self.source}",
            "",
        ]
        width = max(len(r.name) for r in self.results) + 3
        for r in self.results:
            dots = "." * (width - len(r.name))
            if r.status == "ok":
                head = f"ok ({r.total} cases)"
            elif r.status == "failed":
                head = f"FAILED {r.total - r.passed} of {r.total} cases"
            elif r.status == "stub":
                head = "not implemented yet"
            elif r.status == "missing":
                head = "MISSING from the file"
            else:
                head = "ERROR"
            lines.append(f"  {r.name} {dots} {head}")
            lines.extend(f"      {m}" for m in r.messages)
        n_ok = sum(r.status == "ok" for r in self.results)
        lines += ["", f"{n_ok} of {len(self.results)} functions pass."]
        if self.ok:
            lines.append("Every case matches the reference. Well done.")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- comparing


def _as_array(value):
    try:
        from .._backend import to_numpy

        return np.asarray(to_numpy(value))
    except Exception:
        return np.asarray(value)


def difference(got, expected, rtol, atol) -> str | None:
    """None if ``got`` matches ``expected`` (NaN equal to NaN); otherwise a one-line description.

    A tuple ``expected`` (a backward pass's gradients) is compared item by item, and the
    description names the item that differs first.
    """
    if isinstance(expected, tuple):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return f"returned {type(got).__name__}, expected a tuple of {len(expected)} arrays"
        for i, (g, e) in enumerate(zip(got, expected)):
            diff = difference(g, e, rtol, atol)
            if diff is not None:
                return f"item {i} of the tuple {diff}"
        return None
    try:
        g = _as_array(got).astype(np.float64)
    except (TypeError, ValueError):
        return f"returned {type(got).__name__}, expected an array"
    e = _as_array(expected).astype(np.float64)
    if g.shape != e.shape:
        shown = ""
        if g.ndim == e.ndim == 1 and max(g.size, e.size) <= 20:  # short lists, e.g. kept indices
            values = (np.array2string(_as_array(v), precision=4) for v in (got, expected))
            shown = ": {} instead of {}".format(*values)
        return f"returned shape {g.shape}, expected {e.shape}{shown}"
    with np.errstate(invalid="ignore"):
        # an infinite expected value is matched only exactly (rtol * inf would accept anything)
        close = np.isfinite(e) & (np.abs(g - e) <= atol + rtol * np.abs(e))
        same = (g == e) | (np.isnan(g) & np.isnan(e)) | close
    if np.all(same):
        return None
    bad = np.argwhere(~same)
    idx = tuple(int(i) for i in bad[0])
    at = f" at index {idx}" if idx else ""
    return (
        f"differs{at}: got {g[idx]:.6g}, expected {e[idx]:.6g} "
        f"(|diff| {abs(g[idx] - e[idx]):.3g}); {len(bad)} of {e.size} values differ"
    )


def _copy_args(args):
    return tuple(np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args)


# ----------------------------------------------------------------------------- running


def _check_function(fb: FunctionBattery, fn) -> FunctionResult:
    res = FunctionResult(fb.name, "ok", total=len(fb.cases))
    recognised: list[Mistake] = []
    for case in fb.cases:
        args = _copy_args(case.args)
        try:
            got = fn(*args, **case.kwargs)
        except NotImplementedError as err:
            return FunctionResult(fb.name, "stub", total=len(fb.cases), messages=[f"({err})"])
        except Exception as err:  # a learner's bug: report it, keep grading the rest
            frame = traceback.extract_tb(err.__traceback__)[-1]
            res.messages.append(
                f'case "{case.name}": raised {type(err).__name__}: {err} '
                f"(line {frame.lineno}: {frame.line})"
            )
            continue
        if any(
            isinstance(a, np.ndarray) and not np.array_equal(a, b, equal_nan=True)
            for a, b in zip(args, case.args)
        ):
            res.messages.append(f'case "{case.name}": your function changed its input array')
            continue
        expected = fb.reference(*_copy_args(case.args), **case.kwargs)
        diff = fb.differs(got, expected)
        if diff is None:
            res.passed += 1
            continue
        res.messages.append(f'case "{case.name}": {diff}')
        for m in fb.mistakes:
            if m in recognised:
                continue
            with np.errstate(all="ignore"):
                wrong = m.fn(*_copy_args(case.args), **case.kwargs)
            if fb.differs(got, wrong) is None:
                recognised.append(m)
                res.messages.append(f"  -> looks like {m.name}: {m.advice}")
                break
    res.mistakes = [m.name for m in recognised]
    if res.passed < res.total:
        res.status = "failed"
    return res


def lesson_battery(lesson: str) -> Battery:
    key = str(lesson).split("_")[0].zfill(2)
    lessons = available_lessons()
    if key not in lessons:
        raise ValueError(f"lesson must be one of {lessons}, got {lesson!r}")
    return importlib.import_module(f"minivision.checks.lesson{key}").BATTERY


def check_module(lesson: str, module, source: str | None = None) -> Report:
    """Run a lesson's battery against the functions of an imported module (or any object)."""
    battery = lesson_battery(lesson)
    results = []
    for fb in battery.functions:
        fn = getattr(module, fb.name, None)
        if not callable(fn):
            results.append(FunctionResult(fb.name, "missing", total=len(fb.cases)))
            continue
        results.append(_check_function(fb, fn))
    return Report(battery, source or getattr(module, "__file__", repr(module)), results)


def check_file(lesson: str, path) -> Report:
    """Import the learner's file and run the lesson's battery against it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"FILE must be a Python file, {path} does not exist")
    name = f"_minivision_learner_{path.stem.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return check_module(lesson, module, str(path))
