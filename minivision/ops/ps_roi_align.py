"""Position-sensitive RoIAlign (R-FCN, Dai et al., NeurIPS 2016, with RoIAlign's sampling).

R-FCN makes the last convolution produce ``PH * PW`` groups of score maps, one group per bin
position ("top-left part of an object", "centre", ...). Bin ``(ph, pw)`` of output channel
``c`` is pooled from input channel ``(c * PH + ph) * PW + pw`` only, so the pooling itself
encodes where in the box a feature was seen, and the heavy computation stays shared across
RoIs. torchvision's ``ps_roi_align`` (0.29.1), reproduced here:

* ``C`` must be divisible by ``PH * PW``; the output has ``C / (PH * PW)`` channels;
* the geometry is ``roi_align``'s with ``aligned=True`` always (the box is shifted by half a
  cell) and no minimum size;
* the bin value is the sum of its samples divided by ``grid_h * grid_w`` *without* the
  ``max(..., 1)`` of ``roi_align``: a zero-size RoI with adaptive sampling has no samples and
  gives ``0 / 0 = NaN`` (torchvision does the same; we keep it, it flags a degenerate box).

Invalid RoIs (batch index outside ``[0, N)``, NaN/inf coordinates) give 0 and no gradient.
"""

from __future__ import annotations

from .._backend import csr_matmul, device
from .._validate import check_ints, check_number
from . import _bilinear as bl
from ._rois import as_rois, check_input, output_hw, roi_validity

__all__ = ["ps_roi_align", "ps_roi_align_backward"]


def ps_roi_align(input, boxes, output_size, spatial_scale: float = 1.0, sampling_ratio: int = -1):
    """Position-sensitive RoIAlign: bin ``(ph, pw)`` reads its own group of channels.

    Parameters
    ----------
    input : array of shape (N, C, H, W)
        ``C`` divisible by ``PH * PW``; channel ``(c * PH + ph) * PW + pw`` feeds bin
        ``(ph, pw)`` of output channel ``c``.
    boxes : array of shape (K, 5), or list of arrays of shape (L_i, 4)
    output_size : int or (int, int)
    spatial_scale : float
    sampling_ratio : int
        As in :func:`roi_align` (``<= 0``: adaptive).

    Returns
    -------
    array of shape (K, C / (PH * PW), PH, PW), input's dtype.

    Notes
    -----
    Mirrors ``torchvision.ops.ps_roi_align`` (0.29.1); agreement as for :func:`roi_align`
    (same sample points and weights, sums in another order). Device-pure.
    """
    xp, rois = as_rois(input, boxes)
    check_input(xp, input)
    plan = _PsPlan(xp, rois, input.shape, output_size, spatial_scale, sampling_ratio)
    n, c, h, w = input.shape
    k, ph, pw, co = plan.k, plan.ph, plan.pw, plan.c_out
    if plan.cols is not None:
        out = csr_matmul(plan.cols, plan.weights, _group_rows(xp, input, ph, pw))  # (K*PH*PW, Co)
        out = xp.reshape(out, (k, ph * pw * co)) / plan.count[:, None]
        return xp.permute_dims(xp.reshape(out, (k, ph, pw, co)), (0, 3, 1, 2))
    # Adaptive: contract rows bin by bin, each bin position with its own channel group; one
    # batch of products per image, like roi_align's dense path.
    work = bl.work_dtype(xp, input.dtype)
    ayp = xp.permute_dims(xp.astype(plan.ay, work), (1, 0, 2))  # (PH, K, H)
    ax = xp.astype(plan.ax, work)[:, :, :, None]  # (K, PW, W, 1)
    out = xp.zeros((k, co, ph, pw), dtype=work, device=device(input))
    for image in range(n):
        groups = xp.reshape(xp.astype(input[image, ...], work), (co, ph, pw, h, w))
        groups = xp.reshape(xp.permute_dims(groups, (1, 3, 2, 0, 4)), (ph, h, pw * co * w))
        t = xp.reshape(ayp @ groups, (ph, k, pw, co, w))  # rows contracted
        t = xp.reshape(xp.permute_dims(t, (1, 2, 0, 3, 4)), (k, pw, ph * co, w))
        pooled = xp.reshape(t @ ax, (k, pw, ph, co))  # columns contracted
        mine = ((plan.batch == image) & plan.ok)[:, None, None, None]
        out = xp.where(mine, xp.permute_dims(pooled, (0, 3, 2, 1)), out)
    return xp.astype(out, input.dtype) / plan.count[:, None, None, None]


