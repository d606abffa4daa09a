"""minivision.nn.functional.conv against torch.nn.functional and torch autograd (torch 2.14.1), on every backend.

Two kinds of data:

* **dyadic** values (multiples of 1/4 in [-2, 2]): every product and every partial sum is exact
  in float32, so the result does not depend on the summation order and minivision must equal
  torch **bit for bit** on every backend, float32 included;
* Gaussian values: sums are rounded, in BLAS order here and in oneDNN order in torch, so the
  comparison is against torch in float64 with a tolerance relative to the size of the terms
  summed (``conv2d(|x|, |w|)``): 1e-12 for float64, 1e-5 for float32.

Gradients are compared with torch autograd in float64, plus dot-product (adjoint) tests:
``<conv2d(x, w), y> = <x, conv_transpose2d(y, w)> = <w, grad_weight(y)>``.
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
from minivision.nn.functional import _conv_core as conv_core
from minivision.nn.functional import conv as C

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")


def T(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def dyadic(rng, shape):
    return rng.integers(-8, 9, shape) / 4.0


def gaussian(rng, shape):
    return rng.standard_normal(shape)


def tol(be):
    return 1e-12 if be.name == "numpy" else 1e-5


def torch_conv(x, w, b, **kw):
    return F.conv2d(T(x), T(w), None if b is None else T(b), **kw).numpy()


def scale(x, w, b, **kw):
    """Size of the terms each output sums: conv2d(|x|, |w|) + |b| (float64)."""
    out = torch_conv(np.abs(x), np.abs(w), None if b is None else np.abs(b), **kw)
    return float(out.max()) if out.size else 0.0


# name, (N, C_in, H, W), (C_out, C_in / groups, kH, kW), bias, conv2d arguments
CASES = [
    ("3x3 pad 1", (2, 3, 8, 9), (4, 3, 3, 3), True, dict(padding=1)),
    (
        "non-square kernel, stride != kernel",
        (1, 2, 9, 11),
        (3, 2, 2, 4),
        True,
        dict(stride=(2, 3), padding=(1, 2)),
    ),
    (
        "dilation, strides, groups 2",
        (2, 4, 11, 10),
        (6, 2, 3, 2),
        True,
        dict(stride=(2, 3), padding=(1, 1), dilation=(2, 1), groups=2),
    ),
    ("depthwise", (2, 5, 7, 6), (5, 1, 3, 3), True, dict(padding=1, groups=5)),
    ("depthwise x2 channels", (1, 3, 6, 7), (6, 1, 3, 2), False, dict(groups=3, stride=2)),
    ("1x1 kernel, stride 2", (3, 4, 5, 7), (2, 4, 1, 1), True, dict(stride=2)),
    ("batch 3, odd sizes, no bias", (3, 2, 7, 5), (3, 2, 3, 3), False, dict(padding=(0, 1))),
    (
        "same, even kernel, dilation",
        (2, 2, 7, 8),
        (3, 2, 2, 4),
        True,
        dict(padding="same", dilation=(1, 2)),
    ),
    ("same, odd kernel", (1, 3, 5, 5), (2, 3, 3, 5), True, dict(padding="same")),
    ("valid", (1, 2, 6, 5), (2, 2, 3, 2), True, dict(padding="valid")),
    ("kernel fills the padded input", (2, 2, 3, 4), (3, 2, 5, 4), True, dict(padding=(1, 0))),
    ("stride larger than the kernel", (1, 2, 10, 9), (2, 2, 2, 2), True, dict(stride=(4, 3))),
    (
        "padding half the kernel, dilation 3",
        (1, 1, 9, 9),
        (2, 1, 3, 3),
        True,
        dict(padding=3, dilation=3),
    ),
]
IDS = [c[0] for c in CASES]


def case_data(rng, xs, ws, with_bias, make):
    x, w = make(rng, xs), make(rng, ws)
    b = make(rng, (ws[0],)) if with_bias else None
    return x, w, b


def on(be, *arrays):
    return tuple(None if a is None else be.asarray(a) for a in arrays)


# ----------------------------------------------------------------------------- conv2d forward


@pytest.mark.parametrize("name,xs,ws,with_bias,kw", CASES, ids=IDS)
def test_conv2d_dyadic_is_bitwise_torch(be, no_sync, name, xs, ws, with_bias, kw):
    x, w, b = case_data(np.random.default_rng(0), xs, ws, with_bias, dyadic)
    out = mv.conv2d(*on(be, x, w, b), **kw)
    assert_backend(out, be)
    assert_close(out, torch_conv(x, w, b, **kw).astype(be.np_float), what=f"conv2d ({name})")


@pytest.mark.parametrize("name,xs,ws,with_bias,kw", CASES, ids=IDS)
def test_conv2d_gaussian_matches_torch(be, no_sync, name, xs, ws, with_bias, kw):
    x, w, b = case_data(np.random.default_rng(1), xs, ws, with_bias, gaussian)
    out = mv.conv2d(*on(be, x, w, b), **kw)
    ref = torch_conv(x, w, b, **kw)
    assert_close(
        out, ref, what=f"conv2d ({name})", atol=tol(be) * scale(x, w, b, **kw), check_dtype=False
    )


@pytest.mark.parametrize("name,xs,ws,with_bias,kw", CASES, ids=IDS)
def test_conv2d_naive_agrees_with_im2col(be, no_sync, name, xs, ws, with_bias, kw):
    x, w, b = case_data(np.random.default_rng(2), xs, ws, with_bias, gaussian)
    args = on(be, x, w, b)
    fast, naive = mv.conv2d(*args, **kw), C.conv2d_naive(*args, **kw)
    assert_close(naive, fast, what=f"naive vs im2col ({name})", atol=tol(be) * scale(x, w, b, **kw))


def test_conv2d_row_blocks_agree_with_one_product(monkeypatch):
    """On NumPy the window rows go in cache-sized blocks; force many blocks on a small input."""
    rng = np.random.default_rng(3)
    x, w, b = dyadic(rng, (2, 4, 13, 9)), dyadic(rng, (6, 2, 3, 2)), dyadic(rng, (6,))
    kw = dict(stride=(2, 1), padding=(1, 1), dilation=(2, 1), groups=2)
    gy = dyadic(rng, torch_conv(x, w, b, **kw).shape)
    whole = (mv.conv2d(x, w, b, **kw), *mv.conv2d_backward(gy, x, w, **kw))
    monkeypatch.setattr(conv_core, "CPU_BLOCK", 1)  # one row of windows per block
    blocks = (mv.conv2d(x, w, b, **kw), *mv.conv2d_backward(gy, x, w, **kw))
    for name, a, e in zip(["out", "grad_input", "grad_weight", "grad_bias"], blocks, whole):
        assert_close(a, e, what=name)
    assert_close(blocks[0], torch_conv(x, w, b, **kw), what="blocked conv2d vs torch")


def test_conv2d_unbatched_input(be, no_sync):
    rng = np.random.default_rng(4)
    x, w = dyadic(rng, (3, 6, 5)), dyadic(rng, (2, 3, 3, 3))
    out = mv.conv2d(*on(be, x, w), padding=1)
    assert tuple(out.shape) == (2, 6, 5)
    assert_close(out, torch_conv(x, w, None, padding=1).astype(be.np_float))
    gx, gw, gb = mv.conv2d_backward(*on(be, np.ones((2, 6, 5)), x, w), padding=1)
    assert tuple(gx.shape) == (3, 6, 5) and tuple(gw.shape) == (2, 3, 3, 3)


def test_conv2d_empty_batch(be, no_sync):
    out = mv.conv2d(be.asarray(np.zeros((0, 2, 5, 5))), be.asarray(np.ones((3, 2, 3, 3))))
    assert tuple(out.shape) == (0, 3, 3, 3)


def test_conv2d_integers_match_torch():
    rng = np.random.default_rng(5)
    x, w = rng.integers(-9, 10, (2, 4, 6, 7)), rng.integers(-9, 10, (6, 2, 3, 2))
    b = rng.integers(-9, 10, (6,))
    out = mv.conv2d(x, w, b, padding=1, groups=2)
    assert_close(out, torch_conv(x, w, b, padding=1, groups=2), what="int64 conv2d")


def test_conv2d_float16_is_float32_rounded():
    """float16 is computed in float32 and rounded once (torch's CPU conv2d accumulates in float32)."""
    rng = np.random.default_rng(6)
    x, w = (
        gaussian(rng, (2, 4, 9, 9)).astype(np.float16),
        gaussian(rng, (6, 2, 3, 3)).astype(np.float16),
    )
    out = mv.conv2d(x, w, groups=2, padding=1)
    assert out.dtype == np.float16
    assert_close(
        out,
        mv.conv2d(x.astype(np.float32), w.astype(np.float32), groups=2, padding=1).astype(
            np.float16
        ),
    )
    assert_close(out, torch_conv(x, w, None, groups=2, padding=1), what="float16 conv2d vs torch")


# ----------------------------------------------------------------------------- conv2d backward


def autograd_conv(x, w, b, gy, **kw):
    tx, tw = T(x).requires_grad_(), T(w).requires_grad_()
    tb = T(b if b is not None else np.zeros(w.shape[0])).requires_grad_()
    F.conv2d(tx, tw, tb, **kw).backward(T(gy))
    return tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()


@pytest.mark.parametrize("name,xs,ws,with_bias,kw", CASES, ids=IDS)
def test_conv2d_backward_matches_autograd(be, no_sync, name, xs, ws, with_bias, kw):
    rng = np.random.default_rng(7)
    x, w, _ = case_data(rng, xs, ws, False, gaussian)
    gy = gaussian(rng, torch_conv(x, w, None, **kw).shape)
    grads = mv.conv2d_backward(*on(be, gy, x, w), **kw)
    ref = autograd_conv(x, w, None, gy, **kw)
    # bounds on the sum of |terms| of each gradient entry
    scales = [
        np.abs(w).sum() * np.abs(gy).max(),
        np.abs(gy).sum() * np.abs(x).max(),
        np.abs(gy).sum(),
    ]
    for what, a, e, s in zip(["grad_input", "grad_weight", "grad_bias"], grads, ref, scales):
        assert_backend(a, be)
        assert_close(a, e, what=f"{what} ({name})", atol=tol(be) * s, check_dtype=False)


def transpose_kw(x, w, kw):
    """conv_transpose2d arguments mapping conv2d(x, w, **kw)'s output back to x's size: the
    output_padding is the rows conv2d's floor left unread, always fewer than the stride."""
    stride, pad, dil = (
        pair_of(kw.get(k, d)) for k, d in [("stride", 1), ("padding", 0), ("dilation", 1)]
    )
    out = torch_conv(x, w, None, **kw).shape[2:]
    op = tuple(
        x.shape[2 + i] - ((out[i] - 1) * stride[i] - 2 * pad[i] + dil[i] * (w.shape[2 + i] - 1) + 1)
        for i in range(2)
    )
    assert all(0 <= o < s for o, s in zip(op, stride))
    return dict(
        stride=stride, padding=pad, output_padding=op, groups=kw.get("groups", 1), dilation=dil
    )


def pair_of(v):
    return tuple(v) if isinstance(v, tuple) else (v, v)


@pytest.mark.parametrize("name,xs,ws,with_bias,kw", CASES, ids=IDS)
def test_conv2d_backward_dyadic_is_exact(be, no_sync, name, xs, ws, with_bias, kw):
    rng = np.random.default_rng(8)
    x, w, _ = case_data(rng, xs, ws, False, dyadic)
    gy = dyadic(rng, torch_conv(x, w, None, **kw).shape)
    grads = mv.conv2d_backward(*on(be, gy, x, w), **kw)
    for what, a, e in zip(
        ["grad_input", "grad_weight", "grad_bias"], grads, autograd_conv(x, w, None, gy, **kw)
    ):
        assert_close(a, e.astype(be.np_float), what=f"{what} ({name})")


def test_stride_skipped_cells_get_zero_gradient():
    x, w = np.ones((1, 1, 6, 6)), np.ones((1, 1, 2, 2))
    gx, _, _ = mv.conv2d_backward(np.ones((1, 1, 2, 2)), x, w, stride=3)
    expected = np.zeros((6, 6))
    expected[[0, 0, 1, 1, 3, 3, 4, 4], [0, 1, 0, 1, 0, 1, 0, 1]] = 1
    expected[[0, 0, 1, 1, 3, 3, 4, 4], [3, 4, 3, 4, 3, 4, 3, 4]] = 1
    assert_close(gx[0, 0], expected, what="grad_input with stride 3 > kernel 2")


# ----------------------------------------------------------------------------- adjoints


EXPLICIT = [c for c in CASES if not isinstance(c[4].get("padding"), str)]


@pytest.mark.parametrize("name,xs,ws,with_bias,kw", EXPLICIT, ids=[c[0] for c in EXPLICIT])
def test_conv2d_and_conv_transpose2d_are_adjoint(be, no_sync, name, xs, ws, with_bias, kw):
    """<conv2d(x, w), y> = <x, conv_transpose2d(y, w)> = <x, grad_input(y)> = <w, grad_weight(y)>."""
    rng = np.random.default_rng(9)
    x, w = gaussian(rng, xs), gaussian(rng, ws)
    y = gaussian(rng, torch_conv(x, w, None, **kw).shape)
    bx, bw, by = on(be, x, w, y)
    lhs = np.sum(to_numpy(mv.conv2d(bx, bw, **kw)).astype(np.float64) * y)
    ty = mv.conv_transpose2d(by, bw, **transpose_kw(x, w, kw))
    gx, gw, _ = mv.conv2d_backward(by, bx, bw, **kw)
    s = np.sum(np.abs(y) * torch_conv(np.abs(x), np.abs(w), None, **kw))
    for what, a, b in [("conv_transpose2d", x, ty), ("grad_input", x, gx), ("grad_weight", w, gw)]:
        rhs = np.sum(a * to_numpy(b).astype(np.float64))
        assert abs(lhs - rhs) <= tol(be) * s, (
            f"<conv2d(x, w), y> = {lhs} but <., {what}(y)> = {rhs}"
        )


def test_im2col_col2im_match_unfold_fold_and_are_adjoint(be, no_sync):
    rng = np.random.default_rng(10)
    x = dyadic(rng, (2, 3, 7, 8))
    kw = dict(kernel_size=(3, 2), dilation=(1, 2), padding=(1, 0), stride=(2, 1))
    cols = C.im2col(be.asarray(x), **kw)
    ref = F.unfold(T(x), **kw).numpy()
    assert_close(cols, ref.astype(be.np_float), what="im2col vs F.unfold")
    c = dyadic(rng, ref.shape)
    back = C.col2im(be.asarray(c), (7, 8), **kw)
    assert_close(
        back, F.fold(T(c), (7, 8), **kw).numpy().astype(be.np_float), what="col2im vs F.fold"
    )
    assert float(np.sum(ref * c)) == float(np.sum(x * to_numpy(back)))  # exact: dyadic


# ----------------------------------------------------------------------------- transposed


# name, (N, C_in, H, W), (C_in, C_out / groups, kH, kW), arguments
TCASES = [
    (
        "stride 2, kernel 4, pad 1 (2x upsampling)",
        (2, 3, 5, 6),
        (3, 2, 4, 4),
        dict(stride=2, padding=1),
    ),
    ("stride larger than the kernel (gaps)", (1, 2, 4, 3), (2, 3, 2, 2), dict(stride=3)),
    (
        "output_padding below the stride",
        (1, 2, 4, 5),
        (2, 2, 3, 3),
        dict(stride=(3, 2), padding=1, output_padding=(2, 1)),
    ),
    (
        "output_padding only below the dilation",
        (1, 2, 4, 4),
        (2, 1, 3, 2),
        dict(stride=1, dilation=(3, 2), output_padding=(2, 1)),
    ),
    (
        "groups 2, non-square",
        (2, 4, 3, 5),
        (4, 3, 2, 3),
        dict(stride=(1, 2), padding=(1, 0), groups=2),
    ),
    ("depthwise", (1, 3, 4, 4), (3, 1, 3, 3), dict(stride=2, groups=3)),
    ("1x1", (2, 3, 4, 3), (3, 4, 1, 1), dict(stride=2)),
]
TIDS = [c[0] for c in TCASES]


def autograd_transpose(x, w, b, gy, **kw):
    tx, tw, tb = (T(a).requires_grad_() for a in (x, w, b))
    out = F.conv_transpose2d(tx, tw, tb, **kw)
    out.backward(T(gy))
    return out.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()


@pytest.mark.parametrize("name,xs,ws,kw", TCASES, ids=TIDS)
def test_conv_transpose2d_dyadic_is_bitwise_torch(be, no_sync, name, xs, ws, kw):
    rng = np.random.default_rng(11)
    x, w, b = dyadic(rng, xs), dyadic(rng, ws), dyadic(rng, (ws[1] * kw.get("groups", 1),))
    ref = F.conv_transpose2d(T(x), T(w), T(b), **kw).numpy()
    out = mv.conv_transpose2d(*on(be, x, w, b), **kw)
    assert_backend(out, be)
    assert_close(out, ref.astype(be.np_float), what=f"conv_transpose2d ({name})")
    gy = dyadic(rng, ref.shape)
    grads = mv.conv_transpose2d_backward(*on(be, gy, x, w), **kw)
    for what, a, e in zip(
        ["grad_input", "grad_weight", "grad_bias"], grads, autograd_transpose(x, w, b, gy, **kw)[1:]
    ):
        assert_backend(a, be)
        assert_close(a, e.astype(be.np_float), what=f"{what} ({name})")


@pytest.mark.parametrize("name,xs,ws,kw", TCASES, ids=TIDS)
def test_conv_transpose2d_backward_matches_autograd(be, no_sync, name, xs, ws, kw):
    rng = np.random.default_rng(12)
    x, w, b = gaussian(rng, xs), gaussian(rng, ws), gaussian(rng, (ws[1] * kw.get("groups", 1),))
    out_shape = F.conv_transpose2d(T(x), T(w), T(b), **kw).shape
    gy = gaussian(rng, out_shape)
    ref_out, *ref = autograd_transpose(x, w, b, gy, **kw)
    out = mv.conv_transpose2d(*on(be, x, w, b), **kw)
    s = float(F.conv_transpose2d(T(np.abs(x)), T(np.abs(w)), T(np.abs(b)), **kw).max())
    assert_close(
        out, ref_out, what=f"conv_transpose2d ({name})", atol=tol(be) * s, check_dtype=False
    )
    grads = mv.conv_transpose2d_backward(*on(be, gy, x, w), **kw)
    scales = [
        np.abs(w).sum() * np.abs(gy).max(),
        np.abs(gy).sum() * np.abs(x).max(),
        np.abs(gy).sum(),
    ]
    for what, a, e, sg in zip(["grad_input", "grad_weight", "grad_bias"], grads, ref, scales):
        assert_close(a, e, what=f"{what} ({name})", atol=tol(be) * sg, check_dtype=False)


@pytest.mark.parametrize("name,xs,ws,kw", TCASES, ids=TIDS)
def test_conv_transpose2d_adjoint_of_its_backward(be, no_sync, name, xs, ws, kw):
    """<conv_transpose2d(x, w), y> = <x, grad_input(y)> = <w, grad_weight(y)>."""
    rng = np.random.default_rng(13)
    x, w = gaussian(rng, xs), gaussian(rng, ws)
    y = gaussian(rng, F.conv_transpose2d(T(x), T(w), **kw).shape)
    bx, bw, by = on(be, x, w, y)
    lhs = float(np.sum(to_numpy(mv.conv_transpose2d(bx, bw, **kw)).astype(np.float64) * y))
    gx, gw, _ = mv.conv_transpose2d_backward(by, bx, bw, **kw)
    rhs_x = float(np.sum(x * to_numpy(gx).astype(np.float64)))
    rhs_w = float(np.sum(w * to_numpy(gw).astype(np.float64)))
    s = float(np.sum(np.abs(y) * F.conv_transpose2d(T(np.abs(x)), T(np.abs(w)), **kw).numpy()))
    assert abs(lhs - rhs_x) <= tol(be) * s and abs(lhs - rhs_w) <= tol(be) * s, (lhs, rhs_x, rhs_w)


# ----------------------------------------------------------------------------- hypothesis


@st.composite
def conv_configs(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cg, og = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    if draw(st.booleans()) and groups > 1:
        cg = 1  # depthwise (with a channel multiplier og)
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 11))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 11))
    n = draw(st.integers(1, 3))
    padding = draw(st.sampled_from([(ph, pw), (ph, pw), "same", "valid"]))
    if padding == "same":
        sh = sw = 1
    if padding == "valid":
        h, w = max(h, dh * (kh - 1) + 1), max(w, dw * (kw - 1) + 1)
    kw_ = dict(stride=(sh, sw), padding=padding, dilation=(dh, dw), groups=groups)
    return (n, groups * cg, h, w), (groups * og, cg, kh, kw), kw_, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=40)
