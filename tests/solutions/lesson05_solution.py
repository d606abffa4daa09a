"""A learner's correct solution to lessons/05_roi_pool.py: plain NumPy loops.

It does not import minivision: the checker must accept an independent, correct implementation.
"""

import math

import numpy as np


def _round(v):
    return int(math.copysign(math.floor(abs(v) + 0.5), v))  # C's round: half away from zero


def roi_bins(rois, output_size, spatial_scale, height, width):
    ph, pw = output_size
    out = np.zeros((len(rois), ph, pw, 4), dtype=np.int64)
    for k, (_, x1, y1, x2, y2) in enumerate(rois):
        x1, y1, x2, y2 = (_round(v * spatial_scale) for v in (x1, y1, x2, y2))
        roi_w, roi_h = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
        for i in range(ph):
            for j in range(pw):
                hs = min(max(math.floor(i * roi_h / ph) + y1, 0), height)
                he = min(max(math.ceil((i + 1) * roi_h / ph) + y1, 0), height)
                ws = min(max(math.floor(j * roi_w / pw) + x1, 0), width)
                we = min(max(math.ceil((j + 1) * roi_w / pw) + x1, 0), width)
                out[k, i, j] = hs, he, ws, we
    return out


def _argmax_windows(input, rois, output_size, spatial_scale):
    n, c, h, w = input.shape
    bins = roi_bins(rois, output_size, spatial_scale, h, w)
    for k, i, j in np.ndindex(bins.shape[:3]):
        hs, he, ws, we = bins[k, i, j]
        if he <= hs or we <= ws:
            continue
        b = int(rois[k, 0])
        for ch in range(c):
            window = input[b, ch, hs:he, ws:we]
            r, q = np.unravel_index(np.argmax(window), window.shape)  # first max, row-major
            yield k, ch, i, j, b, hs + r, ws + q


def roi_pool(input, rois, output_size, spatial_scale=1.0):
    out = np.zeros((len(rois), input.shape[1], *output_size))
    for k, ch, i, j, b, r, q in _argmax_windows(input, rois, output_size, spatial_scale):
        out[k, ch, i, j] = input[b, ch, r, q]
    return out


def roi_pool_backward(grad_output, input, rois, output_size, spatial_scale=1.0):
    grad = np.zeros(input.shape)
    for k, ch, i, j, b, r, q in _argmax_windows(input, rois, output_size, spatial_scale):
        grad[b, ch, r, q] += grad_output[k, ch, i, j]
    return grad
