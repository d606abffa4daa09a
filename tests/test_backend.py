"""minivision._backend on every backend: host copies and scatter_add."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_backend, assert_close
from hypothesis import given
from hypothesis import strategies as st

from minivision._backend import _scatter_add_standard, from_numpy, scatter_add, to_numpy


def test_to_numpy_and_from_numpy_round_trip(be):
    host = np.arange(12, dtype=np.float32).reshape(3, 4)
    x = be.asarray(host, dtype="float32")
    back = to_numpy(x)
    assert isinstance(back, np.ndarray) and back.dtype == np.float32
    np.testing.assert_array_equal(back, host)
    y = from_numpy(host * 2, like=x)
    assert_backend(y, be)
    np.testing.assert_array_equal(to_numpy(y), host * 2)


def test_scatter_add_accumulates_repeated_indices(be, no_sync):
    out = be.asarray(np.zeros(5))
    index = be.asarray(np.array([0, 2, 2, 4, 2, 0]), dtype="int64")
    values = be.asarray(np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
    result = scatter_add(out, index, values)
    assert_backend(result, be)
    assert_close(result, np.array([7.0, 0.0, 10.0, 0.0, 4.0], dtype=be.np_float))
    assert_close(out, np.zeros(5, dtype=be.np_float), what="out (must not change)")


def test_scatter_add_rows(be, no_sync):
    out = be.asarray(np.ones((3, 2)))
    index = be.asarray(np.array([2, 2, 0]), dtype="int64")
    values = be.asarray(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    expected = np.array([[6.0, 7.0], [1.0, 1.0], [5.0, 7.0]], dtype=be.np_float)
    assert_close(scatter_add(out, index, values), expected)


def test_scatter_add_empty_index(be, no_sync):
    out = be.asarray(np.arange(3.0))
    index = be.asarray(np.zeros(0, dtype=np.int64))
    values = be.asarray(np.zeros(0))
    assert_close(scatter_add(out, index, values), np.arange(3.0, dtype=be.np_float))


@given(
    m=st.integers(1, 20),
    idx=st.lists(st.integers(0, 19), max_size=60),
    seed=st.integers(0, 2**16),
)
def test_standard_fallback_equals_numpy_add_at(m, idx, seed):
    """The standard-only branch (used by array-api-strict) against np.add.at, in integers
    (exact) and floats."""
    import array_api_compat.numpy as npx

    index = np.array([i % m for i in idx], dtype=np.int64)
    values = np.random.default_rng(seed).integers(-5, 6, size=(len(index), 3))
    expected = np.zeros((m, 3), dtype=np.int64)
    np.add.at(expected, index, values)
    got = _scatter_add_standard(npx, np.zeros((m, 3), dtype=np.int64), index, values)
    np.testing.assert_array_equal(got, expected)
    fv = values.astype(np.float64) / 4
    fexp = np.zeros((m, 3))
    np.add.at(fexp, index, fv)
    np.testing.assert_allclose(
        _scatter_add_standard(npx, np.zeros((m, 3)), index, fv), fexp, atol=1e-12
    )


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_scatter_add_non_finite_values_stay_in_their_rows(be, no_sync):
    """NaN and infinities reach only their own rows, as np.add.at gives (inf + -inf = NaN)."""
    index = np.array([0, 1, 1, 2, 3, 3, 4, 5, 5, 6])
    values = np.array([1.0, np.inf, 2.0, np.nan, np.inf, -np.inf, -np.inf, 3.0, 4.0, 5.0])
    expected = np.zeros(8)
    np.add.at(expected, index, values)  # [1, inf, nan, nan, -inf, 7, 5, 0]
    got = scatter_add(be.asarray(np.zeros(8)), be.asarray(index, dtype="int64"), be.asarray(values))
    np.testing.assert_array_equal(to_numpy(got), expected.astype(be.np_float))


def test_scatter_add_bad_shapes(be):
    out = be.asarray(np.zeros(4))
    with pytest.raises(ValueError, match="index must be 1-D"):
        scatter_add(out, be.asarray(np.zeros((2, 2), dtype=np.int64)), be.asarray(np.zeros(4)))
    with pytest.raises(ValueError, match=r"values must have shape \(3,\)"):
        scatter_add(out, be.asarray(np.zeros(3, dtype=np.int64)), be.asarray(np.zeros(2)))


def test_assert_close_says_where_and_by_how_much():
    with pytest.raises(
        AssertionError,
        match=r"iou differs at \(1, 0\): got 0\.5, expected 0\.25 \(\|diff\| 0\.25\); 1 of 4",
    ):
        assert_close(
            np.array([[1.0, 0.0], [0.5, np.nan]]),
            np.array([[1.0, 0.0], [0.25, np.nan]]),
            what="iou",
        )
    with pytest.raises(AssertionError, match="has dtype float32, expected float64"):
        assert_close(np.zeros(2, np.float32), np.zeros(2))
    with pytest.raises(AssertionError, match=r"has shape \(2,\), expected \(3,\)"):
        assert_close(np.zeros(2), np.zeros(3))
    assert_close(np.array([1.0, np.nan]), np.array([1.0 + 1e-9, np.nan]), rtol=1e-8)
