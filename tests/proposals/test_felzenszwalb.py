"""minivision.proposals.felzenszwalb against scikit-image 0.26 (``skimage.segmentation.felzenszwalb``).

* The smoothing and the edge weights are compared bit for bit with scikit-image's own
  ``gaussian`` and the cost formula of its ``_felzenszwalb_cy.pyx`` (written out below).
* Segmentations of real photographs are compared with the live scikit-image: identical labels
  (the same partition *and* the same numbering) for every sigma > 0 case.
* Where equal weights meet (integer images with sigma = 0), scikit-image visits ties in the
  order of NumPy's unstable default ``argsort``; minivision uses (weight, index). A textbook
  loop written here, run with each of the two orders, reproduces each library exactly, which
  shows that the tie order is the only difference.
* The batched merge equals the sequential one on generated graphs full of ties.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_backend
from hypothesis import given
from hypothesis import strategies as st
from skimage import data
from skimage._shared.filters import gaussian as sk_gaussian
from skimage.segmentation import felzenszwalb as sk_felzenszwalb
from skimage.util import img_as_float64

import minivision as mv
import minivision.proposals._felzenszwalb_batched as batched
import minivision.proposals.felzenszwalb_merge as merge
from minivision._backend import to_numpy
from minivision.proposals.felzenszwalb import edge_weights, felzenszwalb

COCO = Path(__file__).resolve().parents[3] / "shared" / "data" / "coco128-train" / "images"
pytestmark = pytest.mark.filterwarnings("ignore:Got image with third dimension:RuntimeWarning")


def _coco(name):
    path = COCO / name
    if not path.is_file():
        pytest.skip(f"{path} is absent (the course workspace's ../shared/data)")
    from skimage import io

    return io.imread(path)


PHOTOS = {
    "astronaut": data.astronaut,
    "coffee": data.coffee,
    "chelsea": data.chelsea,
    "camera": data.camera,  # grey
    "coco-9": lambda: _coco("000000000009.jpg"),  # 640 x 480 colour
    "coco-86": lambda: _coco("000000000086.jpg"),  # 512 x 640 grey
}


def photo(name):
    return PHOTOS[name]()


def axis_of(image):
    return -1 if image.ndim == 3 else None


def sk(image, scale=1, sigma=0.8, min_size=20, **kw):
    kw.setdefault("channel_axis", axis_of(image))
    return sk_felzenszwalb(image, scale=scale, sigma=sigma, min_size=min_size, **kw)


def mine(image, scale=1, sigma=0.8, min_size=20, **kw):
    kw.setdefault("channel_axis", axis_of(image))
    return to_numpy(felzenszwalb(image, scale=scale, sigma=sigma, min_size=min_size, **kw))


def same_partition(a, b) -> bool:
    """True if two label images split the pixels the same way (labels may be renamed)."""
    a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
    if a.shape != b.shape:
        return False
    pairs = np.unique(np.stack([a, b]), axis=1).shape[1]
    return pairs == np.unique(a).size == np.unique(b).size


def crop(image, h=120, w=150):
    y, x = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
    return np.ascontiguousarray(image[y : y + h, x : x + w])


# ----------------------------------------------------------------------------- a textbook loop


def sk_costs(image, sigma):
    """scikit-image 0.26's edge costs, as in _felzenszwalb_cy.pyx (img_as_float64, gaussian)."""
    image = np.atleast_3d(image)
    img = sk_gaussian(
        img_as_float64(image), sigma=[sigma, sigma, 0], mode="reflect", channel_axis=-1
    )
    h, w = img.shape[:2]

    def cost(a, b):
        return np.sqrt(np.sum((a - b) * (a - b), axis=-1)).ravel()

    return np.hstack(
        [
            cost(img[:, 1:], img[:, : w - 1]),
            cost(img[1:], img[: h - 1]),
            cost(img[1:, 1:], img[: h - 1, : w - 1]),
            cost(img[1:, : w - 1], img[: h - 1, 1:]),
        ]
    )


