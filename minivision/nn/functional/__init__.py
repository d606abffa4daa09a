"""``minivision.nn.functional`` -- the differentiable array operators networks are made of.

Each operator ``f`` comes with ``f_backward(grad_output, ...)``, the gradients of its array inputs
in ``f``'s argument order (explicit functions, no autograd engine; DESIGN.md §3):

* :func:`conv2d` (im2col + one matrix product; ``conv2d_naive`` is the textbook loop beside it)
  and :func:`conv_transpose2d`, its adjoint (lesson 01);
* :func:`max_pool2d`, :func:`avg_pool2d`, :func:`adaptive_avg_pool2d` and :func:`max_unpool2d`
  (SegNet's decoder);
* :func:`interpolate` (``nearest`` and ``bilinear``, ``align_corners`` both ways).
"""

from .adaptive_pool import adaptive_avg_pool2d, adaptive_avg_pool2d_backward
from .conv import conv2d, conv2d_backward, conv2d_naive
from .conv_transpose import conv_transpose2d, conv_transpose2d_backward
from .interpolate import interpolate, interpolate_backward
from .pool import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from .unpool import max_unpool2d, max_unpool2d_backward

__all__ = [
    "conv2d",
    "conv2d_backward",
    "conv2d_naive",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "max_unpool2d",
    "max_unpool2d_backward",
    "interpolate",
    "interpolate_backward",
]
