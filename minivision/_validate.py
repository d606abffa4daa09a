"""Argument checks shared by the public functions.

Every check reads only metadata (shape, dtype, namespace), never array values, so calling it
adds no host synchronisation to a device-pure function (DESIGN.md §4). Each error names the
argument and says what was expected.
"""

from __future__ import annotations

from ._backend import namespace_of

__all__ = ["check_boxes", "check_fmt", "namespace_of", "BOX_FORMATS"]

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
