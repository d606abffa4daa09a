"""RoI max pooling (Fast R-CNN, Girshick, ICCV 2015) and its backward pass.

Fast R-CNN runs the CNN once per image and crops every proposal out of the *feature map*:
the proposal is projected onto the map (``spatial_scale``, 1/16 for VGG16), snapped to whole
feature cells, cut into a ``PH x PW`` grid of bins, and each bin is max-pooled. torchvision's
CPU kernel (0.29.1), which this module reproduces bit for bit:

1. ``x1, y1, x2, y2`` are multiplied by ``spatial_scale`` and rounded half away from zero
   (C ``round``: 0.5 -> 1, -0.5 -> -1);
2. the RoI size is ``max(x2 - x1 + 1, 1)`` -- the end cell is *inclusive* (the only "+1" left
   in torchvision) and malformed RoIs become 1 x 1;
3. bin ``ph`` covers rows ``floor(ph * bin_h)`` to ``ceil((ph + 1) * bin_h)`` (exclusive) after
   the RoI's first row, ``bin_h = roi_h / PH``, clamped to ``[0, H]``: neighbouring bins may
   share a row, bins outside the map are empty and give **0** (argmax -1);
4. the maximum is taken with a strict ``>`` starting from ``-FLT_MAX``: ties go to the first
   element in row-major order, NaN is never selected, and a bin holding only NaN / -inf gives
   ``-3.4028235e38`` (``-inf`` in float16) with argmax -1;
5. ``argmax`` is the flat index ``h * W + w`` in the ``(batch, channel)`` plane; the backward
   pass adds each output gradient to that one input element.

How it is vectorised (no loop over RoIs, bins or pixels). A bin can hold one pixel or the whole
map, so a fixed-size window would not do. Instead we build a **2-D sparse table** once per
channel: ``table[i][j][h, w]`` is the maximum of the ``2**i x 2**j`` block at ``(h, w)``. Any
bin of ``hh x ww`` pixels is the union of four (overlapping) blocks of size
``2**floor(log2 hh) x 2**floor(log2 ww)``, so its maximum is the maximum of four table
entries -- four gathers per bin, whatever its size. The table holds about
``log2(H) * log2(W)`` copies of the map.

For the argmax (and so the backward pass) the table is built on **ranks** instead of values:
each plane is sorted once (ascending value, ties in *descending* position), so that the pixel
of highest rank in a bin is its maximum, and among equal values the first in row-major order
-- exactly torchvision's rule, ties included. The rank then tells both the value and where it
came from.

Invalid RoIs (batch index outside ``[0, N)``, non-finite coordinates; see ``_rois``) pool
nothing: 0 and argmax -1, where torchvision reads out of bounds or returns garbage.
"""

from __future__ import annotations

from .._backend import device, is_numpy, scatter_add, stable_argsort
from .._validate import check_ints, check_number
from ._rois import as_rois, check_input, output_hw, roi_validity

__all__ = ["roi_pool", "roi_pool_backward"]

FLT_MAX = 3.4028234663852886e38  # torchvision starts every bin from -FLT_MAX, in any dtype
_CPU_TABLE_BYTES = 1 << 22  # NumPy builds tables of at most about this size (channel blocks)


def roi_pool(input, boxes, output_size, spatial_scale: float = 1.0, *, return_argmax=False):
    """Max-pool every RoI of ``boxes`` into ``output_size`` bins (Fast R-CNN's RoI pooling).

    Parameters
    ----------
    input : array of shape (N, C, H, W)
        Feature maps, real floating point.
    boxes : array of shape (K, 5), or list of arrays of shape (L_i, 4)
        RoIs ``(batch_index, x1, y1, x2, y2)`` in *image* coordinates, same dtype as
        ``input``; a list holds one ``(L_i, 4)`` array per image (batch index = position).
    output_size : int or (int, int)
        ``(PH, PW)``, the pooled size (7 x 7 in Fast R-CNN).
    spatial_scale : float
        Image -> feature-map factor (1/16 for a stride-16 backbone).
    return_argmax : bool
        Also return the argmax (what torchvision's op saves for its backward pass).

    Returns
    -------
    output : array of shape (K, C, PH, PW), input's dtype
    argmax : int32 array of shape (K, C, PH, PW), only if ``return_argmax``
        Flat index ``h * W + w`` of the maximum in its ``(batch, channel)`` plane, -1 for an
        empty bin (or one holding only NaN / values <= -FLT_MAX).

    Notes
    -----
    Mirrors ``torchvision.ops.roi_pool`` (0.29.1) exactly, values and argmax, in every dtype
    it accepts (float16, float32, float64), including its quirks: the inclusive "+1" in the
    RoI size, round half away from zero, overlapping floor/ceil bins, ``-FLT_MAX`` for bins of
    NaNs. Deliberate difference: invalid RoIs (batch index out of range, NaN/inf coordinates)
    give 0 / -1 instead of undefined behaviour. Device-pure.
    """
    scale = check_number("spatial_scale", spatial_scale, positive=True)
    ph, pw = output_hw(output_size)
    xp, rois = as_rois(input, boxes)
    check_input(xp, input)
    if not isinstance(return_argmax, bool):
        raise TypeError(f"return_argmax must be a bool, got {type(return_argmax).__name__}")
    n, c, h, w = input.shape
    queries, batch = _queries(xp, rois, scale, ph, pw, n, h, w)
    if return_argmax:
        return _pool_ranks(xp, input, queries, batch, (ph, pw))
    neg = _lowest(xp, input.dtype)
    keys = xp.where(input > neg, input, xp.full_like(input, neg))  # NaN -> never selected
    best = _table_max(xp, keys, queries, sentinel=0)  # (K * PH * PW, C); empty bins -> 0
    best = xp.reshape(best, (rois.shape[0], ph, pw, c))
    return xp.permute_dims(best, (0, 3, 1, 2))