@given(cfg=conv_configs())
def test_conv2d_property_forward_backward_float64(cfg):
    xs, ws, kw, seed = cfg
    rng = np.random.default_rng(seed)
    x, w, b = dyadic(rng, xs), dyadic(rng, ws), dyadic(rng, (ws[0],))
    assert_close(mv.conv2d(x, w, b, **kw), torch_conv(x, w, b, **kw), what=f"conv2d {xs} {ws} {kw}")
    gy = dyadic(rng, torch_conv(x, w, b, **kw).shape)
    grads = mv.conv2d_backward(gy, x, w, **kw)
    for what, a, e in zip(
        ["grad_input", "grad_weight", "grad_bias"], grads, autograd_conv(x, w, b, gy, **kw)
    ):
        assert_close(a, e, what=f"{what} {xs} {ws} {kw}")
    assert_close(C.conv2d_naive(x, w, b, **kw), torch_conv(x, w, b, **kw), what="conv2d_naive")


@settings(max_examples=30)
@given(cfg=conv_configs(), op=st.tuples(st.integers(0, 3), st.integers(0, 3)))
def test_conv_transpose2d_property_float64(cfg, op):
    xs, ws, kw, seed = cfg
    if isinstance(kw["padding"], str):
        kw["padding"] = 0
    kw["output_padding"] = tuple(
        min(o, max(s, d) - 1) for o, s, d in zip(op, kw["stride"], kw["dilation"])
    )
    rng = np.random.default_rng(seed)
    # a conv2d weight (O, C/g, kH, kW) read as a transposed weight maps O channels to C
    x, w = dyadic(rng, (xs[0], ws[0], *xs[2:])), dyadic(rng, ws)
    b = dyadic(rng, (ws[1] * kw["groups"],))
    try:
        ref = F.conv_transpose2d(T(x), T(w), T(b), **kw).numpy()
    except RuntimeError:  # an output size below 1: minivision must refuse too
        with pytest.raises(ValueError, match="output size"):
            mv.conv_transpose2d(x, w, b, **kw)
        return
    assert_close(mv.conv_transpose2d(x, w, b, **kw), ref, what=f"conv_transpose2d {kw}")
    gy = dyadic(rng, ref.shape)
    grads = mv.conv_transpose2d_backward(gy, x, w, **kw)
    for what, a, e in zip(
        ["grad_input", "grad_weight", "grad_bias"], grads, autograd_transpose(x, w, b, gy, **kw)[1:]
    ):
        assert_close(a, e, what=f"{what} {kw}")


