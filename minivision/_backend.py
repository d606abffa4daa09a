"""One source for NumPy (CPU) and CuPy (GPU): the array namespace and its few gap-fillers.

Every public function in minivision starts with ``xp = array_namespace(*inputs)`` and then
writes against the Python Array API standard (2024.12), so the same code runs on NumPy, CuPy,
PyTorch and array-api-strict. What the standard lacks lives here, one function each, with one
branch per library. This is the only module (besides declared host islands and the plotting /
command-line layer) that may import NumPy, and the only place where data crosses between the
host and a device:

* :func:`to_numpy` — the one device -> host copy;
* :func:`from_numpy` — the one host -> device copy.

A ``grep`` for those two names finds every host round trip in the library.
"""

from __future__ import annotations

import math

import numpy as np
from array_api_compat import (
    array_namespace,
    device,
    is_array_api_obj,
    is_cupy_namespace,
    is_numpy_namespace,
    is_torch_namespace,
    to_device,
)

__all__ = [
    "array_namespace",
    "device",
    "to_numpy",
    "from_numpy",
    "scatter_add",
    "csr_matmul",
    "stable_argsort",
    "run_starts",
    "namespace_of",
    "is_floating",
    "is_numpy",
    "is_host",
    "clamp_min",
    "library_sigmoid",
    "smallest_k",
]


def namespace_of(**arrays):
    """Array namespace shared by the named arrays, with an error that names them.

    ``namespace_of(boxes1=a, boxes2=b)`` is ``array_namespace(a, b)``, but a non-array argument
    or arrays from two different libraries raise a ``TypeError`` that says which argument is
    at fault, so a learner sees "boxes2 is a list" rather than an array-api-compat traceback.
    Arguments that are ``None`` are ignored.
    """
    given = {k: v for k, v in arrays.items() if v is not None}
    for name, value in given.items():
        if not is_array_api_obj(value):
            raise TypeError(
                f"{name} must be an array (NumPy, CuPy, torch, ...), got {type(value).__name__}"
            )
    try:
        xp = array_namespace(*given.values())
    except TypeError as err:
        kinds = ", ".join(f"{k}: {type(v).__module__}.{type(v).__name__}" for k, v in given.items())
        names = ", ".join(given)
        raise TypeError(f"{names} must all come from one array library, got {kinds}") from err
    devices = {k: device(v) for k, v in given.items()}
    if len(set(map(str, devices.values()))) > 1:
        where = ", ".join(f"{k} on {d}" for k, d in devices.items())
        raise ValueError(f"{', '.join(given)} must all be on one device, got {where}")
    return xp


def is_floating(xp, x) -> bool:
    """True if ``x`` has a real floating-point dtype (float16/32/64, bfloat16)."""
    return xp.isdtype(x.dtype, "real floating")


def to_numpy(x) -> np.ndarray:
    """Copy an array from any backend to a host NumPy array (the only device -> host copy).

    Used by host islands, plotting and tests. For NumPy input this returns the array itself
    (no copy), so callers must not mutate the result.
    """
    if isinstance(x, np.ndarray):
        return x
    xp = array_namespace(x)
    if is_numpy_namespace(xp):
        return np.asarray(x)
    if is_cupy_namespace(xp):
        return x.get()
    if is_torch_namespace(xp):
        return x.detach().cpu().numpy()
    # array-api-strict and other standard libraries: move to their CPU device first.
    info = xp.__array_namespace_info__()
    cpu = info.default_device() if not hasattr(xp, "Device") else xp.Device("CPU_DEVICE")
    return np.asarray(to_device(x, cpu))


def from_numpy(a, like):
    """Copy host data onto the backend and device of ``like`` (the only host -> device copy).

    ``a`` is anything ``np.asarray`` accepts; its dtype is kept (NumPy's default integer and
    float types included), so pass an explicit dtype to ``np.asarray`` first if it matters.
    """
    xp = array_namespace(like)
    a = np.asarray(a)
    if is_numpy_namespace(xp):
        return a
    if is_torch_namespace(xp):
        import torch

        return torch.from_numpy(np.ascontiguousarray(a)).to(device(like))
    return xp.asarray(a, device=device(like))


