"""minivision.detection.anchors against torchvision's AnchorGenerator and DefaultBoxGenerator (0.29.1).

Anchors are integers (Faster R-CNN) or a few float32 operations (SSD) in torchvision, so every
comparison here is bitwise, on every backend, in the backend's float dtype and in float64.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import assert_backend, assert_close
from hypothesis import given
from hypothesis import strategies as st
from torchvision.models.detection.anchor_utils import AnchorGenerator as TvAnchorGenerator
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator as TvDefaultBoxGenerator
from torchvision.models.detection.image_list import ImageList

from minivision._backend import to_numpy
from minivision.detection.anchors import AnchorGenerator, DefaultBoxGenerator

FPN_SIZES = ((32,), (64,), (128,), (256,), (512,))
FPN_RATIOS = ((0.5, 1.0, 2.0),) * 5


def torch_dtype(np_dtype):
    return getattr(torch, np.dtype(np_dtype).name)


def tv_anchors(generator, image_size, grid_sizes, np_dtype):
    """torchvision's anchors for one padded image of ``image_size`` and feature maps of the sizes."""
    dtype = torch_dtype(np_dtype)
    images = ImageList(torch.zeros(1, 1, *image_size, dtype=dtype), [tuple(image_size)])
    feature_maps = [torch.zeros(1, 1, *g, dtype=dtype) for g in grid_sizes]
    return generator(images, feature_maps)[0].numpy()


def like(be):
    return be.asarray(np.zeros((1, 1, 1, 1), dtype=be.np_float))


# ----------------------------------------------------------------------------- fixed cases

CASES = {
    "torchvision default, one level": (
        ((128, 256, 512),),
        ((0.5, 1.0, 2.0),),
        (600, 800),
        [(38, 50)],
    ),
    "rounding at .5 (sizes 45, 47, 5)": (
        ((32, 45, 47, 5),),
        ((0.5, 1.0, 2.0),),
        (64, 64),
        [(4, 4)],
    ),
    "FPN on 800 x 1088": (
        FPN_SIZES,
        FPN_RATIOS,
        (800, 1088),
        [(200, 272), (100, 136), (50, 68), (25, 34), (13, 17)],
    ),
    "not divisible: 100 // 13 = 7": (((16, 40),), ((0.25, 1.0, 3.0),), (100, 130), [(13, 17)]),
    "flat sizes = one per level": ((24, 48), (0.5, 2.0), (97, 61), [(9, 7), (4, 3)]),
    "grid larger than the image: stride 0": (((8,),), ((1.0,),), (5, 9), [(7, 10)]),
    "odd ratios": (((30, 31),), ((0.3, 0.7, 1.3, 4.1),), (51, 77), [(5, 6)]),
}


@pytest.mark.parametrize("case", CASES)
def test_anchor_generator_matches_torchvision(be, no_sync, case):
    sizes, ratios, image_size, grids = CASES[case]
    gen = AnchorGenerator(sizes, ratios)
    out = gen(image_size, grids, like=like(be))
    assert_backend(out, be)
    ref = tv_anchors(TvAnchorGenerator(sizes, ratios), image_size, grids, be.np_float)
    assert_close(out, ref, what=f"anchors ({case})")
    assert (
        gen.num_anchors_per_location()
        == TvAnchorGenerator(sizes, ratios).num_anchors_per_location()
    )


@pytest.mark.parametrize("np_dtype", [np.float64, np.float32, np.float16])
def test_anchor_dtype_follows_the_first_feature_map(be, no_sync, np_dtype):
    if not hasattr(be.xp, np.dtype(np_dtype).name) or (
        be.name == "strict-device1" and np_dtype == np.float16
    ):
        pytest.skip(f"{be.name} has no {np.dtype(np_dtype).name}")
    sizes, ratios, image_size, grids = CASES["FPN on 800 x 1088"]
    name = np.dtype(np_dtype).name
    maps = [be.asarray(np.zeros((1, 2, *g)), dtype=name) for g in grids]
    out = AnchorGenerator(sizes, ratios)(image_size, maps)
    ref = tv_anchors(TvAnchorGenerator(sizes, ratios), image_size, grids, np_dtype)
    assert_close(out, ref, what=f"{np.dtype(np_dtype).name} anchors")


