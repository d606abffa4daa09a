"""`minivision check 03`: stubs fail cleanly, a correct solution passes, planted mistakes are named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from lesson_checks import load_solution, replaced

from minivision.checks import check_file, check_module

ROOT = Path(__file__).resolve().parents[2]
STUBS = ROOT / "lessons" / "03_selective_search.py"
SOLUTION = Path(__file__).parents[1] / "solutions" / "lesson03_solution.py"


SOL = load_solution("03")


def _with(**overrides):
    return replaced(SOL, **overrides)


def test_stubs_fail_cleanly():
    report = check_file("03", STUBS)
    assert {r.status for r in report.results} == {"stub"}
    text = report.text()
    assert "not implemented yet" in text and "Traceback" not in text
    assert "0 of 3 functions pass" in text


def test_reference_solution_passes():
    report = check_file("03", SOLUTION)
    assert report.ok, report.text()


# Each planted mistake is written here the way a learner would, independently of the checker.
def neighbours_by_box(labels):
    n = labels.max() + 1
    boxes = []
    for r in range(n):
        ys, xs = np.nonzero(labels == r)
        boxes.append((xs.min(), ys.min(), xs.max(), ys.max()))  # inclusive corners
    out = []
    for i in range(n):
        for j in range(i + 1, n):
            a, b = boxes[i], boxes[j]
            if a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]:
                out.append((i, j))
    return np.array(out)


def neighbours_4(labels):
    out = set()
    h, w = labels.shape
    for y in range(h):
        for x in range(w):
            for yy, xx in ((y, x + 1), (y + 1, x)):
                if yy < h and xx < w and labels[y, x] != labels[yy, xx]:
                    out.add(tuple(sorted((int(labels[y, x]), int(labels[yy, xx])))))
    return np.array(sorted(out))


def histograms_unnormalised(image, labels, n):
    image = np.asarray(image, dtype=np.float64)
    c = image.shape[2]
    out = np.zeros((n, c * 25))
    for y in range(image.shape[0]):
        for x in range(image.shape[1]):
            for ch in range(c):
                out[labels[y, x], ch * 25 + min(int(image[y, x, ch] * 25 // 256), 24)] += 1
    return out


def histograms_per_channel(image, labels, n):
    counts = histograms_unnormalised(image, labels, n)
    c = counts.shape[1] // 25
    blocks = counts.reshape(n, c, 25)
    return (blocks / blocks.sum(axis=2, keepdims=True)).reshape(n, c * 25)


def grouping(hist, sizes, boxes, pairs, stale=False, plain=False):
    hist = [np.asarray(h, float) for h in hist]
    size = [float(s) for s in sizes]
    box = [tuple(float(v) for v in b) for b in boxes]
    total = sum(size)

    def s(i, j):
        w = max(box[i][2], box[j][2]) - min(box[i][0], box[j][0])
        h = max(box[i][3], box[j][3]) - min(box[i][1], box[j][1])
        v = np.minimum(hist[i], hist[j]).sum()
        return v + (1.0 - (size[i] + size[j]) / total) + (1.0 - (w * h - size[i] - size[j]) / total)

    table = {tuple(sorted(map(int, p))): s(*sorted(map(int, p))) for p in pairs}
    out = []
    while table:
        best = max(table.values())
        i, j = min(p for p, v in table.items() if v == best)
        t = len(size)
        out.append((i, j))
        size.append(size[i] + size[j])
        hist.append(
            (hist[i] + hist[j]) / 2 if plain else (size[i] * hist[i] + size[j] * hist[j]) / size[t]
        )
        box.append(
            (
                min(box[i][0], box[j][0]),
                min(box[i][1], box[j][1]),
                max(box[i][2], box[j][2]),
                max(box[i][3], box[j][3]),
            )
        )
        new = {}
        for (a, b), v in table.items():
            if (a, b) == (i, j):
                continue
            if a in (i, j) or b in (i, j):
                k = b if a in (i, j) else a
                new[(k, t)] = max(v, new.get((k, t), -1e9)) if stale else s(k, t)
            else:
                new[(a, b)] = v
        table = new
    return np.array(out)


PLANTED = [
    ("region_neighbours", neighbours_by_box, "bounding-box overlap"),
    ("region_neighbours", neighbours_4, "4-connected"),
    ("colour_histograms", histograms_unnormalised, "unnormalised"),
    ("colour_histograms", histograms_per_channel, "each channel normalised"),
    ("group_regions", lambda *a: grouping(*a, stale=True), "not updated after a merge"),
    ("group_regions", lambda *a: grouping(*a, plain=True), "not weighted by size"),
]


@pytest.mark.parametrize(("name", "fn", "mistake"), PLANTED, ids=[p[2] for p in PLANTED])
def test_planted_mistake_is_recognised(name, fn, mistake):
    report = check_module("03", _with(**{name: fn}))
    result = report.result(name)
    assert result.status == "failed", report.text()
    assert any(mistake in m for m in result.mistakes), report.text()
    others = [r for r in report.results if r.name != name]
    assert all(r.status == "ok" for r in others), report.text()


def test_correct_grouping_written_as_textbook_loop_passes():
    report = check_module("03", _with(group_regions=grouping))
    assert report.result("group_regions").status == "ok", report.text()
