"""Layers with weights: ``Linear``, ``Conv2d``, ``ConvTranspose2d`` (and the weightless ``Flatten``).

Each is a thin :class:`~minivision.nn.Module` around a functional op and its backward pass
(:func:`~minivision.nn.functional.conv2d` / :func:`~minivision.nn.functional.conv2d_backward`, ...): the forward
pass caches its input, the backward pass hands it to the op's backward function, returns the
input gradient and *adds* the weight and bias gradients to their ``.grad``.

Constructor arguments, parameter names and shapes, and the default initialisation are torch's
(``kaiming_uniform_(a=sqrt(5))`` weights and ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` biases,
drawn from ``rng``: a ``numpy.random.Generator``, an int seed or None). Parameters start as
float32 NumPy arrays, as torch's start as float32 CPU tensors; move them with
:meth:`Module.to`. Forward and backward are **device-pure**.
"""

from __future__ import annotations

import math

from .._backend import array_namespace
from . import init
from ._layer_checks import check_channels, int_pair, positive_int
from ._random import generator
from ._random import host_zeros as _empty
from .functional.conv import conv2d, conv2d_backward
from .functional.conv_transpose import conv_transpose2d, conv_transpose2d_backward
from .module import Module, Parameter

__all__ = ["Parameter", "Module", "Linear", "Conv2d", "ConvTranspose2d", "Flatten"]


def _reset(weight: Parameter, bias, rng, fan_in: int) -> None:
    """torch's ``reset_parameters`` of Linear and the convolutions."""
    init.kaiming_uniform_(weight, a=math.sqrt(5), generator=rng)
    if bias is not None:
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        init.uniform_(bias, -bound, bound, generator=rng)


class Linear(Module):
    """``y = x @ weight.T + bias``, as ``torch.nn.Linear``.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
    rng : numpy.random.Generator, int or None
        Source of the default initialisation.
    dtype : str or NumPy dtype
        Parameter dtype (default float32).

    Shapes: input ``(*, in_features)`` -> output ``(*, out_features)``; ``weight`` is
    ``(out_features, in_features)``, ``bias`` ``(out_features,)``.
    """

    def __init__(self, in_features, out_features, bias=True, *, rng=None, dtype="float32"):
        super().__init__()
        self.in_features = positive_int("in_features", in_features)
        self.out_features = positive_int("out_features", out_features)
        self.weight = Parameter(_empty((self.out_features, self.in_features), dtype))
        self.register_parameter(
            "bias", Parameter(_empty((self.out_features,), dtype)) if bias else None
        )
        _reset(self.weight, self.bias, generator(rng), self.in_features)

    def forward(self, x):
        if not hasattr(x, "shape") or x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"Linear(in_features={self.in_features}) got input of shape "
                f"{tuple(getattr(x, 'shape', ()))}"
            )
        xp = array_namespace(x, self.weight.data)
        self._cache = {"x": x}
        y = xp.matmul(x, xp.matrix_transpose(self.weight.data))  # (*, in) @ (in, out)
        return y if self.bias is None else y + self.bias.data

    def backward(self, grad_output):
        (x,) = self._cached("x")
        xp = array_namespace(grad_output, x)
        g2 = xp.reshape(grad_output, (-1, self.out_features))  # (*, out) -> (M, out)
        x2 = xp.reshape(x, (-1, self.in_features))  # (M, in)
        self.weight.accumulate_grad(xp.matmul(xp.matrix_transpose(g2), x2))  # (out, in)
        if self.bias is not None:
            self.bias.accumulate_grad(xp.sum(g2, axis=0))
        return xp.matmul(grad_output, self.weight.data)  # (*, out) @ (out, in)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class _ConvNd(Module):
    """What Conv2d and ConvTranspose2d share: arguments, parameters, initialisation."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 groups, bias, padding_mode, rng, dtype, *, transposed):  # fmt: skip
        super().__init__()
        self.in_channels = positive_int("in_channels", in_channels)
        self.out_channels = positive_int("out_channels", out_channels)
        self.groups = positive_int("groups", groups)
        if self.in_channels % self.groups:
            raise ValueError("in_channels must be divisible by groups")
        if self.out_channels % self.groups:
            raise ValueError("out_channels must be divisible by groups")
        if padding_mode != "zeros":
            raise ValueError(f"padding_mode {padding_mode!r} is not supported (only 'zeros')")
        self.padding_mode = padding_mode
        self.kernel_size = int_pair("kernel_size", kernel_size, 1)
        self.stride = int_pair("stride", stride, 1)
        self.dilation = int_pair("dilation", dilation, 1)
        if isinstance(padding, str):
            if transposed or padding not in ("same", "valid"):
                raise ValueError(
                    f"padding must be an int, a pair or 'same'/'valid', got {padding!r}"
                )
            if padding == "same" and self.stride != (1, 1):
                raise ValueError("padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = int_pair("padding", padding, 0)
        if transposed:  # (C_in, C_out / groups, kH, kW)
            shape = (self.in_channels, self.out_channels // self.groups, *self.kernel_size)
        else:  # (C_out, C_in / groups, kH, kW)
            shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        self.weight = Parameter(_empty(shape, dtype))
        bias_param = Parameter(_empty((self.out_channels,), dtype)) if bias else None
        self.register_parameter("bias", bias_param)
        _reset(self.weight, self.bias, generator(rng), shape[1] * math.prod(shape[2:]))

    def _accumulate(self, grad_weight, grad_bias):
        self.weight.accumulate_grad(grad_weight)
        if self.bias is not None:
            self.bias.accumulate_grad(grad_bias)

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")  # fmt: skip
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + ("" if self.bias is not None else ", bias=False")


class Conv2d(_ConvNd):
    """2-D convolution layer, as ``torch.nn.Conv2d`` (around :func:`minivision.nn.functional.conv2d`).

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, dilation : int or (int, int)
    padding : int, (int, int), "same" or "valid"
    groups : int
    bias : bool
    padding_mode : "zeros"
        torch's other modes are not supported.
    rng : numpy.random.Generator, int or None
    dtype : str or NumPy dtype (default float32)

    Shapes: input ``(N, C_in, H, W)`` or ``(C_in, H, W)``; ``weight`` ``(C_out, C_in / groups,
    kH, kW)``; output ``(N, C_out, Ho, Wo)``, ``Ho = floor((H + 2p - d(k - 1) - 1) / s) + 1``.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", *, rng=None, dtype="float32"):  # fmt: skip
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, rng, dtype, transposed=False)  # fmt: skip

    def forward(self, x):
        check_channels(self, x, self.in_channels)
        self._cache = {"x": x}
        bias = None if self.bias is None else self.bias.data
        return conv2d(
            x, self.weight.data, bias, self.stride, self.padding, self.dilation, self.groups
        )

    def backward(self, grad_output):
        (x,) = self._cached("x")
        gx, gw, gb = conv2d_backward(
            grad_output, x, self.weight.data, self.stride, self.padding, self.dilation, self.groups
        )
        self._accumulate(gw, gb)
        return gx


