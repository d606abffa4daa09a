"""`minivision check 05` and `07`: stubs fail cleanly, correct solutions pass, planted mistakes
(written here the way a learner would, independently of the batteries) are named."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchvision.ops as tv
from lesson_checks import (
    ROOT,
    assert_planted_mistake_named,
    assert_solution_passes,
    assert_stubs_fail_cleanly,
    load_solution,
)

from minivision.checks import lesson07 as battery07

pytestmark = pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")


@pytest.mark.parametrize(
    "lesson,stubs,count", [("05", "05_roi_pool.py", 3), ("07", "07_roi_align.py", 4)]
)
def test_stubs_fail_cleanly(lesson, stubs, count):
    assert_stubs_fail_cleanly(lesson, ROOT / "lessons" / stubs, count)


@pytest.mark.parametrize("lesson,count", [("05", 3), ("07", 4)])
def test_reference_solutions_pass(lesson, count):
    assert_solution_passes(lesson, count)


def test_bilinear_reference_is_torchvision():
    """The battery's bilinear reference equals torchvision's roi_align with one sample."""
    plane, ys, xs = battery07.PLANE, battery07.YS, battery07.XS
    got = battery07._bilinear_reference(plane, ys, xs)
    x = torch.from_numpy(plane[None, None])
    for y, xx, v in zip(ys, xs, got):
        box = torch.tensor([[0, xx - 0.5, y - 0.5, xx + 0.5, y + 0.5]], dtype=torch.float64)
        assert tv.roi_align(x, box, 1, 1.0, 1, False).item() == pytest.approx(v, abs=1e-12), (y, xx)


# ----------------------------------------------------------------------------- lesson 05

sol05 = load_solution("05")


def c_round(v):
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def bins_with(rnd=c_round, plus=1, swap=False, batch_in_box=False):
    def roi_bins(rois, output_size, spatial_scale, height, width):
        ph, pw = output_size
        out = np.zeros((len(rois), ph, pw, 4), dtype=np.int64)
        for k, roi in enumerate(rois):
            x1, y1, x2, y2 = roi[0:4] if batch_in_box else roi[1:5]
            if swap:
                x1, y1, x2, y2 = y1, x1, y2, x2
            x1, y1, x2, y2 = (rnd(v * spatial_scale) for v in (x1, y1, x2, y2))
            rw, rh = max(x2 - x1 + plus, 1), max(y2 - y1 + plus, 1)
            for i in range(ph):
                for j in range(pw):
                    hs = min(max(math.floor(i * rh / ph) + y1, 0), height)
                    he = min(max(math.ceil((i + 1) * rh / ph) + y1, 0), height)
                    ws = min(max(math.floor(j * rw / pw) + x1, 0), width)
                    we = min(max(math.ceil((j + 1) * rw / pw) + x1, 0), width)
                    out[k, i, j] = hs, he, ws, we
        return out

    return roi_bins


def pool_from(bins_fn, batch_in_box=False):
    def roi_pool(input, rois, output_size, spatial_scale=1.0):
        out = np.zeros((len(rois), input.shape[1], *output_size))
        bins = bins_fn(rois, output_size, spatial_scale, *input.shape[2:])
        for k, i, j in np.ndindex(bins.shape[:3]):
            hs, he, ws, we = bins[k, i, j]
            if he > hs and we > ws:
                b = 0 if batch_in_box else int(rois[k, 0])
                out[k, :, i, j] = input[b, :, hs:he, ws:we].max(axis=(1, 2))
        return out

    return roi_pool


def backward_spread(grad_output, input, rois, output_size, spatial_scale=1.0):
    grad = np.zeros(input.shape)
    bins = sol05.roi_bins(rois, output_size, spatial_scale, *input.shape[2:])
    for k, i, j in np.ndindex(bins.shape[:3]):
        hs, he, ws, we = bins[k, i, j]
        if he > hs and we > ws:
            area = (he - hs) * (we - ws)
            grad[int(rois[k, 0]), :, hs:he, ws:we] += grad_output[k, :, i, j][:, None, None] / area
    return grad


def backward_last_tie(grad_output, input, rois, output_size, spatial_scale=1.0):
    grad = np.zeros(input.shape)
    bins = sol05.roi_bins(rois, output_size, spatial_scale, *input.shape[2:])
    for k, i, j in np.ndindex(bins.shape[:3]):
        hs, he, ws, we = bins[k, i, j]
        if he > hs and we > ws:
            b = int(rois[k, 0])
            for ch in range(input.shape[1]):
                window = input[b, ch, hs:he, ws:we]
                r, q = np.argwhere(window == window.max())[-1]
                grad[b, ch, hs + r, ws + q] += grad_output[k, ch, i, j]
    return grad


PLANTED_05 = [
    ("roi_bins", bins_with(batch_in_box=True), "the batch index read as part of the box"),
    ("roi_bins", bins_with(swap=True), "x and y swapped"),
    ("roi_bins", bins_with(rnd=int), "truncating instead of rounding"),
    ("roi_bins", bins_with(rnd=lambda v: int(np.round(v))), "rounding half to even"),
    ("roi_bins", bins_with(plus=0), 'the missing "+1"'),
    (
        "roi_pool",
        pool_from(bins_with(batch_in_box=True), True),
        "the batch index read as part of the box",
    ),
    ("roi_pool", pool_from(bins_with(swap=True)), "x and y swapped"),
    ("roi_pool", pool_from(bins_with(rnd=int)), "truncating instead of rounding"),
    ("roi_pool", pool_from(bins_with(plus=0)), 'the missing "+1"'),
    ("roi_pool_backward", backward_spread, "the gradient spread over the bin"),
    ("roi_pool_backward", backward_last_tie, "the last of several tied maxima"),
]


@pytest.mark.parametrize("fn,wrong,mistake", PLANTED_05, ids=[f"{p[0]}-{p[2]}" for p in PLANTED_05])
def test_lesson05_planted_mistake_is_recognised(fn, wrong, mistake):
    assert_planted_mistake_named("05", sol05, fn, wrong, mistake)


# ----------------------------------------------------------------------------- lesson 07

sol07 = load_solution("07")


def align_with(
    offset=True,
    count_valid=False,
    swap=False,
    batch_in_box=False,
    clamp=False,
    min_one=True,
    offset_first=False,
    at_corners=False,
):
    def roi_align(input, rois, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
        ph, pw = output_size
        c, h, w = input.shape[1:]
        out = np.zeros((len(rois), c, ph, pw))
        for k, roi in enumerate(rois):
            b, (x1, y1, x2, y2) = (0, roi[0:4]) if batch_in_box else (int(roi[0]), roi[1:5])
            if swap:
                x1, y1, x2, y2 = y1, x1, y2, x2
            off = 0.5 if (aligned and offset) else 0.0
            if offset_first:  # the half pixel off in image pixels, then the whole box scaled
                x1, y1, x2, y2 = ((v - off) * spatial_scale for v in (x1, y1, x2, y2))
            else:
                x1, y1, x2, y2 = (v * spatial_scale - off for v in (x1, y1, x2, y2))
            rw, rh = x2 - x1, y2 - y1
            if not aligned and min_one:
                rw, rh = max(rw, 1), max(rh, 1)
            gh = sampling_ratio if sampling_ratio > 0 else math.ceil(rh / ph)
            gw = sampling_ratio if sampling_ratio > 0 else math.ceil(rw / pw)
            if gh <= 0 or gw <= 0:
                continue
            for i in range(ph):
                for j in range(pw):
                    half = 0.0 if at_corners else 0.5
                    ys = y1 + i * rh / ph + (np.arange(gh) + half) * rh / ph / gh
                    xs = x1 + j * rw / pw + (np.arange(gw) + half) * rw / pw / gw
                    yy, xx = np.meshgrid(ys, xs, indexing="ij")
                    inside = (yy >= -1) & (yy <= h) & (xx >= -1) & (xx <= w)
                    if clamp:
                        yy, xx = np.clip(yy, -1, h), np.clip(xx, -1, w)
                    n = max(inside.sum(), 1) if count_valid else gh * gw
                    for ch in range(c):
                        out[k, ch, i, j] = (
                            sol07.bilinear_interpolate(input[b, ch], yy, xx).sum() / n
                        )
        return out

    return roi_align


def bilinear_weights_swapped(plane, y, x):
    """Each corner weighted by its own distance: (y - y0) on the top row instead of 1 - it."""
    h, w = plane.shape
    y, x = np.asarray(y, dtype=float), np.asarray(x, dtype=float)
    ok = (y >= -1) & (y <= h) & (x >= -1) & (x <= w)
    y, x = np.clip(y, 0, None), np.clip(x, 0, None)
    y0 = np.minimum(np.floor(y), h - 1).astype(int)
    x0 = np.minimum(np.floor(x), w - 1).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    ly = np.where(y0 >= h - 1, 0.0, y - y0)
    lx = np.where(x0 >= w - 1, 0.0, x - x0)
    value = (
        ly * lx * plane[y0, x0]
        + ly * (1 - lx) * plane[y0, x1]
        + (1 - ly) * lx * plane[y1, x0]
        + (1 - ly) * (1 - lx) * plane[y1, x1]
    )
    return np.where(ok, value, 0.0)


def backward_with(scatter="add.at", divide=True):
    """The backward pass a learner writes, with the count forgotten (``divide=False``) or the
    shares scattered with fancy-index ``+=`` or ``=`` instead of ``np.add.at``."""

    def roi_align_backward(
        grad_output, rois, input_shape, spatial_scale=1.0, sampling_ratio=-1, aligned=False
    ):
        grad = np.zeros(input_shape)
        for k, roi in enumerate(rois):
            b = int(roi[0])
            points = sol07._bin_points(
                roi, grad_output.shape[2:], spatial_scale, sampling_ratio, aligned
            )
            for i, j, yy, xx, count in points:
                cells, ok = sol07._weights(input_shape[2:], yy, xx)
                for ch in range(input_shape[1]):
                    for r, c, wt in cells:
                        share = grad_output[k, ch, i, j] * wt[ok]
                        if divide:
                            share = share / count
                        if scatter == "add.at":
                            np.add.at(grad[b, ch], (r[ok], c[ok]), share)
                        elif scatter == "+=":
                            grad[b, ch][r[ok], c[ok]] += share
                        else:
                            grad[b, ch][r[ok], c[ok]] = share
        return grad

    return roi_align_backward


def level_no_eps(boxes, k_min, k_max):
    side = np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    return np.clip(np.floor(4 + np.log2(side / 224)), k_min, k_max).astype(np.int64) - k_min


def level_area(boxes, k_min, k_max):
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return np.clip(np.floor(4 + np.log2(area / 224) + 1e-6), k_min, k_max).astype(np.int64) - k_min


PLANTED_07 = [
    (
        "bilinear_interpolate",
        lambda plane, y, x: sol07.bilinear_interpolate(plane, x, y),
        "x and y swapped",
    ),
    (
        "bilinear_interpolate",
        lambda plane, y, x: sol07.bilinear_interpolate(plane, np.clip(y, -1, 4), np.clip(x, -1, 5)),
        "outside samples clamped to the border",
    ),
    ("roi_align", align_with(offset=False), "no half-pixel offset"),
    ("roi_align", align_with(offset_first=True), "the half pixel subtracted before scaling"),
    (
        "roi_align",
        align_with(at_corners=True),
        "sampling at the bin corners instead of the centres",
    ),
    ("roi_align", align_with(count_valid=True), "averaging over the valid samples only"),
    ("roi_align", align_with(swap=True), "x and y swapped"),
    ("roi_align", align_with(batch_in_box=True), "the batch index read as part of the box"),
    ("roi_align", align_with(clamp=True), "outside samples clamped to the border"),
    ("roi_align", align_with(min_one=False), "the minimum RoI size forgotten"),
    (
        "roi_align_backward",
        backward_with(divide=False),
        "the gradient not divided by the sample count",
    ),
    ("roi_align_backward", backward_with(scatter="+="), "fancy-index += dropping repeated cells"),
    ("roi_align_backward", backward_with(scatter="="), "= instead of += in the backward"),
    ("bilinear_interpolate", bilinear_weights_swapped, "the bilinear weights swapped"),
    ("fpn_level", level_no_eps, "no epsilon"),
    ("fpn_level", level_area, "the area instead of its square root"),
]


@pytest.mark.parametrize("fn,wrong,mistake", PLANTED_07, ids=[f"{p[0]}-{p[2]}" for p in PLANTED_07])
def test_lesson07_planted_mistake_is_recognised(fn, wrong, mistake):
    assert_planted_mistake_named("07", sol07, fn, wrong, mistake)
