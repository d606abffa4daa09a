"""minivision.nn.functional.pool against torch.nn.functional and torch autograd (torch 2.14.1), on every backend.

Max pooling only compares, so values and indices are compared **exactly**; small-integer data
makes ties on purpose. Average pooling sums each window in row-major order as torch's CPU
kernel does, so it is exact too, in float32 as well as float64. Backward passes add the
overlapping windows' contributions in another order than torch, so with Gaussian data they are
compared in float64 with a tolerance of 1e-12 (1e-6 in float32); with dyadic data exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_backend, assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

import minivision as mv
from minivision._backend import to_numpy


def T(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def ties(rng, shape):
    """Small integers: many windows have several equal maxima."""
    return rng.integers(-3, 4, shape).astype(np.float64)


def tol(be):
    return 1e-12 if be.name == "numpy" else 1e-6


# name, input shape, max_pool2d arguments (kernel_size, stride, padding, dilation, ceil_mode)
MAX_CASES = [
    ("2x2 stride 2", (2, 3, 8, 8), dict(kernel_size=2)),
    ("overlapping 3x3 stride 2 pad 1", (2, 2, 9, 7), dict(kernel_size=3, stride=2, padding=1)),
    (
        "non-square, stride != kernel",
        (1, 3, 9, 11),
        dict(kernel_size=(2, 4), stride=(3, 1), padding=(1, 2)),
    ),
    ("dilation", (2, 2, 11, 10), dict(kernel_size=3, stride=(2, 1), dilation=(2, 3), padding=1)),
    (
        "ceil_mode, last window in the padding row",
        (1, 2, 6, 6),
        dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    ),
    (
        "ceil_mode drops a window starting past the input",
        (1, 1, 5, 5),
        dict(kernel_size=2, stride=2, padding=1, ceil_mode=True),
    ),
    (
        "ceil_mode, odd sizes, dilation",
        (3, 2, 7, 9),
        dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 1), dilation=(2, 1), ceil_mode=True),
    ),
    ("1x1 kernel, stride 2", (2, 3, 5, 6), dict(kernel_size=1, stride=2)),
    ("stride larger than the kernel", (1, 2, 10, 9), dict(kernel_size=2, stride=(4, 3))),
    ("kernel the whole map", (2, 3, 4, 5), dict(kernel_size=(4, 5))),
]
MAX_IDS = [c[0] for c in MAX_CASES]


def torch_max(x, **kw):
    out, idx = F.max_pool2d(T(x), return_indices=True, **kw)
    return out.numpy(), idx.numpy()


@pytest.mark.parametrize("name,shape,kw", MAX_CASES, ids=MAX_IDS)
def test_max_pool2d_values_and_indices_are_torch(be, no_sync, name, shape, kw):
    x = ties(np.random.default_rng(0), shape)
    out, idx = mv.max_pool2d(be.asarray(x), return_indices=True, **kw)
    ref, ref_idx = torch_max(x, **kw)
    assert_backend(out, be)
    assert_close(out, ref.astype(be.np_float), what=f"max_pool2d ({name})")
    assert_close(idx, ref_idx, what=f"indices ({name})")
    assert_close(
        mv.max_pool2d(be.asarray(x), **kw), ref.astype(be.np_float), what="without indices"
    )


@pytest.mark.parametrize("name,shape,kw", MAX_CASES, ids=MAX_IDS)
def test_max_pool2d_backward_matches_autograd(be, no_sync, name, shape, kw):
    rng = np.random.default_rng(1)
    x = ties(rng, shape)
    tx = T(x).requires_grad_()
    ref = F.max_pool2d(tx, **kw)
    gy = rng.standard_normal(ref.shape)
    ref.backward(T(gy))
    bx, bgy = be.asarray(x), be.asarray(gy)
    gx = mv.max_pool2d_backward(bgy, bx, **kw)
    assert_backend(gx, be)
    assert_close(
        gx,
        tx.grad.numpy(),
        what=f"grad_input ({name})",
        atol=tol(be) * np.abs(gy).sum(),
        check_dtype=False,
    )
    _, idx = mv.max_pool2d(bx, return_indices=True, **kw)
    given_idx = mv.max_pool2d_backward(bgy, bx, indices=idx, **kw)
    assert_close(given_idx, gx, what="with the forward's indices")


@pytest.mark.parametrize("name,shape,kw", MAX_CASES, ids=MAX_IDS)
def test_max_pool2d_backward_is_the_adjoint_of_gathering(be, no_sync, name, shape, kw):
    """For fixed winners, max pooling is the linear map z -> z[indices]; its adjoint is backward."""
    rng = np.random.default_rng(2)
    x = ties(rng, shape)
    _, idx = mv.max_pool2d(be.asarray(x), return_indices=True, **kw)
    idx = to_numpy(idx)
    gy, z = rng.standard_normal(idx.shape), rng.standard_normal(shape)
    n, c = shape[:2]
    gathered = np.take_along_axis(z.reshape(n, c, -1), idx.reshape(n, c, -1), axis=2)
    gx = to_numpy(
        mv.max_pool2d_backward(be.asarray(gy), be.asarray(x), indices=be.asarray(idx), **kw)
    )
    lhs, rhs = np.sum(gathered.reshape(gy.shape) * gy), np.sum(z * gx.astype(np.float64))
    assert abs(lhs - rhs) <= tol(be) * np.sum(np.abs(gy)) * np.abs(z).max()


def test_max_pool2d_ties_nan_and_infinities():
    """First maximum wins a tie, the last NaN wins over everything, an all -inf window reports its
    first real cell (not a padded one)."""
    nan, inf = np.nan, np.inf
    rows = np.array(
        [
            [3.0, 1.0, 3.0, 2.0],
            [nan, 1.0, nan, 2.0],
            [1.0, nan, 3.0, nan],
            [-inf, -inf, -inf, -inf],
            [5.0, 5.0, 5.0, 5.0],
        ]
    )[:, None, None, :]  # (5, 1, 1, 4)
    for kw in [dict(kernel_size=(1, 4)), dict(kernel_size=(1, 3), stride=1, padding=(0, 1))]:
        out, idx = mv.max_pool2d(rows, return_indices=True, **kw)
        ref, ref_idx = torch_max(rows, **kw)
        assert_close(out, ref, what=f"values {kw}")
        assert_close(idx, ref_idx, what=f"indices {kw}")
    _, idx = mv.max_pool2d(rows, (1, 4), return_indices=True)
    assert idx[:, 0, 0, 0].tolist() == [0, 2, 3, 0, 0]


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8", "int8"])
def test_max_pool2d_integers(be, no_sync, dtype):
    if be.name == "torch-cpu" and dtype not in ("int32", "int64", "uint8", "int8"):
        pytest.skip(f"torch has no {dtype}")
    rng = np.random.default_rng(3)
    lo = 0 if dtype == "uint8" else -100
    x = rng.integers(lo, 100, (2, 2, 7, 6)).astype(dtype)
    x[0, 0, :3, :3] = np.iinfo(dtype).min  # windows of only the lowest value, next to padding
    kw = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)
    out, idx = mv.max_pool2d(be.asarray(x, dtype=dtype), return_indices=True, **kw)
    ref, ref_idx = torch_max(x, **kw)
    assert_close(out, ref, what=f"{dtype} values")
    assert_close(idx, ref_idx, what=f"{dtype} indices")


def test_max_pool2d_window_entirely_in_the_padding(be, no_sync):
    """A dilated window can skip over the whole input: width 2, kernel 2, dilation 3, padding 1
    reads columns -1 and 2. Its maximum is -inf (torch agrees) and no input cell wins it: index
    -1 and no gradient. torch reports the out-of-plane index 2 and its backward adds that window's
    gradient to the next channel's first cell (the documented difference)."""
    x = np.array([[[[5.0, 7.0]], [[1.0, 2.0]]]])  # (1, 2, 1, 2)
    kw = dict(kernel_size=(1, 2), stride=1, padding=(0, 1), dilation=(1, 3))
    out, idx = mv.max_pool2d(be.asarray(x), return_indices=True, **kw)
    assert_close(out, np.full((1, 2, 1, 1), -np.inf, dtype=be.np_float))
    assert_close(idx, np.full((1, 2, 1, 1), -1, dtype=np.int64))
    gx = mv.max_pool2d_backward(be.asarray(np.ones((1, 2, 1, 1))), be.asarray(x), **kw)
    assert_close(
        gx, np.zeros((1, 2, 1, 2), dtype=be.np_float), what="no gradient reaches the input"
    )
    ref, ref_idx = torch_max(x, **kw)
    assert np.all(ref == -np.inf) and np.all(ref_idx == 2)  # torch: outside the 1 x 2 plane
    tx = T(x).requires_grad_()
    F.max_pool2d(tx, **kw).backward(torch.ones(1, 2, 1, 1))
    assert tx.grad[0, 1, 0, 0] == 1.0  # channel 0's gradient landed in channel 1


