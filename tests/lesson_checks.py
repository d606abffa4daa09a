"""Shared pieces of the learner-check tests (tests/checks/): load the independent reference
solution of a lesson, swap in planted mistakes, and the checks every battery must pass."""

from __future__ import annotations

import importlib.util
import types
from pathlib import Path

from minivision.checks import check_file, check_module

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = Path(__file__).parent / "solutions"


def solution_path(lesson: str) -> Path:
    return SOLUTIONS / f"lesson{lesson}_solution.py"


def load_solution(lesson: str):
    """Import tests/solutions/lessonNN_solution.py, a learner's correct file written with NumPy."""
    spec = importlib.util.spec_from_file_location(f"_sol{lesson}", solution_path(lesson))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def replaced(module, **overrides):
    """The module's public functions, with some of them replaced (planted mistakes)."""
    ns = types.SimpleNamespace(
        **{k: getattr(module, k) for k in dir(module) if not k.startswith("_")}
    )
    for name, fn in overrides.items():
        setattr(ns, name, fn)
    return ns


def assert_stubs_fail_cleanly(lesson: str, stubs: Path, n_functions: int):
    report = check_file(lesson, stubs)
    assert not report.ok
    assert {r.status for r in report.results} == {"stub"}
    text = report.text()
    assert "not implemented yet" in text and "Traceback" not in text
    assert f"0 of {n_functions} functions pass" in text


def assert_solution_passes(lesson: str, n_functions: int):
    report = check_file(lesson, solution_path(lesson))
    assert report.ok, report.text()
    assert f"{n_functions} of {n_functions} functions pass" in report.text()


def assert_planted_mistake_named(lesson: str, solution, fn: str, wrong, mistake: str, only=True):
    """With ``wrong`` in place of the solution's ``fn``, the battery fails ``fn``, names
    ``mistake`` (and, with ``only``, no other), and still passes every other function."""
    report = check_module(lesson, replaced(solution, **{fn: wrong}))
    result = report.result(fn)
    assert result.status == "failed", report.text()
    if only:
        assert result.mistakes == [mistake], report.text()
    else:
        assert mistake in result.mistakes, report.text()
    assert f"looks like {mistake}" in report.text()
    others = [r for r in report.results if r.name != fn]
    assert all(r.status == "ok" for r in others), report.text()


def assert_cli_exit_code(lesson: str, path: Path, code: int):
    """``python -m minivision check LESSON PATH`` exits with ``code`` (0: all pass, 1: not) and
    prints its summary line."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "minivision", "check", lesson, str(path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "functions pass" in proc.stdout
