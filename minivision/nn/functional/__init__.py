"""Functional ops of :mod:`minivision.nn`: each ``f`` with its ``f_backward`` (DESIGN.md §3)."""

from .adaptive_pool import adaptive_avg_pool2d, adaptive_avg_pool2d_backward
from .interpolate import interpolate, interpolate_backward
from .unpool import max_unpool2d, max_unpool2d_backward

__all__ = [
    "interpolate",
    "interpolate_backward",
    "max_unpool2d",
    "max_unpool2d_backward",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
]
