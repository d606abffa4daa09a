"""Lesson 05 battery: RoI pooling (Fast R-CNN), forward and backward.

The expected values come from minivision.ops (pinned to torchvision by the tests). The
mistakes are the classic ones: the batch-index column read as part of the box (as if it were
a class label), x and y swapped, truncating (or rounding half to even) instead of rounding
half away from zero, the missing "+1" of the inclusive end cell, bins left unclipped, and in
the backward pass a gradient spread over the whole bin or sent to the last of tied maxima.
"""

from __future__ import annotations

import math

import numpy as np

from ..ops.roi_pool import bin_edges, roi_pool, roi_pool_backward
from ._core import Battery, Case, FunctionBattery, Mistake

# ----------------------------------------------------------------------------- inputs


def _maps():
    """Two images, two channels, 7 x 9 cells of small integers (ties on purpose)."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 9, (2, 2, 7, 9)).astype(np.float64)
    x[1, 0, 1:4, 2:6] = 9.0  # a plateau of maxima in image 1
    return x


MAPS = _maps()
ROIS = np.array(
    [
        [0, 0.0, 0.0, 8.0, 6.0],  # the whole first image
        [1, 2.0, 1.0, 6.0, 4.0],  # image 1, over the plateau
        [1, 1.5, 0.5, 4.5, 5.5],  # halves: round half away from zero
        [0, 5.0, 2.0, 12.0, 9.0],  # sticking out of the bottom-right corner
        [1, 3.0, 3.0, 3.0, 3.0],  # a single cell
        [0, 6.0, 1.0, 7.0, 6.0],  # tall and thin
    ]
)
SCALED = np.array([[1, 4.0, 2.0, 15.0, 13.0], [0, 1.0, 3.0, 9.0, 9.0], [1, 9.0, 5.0, 11.0, 11.0]])
RNG = np.random.default_rng(6)
GRAD = RNG.standard_normal((len(ROIS), 2, 3, 3))
GRAD_SCALED = RNG.standard_normal((len(SCALED), 2, 2, 2))


# ----------------------------------------------------------------------------- reference


def _bins_reference(rois, output_size, spatial_scale, height, width):
    ph, pw = output_size
    hs, he = bin_edges(np, rois, spatial_scale, ph, height, axis=2)
    ws, we = bin_edges(np, rois, spatial_scale, pw, width, axis=1)
    shape = (len(rois), ph, pw)
    parts = [np.broadcast_to(a[:, :, None], shape) for a in (hs, he)]
    parts += [np.broadcast_to(a[:, None, :], shape) for a in (ws, we)]
    return np.stack(parts, axis=-1)


def _pool_reference(input, rois, output_size, spatial_scale=1.0):
    return roi_pool(input, rois, output_size, spatial_scale)


def _backward_reference(grad_output, input, rois, output_size, spatial_scale=1.0):
    _, argmax = roi_pool(input, rois, output_size, spatial_scale, return_argmax=True)
    return roi_pool_backward(grad_output, rois, argmax, input.shape)


# ----------------------------------------------------------------------------- mistakes


def _round(v, how):
    if how == "trunc":
        return math.trunc(v)
    if how == "even":
        return int(np.round(v))
    return int(math.copysign(math.floor(abs(v) + 0.5), v))  # C's round


def _bins(rois, output_size, scale, height, width, *, batch_as_class=False, swap=False,
          rounding="away", plus_one=True, clip=True):  # fmt: skip
    """Every bin's (image, hstart, hend, wstart, wend), written as a learner would, with flags."""
    ph, pw = output_size
    out = []
    for roi in rois:
        image, x1, y1, x2, y2 = (0, *roi[:4]) if batch_as_class else (int(roi[0]), *roi[1:])
        if swap:
            x1, y1, x2, y2 = y1, x1, y2, x2
        sw, sh, ew, eh = (_round(v * scale, rounding) for v in (x1, y1, x2, y2))
        extra = 1 if plus_one else 0
        roi_w, roi_h = max(ew - sw + extra, 1), max(eh - sh + extra, 1)
        bins = np.zeros((ph, pw, 5), dtype=np.int64)
        for i in range(ph):
            for j in range(pw):
                hs = math.floor(i * roi_h / ph) + sh
                he = math.ceil((i + 1) * roi_h / ph) + sh
                ws = math.floor(j * roi_w / pw) + sw
                we = math.ceil((j + 1) * roi_w / pw) + sw
                if clip:
                    hs, he = min(max(hs, 0), height), min(max(he, 0), height)
                    ws, we = min(max(ws, 0), width), min(max(we, 0), width)
                bins[i, j] = image, hs, he, ws, we
        out.append(bins)
    return np.stack(out)


def _bins_mistake(**flags):
    def fn(rois, output_size, spatial_scale, height, width):
        return _bins(rois, output_size, spatial_scale, height, width, **flags)[..., 1:]

    return fn


def _pool(input, rois, output_size, scale, *, tie="first", **flags):
    """A loop implementation with the learner's flags: (output, winners of every bin)."""
    n, c, h, w = input.shape
    bins = _bins(rois, output_size, scale, h, w, **flags)
    out = np.zeros((len(rois), c, *output_size))
    winners = {}
    for k, i, j in np.ndindex(bins.shape[:3]):
        image, hs, he, ws, we = (int(v) for v in bins[k, i, j])
        if he <= hs or we <= ws or not 0 <= image < n:
            continue  # an empty bin stays 0
        for ch in range(c):
            flat = input[image, ch, hs:he, ws:we].ravel()
            first = int(np.argmax(flat))
            pos = first if tie == "first" else len(flat) - 1 - int(np.argmax(flat[::-1]))
            out[k, ch, i, j] = flat[pos]
            r, q = divmod(pos, we - ws)
            winners[k, ch, i, j] = (image, hs + r, ws + q, (hs, he, ws, we))
    return out, winners


