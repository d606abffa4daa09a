"""RoIAlign (Mask R-CNN, He et al., ICCV 2017) and its backward pass.

RoI pooling snaps a proposal to whole feature cells twice (its corners, then its bins): at
stride 16 that moves the box by up to 8 image pixels, harmless for a class score and ruinous
for a 28 x 28 mask. RoIAlign keeps every coordinate continuous: each bin is sampled at a
regular ``grid x grid`` set of points, every point is read by **bilinear interpolation** from
its four neighbouring cells, and the bin is the average of its points. torchvision 0.29.1,
reproduced here:

* the box is scaled to the map, ``start = x1 * spatial_scale - offset`` with ``offset = 0.5``
  when ``aligned`` (pixel centres sit at half-integers: the "half-pixel" fix of Detectron2) and
  0 otherwise; with ``aligned=False`` a box smaller than one cell is stretched to one cell;
* bin size ``roi_w / PW``; samples at ``start + pw * bin + (ix + 0.5) * bin / grid``;
* ``grid = sampling_ratio`` if positive, else adaptive: ``ceil(roi_w / PW)`` (per RoI);
* a sample outside ``[-1, H] x [-1, W]`` counts as 0; one in ``[-1, 0]`` reads the first
  cell; one past ``H - 1`` reads the last;
* the bin value is the sum over samples divided by ``max(grid_h * grid_w, 1)`` -- samples that
  fell outside still count in the denominator.

The backward pass spreads each output gradient back through the same bilinear weights
(divided by the same count): RoIAlign is a linear map ``S`` of the feature map, and its
gradient is ``S.T``. See ``_bilinear`` for how ``S`` is built and applied without a loop.

Deliberate differences from torchvision, both where it misbehaves: (1) invalid RoIs (batch
index outside ``[0, N)``, NaN or inf coordinates -- a segmentation fault in torchvision's CPU
kernel, issues #9272/#9273) give 0 and no gradient; (2) a sample outside the map contributes
nothing, where torchvision's forward multiplies the map's first pixel by 0, so that a NaN at
``(0, 0)`` poisons every bin with an outside sample (its backward does not).
"""

from __future__ import annotations

import math

from .._backend import csr_matmul, device, to_numpy
from .._validate import check_ints, check_number
from . import _bilinear as bl
from ._rois import as_rois, check_input, output_hw, roi_validity

__all__ = ["roi_align", "roi_align_backward", "roi_align_naive"]


def roi_align(
    input, boxes, output_size, spatial_scale: float = 1.0, sampling_ratio: int = -1, aligned=False
):
    """Bilinear RoI pooling (Mask R-CNN's RoIAlign) of every RoI into ``output_size`` bins.

    Parameters
    ----------
    input : array of shape (N, C, H, W)
        Feature maps, real floating point.
    boxes : array of shape (K, 5), or list of arrays of shape (L_i, 4)
        RoIs ``(batch_index, x1, y1, x2, y2)`` in image coordinates, same dtype as ``input``;
        a list holds one ``(L_i, 4)`` array per image.
    output_size : int or (int, int)
        ``(PH, PW)`` (7 x 7 for the box head, 14 x 14 for the mask head).
    spatial_scale : float
        Image -> feature-map factor (1/16 at stride 16).
    sampling_ratio : int
        Samples per bin along each axis; ``<= 0`` picks ``ceil(roi_size / output_size)`` per
        RoI (adaptive), as torchvision does.
    aligned : bool
        Shift the box by -0.5 cell so that sample points line up with pixel centres (use True
        for new code; False reproduces the original Mask R-CNN).

    Returns
    -------
    array of shape (K, C, PH, PW), input's dtype.

    Notes
    -----
    Mirrors ``torchvision.ops.roi_align`` (0.29.1): the same sample points, bit for bit, and
    the same weights; the sums run in another order, so float32 results agree to ~1e-6
    relative (float64 to ~1e-15), not bitwise. float16 follows torchvision's geometry in
    float16 and accumulates in float32 (torchvision accumulates in float16), so it agrees to a
    few float16 ulps. Differences by design: see the module notes (invalid RoIs give 0;
    samples outside the map read nothing). With adaptive sampling a NaN/inf anywhere in a
    channel of an image makes that channel NaN for every RoI of the image (the products run
    over whole rows; see ``_bilinear``). Device-pure.
    """
    xp, rois = as_rois(input, boxes)
    check_input(xp, input)
    plan = _Plan(xp, rois, input.shape, output_size, spatial_scale, sampling_ratio, aligned)
    n, c, h, w = input.shape
    if plan.cols is not None:
        out = csr_matmul(plan.cols, plan.weights, bl.channels_last(xp, input))  # (K*PH*PW, C)
        out = xp.reshape(out, (plan.k, plan.ph * plan.pw * c)) / plan.count[:, None]
        return xp.permute_dims(xp.reshape(out, (plan.k, plan.ph, plan.pw, c)), (0, 3, 1, 2))
    out = bl.dense_apply(xp, plan.ay, plan.ax, plan.batch, plan.ok, input)
    return out / plan.count[:, None, None, None]