class ConvTranspose2d(_ConvNd):
    """Transposed convolution layer, as ``torch.nn.ConvTranspose2d``.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, padding, output_padding, dilation : int or (int, int)
    groups : int
    bias : bool
    padding_mode : "zeros"
    rng : numpy.random.Generator, int or None
    dtype : str or NumPy dtype (default float32)

    Shapes: input ``(N, C_in, H, W)``; ``weight`` ``(C_in, C_out / groups, kH, kW)``; output
    ``Ho = (H - 1) s - 2p + d(k - 1) + output_padding + 1``. ``forward(x, output_size)`` picks
    the ``output_padding`` that gives ``output_size`` (the last two entries), as torch.
    Note torch's fan quirk: the default initialisation's ``fan_in`` is ``C_out / groups * kH * kW``.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros", *,
                 rng=None, dtype="float32"):  # fmt: skip
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, rng, dtype, transposed=True)  # fmt: skip
        self.output_padding = int_pair("output_padding", output_padding, 0)

    def _output_padding(self, x, output_size):
        if output_size is None:
            return self.output_padding
        size = tuple(output_size)[-2:]
        pads = []
        for i, want in enumerate(size):
            smallest = ((x.shape[-2 + i] - 1) * self.stride[i] - 2 * self.padding[i]
                        + self.dilation[i] * (self.kernel_size[i] - 1) + 1)  # fmt: skip
            if not smallest <= want < smallest + self.stride[i]:
                raise ValueError(
                    f"requested an output size of {size}, but valid sizes range from "
                    f"{smallest} to {smallest + self.stride[i] - 1} (axis {i})"
                )
            pads.append(want - smallest)
        return tuple(pads)

    def forward(self, x, output_size=None):
        check_channels(self, x, self.in_channels)
        output_padding = self._output_padding(x, output_size)
        self._cache = {"x": x, "output_padding": output_padding}
        bias = None if self.bias is None else self.bias.data
        return conv_transpose2d(x, self.weight.data, bias, self.stride, self.padding,
                                output_padding, self.groups, self.dilation)  # fmt: skip

    def backward(self, grad_output):
        x, output_padding = self._cached("x", "output_padding")
        gx, gw, gb = conv_transpose2d_backward(
            grad_output, x, self.weight.data, self.stride, self.padding, output_padding,
            self.groups, self.dilation,
        )  # fmt: skip
        self._accumulate(gw, gb)
        return gx


class Flatten(Module):
    """Merge axes ``start_dim..end_dim`` into one, as ``torch.nn.Flatten`` (default from axis 1)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        xp = array_namespace(x)
        shape = tuple(x.shape)
        start, end = (d % max(x.ndim, 1) for d in (self.start_dim, self.end_dim))
        if start > end:
            raise ValueError(
                f"Flatten: start_dim {self.start_dim} comes after end_dim {self.end_dim}"
            )
        self._cache = {"shape": shape}
        merged = math.prod(shape[start : end + 1])
        return xp.reshape(x, (*shape[:start], merged, *shape[end + 1 :]))

    def backward(self, grad_output):
        (shape,) = self._cached("shape")
        return array_namespace(grad_output).reshape(grad_output, shape)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