def test_cell_anchors_by_hand():
    """§8: size 32 at ratios 1/2, 1, 2 -> [-23,-11,23,11], [-16,-16,16,16], [-11,-23,11,23];
    22.5 rounds to 22 (half to even), 23.5 to 24; ratio-major, size-minor order."""
    gen = AnchorGenerator(((32, 45, 47),), ((0.5, 1.0, 2.0),))
    cells = to_numpy(gen.cell_anchors(like=np.zeros(0, np.float32))[0])
    assert cells.shape == (9, 4)
    np.testing.assert_array_equal(cells[0], [-23, -11, 23, 11])  # ratio 0.5, size 32
    np.testing.assert_array_equal(cells[3], [-16, -16, 16, 16])  # ratio 1, size 32
    np.testing.assert_array_equal(cells[4], [-22, -22, 22, 22])  # ratio 1, size 45: 22.5 -> 22
    np.testing.assert_array_equal(cells[5], [-24, -24, 24, 24])  # ratio 1, size 47: 23.5 -> 24
    np.testing.assert_array_equal(cells[6], [-11, -23, 11, 23])  # ratio 2 = height / width
    widths, heights = cells[:, 2] - cells[:, 0], cells[:, 3] - cells[:, 1]
    assert np.all(widths % 2 == 0) and np.all(heights % 2 == 0)


def test_anchor_order_and_corner_centres():
    """Row (i * W + j) * A + a is anchor a of cell (i, j), centred on the cell's top-left corner."""
    gen = AnchorGenerator(((10, 20),), ((0.5, 2.0),))
    anchors = gen((30, 50), [(3, 5)], like=np.zeros(0))
    cells = gen.cell_anchors(like=np.zeros(0))[0]
    stride = (10, 10)
    for i, j, a in [(0, 0, 0), (1, 3, 2), (2, 4, 3)]:
        row = (i * 5 + j) * 4 + a
        shift = np.array([j * stride[1], i * stride[0]] * 2)
        np.testing.assert_array_equal(anchors[row], cells[a] + shift)
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    assert centres.min() == 0.0  # cell (0, 0) centres its anchors on the image corner


def test_per_level_and_grid_pairs(be, no_sync):
    sizes, ratios, image_size, grids = CASES["FPN on 800 x 1088"]
    gen = AnchorGenerator(sizes, ratios)
    levels = gen(image_size, grids, like=like(be), per_level=True)
    assert [int(lv.shape[0]) for lv in levels] == [3 * h * w for h, w in grids]
    ref = tv_anchors(TvAnchorGenerator(sizes, ratios), image_size, grids, be.np_float)
    assert_close(be.xp.concat(levels, axis=0), ref)
    arrays = [be.asarray(np.zeros((2, 3, *g), dtype=be.np_float)) for g in grids]
    assert_close(gen(image_size, arrays), ref, what="anchors from feature-map arrays")


@st.composite
def anchor_configs(draw):
    n_levels = draw(st.integers(1, 3))
    size = st.one_of(st.integers(1, 700), st.sampled_from([5, 45, 47, 13, 19]))
    ratio = st.one_of(
        st.sampled_from([0.5, 1.0, 2.0, 0.25, 3.0]), st.floats(0.05, 20.0, allow_subnormal=False)
    )
    sizes = tuple(tuple(draw(st.lists(size, min_size=1, max_size=3))) for _ in range(n_levels))
    ratios = tuple(tuple(draw(st.lists(ratio, min_size=1, max_size=3))) for _ in range(n_levels))
    image = (draw(st.integers(1, 900)), draw(st.integers(1, 900)))
    grids = [
        (draw(st.integers(1, min(image[0], 24) + 2)), draw(st.integers(1, min(image[1], 24) + 2)))
        for _ in range(n_levels)
    ]
    return sizes, ratios, image, grids


@given(config=anchor_configs())
def test_anchor_generator_property_every_backend(be, no_sync, config):
    sizes, ratios, image_size, grids = config
    out = AnchorGenerator(sizes, ratios)(image_size, grids, like=like(be))
    ref = tv_anchors(TvAnchorGenerator(sizes, ratios), image_size, grids, be.np_float)
    assert_close(out, ref, what="anchors")


# ----------------------------------------------------------------------------- SSD

SSD300 = dict(
    aspect_ratios=[[2], [2, 3], [2, 3], [2, 3], [2], [2]], steps=[8, 16, 32, 64, 100, 300]
)
SSD300_GRIDS = [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]
SSD_CASES = {
    "SSD300 with steps": (SSD300, (300, 300), SSD300_GRIDS),
    "SSD300 without steps, non-square": (
        dict(aspect_ratios=SSD300["aspect_ratios"]),
        (301, 417),
        SSD300_GRIDS,
    ),
    "one level: [min_ratio, max_ratio]": (dict(aspect_ratios=[[2, 0.5]]), (64, 48), [(4, 3)]),
    "scales above 1, clipped": (
        dict(aspect_ratios=[[2, 0.3]], scales=[0.5, 1.7]),
        (90, 120),
        [(3, 4)],
    ),
    "scales above 1, not clipped": (
        dict(aspect_ratios=[[2, 0.3]], scales=[0.5, 1.7], clip=False),
        (90, 120),
        [(3, 4)],
    ),
    "own min and max ratio": (
        dict(aspect_ratios=[[2], [3]], min_ratio=0.2, max_ratio=0.95),
        (70, 70),
        [(7, 7), (3, 3)],
    ),
}


