"""What the learner reads: a case's inputs, expected against actual, and the report's lines."""

from __future__ import annotations

import inspect

import numpy as np

from ._compare import as_numpy, is_array, mismatches


def _compact(value, limit: int = 48) -> str:
    """A value on one line: small arrays in full, large ones summarised with their shape."""
    if is_array(value):
        a = as_numpy(value)
        text = np.array2string(
            a, precision=4, threshold=limit, edgeitems=2, max_line_width=10_000, separator=" "
        )
        text = " ".join(text.split())
        return f"{text} {a.shape} {a.dtype}" if a.ndim else text
    if isinstance(value, (tuple, list)) and len(value) > 0 and any(is_array(v) for v in value):
        return "(" + ", ".join(_compact(v, limit) for v in value) + ")"
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _parameter_names(fn, n: int) -> list[str]:
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        params = []
    return [params[i] if i < len(params) else f"arg{i}" for i in range(n)]


def inputs_text(fb, case) -> str:
    """``inputs: boxes = [[0 0 4 4] [1 0 5 4]] (2, 4) float64, iou_threshold = 0.5``."""
    names = _parameter_names(fb.reference, len(case.args))
    parts = [f"{k} = {_compact(v)}" for k, v in zip(names, case.args)]
    parts += [f"{k} = {_compact(v)}" for k, v in case.kwargs.items()]
    return "inputs: " + ", ".join(parts)


def _marked(row, at: int | None) -> str:
    items = [np.format_float_positional(float(v), precision=6, trim="-") for v in row]
    if at is not None:
        items[at] = f">>{items[at]}<<"
    if len(items) > 12:  # keep the marked element in view
        lo = 0 if at is None else max(0, min(at - 5, len(items) - 12))
        items = (
            (["..."] if lo else [])
            + items[lo : lo + 12]
            + (["..."] if lo + 12 < len(items) else [])
        )
    return "[" + " ".join(items) + "]"


def _first_difference(got, expected, rtol, atol) -> list[str]:
    """Expected and actual, the row holding their first differing element marked >>so<<."""
    if isinstance(expected, tuple) and isinstance(got, (tuple, list)):
        for i, (g, e) in enumerate(zip(got, expected)):
            lines = _first_difference(g, e, rtol, atol)
            if lines and any(">>" in line for line in lines):
                return [f"item {i} of the tuple:"] + lines
        return []
    try:
        g = as_numpy(got).astype(np.float64)
        e = as_numpy(expected).astype(np.float64)
    except (TypeError, ValueError):
        return [f"expected: {_compact(expected)}", f"got:      {_compact(got)}"]
    if g.shape != e.shape or g.ndim == 0:
        return [f"expected: {_compact(expected)}", f"got:      {_compact(got)}"]
    bad = mismatches(g, e, rtol, atol)
    if len(bad) == 0:
        return []
    idx = tuple(int(i) for i in bad[0])
    row = idx[:-1]
    where = f"row {row} " if row else ""
    return [
        f"expected {where}{_marked(e[row], idx[-1])}",
        f"got      {where}{_marked(g[row], idx[-1])}",
    ]


def case_detail(fb, case, got, expected) -> str:
    """The inputs, then expected and actual with the first differing element marked."""
    lines = [inputs_text(fb, case)]
    lines += _first_difference(got, expected, fb.rtol, fb.atol) or [
        f"expected: {_compact(expected)}",
        f"got:      {_compact(got)}",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- report lines


def head(r) -> str:
    """The verdict at the end of a function's line: ``ok (9 cases)``, ``FAILED 2 of 9 cases``."""
    if r.status == "ok":
        return f"ok ({r.total} cases)"
    if r.status == "failed":
        return f"FAILED {r.total - r.passed} of {r.total} cases"
    if r.status == "stub":
        return "not implemented yet"
    if r.status == "missing":
        return "MISSING from the file"
    return "ERROR"


def indented(message: str, prefix: str = "      ") -> list[str]:
    return [prefix + line for line in message.split("\n")]


def title_lines(battery, source) -> list[str]:
    return [f"minivision check {battery.lesson}: {battery.title}", f"  file: {source}", ""]


def summary_lines(results, ok: bool) -> list[str]:
    n_ok = sum(r.status == "ok" for r in results)
    lines = ["", f"{n_ok} of {len(results)} functions pass."]
    if ok:
        lines.append("Every case matches the reference. Well done.")
    return lines