# ----------------------------------------------------------------------------- bad input

X, W = np.zeros((1, 4, 6, 6)), np.zeros((2, 4, 3, 3))

BAD = [
    ("channel mismatch", X, np.zeros((2, 3, 3, 3)), {}, ValueError, "expects 3 input channels"),
    (
        "input channels not divisible by groups",
        np.zeros((1, 3, 6, 6)),
        np.zeros((2, 1, 3, 3)),
        dict(groups=2),
        ValueError,
        r"input channels \(3\) must be divisible by groups \(2\)",
    ),
    (
        "output channels not divisible by groups",
        X,
        np.zeros((3, 2, 3, 3)),
        dict(groups=2),
        ValueError,
        "not divisible by groups",
    ),
    (
        "kernel larger than the padded input",
        X,
        np.zeros((2, 4, 9, 3)),
        dict(padding=1),
        ValueError,
        "larger than the padded input",
    ),
    (
        "dilated kernel larger than the input",
        X,
        W,
        dict(dilation=3),
        ValueError,
        "larger than the padded input",
    ),
    ("stride 0", X, W, dict(stride=0), ValueError, "stride must be >= 1"),
    ("negative stride", X, W, dict(stride=(1, -2)), ValueError, "stride must be >= 1"),
    ("dilation 0", X, W, dict(dilation=0), ValueError, "dilation must be >= 1"),
    ("negative padding", X, W, dict(padding=-1), ValueError, "padding must be >= 0"),
    (
        "same with stride 2",
        X,
        W,
        dict(padding="same", stride=2),
        ValueError,
        'padding="same" needs stride 1',
    ),
    (
        "unknown padding string",
        X,
        W,
        dict(padding="full"),
        ValueError,
        "padding must be an int, a pair",
    ),
    ("groups 0", X, W, dict(groups=0), ValueError, "groups must be a positive int"),
    (
        "weight with 3 axes",
        X,
        np.zeros((2, 4, 3)),
        {},
        ValueError,
        r"weight must have shape \(C_out, C_in / groups, kH, kW\)",
    ),
    (
        "input with 2 axes",
        np.zeros((6, 6)),
        W,
        {},
        ValueError,
        r"input must have shape \(N, C, H, W\) or \(C, H, W\)",
    ),
    (
        "bias of the wrong length",
        X,
        W,
        dict(bias=np.zeros(3)),
        ValueError,
        r"bias must have shape \(2,\)",
    ),
    ("float stride", X, W, dict(stride=1.5), TypeError, "stride must be an int or a pair of ints"),
    (
        "triple stride",
        X,
        W,
        dict(stride=(1, 1, 1)),
        TypeError,
        "stride must be an int or a pair of ints",
    ),
    ("dtype mismatch", X.astype(np.float32), W, {}, TypeError, "input, weight must have one dtype"),
]