def _bilinear_at(plane, h: int, w: int, y: float, x: float) -> float:
    """torchvision's ``bilinear_interpolate`` of one (H, W) plane (nested lists) at (y, x)."""
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return 0.0  # outside the map: nothing
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(y), int(x)
    if y0 >= h - 1:
        y0 = y1 = h - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= w - 1:
        x0 = x1 = w - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    hy, hx = 1.0 - ly, 1.0 - lx
    return hy * hx * plane[y0][x0] + hy * lx * plane[y0][x1] + ly * hx * plane[y1][x0] + ly * lx * plane[y1][x1]


def roi_align_naive(
    input, boxes, output_size, spatial_scale: float = 1.0, sampling_ratio: int = -1, aligned=False
):
    """The textbook RoIAlign: four nested loops (RoI, channel, bin, sample), one point at a time.

    The same arguments and result as :func:`roi_align` (which the tests check it against),
    written as the paper describes it: scale the box, cut it into ``PH x PW`` bins, read
    ``grid x grid`` points per bin by bilinear interpolation, average them. Slow (a Python loop
    per sample point: use it on small inputs) and kept as the definition the fast operator
    implements. Host island: one ``to_numpy`` in, Python floats, one array out on ``input``'s
    backend.
    """
    xp, rois = as_rois(input, boxes)
    check_input(xp, input)
    ph, pw = output_hw(output_size)
    scale = check_number("spatial_scale", spatial_scale, positive=True)
    sr = check_number("sampling_ratio", sampling_ratio, integer=True)
    n, c, h, w = input.shape
    maps = to_numpy(input).tolist()  # (N, C, H, W) nested lists of Python floats
    offset = 0.5 if aligned else 0.0
    out = []  # (K, C, PH, PW)
    for b, x1, y1, x2, y2 in to_numpy(rois).tolist():
        if not (0 <= b < n) or not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
            out.append([[[0.0] * pw for _ in range(ph)] for _ in range(c)])  # invalid RoI
            continue
        start_x, start_y = x1 * scale - offset, y1 * scale - offset
        roi_w, roi_h = x2 * scale - offset - start_x, y2 * scale - offset - start_y
        if not aligned:  # the original Mask R-CNN stretched tiny boxes to one cell
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_w, bin_h = roi_w / pw, roi_h / ph
        grid_h = sr if sr > 0 else math.ceil(roi_h / ph)
        grid_w = sr if sr > 0 else math.ceil(roi_w / pw)
        count = max(grid_h * grid_w, 1)
        planes = []
        for plane in maps[int(b)]:
            bins = []
            for i in range(ph):
                row = []
                for j in range(pw):
                    total = 0.0
                    for iy in range(grid_h):
                        y = start_y + i * bin_h + (iy + 0.5) * bin_h / grid_h
                        for ix in range(grid_w):
                            x = start_x + j * bin_w + (ix + 0.5) * bin_w / grid_w
                            total += _bilinear_at(plane, h, w, y, x)
                    row.append(total / count)
                bins.append(row)
            planes.append(bins)
        out.append(planes)
    result = xp.asarray(out, dtype=xp.float64, device=device(input)) if out else xp.zeros(
        (0, c, ph, pw), dtype=xp.float64, device=device(input)
    )
    return xp.astype(result, input.dtype)


