"""minivision.detection.rpn against torchvision's RegionProposalNetwork (0.29.1), on every backend.

torchvision's module is run with given objectness and deltas: either through ``forward`` with a
head that returns them (so the anchor order and the head's ``(N, A*C, H, W)`` layout are
checked too), or through ``box_coder.decode`` + ``filter_proposals``. The proposals must be the
same boxes in the same order; coordinates agree within 4 ulp of their row (``exp`` differs by an
ulp between libraries; bitwise on torch), scores within 4 ulp (sigmoid).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import assert_backend, assert_close
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torchvision.models.detection.anchor_utils import AnchorGenerator as TvAnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.rpn import RegionProposalNetwork
from torchvision.models.detection.rpn import (
    concat_box_prediction_layers as tv_concat_box_prediction_layers,
)

from minivision._backend import to_numpy
from minivision.detection.anchors import AnchorGenerator
from minivision.detection.rpn import concat_box_prediction_layers, rpn_proposals, top_k


class GivenHead(nn.Module):
    """An RPN head that returns fixed objectness and deltas instead of computing them."""

    def __init__(self, objectness, deltas):
        super().__init__()
        self.objectness, self.deltas = objectness, deltas

    def forward(self, features):
        return self.objectness, self.deltas


def tv_rpn(sizes, ratios, head=None, pre=1000, post=1000, nms=0.7, score=0.0, min_size=1e-3):
    rpn = RegionProposalNetwork(
        TvAnchorGenerator(sizes, ratios),
        head,
        0.7,
        0.3,
        256,
        0.5,
        dict(training=pre, testing=pre),
        dict(training=post, testing=post),
        nms,
        score,
    ).eval()
    rpn.min_size = min_size
    return rpn


def tv_filter(rpn, anchors, objectness, deltas, image_size):
    """torchvision's proposals for one image from flat (sum A,) logits and (sum A, 4) deltas."""
    flat = torch.from_numpy(np.concatenate(anchors))
    props = rpn.box_coder.decode(torch.from_numpy(deltas), [flat]).view(1, -1, 4)
    boxes, scores = rpn.filter_proposals(
        props, torch.from_numpy(objectness).view(1, -1), [image_size], [len(a) for a in anchors]
    )
    return boxes[0].numpy(), scores[0].numpy()


def working_scale(anchors, deltas):
    """The largest decoded coordinate before clipping: decode's round-off is relative to it
    (a clipped corner near 0 comes from the difference of two such numbers)."""
    from torchvision.models.detection._utils import BoxCoder as TvBoxCoder

    flat = torch.from_numpy(np.concatenate([to_numpy(a) for a in anchors]))
    decoded = TvBoxCoder((1.0, 1.0, 1.0, 1.0)).decode_single(
        torch.from_numpy(to_numpy(deltas)), flat
    )
    return float(decoded.abs().max()) if decoded.numel() else 0.0


def assert_proposals(be, got, ref, scale, what="proposals"):
    """Same count and order; scores within 4 ulp, corners within 4 ulp of ``scale``."""
    boxes, scores = (to_numpy(v) for v in got)
    ref_boxes, ref_scores = ref
    assert boxes.shape == ref_boxes.shape, (
        f"{what}: {boxes.shape[0]} boxes, expected {ref_boxes.shape[0]}"
    )
    torch_exact = be.name == "torch-cpu"
    eps = np.finfo(ref_scores.dtype).eps
    assert_close(scores, ref_scores, what=f"{what} scores", rtol=0 if torch_exact else 4 * eps)
    tol = 0 if torch_exact else 4 * eps * scale
    bad = np.abs(boxes - ref_boxes) > tol
    if np.any(bad):
        i, j = np.argwhere(bad)[0]
        raise AssertionError(
            f"{what}: box {i} coordinate {j} is {boxes[i, j]!r}, torchvision {ref_boxes[i, j]!r}; "
            f"{bad.any(axis=1).sum()} of {len(bad)} boxes differ"
        )


# ----------------------------------------------------------------------------- full forward

LEVELS = ((16,), (32, 48), (96,))
RATIOS = ((0.5, 1.0, 2.0), (1.0, 2.0), (0.5, 1.0))


