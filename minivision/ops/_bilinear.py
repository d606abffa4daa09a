"""The bilinear sampling shared by ``roi_align`` and ``ps_roi_align``, as linear operators.

RoIAlign is linear in the feature map: every output bin is a fixed weighted sum of input
pixels. We build that sum's weights once per call (they are shared by all channels) and apply
them in one product; the backward pass applies the same weights transposed. Two forms:

* **Fixed sampling grid** (``sampling_ratio = s > 0``): each bin reads ``s * s`` samples, each
  sample four pixels, so the operator is a sparse matrix with exactly ``4 * s * s`` entries per
  bin -- one row of ``csr_matmul`` per bin. The entries are torchvision's own (same pixels, same
  weights ``hy * hx``, ...), so NaN spreads exactly as in its loops, through zero weights too.
* **Adaptive grid** (``sampling_ratio <= 0``): the grid is ``ceil(roi_size / bins)`` samples per
  bin, a number that depends on the box. With no data-dependent shapes allowed, we use that
  bilinear weights are *separable*: the weight of pixel ``(h, w)`` in bin ``(ph, pw)`` is
  ``Ay[ph, h] * Ax[pw, w]``, where ``Ay`` sums the row weights of the bin's samples. ``Ay`` has
  a fixed shape ``(PH, H)`` whatever the grid, and ``out_k = Ay_k @ X_b @ Ax_k.T`` is two dense
  matrix products per RoI (batched over all RoIs, one batch per image). The price: the products
  run over the whole map (``N * K * PH * H * C * W`` multiply-adds instead of the samples'
  ``K * C * PH * PW * 4 * grid**2``), and since a zero weight times NaN is NaN, a NaN or inf
  anywhere in a channel of an image reaches every RoI of that image (and only that image).

Every coordinate is computed in the input's dtype with torchvision's operation order
(``(start + p * bin) + ((i + 0.5) * bin) / grid``), so the sample points are bitwise
torchvision's; only the order of the final sums differs.
"""

from __future__ import annotations

from .._backend import device, scatter_add

__all__ = [
    "geometry",
    "grid_samples",
    "sparse_operator",
    "channels_last",
    "adaptive_weights",
    "dense_apply",
    "dense_apply_t",
]


def geometry(xp, rois, spatial_scale, bins, axis, *, aligned, clamp, sampling_ratio):
    """Start, bin size and grid size of every RoI along one axis (``axis`` 1: x, 2: y).

    Returns ``(start, bin_size, grid)``: two arrays of the RoIs' dtype (K,) and the grid as
    int64 (K,) (the sampling ratio itself when it is positive).
    """
    offset = 0.5 if aligned else 0.0
    start = rois[:, axis] * spatial_scale - offset
    end = rois[:, axis + 2] * spatial_scale - offset
    size = end - start
    if clamp:  # aligned=False: malformed or tiny RoIs are forced to at least one pixel
        size = xp.maximum(size, xp.ones_like(size))
    bin_size = size / bins
    if sampling_ratio > 0:
        grid = xp.full(rois.shape[:1], sampling_ratio, dtype=xp.int64, device=device(rois))
    else:
        grid = _to_int(xp, xp.ceil(size / bins))
    return start, bin_size, grid


def work_dtype(xp, dtype):
    """The dtype the dense products run in: float16 is promoted to float32."""
    return xp.float32 if dtype == getattr(xp, "float16", None) else dtype


def _to_int(xp, v):
    v = xp.astype(v, xp.float64)
    v = xp.where(xp.isfinite(v), v, xp.zeros_like(v))
    return xp.astype(xp.clip(v, min=-(2.0**40), max=2.0**40), xp.int64)


def bilinear_corners(xp, pos, size):
    """torchvision's bilinear rule along one axis for sample coordinates ``pos``.

    Returns ``(lo, hi, w_lo, w_hi, valid)``: the two pixels read (int64), their weights (the
    dtype of ``pos``) and whether the sample lies in ``[-1, size]``. Samples in ``[-1, 0]``
    snap to 0 and samples past ``size - 1`` read the last pixel only (``lo == hi``).
    """
    valid = (pos >= -1) & (pos <= size)  # NaN compares False: invalid
    zero = xp.zeros_like(pos)
    p = xp.where(valid & (pos > 0), pos, zero)
    lo = xp.astype(xp.floor(p), xp.int64)
    at_end = lo >= size - 1
    last = xp.full_like(lo, size - 1)
    lo = xp.where(at_end, last, lo)
    hi = xp.where(at_end, last, lo + 1)
    p = xp.where(at_end, xp.astype(lo, pos.dtype), p)
    w_hi = p - xp.astype(lo, pos.dtype)
    return lo, hi, 1 - w_hi, w_hi, valid


