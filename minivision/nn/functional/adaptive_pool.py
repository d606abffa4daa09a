"""``adaptive_avg_pool2d``: average pooling to a requested output size, forward and backward.

Instead of a kernel and a stride, the caller names the output size ``(Ho, Wo)`` and each output
cell averages its own band of the input (torch's rule): output row ``a`` covers input rows
``floor(a H / Ho) .. ceil((a + 1) H / Ho) - 1``. Bands may overlap by one row when ``H`` is not a
multiple of ``Ho``; with ``Ho = 1`` it is the global average pooling at the end of a ResNet.

The forward pass sums row bands, then column bands (``Ho + Wo`` slice sums, no matrices, so an
infinity stays in its band), and divides by the band areas. The backward pass is the transpose
of that linear map, two matrix products ``P_h^T @ grad @ P_w`` with ``P`` the ``(out, in)``
band-averaging matrices. **Device-pure.**
"""

from __future__ import annotations

from ..._backend import device, namespace_of
from ..._validate import check_grad_output

__all__ = ["adaptive_avg_pool2d", "adaptive_avg_pool2d_backward"]


def _bands(n_in: int, n_out: int) -> list[tuple[int, int]]:
    """torch's ``start_index`` / ``end_index`` of every output cell along one axis."""
    return [((a * n_in) // n_out, -((-(a + 1) * n_in) // n_out)) for a in range(n_out)]


def _out_size(hw, output_size):
    sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * 2
    if len(sizes) != 2:
        raise ValueError(f"output_size must be an int or a pair, got {output_size!r}")
    out = []
    for n, s in zip(hw, sizes):
        if s is None:
            s = n
        if not isinstance(s, int) or isinstance(s, bool) or s < 1:
            raise ValueError(f"output_size must hold positive ints (or None), got {output_size!r}")
        out.append(s)
    return tuple(out)


def _check(xp, input):
    if input.ndim not in (3, 4):
        raise ValueError(
            f"input must have shape (N, C, H, W) or (C, H, W), got {tuple(input.shape)}"
        )
    if not xp.isdtype(input.dtype, "real floating"):
        raise TypeError(f"input must have a real floating-point dtype, got {input.dtype}")
    if min(input.shape[-2:]) < 1:
        raise ValueError(f"input must not be empty, got shape {tuple(input.shape)}")


def adaptive_avg_pool2d(input, output_size):
    """Average over ``output_size`` bands, as ``torch.nn.functional.adaptive_avg_pool2d``.

    Parameters
    ----------
    input : array of shape (N, C, H, W) or (C, H, W)
    output_size : int or (int or None, int or None)
        ``(Ho, Wo)``; None keeps that axis's input size.

    Returns
    -------
    array of shape (N, C, Ho, Wo) (or (C, Ho, Wo)), ``input``'s dtype
    """
    xp = namespace_of(input=input)
    _check(xp, input)
    h, w = input.shape[-2:]
    ho, wo = _out_size((h, w), output_size)
    acc = input.dtype if input.dtype == xp.float64 else xp.float32
    x = xp.astype(input, acc, copy=False)
    rows_h, rows_w = _bands(h, ho), _bands(w, wo)
    # (..., H, W) -> (..., Ho, W): each output row sums its band of input rows
    rows = xp.stack([xp.sum(x[..., s:e, :], axis=-2) for s, e in rows_h], axis=-2)
    # (..., Ho, W) -> (..., Ho, Wo)
    cells = xp.stack([xp.sum(rows[..., s:e], axis=-1) for s, e in rows_w], axis=-1)
    dev = device(input)
    area_h = xp.asarray([float(e - s) for s, e in rows_h], dtype=acc, device=dev)
    area_w = xp.asarray([float(e - s) for s, e in rows_w], dtype=acc, device=dev)
    out = cells / (area_h[:, None] * area_w[None, :])
    return xp.astype(out, input.dtype, copy=False)


def _matrix(xp, dev, dtype, n_in: int, n_out: int):
    """``(n_out, n_in)`` matrix whose row ``a`` averages band ``a``."""
    bands = _bands(n_in, n_out)
    start = xp.asarray([s for s, _ in bands], dtype=xp.int64, device=dev)[:, None]
    end = xp.asarray([e for _, e in bands], dtype=xp.int64, device=dev)[:, None]
    cols = xp.arange(n_in, dtype=xp.int64, device=dev)[None, :]
    inside = xp.astype((cols >= start) & (cols < end), dtype)
    return inside / xp.astype(end - start, dtype)


def adaptive_avg_pool2d_backward(grad_output, input, output_size):
    """Gradient of :func:`adaptive_avg_pool2d`: each output's gradient spread evenly over its band.

    Parameters
    ----------
    grad_output : array of shape (N, C, Ho, Wo)
    input, output_size
        As given to :func:`adaptive_avg_pool2d` (only ``input``'s shape and dtype are read).

    Returns
    -------
    array of ``input``'s shape: ``P_h^T @ grad_output @ P_w``.
    """
    xp = namespace_of(grad_output=grad_output, input=input)
    _check(xp, input)
    h, w = input.shape[-2:]
    ho, wo = _out_size((h, w), output_size)
    expected = (*input.shape[:-2], ho, wo)
    check_grad_output(grad_output, expected, input)
    acc = input.dtype if input.dtype == xp.float64 else xp.float32
    dev = device(input)
    ph = _matrix(xp, dev, acc, h, ho)  # (Ho, H)
    pw = _matrix(xp, dev, acc, w, wo)  # (Wo, W)
    g = xp.astype(grad_output, acc, copy=False)
    gx = xp.matmul(xp.matrix_transpose(ph), xp.matmul(g, pw))  # (H, Ho) @ (..., Ho, W)
    return xp.astype(gx, input.dtype, copy=False)
