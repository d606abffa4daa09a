"""Normalisation layers: ``BatchNorm2d`` (Ioffe & Szegedy, 2015) and ``GroupNorm`` (Wu & He, 2018).

Both standardise activations over a set of elements ``S`` and then rescale them per channel:

    x_hat = (x - mean_S(x)) / sqrt(var_S(x) + eps),      y = weight * x_hat + bias

BatchNorm's ``S`` is one channel over the whole batch and both spatial axes ``(N, H, W)``;
GroupNorm's is one group of ``C / G`` channels of *one* sample, so it does not depend on the batch
size (Mask R-CNN's heads, small batches). The variance is the biased one (divide by ``|S|``).

Backward through the standardisation (the paper's eq. after Algorithm 1), with
``g_hat = grad_output * weight`` and means over ``S``:

    grad_x = (g_hat - mean(g_hat) - x_hat * mean(g_hat * x_hat)) / sqrt(var + eps)

``grad_weight = sum(grad_output * x_hat)``, ``grad_bias = sum(grad_output)``.

BatchNorm in *training* mode uses the batch's statistics and updates running estimates
``running = (1 - momentum) * running + momentum * batch`` with the **unbiased** batch variance
(``|S| / (|S| - 1)`` times the biased one), as torch; ``momentum=None`` uses the cumulative
average (momentum ``1 / num_batches_tracked``). In *eval* mode it uses the running estimates, a
fixed affine map whose backward pass is ``grad_output * weight / sqrt(running_var + eps)``.
Forward and backward are **device-pure**.
"""

from __future__ import annotations

import numbers

from .._backend import array_namespace
from . import init
from ._layer_checks import check_channels, positive_int
from ._random import host_zeros
from .module import Module, Parameter

__all__ = ["BatchNorm2d", "GroupNorm"]


def _standardise_backward(xp, g_hat, x_hat, invstd, axes):
    """``(g_hat - mean(g_hat) - x_hat * mean(g_hat * x_hat)) * invstd`` over ``axes``."""
    mean_g = xp.mean(g_hat, axis=axes, keepdims=True)
    mean_gx = xp.mean(g_hat * x_hat, axis=axes, keepdims=True)
    return (g_hat - mean_g - x_hat * mean_gx) * invstd


def _channel_sum(xp, a):
    """``sum(a, axis=(0, 2, 3))`` of an ``(N, C, H, W)`` array, reducing contiguous rows."""
    n, c = a.shape[:2]
    return xp.sum(xp.sum(xp.reshape(a, (n, c, -1)), axis=2), axis=0)  # (N, C, HW) -> (C,)


def _channel_dot(xp, a, b):
    """``sum(a * b, axis=(0, 2, 3))`` as one batched matrix product (no ``a * b`` temporary)."""
    n, c = a.shape[:2]
    rows = xp.reshape(a, (n, c, 1, -1))  # (N, C, 1, HW)
    cols = xp.reshape(b, (n, c, -1, 1))  # (N, C, HW, 1)
    return xp.sum(xp.matmul(rows, cols)[:, :, 0, 0], axis=0)  # (N, C) -> (C,)


def _eps(eps):
    if not isinstance(eps, numbers.Real) or isinstance(eps, bool) or eps < 0:
        raise ValueError(f"eps must be a non-negative number, got {eps!r}")
    return float(eps)


