"""Resizing feature maps: ``interpolate`` (nearest and bilinear) and its backward pass.

Both modes are *separable*: each output row reads one or two input rows, each output column one
or two input columns, so the whole resize is ``out = A_h @ x @ A_w^T`` for two small matrices
``A_h`` of shape ``(Ho, H)`` and ``A_w`` of shape ``(Wo, W)``, and the backward pass is the
transpose, ``grad_x = A_h^T @ grad_out @ A_w`` -- every input cell collects the gradients of the
outputs that read it, weighted as they read it. The forward pass gathers instead of multiplying
(an infinity in one cell stays in its neighbourhood).

Where each output index ``d`` reads (torch 2.14.1's rules, which these functions mirror)
-----------------------------------------------------------------------------------------
``scale`` is ``1 / scale_factor`` when ``scale_factor`` is given (and ``recompute_scale_factor``
is not True), else ``in_size / out_size``.

* ``nearest``: source ``min(floor(d * scale), in_size - 1)``, computed in float32 as torch's
  ``nearest_idx`` (so e.g. ``in = 3, out = 7`` reads ``0 0 0 1 1 2 2``); like torch, an output
  of exactly the input size copies it and one of twice the size reads ``d // 2``, whatever
  ``scale_factor`` says (``2 -> 4`` with ``scale_factor=2.25`` reads ``0 0 1 1``).
* ``bilinear``, ``align_corners=True``: source ``d * (in - 1) / (out - 1)`` (0 if ``out = 1``):
  the corner pixels' *centres* line up.
* ``bilinear``, ``align_corners=False`` (default): source ``(d + 0.5) * scale - 0.5``, clamped at
  0: the corner pixels' *edges* line up (half-pixel centres). The source ``s`` is split into
  ``i0 = floor(s)``, ``i1 = min(i0 + 1, in - 1)`` and weights ``1 - (s - i0)``, ``s - i0``.
  An axis whose size does not change is copied (torch's shortcut: ``scale_factor=1.25`` on
  ``H = 3`` gives ``floor(3.75) = 3`` rows, the input's own).

Input ``(N, C, H, W)``. **Device-pure**: the index and weight vectors are built from shapes
with ``arange``, never read back.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

from ..._backend import device, namespace_of
from ..._validate import check_grad_output

__all__ = ["interpolate", "interpolate_backward"]

_MODES = ("nearest", "bilinear")


class _Axis(NamedTuple):
    """How one axis is resampled: output ``d`` = ``w0[d] * x[i0[d]] + w1[d] * x[i1[d]]``."""

    i0: object  # int64 (out,)
    i1: object  # int64 (out,), or None for nearest
    w1: object  # (out,) weight of i1, or None for nearest


def _sizes(x, size, scale_factor, recompute_scale_factor):
    """Output (Ho, Wo) and the per-axis ``scale_factor`` torch's kernels receive (or None)."""
    if (size is None) == (scale_factor is None):
        raise ValueError("either size or scale_factor should be defined, not both or neither")
    hw = tuple(x.shape[2:])
    if size is not None:
        sizes = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        if len(sizes) != 2 or not all(isinstance(s, numbers.Integral) and s > 0 for s in sizes):
            raise ValueError(f"size must be a positive int or a pair of them, got {size!r}")
        return tuple(int(s) for s in sizes), (None, None)
    factors = (
        tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * 2
    )
    if len(factors) != 2 or not all(
        isinstance(f, numbers.Real) and not isinstance(f, bool) and f > 0 for f in factors
    ):
        raise ValueError(f"scale_factor must be a positive number or a pair, got {scale_factor!r}")
    out = tuple(int(math.floor(n * float(f))) for n, f in zip(hw, factors))
    if min(out) < 1:
        raise ValueError(f"input of size {hw} with scale_factor {scale_factor} gives {out}")
    if recompute_scale_factor:
        return out, (None, None)
    return out, tuple(float(f) for f in factors)


