"""Weight initialisation, as ``torch.nn.init``: fans, gains, and the schemes built on them.

A layer's output variance is ``fan_in * Var(w) * Var(x)``; an initialisation picks ``Var(w)`` so
that the signal neither explodes nor vanishes through many layers.

* Glorot & Bengio (2010), "Understanding the difficulty of training deep feedforward neural
  networks": ``Var(w) = 2 / (fan_in + fan_out)`` (:func:`xavier_uniform_`, :func:`xavier_normal_`);
  ``gain`` scales the standard deviation for the non-linearity that follows.
* He et al. (2015), "Delving deep into rectifiers": a ReLU halves the variance, so
  ``Var(w) = gain^2 / fan`` with ``gain = sqrt(2)`` (:func:`kaiming_normal_`,
  :func:`kaiming_uniform_`). torch's *default* for Conv2d and Linear is ``kaiming_uniform_`` with
  ``a = sqrt(5)``, i.e. ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.
* Long et al. (2015), FCN: a transposed convolution initialised to bilinear upsampling
  (:func:`bilinear_`).

Fans follow torch: for a weight of shape ``(size0, size1, *kernel)``, ``fan_in = size1 * prod(kernel)``
and ``fan_out = size0 * prod(kernel)`` -- for a ConvTranspose2d weight ``(C_in, C_out / groups,
kH, kW)`` that makes ``fan_in`` the *output* channels, torch's quirk, kept.

Each function works **in place on a** :class:`~minivision.nn.Parameter` (its ``.data`` is
replaced by an array of the same backend, device, shape and dtype) and returns it. Random ones take
``generator``: a ``numpy.random.Generator``, an int seed, or None (a fresh generator); the numbers
are drawn on the host in float64 (see :mod:`minivision.nn._random`), so a seed gives the same
weights on every backend. The distributions are torch's, not its random stream.
"""

from __future__ import annotations

import math
import numbers

from .._backend import array_namespace, device
from ._random import generator as _generator
from ._random import host_to_like
from .module import Parameter

__all__ = [
    "calculate_gain",
    "uniform_",
    "normal_",
    "constant_",
    "ones_",
    "zeros_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "bilinear_",
]

_LINEAR = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
           "conv_transpose3d", "sigmoid")  # fmt: skip


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The gain torch recommends for ``nonlinearity`` (``torch.nn.init.calculate_gain``).

    1 for linear layers and sigmoid, 5/3 for tanh, sqrt(2) for relu, ``sqrt(2 / (1 +
    slope^2))`` for leaky_relu (``param`` = negative slope, default 0.01), 3/4 for selu.
    """
    if nonlinearity in _LINEAR:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, numbers.Real) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ValueError(f"negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity!r}")


def _param(tensor) -> Parameter:
    if not isinstance(tensor, Parameter):
        raise TypeError(
            f"tensor must be a minivision.nn.Parameter (initialised in place), got "
            f"{type(tensor).__name__}"
        )
    return tensor


def _fans(tensor: Parameter) -> tuple[int, int]:
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError(
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions, "
            f"got shape {shape}"
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _fan(tensor: Parameter, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _set(tensor: Parameter, values) -> Parameter:
    tensor.data = host_to_like(values, tensor.data)
    return tensor


def uniform_(tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Parameter:
    """Fill with draws from ``U(a, b)``."""
    tensor = _param(tensor)
    return _set(tensor, _generator(generator, "generator").uniform(a, b, size=tensor.shape))


def normal_(tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Parameter:
    """Fill with draws from ``N(mean, std^2)``."""
    tensor = _param(tensor)
    return _set(tensor, _generator(generator, "generator").normal(mean, std, size=tensor.shape))


def constant_(tensor, val: float) -> Parameter:
    """Fill with ``val``."""
    tensor = _param(tensor)
    xp = array_namespace(tensor.data)
    tensor.data = xp.full(tensor.shape, val, dtype=tensor.dtype, device=device(tensor.data))
    return tensor


def ones_(tensor) -> Parameter:
    """Fill with ones."""
    return constant_(tensor, 1.0)


def zeros_(tensor) -> Parameter:
    """Fill with zeros."""
    return constant_(tensor, 0.0)


def xavier_uniform_(tensor, gain: float = 1.0, generator=None) -> Parameter:
    """Glorot uniform: ``U(-a, a)`` with ``a = gain * sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = _fans(_param(tensor))
    bound = math.sqrt(3.0) * gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain: float = 1.0, generator=None) -> Parameter:
    """Glorot normal: ``N(0, std^2)`` with ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = _fans(_param(tensor))
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)), generator)


def kaiming_uniform_(
    tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", generator=None
) -> Parameter:
    """He uniform: ``U(-b, b)`` with ``b = gain * sqrt(3 / fan)``, ``gain = calculate_gain(nonlinearity, a)``.

    torch's default initialisation of Conv2d and Linear weights is ``a = sqrt(5)``, which makes
    ``b = 1 / sqrt(fan_in)``.
    """
    fan = _fan(_param(tensor), mode)
    if fan == 0:
        return tensor  # torch warns and leaves an empty tensor as it is
    bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", generator=None
) -> Parameter:
    """He normal: ``N(0, std^2)`` with ``std = gain / sqrt(fan)``."""
    fan = _fan(_param(tensor), mode)
    if fan == 0:
        return tensor
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan), generator)


def _bilinear_1d(size: int) -> list[float]:
    """FCN's 1-D tent ``1 - |i - center| / factor`` (``factor = ceil(size / 2)``)."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    return [1 - abs(i - center) / factor for i in range(size)]


def bilinear_(tensor) -> Parameter:
    """FCN's bilinear-upsampling kernel for a transposed convolution weight.

    ``weight[c, c, u, v] = (1 - |u - center| / f) * (1 - |v - center| / f)`` with ``f = ceil(k /
    2)`` and ``center = f - 1`` (odd ``k``) or ``f - 0.5`` (even ``k``), zero between different
    channels -- the ``upsample_filt`` of FCN's ``surgery.py`` and d2l's ``bilinear_kernel``. A
    ``ConvTranspose2d(C, C, 2s, stride=s, padding=s // 2)`` with this weight upsamples by ``s``
    bilinearly. The weight must be ``(C, C, kH, kW)`` (channel ``c`` to channel ``c``) or
    ``(C, 1, kH, kW)`` (depthwise, ``groups = C``).
    """
    tensor = _param(tensor)
    shape = tensor.shape
    if len(shape) != 4 or not (shape[0] == shape[1] or shape[1] == 1):
        raise ValueError(
            f"bilinear_ needs a weight of shape (C, C, kH, kW) or (C, 1, kH, kW), got {shape}"
        )
    rows, cols = _bilinear_1d(shape[2]), _bilinear_1d(shape[3])
    filt = [[r * c for c in cols] for r in rows]
    zero = [[0.0] * shape[3] for _ in range(shape[2])]
    values = [
        [filt if (o == i or shape[1] == 1) else zero for o in range(shape[1])]
        for i in range(shape[0])
    ]
    return _set(tensor, values)
