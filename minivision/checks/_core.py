"""The machinery of ``minivision check``: batteries, results, and running a check.

A check imports the learner's file in a worker process (``_runner``), runs every case there
with a time limit, and streams the report as the cases finish: one mark per case (``.`` passed,
``F`` failed, ``E`` raised, ``S`` not implemented, ``T`` did not finish), then the verdict and
what went wrong, the first failure of each function with its inputs and the first differing
element.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ._compare import difference
from ._learner import LearnerImportError, borrowed, import_learner_file
from ._report import head, indented, summary_lines, title_lines
from ._runner import Worker, in_process, worker_context

DEFAULT_TIMEOUT = 5.0  # seconds per case
_LEGEND = "one mark per case: . passed  F wrong  E raised  S not implemented  T did not finish"
_MARKS = {"pass": ".", "fail": "F", "error": "E", "stub": "S", "timeout": "T", "crashed": "X"}


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
    # the dtype the contract states for the result (a tuple of them for a tuple result), e.g.
    # "int64" for NMS's kept indices; None: any dtype of the right kind
    dtype: Any = None

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
    marks: str = ""  # one character per case, in order


@dataclass
class Report:
    battery: Battery
    source: str
    results: list[FunctionResult]
    warnings: list[str] = field(default_factory=list)
    import_error: str | None = None  # the paragraph, when the file could not be imported

    @property
    def ok(self) -> bool:
        return self.import_error is None and all(r.status == "ok" for r in self.results)

    def result(self, name: str) -> FunctionResult:
        return next(r for r in self.results if r.name == name)

    def text(self) -> str:
        lines = title_lines(self.battery, self.source)
        if self.import_error is not None:
            lines += indented(self.import_error, "  ")
        lines += [w for warning in self.warnings for w in indented(warning, "  ")]
        width = max(len(fb.name) for fb in self.battery.functions) + 3
        for r in self.results if self.import_error is None else []:
            lines.append(f"  {r.name} {'.' * (width - len(r.name))} {head(r)}")
            lines += [line for m in r.messages for line in indented(m)]
        return "\n".join(lines + summary_lines(self.results, self.ok))


def lesson_battery(lesson: str) -> Battery:
    key = str(lesson).split("_")[0].zfill(2)
    lessons = available_lessons()
    if key not in lessons:
        raise ValueError(f"lesson must be one of {lessons}, got {lesson!r}")
    return importlib.import_module(f"minivision.checks.lesson{key}").BATTERY


# ----------------------------------------------------------------------------- running


class _Out:
    """Writes the report as it is made, when a stream is given."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str):
        if self.stream is not None:
            self.stream.write(text)
            self.stream.flush()

    def lines(self, lines):
        self.write("".join(line + "\n" for line in lines))


def _check_function(fb, ask, timeout, verbose, out, width) -> FunctionResult:
    res = FunctionResult(fb.name, "ok", total=len(fb.cases))
    out.write(f"  {fb.name} {' ' * (width - len(fb.name))} ")
    shown_detail = timeouts = stubs = 0
    for index, case in enumerate(fb.cases):
        if timeouts >= 2:
            left = len(fb.cases) - index
            res.messages.append(
                f"skipped the other {left} cases of {fb.name} after two did not finish"
            )
            break
        r = ask(fb, index, res.mistakes, verbose)
        if r == "timeout":
            timeouts += 1
            r = {"status": "timeout", "message": (
                f'case "{case.name}" of {fb.name} did not finish in {timeout:g} s: a loop that never '
                f"ends? (e.g. a while loop whose condition the body never changes)")}  # fmt: skip
        elif isinstance(r, tuple):  # the worker died
            r = {"status": "crashed", "message": (
                f'case "{case.name}" of {fb.name} stopped Python itself (exit code {r[1]}): '
                f"does your code call sys.exit or os._exit?")}  # fmt: skip
        out.write(_MARKS[r["status"]])
        res.marks += _MARKS[r["status"]]
        if r["status"] == "pass":
            res.passed += 1
            continue
        stubs += r["status"] == "stub"
        res.messages.append(r["message"])
        if r.get("mistake"):
            res.mistakes.append(r["mistake"])
        if r.get("detail") and (verbose or not shown_detail):
            res.messages.append("\n".join("  " + line for line in r["detail"].split("\n")))
            shown_detail += 1
    if stubs == len(fb.cases):  # nothing written yet: one line, not one per case
        res.status = "stub"
        res.messages = [res.messages[0].split(": ", 1)[1]]
    elif res.passed < res.total:
        res.status = "failed"
    out.lines([f" {head(res)}"] + [line for m in res.messages for line in indented(m)])
    return res


