"""`minivision check 01`: stubs fail cleanly, a correct solution passes, planted mistakes are named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from lesson_checks import assert_solution_passes, assert_stubs_fail_cleanly, load_solution, replaced

from minivision.checks import check_module, lesson_battery
from minivision.checks._core import difference

ROOT = Path(__file__).resolve().parents[2]
STUBS = ROOT / "lessons" / "01_convolution.py"
SOLUTION = Path(__file__).parents[1] / "solutions" / "lesson01_solution.py"


SOL = load_solution("01")


def _with(**overrides):
    return replaced(SOL, **overrides)


def test_stubs_fail_cleanly():
    assert_stubs_fail_cleanly("01", STUBS, 6)


def test_reference_solution_passes():
    assert_solution_passes("01", 6)


def test_battery_mistakes_are_told_apart():
    """On every case, the mistakes that go wrong there all give different outputs, so the first
    match the checker finds is the learner's mistake and not a look-alike."""
    for fb in lesson_battery("01").functions:
        for case in fb.cases:
            ref = fb.reference(*case.args, **case.kwargs)
            wrong = [(m.name, m.fn(*case.args, **case.kwargs)) for m in fb.mistakes]
            wrong = [(n, o) for n, o in wrong if difference(o, ref, fb.rtol, fb.atol) is not None]
            for i, (n1, o1) in enumerate(wrong):
                for n2, o2 in wrong[i + 1 :]:
                    assert difference(o1, o2, fb.rtol, fb.atol), (
                        f"{fb.name}, {case.name}: {n1} == {n2}"
                    )
        for m in fb.mistakes:  # and each mistake shows on some case
            assert any(
                difference(
                    m.fn(*c.args, **c.kwargs), fb.reference(*c.args, **c.kwargs), fb.rtol, fb.atol
                )
                for c in fb.cases
            ), f"{fb.name}: no case shows {m.name}"


# ----------------------------------------------------------------------------- planted mistakes
# Each is written here the way a learner would, independently of the checker's variants.


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def size_without_plus_one(size, kernel_size, stride=1, padding=0, dilation=1):
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride


def size_one_sided_padding(size, kernel_size, stride=1, padding=0, dilation=1):
    return (size + padding - dilation * (kernel_size - 1) - 1) // stride + 1


def size_ignoring_dilation(size, kernel_size, stride=1, padding=0, dilation=1):
    return (size + 2 * padding - kernel_size) // stride + 1


def size_rounded_up(size, kernel_size, stride=1, padding=0, dilation=1):
    return int(np.ceil((size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride)) + 1


def im2col_offset_major(x, kernel_size, stride=1, padding=0):
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel_size), _pair(stride), _pair(padding)
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ho = (xpad.shape[2] - kh) // sh + 1
    wo = (xpad.shape[3] - kw) // sw + 1
    rows = [
        xpad[:, :, u : u + sh * (ho - 1) + 1 : sh, v : v + sw * (wo - 1) + 1 : sw].reshape(
            x.shape[0], x.shape[1], -1
        )
        for u in range(kh)
        for v in range(kw)
    ]
    return np.concatenate(rows, axis=1)  # (N, K*C, L): offset-major


def im2col_pads_swapped(x, kernel_size, stride=1, padding=0):
    ph, pw = _pair(padding)
    return SOL.im2col(x, kernel_size, stride, (pw, ph))


def conv_true_convolution(x, weight, bias=None, stride=1, padding=0):
    return SOL.conv2d(x, weight[:, :, ::-1, ::-1], bias, stride, padding)


def conv_pads_swapped(x, weight, bias=None, stride=1, padding=0):
    ph, pw = _pair(padding)
    return SOL.conv2d(x, weight, bias, stride, (pw, ph))