def grid_pairs(h, w):
    seg = np.arange(h * w).reshape(h, w)
    return np.vstack(
        [
            np.c_[seg[:, 1:].ravel(), seg[:, : w - 1].ravel()],
            np.c_[seg[1:].ravel(), seg[: h - 1].ravel()],
            np.c_[seg[1:, 1:].ravel(), seg[: h - 1, : w - 1].ravel()],
            np.c_[seg[: h - 1, 1:].ravel(), seg[1:, : w - 1].ravel()],
        ]
    )


def textbook(edges, costs, n, scale, min_size, order):
    """F&H as scikit-image's Cython loop does it, visiting the edges in the given order."""
    k = float(scale) / 255.0
    parent, size, cint = list(range(n)), [1] * n, [0.0] * n

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def join(a, b):
        r, o = min(a, b), max(a, b)
        parent[o] = r
        size[r] = size[a] + size[b]
        return r

    sorted_edges = [(int(a), int(b), float(c)) for (a, b), c in zip(edges[order], costs[order])]
    for a, b, c in sorted_edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            t0 = float(np.float32(cint[ra] + k / size[ra]))
            t1 = float(np.float32(cint[rb] + k / size[rb]))
            if c < min(t0, t1):
                cint[join(ra, rb)] = c
    for a, b, _ in sorted_edges:
        ra, rb = find(a), find(b)
        if ra != rb and (size[ra] < min_size or size[rb] < min_size):
            join(ra, rb)
    roots = np.array([find(x) for x in range(n)])
    return np.unique(roots, return_inverse=True)[1]


# ----------------------------------------------------------------------------- smoothing, weights


@pytest.mark.parametrize("name", ["astronaut", "camera", "coco-9"])
@pytest.mark.parametrize("sigma", [0.0, 0.5, 0.8, 2.0])
def test_edge_weights_are_scikit_image_costs_bitwise(name, sigma):
    image = photo(name)
    got = edge_weights(image, sigma, channel_axis=axis_of(image))
    ref = sk_costs(image, sigma)
    assert got.dtype == np.float64
    assert np.array_equal(got, ref), f"{np.count_nonzero(got != ref)} of {ref.size} weights differ"


@given(
    shape=st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 4)),
    sigma=st.sampled_from([1e-16, 0.1, 0.3, 0.5, 0.8, 1.3, 2.0, 3.7]),
    seed=st.integers(0, 2**32 - 1),
)
def test_smoothing_is_scipy_gaussian_filter_bitwise(shape, sigma, seed):
    """Tiny images too: scipy's 'reflect' border repeats when the kernel outgrows the image."""
    from scipy import ndimage as ndi

    x = np.random.default_rng(seed).random(shape)
    ref = ndi.gaussian_filter(x, [sigma, sigma, 0], mode="reflect", truncate=4.0)
    got = edge_weights(x, sigma, channel_axis=-1)  # weights of the smoothed image
    assert np.array_equal(got, sk_costs(x, sigma))
    d = ref[:, 1:] - ref[:, :-1]  # the horizontal weights pin the smoothed values themselves
    assert np.array_equal(got[: d.shape[0] * d.shape[1]], np.sqrt(np.sum(d * d, axis=-1)).ravel())


def test_edge_weights_run_on_every_backend(be, no_sync):
    image = crop(data.astronaut(), 20, 30)
    got = edge_weights(be.asarray(image, dtype="uint8"), 0.8)
    assert_backend(got, be)
    assert be.dtype_name(got) == "float64"
    ref = sk_costs(image, 0.8)
    if be.name == "torch-cpu":
        # torch's vectorised CPU sqrt (SLEEF, 0.5001 ulp) is not always correctly rounded;
        # every step before it is bit-identical
        np.testing.assert_allclose(to_numpy(got), ref, rtol=2**-52, atol=0)
    else:
        assert np.array_equal(to_numpy(got), ref)


# ----------------------------------------------------------------------------- photographs