def roi_pool_backward(grad_output, boxes, argmax, input_shape):
    """Gradient of :func:`roi_pool` with respect to its input.

    Each output gradient goes, whole, to the input element that won the max (its argmax);
    everything else gets 0. Where bins overlap or RoIs share pixels the contributions add up.
    This answers Fast R-CNN's question "how do we backpropagate through RoI pooling?": like
    through max pooling, except that one input pixel can win in several bins and RoIs.

    Parameters
    ----------
    grad_output : array of shape (K, C, PH, PW)
    boxes : array of shape (K, 5), or list of arrays of shape (L_i, 4)
        The RoIs of the forward pass (only their batch indices are used).
    argmax : integer array of shape (K, C, PH, PW)
        From ``roi_pool(..., return_argmax=True)``; -1 sends nothing back.
    input_shape : (N, C, H, W)

    Returns
    -------
    array of shape (N, C, H, W), grad_output's dtype. The boxes get no gradient (the
    quantised bin edges are piecewise constant in the box coordinates).

    Notes
    -----
    Mirrors torchvision's ``_roi_pool_backward``: gradients are accumulated in its loop order
    (RoI, channel, bin), so on NumPy the float32 and float64 results are bitwise equal.
    Device-pure: one scatter-add.
    """
    n, c, h, w = check_ints("input_shape", input_shape, 4, text="(N, C, H, W)")
    xp, rois = as_rois(grad_output, boxes)
    if grad_output.ndim != 4 or grad_output.shape[:2] != (rois.shape[0], c):
        raise ValueError(
            f"grad_output must have shape (K, C, PH, PW) = ({rois.shape[0]}, {c}, PH, PW), "
            f"got {tuple(grad_output.shape)}"
        )
    if tuple(argmax.shape) != tuple(grad_output.shape):
        raise ValueError(
            f"argmax must have grad_output's shape {tuple(grad_output.shape)}, "
            f"got {tuple(argmax.shape)}"
        )
    if not xp.isdtype(argmax.dtype, "integral"):
        raise TypeError(f"argmax must have an integer dtype, got {argmax.dtype}")
    dev = device(grad_output)
    batch, ok = roi_validity(xp, rois, n)
    # Plane of every output (RoI, channel); invalid RoIs send theirs to an extra plane. Each
    # plane has one extra slot in front, where argmax -1 lands, so no masking is needed.
    plane = batch[:, None] * c + xp.arange(c, dtype=xp.int64, device=dev)[None, :]  # (K, C)
    plane = xp.where(ok[:, None], plane, xp.full_like(plane, n * c))
    base = (plane * (h * w + 1) + 1)[:, :, None, None]  # the slot of argmax 0
    target = base + argmax  # int64: what the scatter indexes with, without a conversion pass
    zeros = xp.zeros((n * c + 1) * (h * w + 1), dtype=grad_output.dtype, device=dev)
    grad = scatter_add(zeros, xp.reshape(target, (-1,)), xp.reshape(grad_output, (-1,)))
    grad = xp.reshape(grad, (n * c + 1, h * w + 1))[: n * c, 1:]
    return xp.reshape(grad, (n, c, h, w))


# ----------------------------------------------------------------------------- geometry




