"""`minivision check 02`: stubs fail cleanly, a correct solution passes, planted mistakes are named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from lesson_checks import (
    assert_cli_exit_code,
    assert_solution_passes,
    assert_stubs_fail_cleanly,
    load_solution,
    replaced,
)
from scipy import ndimage

from minivision.checks import check_module
from minivision.checks.lesson02 import same_edges, same_partition

ROOT = Path(__file__).resolve().parents[2]
STUBS = ROOT / "lessons" / "02_segmentation.py"
SOLUTION = Path(__file__).parents[1] / "solutions" / "lesson02_solution.py"


SOL = load_solution("02")


def _with(**overrides):
    return replaced(SOL, **overrides)


def test_stubs_fail_cleanly():
    assert_stubs_fail_cleanly("02", STUBS, 4)


def test_reference_solution_passes():
    assert_solution_passes("02", 4)


def test_renumbered_labels_still_pass():
    def renumbered(*args):
        labels = SOL.felzenszwalb(*args)
        return labels.max() - labels + 7  # reversed and shifted numbering, same partition

    report = check_module("02", _with(felzenszwalb=renumbered))
    assert report.result("felzenszwalb").status == "ok", report.text()


# Each planted mistake is written here the way a learner would, independently of the checker.
def grid_edges_4(height, width):
    idx = np.arange(height * width).reshape(height, width)
    right = np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()], axis=1)
    down = np.stack([idx[:-1, :].ravel(), idx[1:, :].ravel()], axis=1)
    return np.concatenate([right, down])


def weights_unscaled(image, sigma):
    img = np.asarray(image, dtype=np.float64)
    img = img[:, :, None] if img.ndim == 2 else img
    if sigma > 0:
        img = ndimage.gaussian_filter(img, (sigma, sigma, 0), mode="reflect")
    flat = img.reshape(-1, img.shape[2])
    e = SOL.grid_edges(img.shape[0], img.shape[1])
    return np.sqrt(((flat[e[:, 0]] - flat[e[:, 1]]) ** 2).sum(axis=1))


def weights_squared(image, sigma):
    return SOL.edge_weights(image, sigma) ** 2


def merge_loop(num_nodes, edges, weights, k, min_size, less_equal=False, small_first=False):
    order = sorted(range(len(weights)), key=lambda i: weights[i])
    parent = list(range(num_nodes))
    size = [1] * num_nodes
    inner = [0.0] * num_nodes

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    def small():
        for i in order:
            a, b = find(edges[i][0]), find(edges[i][1])
            if a != b and min(size[a], size[b]) < min_size:
                parent[a] = b
                size[b] += size[a]

    if small_first:
        small()
    for i in order:
        a, b = find(edges[i][0]), find(edges[i][1])
        if a == b:
            continue
        limit = min(np.float32(inner[a] + k / size[a]), np.float32(inner[b] + k / size[b]))
        if weights[i] <= limit if less_equal else weights[i] < limit:
            parent[a] = b
            size[b] += size[a]
            inner[b] = weights[i]
    if not small_first:
        small()
    return np.array([find(x) for x in range(num_nodes)])


def segment_less_equal(num_nodes, edges, weights, k, min_size):
    return merge_loop(num_nodes, edges, weights, k, min_size, less_equal=True)


def segment_small_first(num_nodes, edges, weights, k, min_size):
    return merge_loop(num_nodes, edges, weights, k, min_size, small_first=True)


def felz(edges_fn=None, weights_fn=None, segment_fn=None, divide=True):
    def felzenszwalb(image, scale=1, sigma=0.8, min_size=20):
        h, w = image.shape[:2]
        e = (edges_fn or SOL.grid_edges)(h, w)
        wts = (weights_fn or SOL.edge_weights)(image, sigma)
        if edges_fn is not None:  # the 4-connected graph's weights: the first len(e) ones
            wts = wts[: len(e)]
        k = scale / 255 if divide else scale
        return (segment_fn or SOL.segment_graph)(h * w, e, wts, k, min_size).reshape(h, w)

    return felzenszwalb


PLANTED = [
    ("grid_edges", grid_edges_4, "4-connectivity"),
    ("edge_weights", weights_unscaled, "the image not scaled to [0, 1]"),
    ("edge_weights", weights_squared, "the squared distance"),
    ("segment_graph", segment_less_equal, "<= instead of <"),
    ("segment_graph", segment_small_first, "min_size applied before the merge"),
    ("felzenszwalb", felz(edges_fn=grid_edges_4), "4-connectivity"),
    ("felzenszwalb", felz(segment_fn=segment_less_equal), "<= instead of <"),
    ("felzenszwalb", felz(weights_fn=weights_unscaled), "the image not scaled to [0, 1]"),
    ("felzenszwalb", felz(divide=False), "k = scale instead of scale / 255"),
    ("felzenszwalb", felz(segment_fn=segment_small_first), "min_size applied before the merge"),
]


@pytest.mark.parametrize("fn,wrong,mistake", PLANTED, ids=[f"{p[0]}-{p[2]}" for p in PLANTED])
def test_planted_mistake_is_recognised(fn, wrong, mistake):
    report = check_module("02", _with(**{fn: wrong}))
    result = report.result(fn)
    assert result.status == "failed"
    assert mistake in result.mistakes, report.text()
    assert f"looks like {mistake}" in report.text()
    assert all(r.status == "ok" for r in report.results if r.name != fn)


def test_partition_comparison_explains_the_difference():
    a = np.array([[0, 0, 1], [2, 2, 1]])
    assert same_partition(a + 5, a) is None
    assert same_partition(a[::-1], a) is None  # rows swapped: the same split, renamed
    assert same_partition(a[:, ::-1], a) is not None
    msg = same_partition(np.array([[0, 0, 1], [1, 2, 1]]), a)
    assert "3 segments, expected 3" in msg and "(1, 0)" in msg
    assert "shape" in same_partition(a[:1], a)
    assert "integer labels" in same_partition(a * 1.0, a)


def test_edge_comparison_ignores_order_and_direction():
    e = np.array([[0, 1], [1, 2], [0, 2]])
    assert same_edges(e[::-1, ::-1], e) is None
    assert "missing (1, 2)" in same_edges(e[[0, 2]], e)
    assert "each edge once" in same_edges(np.array([[0, 1], [1, 0], [1, 2]]), e)


@pytest.mark.parametrize("path,code", [(STUBS, 1), (SOLUTION, 0)])
def test_command_line_exit_codes(path, code):
    assert_cli_exit_code("02", path, code)