FULL = [
    ("astronaut", 100, 0.5, 50),
    ("coffee", 500, 0.9, 10),
    ("camera", 1, 0.8, 20),
    ("chelsea", 300, 0.8, 20),
    ("coco-9", 100, 0.5, 50),
    ("coco-86", 1000, 0.8, 100),
]


@pytest.mark.parametrize("name,scale,sigma,min_size", FULL, ids=[f"{c[0]}-{c[1]}" for c in FULL])
def test_photographs_give_scikit_image_labels_exactly(name, scale, sigma, min_size):
    image = photo(name)
    got, ref = mine(image, scale, sigma, min_size), sk(image, scale, sigma, min_size)
    assert got.dtype == np.int64 and got.shape == ref.shape
    assert np.array_equal(got, ref), (
        f"{np.count_nonzero(got != ref)} pixels differ; same partition: {same_partition(got, ref)}"
    )


GRID = [(s, g, m) for s in (1, 100, 500) for g in (0.5, 0.8) for m in (10, 50)]


@pytest.mark.parametrize("name", list(PHOTOS))
def test_grid_of_parameters_on_photograph_crops(name):
    """12 settings x 6 photographs (120 x 150 crops): identical labels in every case."""
    image = crop(photo(name))
    differing = [
        (s, g, m)
        for s, g, m in GRID
        if not np.array_equal(mine(image, s, g, m), sk(image, s, g, m))
    ]
    assert not differing, (
        f"labels differ from scikit-image for (scale, sigma, min_size) {differing}"
    )


@pytest.mark.parametrize("name", ["astronaut", "camera", "coco-9"])
def test_sigma_zero_ties_differ_only_by_the_tie_order(name):
    """Unsmoothed integer images are full of equal weights; both libraries are the same loop.

    The loop above, visiting ties in minivision's (weight, index) order, gives minivision's
    labels; visiting them in NumPy's default ``argsort`` order (scikit-image's), it gives
    scikit-image's labels.
    """
    image = crop(photo(name), 60, 80)
    scale, min_size = 300, 20
    costs = sk_costs(image, 0.0)
    edges = grid_pairs(*image.shape[:2])
    n = image.shape[0] * image.shape[1]
    ours = mine(image, scale, 0.0, min_size).ravel()
    theirs = sk(image, scale, 0.0, min_size).ravel()
    assert np.array_equal(
        ours, textbook(edges, costs, n, scale, min_size, np.argsort(costs, kind="stable"))
    )
    assert np.array_equal(theirs, textbook(edges, costs, n, scale, min_size, np.argsort(costs)))


def test_tie_order_matters_on_a_synthetic_image():
    """On a random 0..3 image with sigma = 0 the min_size pass depends on the order of ties."""
    image = np.random.default_rng(0).integers(0, 4, (48, 48)).astype(np.uint8)
    costs, edges = sk_costs(image, 0.0), grid_pairs(48, 48)
    stable = textbook(edges, costs, 48 * 48, 2, 5, np.argsort(costs, kind="stable"))
    reverse = np.lexsort((-np.arange(costs.size), costs))  # ties in reverse index order
    other = textbook(edges, costs, 48 * 48, 2, 5, reverse)
    assert not same_partition(stable, other)
    assert np.array_equal(mine(image, 2, 0.0, 5).ravel(), stable)


# ----------------------------------------------------------------------------- inputs


def _variants():
    astro = crop(data.astronaut(), 40, 52)
    grey = crop(data.camera(), 40, 52)
    rng = np.random.default_rng(3)
    yield "grey 2-D", grey, {"channel_axis": None}
    yield "grey 2-D, default channel_axis", grey, {"channel_axis": -1}
    yield "grey (H, W, 1)", grey[..., None], {}
    yield "channels first", np.moveaxis(astro, -1, 0), {"channel_axis": 0}
    yield "channel_axis -3", np.moveaxis(astro, -1, 0), {"channel_axis": -3}
    yield "channels in the middle", np.moveaxis(astro, -1, 1), {"channel_axis": 1}
    yield "float in [0, 1]", astro / 255.0, {}
    yield "float in [0, 255]", astro.astype(np.float64), {}
    yield "float32", (astro / 255.0).astype(np.float32), {}
    yield "uint16", astro.astype(np.uint16) * 257, {}
    yield "int16 with negatives", rng.integers(-3000, 3000, (40, 52, 3)).astype(np.int16), {}
    yield "bool", astro > 128, {}
    yield "two channels", astro[..., :2], {}
    yield "four channels", np.concatenate([astro, astro[..., :1]], axis=-1), {}
    yield "one row", astro[:1], {}
    yield "one column", astro[:, :1], {}


