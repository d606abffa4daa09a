"""Test harness: every backend, the no-sync guard, and comparison helpers (DESIGN.md §5).

Backends
--------
``be`` runs a test once per backend:

* ``numpy``          NumPy, float64 -- the reference backend;
* ``strict-device1`` array-api-strict on ``Device("device1")``, float32 -- a stand-in for a GPU:
  it rejects NumPy calls, NumPy constants, forgotten ``device=`` and sloppy promotion;
* ``torch-cpu``      PyTorch on the CPU, float32 -- a second real library;
* ``cupy``           CuPy on a CUDA device, float32 (marker ``gpu``; skipped without a device).

``no_sync`` makes every implicit device -> host synchronisation of a device1 array an error
(``bool()``, ``int()``, ``float()``, ``__index__``, iteration, data-dependent shapes); tests of
device-pure functions request it.
"""

from __future__ import annotations

import os

import array_api_strict as xs
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from minivision._backend import to_numpy

settings.register_profile(
    "minivision",
    max_examples=int(os.environ.get("MINIVISION_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile("minivision")


class Backend:
    """One array library + device + default float dtype, with host <-> backend helpers."""

    def __init__(self, name, xp, device, float_dtype):
        self.name, self.xp, self.device, self.float_dtype = name, xp, device, float_dtype

    def asarray(self, a, dtype=None):
        """Host test data -> this backend; floats take the backend's float dtype unless given."""
        a = np.asarray(a)
        if dtype is None:
            dtype = self.float_dtype if a.dtype.kind == "f" else getattr(self.xp, a.dtype.name)
        elif isinstance(dtype, str):
            dtype = getattr(self.xp, dtype)
        if self.name == "torch-cpu":
            import torch

            return torch.from_numpy(np.ascontiguousarray(a)).to(dtype=dtype)
        return self.xp.asarray(a, dtype=dtype, device=self.device)

    @property
    def np_float(self):
        """The NumPy dtype matching the backend's float dtype (float64 or float32)."""
        return np.float64 if self.name == "numpy" else np.float32

    def dtype_name(self, x) -> str:
        return str(to_numpy(self.xp.zeros(0, dtype=x.dtype, device=self.device)).dtype)

    def __repr__(self):
        return f"Backend({self.name})"


def _backends():
    import array_api_compat.numpy as npx

    yield pytest.param(("numpy", npx, "cpu", npx.float64), id="numpy")
    yield pytest.param(
        ("strict-device1", xs, xs.Device("device1"), xs.float32), id="strict-device1"
    )
    import array_api_compat.torch as tx

    yield pytest.param(("torch-cpu", tx, "cpu", tx.float32), id="torch-cpu")
    try:
        import array_api_compat.cupy as cx
        import cupy

        ok = cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no CuPy, or CuPy without a driver
        cx, ok = None, False
    yield pytest.param(
        ("cupy", cx, None, cx.float32 if ok else None),
        id="cupy",
        marks=[pytest.mark.gpu, pytest.mark.skipif(not ok, reason="no CUDA device")],
    )


@pytest.fixture(params=list(_backends()))
def be(request):
    return Backend(*request.param)


@pytest.fixture(autouse=True, scope="session")
def _pin_array_api_version():
    """Write against the 2024.12 standard, as scikit-learn and SciPy pin it."""
    xs.set_array_api_strict_flags(api_version="2024.12")
    yield
    xs.reset_array_api_strict_flags()


_SYNC_METHODS = ("__bool__", "__int__", "__float__", "__index__", "__complex__", "__iter__")


@pytest.fixture
def no_sync(monkeypatch):
    """Make every implicit device -> host sync on a non-CPU strict device raise RuntimeError."""
    array_type = type(xs.asarray(0))
    for name in _SYNC_METHODS:
        original = getattr(array_type, name)

        def guarded(self, *args, _original=original, _name=name):
            if self.device != xs.Device("CPU_DEVICE"):
                raise RuntimeError(f"implicit host sync: Array.{_name} on {self.device}")
            return _original(self, *args)

        monkeypatch.setattr(array_type, name, guarded)
    old = xs.get_array_api_strict_flags()
    xs.set_array_api_strict_flags(data_dependent_shapes=False)
    yield
    xs.set_array_api_strict_flags(**old)
