"""Private building blocks shared by the segmenters: the seed stream, conv-BN-ReLU, concat.

Every model draws layer ``i`` (in data-flow order) from seed ``1000 * seed + i``, as
:class:`minivision.detection.localizer.Localizer`: :class:`SeedStream` hands these seeds out.
The 3x3 convolution blocks are torch's ``Conv2d(bias=False) -> BatchNorm2d -> ReLU`` (the bias
is redundant before a BatchNorm), with ``padding = dilation`` so the map keeps its size.
"""

from __future__ import annotations

from .._backend import array_namespace, device
from .._validate import check_number
from ..nn import BatchNorm2d, Conv2d, ConvTranspose2d, ReLU, init
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


def _band(xp, n_in: int, f: int, dtype, dev):
    """The 1-D transposed convolution with FCN's tent as a matrix ``U`` of shape ``(f n, n)``:
    ``U[o, i] = t[o + f/2 - f i]`` (the tap of input ``i`` that lands on output ``o``), with
    ``t[k] = 1 - |k - (f - 1/2)| / f`` for ``0 <= k < 2f`` (:func:`minivision.nn.init.bilinear_`'s
    1-D factor) and 0 outside. Built from shapes with ``arange``: device-pure."""
    o = xp.arange(n_in * f, dtype=xp.int64, device=dev)[:, None]
    i = xp.arange(n_in, dtype=xp.int64, device=dev)[None, :]
    k = o + f // 2 - f * i  # (f n, n)
    tent = 1.0 - xp.abs(xp.astype(k, dtype) - (f - 0.5)) / f
    return xp.where((k >= 0) & (k < 2 * f), tent, xp.zeros_like(tent))


class FixedBilinearUpsample(Module):
    """Upsampling by an even ``factor`` ``f`` with a *fixed* bilinear transposed convolution.

    The kernel is FCN's ``(2f, 2f)`` bilinear tent applied to each channel on its own (the
    depthwise ``(C, 1, 2f, 2f)`` :attr:`weight`, ``groups = C``), stride ``f`` and padding
    ``f / 2``, so an ``(H, W)`` map becomes ``(f H, f W)``. The kernel is a non-persistent
    buffer, not a Parameter: it moves with :meth:`Module.to` but is never learned nor saved
    (Long et al. fix the final upsampling). Away from the border it equals
    ``interpolate(scale_factor=f, mode="bilinear", align_corners=False)``; in the outer ``f / 2``
    rows and columns the transposed convolution lacks the neighbour the interpolation clamps to.

    The computation uses that the tent is *separable*, ``weight[c, 0, u, v] = t[u] t[v]``: the
    2-D transposed convolution is a 1-D one down the columns and one along the rows, each a
    product with a band matrix (:func:`_band`),

        y = U_H @ x @ U_W^T          (N, C, H, W) -> (N, C, f H, f W)

    -- the same numbers as ``conv_transpose2d(x, weight, stride=f, padding=f // 2, groups=C)``,
    in ``O(f)`` rather than ``O(f^2)`` work per output pixel. The backward pass is the
    transpose, ``grad_x = U_H^T @ grad_y @ U_W`` (the strided convolution with the same kernel).
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

    def forward(self, x):
        if not hasattr(x, "ndim") or x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(
                f"FixedBilinearUpsample({self.channels}) expects input (N, {self.channels}, H, "
                f"W), got shape {tuple(getattr(x, 'shape', ()))}"
            )
        xp, dev = array_namespace(x), device(x)
        u_h = _band(xp, x.shape[2], self.factor, x.dtype, dev)  # (f H, H)
        u_w = _band(xp, x.shape[3], self.factor, x.dtype, dev)  # (f W, W)
        self._cache = {"u_h": u_h, "u_w": u_w}
        return xp.matmul(u_h, xp.matmul(x, xp.matrix_transpose(u_w)))  # (N, C, f H, f W)

    def backward(self, grad_output):
        u_h, u_w = self._cached("u_h", "u_w")
        xp = array_namespace(grad_output)
        return xp.matmul(xp.matrix_transpose(u_h), xp.matmul(grad_output, u_w))  # (N, C, H, W)

    def extra_repr(self):
        return f"{self.channels}, factor={self.factor}"


def concat(parts):
    """``concat(parts, axis=1)``: the channels of several maps side by side."""
    return array_namespace(*parts).concat(list(parts), axis=1)