VARIANTS = list(_variants())


def assert_scikit_image_or_only_ties_differ(image, scale, sigma, min_size, **kw):
    """Identical labels, or else both libraries are the textbook loop with their own tie order."""
    got, ref = mine(image, scale, sigma, min_size, **kw), sk(image, scale, sigma, min_size, **kw)
    if np.array_equal(got, ref):
        return
    image = np.moveaxis(np.atleast_3d(image), kw.get("channel_axis") or -1, -1)
    costs, (h, w) = sk_costs(image, sigma), image.shape[:2]
    edges = grid_pairs(h, w)
    stable = np.argsort(costs, kind="stable")
    assert np.array_equal(got.ravel(), textbook(edges, costs, h * w, scale, min_size, stable))
    assert np.array_equal(
        ref.ravel(), textbook(edges, costs, h * w, scale, min_size, np.argsort(costs))
    )


@pytest.mark.parametrize("name,image,kw", VARIANTS, ids=[v[0] for v in VARIANTS])
@pytest.mark.parametrize("params", [(100, 0.5, 10), (3, 0.3, 4), (800, 1.5, 0)])
def test_input_variants_match_scikit_image(name, image, kw, params):
    """Only the boolean image, whose few grey levels tie after light smoothing, differs (by tie order)."""
    assert_scikit_image_or_only_ties_differ(image, *params, **kw)


