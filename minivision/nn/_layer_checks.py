"""Input checks shared by the layers: metadata only (shapes, dtypes), so no host sync."""

from __future__ import annotations

import operator

__all__ = ["check_channels", "check_choice", "positive_int", "int_pair"]


def check_channels(layer, x, expected: int, *, name: str = "in_channels", min_ndim: int = 3):
    """Raise a ValueError naming ``layer``'s ``name`` unless ``x`` is ``(N, C, ...)``/``(C, ...)``
    with ``C == expected``."""
    if not hasattr(x, "shape"):
        raise TypeError(f"{type(layer).__name__} input must be an array, got {type(x).__name__}")
    if x.ndim < min_ndim or x.ndim > min_ndim + 1:
        raise ValueError(
            f"{type(layer).__name__} expects input of {min_ndim + 1} dimensions (batched) or "
            f"{min_ndim} (unbatched), got shape {tuple(x.shape)}"
        )
    axis = 1 if x.ndim == min_ndim + 1 else 0
    if x.shape[axis] != expected:
        raise ValueError(
            f"{type(layer).__name__}({name}={expected}) got input with {x.shape[axis]} "
            f"channels, shape {tuple(x.shape)}"
        )


def check_choice(name: str, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def positive_int(name: str, value) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {value!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def int_pair(name: str, value, minimum: int) -> tuple[int, int]:
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    out = []
    for v in items:
        try:
            if isinstance(v, bool):
                raise TypeError
            v = operator.index(v)
        except TypeError:
            raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}") from None
        if v < minimum:
            raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
        out.append(v)
    return tuple(out)