def roi_align_backward(
    grad_output,
    boxes,
    input_shape,
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned=False,
):
    """Gradient of :func:`roi_align` with respect to its input.

    Each output gradient, divided by the bin's sample count, is spread over the four cells of
    every sample with the sample's bilinear weights -- the transpose of the forward map.

    Parameters
    ----------
    grad_output : array of shape (K, C, PH, PW)
    boxes : array of shape (K, 5), or list of arrays of shape (L_i, 4)
        The RoIs of the forward pass; same dtype as ``grad_output``.
    input_shape : (N, C, H, W)
    spatial_scale, sampling_ratio, aligned
        As in the forward pass; ``output_size`` is read from ``grad_output``.

    Returns
    -------
    array of shape (N, C, H, W), grad_output's dtype. The boxes get no gradient (as in
    torchvision, whose ``boxes.grad`` stays None).

    Notes
    -----
    Mirrors torchvision's ``_roi_align_backward``; agreement as for the forward pass. Where
    several samples, bins or RoIs read the same cell their contributions add up. Device-pure.
    """
    shape = check_ints("input_shape", input_shape, 4, text="(N, C, H, W)")
    if grad_output.ndim != 4:
        raise ValueError(
            f"grad_output must have shape (K, C, PH, PW), got {tuple(grad_output.shape)}"
        )
    k, c, ph, pw = grad_output.shape
    if c != shape[1]:
        raise ValueError(
            f"grad_output must have {shape[1]} channels like input_shape, got {tuple(grad_output.shape)}"
        )
    xp, rois = as_rois(grad_output, boxes)
    if not xp.isdtype(grad_output.dtype, "real floating"):
        raise TypeError(
            f"grad_output must have a real floating-point dtype, got {grad_output.dtype}"
        )
    if rois.shape[0] != k:
        raise ValueError(f"grad_output must have one row per RoI ({rois.shape[0]}), got {k}")
    plan = _Plan(xp, rois, shape, (ph, pw), spatial_scale, sampling_ratio, aligned)
    n, _, h, w = shape
    g = grad_output / plan.count[:, None, None, None]
    if plan.cols is not None:
        rows = xp.reshape(xp.permute_dims(g, (0, 2, 3, 1)), (k * ph * pw, c))
        grad = csr_matmul(plan.cols, plan.weights, rows, transpose=True, n_cols=n * h * w + 1)
        return xp.permute_dims(xp.reshape(grad[: n * h * w, :], (n, h, w, c)), (0, 3, 1, 2))
    return bl.dense_apply_t(xp, plan.ay, plan.ax, plan.batch, plan.ok, g, shape)


# ----------------------------------------------------------------------------- the plan






class _Plan:
    """Everything the forward and backward passes share: the RoIs, their geometry, weights."""

    def __init__(self, xp, rois, shape, output_size, spatial_scale, sampling_ratio, aligned):
        scale = check_number("spatial_scale", spatial_scale, positive=True)
        self.ph, self.pw = output_hw(output_size)
        sr = check_number("sampling_ratio", sampling_ratio, integer=True)
        if not isinstance(aligned, bool):
            raise TypeError(f"aligned must be a bool, got {type(aligned).__name__}")
        n, _, h, w = shape
        self.k = rois.shape[0]
        self.batch, self.ok = roi_validity(xp, rois, n)
        geo = dict(aligned=aligned, clamp=not aligned, sampling_ratio=sr)
        sy, by, gy = bl.geometry(xp, rois, scale, self.ph, 2, **geo)
        sx, bx, gx = bl.geometry(xp, rois, scale, self.pw, 1, **geo)
        count = xp.clip(gy * gx, min=1)  # samples per bin; outside ones count too
        self.count = xp.astype(count, rois.dtype)
        self.cols = self.weights = self.ay = self.ax = None
        if sr > 0:
            ys = bl.grid_samples(xp, sy, by, self.ph, sr, h)
            xs = bl.grid_samples(xp, sx, bx, self.pw, sr, w)
            self.cols, self.weights, _ = bl.sparse_operator(
                xp, ys, xs, self.batch, self.ok, (n, h, w)
            )
        else:
            self.ay = bl.adaptive_weights(xp, sy, by, gy, self.ph, h)  # (K, PH, H)
            self.ax = bl.adaptive_weights(xp, sx, bx, gx, self.pw, w)  # (K, PW, W)
