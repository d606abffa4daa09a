"""`minivision check 15`: stubs fail cleanly, a correct solution passes, planted mistakes are named.

Each planted mistake is written here the way a learner would write it, independently of the
battery's own wrong versions, and must be recognised -- and only it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from lesson_checks import (
    assert_cli_exit_code,
    assert_planted_mistake_named,
    assert_solution_passes,
    assert_stubs_fail_cleanly,
    load_solution,
    replaced,
)

from minivision.checks import check_module

ROOT = Path(__file__).resolve().parents[2]
STUBS = ROOT / "lessons" / "15_segmentation.py"
SOLUTION = Path(__file__).parents[1] / "solutions" / "lesson15_solution.py"
SOL = load_solution("15")


def test_stubs_fail_cleanly():
    assert_stubs_fail_cleanly("15", STUBS, 4)


def test_reference_solution_passes():
    assert_solution_passes("15", 4)


def kernel_ones(channels, factor):
    k = 2 * factor - factor % 2
    return np.ones((channels, channels, k, k))


def kernel_nearest(channels, factor):
    k = 2 * factor - factor % 2
    w = np.zeros((channels, channels, k, k))
    lo = (k - factor) // 2
    for c in range(channels):
        w[c, c, lo:lo + factor, lo:lo + factor] = 1.0
    return w


def kernel_odd_centre(channels, factor):
    k = 2 * factor - factor % 2
    f = (k + 1) // 2
    tent = np.maximum(1 - np.abs(np.arange(k) - (f - 1)) / f, 0)
    w = np.zeros((channels, channels, k, k))
    for c in range(channels):
        w[c, c] = tent[:, None] * tent[None, :]
    return w


def kernel_all_pairs(channels, factor):
    one = SOL.bilinear_kernel(1, factor)[0, 0]
    return np.tile(one, (channels, channels, 1, 1))


def fusion_offset(delta=0, centre=False):
    def f(coarse, skip, weight, offset):
        n, k, h, w = coarse.shape
        up = np.zeros((n, k, 2 * h + 2, 2 * w + 2))
        for i in range(h):
            for j in range(w):
                up[:, :, 2 * i:2 * i + 4, 2 * j:2 * j + 4] += np.einsum("nc,couv->nouv", coarse[:, :, i, j], weight)
        hu, wu = up.shape[-2:]
        if centre:
            t, l = (skip.shape[2] - hu) // 2, (skip.shape[3] - wu) // 2
        else:
            t = l = offset + delta
        return up + skip[:, :, t:t + hu, l:l + wu]

    return f


def aspp_variant(dilate=True, pool="mean", relu=True):
    def conv(x, w, d=1):
        n, c, h, wd = x.shape
        k = w.shape[-1]
        p = d * (k - 1) // 2
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        out = np.zeros((n, w.shape[0], h, wd))
        for u in range(k):
            for v in range(k):
                out += np.einsum("nchw,dc->ndhw", xp[:, :, u * d:u * d + h, v * d:v * d + wd], w[:, :, u, v])
        return out

    def f(x, w_1x1, w_atrous, rates, w_pool, w_project):
        act = (lambda a: np.maximum(a, 0)) if relu else (lambda a: a)
        outs = [act(conv(x, w_1x1))] + [act(conv(x, w, r if dilate else 1)) for w, r in zip(w_atrous, rates)]
        g = x.mean((2, 3), keepdims=True) if pool == "mean" else x.max((2, 3), keepdims=True)
        outs.append(np.broadcast_to(act(conv(g, w_pool)), outs[0].shape))
        return np.maximum(conv(np.concatenate(outs, 1), w_project), 0)

    return f


def miou_per_image(pred, target, num_classes):
    return float(np.mean([SOL.mean_iou(p[None], t[None], num_classes) for p, t in zip(pred, target)]))


def miou_no_background(pred, target, num_classes):
    ious = []
    for c in range(1, num_classes):
        inter = np.sum((pred == c) & (target == c))
        union = np.sum((pred == c) | (target == c))
        if union:
            ious.append(inter / union)
    return float(np.mean(ious))


def miou_absent_zero(pred, target, num_classes):
    ious = []
    for c in range(num_classes):
        union = np.sum((pred == c) | (target == c))
        ious.append(np.sum((pred == c) & (target == c)) / union if union else 0.0)
    return float(np.mean(ious))


PLANTED = [
    ("bilinear_kernel", kernel_ones, "an up-sampling kernel that is not the bilinear tent"),
    ("bilinear_kernel", kernel_nearest, "a box kernel (nearest-neighbour up-sampling)"),
    ("bilinear_kernel", kernel_odd_centre, "the tent centred at f - 1 for an even kernel"),
    ("bilinear_kernel", kernel_all_pairs, "every channel up-sampling every other channel"),
    ("fcn_skip_fusion", fusion_offset(1), "the crop offset off by one (one too far)"),
    ("fcn_skip_fusion", fusion_offset(-1), "the crop offset off by one (one too early)"),
    ("fcn_skip_fusion", fusion_offset(centre=True), "a centred crop instead of the given offset"),
    ("aspp_forward", aspp_variant(dilate=False), "the atrous rate ignored (dilation 1)"),
    ("aspp_forward", aspp_variant(pool="max"), "max instead of mean in the image-pooling branch"),
    ("aspp_forward", aspp_variant(relu=False), "the branches' ReLU left out"),
    ("mean_iou", miou_per_image, "mIoU averaged per image"),
    ("mean_iou", miou_no_background, "the background class left out"),
    ("mean_iou", miou_absent_zero, "an absent class counted as IoU 0"),
]


@pytest.mark.parametrize("fn,wrong,mistake", PLANTED, ids=[f"{p[0]}-{p[2]}" for p in PLANTED])
def test_planted_mistake_is_recognised(fn, wrong, mistake):
    assert_planted_mistake_named("15", SOL, fn, wrong, mistake)


def test_the_learner_versions_without_mistakes_are_correct():
    report = check_module("15", replaced(SOL, fcn_skip_fusion=fusion_offset(), aspp_forward=aspp_variant()))
    assert report.ok, report.text()


def test_the_solution_matches_torch_where_torch_defines_the_operation():
    """The grader's references are minivision's; the solution is also held to torch directly."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 5, 5))
    up = F.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(SOL.bilinear_kernel(2, 2)), stride=2, padding=1)
    ref = F.interpolate(torch.from_numpy(x), scale_factor=2, mode="bilinear", align_corners=False)
    assert np.allclose(up.numpy()[..., 1:-1, 1:-1], ref.numpy()[..., 1:-1, 1:-1])
    from torchvision.models.segmentation.deeplabv3 import ASPP

    aspp = ASPP(4, (2, 3), 3).double().eval()
    with torch.no_grad():
        for m in aspp.modules():
            if isinstance(m, torch.nn.BatchNorm2d):  # fold BN away: identity in eval mode
                m.running_var.fill_(1 - m.eps)
    xa = rng.standard_normal((2, 4, 7, 9))
    sd = aspp.state_dict()
    ours = SOL.aspp_forward(xa, sd["convs.0.0.weight"].numpy(),
                            [sd["convs.1.0.weight"].numpy(), sd["convs.2.0.weight"].numpy()], (2, 3),
                            sd["convs.3.1.weight"].numpy(), sd["project.0.weight"].numpy())  # fmt: skip
    with torch.no_grad():
        ref = aspp(torch.from_numpy(xa)).numpy()
    assert np.allclose(ours, ref, atol=1e-10)


def test_the_checker_does_not_trust_input_arrays():
    def in_place(pred, target, num_classes):
        pred[:] = target
        return SOL.mean_iou(pred, target, num_classes)

    report = check_module("15", replaced(SOL, mean_iou=in_place))
    assert "changed its input array" in report.text()


@pytest.mark.parametrize("path,code", [(STUBS, 1), (SOLUTION, 0)])
def test_command_line_exit_codes(path, code):
    assert_cli_exit_code("15", path, code)
