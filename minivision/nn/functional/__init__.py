"""``minivision.nn.functional`` -- the differentiable array operators networks are made of.

Each operator ``f`` comes with ``f_backward(grad_output, ...)``, the gradients of its array inputs
in ``f``'s argument order (explicit functions, no autograd engine; DESIGN.md §3):

* :func:`conv2d` (im2col + one matrix product; ``conv2d_naive`` is the textbook loop beside it)
  and :func:`conv_transpose2d`, its adjoint (lesson 01);
* :func:`max_pool2d` and :func:`avg_pool2d` (lesson 01).
"""

from .conv import conv2d, conv2d_backward, conv2d_naive
from .conv_transpose import conv_transpose2d, conv_transpose2d_backward
from .pool import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward

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
]