def _lowest(xp, dtype):
    """``-FLT_MAX`` converted to ``dtype`` (it overflows to -inf in float16)."""
    return -FLT_MAX if float(xp.finfo(dtype).max) >= FLT_MAX else -float("inf")


def _round_half_away(xp, v):
    """C's ``round``: halves go away from zero (``xp.round`` would send them to even)."""
    t = xp.trunc(v)
    return t + xp.where(xp.abs(v - t) >= 0.5, xp.sign(v), xp.zeros_like(v))


def _to_int(xp, v):
    """Float -> int64 with non-finite and huge values tamed (their RoIs are invalid anyway)."""
    v = xp.astype(v, xp.float64)
    v = xp.where(xp.isfinite(v), v, xp.zeros_like(v))
    return xp.astype(xp.clip(v, min=-(2.0**40), max=2.0**40), xp.int64)


def bin_edges(xp, rois, scale, bins, size, axis):
    """First and one-past-last cell of every bin along one axis: two int64 arrays (K, bins).

    ``axis`` is 1 for x (columns) or 2 for y (rows). Products and floor/ceil are evaluated in
    the RoIs' dtype, like torchvision's kernel.
    """
    dev = device(rois)
    start = _to_int(xp, _round_half_away(xp, rois[:, axis] * scale))
    end = _to_int(xp, _round_half_away(xp, rois[:, axis + 2] * scale))
    length = xp.clip(end - start + 1, min=1)  # inclusive end cell; malformed -> 1
    bin_size = xp.astype(length, rois.dtype) / bins
    p = xp.arange(bins, dtype=rois.dtype, device=dev)
    lo = _to_int(xp, xp.floor(p * bin_size[:, None])) + start[:, None]
    hi = _to_int(xp, xp.ceil((p + 1) * bin_size[:, None])) + start[:, None]
    return xp.clip(lo, min=0, max=size), xp.clip(hi, min=0, max=size)


def _levels(n: int) -> list[int]:
    """Block sizes of the sparse table along an axis of length n: 1, 2, 4, ... <= n."""
    return [1 << t for t in range(max(n, 1).bit_length())]


def _level_of(xp, length, sizes):
    """floor(log2(length)) for lengths >= 1, by counting the sizes that fit (exact)."""
    level = xp.zeros_like(length)
    for s in sizes[1:]:
        level = level + xp.astype(length >= s, length.dtype)
    return level


def _queries(xp, rois, scale, ph, pw, n, h, w):
    """Four table rows per bin whose maximum is the bin's maximum: int64 (4 * K * PH * PW,).

    Empty bins and invalid RoIs point all four queries at the sentinel row (the last one).
    Also returns the RoIs' batch indices (K,).
    """
    dev = device(rois)
    k = rois.shape[0]
    batch, ok = roi_validity(xp, rois, n)
    hs, he = bin_edges(xp, rois, scale, ph, h, axis=2)  # (K, PH)
    ws, we = bin_edges(xp, rois, scale, pw, w, axis=1)  # (K, PW)
    empty = (he <= hs)[:, :, None] | (we <= ws)[:, None, :] | ~ok[:, None, None]  # (K, PH, PW)
    hh, ww = xp.clip(he - hs, min=1), xp.clip(we - ws, min=1)
    hsizes, wsizes = _levels(h), _levels(w)
    li, lj = _level_of(xp, hh, hsizes), _level_of(xp, ww, wsizes)  # (K, PH), (K, PW)
    pow_i = xp.take(xp.asarray(hsizes, dtype=xp.int64, device=dev), xp.reshape(li, (-1,)))
    pow_j = xp.take(xp.asarray(wsizes, dtype=xp.int64, device=dev), xp.reshape(lj, (-1,)))
    r2 = he - xp.reshape(pow_i, (k, ph))  # second row block starts here
    c2 = we - xp.reshape(pow_j, (k, pw))
    # Table (i, j) is an (N, H - 2**i + 1, W - 2**j + 1) block of rows; where does each start?
    offsets, heights, widths = _table_layout(n, h, w)
    offsets = xp.asarray(offsets, dtype=xp.int64, device=dev)  # (LW * LH,)
    level = lj[:, None, :] * len(hsizes) + li[:, :, None]  # (K, PH, PW)
    base = xp.reshape(xp.take(offsets, xp.reshape(level, (-1,))), (k, ph, pw))
    height = xp.reshape(
        xp.take(xp.asarray(heights, dtype=xp.int64, device=dev), xp.reshape(li, (-1,))), (k, ph)
    )
    width = xp.reshape(
        xp.take(xp.asarray(widths, dtype=xp.int64, device=dev), xp.reshape(lj, (-1,))), (k, pw)
    )
    row0 = batch[:, None] * height  # (K, PH): first row of this image in table i
    corners = []
    for r in (hs, r2):
        for col in (ws, c2):
            q = base + ((row0 + r)[:, :, None] * width[:, None, :] + col[:, None, :])
            corners.append(q)
    q = xp.stack(corners, axis=0)  # (4, K, PH, PW)
    sentinel = xp.full_like(q, sum(_table_sizes(n, h, w)))
    return xp.reshape(xp.where(empty[None, ...], sentinel, q), (-1,)), batch


