"""Argument checks shared by the public functions.

Every check reads only metadata (shape, dtype, namespace), never array values, so calling it
adds no host synchronisation to a device-pure function (DESIGN.md §4). Each error names the
argument and says what was expected.
"""

from __future__ import annotations

import numbers

__all__ = [
    "BOX_FORMATS",
    "check_boxes",
    "check_fmt",
    "check_number",
    "check_ints",
    "check_image_size",
    "check_grad_output",
]

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")


def check_fmt(name: str, fmt) -> str:
    if fmt not in BOX_FORMATS:
        raise ValueError(f"{name} must be one of {BOX_FORMATS}, got {fmt!r}")
    return fmt


def check_boxes(xp, boxes, name: str = "boxes", *, min_ndim: int = 1, shape_text: str = "(..., 4)"):
    """Check that ``boxes`` has a last axis of length 4, enough axes and a real numeric dtype."""
    shape = tuple(boxes.shape)
    if boxes.ndim < min_ndim or shape[-1:] != (4,):
        raise ValueError(f"{name} must have shape {shape_text}, got {shape}")
    if not (xp.isdtype(boxes.dtype, "real floating") or xp.isdtype(boxes.dtype, "integral")):
        raise TypeError(
            f"{name} must have a real floating-point or integer dtype, got {boxes.dtype}"
        )
    return boxes


# ----------------------------------------------------------------------------- scalar arguments


def check_number(name: str, value, *, integer=False, minimum=None, positive=False, allow_nan=False):
    """A Python or NumPy real number (``integer``: an integral one; never a bool), as float/int.

    Wrong kind -> ``TypeError``; NaN (unless ``allow_nan``), below ``minimum`` or, with
    ``positive``, not above 0 -> ``ValueError``. Every error names the argument and the rule,
    e.g. "pre_nms_top_n must be a non-negative integer, got -1".
    """
    noun = "integer" if integer else "number"
    if positive:
        want = f"a positive {noun}"
    elif minimum == 0:
        want = f"a non-negative {noun}"
    elif minimum is not None:
        want = f"an {noun} >= {minimum}" if integer else f"a {noun} >= {minimum}"
    else:
        want = "an integer" if integer else "a real number"
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"{name} must be {want}, got {type(value).__name__} {value!r}")
    value = int(value) if integer else float(value)
    if value != value:
        if allow_nan:
            return value
        raise ValueError(f"{name} must be a number, got NaN")
    if (positive and not value > 0) or (minimum is not None and value < minimum):
        raise ValueError(f"{name} must be {want}, got {value!r}")
    return value


def check_ints(name: str, value, length: int, *, minimum: int = 0, text: str = "", scalar=False):
    """``length`` integers ``>= minimum`` as a tuple of ints (``scalar``: one int is repeated).

    ``text`` names the parts for the message, e.g. ``"(height, width)"``. ``ValueError`` for a
    wrong length, a non-integer or a value below ``minimum``.
    """
    if scalar and isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,) * length
    try:
        parts = tuple(value)
        ok = len(parts) == length and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= minimum
            for v in parts
        )
    except TypeError:
        ok = False
    if not ok:
        kind = "non-negative" if minimum == 0 else ("positive" if minimum == 1 else f">= {minimum}")
        what = f"{text}, {length} {kind} integers" if text else f"{length} {kind} integers"
        if scalar:
            what = f"a {kind} integer or {what}"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return tuple(int(v) for v in parts)


def check_image_size(name: str, value) -> tuple[int, int]:
    """An image size ``(height, width)``: two non-negative integers."""
    return check_ints(name, value, 2, text="(height, width)")


def check_grad_output(grad_output, expected_shape, input) -> None:
    """A backward's ``grad_output``: the forward output's shape and the input's dtype."""
    expected_shape = tuple(expected_shape)
    if tuple(grad_output.shape) != expected_shape:
        raise ValueError(
            f"grad_output must have the forward output's shape {expected_shape}, "
            f"got {tuple(grad_output.shape)}"
        )
    if grad_output.dtype != input.dtype:
        raise TypeError(
            f"grad_output and input must have one dtype, got {grad_output.dtype} and {input.dtype}"
        )
