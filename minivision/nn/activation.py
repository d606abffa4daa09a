"""Element-wise layers: ``ReLU``, ``LeakyReLU``, ``Sigmoid`` and ``Dropout``.

Each backward pass is the chain rule for one scalar function applied element by element,
``grad_input = grad_output * f'(x)``, with ``f'`` written from what the forward pass cached:

* ReLU: ``f'(x) = 1 if x > 0 else 0`` (torch's ``threshold_backward`` on the output: 0 at 0);
* LeakyReLU: ``1 if x > 0 else negative_slope``;
* Sigmoid: ``f'(x) = y (1 - y)`` from the output ``y``, no second exponential;
* Dropout (Srivastava et al., 2014, "inverted" form): in training, keep each element with
  probability ``1 - p`` and scale it by ``1 / (1 - p)`` so the expected activation is
  unchanged; at eval time the identity. Its backward pass applies the same mask and scale.

Forward and backward are **device-pure**; Dropout's mask is drawn on the host from its seeded
generator (a host -> device copy, see :mod:`minivision.nn._random`).
"""

from __future__ import annotations

import numbers

from .._backend import array_namespace
from ._random import generator, host_to_like
from .module import Module

__all__ = ["ReLU", "LeakyReLU", "Sigmoid", "Dropout"]


class ReLU(Module):
    """``max(x, 0)``, as ``torch.nn.ReLU`` (NaN stays NaN). ``inplace`` is accepted and ignored.

    The backward pass multiplies by the 0/1 mask ``not (y <= 0)`` rather than selecting with
    ``where`` (several times faster on NumPy); the one difference from torch's select is an
    infinite upstream gradient at a zero output, which gives NaN (``inf * 0``) instead of 0.
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        xp = array_namespace(x)
        y = xp.maximum(x, 0.0)  # NaN propagates, as torch's relu
        self._cache = {"y": y}
        return y

    def backward(self, grad_output):
        (y,) = self._cached("y")
        xp = array_namespace(grad_output)
        # torch's threshold_backward: zero where y <= 0, so a NaN output passes its gradient
        return grad_output * xp.astype(xp.logical_not(y <= 0), grad_output.dtype)


class LeakyReLU(Module):
    """``x if x > 0 else negative_slope * x``, as ``torch.nn.LeakyReLU``."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        if not isinstance(negative_slope, numbers.Real) or isinstance(negative_slope, bool):
            raise TypeError(f"negative_slope must be a real number, got {negative_slope!r}")
        self.negative_slope, self.inplace = float(negative_slope), inplace

    def forward(self, x):
        xp = array_namespace(x)
        self._cache = {"x": x}
        return xp.where(x > 0, x, x * self.negative_slope)

    def backward(self, grad_output):
        (x,) = self._cached("x")
        xp = array_namespace(grad_output)
        return xp.where(x > 0, grad_output, grad_output * self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    """``1 / (1 + exp(-x))``, as ``torch.nn.Sigmoid``."""

    def forward(self, x):
        xp = array_namespace(x)
        y = 1.0 / (1.0 + xp.exp(-x))
        self._cache = {"y": y}
        return y

    def backward(self, grad_output):
        (y,) = self._cached("y")
        return grad_output * (y * (1.0 - y))


class Dropout(Module):
    """Inverted dropout, as ``torch.nn.Dropout``: zero each element with probability ``p`` in
    training and scale the rest by ``1 / (1 - p)``; the identity in eval mode.

    Parameters
    ----------
    p : float in [0, 1]
    inplace : bool
        Accepted and ignored (arrays may be immutable).
    rng : numpy.random.Generator, int or None
        Draws the masks; a seed makes every forward pass's mask reproducible. The masks are not
        torch's random stream, only its distribution.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, *, rng=None):
        super().__init__()
        if not isinstance(p, numbers.Real) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p!r}")
        self.p, self.inplace = float(p), inplace
        self.rng = generator(rng)

    def forward(self, x):
        xp = array_namespace(x)
        if not self.training or self.p == 0.0:
            self._cache = {"scale": None}
            return x
        if self.p == 1.0:  # torch returns zeros (no division by zero)
            self._cache = {"scale": xp.zeros_like(x)}
            return xp.zeros_like(x)
        keep = self.rng.random(tuple(x.shape)) >= self.p  # host draw, (x.shape) bool
        scale = host_to_like(keep / (1.0 - self.p), x)  # 0 or 1 / (1 - p), x's dtype
        self._cache = {"scale": scale}
        return x * scale

    def backward(self, grad_output):
        (scale,) = self._cached("scale")
        return grad_output if scale is None else grad_output * scale

    def extra_repr(self):
        return f"p={self.p}"