def grid_samples(xp, start, bin_size, bins, grid: int, size):
    """Sample coordinates of a fixed ``grid`` per bin, then their pixels and weights.

    Returns ``(pixels, weights, valid)``: int64 (K, bins, grid, 2), dtype (K, bins, grid, 2),
    bool (K, bins, grid); the last axis is (low, high) pixel.
    """
    dtype, dev = start.dtype, device(start)
    p = xp.arange(bins, dtype=dtype, device=dev)[None, :, None]
    i = (xp.arange(grid, dtype=dtype, device=dev) + 0.5)[None, None, :]
    b = bin_size[:, None, None]
    pos = (start[:, None, None] + p * b) + (i * b) / grid  # (K, bins, grid)
    lo, hi, w_lo, w_hi, valid = bilinear_corners(xp, pos, size)
    return xp.stack((lo, hi), axis=-1), xp.stack((w_lo, w_hi), axis=-1), valid


def sparse_operator(xp, ys, xs, batch, ok, shape, planes=None):
    """Entries of the fixed-grid operator: ``(cols, weights, n_cols)``.

    ``cols`` and ``weights`` have shape (K * PH * PW, 4 * g * g), in torchvision's order
    (sample row, sample column, then the corners ``w1 .. w4``).

    ``ys``/``xs`` come from :func:`grid_samples`. Column ``((b * H) + row) * W + col`` is a
    pixel of the channels-last map; ``planes`` (``(K, PH, PW)`` int64), if given, selects a
    separate map per bin (position-sensitive pooling), column ``plane * N * H * W + ...``.
    Invalid samples and RoIs point at the extra zero pixel at the end with weight 0.
    """
    (ry, wy, vy), (rx, wx, vx) = ys, xs
    n, h, w = shape
    k, ph, g = vy.shape
    pw = vx.shape[1]
    # (K, PH, 1, g, 1, 2, 1) x (K, 1, PW, 1, g, 1, 2): bin (ph, pw), sample (iy, ix), corner
    row = ry[:, :, None, :, None, :, None]
    col = rx[:, None, :, None, :, None, :]
    weight = wy[:, :, None, :, None, :, None] * wx[:, None, :, None, :, None, :]  # hy * hx, ...
    pixel = (batch[:, None, None, None, None, None, None] * h + row) * w + col
    if planes is not None:
        pixel = pixel + planes[:, :, :, None, None, None, None] * (n * h * w)
    valid = vy[:, :, None, :, None, None, None] & vx[:, None, :, None, :, None, None]
    valid = valid & ok[:, None, None, None, None, None, None]
    total = n * h * w if planes is None else n * h * w * ph * pw
    shape7 = (k, ph, pw, g, g, 2, 2)
    pixel = xp.where(
        valid,
        xp.broadcast_to(pixel, shape7),
        xp.full(shape7, total, dtype=xp.int64, device=device(pixel)),
    )
    weight = xp.where(
        valid,
        xp.broadcast_to(weight, shape7),
        xp.zeros(shape7, dtype=weight.dtype, device=device(weight)),
    )
    entries = (k * ph * pw, g * g * 4)
    return xp.reshape(pixel, entries), xp.reshape(weight, entries), total + 1


def channels_last(xp, maps):
    """(N, C, H, W) -> (N * H * W + 1, C): one row per pixel, plus a zero row at the end."""
    n, c, h, w = maps.shape
    rows = xp.reshape(xp.permute_dims(maps, (0, 2, 3, 1)), (n * h * w, c))
    return xp.concat((rows, xp.zeros((1, c), dtype=maps.dtype, device=device(maps))), axis=0)


