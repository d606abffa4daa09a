"""``max_unpool2d``: put each pooled maximum back where it came from (SegNet's decoder).

``max_pool2d(..., return_indices=True)`` reports, for every output, the flat index ``h * W + w``
of the winning cell in its ``(H, W)`` plane. ``max_unpool2d`` is its partial inverse: a zero map
of the original size with each pooled value written back at its index (Badrinarayanan et al.,
2017, "SegNet": the decoder upsamples with the encoder's pooling indices instead of learning
an upsampling). Its gradient with respect to the values is the gather at the same indices.

Two indices of one plane may coincide (overlapping pooling windows won by the same cell); the
value written last in row-major order wins, as torch's CPU loop on one thread (with several
threads torch splits a plane between them and the writes race). Indices outside the plane are
dropped (torch raises on them; checking values would need a host sync). **Device-pure.**
"""

from __future__ import annotations

from ..._backend import device, namespace_of

__all__ = ["max_unpool2d", "max_unpool2d_backward"]


def _pair(name, value):
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    return items


def _output_size(hw, kernel_size, stride, padding, output_size):
    """torch's ``_unpool_output_size``: ``(H - 1) s - 2p + k``, or a checked ``output_size``."""
    kernel = _pair("kernel_size", kernel_size)
    stride = kernel if stride is None else _pair("stride", stride)
    padding = _pair("padding", padding)
    default = tuple((n - 1) * s - 2 * p + k for n, s, p, k in zip(hw, stride, padding, kernel))
    if output_size is None:
        return default
    size = tuple(output_size)
    if len(size) == 4:
        size = size[2:]
    if len(size) != 2:
        raise ValueError(f"output_size must have 2 or 4 elements, got {output_size!r}")
    for d in range(2):
        low, high = default[d] - stride[d], default[d] + stride[d]
        if not low < size[d] < high:
            raise ValueError(
                f"invalid output_size {tuple(output_size)} (dim {d} must be between {low} and "
                f"{high}, exclusive)"
            )
    return size


def _check(xp, input, indices):
    if input.ndim not in (3, 4):
        raise ValueError(
            f"input must have shape (N, C, H, W) or (C, H, W), got {tuple(input.shape)}"
        )
    if tuple(indices.shape) != tuple(input.shape):
        raise ValueError(
            f"indices must have input's shape {tuple(input.shape)}, got {tuple(indices.shape)}"
        )
    if not xp.isdtype(indices.dtype, "integral"):
        raise TypeError(f"indices must have an integer dtype, got {indices.dtype}")


def _last_writer(xp, indices, plane: int):
    """For each output cell of each plane: which input element writes it (or -1).

    ``indices`` ``(P, L)`` -> ``(P * plane,)`` positions into the flattened input. A stable sort
    by target puts the writers of one cell together in input order; the last of them wins.
    """
    dev = device(indices)
    p, length = indices.shape
    idx = xp.astype(indices, xp.int64)
    valid = (idx >= 0) & (idx < plane)
    base = xp.arange(p, dtype=xp.int64, device=dev)[:, None] * plane
    # an invalid index gets a target past every plane, so it writes nothing
    target = xp.reshape(xp.where(valid, idx + base, p * plane), (-1,))  # (P * L,)
    order = xp.argsort(target, stable=True)
    sorted_target = xp.take(target, order)
    cells = xp.arange(p * plane, dtype=xp.int64, device=dev)
    hi = xp.searchsorted(sorted_target, cells, side="right")  # one past the last writer
    last = xp.clip(hi - 1, min=0)
    written = (hi > 0) & (xp.take(sorted_target, last) == cells)
    return xp.where(written, xp.take(order, last), -1)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Scatter pooled values back to their argmax positions, as ``torch.nn.functional.max_unpool2d``.

    Parameters
    ----------
    input : array of shape (N, C, H, W) or (C, H, W)
        Pooled values.
    indices : integer array of input's shape
        From ``max_pool2d(..., return_indices=True)``: flat ``h * Wo + w`` in the output plane.
    kernel_size, stride, padding : int or (int, int)
        Those of the max pooling; ``stride`` defaults to ``kernel_size``.
    output_size : sequence of 2 (or 4) ints, optional
        The size to restore (e.g. the pooling input's when ``ceil_mode`` or odd sizes make the
        default ``(H - 1) s - 2p + k`` ambiguous).

    Returns
    -------
    array of shape (N, C, Ho, Wo), ``input``'s dtype; zero where nothing was written.
    """
    xp = namespace_of(input=input, indices=indices)
    _check(xp, input, indices)
    unbatched = input.ndim == 3
    x = input[None, ...] if unbatched else input
    idx = indices[None, ...] if unbatched else indices
    n, c, h, w = x.shape
    ho, wo = _output_size((h, w), kernel_size, stride, padding, output_size)
    writer = _last_writer(xp, xp.reshape(idx, (n * c, h * w)), ho * wo)  # (N*C*Ho*Wo,)
    flat = xp.reshape(x, (-1,))
    values = xp.take(flat, xp.clip(writer, min=0))
    out = xp.where(writer >= 0, values, xp.zeros((), dtype=x.dtype, device=device(x)))
    out = xp.reshape(out, (n, c, ho, wo))
    return out[0, ...] if unbatched else out


def max_unpool2d_backward(
    grad_output, input, indices, kernel_size, stride=None, padding=0, output_size=None
):
    """Gradient of :func:`max_unpool2d` with respect to ``input``: ``grad_output`` gathered at
    ``indices`` (what torch autograd computes; a duplicate index passes its gradient to every
    value that carried it).

    Parameters
    ----------
    grad_output : array of shape (N, C, Ho, Wo)
    input, indices, kernel_size, stride, padding, output_size
        As given to :func:`max_unpool2d`.

    Returns
    -------
    array of ``input``'s shape (0 where an index was out of range).
    """
    xp = namespace_of(grad_output=grad_output, input=input, indices=indices)
    _check(xp, input, indices)
    unbatched = input.ndim == 3
    idx = indices[None, ...] if unbatched else indices
    gy = grad_output[None, ...] if unbatched and grad_output.ndim == 3 else grad_output
    n, c, h, w = idx.shape
    ho, wo = _output_size((h, w), kernel_size, stride, padding, output_size)
    if tuple(gy.shape) != (n, c, ho, wo):
        raise ValueError(
            f"grad_output must have the forward output's shape {(n, c, ho, wo)}, "
            f"got {tuple(grad_output.shape)}"
        )
    flat_idx = xp.reshape(xp.astype(idx, xp.int64), (n * c, h * w))
    valid = (flat_idx >= 0) & (flat_idx < ho * wo)
    g = xp.reshape(gy, (n * c, ho * wo))
    gathered = xp.take_along_axis(g, xp.clip(flat_idx, min=0, max=ho * wo - 1), axis=1)
    gx = xp.reshape(xp.where(valid, gathered, 0.0), (n, c, h, w))
    return gx[0, ...] if unbatched else gx