def test_rpn_forward_matches_torchvision(be):
    """Two images, three levels, a padded batch of 100 x 150 whose sizes the feature maps do not
    divide, images smaller than the batch; the head's maps go through the layout function."""
    rng = np.random.default_rng(0)
    padded, image_sizes = (100, 150), [(97, 150), (100, 131)]
    grids = [(13, 19), (7, 10), (3, 4)]
    gen = AnchorGenerator(LEVELS, RATIOS)
    a_per = gen.num_anchors_per_location()
    obj = [rng.normal(0, 2, (2, a, *g)).astype(be.np_float) for a, g in zip(a_per, grids)]
    deltas = [rng.normal(0, 0.6, (2, 4 * a, *g)).astype(be.np_float) for a, g in zip(a_per, grids)]
    features = {
        str(i): torch.zeros(2, 1, *g, dtype=torch.from_numpy(obj[0]).dtype)
        for i, g in enumerate(grids)
    }
    head = GivenHead([torch.from_numpy(o) for o in obj], [torch.from_numpy(d) for d in deltas])
    rpn = tv_rpn(LEVELS, RATIOS, head, pre=60, post=40, nms=0.6)
    recorded = []
    filter_proposals = rpn.filter_proposals
    rpn.filter_proposals = lambda *a: recorded.append(filter_proposals(*a)) or recorded[-1]
    images = ImageList(torch.zeros(2, 3, *padded), image_sizes)
    ref_boxes, _ = rpn(images, features)
    ref_scores = recorded[0][1]

    anchors = gen(padded, [be.asarray(o) for o in obj], per_level=True)
    cls, reg = concat_box_prediction_layers(
        [be.asarray(o) for o in obj], [be.asarray(d) for d in deltas]
    )
    per_image = cls.shape[0] // 2
    for i, size in enumerate(image_sizes):
        rows = slice(i * per_image, (i + 1) * per_image)
        boxes, scores = rpn_proposals(
            anchors, cls[rows, 0], reg[rows, :], size, 60, 40, 0.6, 0.0, 1e-3
        )
        assert_backend(boxes, be)
        ref = ref_boxes[i].numpy(), ref_scores[i].numpy()
        scale = working_scale(anchors, reg[rows, :])
        assert_proposals(be, (boxes, scores), ref, scale, what=f"image {i}")


def test_concat_box_prediction_layers_matches_torchvision(be, no_sync):
    rng = np.random.default_rng(1)
    shapes = [(2, 3, 5, 7), (2, 2, 3, 2)]
    cls = [rng.normal(size=(n, a * 2, h, w)).astype(be.np_float) for n, a, h, w in shapes]
    reg = [rng.normal(size=(n, a * 4, h, w)).astype(be.np_float) for n, a, h, w in shapes]
    ours = concat_box_prediction_layers([be.asarray(c) for c in cls], [be.asarray(r) for r in reg])
    ref = tv_concat_box_prediction_layers(
        [torch.from_numpy(c) for c in cls], [torch.from_numpy(r) for r in reg]
    )
    assert_close(ours[0], ref[0].numpy(), what="box_cls")
    assert_close(ours[1], ref[1].numpy(), what="box_regression")


# ----------------------------------------------------------------------------- filter_proposals

FPN = (((32,), (64,), (128,)), ((0.5, 1.0, 2.0),) * 3)


def fpn_inputs(np_float, rng, padded, grids, spread=0.5, quantise=None):
    """Host anchors of a 3-level FPN, logits and deltas."""
    gen = AnchorGenerator(*FPN)
    anchors = gen(padded, grids, like=np.zeros(1, np_float), per_level=True)
    n = sum(len(a) for a in anchors)
    if quantise is None:  # distinct logits: a permutation of a grid
        obj = (rng.permutation(n) - n / 2) * (8.0 / n)
    else:
        obj = rng.integers(-quantise, quantise, n) * 0.5
    deltas = rng.normal(0, spread, (n, 4))
    return anchors, obj.astype(np_float), deltas.astype(np_float)