@pytest.mark.parametrize("name,x,w,kw,err,match", BAD, ids=[b[0] for b in BAD])
def test_conv2d_bad_input_is_a_clear_error(name, x, w, kw, err, match):
    kw = dict(kw)
    bias = kw.pop("bias", None)
    with pytest.raises((RuntimeError, ValueError, TypeError)):  # torch refuses it too
        F.conv2d(T(x), T(w), None if bias is None else T(bias), **kw)
    with pytest.raises(err, match=match):
        mv.conv2d(x, w, bias, **kw)
    with pytest.raises(err, match=match):
        C.conv2d_naive(x, w, bias, **kw)


def test_conv_backward_and_transpose_bad_input():
    with pytest.raises(
        ValueError, match=r"grad_output must have the forward output's shape \(1, 2, 4, 4\)"
    ):
        mv.conv2d_backward(np.zeros((1, 2, 6, 6)), X, W)
    with pytest.raises(TypeError, match="gradients need a real floating-point input"):
        mv.conv2d_backward(
            np.zeros((1, 2, 4, 4), dtype=np.int64), X.astype(np.int64), W.astype(np.int64)
        )
    with pytest.raises(ValueError, match="output_padding must be smaller than stride or dilation"):
        mv.conv_transpose2d(X, np.zeros((4, 2, 3, 3)), stride=2, output_padding=2)
    with pytest.raises(RuntimeError):
        F.conv_transpose2d(T(X), T(np.zeros((4, 2, 3, 3))), stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"needs 4 rows for an input with 4 channels"):
        mv.conv_transpose2d(X, np.zeros((2, 4, 3, 3)))
    with pytest.raises(ValueError, match="conv_transpose2d output size .* is too small"):
        mv.conv_transpose2d(np.zeros((1, 4, 1, 1)), np.zeros((4, 2, 1, 1)), padding=1)
    with pytest.raises(TypeError, match="must be an array"):
        mv.conv2d(X.tolist(), W)
    with pytest.raises(TypeError, match="must all come from one array library"):
        mv.conv2d(T(X), W)
    with pytest.raises(TypeError, match="input must have a real floating-point or integer dtype"):
        mv.conv2d(X.astype(bool), W.astype(bool))
    with pytest.raises(ValueError, match="input has 35 columns, but output_size"):
        C.col2im(np.zeros((1, 4, 35)), (6, 6), 2)