class BatchNorm2d(Module):
    """Batch normalisation of ``(N, C, H, W)`` maps, as ``torch.nn.BatchNorm2d``.

    Parameters
    ----------
    num_features : int
        ``C``.
    eps : float
    momentum : float or None
        Weight of the new batch in the running estimates; None = cumulative average.
    affine : bool
        Learn ``weight`` (init 1) and ``bias`` (init 0).
    track_running_stats : bool
        Keep ``running_mean`` (init 0), ``running_var`` (init 1) and ``num_batches_tracked``
        buffers; without them the batch statistics are used in eval mode too.
    dtype : str or NumPy dtype (default float32)
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, *, dtype="float32"):  # fmt: skip
        super().__init__()
        self.num_features = positive_int("num_features", num_features)
        self.eps = _eps(eps)
        if momentum is not None and (
            not isinstance(momentum, numbers.Real) or isinstance(momentum, bool)
        ):
            raise TypeError(f"momentum must be a number or None, got {momentum!r}")
        self.momentum = momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        c = self.num_features
        if self.affine:
            self.weight = init.ones_(Parameter(host_zeros((c,), dtype)))
            self.bias = Parameter(host_zeros((c,), dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", host_zeros((c,), dtype))
            self.register_buffer("running_var", host_zeros((c,), dtype) + 1)
            self.register_buffer("num_batches_tracked", host_zeros((), "int64"))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def _update_running(self, xp, mean, var, count):
        self.num_batches_tracked = xp.asarray(self.num_batches_tracked + 1)  # 0-d array
        if self.momentum is None:  # cumulative moving average, on the device
            factor = 1.0 / xp.astype(self.num_batches_tracked, mean.dtype)
        else:
            factor = float(self.momentum)
        unbiased = var * (count / (count - 1))
        dtype = self.running_mean.dtype
        self.running_mean = (1 - factor) * self.running_mean + factor * xp.astype(mean, dtype)
        self.running_var = (1 - factor) * self.running_var + factor * xp.astype(unbiased, dtype)

    def forward(self, x):
        if not hasattr(x, "ndim") or x.ndim != 4:
            raise ValueError(
                f"BatchNorm2d expects 4D input (N, C, H, W), got {getattr(x, 'shape', x)}"
            )
        check_channels(self, x, self.num_features, name="num_features")
        xp = array_namespace(x)
        n, c, h, w = x.shape
        count = n * h * w
        batch_stats = self.training or self.running_mean is None
        if batch_stats:
            if count <= 1:
                raise ValueError(
                    f"Expected more than 1 value per channel when training, got input of shape "
                    f"{tuple(x.shape)}"
                )
            mean = _channel_sum(xp, x) / count  # (C,)
            centred = x - mean[None, :, None, None]
            var = _channel_dot(xp, centred, centred) / count  # biased, (C,)
            if self.training and self.running_mean is not None:
                self._update_running(xp, mean, var, count)
        else:  # eval: the running estimates; x_hat is only needed for the weight's gradient
            mean, var = self.running_mean, self.running_var
            centred = None
        invstd = 1.0 / xp.sqrt(var + self.eps)  # (C,)
        scale = invstd if not self.affine else invstd * self.weight.data
        shift = -mean * scale if not self.affine else self.bias.data - mean * scale
        self._cache = {"x": x, "mean": mean, "centred": centred, "invstd": invstd,
                       "scale": scale, "count": count}  # fmt: skip
        # x_hat * weight + bias, as one multiply-add per element
        return x * scale[None, :, None, None] + shift[None, :, None, None]

    def backward(self, grad_output):
        x, mean, centred, invstd, scale, count = self._cached(
            "x", "mean", "centred", "invstd", "scale", "count"
        )
        xp = array_namespace(grad_output)
        sum_g = _channel_sum(xp, grad_output)  # (C,)
        if centred is None:  # eval mode: a fixed affine map x * scale + shift
            if self.affine:
                centred = x - mean[None, :, None, None]
                self.weight.accumulate_grad(_channel_dot(xp, grad_output, centred) * invstd)
                self.bias.accumulate_grad(sum_g)
            return grad_output * scale[None, :, None, None]
        sum_g_x_hat = _channel_dot(xp, grad_output, centred) * invstd  # sum(g * x_hat), (C,)
        if self.affine:
            self.weight.accumulate_grad(sum_g_x_hat)
            self.bias.accumulate_grad(sum_g)
        # grad_x = scale * (g - mean(g) - x_hat * mean(g * x_hat)), written per channel as
        # g * a + centred * b + c so that each element is read once
        b = -scale * invstd * sum_g_x_hat / count
        c = -scale * sum_g / count
        return (grad_output * scale[None, :, None, None] + centred * b[None, :, None, None]
                + c[None, :, None, None])  # fmt: skip

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")  # fmt: skip


class GroupNorm(Module):
    """Group normalisation, as ``torch.nn.GroupNorm``: statistics per sample and group of channels.

    Parameters
    ----------
    num_groups : int
        ``G``; must divide ``num_channels``. ``G = 1`` is LayerNorm over ``(C, H, W)``,
        ``G = C`` is InstanceNorm.
    num_channels : int
    eps : float
    affine : bool
        Learn a per-channel ``weight`` (init 1) and ``bias`` (init 0).
    dtype : str or NumPy dtype (default float32)

    Shapes: input ``(N, C, *)``.
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, *, dtype="float32"):
        super().__init__()
        self.num_groups = positive_int("num_groups", num_groups)
        self.num_channels = positive_int("num_channels", num_channels)
        if self.num_channels % self.num_groups:
            raise ValueError("num_channels must be divisible by num_groups")
        self.eps, self.affine = _eps(eps), bool(affine)
        if self.affine:
            self.weight = init.ones_(Parameter(host_zeros((self.num_channels,), dtype)))
            self.bias = Parameter(host_zeros((self.num_channels,), dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def _per_channel(self, x, p):
        """A ``(C,)`` parameter shaped to broadcast against ``(N, C, *)``."""
        return array_namespace(p).reshape(p, (1, self.num_channels) + (1,) * (x.ndim - 2))

    def forward(self, x):
        if not hasattr(x, "ndim") or x.ndim < 2:
            raise ValueError(
                f"GroupNorm expects input of shape (N, C, *), got {getattr(x, 'shape', x)}"
            )
        check_channels(self, x, self.num_channels, name="num_channels", min_ndim=x.ndim - 1)
        xp = array_namespace(x)
        shape = tuple(x.shape)
        grouped = xp.reshape(x, (shape[0], self.num_groups, -1))  # (N, G, C/G * spatial)
        mean = xp.mean(grouped, axis=2, keepdims=True)
        centred = grouped - mean
        var = xp.mean(centred * centred, axis=2, keepdims=True)  # biased
        invstd = 1.0 / xp.sqrt(var + self.eps)  # (N, G, 1)
        x_hat = centred * invstd
        self._cache = {"x_hat": x_hat, "invstd": invstd, "shape": shape}
        y = xp.reshape(x_hat, shape)
        if not self.affine:
            return y
        return y * self._per_channel(x, self.weight.data) + self._per_channel(x, self.bias.data)

    def backward(self, grad_output):
        x_hat, invstd, shape = self._cached("x_hat", "invstd", "shape")
        xp = array_namespace(grad_output)
        g_hat = grad_output
        if self.affine:
            axes = (0,) + tuple(range(2, len(shape)))
            x_hat_full = xp.reshape(x_hat, shape)
            self.weight.accumulate_grad(xp.sum(grad_output * x_hat_full, axis=axes))
            self.bias.accumulate_grad(xp.sum(grad_output, axis=axes))
            g_hat = grad_output * self._per_channel(grad_output, self.weight.data)
        g_hat = xp.reshape(g_hat, (shape[0], self.num_groups, -1))  # (N, G, C/G * spatial)
        gx = _standardise_backward(xp, g_hat, x_hat, invstd, (2,))
        return xp.reshape(gx, shape)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"
