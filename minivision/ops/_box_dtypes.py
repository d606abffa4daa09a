"""The dtype rules the box functions share (``boxes`` and ``box_image`` import them).

torchvision's box code leans on torch's type promotion, which differs from NumPy's in two places
that matter for boxes: an integer array divided by anything becomes float32 (torch's default
float, not NumPy's float64), and products of small dtypes are up-cast first against overflow.
These three functions spell those rules out once. All are device-pure.
"""

from __future__ import annotations

__all__ = ["upcast", "as_float", "promote_pair"]


def upcast(xp, x):
    """torchvision's ``_upcast``: float16/bfloat16 -> float32, small integers -> int32.

    It protects the products (areas) from overflow; float32/float64 and int32/int64 are kept.
    """
    if xp.isdtype(x.dtype, "real floating"):
        return x if x.dtype in (xp.float32, xp.float64) else xp.astype(x, xp.float32)
    if x.dtype in (xp.int32, xp.int64):
        return x
    if x.dtype in (xp.uint32, xp.uint64):
        return xp.astype(x, xp.int64)
    return xp.astype(x, xp.int32)


def as_float(xp, x):
    """Where torch divides, integers become its default float (float32); floats stay."""
    return x if xp.isdtype(x.dtype, "real floating") else xp.astype(x, xp.float32)


def promote_pair(xp, boxes1, boxes2):
    """Promote two box arrays to one dtype the way torch does (an integer meets a float: float)."""
    f1 = xp.isdtype(boxes1.dtype, "real floating")
    f2 = xp.isdtype(boxes2.dtype, "real floating")
    if f1 and not f2:
        boxes2 = xp.astype(boxes2, boxes1.dtype)
    elif f2 and not f1:
        boxes1 = xp.astype(boxes1, boxes2.dtype)
    dtype = xp.result_type(boxes1, boxes2)
    return xp.astype(boxes1, dtype, copy=False), xp.astype(boxes2, dtype, copy=False)
