"""minivision.proposals.selective_search: histograms, similarities, the hierarchy, ranking, backends, input.

* Histograms and similarities against hand-computed cases; texture derivatives against
  ``scipy.ndimage.gaussian_filter(order=1)`` (the live library).
* Neighbours against a brute-force pixel loop written here (and not bounding-box overlap).
* The heap-based grouping against a textbook loop (written here) that recomputes every pair's
  similarity after every merge: identical merge sequences.
* Invariants of the hierarchy on a real photograph crop; ranking, determinism, backends.
Quality against OpenCV is measured by ``python -m minivision bench ss_quality`` (too slow here).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
from helpers import assert_backend
from skimage import data

import minivision.proposals.ss_features as feat
import minivision.proposals.ss_grouping as grp
from minivision._backend import to_numpy
from minivision.proposals.felzenszwalb import felzenszwalb
from minivision.proposals.selective_search import selective_search


@pytest.fixture(scope="module")
def crop():
    return np.ascontiguousarray(data.astronaut()[40:104, 180:260])  # 64 x 80, face and helmet


# ----------------------------------------------------------------------------- histograms


def test_colour_histogram_by_hand():
    # 1 x 4 image, two regions of two pixels; one channel.
    image = np.array([[[0.0], [255.0], [10.0], [11.0]]])  # bin width 256 / 25 = 10.24
    labels = np.array([[0, 0, 1, 1]])
    h = feat.colour_histograms(image, labels, 2)
    expected = np.zeros((2, 25))
    expected[0, 0] = expected[0, 24] = 0.5  # 0 -> bin 0, 255 -> bin 24
    expected[1, 0] = expected[1, 1] = 0.5  # 10 -> bin 0, 11 -> bin 1 (11 > 10.24)
    np.testing.assert_array_equal(h, expected)


def test_colour_histogram_three_channels_sum_to_one():
    image = np.array([[[0.0, 128.0, 255.0], [20.0, 30.0, 40.0]]])
    labels = np.array([[0, 0]])
    h = feat.colour_histograms(image, labels, 1)
    assert h.shape == (1, 75)
    expected = np.zeros(75)
    # bins: floor(v * 25 / 256): 0->0, 128->12, 255->24, 20->1, 30->2, 40->3; 6 counts in total
    for slot in (0, 25 + 12, 50 + 24, 1, 25 + 2, 50 + 3):
        expected[slot] += 1 / 6
    np.testing.assert_allclose(h[0], expected, rtol=0, atol=1e-15)
    assert h.sum() == pytest.approx(1.0, abs=1e-15)


def test_texture_maps_against_scipy_derivatives(crop):
    img = crop.astype(np.float64)
    maps = feat.texture_maps(img)
    assert maps.shape == (*img.shape, 8)
    gx = ndi.gaussian_filter(img, sigma=(1, 1, 0), order=(0, 1, 0), mode="reflect", truncate=4)
    gy = ndi.gaussian_filter(img, sigma=(1, 1, 0), order=(1, 0, 0), mode="reflect", truncate=4)
    d = np.stack([gx, (gx + gy) / np.sqrt(2), gy, (gy - gx) / np.sqrt(2)], axis=-1)
    expected = np.concatenate([np.maximum(d, 0), np.maximum(-d, 0)], axis=-1)
    expected = expected / expected.max(axis=(0, 1), keepdims=True)
    np.testing.assert_allclose(maps, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("space", ["hsv", "i"])
def test_image_texture_codes_equal_codes_of_maps(crop, space):
    # the search's compact path must give exactly the slots of the documented two-step path
    img = feat.convert_colour(crop.astype(np.float64), space)
    expected = feat.texture_codes(feat.texture_maps(img))
    got = feat.image_texture_codes(img)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    flat = np.full((5, 6, 3), 100.0)
    np.testing.assert_array_equal(
        feat.image_texture_codes(flat), feat.texture_codes(feat.texture_maps(flat))
    )


def test_texture_histogram_flat_image():
    img = np.full((5, 6, 3), 100.0)
    labels = np.zeros((5, 6), dtype=np.intp)
    labels[:, 3:] = 1
    h = feat.texture_histograms(feat.texture_maps(img), labels, 2)
    assert h.shape == (2, 3 * 8 * 10)
    expected = np.zeros(240)
    expected[::10] = 1 / 24  # no gradient: everything in bin 0 of each of the 24 blocks
    np.testing.assert_allclose(h, [expected, expected], rtol=0, atol=1e-15)


# ----------------------------------------------------------------------------- similarities


def test_similarities_by_hand():
    a = np.array([0.5, 0.25, 0.25, 0.0])
    b = np.array([0.0, 0.5, 0.25, 0.25])
    assert feat.similarity_colour(a, b) == 0.5  # 0 + 0.25 + 0.25 + 0
    assert feat.similarity_colour(a, a) == 1.0
    assert feat.similarity_size(10.0, 30.0, 100.0) == pytest.approx(0.6)
    # boxes (0,0,2,2) and (3,0,5,2): union box 5 x 2 = 10; sizes 4 and 4; image 100
    fill = feat.similarity_fill([0, 0, 2, 2], [3, 0, 5, 2], 4.0, 4.0, 100.0)
    assert fill == pytest.approx(1 - (10 - 8) / 100)


def _neighbours_brute(labels):
    out = set()
    h, w = labels.shape
    for y in range(h):
        for x in range(w):
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    yy, xx = y + dy, x + dx
                    if 0 <= yy < h and 0 <= xx < w and labels[y, x] != labels[yy, xx]:
                        a, b = sorted((int(labels[y, x]), int(labels[yy, xx])))
                        out.add((a, b))
    return sorted(out)


def test_neighbours_are_pixel_adjacency_not_box_overlap():
    labels = np.array(
        [
            [0, 0, 0, 0, 0],
            [0, 1, 1, 1, 0],
            [0, 1, 2, 1, 0],
            [0, 1, 1, 1, 3],
            [4, 4, 4, 4, 3],
        ]
    )
    pairs = feat.region_neighbours(labels)
    assert [tuple(p) for p in pairs.tolist()] == _neighbours_brute(labels)
    # region 2 sits inside the boxes of 0 and 1 but touches only 1
    assert (0, 2) not in {tuple(p) for p in pairs.tolist()}
    # diagonal contact counts: 1 (3, 3) touches 3 (4, 4)
    assert (1, 3) in {tuple(p) for p in pairs.tolist()}


def test_neighbours_random(crop):
    labels = felzenszwalb(crop, scale=50, sigma=0.8, min_size=20)
    pairs = feat.region_neighbours(labels)
    assert [tuple(p) for p in pairs.tolist()] == _neighbours_brute(labels)


# ----------------------------------------------------------------------------- grouping


def _setup(crop, space="hsv", k=50):
    img = feat.convert_colour(crop.astype(np.float64), space)
    labels = felzenszwalb(np.rint(img).astype(np.uint8), scale=k, sigma=0.8, min_size=k)
    n = int(labels.max()) + 1
    ch = feat.colour_histograms(img, labels, n)
    th = feat.texture_histograms(feat.texture_maps(img), labels, n)
    boxes, sizes = feat.region_boxes(labels, n)
    return labels, n, ch, th, boxes, sizes, feat.region_neighbours(labels)


def _group_textbook(ch, th, boxes, sizes, pairs, strategy):
    """Paper Algorithm 1, recomputing every neighbour pair's similarity after each merge."""
    feats = []
    if "C" in strategy:
        feats.append(ch)
    if "T" in strategy:
        feats.append(th)
    feat = {
        i: (np.concatenate([f[i] for f in feats]) if feats else None) for i in range(len(sizes))
    }
    size = {i: float(s) for i, s in enumerate(sizes)}
    box = {i: boxes[i].copy() for i in range(len(sizes))}
    nbr = {tuple(p) for p in pairs.tolist()}
    total = float(sizes.sum())
    merges = []
    t = len(sizes)
    while nbr:
        best = None
        for i, j in sorted(nbr):
            s = 0.0
            if feats:
                s += np.minimum(feat[i], feat[j]).sum()
            if "S" in strategy:
                s += 1.0 - (size[i] + size[j]) / total
            if "F" in strategy:
                w = max(box[i][2], box[j][2]) - min(box[i][0], box[j][0])
                h = max(box[i][3], box[j][3]) - min(box[i][1], box[j][1])
                s += 1.0 - (w * h - size[i] - size[j]) / total
            if best is None or s > best[0]:
                best = (s, i, j)
        _, i, j = best
        size[t] = size[i] + size[j]
        if feats:
            feat[t] = (size[i] * feat[i] + size[j] * feat[j]) / size[t]
        box[t] = np.concatenate(
            [np.minimum(box[i][:2], box[j][:2]), np.maximum(box[i][2:], box[j][2:])]
        )
        new = set()
        for a, b in nbr:
            if {a, b} == {i, j}:
                continue
            a2, b2 = (t if a in (i, j) else a), (t if b in (i, j) else b)
            new.add((min(a2, b2), max(a2, b2)))
        nbr = new
        merges.append((i, j))
        t += 1
    return merges