def scatter_add(out, index, values):
    """``out[index[i]] += values[i]`` along axis 0, where repeated indices accumulate.

    Parameters
    ----------
    out : array of shape (M, ...)
        Accumulator; it is **not** modified, a new array is returned.
    index : integer array of shape (K,)
        Target rows, each in ``[0, M)``.
    values : array of shape (K, ...)
        Rows to add; trailing dimensions must match ``out``'s.

    Returns
    -------
    array of shape (M, ...), same dtype and device as ``out``.

    Notes
    -----
    The Array API standard has no scatter-add (data-apis/array-api#979), and plain fancy
    assignment ``out[index] += values`` silently drops repeated indices on NumPy and is
    undefined on CuPy. Branches: NumPy and CuPy ``add.at`` (CuPy uses atomicAdd, so float sums
    may differ from NumPy in the last bits), torch ``index_add``, and a standard-only fallback
    (stable sort + cumulative sum + searchsorted) for every other library; that fallback is exact
    for integers, while for floats each sum carries the rounding of a running total (about
    ``eps * sum(|values|)``); NaN and infinities are counted apart so that they stay in their
    own rows. Device-pure: no host synchronisation on any branch.
    """
    xp = array_namespace(out, index, values)
    if index.ndim != 1:
        raise ValueError(f"index must be 1-D, got shape {tuple(index.shape)}")
    if tuple(values.shape) != (index.shape[0], *out.shape[1:]):
        raise ValueError(
            f"values must have shape {(index.shape[0], *out.shape[1:])} "
            f"(len(index),) + out.shape[1:], got {tuple(values.shape)}"
        )
    values = xp.astype(values, out.dtype)
    if is_numpy_namespace(xp) or is_cupy_namespace(xp):
        result = xp.asarray(out, copy=True)
        xp.add.at(result, index, values)
        return result
    if is_torch_namespace(xp):
        return out.index_add(0, index.to(dtype=xp.int64), values)
    return _scatter_add_standard(xp, out, index, values)


def _scatter_add_standard(xp, out, index, values):
    """Scatter-add written only with standard functions (sort, cumulative_sum, searchsorted)."""
    dev = device(out)
    order = xp.argsort(index, stable=True)
    idx = xp.take(index, order)
    val = xp.take(values, order, axis=0)
    # (K, ...) -> (K + 1, ...): csum[j] = sum of the first j sorted rows
    rows = xp.arange(out.shape[0], dtype=idx.dtype, device=dev)
    lo = xp.searchsorted(idx, rows, side="left")
    hi = xp.searchsorted(idx, rows, side="right")

    def segment_sums(v):
        csum = xp.cumulative_sum(v, axis=0, include_initial=True)
        return xp.take(csum, hi, axis=0) - xp.take(csum, lo, axis=0)

    if not xp.isdtype(val.dtype, "real floating"):
        return out + segment_sums(val)
    # A running total would carry a NaN or an infinity into every later segment (inf - inf is
    # NaN), so only the finite values are summed that way; the non-finite ones are counted per
    # segment and added back as one +inf, -inf or NaN each, which gives what adding them in
    # turn gives (inf + -inf = NaN).
    total = segment_sums(xp.where(xp.isfinite(val), val, 0.0))
    for special in (math.inf, -math.inf, math.nan):
        hit = xp.isnan(val) if math.isnan(special) else val == special
        count = segment_sums(xp.astype(hit, xp.int64))
        total = total + xp.where(count > 0, xp.asarray(special, dtype=val.dtype, device=dev), 0.0)
    return out + total


def csr_matmul(cols, weights, dense, *, transpose=False, n_cols=None):
    """Product of a sparse matrix ``S`` that has ``E`` entries in every row with a dense matrix.

    Row ``r`` of ``S`` holds ``S[r, cols[r, e]] += weights[r, e]`` for ``e < E`` (repeated
    columns add up). RoIAlign is such a matrix: one row per output bin, ``4 * s * s`` entries
    (four bilinear corners of ``s * s`` samples), and its backward pass is ``S.T``.

    Parameters
    ----------
    cols : integer array of shape (R, E)
        Column of each entry, in ``[0, n_cols)``.
    weights : array of shape (R, E)
        Value of each entry. A stored zero still multiplies its pixel, so ``0 * NaN = NaN``
        reaches the result, as in a loop that reads every entry.
    dense : array of shape (n_cols, C), or (R, C) when ``transpose``
    transpose : bool
        Compute ``S.T @ dense`` (shape ``(n_cols, C)``) instead of ``S @ dense`` (``(R, C)``).
    n_cols : int
        Number of columns of ``S``; needed when ``transpose`` (else ``dense.shape[0]``).

    Returns
    -------
    array of ``dense``'s dtype (float16 is computed in float32 and rounded back).

    Notes
    -----
    NumPy uses SciPy's compressed-sparse-row product (one pass over the entries, no
    temporaries). Every other library gathers the rows (``take``), weights them and sums the
    ``E`` entries of each row; the transpose scatters them with :func:`scatter_add`. That costs
    ``R * E * C`` temporary elements, fine on a GPU and in tests. Device-pure on every branch.
    """
    xp = array_namespace(cols, weights, dense)
    rows, per_row = cols.shape
    if n_cols is None:
        n_cols = dense.shape[0]
    if is_numpy_namespace(xp):
        import scipy.sparse as sp

        work = np.float32 if dense.dtype == np.float16 else dense.dtype
        matrix = sp.csr_matrix(
            (
                np.ascontiguousarray(weights, dtype=work).ravel(),
                np.ascontiguousarray(cols).ravel(),
                np.arange(rows + 1) * per_row,
            ),
            shape=(rows, n_cols),
        )
        if transpose:
            matrix = matrix.T
        out = matrix @ np.ascontiguousarray(dense, dtype=work)
        return np.asarray(out, dtype=dense.dtype)
    flat_cols = xp.reshape(cols, (-1,))
    channels = dense.shape[1]
    if not transpose:
        gathered = xp.take(dense, flat_cols, axis=0)  # (R * E, C)
        gathered = xp.reshape(gathered, (rows, per_row, channels))
        return xp.sum(gathered * weights[:, :, None], axis=1, dtype=dense.dtype)
    spread = xp.reshape(weights[:, :, None] * dense[:, None, :], (rows * per_row, channels))
    zeros = xp.zeros((n_cols, channels), dtype=dense.dtype, device=device(dense))
    return scatter_add(zeros, flat_cols, spread)