def test_max_pool2d_unbatched(be, no_sync):
    x = ties(np.random.default_rng(4), (3, 7, 6))
    out, idx = mv.max_pool2d(be.asarray(x), 3, 2, 1, return_indices=True)
    ref, ref_idx = torch_max(x, kernel_size=3, stride=2, padding=1)
    assert_close(out, ref.astype(be.np_float))
    assert_close(idx, ref_idx)
    gx = mv.max_pool2d_backward(be.asarray(np.ones(ref.shape)), be.asarray(x), 3, 2, 1)
    assert tuple(gx.shape) == (3, 7, 6)


# ----------------------------------------------------------------------------- average

AVG_CASES = [
    ("2x2", (2, 3, 8, 8), dict(kernel_size=2)),
    ("overlapping 3x3 stride 2 pad 1", (2, 2, 5, 5), dict(kernel_size=3, stride=2, padding=1)),
    (
        "non-square, stride != kernel",
        (1, 3, 9, 11),
        dict(kernel_size=(2, 5), stride=(3, 1), padding=(1, 2)),
    ),
    (
        "ceil_mode, last window in the padding",
        (1, 2, 6, 6),
        dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    ),
    (
        "ceil_mode, odd sizes",
        (3, 2, 7, 9),
        dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 1), ceil_mode=True),
    ),
    ("1x1 kernel, stride 2", (2, 3, 5, 6), dict(kernel_size=1, stride=2)),
]
AVG_IDS = [c[0] for c in AVG_CASES]
AVG_MODES = [
    dict(count_include_pad=True),
    dict(count_include_pad=False),
    dict(divisor_override=3),
    dict(count_include_pad=False, divisor_override=-2),
]
MODE_IDS = ["include_pad", "exclude_pad", "divisor_3", "divisor_-2"]