@pytest.mark.parametrize(
    "pre,post,nms,score,min_size",
    [(1000, 1000, 0.7, 0.0, 1e-3), (300, 500, 0.5, 0.3, 2.0), (2000, 100, 0.8, 0.0, 8.0)],
)
def test_filter_proposals_matches_torchvision_on_thousands(be, pre, post, nms, score, min_size):
    """Over 1,000 boxes go to NMS, which makes torchvision use its per-level loop."""
    rng = np.random.default_rng(2)
    anchors, obj, deltas = fpn_inputs(
        be.np_float, rng, (400, 544), [(100, 136), (50, 68), (25, 34)]
    )
    image_size = (397, 530)
    rpn = tv_rpn(*FPN, pre=pre, post=post, nms=nms, score=score, min_size=min_size)
    ref = tv_filter(rpn, anchors, obj, deltas, image_size)
    got = rpn_proposals(
        [be.asarray(a) for a in anchors],
        be.asarray(obj),
        be.asarray(deltas),
        image_size,
        pre,
        post,
        nms,
        score,
        min_size,
    )
    assert_backend(got[0], be)
    assert_proposals(be, got, ref, working_scale(anchors, deltas))


@st.composite
def rpn_cases(draw):
    n_levels = draw(st.integers(1, 3))
    padded = (draw(st.integers(8, 300)), draw(st.integers(8, 300)))
    grids = [(draw(st.integers(1, 7)), draw(st.integers(1, 7))) for _ in range(n_levels)]
    sizes = tuple((draw(st.sampled_from([8, 16, 32, 64, 128])),) for _ in range(n_levels))
    ratios = tuple(
        tuple(draw(st.lists(st.sampled_from([0.5, 1.0, 2.0, 3.0]), min_size=1, max_size=3)))
        for _ in range(n_levels)
    )
    image = (draw(st.integers(1, padded[0])), draw(st.integers(1, padded[1])))
    params = dict(
        pre=draw(st.integers(1, 120)),
        post=draw(st.integers(0, 120)),
        nms=draw(st.sampled_from([0.3, 0.5, 0.7, 0.9])),
        score=draw(st.sampled_from([0.0, 0.2, 0.5, 0.9])),
        min_size=draw(st.sampled_from([1e-3, 0.5, 3.0, 20.0])),
    )
    seed = draw(st.integers(0, 2**32 - 1))
    spread = draw(st.sampled_from([0.0, 0.3, 1.0, 5.0]))
    return sizes, ratios, padded, grids, image, params, seed, spread


@given(case=rpn_cases())
def test_filter_proposals_property_every_backend(be, case):
    """Several levels, non-square and non-divisible sizes, clipping, every filter switched on;
    the logits are distinct (ties at the top-k cut are tested separately)."""
    sizes, ratios, padded, grids, image, p, seed, spread = case
    rng = np.random.default_rng(seed)
    gen = AnchorGenerator(sizes, ratios)
    anchors = [
        to_numpy(a)
        for a in gen(padded, grids, like=be.asarray(np.zeros(1, be.np_float)), per_level=True)
    ]
    n = sum(len(a) for a in anchors)
    obj = ((rng.permutation(n) - n / 2) * (10.0 / n)).astype(be.np_float)
    deltas = rng.normal(0, spread, (n, 4)).astype(be.np_float)
    rpn = tv_rpn(
        sizes,
        ratios,
        pre=p["pre"],
        post=p["post"],
        nms=p["nms"],
        score=p["score"],
        min_size=p["min_size"],
    )
    ref = tv_filter(rpn, anchors, obj, deltas, image)
    got = rpn_proposals(
        [be.asarray(a) for a in anchors],
        be.asarray(obj),
        be.asarray(deltas),
        image,
        p["pre"],
        p["post"],
        p["nms"],
        p["score"],
        p["min_size"],
    )
    assert_proposals(be, got, ref, working_scale(anchors, deltas))


def textbook_proposals(anchors, obj, deltas, image_size, pre, post, nms, score, min_size):
    """The pipeline one step at a time with torchvision's ops, but a *stable* top-k."""
    import torchvision.ops as tv
    from torchvision.models.detection._utils import BoxCoder as TvBoxCoder

    idx, lvl, start = [], [], 0
    for level, a in enumerate(anchors):
        order = np.argsort(-obj[start : start + len(a)], kind="stable")[:pre]
        idx.append(order + start)
        lvl.append(np.full(len(order), level))
        start += len(a)
    idx, lvl = np.concatenate(idx), torch.from_numpy(np.concatenate(lvl))
    flat = torch.from_numpy(np.concatenate(anchors))[idx]
    boxes = TvBoxCoder((1.0, 1.0, 1.0, 1.0)).decode_single(torch.from_numpy(deltas[idx]), flat)
    boxes = tv.clip_boxes_to_image(boxes, image_size)
    scores = torch.sigmoid(torch.from_numpy(obj[idx]))
    keep = tv.remove_small_boxes(boxes, min_size)
    keep = keep[scores[keep] >= score]
    boxes, scores, lvl = boxes[keep], scores[keep], lvl[keep]
    keep = tv.batched_nms(boxes, scores, lvl, nms)[:post]
    return boxes[keep].numpy(), scores[keep].numpy()