def _table_sizes(n, h, w):
    return [n * (h - si + 1) * (w - sj + 1) for sj in _levels(w) for si in _levels(h)]


def _table_layout(n, h, w):
    """Row offset of every table (j outer, i inner), and each table's height and width."""
    sizes = _table_sizes(n, h, w)
    offsets = [sum(sizes[:t]) for t in range(len(sizes))]
    heights = [h - si + 1 for si in _levels(h)]
    widths = [w - sj + 1 for sj in _levels(w)]
    return offsets, heights, widths


# ----------------------------------------------------------------------------- the tables


def _sparse_table(xp, planes, sentinel):
    """All block maxima of ``planes`` (N, H, W, Cb) stacked as rows: (rows + 1, Cb).

    Tables are ordered as in :func:`_table_layout`; the last row is ``sentinel``. Each level
    is the maximum of two half-size blocks of the level below: along x first, then along y.
    """
    n, h, w, cb = planes.shape
    if is_numpy(xp):
        return _sparse_table_numpy(xp, planes, sentinel)
    along_x = [planes]
    for s in _levels(w)[:-1]:  # block width 2s from two blocks of width s
        prev = along_x[-1]
        width = prev.shape[2]
        along_x.append(xp.maximum(prev[:, :, : width - s, :], prev[:, :, s:, :]))
    blocks = []
    for table in along_x:
        blocks.append(xp.reshape(table, (-1, cb)))
        for s in _levels(h)[:-1]:
            height = table.shape[1]
            table = xp.maximum(table[:, : height - s, :, :], table[:, s:, :, :])
            blocks.append(xp.reshape(table, (-1, cb)))
    blocks.append(xp.full((1, cb), sentinel, dtype=planes.dtype, device=device(planes)))
    return xp.concat(blocks, axis=0)


def _sparse_table_numpy(xp, planes, sentinel):
    """:func:`_sparse_table` for NumPy: each level is computed in place in the stacked table
    (``out=``), which saves copying every level once more into it."""
    n, h, w, cb = planes.shape
    table = xp.empty((sum(_table_sizes(n, h, w)) + 1, cb), dtype=planes.dtype)
    table[-1, :] = sentinel
    start = 0

    def level(hh, ww):  # the next table's rows, as an (N, hh, ww, Cb) view
        nonlocal start
        view = xp.reshape(table[start : start + n * hh * ww], (n, hh, ww, cb))
        start += n * hh * ww
        return view

    prev = None
    for s in [0, *_levels(w)[:-1]]:  # block width 2s from two blocks of width s
        if prev is None:
            cur = level(h, w)
            cur[...] = planes
        else:
            width = prev.shape[2]
            cur = xp.maximum(prev[:, :, : width - s], prev[:, :, s:], out=level(h, width - s))
        prev, col = cur, cur
        for t in _levels(h)[:-1]:  # block height 2t from two blocks of height t
            height = col.shape[1]
            col = xp.maximum(col[:, : height - t], col[:, t:], out=level(height - t, col.shape[2]))
    return table


def _take(xp, a, indices, axis=None):
    """``xp.take``; on NumPy with ``mode="wrap"``, which does not check every index the way
    the default ``"raise"`` does -- up to twice as fast. The indices of this module are in
    range by construction, so wrapping never happens."""
    if is_numpy(xp):
        return a.take(indices, axis=axis, mode="wrap")
    return xp.take(a, indices, axis=axis)


