"""Comparing a learner's result with the reference: the contract first, then the values.

The *contract* is what every caller of the function relies on whatever the numbers are: an
array (not a Python list), the dtype the lesson states (NMS returns ``int64`` indices), a new
array (not one of the inputs handed back, which a caller could then change by accident), and the
shape. The *values* are compared within a tolerance, NaN equal to NaN.
"""

from __future__ import annotations

import numpy as np


def as_numpy(value):
    """``value`` as a NumPy array (a CuPy array is copied to the host)."""
    try:
        from .._backend import to_numpy

        return np.asarray(to_numpy(value))
    except Exception:
        return np.asarray(value)


def is_array(value) -> bool:
    """True for a NumPy (or CuPy) array: something with a shape, a dtype and ``__array__``."""
    return hasattr(value, "shape") and hasattr(value, "dtype") and not np.isscalar(value)


def copy_args(args):
    """The case's arguments with every array copied, so no call can change the case itself."""
    return tuple(np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args)


def _arrays(args):
    return [a for a in args if isinstance(a, np.ndarray)]


def contract_problem(got, expected, got_args, ref_args, dtype=None, fresh=True) -> str | None:
    """None if ``got`` keeps the contract that the reference's ``expected`` keeps; else why not.

    ``got_args`` / ``ref_args`` are the arrays each call received: the learner's result must not
    be one of them (nor a view of one) unless the reference's result is too.
    ``dtype`` is the dtype the lesson's contract states, if it states one. The items of a tuple
    result (an optimiser's new state, say) may hand an input back unchanged (``fresh`` False).
    """
    if isinstance(expected, tuple):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return f"returned {type(got).__name__}, expected a tuple of {len(expected)} arrays"
        dtypes = dtype if isinstance(dtype, tuple) else (dtype,) * len(expected)
        for i, (g, e, d) in enumerate(zip(got, expected, dtypes)):
            problem = contract_problem(g, e, got_args, ref_args, d, fresh=False)
            if problem is not None:
                return f"item {i} of the tuple: {problem}"
        return None
    if not is_array(expected) or expected.ndim == 0:
        return None  # a number: a Python float or a 0-d array are both fine
    if not is_array(got):
        return (
            f"returned a {type(got).__name__}, expected a NumPy array "
            f"(np.asarray(...) or np.array(...) turns a list into one)"
        )
    if dtype is not None and np.dtype(got.dtype) != np.dtype(dtype):
        return f"returned dtype {got.dtype}, the contract says {np.dtype(dtype)}"
    if np.dtype(expected.dtype).kind in "iub" and np.dtype(got.dtype).kind in "fc":
        return (
            f"returned {got.dtype} values where the contract says integers ({expected.dtype}): "
            f"indices and counts must be usable as indices (.astype(np.{expected.dtype}))"
        )
    if fresh and isinstance(got, np.ndarray):
        ref_shares = isinstance(expected, np.ndarray) and any(
            np.may_share_memory(expected, a) for a in _arrays(ref_args)
        )
        for a in _arrays(got_args):
            if ref_shares:
                break
            if got is a:
                return (
                    "returned its input array itself; the contract asks for a new array "
                    "(return x.copy()), so that changing the result cannot change the input"
                )
            if np.may_share_memory(got, a):
                return (
                    "returned a view of its input array; the contract asks for a new array "
                    "(add .copy()), so that changing the result cannot change the input"
                )
    return None


def difference(got, expected, rtol, atol) -> str | None:
    """None if ``got`` matches ``expected`` (NaN equal to NaN); otherwise a one-line description.

    A tuple ``expected`` (a backward pass's gradients) is compared item by item, and the
    description names the item that differs first.
    """
    if isinstance(expected, tuple):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return f"returned {type(got).__name__}, expected a tuple of {len(expected)} arrays"
        for i, (g, e) in enumerate(zip(got, expected)):
            diff = difference(g, e, rtol, atol)
            if diff is not None:
                return f"item {i} of the tuple {diff}"
        return None
    try:
        g = as_numpy(got).astype(np.float64)
    except (TypeError, ValueError):
        return f"returned {type(got).__name__}, expected an array"
    e = as_numpy(expected).astype(np.float64)
    if g.shape != e.shape:
        shown = ""
        if g.ndim == e.ndim == 1 and max(g.size, e.size) <= 20:  # short lists, e.g. kept indices
            values = (np.array2string(as_numpy(v), precision=4) for v in (got, expected))
            shown = ": {} instead of {}".format(*values)
        return f"returned shape {g.shape}, expected {e.shape}{shown}"
    bad = mismatches(g, e, rtol, atol)
    if len(bad) == 0:
        return None
    idx = tuple(int(i) for i in bad[0])
    at = f" at index {idx}" if idx else ""
    return (
        f"differs{at}: got {g[idx]:.6g}, expected {e[idx]:.6g} "
        f"(|diff| {abs(g[idx] - e[idx]):.3g}); {len(bad)} of {e.size} values differ"
    )


def mismatches(g, e, rtol, atol):
    """Indices ``(k, ndim)`` where float arrays ``g`` and ``e`` of one shape differ."""
    with np.errstate(invalid="ignore"):
        # an infinite expected value is matched only exactly (rtol * inf would accept anything)
        close = np.isfinite(e) & (np.abs(g - e) <= atol + rtol * np.abs(e))
        same = (g == e) | (np.isnan(g) & np.isnan(e)) | close
    return np.argwhere(~same)