def conv_one_short(x, weight, bias=None, stride=1, padding=0):
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    kh, kw = weight.shape[2:]
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ho = (xpad.shape[2] - kh) // sh  # forgot the + 1
    wo = (xpad.shape[3] - kw) // sw
    out = np.zeros((x.shape[0], weight.shape[0], ho, wo))
    for i in range(ho):
        for j in range(wo):
            win = xpad[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
            out[:, :, i, j] = np.tensordot(win, weight, axes=([1, 2, 3], [1, 2, 3]))
    if bias is not None:
        out += bias[None, :, None, None]
    return out


def backward_kernel_not_rotated(grad_output, x, weight, stride=1, padding=0):
    gx, gw, gb = SOL.conv2d_backward(grad_output, x, weight, stride, padding)
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    kh, kw = weight.shape[2:]
    n, c, h, w = x.shape
    ho, wo = grad_output.shape[2:]
    grad_pad = np.zeros((n, c, h + 2 * ph, w + 2 * pw))
    for u in range(kh):
        for v in range(kw):
            tap = weight[:, :, kh - 1 - u, kw - 1 - v]  # the mistake: rotated taps
            contrib = np.einsum("noij,oc->ncij", grad_output, tap)
            grad_pad[:, :, u : u + sh * (ho - 1) + 1 : sh, v : v + sw * (wo - 1) + 1 : sw] += (
                contrib
            )
    return grad_pad[:, :, ph : ph + h, pw : pw + w], gw, gb


def backward_batch_mean(grad_output, x, weight, stride=1, padding=0):
    gx, gw, gb = SOL.conv2d_backward(grad_output, x, weight, stride, padding)
    n = x.shape[0]
    return gx, gw / n, gb / n


def backward_padding_kept(grad_output, x, weight, stride=1, padding=0):
    ph, pw = _pair(padding)
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    return SOL.conv2d_backward(grad_output, xpad, weight, stride, 0)


def pool_stride_one(x, kernel_size, stride=None):
    return SOL.max_pool2d(x, kernel_size, stride or 1)


def pool_one_short(x, kernel_size, stride=None):
    return SOL.max_pool2d(x, kernel_size, stride)[:, :, :-1, :-1]


def pool_back_every_tie(grad_output, x, kernel_size, stride=None):
    (kh, kw), (sh, sw) = _pair(kernel_size), _pair(stride or kernel_size)
    grad = np.zeros_like(x)
    for i in range(grad_output.shape[2]):
        for j in range(grad_output.shape[3]):
            win = x[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
            is_max = win == win.max(axis=(2, 3), keepdims=True)
            grad[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw] += (
                is_max * grad_output[:, :, i : i + 1, j : j + 1]
            )
    return grad


def pool_back_overwrite(grad_output, x, kernel_size, stride=None):
    (kh, kw), (sh, sw) = _pair(kernel_size), _pair(stride or kernel_size)
    grad = np.zeros_like(x)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i in range(grad_output.shape[2]):
                for j in range(grad_output.shape[3]):
                    win = x[n, c, i * sh : i * sh + kh, j * sw : j * sw + kw]
                    u, v = np.unravel_index(np.argmax(win), win.shape)
                    grad[n, c, i * sh + u, j * sw + v] = grad_output[n, c, i, j]  # = instead of +=
    return grad


def pool_back_average(grad_output, x, kernel_size, stride=None):
    (kh, kw), (sh, sw) = _pair(kernel_size), _pair(stride or kernel_size)
    grad = np.zeros_like(x)
    for i in range(grad_output.shape[2]):
        for j in range(grad_output.shape[3]):
            grad[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw] += grad_output[
                :, :, i : i + 1, j : j + 1
            ] / (kh * kw)
    return grad


PLANTED = [
    ("conv2d_output_size", size_without_plus_one, "an output size off by one"),
    ("conv2d_output_size", size_one_sided_padding, "padding counted once"),
    ("conv2d_output_size", size_ignoring_dilation, "dilation ignored"),
    ("conv2d_output_size", size_rounded_up, "rounding up"),
    ("im2col", im2col_offset_major, "rows ordered (kernel offset, channel)"),
    ("im2col", im2col_pads_swapped, "padding applied to the wrong axes"),
    ("conv2d", conv_true_convolution, "convolution flipped instead of cross-correlation"),
    ("conv2d", conv_pads_swapped, "padding applied to the wrong axes"),
    ("conv2d", conv_one_short, "an output size off by one"),
    (
        "conv2d_backward",
        backward_kernel_not_rotated,
        "the kernel not rotated in the input gradient",
    ),
    ("conv2d_backward", backward_batch_mean, "weight and bias gradients averaged over the batch"),
    ("conv2d_backward", backward_padding_kept, "the padding left on grad_input"),
    ("max_pool2d", pool_stride_one, "stride defaulting to 1"),
    ("max_pool2d", pool_one_short, "an output size off by one"),
    ("max_pool2d_backward", pool_back_every_tie, "the gradient sent to every tied maximum"),
    (
        "max_pool2d_backward",
        pool_back_overwrite,
        "overlapping windows overwrite instead of accumulate",
    ),
    ("max_pool2d_backward", pool_back_average, "the gradient spread over the window"),
]


@pytest.mark.parametrize(
    "fn,wrong,mistake", PLANTED, ids=[f"{p[0]}-{p[1].__name__}" for p in PLANTED]
)
def test_planted_mistake_is_recognised(fn, wrong, mistake):
    report = check_module("01", _with(**{fn: wrong}))
    result = report.result(fn)
    assert result.status == "failed"
    assert result.mistakes == [mistake], report.text()
    assert f"looks like {mistake}" in report.text()
    assert all(r.status == "ok" for r in report.results if r.name != fn)


def test_a_tuple_of_the_wrong_length_is_reported():
    def two_grads(grad_output, x, weight, stride=1, padding=0):
        return SOL.conv2d_backward(grad_output, x, weight, stride, padding)[:2]

    report = check_module("01", _with(conv2d_backward=two_grads))
    assert "expected a tuple of 3 arrays" in report.text()


def test_command_line_exit_code():
    proc = subprocess.run(
        [sys.executable, "-m", "minivision", "check", "01", str(SOLUTION)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "6 of 6 functions pass" in proc.stdout