def stable_argsort(x, axis=-1):
    """``xp.argsort(x, axis=axis, stable=True)``, with a fast path for NumPy.

    NumPy's stable sort of floats is a merge sort, but its stable sort of 16-bit integers is a
    radix sort, several times faster. For float16/float32 (and 16-bit integers) this sorts the
    IEEE bit patterns, made order-preserving, one 16-bit digit at a time (least significant
    first, each pass stable): the same permutation as a stable sort of the values, with
    ``-0.0`` and ``0.0`` equal. NaN must not be present (its place would differ). Other
    libraries and dtypes use ``xp.argsort``. Device-pure.
    """
    xp = array_namespace(x)
    if not is_numpy_namespace(xp) or x.dtype not in (np.float16, np.float32, np.int16, np.uint16):
        return xp.argsort(x, axis=axis, stable=True)
    a = np.moveaxis(np.asarray(x), axis, -1)
    if a.dtype.kind == "f":
        a = a + a.dtype.type(0.0)  # -0.0 -> +0.0
        bits = a.view(np.uint16 if a.dtype == np.float16 else np.uint32)
        sign = bits >> (bits.dtype.itemsize * 8 - 1)
        # negative floats: flip every bit; positive: flip the sign bit only
        top = bits.dtype.type(1) << (bits.dtype.itemsize * 8 - 1)
        key = bits ^ (sign * np.iinfo(bits.dtype).max | top)
    elif a.dtype == np.int16:
        key = a.view(np.uint16) ^ np.uint16(0x8000)
    else:
        key = a
    order = np.argsort((key & 0xFFFF).astype(np.uint16), axis=-1, kind="stable")
    if key.dtype == np.uint32:
        high = np.take_along_axis((key >> 16).astype(np.uint16), order, axis=-1)
        order = np.take_along_axis(order, np.argsort(high, axis=-1, kind="stable"), axis=-1)
    return np.moveaxis(order, -1, axis)


# ----------------------------------------------------------------------------- library branches


def is_numpy(xp) -> bool:
    """Is ``xp`` NumPy (plain or array-api-compat's wrapper)? For CPU-only fast paths."""
    return is_numpy_namespace(xp)


def is_host(xp, x) -> bool:
    """Does ``x`` live in host memory with a CPU library (NumPy, or a torch CPU tensor)?"""
    return is_numpy_namespace(xp) or (
        is_torch_namespace(xp) and getattr(x.device, "type", "") == "cpu"
    )


def clamp_min(xp, x, lo: float):
    """``max(x, lo)`` elementwise (``xp.clip(x, min=lo)``); NumPy's ``maximum`` is 1.5x faster
    than array-api-compat's ``clip`` wrapper, which matters in NMS's inner loop."""
    if is_numpy_namespace(xp):
        return np.maximum(x, lo)
    return xp.clip(x, min=lo)


def library_sigmoid(xp, x):
    """The library's own sigmoid where it has one (torch: bit-equal to torchvision's), else
    ``1 / (1 + exp(-x))``."""
    if is_torch_namespace(xp):
        import torch

        return torch.sigmoid(x)
    return 1 / (1 + xp.exp(-x))


def smallest_k(xp, key, k: int):
    """Indices of the ``k`` smallest entries of the 1-D ``key``, ascending, ties by index (int64).

    A stable ``argsort`` cut at ``k`` (device-pure); on NumPy a partial sort (``argpartition``)
    finds the candidates first, with the same result.
    """
    n = key.shape[0]
    if is_numpy_namespace(xp) and 0 < k < n:
        kth = key[xp.argpartition(key, k - 1)[k - 1]]  # the k-th smallest key
        candidates = xp.nonzero(key <= kth)[0]  # every key up to it, in index order
        order = xp.argsort(key[candidates], stable=True)[:k]
        return xp.astype(candidates[order], xp.int64)
    return xp.astype(xp.argsort(key, stable=True)[:k], xp.int64)


def run_starts(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start index of each run of equal values, run id of every element) of a sorted 1-D
    host array: ``[3, 3, 5, 7, 7]`` -> ``([0, 2, 3], [0, 0, 1, 2, 2])``."""
    n = len(sorted_keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=new[1:])
    return np.flatnonzero(new), np.cumsum(new) - 1