def adaptive_weights(xp, start, bin_size, grid, bins, size):
    """Summed weights ``A[k, p, h]`` of row (or column) ``h`` in bin ``p``: (K, bins, size).

    A RoI's samples along one axis, all bins together, form one arithmetic progression
    (spacing ``bin / grid``). Only the samples in ``[-1, size]`` count, and with the adaptive
    grid the spacing exceeds half a pixel (or the grid is 1), so at most
    ``max(2 * size + 3, bins)`` of them do: a fixed number, whatever the box. We enumerate that
    many consecutive samples from just before the first valid one, compute each exactly as
    torchvision does (``(start + p * bin) + ((i + 0.5) * bin) / grid``), and scatter-add
    their two bilinear weights into ``A``.
    """
    dtype, dev = start.dtype, device(start)
    k = start.shape[0]
    many = max(2 * size + 3, bins) + 4  # valid samples per RoI, plus a margin for rounding
    has = grid > 0
    g = xp.where(has, grid, xp.ones_like(grid))  # (K,) int64, never 0
    spacing = xp.astype(bin_size, xp.float64) / xp.astype(g, xp.float64)
    safe = xp.where(spacing > 0, spacing, xp.ones_like(spacing))
    first = (-1.0 - xp.astype(start, xp.float64)) / safe - 0.5
    first = xp.clip(_to_int(xp, xp.ceil(first)) - 2, min=0)  # (K,)
    j = first[:, None] + xp.arange(many, dtype=xp.int64, device=dev)[None, :]  # (K, M)
    exists = has[:, None] & (j < bins * g[:, None])
    j = xp.where(exists, j, xp.zeros_like(j))
    p, i = j // g[:, None], j % g[:, None]  # bin, sample within the bin
    b = bin_size[:, None]
    pos = (start[:, None] + xp.astype(p, dtype) * b) + (
        (xp.astype(i, dtype) + 0.5) * b
    ) / xp.astype(g, dtype)[:, None]
    lo, hi, w_lo, w_hi, valid = bilinear_corners(xp, pos, size)
    valid = valid & exists
    zero = xp.zeros_like(w_lo)
    row = (xp.arange(k, dtype=xp.int64, device=dev)[:, None] * bins + p) * size  # (K, M)
    index = xp.reshape(xp.stack((row + lo, row + hi), axis=-1), (-1,))
    weight = xp.stack((xp.where(valid, w_lo, zero), xp.where(valid, w_hi, zero)), axis=-1)
    summed = scatter_add(
        xp.zeros(k * bins * size, dtype=dtype, device=dev), index, xp.reshape(weight, (-1,))
    )
    return xp.reshape(summed, (k, bins, size))


def dense_apply(xp, ay, ax, batch, ok, maps):
    """``out[k] = Ay[k] @ X[b_k] @ Ax[k].T`` for every RoI: (K, C, PH, PW).

    One pair of batched products per image (a loop over the N images, not over RoIs): every
    RoI is pooled from every image and ``where`` keeps its own, so that a NaN in one image
    cannot leak into another image's RoIs through a zero weight.
    """
    n, c, h, w = maps.shape
    k, ph, _ = ay.shape
    pw = ax.shape[1]
    work = work_dtype(xp, maps.dtype)
    ay2 = xp.reshape(xp.astype(ay, work), (k * ph, h))
    # (K, PW, W) -> (K, W, PW), copied so that the batched product runs in BLAS
    axt = xp.reshape(xp.reshape(xp.permute_dims(xp.astype(ax, work), (0, 2, 1)), (-1,)), (k, w, pw))
    out = xp.zeros((k, c, ph, pw), dtype=work, device=device(maps))
    for image in range(n):
        rows = xp.reshape(xp.permute_dims(xp.astype(maps[image, ...], work), (1, 0, 2)), (h, c * w))
        t = xp.reshape(ay2 @ rows, (k, ph * c, w))  # rows contracted: (K, PH * C, W)
        pooled = xp.permute_dims(xp.reshape(t @ axt, (k, ph, c, pw)), (0, 2, 1, 3))
        mine = ((batch == image) & ok)[:, None, None, None]
        out = xp.where(mine, pooled, out)
    return xp.astype(out, maps.dtype)


def dense_apply_t(xp, ay, ax, batch, ok, grads, shape):
    """The transpose of :func:`dense_apply`: (K, C, PH, PW) gradients -> (N, C, H, W)."""
    n, c, h, w = shape
    k, ph, _ = ay.shape
    pw = ax.shape[1]
    work = work_dtype(xp, grads.dtype)
    ay2t = xp.permute_dims(xp.reshape(xp.astype(ay, work), (k * ph, h)), (1, 0))  # (H, K * PH)
    g = xp.astype(grads, work)
    images = []
    for image in range(n):
        mine = ((batch == image) & ok)[:, None, None, None]
        gi = xp.where(mine, g, xp.zeros_like(g))  # other images' RoIs send nothing
        gi = xp.reshape(xp.permute_dims(gi, (0, 2, 1, 3)), (k, ph * c, pw))
        gi = xp.reshape(gi @ xp.astype(ax, work), (k * ph, c * w))  # columns spread
        rows = xp.reshape(ay2t @ gi, (h, c, w))  # rows spread: (H, C, W)
        images.append(xp.permute_dims(rows, (1, 0, 2)))
    return xp.astype(xp.stack(images, axis=0), grads.dtype)