def _run(lesson, target, path, source, timeout, verbose, stream) -> Report:
    battery = lesson_battery(lesson)
    report = Report(battery, source, [])
    out = _Out(stream)
    out.lines(title_lines(battery, source)[:-1] + [f"  {_LEGEND}", ""])
    names = [fb.name for fb in battery.functions]
    worker = None
    if timeout is not None and (path is not None or worker_context().get_start_method() == "fork"):
        worker = Worker(battery.lesson, target, path, timeout)
        msg = worker.start()
    else:  # in this process, without a time limit
        try:
            module = import_learner_file(path) if path is not None else target
            present = [n for n in names if callable(getattr(module, n, None))]
            defined = sorted(k for k in vars(module) if not k.startswith("_")) if hasattr(
                module, "__dict__") else []  # fmt: skip
            msg = ("ready", present, defined, borrowed(module, names))
        except LearnerImportError as err:
            msg = ("import-error", str(err))
    try:
        if msg[0] == "import-error":
            report.import_error = msg[1]
            report.results = [FunctionResult(n, "error", total=0) for n in names]
            out.lines(indented(msg[1], "  ") + summary_lines(report.results, False))
            return report
        _, present, defined, report.warnings = msg
        out.lines([w for warning in report.warnings for w in indented(warning, "  ")])
        if worker is not None:
            ask = lambda fb, i, seen, v: worker.ask(fb.name, i, seen, v)  # noqa: E731
        else:
            ask = lambda fb, i, seen, v: in_process(fb, getattr(module, fb.name), i, seen, v)  # noqa: E731
        width = max(len(n) for n in names) + 3
        for fb in battery.functions:
            if fb.name not in present:
                res = FunctionResult(fb.name, "missing", total=len(fb.cases))
                others = f" (it defines: {', '.join(defined)})" if defined else ""
                res.messages.append(
                    f"your file defines no function named {fb.name}{others}; name it exactly "
                    f"as the lesson does, at the top level of the file"
                )
                out.lines([f"  {fb.name} {' ' * (width - len(fb.name))} {head(res)}"]
                          + indented(res.messages[0]))  # fmt: skip
            else:
                res = _check_function(fb, ask, timeout, verbose, out, width)
            report.results.append(res)
    finally:
        if worker is not None:
            worker.close()
    out.lines(summary_lines(report.results, report.ok))
    return report


def check_module(lesson: str, module, source: str | None = None, *, timeout=DEFAULT_TIMEOUT,
                 verbose: bool = False, stream=None) -> Report:  # fmt: skip
    """Run a lesson's battery against the functions of an imported module (or any object).

    Each case runs in a worker process for at most ``timeout`` seconds (None: in this process,
    no limit); ``stream`` (e.g. ``sys.stdout``) receives the report as the cases finish.
    """
    source = source or getattr(module, "__file__", None) or repr(module)
    return _run(lesson, module, None, source, timeout, verbose, stream)


def check_file(lesson: str, path, *, timeout=DEFAULT_TIMEOUT, verbose: bool = False,
               stream=None) -> Report:  # fmt: skip
    """Import the learner's file (in the worker; its folder importable) and run the battery."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"FILE must be a Python file, {path} does not exist")
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
    lesson_battery(lesson)  # a bad LESSON is a ValueError before anything starts
    return _run(lesson, None, str(path), str(path), timeout, verbose, stream)


def main_check(lesson, path, timeout, verbose) -> int:
    """``minivision check``: stream the report to stdout; 0 if every function passes, else 1."""
    try:
        report = check_file(lesson, path, timeout=timeout, verbose=verbose, stream=sys.stdout)
    except KeyboardInterrupt:
        print("\nminivision check: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `minivision check ... | head`: the reader has gone, stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0 if report.ok else 1