def test_nothing_is_mutated(be, no_sync):
    rng = np.random.default_rng(14)
    x, w, b = gaussian(rng, (2, 4, 7, 6)), gaussian(rng, (6, 2, 3, 3)), gaussian(rng, (6,))
    gy = gaussian(rng, (2, 6, 4, 3))
    bx, bw, bb, bgy = on(be, x, w, b, gy)
    kw = dict(stride=2, padding=1, groups=2)
    mv.conv2d(bx, bw, bb, **kw)
    mv.conv2d_backward(bgy, bx, bw, **kw)
    tw = be.asarray(gaussian(rng, (4, 3, 3, 3)))
    y = mv.conv_transpose2d(bx, tw, stride=2, groups=2)
    mv.conv_transpose2d_backward(be.asarray(np.ones(tuple(y.shape))), bx, tw, stride=2, groups=2)
    for name, a, e in [
        ("input", bx, x),
        ("weight", bw, w),
        ("bias", bb, b),
        ("grad_output", bgy, gy),
    ]:
        assert_close(a, e.astype(be.np_float), what=f"{name} after the calls")


def test_tour_stage_writes_the_feature_figure(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from minivision.tour import STAGES, load_image, stage_features

    assert stage_features in STAGES
    stage = stage_features(load_image()[0], tmp_path, True)
    assert stage.figures == ["01_features.png"]
    assert (tmp_path / "01_features.png").stat().st_size > 10_000
    assert "4 x 128 x 128 feature map" in stage.text
