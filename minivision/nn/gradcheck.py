"""Host island: check a hand-written backward pass against central differences.

For a scalar probe ``L = sum(grad_output * f(x))`` with a random ``grad_output``, the backward
pass claims ``dL/dx``; central differences measure it, one element at a time:

    dL/dx_i ~ (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)

with an error of order ``eps^2`` (truncation) plus ``machine_eps / eps`` (rounding), so the check
runs in float64 where ``eps = 1e-6`` leaves both near 1e-10. This is what
``torch.autograd.gradcheck`` does, one column of the Jacobian at a time. Works for any backend:
each perturbed input is rebuilt on the input's backend, and only the probes come to the host.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._backend import from_numpy, to_numpy
from .module import Parameter

__all__ = ["gradcheck", "GradcheckError", "GradcheckResult"]


class GradcheckError(AssertionError):
    """A backward pass disagrees with central differences (the message says where)."""


class GradcheckResult(NamedTuple):
    max_abs_error: float
    max_rel_error: float


def _probe(f, inputs, grad_output):
    out = f(*inputs)
    return float(np.sum(np.asarray(to_numpy(out), dtype=np.float64) * grad_output))


def gradcheck(f, inputs, backward, *, parameters=(), eps=1e-6, atol=1e-5, rtol=1e-3, seed=0,
              raise_exception=True):  # fmt: skip
    """Compare ``backward`` with central differences of ``f`` at ``inputs``.

    Parameters
    ----------
    f : callable
        ``f(*inputs)`` -> one array.
    inputs : sequence of arrays
        Float64 arrays of any backend (one array is accepted as a 1-tuple).
    backward : callable
        ``backward(grad_output)`` -> the gradient of each input (a tuple, or one array for one
        input), e.g. a module's ``backward`` after ``f = module``. Called once, after one
        ``f(*inputs)``.
    parameters : sequence of Parameter
        Also check these parameters' gradients, read from ``.grad`` after ``backward`` (they
        are reset to None first, then restored).
    eps : float
        Step of the central difference.
    atol, rtol : float
        Passing means ``|analytic - numeric| <= atol + rtol * |numeric|`` everywhere.
    seed : int
        Seed of the random ``grad_output``.
    raise_exception : bool
        Raise :class:`GradcheckError` on failure (else just return the errors).

    Returns
    -------
    GradcheckResult(max_abs_error, max_rel_error)
        Worst errors over every checked element (relative to ``max(|numeric|, 1e-12)``).

    Raises
    ------
    GradcheckError
        Naming the input (or parameter), the element, both values and the difference.
    TypeError
        If an input or parameter is not float64.
    """
    inputs = (inputs,) if hasattr(inputs, "shape") else tuple(inputs)
    parameters = tuple(parameters)
    for i, x in enumerate(inputs):
        if str(x.dtype).rsplit(".", 1)[-1] != "float64":
            raise TypeError(f"gradcheck needs float64 inputs, input {i} is {x.dtype}")
    for i, p in enumerate(parameters):
        if not isinstance(p, Parameter) or str(p.dtype).rsplit(".", 1)[-1] != "float64":
            raise TypeError(f"gradcheck needs float64 Parameters, parameter {i} is {p!r}")
    saved = [p.grad for p in parameters]
    for p in parameters:
        p.grad = None
    out = f(*inputs)
    grad_output = np.random.default_rng(seed).standard_normal(tuple(out.shape))
    analytic = backward(from_numpy(grad_output, out))
    analytic = (analytic,) if hasattr(analytic, "shape") else tuple(analytic)
    if len(analytic) < len(inputs):
        raise ValueError(f"backward returned {len(analytic)} gradients for {len(inputs)} inputs")
    checks = [
        (f"input {i}", np.asarray(to_numpy(g), np.float64))
        for i, g in enumerate(analytic[: len(inputs)])
    ]
    for i, p in enumerate(parameters):
        grad = np.zeros(p.shape) if p.grad is None else np.asarray(to_numpy(p.grad), np.float64)
        checks.append((f"parameter {i}", grad))
    for p, g in zip(parameters, saved):
        p.grad = g

    worst_abs = worst_rel = 0.0
    for k, (what, claimed) in enumerate(checks):
        if k < len(inputs):
            base = np.array(to_numpy(inputs[k]), dtype=np.float64)
        else:
            base = np.array(to_numpy(parameters[k - len(inputs)].data), dtype=np.float64)
        if claimed.shape != base.shape:
            raise GradcheckError(
                f"gradient of {what} has shape {claimed.shape}, expected {base.shape}"
            )
        numeric = np.zeros_like(base)
        for idx in np.ndindex(base.shape):
            probes = []
            for step in (eps, -eps):
                moved = base.copy()
                moved[idx] += step
                probes.append(_evaluate(f, inputs, parameters, k, moved, grad_output))
            numeric[idx] = (probes[0] - probes[1]) / (2 * eps)
        diff = np.abs(claimed - numeric)
        worst_abs = max(worst_abs, float(diff.max(initial=0.0)))
        worst_rel = max(
            worst_rel, float((diff / np.maximum(np.abs(numeric), 1e-12)).max(initial=0.0))
        )
        bad = diff > atol + rtol * np.abs(numeric)
        if raise_exception and bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise GradcheckError(
                f"gradient of {what} differs at {idx}: backward gives {claimed[idx]!r}, central "
                f"differences {numeric[idx]!r} (|diff| {diff[idx]:.3g}); {int(bad.sum())} of "
                f"{bad.size} elements exceed atol={atol} + rtol={rtol} * |numeric|"
            )
    return GradcheckResult(worst_abs, worst_rel)


def _evaluate(f, inputs, parameters, k, moved, grad_output):
    """``L`` with input (or parameter) ``k`` replaced by the host array ``moved``."""
    if k < len(inputs):
        args = list(inputs)
        args[k] = from_numpy(moved, inputs[k])
        return _probe(f, args, grad_output)
    param = parameters[k - len(inputs)]
    original = param.data
    param.data = from_numpy(moved, original)
    try:
        return _probe(f, inputs, grad_output)
    finally:
        param.data = original