@pytest.mark.parametrize("strategy", ["CTSF", "TSF", "F", "S"])
def test_grouping_equals_textbook_loop(crop, strategy):
    _, n, ch, th, boxes, sizes, pairs = _setup(crop[:40, :48], k=30)
    assert n > 10
    h = grp.group(ch, th, boxes, sizes, pairs, strategy)
    assert h.merges.tolist() == [
        list(m) for m in _group_textbook(ch, th, boxes, sizes, pairs, strategy)
    ]


def test_hierarchy_invariants(crop):
    labels, n, ch, th, boxes, sizes, pairs = _setup(crop)
    h = grp.group(ch, th, boxes, sizes, pairs, "CTSF")
    assert h.merges.shape == (n - 1, 2)
    assert len(h.boxes) == 2 * n - 1
    owner = labels.copy()  # current region of every pixel
    used = set()
    for m, (i, j) in enumerate(h.merges.tolist()):
        t = n + m
        assert i not in used and j not in used and i < t and j < t
        used.update((i, j))
        mi, mj = owner == i, owner == j
        # adjacent: dilating region i (8-connectivity) reaches region j
        assert (ndi.binary_dilation(mi, structure=np.ones((3, 3))) & mj).any()
        np.testing.assert_array_equal(h.boxes[t, :2], np.minimum(h.boxes[i, :2], h.boxes[j, :2]))
        np.testing.assert_array_equal(h.boxes[t, 2:], np.maximum(h.boxes[i, 2:], h.boxes[j, 2:]))
        assert h.sizes[t] == h.sizes[i] + h.sizes[j]
        owner[mi | mj] = t
        ys, xs = np.nonzero(owner == t)
        np.testing.assert_array_equal(h.boxes[t], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    hh, ww = labels.shape
    np.testing.assert_array_equal(h.boxes[-1], [0, 0, ww, hh])
    assert h.sizes[-1] == hh * ww
    assert (owner == 2 * n - 2).all()


def test_rank_boxes_formula():
    rng_boxes = np.array([[0, 0, 1, 1], [1, 1, 2, 2], [0, 0, 2, 2]], dtype=float)
    other = np.array([[0, 0, 2, 2], [5, 5, 6, 6], [0, 0, 1, 1]], dtype=float)
    hs = [grp.Hierarchy(None, rng_boxes, None), grp.Hierarchy(None, other, None)]
    got = grp.rank_boxes(hs, np.random.default_rng(7))
    r = np.random.default_rng(7)
    keys = np.concatenate([np.array([3, 2, 1]) * r.random(3), np.array([3, 2, 1]) * r.random(3)])
    allb = np.concatenate([rng_boxes, other])
    expected, seen = [], set()
    for i in sorted(range(6), key=lambda i: (keys[i], i)):
        if tuple(allb[i]) not in seen:
            seen.add(tuple(allb[i]))
            expected.append(allb[i])
    np.testing.assert_array_equal(got, np.array(expected))


def test_initial_regions_are_felzenszwalb(crop):
    # the search shares one set of edge weights between the ks of a colour space; its initial
    # regions must still be exactly minivision.felzenszwalb's segments at each k
    rgb = crop.astype(np.float64)
    hierarchies = grp.hierarchies_of(rgb, "lab", (50, 100), ("S",), 0.8, None)
    img = np.rint(feat.convert_colour(rgb, "lab")).astype(np.uint8)
    for h, k in zip(hierarchies, (50, 100)):
        labels = felzenszwalb(img, scale=k, sigma=0.8, min_size=k)
        n = int(labels.max()) + 1
        boxes, sizes = feat.region_boxes(labels, n)
        assert len(h.sizes) == 2 * n - 1
        np.testing.assert_array_equal(h.boxes[:n], boxes)
        np.testing.assert_array_equal(h.sizes[:n], sizes)


# ----------------------------------------------------------------------------- end to end


def test_proposals_ranked_unique_deterministic(crop):
    a = selective_search(crop, "fast", seed=3, workers=2)  # Linux: one forked worker
    b = selective_search(crop, "fast", seed=3, workers=1)
    c = selective_search(crop, "fast", seed=4)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float64 and a.shape[1] == 4
    assert len(np.unique(a, axis=0)) == len(a)
    assert not np.array_equal(a, c)  # another order ...
    np.testing.assert_array_equal(np.unique(a, axis=0), np.unique(c, axis=0))  # ... same set
    h, w = crop.shape[:2]
    assert [0, 0, w, h] in a.tolist()
    assert (a[:, 0] >= 0).all() and (a[:, 2] <= w).all() and (a[:, 3] <= h).all()
    assert (a[:, 2] > a[:, 0]).all() and (a[:, 3] > a[:, 1]).all()
    # the paper's ranking puts large (late-merged) regions early
    area = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    tenth = max(1, len(a) // 10)
    assert area[:tenth].mean() > 3 * area[-tenth:].mean()


def test_modes_nest(crop):
    single = selective_search(crop, "single")
    fast = selective_search(crop, "fast")
    # "single" (HSV, k=100, CTSF) is one of the eight "fast" hierarchies
    fast_set = {tuple(b) for b in fast.tolist()}
    assert {tuple(b) for b in single.tolist()} <= fast_set
    assert len(fast) > len(single)
    # "quality" adds rgI, H, I, k = 150 and 300, and the F and S strategies to "fast"
    quality = selective_search(crop, "quality")
    assert fast_set <= {tuple(b) for b in quality.tolist()}
    assert len(quality) > len(fast)


def test_every_backend_equals_numpy(be, crop):
    small = crop[:32, :40]
    expected = selective_search(small, "single")
    got = selective_search(be.asarray(small, dtype="uint8"), "single")
    assert_backend(got, be)
    np.testing.assert_array_equal(to_numpy(got), expected)


def test_grey_float_bool_inputs(crop):
    small = crop[:32, :40]
    grey = small.mean(axis=2).astype(np.uint8)
    np.testing.assert_array_equal(
        selective_search(grey, "single"),
        selective_search(np.repeat(grey[..., None], 3, 2), "single"),
    )
    np.testing.assert_array_equal(
        selective_search(grey[..., None], "single"), selective_search(grey, "single")
    )
    np.testing.assert_array_equal(
        selective_search(small / 255.0, "single"), selective_search(small, "single")
    )
    mask = np.zeros((20, 30), dtype=bool)
    mask[5:15, 10:20] = True
    boxes = selective_search(mask, "single", scale=1, min_size=1, sigma=0)
    assert [10, 5, 20, 15] in boxes.tolist() and [0, 0, 30, 20] in boxes.tolist()


def test_tiny_images():
    np.testing.assert_array_equal(selective_search(np.zeros((1, 1, 3), np.uint8)), [[0, 0, 1, 1]])
    # smaller than min_size: one region, the whole image
    np.testing.assert_array_equal(
        selective_search(np.random.default_rng(0).integers(0, 255, (6, 7, 3), dtype=np.uint8)),
        [[0, 0, 7, 6]],
    )
    boxes = selective_search(np.full((2, 3, 3), 9, np.uint8), min_size=0, scale=1)
    assert boxes.tolist() == [[0, 0, 3, 2]]


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (dict(image=np.zeros((4, 4, 4), np.uint8)), ValueError, "RGBA"),
        (dict(image=np.zeros((4, 4, 2), np.uint8)), ValueError, "channels"),
        (dict(image=np.zeros((4,), np.uint8)), ValueError, "shape"),
        (dict(image=np.zeros((0, 4, 3), np.uint8)), ValueError, "empty"),
        (dict(image=np.zeros((4, 4, 3), np.uint16)), TypeError, "uint8"),
        (dict(image=np.full((4, 4, 3), 2.0)), ValueError, r"\[0, 1\]"),
        (dict(image=np.full((4, 4, 3), np.nan)), ValueError, "NaN"),
        (dict(mode="slow"), ValueError, "mode"),
        (dict(strategies=["CTX"]), ValueError, "strategy"),
        (dict(strategies=[]), ValueError, "strategies"),
        (dict(scale=-1), ValueError, "scale"),
        (dict(scale="big"), TypeError, "scale"),
        (dict(sigma=-0.5), ValueError, "sigma"),
        (dict(min_size=2.5), TypeError, "min_size"),
        (dict(min_size=-1), ValueError, "min_size"),
        (dict(seed=1.5), TypeError, "seed"),
        (dict(workers=0), ValueError, "workers"),
    ],
)
def test_bad_input(kwargs, exc, match):
    args = dict(image=np.zeros((4, 4, 3), np.uint8))
    args.update(kwargs)
    image = args.pop("image")
    before = image.copy()
    with pytest.raises(exc, match=match):
        selective_search(image, **args)
    np.testing.assert_array_equal(image, before)