def test_tied_logits_follow_the_stable_rule(be):
    """Logits on a coarse grid: many ties at every top-k cut. torch.topk breaks them in an
    unspecified way; minivision keeps the lower anchor index first, like a stable sort."""
    rng = np.random.default_rng(3)
    anchors, obj, deltas = fpn_inputs(
        be.np_float, rng, (128, 160), [(16, 20), (8, 10), (4, 5)], quantise=4
    )
    args = ((120, 125), 100, 90, 0.6, 0.0, 1e-3)
    got = rpn_proposals(
        [be.asarray(a) for a in anchors], be.asarray(obj), be.asarray(deltas), *args
    )
    ref = textbook_proposals(anchors, obj, deltas, *args)
    assert len(ref[0]) == 90
    assert_proposals(
        be, got, ref, working_scale(anchors, deltas), what="proposals with tied logits"
    )


def test_no_proposal_survives(be):
    rng = np.random.default_rng(4)
    anchors, obj, deltas = fpn_inputs(be.np_float, rng, (64, 64), [(4, 4), (2, 2), (1, 1)])
    boxes, scores = rpn_proposals(
        [be.asarray(a) for a in anchors],
        be.asarray(obj),
        be.asarray(deltas),
        (64, 64),
        min_size=1000.0,
    )
    assert tuple(boxes.shape) == (0, 4) and tuple(scores.shape) == (0,)


def test_per_level_lists_are_accepted(be):
    rng = np.random.default_rng(5)
    anchors, obj, deltas = fpn_inputs(be.np_float, rng, (64, 96), [(8, 12), (4, 6), (2, 3)])
    splits = np.cumsum([len(a) for a in anchors])[:-1]
    args = ((60, 90), 50, 30, 0.7, 0.0, 1e-3)
    flat = rpn_proposals(
        [be.asarray(a) for a in anchors], be.asarray(obj), be.asarray(deltas), *args
    )
    listed = rpn_proposals(
        [be.asarray(a) for a in anchors],
        [be.asarray(o) for o in np.split(obj, splits)],
        [be.asarray(d) for d in np.split(deltas, splits)],
        *args,
    )
    assert_close(listed[0], flat[0])
    assert_close(listed[1], flat[1])


def test_rpn_proposals_declares_its_sync(no_sync):
    import array_api_strict as xs

    dev = xs.Device("device1")
    rng = np.random.default_rng(6)
    anchors = [xs.asarray(np.array([[0, 0, 8, 8], [2, 2, 9, 9]], np.float32), device=dev)]
    with pytest.raises(RuntimeError):
        rpn_proposals(
            anchors,
            xs.asarray(rng.normal(size=2).astype(np.float32), device=dev),
            xs.asarray(np.zeros((2, 4), np.float32), device=dev),
            (10, 10),
        )


# ----------------------------------------------------------------------------- top-k


def textbook_top_k(x, k):
    key = np.where(np.isnan(x), -np.inf, -x)
    return np.argsort(key, kind="stable")[:k]


@given(
    x=st.integers(0, 60).flatmap(
        lambda n: st.lists(
            st.one_of(
                st.sampled_from([0.0, 1.0, -1.0, 2.5, np.inf, -np.inf, np.nan]),
                st.floats(-5, 5, width=32),
            ),
            min_size=n,
            max_size=n,
        )
    ),
    data=st.data(),
)
def test_top_k_property_every_backend(be, no_sync, x, data):
    """Ties (lower index first), infinities and NaN (ranked as +inf), every k."""
    x = np.array(x, dtype=be.np_float)
    k = data.draw(st.integers(0, len(x)))
    got = top_k(be.asarray(x), k)
    assert_close(got, textbook_top_k(x, k), what=f"top {k}")


def test_top_k_numpy_partial_sort_equals_full_sort():
    rng = np.random.default_rng(7)
    x = rng.integers(0, 50, 200_000).astype(np.float32)  # 4,000 copies of each value
    for k in (1, 999, 1000, 4000, 4001, 199_999):
        np.testing.assert_array_equal(top_k(x, k), textbook_top_k(x, k))


