"""Input checks shared by the layers: metadata only (shapes, dtypes), so no host sync."""

from __future__ import annotations

__all__ = ["check_channels", "check_choice"]


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
