"""`minivision check` as a learner meets it: time limits, import problems, where errors are told.

Each test writes a small exercise file the way a learner would get it wrong, and runs the check
on it -- through ``check_file`` and, where the output matters, through the command line.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from lesson_checks import load_solution, replaced

from minivision.checks import check_file, check_module

SOLUTION_04 = Path(__file__).parents[1] / "solutions" / "lesson04_solution.py"


def _write(folder: Path, name: str, code: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(code))
    return path


def _cli(*args, timeout=120):
    """``python -m minivision check ...``; the outer limit only guards against a hang."""
    return subprocess.run(
        [sys.executable, "-m", "minivision", "check", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _hanging_nms() -> str:
    """The reference solution's py_cpu_nms loop without the line that drops the kept box (and
    the IoU it feeds): ``order`` never shrinks, so the loop never ends."""
    lines = inspect.getsource(load_solution("04").nms).splitlines(keepends=True)
    kept = [t for t in lines if "order = order[1:]" not in t and "_iou_one_to_many" not in t]
    assert len(kept) == len(lines) - 2, "lesson04_solution.nms changed: update _hanging_nms"
    return "import numpy as np\n\n\n" + "".join(kept)


def test_an_infinite_loop_is_reported_within_the_time_limit(tmp_path):
    path = _write(tmp_path, "hang.py", _hanging_nms())
    proc = _cli("04", path, "--timeout", "0.5", timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "of nms did not finish in 0.5 s" in proc.stdout
    assert 'case "no boxes at all"' not in proc.stdout  # the loop ends with no boxes: no report
    assert "skipped the other" in proc.stdout  # two hangs: the rest of nms is not waited for
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "functions pass" in proc.stdout


def test_results_stream_one_write_per_case(tmp_path):
    class Recorder:
        def __init__(self):
            self.writes = []

        def write(self, text):
            self.writes.append(text)

        def flush(self):
            pass

    out = Recorder()
    report = check_file("04", SOLUTION_04, stream=out)
    assert report.ok
    n_cases = sum(len(r.marks) for r in report.results)
    assert sum(w == "." for w in out.writes) == n_cases  # each case's mark as it finishes
    assert "".join(out.writes).rstrip().endswith("Well done.")


def test_a_syntax_error_is_one_paragraph(tmp_path):
    path = _write(
        tmp_path,
        "broken.py",
        """
        import numpy as np

        def nms(boxes, scores, iou_threshold)
            return np.zeros(0, dtype=np.int64)
    """,
    )
    proc = _cli("04", path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert "Traceback" not in out and "_core.py" not in out and "cli.py" not in out
    assert f"{path} could not be imported: it has a syntax error" in out
    assert "line 4:" in out and "def nms(boxes, scores, iou_threshold)" in out
    assert "SyntaxError" in out and "0 of 3 functions pass" in out


def test_an_exception_at_import_is_one_paragraph(tmp_path):
    path = _write(
        tmp_path,
        "raises.py",
        """
        import numpy as np

        SIZES = np.array([1, 2, 3])
        LAST = SIZES[3]

        def nms(boxes, scores, iou_threshold):
            return np.zeros(0, dtype=np.int64)
    """,
    )
    report = check_file("04", path)
    assert not report.ok and report.import_error is not None
    text = report.text()
    assert "raised an error before any check ran" in text
    assert "line 5:" in text and "LAST = SIZES[3]" in text and "IndexError" in text
    assert "Traceback" not in text


def test_a_missing_module_is_told_where_it_was_looked_for(tmp_path):
    path = _write(tmp_path, "imports.py", "from my_helpers import box_iou\n")
    text = check_file("04", path).text()
    assert "ModuleNotFoundError" in text and "'my_helpers'" in text and str(tmp_path) in text


def test_a_helper_next_to_the_file_can_be_imported(tmp_path):
    # the reference solution's nms, with its IoU helper moved into a file of its own
    solution = load_solution("04")
    helper = inspect.getsource(solution._iou_one_to_many)
    nms = inspect.getsource(solution.nms)
    helper, nms = (t.replace("_iou_one_to_many", "iou_one_to_many") for t in (helper, nms))
    _write(tmp_path, "my_iou.py", "import numpy as np\n\n\n" + helper)
    head = "import numpy as np\nfrom my_iou import iou_one_to_many\n\n\n"
    path = _write(tmp_path, "mine.py", head + nms)
    report = check_file("04", path)
    assert report.import_error is None, report.text()
    assert report.result("nms").status == "ok", report.text()
    # an error inside the helper is placed at the helper's line
    _write(tmp_path, "my_iou.py", "def iou_one_to_many(box, others):\n    return others[:, 9]\n")
    text = check_file("04", path).text()
    assert "raised IndexError" in text and "at line 2 of my_iou.py: return others[:, 9]" in text
    assert report.result("soft_nms").status == "missing"
    assert "defines no function named soft_nms" in report.text()
    assert "(it defines: iou_one_to_many, nms)" in report.text()  # np is not a function


def test_borrowing_minivision_is_warned(tmp_path):
    path = _write(
        tmp_path,
        "borrow.py",
        """
        from minivision.ops import nms as library_nms

        def nms(boxes, scores, iou_threshold):
            return library_nms(boxes, scores, iou_threshold)
    """,
    )
    text = check_file("04", path).text()
    assert "WARNING" in text and "minivision's own nms" in text and "proves nothing" in text
    path = _write(tmp_path, "borrow00.py", "from minivision import box_iou, box_area\n")
    text = check_file("00", path).text()
    assert "minivision's own box_iou" in text and "minivision's own box_area" in text


def test_an_error_inside_numpy_is_placed_at_the_learners_line(tmp_path):
    path = _write(
        tmp_path,
        "numpy_error.py",
        """
        import numpy as np

        def nms(boxes, scores, iou_threshold):
            top = scores.max()
            return np.argsort(-scores, kind="stable")[:1]
    """,
    )
    result = check_file("04", path).result("nms")
    empty = next(m for m in result.messages if "no boxes at all" in m)
    assert "raised ValueError" in empty
    assert "at line 5 of numpy_error.py: top = scores.max()" in empty
    assert "came from numpy's" in empty and "_methods.py, line" not in empty


def test_not_implemented_in_one_branch_leaves_the_other_cases_running():
    solution = load_solution("04")

    def nms(boxes, scores, iou_threshold):
        if len(boxes) == 0:
            raise NotImplementedError("the empty case")
        return solution.nms(boxes, scores, iou_threshold)

    report = check_module("04", replaced(solution, nms=nms))
    result = report.result("nms")
    assert result.status == "failed"
    assert result.passed == result.total - 1
    assert result.marks.count("S") == 1
    assert any("NotImplementedError (the empty case)" in m for m in result.messages)


def _iou_over_first(solution):
    def box_iou(b1, b2):
        lt = np.maximum(b1[:, None, :2], b2[None, :, :2])
        rb = np.minimum(b1[:, None, 2:], b2[None, :, 2:])
        wh = np.clip(rb - lt, 0, None)
        return wh[..., 0] * wh[..., 1] / ((b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1]))[:, None]

    return replaced(solution, box_iou=box_iou)


def test_the_first_failure_shows_its_inputs_and_the_first_difference():
    report = check_module("00", _iou_over_first(load_solution("00")))
    messages = report.result("box_iou").messages
    failures = [m for m in messages if m.startswith("case ")]
    details = [m for m in messages if m.lstrip().startswith("inputs:")]
    assert len(failures) >= 2 and len(details) == 1  # only the first failure, by default
    detail = details[0]
    assert "boxes1 = [[ 0. 0. 10. 10.] [ 5. 5. 15. 15.]" in detail  # the case's own boxes
    assert "(5, 4) float64" in detail
    expected, got = (line.strip() for line in detail.split("\n")[1:3])
    assert expected.startswith("expected row (0,) [1 >>0.142857<<")
    assert got.startswith("got      row (0,) [1 >>0.25<<")


def test_verbose_shows_every_failure():
    report = check_module("00", _iou_over_first(load_solution("00")), verbose=True)
    messages = report.result("box_iou").messages
    failures = [m for m in messages if m.startswith("case ")]
    details = [m for m in messages if m.lstrip().startswith("inputs:")]
    assert len(details) == len(failures) >= 2


def test_verbose_on_the_command_line(tmp_path):
    path = _write(tmp_path, "slow_nms.py", _hanging_nms())
    proc = _cli("04", path, "--timeout", "0.3", "--verbose", timeout=60)
    assert proc.returncode == 1 and "did not finish in 0.3 s" in proc.stdout


def test_without_a_time_limit_the_cases_run_in_this_process():
    report = check_module("04", load_solution("04"), timeout=None)
    assert report.ok, report.text()
    assert check_file("04", SOLUTION_04, timeout=None).ok


def test_a_bad_timeout_is_a_clear_error():
    proc = _cli("04", SOLUTION_04, "--timeout", "0")
    assert proc.returncode == 2 and "timeout must be a positive number" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_function_that_ends_python_is_reported_and_the_rest_still_run():
    solution = load_solution("04")

    def nms(boxes, scores, iou_threshold):
        import os

        os._exit(3)

    report = check_module("04", replaced(solution, nms=nms))
    result = report.result("nms")
    assert result.status == "failed" and set(result.marks) == {"X"}
    assert "stopped Python itself (exit code 3)" in report.text()
    assert report.result("soft_nms").status == "ok"  # a fresh worker took over