def _pool_mistake(**flags):
    def fn(input, rois, output_size, spatial_scale=1.0):
        return _pool(input, rois, output_size, spatial_scale, **flags)[0]

    return fn


def _backward_mistake(route="argmax", **flags):
    def fn(grad_output, input, rois, output_size, spatial_scale=1.0):
        _, winners = _pool(input, rois, output_size, spatial_scale, **flags)
        grad = np.zeros_like(input, dtype=float)
        for (k, ch, i, j), (image, r, q, (hs, he, ws, we)) in winners.items():
            g = grad_output[k, ch, i, j]
            if route == "spread":  # average pooling's gradient
                grad[image, ch, hs:he, ws:we] += g / ((he - hs) * (we - ws))
            else:
                grad[image, ch, r, q] += g
        return grad

    return fn


BATCH = (
    "the batch index read as part of the box",
    "a RoI row is (batch_index, x1, y1, x2, y2): column 0 says which image of the batch to "
    "crop from (it is not a class label) and the box is columns 1 to 4",
)
SWAP = (
    "x and y swapped",
    "x1 and x2 are columns (the last axis of the map), y1 and y2 rows: pool input[b, c, y, x]",
)
TRUNC = (
    "truncating instead of rounding",
    "the scaled corners are rounded half away from zero (C's round: 2.5 -> 3), not cut with "
    "int() -- truncation moves every RoI up and left by up to one cell",
)
EVEN = (
    "rounding half to even",
    "np.round sends 2.5 to 2 (banker's rounding); torchvision uses C's round, half away from "
    "zero: 2.5 -> 3, -0.5 -> -1",
)
PLUS_ONE = (
    'the missing "+1"',
    "after rounding, x2 names the last cell *inside* the RoI, so the RoI is x2 - x1 + 1 cells "
    "wide (roi_pool is the one place where torchvision keeps the +1)",
)
NO_CLIP = (
    "bins not clipped to the map",
    "clip every bin's first and one-past-last cell to [0, H] and [0, W] after adding the RoI's "
    "offset; a bin that ends up empty gives 0",
)

BATTERY = Battery(
    lesson="05",
    title="lesson 05, RoI pooling",
    functions=[
        FunctionBattery(
            "roi_bins",
            _bins_reference,
            [
                Case("six RoIs on a 7 x 9 map, 3 x 3 bins", (ROIS, (3, 3), 1.0, 7, 9)),
                Case("2 x 4 bins", (ROIS, (2, 4), 1.0, 7, 9)),
                Case("spatial_scale 0.5 (a stride-2 map)", (SCALED, (2, 2), 0.5, 7, 9)),
            ],
            [
                Mistake(*BATCH, _bins_mistake(batch_as_class=True)),
                Mistake(*SWAP, _bins_mistake(swap=True)),
                Mistake(*TRUNC, _bins_mistake(rounding="trunc")),
                Mistake(*EVEN, _bins_mistake(rounding="even")),
                Mistake(*PLUS_ONE, _bins_mistake(plus_one=False)),
                Mistake(*NO_CLIP, _bins_mistake(clip=False)),
            ],
        ),
        FunctionBattery(
            "roi_pool",
            _pool_reference,
            [
                Case("six RoIs on two images, 3 x 3 bins", (MAPS, ROIS, (3, 3), 1.0)),
                Case("one bin per RoI", (MAPS, ROIS, (1, 1), 1.0)),
                Case("2 x 4 bins", (MAPS, ROIS, (2, 4), 1.0)),
                Case("spatial_scale 0.5", (MAPS, SCALED, (2, 2), 0.5)),
            ],
            [
                Mistake(*BATCH, _pool_mistake(batch_as_class=True)),
                Mistake(*SWAP, _pool_mistake(swap=True)),
                Mistake(*TRUNC, _pool_mistake(rounding="trunc")),
                Mistake(*EVEN, _pool_mistake(rounding="even")),
                Mistake(*PLUS_ONE, _pool_mistake(plus_one=False)),
            ],
        ),
        FunctionBattery(
            "roi_pool_backward",
            _backward_reference,
            [
                Case("six RoIs, 3 x 3 bins (a plateau of ties)", (GRAD, MAPS, ROIS, (3, 3), 1.0)),
                Case("spatial_scale 0.5", (GRAD_SCALED, MAPS, SCALED, (2, 2), 0.5)),
            ],
            [
                Mistake(
                    "the gradient spread over the bin",
                    "max pooling passes each gradient to the one element that won the max "
                    "(its argmax); dividing it over the bin is average pooling's gradient",
                    _backward_mistake(route="spread"),
                ),
                Mistake(
                    "the last of several tied maxima",
                    "on a tie torchvision keeps the first maximum in row-major order (it only "
                    "replaces the running max on a strictly larger value), so the gradient "
                    "goes there; np.argmax also returns the first",
                    _backward_mistake(tie="last"),
                ),
                Mistake(*BATCH, _backward_mistake(batch_as_class=True)),
                Mistake(*SWAP, _backward_mistake(swap=True)),
                Mistake(*TRUNC, _backward_mistake(rounding="trunc")),
            ],
        ),
    ],
)
