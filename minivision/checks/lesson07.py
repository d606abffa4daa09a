"""Lesson 07 battery: bilinear interpolation, RoIAlign forward and backward, FPN levels.

The expected values come from minivision.ops (pinned to torchvision by the tests). The
mistakes are the classic ones: no half-pixel offset for ``aligned=True``, averaging over the
samples that fell inside the map only, x and y swapped, the batch index read as part of the
box, the box rounded to whole cells as in RoI pooling, outside samples clamped to the border
instead of counting 0, the minimum RoI size forgotten, the backward pass not divided by the
sample count, and for FPN levels a missing epsilon, the natural log, or the area in place of
its square root.
"""

from __future__ import annotations

import math

import numpy as np

from ..ops import poolers as ref_levels
from ..ops._bilinear import bilinear_corners
from ..ops.roi_align import roi_align, roi_align_backward
from ._core import Battery, Case, FunctionBattery, Mistake

# ----------------------------------------------------------------------------- inputs

RNG = np.random.default_rng(7)
PLANE = RNG.integers(0, 10, (4, 5)).astype(np.float64)
YS = np.array([0.0, 0.5, 2.25, 3.0, 3.5, -0.5, -1.0, -1.25, 4.0, 4.5, 1.0, 2.75])
XS = np.array([0.0, 1.5, 3.75, 4.0, 0.25, 2.0, 1.0, 1.0, 4.5, 2.0, -0.75, 5.5])
MAPS = RNG.standard_normal((2, 2, 6, 8))
ROIS = np.array(
    [
        [0, 0.0, 0.0, 8.0, 6.0],  # the whole first image
        [1, 1.3, 0.7, 5.6, 4.2],  # image 1, fractional corners
        [1, 5.0, 3.0, 11.0, 9.0],  # half outside
        [0, 2.0, 2.0, 2.4, 2.3],  # smaller than a cell
        [1, 0.5, 1.5, 3.5, 5.0],
    ]
)
SCALED = np.array([[0, 2.0, 3.0, 14.0, 10.0], [1, 5.0, 1.0, 9.0, 13.0]])
GRAD = RNG.standard_normal((len(ROIS), 2, 2, 3))
BOXES = np.array(
    [
        [0, 0, 224, 224],
        [0, 0, 112, 112],
        [0, 0, 111.9, 112],
        [10, 10, 40, 30],
        [0, 0, 800, 600],
        [5, 5, 5, 5],
        [0, 0, 448, 224],
        [0, 0, 60.1, 3339.5],  # sqrt(area) = 448 (1 - 1e-7): level 5 thanks to the epsilon
        [0, 0, 53.4, 3758.5],
    ]
)


# ----------------------------------------------------------------------------- reference


def _bilinear_reference(plane, y, x):
    h, w = plane.shape
    ylo, yhi, hy, ly, vy = bilinear_corners(np, np.asarray(y, dtype=float), h)
    xlo, xhi, hx, lx, vx = bilinear_corners(np, np.asarray(x, dtype=float), w)
    value = (
        (hy * hx * plane[ylo, xlo] + hy * lx * plane[ylo, xhi]) + ly * hx * plane[yhi, xlo]
    ) + (ly * lx * plane[yhi, xhi])
    return np.where(vy & vx, value, 0.0)