@pytest.mark.parametrize("mode", AVG_MODES, ids=MODE_IDS)
@pytest.mark.parametrize("name,shape,kw", AVG_CASES, ids=AVG_IDS)
def test_avg_pool2d_is_bitwise_torch(be, no_sync, name, shape, kw, mode):
    x = np.random.default_rng(5).standard_normal(shape).astype(be.np_float)
    out = mv.avg_pool2d(be.asarray(x), **kw, **mode)
    assert_backend(out, be)
    assert_close(out, F.avg_pool2d(T(x), **kw, **mode).numpy(), what=f"avg_pool2d ({name}, {mode})")


@pytest.mark.parametrize("mode", AVG_MODES, ids=MODE_IDS)
@pytest.mark.parametrize("name,shape,kw", AVG_CASES, ids=AVG_IDS)
def test_avg_pool2d_backward_matches_autograd_and_is_adjoint(be, no_sync, name, shape, kw, mode):
    rng = np.random.default_rng(6)
    x = rng.standard_normal(shape)
    tx = T(x).requires_grad_()
    ref = F.avg_pool2d(tx, **kw, **mode)
    gy = rng.standard_normal(ref.shape)
    ref.backward(T(gy))
    gx = mv.avg_pool2d_backward(be.asarray(gy), be.asarray(x), **kw, **mode)
    s = tol(be) * np.abs(gy).sum()
    assert_close(
        gx, tx.grad.numpy(), what=f"grad_input ({name}, {mode})", atol=s, check_dtype=False
    )
    # average pooling is linear: <avg_pool2d(x), gy> = <x, backward(gy)>
    lhs = np.sum(to_numpy(mv.avg_pool2d(be.asarray(x), **kw, **mode)).astype(np.float64) * gy)
    rhs = np.sum(x * to_numpy(gx).astype(np.float64))
    assert abs(lhs - rhs) <= s * np.abs(x).max()


