"""Host island: the NumPy random generator behind every seeded layer, initialiser and Dropout.

minivision's randomness is an explicit ``numpy.random.Generator`` (or an integer seed) so the
same seed gives the same weights on every machine and backend (DESIGN.md §3). Numbers are
drawn here, on the host, in float64, and copied once onto the parameter's backend and device
(a host -> device copy, never a device -> host synchronisation).
"""

from __future__ import annotations

import numbers

import numpy as np

from .._backend import array_namespace, from_numpy

__all__ = ["generator", "host_to_like", "host_zeros"]


def generator(rng, name: str = "rng") -> np.random.Generator:
    """``rng`` as a Generator: None -> a fresh, unseeded one; an int -> ``default_rng(rng)``."""
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"{name} must be a numpy.random.Generator, an int seed or None, got {rng!r}")


def host_to_like(values, like):
    """Host ``values`` as an array of ``like``'s namespace, device and dtype."""
    name = str(like.dtype).rsplit(".", 1)[-1]
    try:
        host = np.asarray(values, dtype=name)
    except TypeError:  # a dtype NumPy lacks (bfloat16): cast on the device
        host = np.asarray(values)
    out = from_numpy(host, like)
    if out.dtype != like.dtype:
        out = array_namespace(like).astype(out, like.dtype)
    return out


def host_zeros(shape, dtype="float32"):
    """A NumPy array of zeros: where every layer's parameters start (torch: float32 on the CPU)."""
    return np.zeros(shape, dtype=dtype)