def _table_max(xp, maps, queries, sentinel):
    """Maximum over the four queried blocks of every bin: (K * PH * PW, C)."""
    parts = [part for _, part in _table_max_blocks(xp, maps, queries, sentinel)]
    if not parts:
        return xp.zeros((queries.shape[0] // 4, 0), dtype=maps.dtype, device=device(maps))
    return parts[0] if len(parts) == 1 else xp.concat(parts, axis=1)


def _table_max_blocks(xp, maps, queries, sentinel):
    """:func:`_table_max` a block of channels at a time: yields ``(c0, (K * PH * PW, Cb))``.

    ``maps`` is (N, C, H, W). They are copied once to channels-last order, so that a table
    row (one block, all channels) is contiguous and each query gathers whole rows. NumPy then
    works through a block of channels at a time, so that the tables stay in the CPU cache.
    """
    n, c, h, w = maps.shape
    # (N, C, H, W) -> (N * H * W, C) copies into channels-last order; -> (N, H, W, C)
    planes = xp.reshape(
        xp.reshape(xp.permute_dims(maps, (0, 2, 3, 1)), (n * h * w, c)), (n, h, w, c)
    )
    if is_numpy(xp):  # small tables stay in the CPU cache: several times faster
        # NumPy's take copies rows of 2, 4, ..., 32 bytes with a fixed-size copy (other sizes
        # go through memmove): 32-byte rows, halved while the table outgrows the budget.
        rows = sum(_table_sizes(n, h, w)) + 1
        step = max(32 // planes.dtype.itemsize, 1)
        while step > 1 and rows * step * planes.dtype.itemsize > _CPU_TABLE_BYTES:
            step //= 2
    else:
        step = max(c, 1)
    for c0 in range(0, c, step):
        table = _sparse_table(xp, planes[..., c0 : c0 + step], sentinel)
        found = _take(xp, table, queries, axis=0)  # (4 * K * PH * PW, Cb)
        yield c0, xp.max(xp.reshape(found, (4, -1, found.shape[1])), axis=0)


def _pool_ranks(xp, input, queries, batch, output_size):
    """Values and argmax through a sparse table of per-plane ranks (ties: first row-major)."""
    n, c, h, w = input.shape
    ph, pw = output_size
    dev = device(input)
    hw = h * w
    k = queries.shape[0] // (4 * ph * pw)
    neg = _lowest(xp, input.dtype)
    values = xp.reshape(input, (n * c, hw))
    values = xp.where(values > neg, values, xp.full_like(values, neg))  # NaN ranks lowest
    # Sort each plane ascending, ties in *descending* position, so that the first pixel of a
    # tie ranks highest. order[p, r] is the position of the pixel of rank r in plane p.
    small = xp.int16 if hw + 1 <= 32767 else xp.int32  # do ranks 0 .. hw fit in 16 bits?
    order = (hw - 1) - stable_argsort(xp.flip(values, axis=1), axis=1)
    ranked = xp.take_along_axis(values, order, axis=1)  # (P, HW), ascending
    rank = stable_argsort(xp.astype(order, small), axis=1)  # inverse permutation: pixel -> rank
    # Rank hw (one past the last) is the sentinel of empty bins: value 0, argmax -1; a pixel
    # that is NaN or <= -FLT_MAX only wins bins without numbers: value -FLT_MAX, argmax -1.
    position = xp.where(
        ranked > neg, xp.astype(order, xp.int32), xp.full_like(order, -1, dtype=xp.int32)
    )
    ranked = xp.concat((ranked, xp.zeros((n * c, 1), dtype=input.dtype, device=dev)), axis=1)
    position = xp.concat((position, xp.full((n * c, 1), -1, dtype=xp.int32, device=dev)), axis=1)
    rank = xp.reshape(xp.astype(rank, small), (n, c, h, w))
    # Each output reads plane (batch, channel); invalid RoIs read only sentinels. The lookups
    # go plane by plane (K, C, PH * PW), so that neighbouring indices hit one cached plane:
    # every block of channels (K * PH * PW, Cb) of best ranks is written, transposed and
    # widened to int64 in the same pass, straight into that order.
    flat = xp.empty((k, c, ph * pw), dtype=xp.int64, device=dev)
    for c0, best in _table_max_blocks(xp, rank, queries, sentinel=hw):
        cb = best.shape[1]
        flat[:, c0 : c0 + cb, :] = xp.permute_dims(xp.reshape(best, (k, ph * pw, cb)), (0, 2, 1))
    plane = batch[:, None] * c + xp.arange(c, dtype=xp.int64, device=dev)[None, :]  # (K, C)
    flat += (plane * (hw + 1))[:, :, None]  # in place: no second (K, C, PH * PW) int64 array
    flat = xp.reshape(flat, (-1,))
    output = xp.reshape(_take(xp, xp.reshape(ranked, (-1,)), flat), (k, c, ph, pw))
    argmax = xp.reshape(_take(xp, xp.reshape(position, (-1,)), flat), (k, c, ph, pw))
    return output, argmax