def test_avg_pool2d_divisors_by_hand():
    """torchvision-semantics.md §14.4 on a map of ones."""
    ones5, ones6 = np.ones((1, 1, 5, 5)), np.ones((1, 1, 6, 6))
    inc = mv.avg_pool2d(ones5, 3, 2, 1)[0, 0]
    assert_close(inc, np.array([[4, 6, 4], [6, 9, 6], [4, 6, 4]]) / 9)
    assert_close(mv.avg_pool2d(ones5, 3, 2, 1, count_include_pad=False)[0, 0], np.ones((3, 3)))
    ceil = mv.avg_pool2d(ones6, 3, 2, 1, ceil_mode=True)[0, 0]
    # the last window (rows 5..7) is clipped to the padded input (rows up to 6): 2 rows
    assert (
        ceil[0, 0] == 4 / 9 and ceil[0, 3] == 1 / 3 and ceil[1, 3] == 1 / 2 and ceil[3, 3] == 1 / 4
    )
    assert_close(ceil, F.avg_pool2d(T(ones6), 3, 2, 1, ceil_mode=True).numpy()[0, 0])


def test_avg_pool2d_integers_truncate_like_torch():
    x = np.random.default_rng(7).integers(-50, 50, (2, 2, 7, 6))
    for mode in AVG_MODES:
        kw = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, **mode)
        assert_close(mv.avg_pool2d(x, **kw), F.avg_pool2d(T(x), **kw).numpy(), what=f"int64 {mode}")


def test_avg_pool2d_float16_sums_in_float32():
    x = np.random.default_rng(8).standard_normal((2, 3, 9, 9)).astype(np.float16)
    out = mv.avg_pool2d(x, 3, 2, 1)
    assert out.dtype == np.float16
    assert_close(out, F.avg_pool2d(T(x), 3, 2, 1).numpy())


# ----------------------------------------------------------------------------- hypothesis


@st.composite
def pool_configs(draw, dilation=True):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    dh, dw = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if dilation else (1, 1)
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 10))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 10))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)), h, w)
    kw_ = dict(
        kernel_size=(kh, kw), stride=(sh, sw), padding=(ph, pw), ceil_mode=draw(st.booleans())
    )
    if dilation:
        kw_["dilation"] = (dh, dw)
    return shape, kw_, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=50)
@given(cfg=pool_configs())
def test_max_pool2d_property(cfg):
    shape, kw, seed = cfg
    rng = np.random.default_rng(seed)
    x = ties(rng, shape)
    try:
        ref, ref_idx = torch_max(x, **kw)
    except RuntimeError:  # a window that does not fit: minivision must refuse it too
        with pytest.raises(ValueError):
            mv.max_pool2d(x, **kw)
        return
    out, idx = mv.max_pool2d(x, return_indices=True, **kw)
    assert_close(out, ref, what=f"max_pool2d {shape} {kw}")
    inside = idx >= 0  # -1: a window entirely in the padding (torch reports an out-of-plane index)
    assert np.all(ref[~inside] == -np.inf)
    assert_close(idx[inside], ref_idx[inside], what=f"indices {shape} {kw}")
    if np.all(inside):
        tx = T(x).requires_grad_()
        gy = rng.integers(-4, 5, ref.shape) / 4.0
        F.max_pool2d(tx, **kw).backward(T(gy))
        assert_close(mv.max_pool2d_backward(gy, x, **kw), tx.grad.numpy(), what=f"grad {kw}")


@settings(max_examples=50)
@given(cfg=pool_configs(dilation=False), mode=st.sampled_from(AVG_MODES))
def test_avg_pool2d_property(cfg, mode):
    shape, kw, seed = cfg
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    try:
        ref = F.avg_pool2d(T(x), **kw, **mode).numpy()
    except RuntimeError:
        with pytest.raises(ValueError):
            mv.avg_pool2d(x, **kw, **mode)
        return
    assert_close(mv.avg_pool2d(x, **kw, **mode), ref, what=f"avg_pool2d {shape} {kw} {mode}")
    tx = T(x).requires_grad_()
    gy = rng.integers(-4, 5, ref.shape) / 4.0
    F.avg_pool2d(tx, **kw, **mode).backward(T(gy))
    got = mv.avg_pool2d_backward(gy, x, **kw, **mode)
    assert_close(got, tx.grad.numpy(), what=f"grad {kw} {mode}", atol=1e-12 * np.abs(gy).sum())