def test_numpy_scalars_as_parameters():
    """NumPy numbers are accepted wherever a Python number is (operator.index / numbers.Real)."""
    image = np.random.default_rng(1).integers(0, 255, (12, 14, 3), dtype=np.uint8)
    plain = selective_search(image, "single", scale=50, sigma=0.8, min_size=4, seed=2, workers=1)
    numpy_args = selective_search(
        image,
        "single",
        scale=np.int64(50),
        sigma=np.float64(0.8),
        min_size=np.int32(4),
        seed=np.int64(2),
        workers=np.int64(1),
    )
    np.testing.assert_array_equal(numpy_args, plain)
    with pytest.raises(ValueError, match="workers"):
        selective_search(image, "single", workers=np.int64(0))
    with pytest.raises(ValueError, match="workers"):
        selective_search(image, "single", workers=np.float64(1.0))


def test_input_not_mutated(crop):
    before = crop.copy()
    selective_search(crop, "single")
    np.testing.assert_array_equal(crop, before)


def test_tour_stage_draws_proposals(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from minivision.tour import STAGES, stage_proposals

    assert stage_proposals in STAGES
    image = np.ascontiguousarray(data.astronaut()[::4, ::4])  # 128 x 128, to keep it quick
    stage = stage_proposals(image, tmp_path, False)
    assert stage.figures == ["03_proposals.png"]
    assert (tmp_path / "03_proposals.png").stat().st_size > 10_000
    assert "distinct boxes" in stage.text


def test_quality_measures_by_hand():
    from minivision.bench.selective_search import summarise, topk_best_iou

    best = np.array([0.9, 0.6, 0.4, 0.75])
    classes = np.array([0, 0, 1, 2])
    s = summarise(best, classes)
    assert s["recall@0.5"] == 0.75 and s["recall@0.7"] == 0.5
    assert s["MABO"] == pytest.approx(((0.9 + 0.6) / 2 + 0.4 + 0.75) / 3)
    gt = np.array([[0.0, 0.0, 10.0, 10.0]])
    props = np.array([[0.0, 0.0, 5.0, 10.0], [0.0, 0.0, 10.0, 10.0], [50.0, 50, 60, 60]])
    np.testing.assert_array_equal(topk_best_iou(gt, props, [1, 2, 10]), [[0.5], [1.0], [1.0]])


def test_quality_entry_on_a_tiny_dataset(tmp_path, monkeypatch):
    from skimage import io

    from minivision.bench.selective_search import bench_quality

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    io.imsave(tmp_path / "images" / "a.jpg", data.astronaut()[::8, ::8], check_contrast=False)
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.3 0.4 0.4\n1 0.2 0.8 0.2 0.2\n")
    monkeypatch.setenv("MINIVISION_COCO128", str(tmp_path))
    rows = bench_quality(1)
    assert len(rows) == 1 and rows[0].minivision_ms > 0 and rows[0].reference_ms > 0
