"""Layers that resample feature maps: pooling, unpooling and ``Upsample``.

Each wraps a functional op of :mod:`minivision.nn.functional` and its
backward pass; none has parameters. Constructor arguments are torch's. ``MaxPool2d`` always
keeps the argmax indices (its backward pass routes each window's gradient to its winner) and
returns them too when ``return_indices=True``, ready for ``MaxUnpool2d`` (SegNet).
**Device-pure.**
"""

from __future__ import annotations

from .._backend import array_namespace
from ._layer_checks import check_choice
from .functional.adaptive_pool import adaptive_avg_pool2d, adaptive_avg_pool2d_backward
from .functional.interpolate import interpolate, interpolate_backward
from .functional.pool import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from .functional.tiled_pool import (
    tile_winner_indices,
    tiled_max_pool2d,
    tiled_max_pool2d_backward,
)
from .functional.unpool import max_unpool2d, max_unpool2d_backward
from .module import Module

__all__ = ["MaxPool2d", "MaxUnpool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Upsample"]


class MaxPool2d(Module):
    """Maximum over each window, as ``torch.nn.MaxPool2d`` (see :func:`minivision.nn.functional.max_pool2d`).

    Parameters
    ----------
    kernel_size, stride, padding, dilation : int or (int, int)
        ``stride`` defaults to ``kernel_size``.
    return_indices : bool
        Return ``(output, indices)``; ``backward`` takes the gradient of ``output`` only.
    ceil_mode : bool
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):  # fmt: skip
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.return_indices, self.ceil_mode = dilation, return_indices, ceil_mode

    def _args(self):
        return self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode

    def _tile(self, x):
        """The tile when this pooling is a tiling (stride = kernel, no padding or dilation) of a
        4-D float input; else None and the general :func:`~minivision.pool.max_pool2d` runs."""
        as_pair = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v, v)  # noqa: E731
        kernel = as_pair(self.kernel_size)
        stride = kernel if self.stride is None else as_pair(self.stride)
        if (
            not hasattr(x, "ndim")
            or x.ndim != 4
            or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in kernel)
            or stride != kernel
            or as_pair(self.padding) != (0, 0)
            or as_pair(self.dilation) != (1, 1)
            or x.shape[2] < kernel[0]
            or x.shape[3] < kernel[1]
            or (self.ceil_mode and (x.shape[2] % kernel[0] or x.shape[3] % kernel[1]))
            or not array_namespace(x).isdtype(x.dtype, "real floating")
        ):
            return None
        return kernel

    def forward(self, x):
        tile = self._tile(x)
        if tile is not None:  # the common MaxPool2d(2): a faster path, same results
            out, winner = tiled_max_pool2d(x, tile)
            self._cache = {"x": x, "tile": tile, "winner": winner}
            if not self.return_indices:
                return out
            return out, tile_winner_indices(winner, tile, x.shape[3])
        out, indices = max_pool2d(x, *self._args(), return_indices=True)
        self._cache = {"x": x, "tile": None, "indices": indices}
        return (out, indices) if self.return_indices else out

    def backward(self, grad_output):
        x, tile = self._cached("x", "tile")
        if tile is not None:
            (winner,) = self._cached("winner")
            return tiled_max_pool2d_backward(grad_output, winner, tile, tuple(x.shape))
        (indices,) = self._cached("indices")
        return max_pool2d_backward(grad_output, x, *self._args(), indices=indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")  # fmt: skip


class MaxUnpool2d(Module):
    """Write pooled values back at their indices, as ``torch.nn.MaxUnpool2d``.

    ``forward(input, indices, output_size=None)``; ``backward(grad_output)`` returns the
    gradient of ``input`` (indices have none). See :func:`minivision.nn.functional.max_unpool2d`.
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x, indices, output_size=None):
        args = (self.kernel_size, self.stride, self.padding, output_size)
        self._cache = {"x": x, "indices": indices, "args": args}
        return max_unpool2d(x, indices, *args)

    def backward(self, grad_output):
        x, indices, args = self._cached("x", "indices", "args")
        return max_unpool2d_backward(grad_output, x, indices, *args)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(Module):
    """Mean over each window, as ``torch.nn.AvgPool2d`` (see :func:`minivision.nn.functional.avg_pool2d`)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):  # fmt: skip
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad
        self.divisor_override = divisor_override

    def _args(self):
        return (self.kernel_size, self.stride, self.padding, self.ceil_mode,
                self.count_include_pad, self.divisor_override)  # fmt: skip

    def forward(self, x):
        self._cache = {"x": x}
        return avg_pool2d(x, *self._args())

    def backward(self, grad_output):
        (x,) = self._cached("x")
        return avg_pool2d_backward(grad_output, x, *self._args())

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size, as ``torch.nn.AdaptiveAvgPool2d``."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        self._cache = {"x": x}
        return adaptive_avg_pool2d(x, self.output_size)

    def backward(self, grad_output):
        (x,) = self._cached("x")
        return adaptive_avg_pool2d_backward(grad_output, x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class Upsample(Module):
    """Resize by ``size`` or ``scale_factor``, as ``torch.nn.Upsample``
    (see :func:`minivision.nn.functional.interpolate`; modes ``nearest`` and ``bilinear``)."""

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):  # fmt: skip
        super().__init__()
        self.mode = check_choice("mode", mode, ("nearest", "bilinear"))
        self.size, self.scale_factor = size, scale_factor
        self.align_corners, self.recompute_scale_factor = align_corners, recompute_scale_factor

    def _args(self):
        return (self.size, self.scale_factor, self.mode, self.align_corners,
                self.recompute_scale_factor)  # fmt: skip

    def forward(self, x):
        self._cache = {"x": x}
        return interpolate(x, *self._args())

    def backward(self, grad_output):
        (x,) = self._cached("x")
        return interpolate_backward(grad_output, x, *self._args())

    def extra_repr(self):
        what = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return f"{what}, mode={self.mode!r}"