# ----------------------------------------------------------------------------- bad input

X = np.zeros((1, 2, 6, 6))
BAD = [
    (
        "padding above half the kernel",
        dict(kernel_size=3, padding=2),
        ValueError,
        "padding must be at most half the kernel size",
    ),
    (
        "padding above half, even kernel, dilated",
        dict(kernel_size=2, padding=(0, 2), dilation=4),
        ValueError,
        "at most half the kernel size",
    ),
    ("stride 0", dict(kernel_size=2, stride=0), ValueError, "stride must be >= 1"),
    ("kernel 0", dict(kernel_size=(0, 2)), ValueError, "kernel_size must be >= 1"),
    ("dilation 0", dict(kernel_size=2, dilation=0), ValueError, "dilation must be >= 1"),
    ("negative padding", dict(kernel_size=2, padding=-1), ValueError, "padding must be >= 0"),
    (
        "kernel larger than the padded input",
        dict(kernel_size=(9, 2), padding=(1, 0)),
        ValueError,
        "is too small for kernel_size",
    ),
    (
        "float kernel",
        dict(kernel_size=2.0),
        TypeError,
        "kernel_size must be an int or a pair of ints",
    ),
]


@pytest.mark.parametrize("pool", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("name,kw,err,match", BAD, ids=[b[0] for b in BAD])
def test_pool_bad_input_is_a_clear_error(pool, name, kw, err, match):
    if pool == "avg_pool2d" and "dilation" in kw:
        kw = {k: v for k, v in kw.items() if k != "dilation"}
        if name.startswith("dilation"):
            return
    with pytest.raises((RuntimeError, ValueError, TypeError)):  # torch refuses it too
        getattr(F, pool)(T(X), **kw)
    with pytest.raises(err, match=match):
        getattr(mv, pool)(X, **kw)


def test_pool_other_bad_input():
    with pytest.raises(ValueError, match="divisor_override must not be zero"):
        mv.avg_pool2d(X, 2, divisor_override=0)
    with pytest.raises(TypeError, match="divisor_override must be an int"):
        mv.avg_pool2d(X, 2, divisor_override=1.5)
    with pytest.raises(ValueError, match=r"input must have shape \(N, C, H, W\) or \(C, H, W\)"):
        mv.max_pool2d(np.zeros((6, 6)), 2)
    with pytest.raises(TypeError, match="input must have a real floating-point or integer dtype"):
        mv.max_pool2d(X.astype(bool), 2)
    with pytest.raises(
        ValueError, match=r"grad_output must have the forward output's shape \(1, 2, 3, 3\)"
    ):
        mv.max_pool2d_backward(np.zeros((1, 2, 2, 2)), X, 2)
    with pytest.raises(ValueError, match=r"grad_output must have the forward output's shape"):
        mv.avg_pool2d_backward(np.zeros((2, 3, 3)), X, 2)
    with pytest.raises(ValueError, match="indices must have grad_output's shape"):
        mv.max_pool2d_backward(
            np.zeros((1, 2, 3, 3)), X, 2, indices=np.zeros((1, 2, 3), dtype=np.int64)
        )
    with pytest.raises(TypeError, match="gradients need a real floating-point input"):
        mv.avg_pool2d_backward(np.zeros((1, 2, 3, 3)), X.astype(np.int64), 2)
    with pytest.raises(TypeError, match="ceil_mode must be a bool"):
        mv.max_pool2d(X, 2, ceil_mode="yes")


def test_pools_mutate_nothing(be, no_sync):
    x = np.random.default_rng(9).standard_normal((2, 2, 7, 6))
    g = np.ones((2, 2, 4, 4))
    bx, bg = be.asarray(x), be.asarray(g)
    kw = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)
    mv.max_pool2d(bx, **kw)
    mv.max_pool2d_backward(bg, bx, **kw)
    mv.avg_pool2d(bx, **kw)
    mv.avg_pool2d_backward(bg, bx, **kw)
    assert_close(bx, x.astype(be.np_float), what="input after the calls")
    assert_close(bg, g.astype(be.np_float), what="grad_output after the calls")
