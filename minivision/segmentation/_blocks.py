"""Private building blocks shared by the segmenters: the seed stream, conv-BN-ReLU, concat.

Every model draws layer ``i`` (in data-flow order) from seed ``1000 * seed + i``, as
:class:`minivision.detection.localizer.Localizer`: :class:`SeedStream` hands these seeds out.
The 3x3 convolution blocks are torch's ``Conv2d(bias=False) -> BatchNorm2d -> ReLU`` (the bias
is redundant before a BatchNorm), with ``padding = dilation`` so the map keeps its size.
"""

from __future__ import annotations

from .._backend import array_namespace
from .._validate import check_number
from ..nn import BatchNorm2d, Conv2d, ConvTranspose2d, ReLU, init
from ..nn.functional.conv import conv2d
from ..nn.functional.conv_transpose import conv_transpose2d
from ..nn.module import Module

__all__ = ["SeedStream", "seed_stream", "conv_bn_relu", "concat", "split_channels", "bilinear_up2",
           "FixedBilinearUpsample"]  # fmt: skip


class SeedStream:
    """Seeds ``1000 * seed + i`` for ``i = 0, 1, ...``: call the stream to get the next one.
    ``first`` starts the count elsewhere (a block built on its own from an int seed)."""

    def __init__(self, seed: int = 0, *, first: int | None = None):
        for name, value in (("seed", seed), ("first", first)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise TypeError(f"{name} must be an int, got {value!r}")
        self._next = 1000 * seed if first is None else first

    def __call__(self) -> int:
        self._next += 1
        return self._next - 1


def seed_stream(rng):
    """Seeds for a block's layers: None -> unseeded (None each time), an int ``s`` -> ``s, s + 1,
    ...``, a model's :class:`SeedStream` -> that stream, continuing the model's count."""
    if rng is None:
        return lambda: None
    if isinstance(rng, SeedStream):
        return rng
    if not isinstance(rng, int) or isinstance(rng, bool):
        raise TypeError(f"rng must be an int seed, a SeedStream or None, got {rng!r}")
    return SeedStream(first=rng)


def conv_bn_relu(c_in: int, c_out: int, seeds: SeedStream, *, dilation: int = 1) -> list:
    """``[Conv2d(c_in, c_out, 3, padding=d, dilation=d, bias=False), BatchNorm2d, ReLU]``."""
    conv = Conv2d(c_in, c_out, 3, padding=dilation, dilation=dilation, bias=False, rng=seeds())
    return [conv, BatchNorm2d(c_out), ReLU()]


def split_channels(grad, sizes):
    """The gradient of a channel concatenation, split back into its parts (axis 1)."""
    parts, start = [], 0
    for size in sizes:
        parts.append(grad[:, start : start + size, ...])
        start += size
    return parts


def bilinear_up2(channels: int, seeds: SeedStream) -> ConvTranspose2d:
    """A *learned* 2x upsampling: ``ConvTranspose2d(C, C, 4, stride=2, padding=1, bias=False)``
    that starts as bilinear interpolation (:func:`minivision.nn.init.bilinear_`)."""
    up = ConvTranspose2d(channels, channels, 4, stride=2, padding=1, bias=False, rng=seeds())
    init.bilinear_(up.weight)
    return up


class FixedBilinearUpsample(Module):
    """Upsampling by an integer ``factor`` with a *fixed* bilinear transposed convolution.

    The kernel is FCN's ``(2f, 2f)`` bilinear tent applied to each channel on its own (a
    depthwise ``(C, 1, 2f, 2f)`` weight, ``groups = C``), stride ``f`` and padding ``f // 2``,
    so an ``(H, W)`` map becomes ``(f H, f W)``. It is a non-persistent buffer, not a
    Parameter: it moves with :meth:`Module.to` but is never learned nor saved (Long et al. fix
    the final upsampling). Away from the border it equals ``interpolate(scale_factor=f,
    mode="bilinear", align_corners=False)``; at the border the transposed convolution lacks
    the neighbours the interpolation clamps to.

    The backward pass is the adjoint of a transposed convolution, the strided convolution
    with the same kernel: ``grad_x = conv2d(grad_out, w, stride=f, padding=f // 2, groups=C)``.
    """

    def __init__(self, channels: int, factor: int, *, dtype="float32"):
        super().__init__()
        self.channels = check_number("channels", channels, integer=True, positive=True)
        self.factor = check_number("factor", factor, integer=True, positive=True)
        if self.factor % 2:  # an odd f would give f H + 1 rows
            raise ValueError(f"factor must be even, got {factor}")
        f, c = self.factor, self.channels
        # a depthwise transposed conv's (C, 1, 2f, 2f) weight, set to the tent, kept as a buffer
        holder = ConvTranspose2d(c, c, 2 * f, f, f // 2, groups=c, bias=False, rng=0, dtype=dtype)
        self.register_buffer("weight", init.bilinear_(holder.weight).data, persistent=False)

    def _args(self):
        return self.factor, self.factor // 2

    def forward(self, x):  # (N, C, H, W) -> (N, C, f H, f W)
        stride, padding = self._args()
        self._cache = {"forward_ran": True}  # the backward pass needs nothing of x
        return conv_transpose2d(x, self.weight, None, stride, padding, 0, self.channels)

    def backward(self, grad_output):  # (N, C, f H, f W) -> (N, C, H, W)
        self._cached()
        stride, padding = self._args()
        return conv2d(grad_output, self.weight, None, stride, padding, 1, self.channels)

    def extra_repr(self):
        return f"{self.channels}, factor={self.factor}"


def concat(parts):
    """``concat(parts, axis=1)``: the channels of several maps side by side."""
    return array_namespace(*parts).concat(list(parts), axis=1)
