"""Running a battery's cases against the learner's functions, each in a worker process.

Every case is a separate request to a worker process that holds the learner's functions; the
parent waits at most ``timeout`` seconds for the answer. A case that does not finish (an NMS
loop that never removes the kept box runs forever) is reported, the worker is killed and a fresh
one takes the next case: an infinite loop costs the learner ``timeout`` seconds, not the check.

On POSIX the worker is a ``fork`` of the checking process, so it starts in milliseconds and can
run functions handed in directly (``check_module``); elsewhere a file is imported afresh in a
spawned worker, and functions handed in directly run in-process, without a time limit.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
import warnings
from pathlib import Path

import numpy as np

from ._compare import contract_problem, copy_args
from ._learner import LearnerImportError, borrowed, describe_exception, import_learner_file
from ._report import case_detail, inputs_text


def run_case(fb, fn, case, recognised=(), path=None, verbose=False) -> dict:
    """One case: the learner's call, then the contract, the values and the known mistakes.

    Returns a small picklable dict: ``status`` ("pass", "fail", "error", "stub"), ``message``
    (for the report), ``mistake`` (a recognised mistake's name) and ``detail`` (input, expected
    and actual, for ``--verbose`` and the first failure).
    """
    args = copy_args(case.args)
    try:
        with warnings.catch_warnings(record=True) as caught:  # told with a failure, not printed
            warnings.simplefilter("always")
            got = fn(*args, **case.kwargs)
    except NotImplementedError as err:
        note = f" ({err})" if str(err) else ""
        return {
            "status": "stub",
            "message": f'case "{case.name}": reached code that raises NotImplementedError{note}',
        }
    except (Exception, SystemExit) as err:  # a learner's bug: report it, keep grading the rest
        return {
            "status": "error",
            "message": f'case "{case.name}": ' + describe_exception(err, path),
            "detail": inputs_text(fb, case),
        }
    out = {"status": "fail", "detail": None, "mistake": None}
    if any(
        isinstance(a, np.ndarray) and not np.array_equal(a, b, equal_nan=True)
        for a, b in zip(args, case.args)
    ):
        out["message"] = f'case "{case.name}": your function changed its input array'
        out["detail"] = inputs_text(fb, case)
        return out
    ref_args = copy_args(case.args)
    expected = fb.reference(*ref_args, **case.kwargs)
    problem = contract_problem(got, expected, args, ref_args, fb.dtype)
    diff = problem if problem is not None else fb.differs(got, expected)
    if diff is None:
        return {"status": "pass"}
    out["message"] = f'case "{case.name}": {diff}'
    out["detail"] = case_detail(fb, case, got, expected)
    if caught:
        w = caught[0]
        out["detail"] += f"\nwarned: {w.message} (line {w.lineno} of {Path(w.filename).name})"
    if problem is not None:
        return out
    for m in fb.mistakes:
        try:
            with np.errstate(all="ignore"):
                wrong = m.fn(*copy_args(case.args), **case.kwargs)
        except Exception:  # a wrong version that cannot run this case explains nothing here
            continue
        if fb.differs(got, wrong) is None:
            # named once per function: a mistake already told explains this case too, so no
            # later one (which may agree here by coincidence) is named in its place
            if m.name not in recognised:
                out["mistake"] = m.name
                out["message"] += f"\n  -> looks like {m.name}: {m.advice}"
            break
    return out


# ----------------------------------------------------------------------------- the worker


def _load(lesson, target, path):
    from ._core import lesson_battery

    battery = lesson_battery(lesson)
    module = import_learner_file(path) if path is not None else target
    return battery, module


def _serve(conn, lesson, target, path):
    """The worker's loop: import the learner's file, then answer one case per request."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the checking process's to handle
    try:
        battery, module = _load(lesson, target, path)
    except LearnerImportError as err:
        conn.send(("import-error", str(err)))
        return
    names = [fb.name for fb in battery.functions]
    present = [n for n in names if callable(getattr(module, n, None))]
    defined = (
        sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_"))
        if hasattr(module, "__dict__")
        else []
    )
    conn.send(("ready", present, defined, borrowed(module, names)))
    by_name = {fb.name: fb for fb in battery.functions}
    while True:
        request = conn.recv()
        if request is None:
            return
        name, index, recognised, verbose = request
        fb, case = by_name[name], by_name[name].cases[index]
        try:
            result = run_case(fb, getattr(module, name), case, recognised, path, verbose)
        except Exception as err:  # the checker's own failure: say so, keep the worker alive
            result = {
                "status": "error",
                "message": f'case "{case.name}": the checker itself failed '
                f"({type(err).__name__}: {err}); please report this",
            }
        conn.send(result)


def worker_context():
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


class Worker:
    """A worker process for one check, restarted after a case that did not finish."""

    def __init__(self, lesson, target, path, timeout):
        self.lesson, self.target, self.path, self.timeout = lesson, target, path, timeout
        self.proc = self.conn = None
        self.ctx = worker_context()

    def start(self):
        """Start the worker; returns its first message ("ready" ... or "import-error", text)."""
        sys.stdout.flush()
        sys.stderr.flush()
        parent, child = self.ctx.Pipe()
        target = self.target if self.ctx.get_start_method() == "fork" else None
        self.proc = self.ctx.Process(
            target=_serve, args=(child, self.lesson, target, self.path), daemon=True
        )
        self.proc.start()
        child.close()
        self.conn = parent
        msg = self._receive()
        if msg in ("timeout", "crashed"):
            where = self.path or "the functions"
            return ("import-error", f"{where} could not be imported: importing it did not finish "
                    f"in {self.timeout:g} s. Code at the top level of the file runs on import; "
                    f'move long-running code under `if __name__ == "__main__":`.')  # fmt: skip
        return msg

    def _receive(self):
        try:
            if not self.conn.poll(self.timeout):
                self.stop()
                return "timeout"
            return self.conn.recv()
        except (EOFError, OSError):
            code = None
            if self.proc is not None:
                self.proc.join(1.0)
                code = self.proc.exitcode
            self.stop()
            return ("crashed", code)

    def ask(self, name, index, recognised, verbose):
        """The result dict of one case, or "timeout", or ("crashed", exit code)."""
        if self.proc is None:
            msg = self.start()
            if msg[0] != "ready":
                return ("crashed", None)
        self.conn.send((name, index, tuple(recognised), verbose))
        return self._receive()

    def stop(self):
        if self.proc is not None:
            if self.proc.is_alive():
                self.proc.kill()
            self.proc.join()
            self.conn.close()
        self.proc = self.conn = None

    def close(self):
        if self.proc is not None and self.proc.is_alive():
            try:
                self.conn.send(None)
                self.proc.join(1.0)
            except (OSError, BrokenPipeError):
                pass
        self.stop()


def in_process(fb, fn, index, recognised, verbose):
    """A case run in this process, without a time limit (no worker can hold ``fn``)."""
    return run_case(fb, fn, fb.cases[index], recognised, None, verbose)
