"""A learner's correct solution to lessons/07_roi_align.py: NumPy, loops over RoIs and bins.

It does not import minivision: the checker must accept an independent, correct implementation.
"""

import math

import numpy as np


def _weights(plane_shape, y, x):
    """Cells and bilinear weights of the points (y, x), and which points count."""
    h, w = plane_shape
    y, x = np.asarray(y, dtype=float), np.asarray(x, dtype=float)
    ok = (y >= -1) & (y <= h) & (x >= -1) & (x <= w)
    y, x = np.where(ok, np.maximum(y, 0), 0), np.where(ok, np.maximum(x, 0), 0)
    y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
    y_end, x_end = y0 >= h - 1, x0 >= w - 1
    y0, x0 = np.where(y_end, h - 1, y0), np.where(x_end, w - 1, x0)
    y1, x1 = np.where(y_end, h - 1, y0 + 1), np.where(x_end, w - 1, x0 + 1)
    ly, lx = np.where(y_end, 0.0, y - y0), np.where(x_end, 0.0, x - x0)
    hy, hx = 1 - ly, 1 - lx
    cells = [(y0, x0, hy * hx), (y0, x1, hy * lx), (y1, x0, ly * hx), (y1, x1, ly * lx)]
    return cells, ok


def bilinear_interpolate(plane, y, x):
    cells, ok = _weights(plane.shape, y, x)
    value = sum(wt * plane[r, c] for r, c, wt in cells)
    return np.where(ok, value, 0.0)


def _bin_points(roi, output_size, spatial_scale, sampling_ratio, aligned):
    """Per bin: (i, j, ys, xs, count) with the bin's sample coordinates."""
    ph, pw = output_size
    off = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (v * spatial_scale - off for v in roi[1:])
    rw, rh = x2 - x1, y2 - y1
    if not aligned:
        rw, rh = max(rw, 1.0), max(rh, 1.0)
    gh = sampling_ratio if sampling_ratio > 0 else math.ceil(rh / ph)
    gw = sampling_ratio if sampling_ratio > 0 else math.ceil(rw / pw)
    if gh <= 0 or gw <= 0:
        return
    bh, bw = rh / ph, rw / pw
    for i in range(ph):
        for j in range(pw):
            ys = y1 + i * bh + (np.arange(gh) + 0.5) * bh / gh
            xs = x1 + j * bw + (np.arange(gw) + 0.5) * bw / gw
            yy, xx = np.meshgrid(ys, xs, indexing="ij")
            yield i, j, yy, xx, gh * gw


def roi_align(input, rois, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    out = np.zeros((len(rois), input.shape[1], *output_size))
    for k, roi in enumerate(rois):
        b = int(roi[0])
        for i, j, yy, xx, count in _bin_points(
            roi, output_size, spatial_scale, sampling_ratio, aligned
        ):
            for ch in range(input.shape[1]):
                out[k, ch, i, j] = bilinear_interpolate(input[b, ch], yy, xx).sum() / count
    return out


def roi_align_backward(
    grad_output, rois, input_shape, spatial_scale=1.0, sampling_ratio=-1, aligned=False
):
    grad = np.zeros(input_shape)
    output_size = grad_output.shape[2:]
    for k, roi in enumerate(rois):
        b = int(roi[0])
        for i, j, yy, xx, count in _bin_points(
            roi, output_size, spatial_scale, sampling_ratio, aligned
        ):
            cells, ok = _weights(input_shape[2:], yy, xx)
            for ch in range(input_shape[1]):
                g = grad_output[k, ch, i, j] / count
                for r, c, wt in cells:
                    np.add.at(grad[b, ch], (r[ok], c[ok]), g * wt[ok])
    return grad


def fpn_level(boxes, k_min, k_max):
    side = np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    with np.errstate(divide="ignore"):
        k = np.floor(4 + np.log2(side / 224) + 1e-6)
    return np.clip(k, k_min, k_max).astype(np.int64) - k_min