@pytest.mark.parametrize("case", SSD_CASES)
def test_default_boxes_match_torchvision(be, no_sync, case):
    kwargs, image_size, grids = SSD_CASES[case]
    gen = DefaultBoxGenerator(**kwargs)
    out = gen(image_size, grids, like=like(be))
    assert_backend(out, be)
    tv_gen = TvDefaultBoxGenerator(**kwargs)
    ref = tv_anchors(tv_gen, image_size, grids, be.np_float)
    assert_close(out, ref, what=f"default boxes ({case})")
    assert gen.scales == pytest.approx(tv_gen.scales, abs=0)
    assert gen.num_anchors_per_location() == tv_gen.num_anchors_per_location()


def test_default_boxes_clip_the_pairs_not_the_boxes():
    out = DefaultBoxGenerator([[2]], scales=[0.9, 1.5])((100, 100), [(1, 1)], like=np.zeros(0))
    wh = out[:, 2:] - out[:, :2]
    assert wh.max() == 100.0  # s'_k = sqrt(0.9 * 1.5) = 1.16 clamped to 1
    np.testing.assert_allclose(wh[2], [100, 90 / np.sqrt(2)])  # (s sqrt 2 -> 1, s / sqrt 2)


@given(
    ratios=st.lists(
        st.lists(st.sampled_from([2, 3, 0.5, 1.5]), min_size=0, max_size=2), min_size=1, max_size=3
    ),
    image=st.tuples(st.integers(1, 400), st.integers(1, 400)),
    use_steps=st.booleans(),
    clip=st.booleans(),
    data=st.data(),
)
def test_default_boxes_property_every_backend(be, no_sync, ratios, image, use_steps, clip, data):
    grids = [data.draw(st.tuples(st.integers(1, 9), st.integers(1, 9))) for _ in ratios]
    steps = [data.draw(st.integers(1, 64)) for _ in ratios] if use_steps else None
    kwargs = dict(aspect_ratios=ratios, steps=steps, clip=clip)
    out = DefaultBoxGenerator(**kwargs)(image, grids, like=like(be))
    ref = tv_anchors(TvDefaultBoxGenerator(**kwargs), image, grids, be.np_float)
    assert_close(out, ref, what="default boxes")


# ----------------------------------------------------------------------------- bad input


def test_bad_generator_arguments():
    with pytest.raises(ValueError, match="aspect_ratios must have one entry per level of sizes"):
        AnchorGenerator(((32,), (64,)), ((0.5,), (1.0,), (2.0,)))
    with pytest.raises(ValueError, match=r"sizes\[0\] must be a non-empty sequence of positive"):
        AnchorGenerator(((32, -4),))
    with pytest.raises(ValueError, match=r"aspect_ratios\[0\] must be a non-empty sequence"):
        AnchorGenerator(((32,),), ((0.0,),))
    with pytest.raises(ValueError, match="sizes must be a non-empty sequence"):
        AnchorGenerator(())
    with pytest.raises(ValueError, match="aspect_ratios and steps should have the same length"):
        DefaultBoxGenerator([[2], [3]], steps=[8])
    with pytest.raises(ValueError, match=r"aspect_ratios\[1\] must be a list of positive numbers"):
        DefaultBoxGenerator([[2], [-3]])
    with pytest.raises(ValueError, match="scales must have len"):
        DefaultBoxGenerator([[2], [3]], scales=[0.2, 0.5])


def test_bad_call_arguments(be):
    gen = AnchorGenerator(((32,), (64,)), (1.0,))
    ok = like(be)
    with pytest.raises(ValueError, match="this generator has 2 levels"):
        gen((64, 64), [(4, 4)], like=ok)
    with pytest.raises(ValueError, match=r"image_size must be \(height, width\)"):
        gen((64,), [(4, 4), (2, 2)], like=ok)
    with pytest.raises(ValueError, match=r"feature_maps\[1\] must be an array of shape"):
        gen((64, 64), [(4, 4), (0, 2)], like=ok)
    with pytest.raises(TypeError, match="feature_maps must be a list"):
        gen((64, 64), ok)
    with pytest.raises(TypeError, match="pass like=<array>"):
        gen((64, 64), [(4, 4), (2, 2)])
    with pytest.raises(TypeError, match="floating-point dtype"):
        gen((64, 64), [(4, 4), (2, 2)], like=be.asarray(np.zeros(1, dtype=np.int32)))
    with pytest.raises(ValueError, match=r"feature_maps\[0\] must have shape \(\.\.\., H, W\)"):
        gen((64, 64), [be.asarray(np.zeros(3)), (2, 2)])