def _align_reference(input, rois, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    return roi_align(input, rois, output_size, spatial_scale, sampling_ratio, aligned)


def _backward_reference(grad_output, rois, input_shape, spatial_scale=1.0, sampling_ratio=-1, aligned=False):  # fmt: skip
    return roi_align_backward(
        grad_output, rois, input_shape, spatial_scale, sampling_ratio, aligned
    )


def _level_reference(boxes, k_min, k_max):
    with np.errstate(divide="ignore"):  # a zero-area box: log2(0) = -inf, the lowest level
        return ref_levels.level_mapper([boxes], k_min, k_max)


# ----------------------------------------------------------------------------- mistakes


def _interp(plane, y, x, clamp_outside=False, swap_weights=False):
    h, w = plane.shape
    y, x = np.asarray(y, dtype=float), np.asarray(x, dtype=float)
    if clamp_outside:  # torchvision's pure-Python fallback: outside points take the border
        y, x = np.clip(y, -1, h), np.clip(x, -1, w)
    if not swap_weights:
        return _bilinear_reference(plane, y, x)
    # each corner weighted by its *own* distance instead of the opposite one's
    ylo, yhi, hy, ly, vy = bilinear_corners(np, y, h)
    xlo, xhi, hx, lx, vx = bilinear_corners(np, x, w)
    value = ly * lx * plane[ylo, xlo] + ly * hx * plane[ylo, xhi]
    value = value + hy * lx * plane[yhi, xlo] + hy * hx * plane[yhi, xhi]
    return np.where(vy & vx, value, 0.0)


def _samples(start, size, bins, grid, centred=True):
    """(bins, grid) sample coordinates along one axis (at the sub-cells' corners if not centred)."""
    b = size / bins
    half = 0.5 if centred else 0.0
    return start + np.arange(bins)[:, None] * b + (np.arange(grid)[None, :] + half) * b / grid


def _roi_samples(shape, rois, output_size, scale, sr, aligned, *, offset=True, swap=False,
                 batch_as_class=False, rounded=False, min_size=True, valid_count=False,
                 offset_first=False, at_corners=False):  # fmt: skip
    """For each RoI, as a learner would write it: (k, image, yy, xx, count) with the sample
    points of every bin, yy/xx of shape (PH, PW, gh, gw), count of shape (PH, PW)."""
    n, c, h, w = shape
    ph, pw = output_size
    for k, roi in enumerate(rois):
        image, x1, y1, x2, y2 = (0, *roi[:4]) if batch_as_class else (int(roi[0]), *roi[1:])
        if swap:
            x1, y1, x2, y2 = y1, x1, y2, x2
        off = 0.5 if (aligned and offset) else 0.0
        corners = [v * scale for v in (x1, y1, x2, y2)]
        if offset_first:  # the half pixel taken off in image pixels, then scaled with the box
            corners, off = [(v - off) * scale for v in (x1, y1, x2, y2)], 0.0
        if rounded:  # RoI pooling's quantisation
            corners = [float(math.floor(v + 0.5)) for v in corners]
        sx, sy, ex, ey = (v - off for v in corners)
        rw, rh = ex - sx, ey - sy
        if not aligned and min_size:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        gh = sr if sr > 0 else max(math.ceil(rh / ph), 0)
        gw = sr if sr > 0 else max(math.ceil(rw / pw), 0)
        if gh == 0 or gw == 0 or not 0 <= image < n:
            continue
        ys, xs = _samples(sy, rh, ph, gh, not at_corners), _samples(sx, rw, pw, gw, not at_corners)
        yy = np.broadcast_to(ys[:, None, :, None], (ph, pw, gh, gw))
        xx = np.broadcast_to(xs[None, :, None, :], (ph, pw, gh, gw))
        inside = (yy >= -1) & (yy <= h) & (xx >= -1) & (xx <= w)
        count = (
            np.maximum(inside.sum(axis=(2, 3)), 1) if valid_count else np.full((ph, pw), gh * gw)
        )
        yield k, image, yy, xx, count


def _align_mistake(clamp_outside=False, **flags):
    def fn(input, rois, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
        c = input.shape[1]
        out = np.zeros((len(rois), c, *output_size))
        for k, image, yy, xx, count in _roi_samples(
            input.shape, rois, output_size, spatial_scale, sampling_ratio, aligned, **flags
        ):
            for ch in range(c):
                values = _interp(input[image, ch], yy, xx, clamp_outside)
                out[k, ch] = values.sum(axis=(2, 3)) / count
        return out

    return fn


def _scatter(how, grad, rows, cols, values):
    """grad[rows, cols] += values, the right way (np.add.at) or one of two wrong ones."""
    if how == "add.at":
        np.add.at(grad, (rows, cols), values)
    elif how == "fancy":  # a repeated (row, col) is written once: the last value wins
        grad[rows, cols] += values
    else:  # "=": each write replaces what earlier samples sent
        grad[rows, cols] = values


def _backward_mistake(divide=True, scatter="add.at", **flags):
    def fn(grad_output, rois, input_shape, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
        n, c, h, w = input_shape
        output_size = grad_output.shape[2:]
        grad = np.zeros(input_shape)
        for k, image, yy, xx, count in _roi_samples(
            input_shape, rois, output_size, spatial_scale, sampling_ratio, aligned, **flags
        ):
            ylo, yhi, hy, ly, vy = bilinear_corners(np, np.ascontiguousarray(yy), h)
            xlo, xhi, hx, lx, vx = bilinear_corners(np, np.ascontiguousarray(xx), w)
            ok = vy & vx
            for ch in range(c):
                g = grad_output[k, ch][:, :, None, None] / (
                    count[:, :, None, None] if divide else 1
                )
                g = np.broadcast_to(g, yy.shape) * ok
                corners = [
                    (ylo, xlo, hy * hx),
                    (ylo, xhi, hy * lx),
                    (yhi, xlo, ly * hx),
                    (yhi, xhi, ly * lx),
                ]
                # the wrong scatters written bin by bin, corner by corner, as a loop would
                bins = [(...,)] if scatter == "add.at" else np.ndindex(*output_size)
                for b in bins:
                    on = ok[b].ravel()  # samples off the map write nothing
                    for rows, cols, weight in corners:
                        at_r, at_c, v = (a[b].ravel()[on] for a in (rows, cols, g * weight))
                        _scatter(scatter, grad[image, ch], at_r, at_c, v)
        return grad

    return fn


def _level_mistake(kind):
    def fn(boxes, k_min, k_max):
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        with np.errstate(divide="ignore"):
            if kind == "area":
                k = np.floor(4 + np.log2(area / 224) + 1e-6)
            elif kind == "ln":
                k = np.floor(4 + np.log(np.sqrt(area) / 224) + 1e-6)
            else:  # no epsilon
                k = np.floor(4 + np.log2(np.sqrt(area) / 224))
        return np.clip(k, k_min, k_max).astype(np.int64) - k_min

    return fn


BATCH = (
    "the batch index read as part of the box",
    "a RoI row is (batch_index, x1, y1, x2, y2): column 0 says which image to sample from "
    "(it is not a class label) and the box is columns 1 to 4",
)
SWAP = (
    "x and y swapped",
    "x1 and x2 are columns (the last axis), y1 and y2 rows; interpolate plane[y, x]",
)
OFFSET = (
    "no half-pixel offset",
    "with aligned=True the scaled box is shifted by -0.5 (pixel centres sit at half-integers "
    "of the continuous coordinates), and the minimum size of 1 does not apply",
)
OFFSET_FIRST = (
    "the half pixel subtracted before scaling",
    "aligned=True shifts the box by half a cell of the feature map: scale first, then subtract "
    "0.5 (x1 * spatial_scale - 0.5), not (x1 - 0.5) * spatial_scale",
)
VALID = (
    "averaging over the valid samples only",
    "divide by all grid_h * grid_w samples of the bin: the ones that fell outside the map "
    "count as 0 but still count",
)
ROUNDED = (
    "the box rounded to whole cells",
    "RoIAlign never quantises: use x1 * spatial_scale as it is (that is the point of the "
    "lesson -- rounding is what RoI pooling does and what misaligns masks)",
)
CLAMP = (
    "outside samples clamped to the border",
    "a sample with y < -1, y > H, x < -1 or x > W contributes 0 (only samples in [-1, 0] "
    "snap to the first row or column)",
)
MIN_SIZE = (
    "the minimum RoI size forgotten",
    "with aligned=False torchvision makes every RoI at least one cell wide and tall: "
    "roi_w = max(x2 * s - x1 * s, 1)",
)

BATTERY = Battery(
    lesson="07",
    title="lesson 07, RoIAlign",
    functions=[
        FunctionBattery(
            "bilinear_interpolate",
            _bilinear_reference,
            [
                Case("twelve points on a 4 x 5 plane, inside and around it", (PLANE, YS, XS)),
                Case(
                    "a 3 x 3 grid of points",
                    (PLANE, *np.meshgrid([0.4, 1.6, 2.9], [0.1, 3.3, 4.2], indexing="ij")),
                ),
            ],
            [
                Mistake(*SWAP, lambda plane, y, x: _interp(plane, x, y)),
                Mistake(*CLAMP, lambda plane, y, x: _interp(plane, y, x, clamp_outside=True)),
                Mistake(
                    "the bilinear weights swapped",
                    "a corner's weight is the distance to the *opposite* corner: the top-left "
                    "value gets (1 - ly) * (1 - lx) with ly = y - floor(y)",
                    lambda plane, y, x: _interp(plane, y, x, swap_weights=True),
                ),
            ],
        ),
        FunctionBattery(
            "roi_align",
            _align_reference,
            [
                Case(
                    "five RoIs, 2 x 3 bins, sampling_ratio 2", (MAPS, ROIS, (2, 3), 1.0, 2, False)
                ),
                Case("aligned=True", (MAPS, ROIS, (2, 3), 1.0, 2, True)),
                Case("adaptive sampling (-1)", (MAPS, ROIS, (2, 3), 1.0, -1, False)),
                Case("adaptive, aligned", (MAPS, ROIS, (3, 3), 1.0, -1, True)),
                Case("spatial_scale 0.5", (MAPS, SCALED, (2, 2), 0.5, 2, False)),
                Case("aligned, spatial_scale 0.5", (MAPS, SCALED, (2, 2), 0.5, 2, True)),
            ],
            [
                Mistake(*OFFSET_FIRST, _align_mistake(offset_first=True)),
                Mistake(
                    "sampling at the bin corners instead of the centres",
                    "a bin split into grid_h x grid_w sub-cells is sampled at each sub-cell's "
                    "centre: y1 + (iy + 0.5) * bin_h / grid_h, not y1 + iy * bin_h / grid_h",
                    _align_mistake(at_corners=True),
                ),
                Mistake(*OFFSET, _align_mistake(offset=False)),
                Mistake(*VALID, _align_mistake(valid_count=True)),
                Mistake(*SWAP, _align_mistake(swap=True)),
                Mistake(*BATCH, _align_mistake(batch_as_class=True)),
                Mistake(*ROUNDED, _align_mistake(rounded=True)),
                Mistake(*CLAMP, _align_mistake(clamp_outside=True)),
                Mistake(*MIN_SIZE, _align_mistake(min_size=False)),
            ],
        ),
        FunctionBattery(
            "roi_align_backward",
            _backward_reference,
            [
                Case("five RoIs, sampling_ratio 2", (GRAD, ROIS, MAPS.shape, 1.0, 2, False)),
                Case("aligned, adaptive", (GRAD, ROIS, MAPS.shape, 1.0, -1, True)),
            ],
            [
                Mistake(
                    "the gradient not divided by the sample count",
                    "the forward pass averages grid_h * grid_w samples, so each sample passes "
                    "back grad / count, spread with its four bilinear weights",
                    _backward_mistake(divide=False),
                ),
                Mistake(*OFFSET, _backward_mistake(offset=False)),
                Mistake(*SWAP, _backward_mistake(swap=True)),
                Mistake(*BATCH, _backward_mistake(batch_as_class=True)),
                Mistake(
                    "fancy-index += dropping repeated cells",
                    "grad[rows, cols] += g writes a cell once even when several samples land on "
                    "it; np.add.at(grad, (rows, cols), g) adds every one",
                    _backward_mistake(scatter="fancy"),
                ),
                Mistake(
                    "= instead of += in the backward",
                    "every sample adds its share to the cells it read: accumulate with +=, do "
                    "not overwrite what earlier samples (and RoIs) sent",
                    _backward_mistake(scatter="="),
                ),
            ],
        ),
        FunctionBattery(
            "fpn_level",
            _level_reference,
            [
                Case("boxes around 224 and 112 pixels, P2-P5", (BOXES, 2, 5)),
                Case("levels 3 to 6", (BOXES, 3, 6)),
            ],
            [
                Mistake(
                    "no epsilon",
                    "log2(112 / 224) is -1 only up to round-off; torchvision adds 1e-6 inside "
                    "the floor so that a box of exactly half the canonical size lands a level "
                    "down, not two",
                    _level_mistake("eps"),
                ),
                Mistake(
                    "the area instead of its square root",
                    "FPN compares the box's *side* sqrt(w * h) with 224, not its area",
                    _level_mistake("area"),
                ),
                Mistake(
                    "the natural logarithm",
                    "each level halves the resolution: use log2",
                    _level_mistake("ln"),
                ),
            ],
        ),
    ],
)