def _nearest_axis(xp, dev, n_in, n_out, factor):
    d_int = xp.arange(n_out, dtype=xp.int64, device=dev)
    if n_out == n_in:  # torch's shortcuts, whatever the scale_factor says
        return _Axis(d_int, None, None)
    if n_out == 2 * n_in:
        return _Axis(d_int // 2, None, None)
    f32 = xp.float32
    if factor is not None:  # torch: (float)(1.0 / scale_factor)
        scale = xp.asarray(1.0 / factor, dtype=f32, device=dev)
    else:  # torch: (float)input_size / output_size, a float32 division
        scale = xp.asarray(n_in, dtype=f32, device=dev) / xp.asarray(n_out, dtype=f32, device=dev)
    src = xp.astype(xp.floor(xp.astype(d_int, f32) * scale), xp.int64)
    return _Axis(xp.clip(src, max=n_in - 1), None, None)


def _linear_axis(xp, dev, dtype, n_in, n_out, factor, align_corners):
    if n_out == n_in:  # torch copies an axis that keeps its size, whatever scale_factor says
        return _Axis(xp.arange(n_out, dtype=xp.int64, device=dev), None, None)
    d = xp.astype(xp.arange(n_out, dtype=xp.int64, device=dev), dtype)
    if align_corners:
        scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        src = d * scale
    else:
        scale = 1.0 / factor if factor is not None else n_in / n_out
        src = xp.clip((d + 0.5) * scale - 0.5, min=0.0)
    i0 = xp.clip(xp.astype(xp.floor(src), xp.int64), max=n_in - 1)
    w1 = src - xp.astype(i0, dtype)
    i1 = xp.clip(i0 + 1, max=n_in - 1)
    return _Axis(i0, i1, w1)


def _plan(xp, x, size, scale_factor, mode, align_corners, recompute_scale_factor):
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    if x.ndim != 4:
        raise ValueError(f"input must have shape (N, C, H, W), got {tuple(x.shape)}")
    if mode == "nearest" and align_corners is not None:
        raise ValueError("align_corners option can only be set with the bilinear mode")
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(f"input must have a real floating-point dtype, got {x.dtype}")
    out, factors = _sizes(x, size, scale_factor, recompute_scale_factor)
    dev = device(x)
    hw = tuple(x.shape[2:])
    if mode == "nearest":
        axes = [_nearest_axis(xp, dev, n, o, f) for n, o, f in zip(hw, out, factors)]
    else:
        acc = x.dtype if x.dtype == xp.float64 else xp.float32
        axes = [
            _linear_axis(xp, dev, acc, n, o, f, bool(align_corners))
            for n, o, f in zip(hw, out, factors)
        ]
    return out, axes


def _resample(xp, x, ax: _Axis, axis: int):
    """Apply one axis's plan to ``x`` along ``axis`` (2 = rows, 3 = columns), by gathers."""
    first = xp.take(x, ax.i0, axis=axis)
    if ax.i1 is None:
        return first
    shape = [1, 1, 1, 1]
    shape[axis] = ax.w1.shape[0]
    w1 = xp.reshape(ax.w1, tuple(shape))
    return first * (1.0 - w1) + xp.take(x, ax.i1, axis=axis) * w1


def _matrix(xp, ax: _Axis, n_in, dtype):
    """The ``(out, in)`` matrix of one axis: row ``d`` holds its one or two weights."""
    cols = xp.arange(n_in, dtype=xp.int64, device=device(ax.i0))[None, :]
    hit0 = xp.astype(ax.i0[:, None] == cols, dtype)
    if ax.i1 is None:
        return hit0
    w1 = xp.astype(ax.w1, dtype)[:, None]
    return hit0 * (1.0 - w1) + xp.astype(ax.i1[:, None] == cols, dtype) * w1


def interpolate(
    input,
    size=None,
    scale_factor=None,
    mode="nearest",
    align_corners=None,
    recompute_scale_factor=None,
):
    """Resize ``(N, C, H, W)`` feature maps, as ``torch.nn.functional.interpolate``.

    Parameters
    ----------
    input : array of shape (N, C, H, W), real floating dtype
    size : int or (int, int), optional
        Output ``(Ho, Wo)``.
    scale_factor : float or (float, float), optional
        Output ``floor(H * scale_factor)``; exactly one of ``size`` and ``scale_factor``.
    mode : "nearest" or "bilinear"
    align_corners : bool, optional
        Bilinear only (None means False); see the module docstring.
    recompute_scale_factor : bool, optional
        With ``scale_factor``: True uses ``in / out`` as the scale instead of ``1 / scale_factor``.

    Returns
    -------
    array of shape (N, C, Ho, Wo), ``input``'s dtype

    Notes
    -----
    Rows first, then columns (the result is the same either way up to rounding). float32 is
    computed in float32, as torch's CPU kernel, so results agree to float32 rounding; float64
    to ~1e-16. Device-pure.
    """
    xp = namespace_of(input=input)
    _, (ah, aw) = _plan(xp, input, size, scale_factor, mode, align_corners, recompute_scale_factor)
    x = input
    if mode == "bilinear" and input.dtype != xp.float64:
        x = xp.astype(input, xp.float32, copy=False)  # float16 / bfloat16 computed in float32
    out = _resample(xp, _resample(xp, x, ah, 2), aw, 3)  # (N, C, Ho, W) -> (N, C, Ho, Wo)
    return xp.astype(out, input.dtype, copy=False)


def interpolate_backward(
    grad_output,
    input,
    size=None,
    scale_factor=None,
    mode="nearest",
    align_corners=None,
    recompute_scale_factor=None,
):
    """Gradient of :func:`interpolate` with respect to its input.

    Parameters
    ----------
    grad_output : array of shape (N, C, Ho, Wo)
    input, size, scale_factor, mode, align_corners, recompute_scale_factor
        As given to :func:`interpolate` (only ``input``'s shape and dtype are read).

    Returns
    -------
    array of shape (N, C, H, W)
        ``A_h^T @ grad_output @ A_w``: each input cell receives the sum of the gradients of
        the outputs that read it, times the weight they read it with (nearest: weight 1).

    Notes
    -----
    What torch autograd computes for ``F.interpolate``. Device-pure.
    """
    xp = namespace_of(grad_output=grad_output, input=input)
    out, (ah, aw) = _plan(
        xp, input, size, scale_factor, mode, align_corners, recompute_scale_factor
    )
    n, c, h, w = input.shape
    check_grad_output(grad_output, (n, c, *out), input)
    acc = input.dtype if input.dtype == xp.float64 else xp.float32
    mh = _matrix(xp, ah, h, acc)  # (Ho, H)
    mw = _matrix(xp, aw, w, acc)  # (Wo, W)
    g = xp.astype(grad_output, acc, copy=False)
    gx = xp.matmul(xp.matrix_transpose(mh), xp.matmul(g, mw))  # (H, Ho) @ (N, C, Ho, W)
    return xp.astype(gx, input.dtype, copy=False)