def test_top_k_selects_what_torch_topk_selects_without_ties():
    rng = np.random.default_rng(8)
    x = rng.permutation(100_000).astype(np.float32)
    values, indices = torch.from_numpy(x).topk(1000)
    np.testing.assert_array_equal(top_k(x, 1000), indices.numpy())


# ----------------------------------------------------------------------------- bad input


def test_bad_input(be):
    a = [be.asarray(np.zeros((3, 4))), be.asarray(np.zeros((2, 4)))]
    obj, deltas = be.asarray(np.zeros(5)), be.asarray(np.zeros((5, 4)))
    with pytest.raises(TypeError, match="anchors must be a non-empty list"):
        rpn_proposals(a[0], obj, deltas, (10, 10))
    with pytest.raises(ValueError, match=r"objectness must have shape \(5,\)"):
        rpn_proposals(a, be.asarray(np.zeros(4)), deltas, (10, 10))
    with pytest.raises(ValueError, match=r"deltas must have one entry per level \(2\)"):
        rpn_proposals(a, obj, [deltas], (10, 10))
    with pytest.raises(ValueError, match=r"objectness\[1\] must be an array with 2 rows"):
        rpn_proposals(a, [be.asarray(np.zeros(3)), be.asarray(np.zeros(3))], deltas, (10, 10))
    with pytest.raises(ValueError, match="pre_nms_top_n must be a non-negative integer"):
        rpn_proposals(a, obj, deltas, (10, 10), pre_nms_top_n=-1)
    with pytest.raises(ValueError, match=r"image_size must be \(height, width\)"):
        rpn_proposals(a, obj, deltas, (10,))
    with pytest.raises(TypeError, match="objectness must have a floating-point dtype"):
        rpn_proposals(a, be.asarray(np.zeros(5, dtype=np.int32)), deltas, (10, 10))
    with pytest.raises(ValueError, match=r"anchors\[1\] must have shape \(A, 4\)"):
        rpn_proposals([a[0], be.asarray(np.zeros((2, 5)))], obj, deltas, (10, 10))
    with pytest.raises(ValueError, match=r"k must be an integer in \[0, 5\]"):
        top_k(obj, 6)
    with pytest.raises(ValueError, match="level 0: box_cls must be"):
        concat_box_prediction_layers([obj], [deltas])


def test_inputs_are_not_mutated():
    rng = np.random.default_rng(9)
    anchors, obj, deltas = fpn_inputs(np.float64, rng, (32, 32), [(4, 4), (2, 2), (1, 1)])
    copies = [a.copy() for a in anchors], obj.copy(), deltas.copy()
    rpn_proposals(anchors, obj, deltas, (30, 30), 10, 10, 0.7, 0.0, 1e-3)
    for before, now in zip(copies[0], anchors):
        np.testing.assert_array_equal(before, now)
    np.testing.assert_array_equal(copies[1], obj)
    np.testing.assert_array_equal(copies[2], deltas)


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64", "uint8"])
def test_top_k_integer_scores(be, no_sync, dtype):
    """Integer scores (extremes included) rank as torch.topk ranks them: no overflow."""
    info = np.iinfo(dtype)
    rng = np.random.default_rng(9)
    x = rng.integers(info.min, info.max, 40, dtype=dtype, endpoint=True)
    x[[3, 17]] = info.min, info.max
    x[[5, 6]] = x[8]  # a tie: lower index first
    before = x.copy()
    for k in (0, 1, 7, 40):
        got = to_numpy(top_k(be.asarray(x, dtype), k))
        values, _ = torch.from_numpy(x).topk(k)
        np.testing.assert_array_equal(x[got], values.numpy())  # the same selection, in order
        np.testing.assert_array_equal(got, np.argsort(-x.astype(np.float64), kind="stable")[:k])
    np.testing.assert_array_equal(x, before)
    perm = rng.permutation(100).astype(dtype)  # no ties: the very indices torch picks
    np.testing.assert_array_equal(
        to_numpy(top_k(be.asarray(perm, dtype), 10)), torch.from_numpy(perm).topk(10)[1].numpy()
    )


def test_top_k_refuses_bool_and_complex():
    with pytest.raises(TypeError, match="^x must have a real"):
        top_k(np.ones(4, bool), 2)
    with pytest.raises(TypeError, match="^x must have a real"):
        top_k(np.ones(4, complex), 2)
