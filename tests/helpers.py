"""Helpers the tests share: comparisons with a reference, and gradients from torch autograd.

``tests/`` is on the import path (pyproject's ``pythonpath``), so every test file imports these
with ``from helpers import ...``; fixtures (``be``, ``no_sync``) live in ``conftest.py``.
"""

from __future__ import annotations

import numpy as np
import torch

from minivision._backend import to_numpy

# ----------------------------------------------------------------------------- comparisons



def assert_close(actual, expected, *, what="result", rtol=0.0, atol=0.0, check_dtype=True):
    """Compare an array from any backend with a NumPy/torch reference, NaN equal to NaN.

    ``rtol = atol = 0`` asks for bitwise equality (with -0.0 == 0.0). On failure the message
    says which element differs first, by how much, and how many elements differ, e.g.
    ``box_iou differs at (3, 5): got 0.25, expected 0.2500001 (|diff| 1.2e-07); 1 of 35``.
    """
    a = np.asarray(to_numpy(actual))
    e = np.asarray(to_numpy(expected))
    if a.shape != e.shape:
        raise AssertionError(f"{what} has shape {a.shape}, expected {e.shape}")
    if check_dtype and a.dtype != e.dtype:
        raise AssertionError(f"{what} has dtype {a.dtype}, expected {e.dtype}")
    if a.dtype.kind in "fc" or e.dtype.kind in "fc":
        af, ef = a.astype(np.float64), e.astype(np.float64)
        both_nan = np.isnan(af) & np.isnan(ef)
        with np.errstate(invalid="ignore"):
            same = (af == ef) | both_nan | (np.abs(af - ef) <= atol + rtol * np.abs(ef))
    else:
        same = a == e
    if not np.all(same):
        bad = np.argwhere(~same)
        idx = tuple(int(i) for i in bad[0])
        got, exp = a[idx].item(), e[idx].item()
        diff = ""
        if a.dtype.kind in "fiu" and e.dtype.kind in "fiu":
            with np.errstate(invalid="ignore"):
                diff = f" (|diff| {abs(float(got) - float(exp)):.3g})"
        raise AssertionError(
            f"{what} differs at {idx}: got {got!r}, expected {exp!r}{diff}; "
            f"{len(bad)} of {same.size} elements differ (rtol={rtol}, atol={atol})"
        )


def assert_backend(result, be):
    """The result stays on the input's backend and device."""
    from array_api_compat import array_namespace, device

    xp = array_namespace(result)
    if be.name == "torch-cpu":
        assert xp.__name__.endswith("torch"), f"result left torch: {type(result)}"
    elif be.name == "strict-device1":
        assert device(result) == be.device, f"result on {device(result)}, expected {be.device}"
    elif be.name == "numpy":
        assert isinstance(result, np.ndarray), f"result is {type(result)}, expected numpy"


# ----------------------------------------------------------------------------- gradients


def T(a, grad=False):
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t.requires_grad_(True) if grad else t


def tol(be, scale=1.0):
    """Exact-ish on float64, float32 rounding elsewhere."""
    return (
        dict(rtol=1e-12, atol=1e-12 * scale)
        if be.name == "numpy"
        else dict(rtol=2e-5, atol=2e-6 * scale)
    )


def torch_grad(fn, x, *rest, upstream=None):
    """Autograd gradient of fn(x, *rest) w.r.t. x in float64 (sum-reduced against upstream)."""
    xt = T(np.asarray(x, np.float64), grad=True)
    out = fn(xt, *rest)
    up = torch.ones_like(out) if upstream is None else T(upstream)
    (g,) = torch.autograd.grad(out, xt, up, allow_unused=False)
    return g.numpy(), out.detach().numpy()


def fd_check(f, x, g, upstream=None, h=1e-6, rtol=1e-5, atol=1e-7):
    """Central differences of <upstream, f(x)> along random directions vs <g, v>."""
    rng = np.random.default_rng(0)
    up = 1.0 if upstream is None else upstream
    for _ in range(3):
        v = rng.standard_normal(x.shape)
        fp = np.sum(up * np.asarray(f(x + h * v)))
        fm = np.sum(up * np.asarray(f(x - h * v)))
        fd = (fp - fm) / (2 * h)
        an = float(np.sum(g * v))
        assert abs(fd - an) <= atol + rtol * max(abs(fd), abs(an)), (fd, an)


# ----------------------------------------------------------------------------- smooth L1 / L1