def ps_roi_align_backward(
    grad_output, boxes, input_shape, spatial_scale: float = 1.0, sampling_ratio: int = -1
):
    """Gradient of :func:`ps_roi_align` with respect to its input (the transposed map).

    Parameters
    ----------
    grad_output : array of shape (K, C / (PH * PW), PH, PW)
    boxes : array of shape (K, 5), or list of arrays of shape (L_i, 4)
    input_shape : (N, C, H, W)
    spatial_scale, sampling_ratio
        As in the forward pass.

    Returns
    -------
    array of shape (N, C, H, W). Bins without samples (count 0) send nothing back, as in
    torchvision (its loop over samples is empty). Device-pure.
    """
    shape = check_ints("input_shape", input_shape, 4, text="(N, C, H, W)")
    if grad_output.ndim != 4:
        raise ValueError(
            f"grad_output must have shape (K, C_out, PH, PW), got {tuple(grad_output.shape)}"
        )
    k, co, ph, pw = grad_output.shape
    xp, rois = as_rois(grad_output, boxes)
    if not xp.isdtype(grad_output.dtype, "real floating"):
        raise TypeError(
            f"grad_output must have a real floating-point dtype, got {grad_output.dtype}"
        )
    if rois.shape[0] != k or co * ph * pw != shape[1]:
        raise ValueError(
            f"grad_output must have shape ({rois.shape[0]}, {shape[1] // max(ph * pw, 1)}, PH, PW) "
            f"for {rois.shape[0]} RoIs and input_shape {shape}, got {tuple(grad_output.shape)}"
        )
    plan = _PsPlan(xp, rois, shape, (ph, pw), spatial_scale, sampling_ratio)
    n, c, h, w = shape
    count = xp.where(plan.count != 0, plan.count, xp.ones_like(plan.count))
    g = grad_output / count[:, None, None, None]
    if plan.cols is not None:
        rows = xp.reshape(xp.permute_dims(g, (0, 2, 3, 1)), (k * ph * pw, co))
        total = ph * pw * n * h * w
        grad = csr_matmul(plan.cols, plan.weights, rows, transpose=True, n_cols=total + 1)
        grad = xp.reshape(grad[:total, :], (ph, pw, n, h, w, co))
        return xp.reshape(xp.permute_dims(grad, (2, 5, 0, 1, 3, 4)), (n, c, h, w))
    work = bl.work_dtype(xp, g.dtype)
    g = xp.astype(g, work)
    ayt = xp.permute_dims(xp.astype(plan.ay, work), (1, 2, 0))  # (PH, H, K)
    ax = xp.astype(plan.ax, work)[:, :, None, :]  # (K, PW, 1, W)
    images = []
    for image in range(n):
        mine = ((plan.batch == image) & plan.ok)[:, None, None, None]
        gi = xp.where(mine, g, xp.zeros_like(g))  # other images' RoIs send nothing
        # (K, Co, PH, PW) -> (K, PW, PH * Co, 1), spread over columns: (K, PW, PH * Co, W)
        t = xp.reshape(xp.permute_dims(gi, (0, 3, 2, 1)), (k, pw, ph * co, 1)) @ ax
        t = xp.reshape(t, (k, pw, ph, co, w))
        t = xp.reshape(xp.permute_dims(t, (2, 0, 1, 3, 4)), (ph, k, pw * co * w))
        rows = xp.reshape(ayt @ t, (ph, h, pw, co, w))  # rows spread
        images.append(xp.reshape(xp.permute_dims(rows, (3, 0, 2, 1, 4)), (c, h, w)))
    return xp.astype(xp.stack(images, axis=0), grad_output.dtype)


def _group_rows(xp, input, ph, pw):
    """(N, C, H, W) -> (PH * PW * N * H * W + 1, C_out): bin position's channels, per pixel."""
    n, c, h, w = input.shape
    groups = xp.reshape(input, (n, c // (ph * pw), ph, pw, h, w))
    rows = xp.reshape(
        xp.permute_dims(groups, (2, 3, 0, 4, 5, 1)), (ph * pw * n * h * w, c // (ph * pw))
    )
    zero = xp.zeros((1, rows.shape[1]), dtype=input.dtype, device=device(input))
    return xp.concat((rows, zero), axis=0)


class _PsPlan:
    """Geometry and weights of a position-sensitive RoIAlign call."""

    def __init__(self, xp, rois, shape, output_size, spatial_scale, sampling_ratio):
        scale = check_number("spatial_scale", spatial_scale, positive=True)
        self.ph, self.pw = output_hw(output_size)
        sr = check_number("sampling_ratio", sampling_ratio, integer=True)
        n, c, h, w = shape
        if c % (self.ph * self.pw):
            raise ValueError(
                f"input must have a multiple of PH * PW = {self.ph * self.pw} channels, got {c}"
            )
        self.c_out = c // (self.ph * self.pw)
        self.k = rois.shape[0]
        self.batch, self.ok = roi_validity(xp, rois, n)
        geo = dict(aligned=True, clamp=False, sampling_ratio=sr)
        sy, by, gy = bl.geometry(xp, rois, scale, self.ph, 2, **geo)
        sx, bx, gx = bl.geometry(xp, rois, scale, self.pw, 1, **geo)
        self.count = xp.astype(gy * gx, rois.dtype)  # no max(..., 1): 0 samples -> 0 / 0
        self.cols = self.weights = self.ay = self.ax = None
        if sr > 0:
            ys = bl.grid_samples(xp, sy, by, self.ph, sr, h)
            xs = bl.grid_samples(xp, sx, bx, self.pw, sr, w)
            dev = device(rois)
            planes = (
                xp.arange(self.ph, dtype=xp.int64, device=dev)[:, None] * self.pw
                + xp.arange(self.pw, dtype=xp.int64, device=dev)[None, :]
            )
            planes = xp.broadcast_to(planes[None, :, :], (self.k, self.ph, self.pw))
            self.cols, self.weights, _ = bl.sparse_operator(
                xp, ys, xs, self.batch, self.ok, (n, h, w), planes=planes
            )
        else:
            self.ay = bl.adaptive_weights(xp, sy, by, gy, self.ph, h)
            self.ax = bl.adaptive_weights(xp, sx, bx, gx, self.pw, w)
