"""The two gap-fillers the RoI operations added to minivision._backend: csr_matmul, stable_argsort."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_backend, assert_close
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from minivision._backend import csr_matmul, stable_argsort, to_numpy


def dense_of(cols, weights, n_cols):
    s = np.zeros((cols.shape[0], n_cols))
    for r in range(cols.shape[0]):
        for c, w in zip(cols[r], weights[r]):
            s[r, c] += w  # repeated columns add up
    return s


def test_csr_matmul_and_its_transpose(be, no_sync):
    rng = np.random.default_rng(0)
    cols = rng.integers(0, 6, (5, 4))
    cols[0] = [1, 1, 1, 2]  # repeated columns
    weights = rng.standard_normal((5, 4))
    dense = rng.standard_normal((6, 3))
    s = dense_of(cols, weights, 6)
    w = weights.astype(be.np_float)
    out = csr_matmul(be.asarray(cols), be.asarray(w), be.asarray(dense.astype(be.np_float)))
    assert_backend(out, be)
    tol = dict(rtol=1e-6, atol=1e-6) if be.np_float == np.float32 else dict(rtol=1e-13, atol=1e-13)
    assert_close(out, (s @ dense).astype(be.np_float), **tol)
    rows = rng.standard_normal((5, 3))
    back = csr_matmul(
        be.asarray(cols),
        be.asarray(w),
        be.asarray(rows.astype(be.np_float)),
        transpose=True,
        n_cols=6,
    )
    assert_close(back, (s.T @ rows).astype(be.np_float), **tol)


def test_csr_matmul_stored_zero_propagates_nan(be, no_sync):
    cols = np.array([[0, 1]])
    weights = np.array([[0.0, 1.0]], dtype=be.np_float)
    dense = np.array([[np.nan], [2.0]], dtype=be.np_float)
    out = csr_matmul(be.asarray(cols), be.asarray(weights), be.asarray(dense))
    assert np.isnan(to_numpy(out)).all()


def test_csr_matmul_float16_and_empty():
    cols = np.array([[0, 1], [1, 1]])
    w = np.array([[0.5, 0.25], [1.0, 1.0]], np.float16)
    out = csr_matmul(cols, w, np.ones((2, 2), np.float16))
    assert out.dtype == np.float16
    assert_close(out, np.array([[0.75, 0.75], [2.0, 2.0]], np.float16))
    empty = csr_matmul(np.zeros((0, 3), np.int64), np.zeros((0, 3)), np.ones((4, 2)))
    assert empty.shape == (0, 2)


@given(
    x=arrays(
        st.sampled_from([np.float16, np.float32, np.int16]),
        st.tuples(st.integers(1, 4), st.integers(0, 40)),
        elements=st.integers(-3, 3),
    ),
    signed_zero=st.booleans(),
)
def test_stable_argsort_matches_numpy(x, signed_zero):
    if signed_zero and x.dtype.kind == "f":
        x = np.where(x == 0, -x, x)  # -0.0 and 0.0 are equal values
    expected = np.argsort(x, axis=1, kind="stable")
    assert_close(stable_argsort(x, axis=1), expected)
    assert_close(stable_argsort(x.T, axis=0), expected.T)


def test_stable_argsort_wide_values_and_other_backends(be, no_sync):
    x = np.array([[3e38, -3e38, 1e-40, -1e-40, np.inf, -np.inf, 0.5, 0.5, -2.0]], np.float32)
    assert_close(stable_argsort(x, axis=1), np.argsort(x, axis=1, kind="stable"))
    got = stable_argsort(be.asarray(x, dtype="float32"), axis=1)
    assert_close(got, np.argsort(x, axis=1, kind="stable"), check_dtype=False)


@pytest.mark.parametrize("dtype", [np.float64, np.int64])
def test_stable_argsort_other_dtypes(dtype):
    x = np.array([[2, 1, 2, 0, 1]], dtype=dtype)
    assert_close(stable_argsort(x, axis=1), np.argsort(x, axis=1, kind="stable"))