@pytest.mark.parametrize("name,image,kw", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_input_variants_without_smoothing_follow_the_textbook_loop(name, image, kw):
    """sigma = 0 leaves exact ties, so the reference is the loop with (weight, index) order."""
    image = np.moveaxis(np.atleast_3d(image), kw.get("channel_axis") or -1, -1)
    got = mine(image, 3, 0.0, 4, channel_axis=-1)
    costs = sk_costs(image, 0.0)
    h, w = image.shape[:2]
    want = textbook(grid_pairs(h, w), costs, h * w, 3, 4, np.argsort(costs, kind="stable"))
    assert np.array_equal(got.ravel(), want)


@pytest.mark.parametrize(
    "image",
    [np.zeros((1, 1, 3), np.uint8), np.full((1, 1), 7, np.uint8), np.array([[[0.25]]])],
    ids=["1x1 colour", "1x1 grey", "1x1x1 float"],
)
def test_a_single_pixel_is_one_segment(image):
    got = mine(image)
    assert got.shape == (1, 1) and got[0, 0] == 0
    assert np.array_equal(got, sk(image))


def test_the_merge_comparison_is_strict():
    """Weight 0.5 against a threshold of exactly float32(127.5 / 255) = 0.5: no merge."""
    kw = dict(scale=127.5, sigma=0.0, min_size=0, channel_axis=None)
    for pixels, segments in [([[0.0, 0.5]], 2), ([[0.0, 0.49]], 1)]:
        image = np.array(pixels)
        got = mine(image, **kw)
        assert got.max() + 1 == segments
        assert np.array_equal(got, sk(image, **kw))


@pytest.mark.parametrize(
    "params",
    [(0, 0.8, 0), (0, 0.8, 30), (1e9, 0.8, 0), (100, 0.5, 10**6), (1e-30, 0.8, 2)],
    ids=[
        "scale 0",
        "scale 0 then min_size",
        "huge scale",
        "min_size above the pixel count",
        "tiny scale",
    ],
)
def test_extreme_parameters(params):
    image = crop(data.coffee(), 30, 40)
    got = mine(image, *params)
    assert np.array_equal(got, sk(image, *params))
    if params[2] > 30 * 40:
        assert got.max() == 0


def test_numpy_scalars_are_accepted():
    image = crop(data.coffee(), 30, 40)
    got = mine(image, np.float32(100), np.float64(0.5), np.int64(10), channel_axis=np.int64(-1))
    assert np.array_equal(got, sk(image, 100, 0.5, 10))


def test_input_is_not_modified():
    image = crop(data.astronaut(), 30, 40)
    before = image.copy()
    felzenszwalb(image, 100, 0.8, 10)
    edge_weights(image)
    assert np.array_equal(image, before)


def test_exported_from_the_package():
    assert mv.felzenszwalb is felzenszwalb


BAD = [
    (np.zeros(5), {}, ValueError, "image must have shape"),
    (np.zeros((2, 3, 4, 5)), {}, ValueError, "image must have shape"),
    (np.zeros((4, 5, 3)), {"channel_axis": 3}, ValueError, "channel_axis must be in"),
    (np.zeros((4, 5, 3)), {"channel_axis": -4}, ValueError, "channel_axis must be in"),
    (np.zeros((4, 5, 3)), {"channel_axis": None}, ValueError, "channel_axis is None"),
    (np.zeros((4, 5)), {"channel_axis": 0}, ValueError, "2-D"),
    (np.zeros((4, 5, 3)), {"channel_axis": "last"}, TypeError, "channel_axis must be an int"),
    (np.zeros((4, 5, 3)), {"channel_axis": True}, TypeError, "channel_axis must be an int"),
    (np.zeros((4, 5, 3)), {"scale": -1}, ValueError, "scale must be a non-negative number"),
    (np.zeros((4, 5, 3)), {"scale": math.nan}, ValueError, "scale must be a number, got NaN"),
    (np.zeros((4, 5, 3)), {"scale": "big"}, TypeError, "scale must be a non-negative number"),
    (np.zeros((4, 5, 3)), {"sigma": -0.5}, ValueError, "sigma must be a non-negative number"),
    (np.zeros((4, 5, 3)), {"sigma": math.inf}, ValueError, "sigma must be finite"),
    (np.zeros((4, 5, 3)), {"min_size": -1}, ValueError, "min_size must be a non-negative integer"),
    (np.zeros((4, 5, 3)), {"min_size": 2.5}, TypeError, "min_size must be a non-negative integer"),
    (np.zeros((0, 5, 3)), {}, ValueError, "image must not be empty"),
    (np.zeros((4, 0)), {"channel_axis": None}, ValueError, "image must not be empty"),
    (np.zeros((4, 5, 0)), {}, ValueError, "image must not be empty"),
    (np.zeros((4, 5, 3), np.complex128), {}, TypeError, "dtype"),
    ([[1, 2], [3, 4]], {"channel_axis": None}, TypeError, "image must be an array"),
]


@pytest.mark.parametrize("image,kw,err,msg", BAD, ids=[f"{b[3]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_is_a_clear_error(image, kw, err, msg):
    with pytest.raises(err, match=msg):
        felzenszwalb(image, **kw)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_or_infinite_pixels_are_an_error(be, value):
    image = np.full((6, 7, 3), 0.5)
    image[2, 3, 1] = value
    with pytest.raises(ValueError, match="NaN or infinite"):
        felzenszwalb(be.asarray(image, dtype="float64"), 10, 0.0, 2)
    with pytest.raises(ValueError, match="NaN or infinite"):  # a single pixel has no edges
        felzenszwalb(be.asarray(image[2:3, 3:4], dtype="float64"))


# ----------------------------------------------------------------------------- backends


@pytest.mark.parametrize("dtype", ["uint8", "float32", "float64"])
def test_every_backend_gives_the_same_labels(be, dtype):
    image = crop(data.astronaut(), 48, 64)
    host = image if dtype == "uint8" else (image / 255.0).astype(dtype)
    got = felzenszwalb(be.asarray(host, dtype=dtype), 100, 0.8, 10)
    assert_backend(got, be)
    assert be.dtype_name(got) == "int64"
    assert np.array_equal(to_numpy(got), sk(host, 100, 0.8, 10))


# ----------------------------------------------------------------------------- the merge itself


@st.composite
def graphs(draw):
    """Grids of few grey levels (ties everywhere) or random multigraphs with repeated weights."""
    if draw(st.booleans()):
        h, w, c = draw(st.integers(1, 12)), draw(st.integers(1, 12)), draw(st.integers(1, 3))
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        img = rng.integers(0, draw(st.integers(1, 5)), (h * w, c)).astype(float)
        u, v = merge.grid_edges(h, w)
        weights = np.sqrt(np.sum((img[u] - img[v]) ** 2, axis=1))
        return u, v, weights, h * w
    n = draw(st.integers(1, 40))
    m = draw(st.integers(0, 120))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    u, v = rng.integers(0, n, m), rng.integers(0, n, m)  # self-loops and repeats included
    weights = rng.integers(0, draw(st.integers(1, 8)), m) / draw(st.sampled_from([1.0, 3.0, 7.0]))
    return u, v, weights, n


@given(
    g=graphs(),
    k=st.sampled_from([0.0, 1e-44, 0.01, 0.3, 1.0, 2.5, 40.0]),
    min_size=st.sampled_from([0, 1, 2, 3, 7, 30]),
    window=st.sampled_from([1, 2, 5, 64, 4096]),
    level_min=st.sampled_from([2, 3, 64]),
    group=st.sampled_from([1, 3, 17, 1 << 15]),
)
def test_batched_merge_equals_the_sequential_loop(g, k, min_size, window, level_min, group):
    u, v, weights, n = g
    want = merge.merge_sequential(u, v, weights, n, k, min_size)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(batched, "LEVEL_MIN", level_min)
        mp.setattr(batched, "_GROUP", group)
        got = batched.merge_batched(u, v, weights, n, k, min_size, window=window)
    assert np.array_equal(got, want)
    edges = np.stack([u, v], axis=1).reshape(-1, 2)
    assert same_partition(
        want, textbook(edges, weights, n, k * 255, min_size, merge.edge_order(weights))
    )


def test_level_steps_fall_back_when_merged_components_close_at_their_own_weight(monkeypatch):
    """k = 1e-44: float32(0 + k/|C|) underflows to 0 once |C| > 14, so the order matters again."""
    calls = []
    level_step = batched._level_step
    monkeypatch.setattr(batched, "_level_step", lambda *a: calls.append(level_step(*a)) or calls[-1])
    image = np.zeros((20, 30))
    image[5:9, 4:25] = 1.0
    u, v = merge.grid_edges(20, 30)
    weights = np.abs(image.ravel()[u] - image.ravel()[v])
    got = batched.merge_batched(u, v, weights, 600, 1e-44, 3)
    assert False in calls
    assert np.array_equal(got, merge.merge_sequential(u, v, weights, 600, 1e-44, 3))


def test_merge_rejects_a_window_out_of_range():
    with pytest.raises(ValueError, match="window must be in"):
        batched.merge_batched([0], [1], [0.5], 2, 1.0, 0, window=70000)


def test_labels_are_numbered_by_first_appearance():
    rng = np.random.default_rng(0)
    root = rng.integers(0, 50, 400)
    got = merge.labels_by_first_appearance(root)
    _, first, inverse = np.unique(root, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))
    assert np.array_equal(got, rank[inverse])


def test_tour_stage_writes_the_segmentation(tmp_path):
    from minivision.tour import STAGES, stage_segmentation

    assert stage_segmentation in STAGES
    image = crop(data.astronaut(), 64, 80)
    stage = stage_segmentation(image, tmp_path, default=False)
    assert (tmp_path / "02_segments.png").is_file()
    n = int(mine(image, 100, 0.5, 50).max()) + 1
    assert f"{n} segments" in stage.text
