"""Lesson 02 battery: graph-based segmentation (Felzenszwalb–Huttenlocher).

The expected values come from minivision.proposals.felzenszwalb (pinned to scikit-image by the tests).
Segmentations are compared as *partitions*: two label images match when they split the pixels
the same way, whatever numbers they give the segments. The mistakes are the classic ones:
4- instead of 8-connectivity, ``<=`` instead of ``<`` in the merge test, forgetting the 1/255
scaling (of the image or of k), and applying min_size before the merge instead of after it.
"""

from __future__ import annotations

import numpy as np
from skimage import data  # the sample images ship with scikit-image: no download

from ..proposals._felzenszwalb_batched import merge_batched
from ..proposals.felzenszwalb import edge_weights, felzenszwalb
from ..proposals.felzenszwalb_merge import grid_edges, labels_by_first_appearance
from ._core import Battery, Case, FunctionBattery, Mistake

# ----------------------------------------------------------------------------- comparing


def same_partition(got, expected) -> str | None:
    """None if ``got`` splits the pixels exactly like ``expected``; else what differs."""
    try:
        g = np.asarray(got)
    except Exception:
        return f"returned {type(got).__name__}, expected an array of labels"
    e = np.asarray(expected)
    if g.shape != e.shape:
        return f"returned shape {g.shape}, expected {e.shape}"
    if g.dtype.kind not in "iu":
        return f"returned dtype {g.dtype}, expected integer labels"
    gf, ef = g.ravel(), e.ravel()
    ng, ne = np.unique(gf).size, np.unique(ef).size
    pairs = np.unique(np.stack([gf, ef]), axis=1).shape[1]
    if pairs == ng == ne:
        return None
    # the first pixel whose segment differs: map each expected segment to the label your
    # function gave its first pixel, and each of your segments to its first expected segment
    _, first_e = np.unique(ef, return_index=True)
    _, first_g = np.unique(gf, return_index=True)
    mine_of = dict(zip(ef[first_e].tolist(), gf[first_e].tolist()))
    theirs_of = dict(zip(gf[first_g].tolist(), ef[first_g].tolist()))
    bad = next(
        i for i in range(gf.size) if mine_of[int(ef[i])] != gf[i] or theirs_of[int(gf[i])] != ef[i]
    )
    where = tuple(int(x) for x in np.unravel_index(bad, e.shape))
    return (
        f"splits the pixels differently: {ng} segments, expected {ne}; "
        f"the first pixel in a wrong segment is {where}"
    )


def same_edges(got, expected) -> str | None:
    """None if ``got`` is the same set of undirected edges (any order, either direction)."""
    try:
        g = np.asarray(got)
    except Exception:
        return f"returned {type(got).__name__}, expected an (E, 2) array"
    if g.ndim != 2 or g.shape[1:] != (2,):
        return f"returned shape {g.shape}, expected (E, 2)"
    e = np.asarray(expected)
    gs = {tuple(sorted(p)) for p in g.tolist()}
    es = {tuple(sorted(p)) for p in e.tolist()}
    if len(gs) < len(g):
        return f"returned {len(g)} edges but only {len(gs)} different ones: each edge once"
    if gs == es:
        return None
    missing, extra = sorted(es - gs), sorted(gs - es)
    what = f"missing {missing[0]}" if missing else f"{extra[0]} is not an edge"
    return f"returned {len(gs)} edges, expected {len(es)}; {what}"


# ----------------------------------------------------------------------------- references


def _grid_edges(height, width):
    u, v = grid_edges(height, width)
    return np.stack([u, v], axis=1)


def _edge_weights(image, sigma):
    return edge_weights(image, sigma, channel_axis=-1 if image.ndim == 3 else None)


def _segment_graph(num_nodes, edges, weights, k, min_size):
    edges = np.asarray(edges).reshape(-1, 2)
    return merge_batched(edges[:, 0], edges[:, 1], weights, num_nodes, k, min_size)


def _felzenszwalb(image, scale=1, sigma=0.8, min_size=20):
    return felzenszwalb(
        image, scale, sigma, min_size, channel_axis=-1 if image.ndim == 3 else None
    )


# ----------------------------------------------------------------------------- mistakes


def _merge(num_nodes, edges, weights, k, min_size, *, strict=True, min_size_first=False):
    """A plain loop with the two merge-test mistakes as switches (small cases only)."""
    edges = np.asarray(edges).reshape(-1, 2)
    order = np.argsort(np.asarray(weights), kind="stable")
    parent, size, internal = list(range(num_nodes)), [1] * num_nodes, [0.0] * num_nodes

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def small_pass():
        for i in order:
            a, b = find(int(edges[i, 0])), find(int(edges[i, 1]))
            if a != b and (size[a] < min_size or size[b] < min_size):
                parent[b] = a
                size[a] += size[b]

    if min_size_first:
        small_pass()
    for i in order:
        a, b, w = find(int(edges[i, 0])), find(int(edges[i, 1])), float(weights[i])
        if a == b:
            continue
        ta = float(np.float32(internal[a] + k / size[a]))
        tb = float(np.float32(internal[b] + k / size[b]))
        if (w < min(ta, tb)) if strict else (w <= min(ta, tb)):
            parent[b] = a
            size[a] += size[b]
            internal[a] = w
    if not min_size_first:
        small_pass()
    return labels_by_first_appearance(np.array([find(x) for x in range(num_nodes)]))


def _segment_graph_wrong(**switches):
    def segment_graph(num_nodes, edges, weights, k, min_size):
        return _merge(num_nodes, edges, weights, k, min_size, **switches)

    return segment_graph


def _grid_4(height, width):
    e = _grid_edges(height, width)
    return e[: height * (width - 1) + (height - 1) * width]  # right and down only


def _felzenszwalb_wrong(connectivity=8, scale_image=True, divide_k=True, **switches):
    def felzenszwalb(image, scale=1, sigma=0.8, min_size=20):
        img = image if scale_image else np.asarray(image, dtype=np.float64)  # floats: unscaled
        h, w = image.shape[:2]
        weights = _edge_weights(img, sigma)
        edges = _grid_edges(h, w)
        if connectivity == 4:
            edges, weights = _grid_4(h, w), weights[: h * (w - 1) + (h - 1) * w]
        k = scale / 255.0 if divide_k else float(scale)
        return _merge(h * w, edges, weights, k, min_size, **switches).reshape(h, w)

    return felzenszwalb


def _weights_squared(image, sigma):
    return _edge_weights(image, sigma) ** 2


def _weights_l1(image, sigma):
    img = np.atleast_3d(image)
    if img.shape[-1] == 1:  # grey: L1 and L2 agree
        return _edge_weights(image, sigma)
    from scipy import ndimage

    f = image / 255.0 if image.dtype == np.uint8 else image.astype(np.float64)
    f = ndimage.gaussian_filter(f, (sigma, sigma, 0), mode="reflect")
    e = _grid_edges(*image.shape[:2])
    flat = f.reshape(-1, f.shape[-1])
    return np.abs(flat[e[:, 0]] - flat[e[:, 1]]).sum(axis=1)


def _weights_unscaled(image, sigma):
    return _edge_weights(np.asarray(image, dtype=np.float64), sigma)


# ----------------------------------------------------------------------------- inputs

COFFEE = np.ascontiguousarray(data.coffee()[250:274, 350:382])  # (24, 32, 3) uint8
ASTRO = np.ascontiguousarray(data.astronaut()[100:124, 180:212])  # the face, (24, 32, 3)
CAMERA = np.ascontiguousarray(data.camera()[100:124, 200:232])  # grey (24, 32)
TIE = np.array([[0.0, 0.5, 1.0]])  # both weights 0.5 = float32(127.5 / 255), the threshold
# the worked example of the notebook: a path 0 - 1 - 2 - 3 with weights 0.1, 0.55, 0.1
PATH_EDGES = np.array([[0, 1], [1, 2], [2, 3]])
PATH_WEIGHTS = np.array([0.1, 0.55, 0.1])
RNG = np.random.default_rng(2)
RANDOM_EDGES = RNG.integers(0, 30, (90, 2))
RANDOM_WEIGHTS = RNG.integers(0, 12, 90) / 10.0

FOUR = (
    "4-connectivity",
    "each pixel has 8 neighbours here: right, down, down-right and up-right (each edge once), "
    "not only right and down",
)
LESS_EQUAL = (
    "<= instead of <",
    "two components merge only if w is strictly below both thresholds: w < Int(C) + k/|C|",
)
MIN_SIZE_FIRST = (
    "min_size applied before the merge",
    "the min_size pass comes after the threshold pass, over the same sorted edges; merging "
    "small components first leaves Int = 0 with a large |C|, so the thresholds come out too low",
)

BATTERY = Battery(
    lesson="02",
    title="lesson 02, graph-based segmentation",
    functions=[
        FunctionBattery(
            "grid_edges",
            _grid_edges,
            [
                Case("a 2 x 3 image", (2, 3)),
                Case("a 4 x 5 image", (4, 5)),
                Case("one row of 4 pixels", (1, 4)),
            ],
            [Mistake(*FOUR, _grid_4)],
            compare=same_edges,
        ),
        FunctionBattery(
            "edge_weights",
            _edge_weights,
            [
                Case("a colour crop of coffee, sigma 0.8", (COFFEE, 0.8)),
                Case("the same crop unsmoothed", (COFFEE, 0.0)),
                Case("a grey crop of camera, sigma 0.5", (CAMERA, 0.5)),
                Case("a float image in [0, 1]", (TIE, 0.0)),
            ],
            [
                Mistake(
                    "the image not scaled to [0, 1]",
                    "convert an integer image to float first: uint8 becomes x * (1/255), "
                    "as skimage.util.img_as_float does; float images are used as they are",
                    _weights_unscaled,
                ),
                Mistake(
                    "the squared distance",
                    "the weight is the Euclidean distance: take the square root of the sum of squares",
                    _weights_squared,
                ),
                Mistake(
                    "the sum of absolute differences",
                    "the weight is the Euclidean distance over the channels, sqrt(sum (a - b)**2), "
                    "not the L1 distance",
                    _weights_l1,
                ),
            ],
            rtol=1e-9,
            atol=1e-12,
        ),
        FunctionBattery(
            "segment_graph",
            _segment_graph,
            [
                Case(
                    "the path 0-1-2-3 of the notebook, k = 1", (4, PATH_EDGES, PATH_WEIGHTS, 1.0, 0)
                ),
                Case("the same path with min_size = 2", (4, PATH_EDGES, PATH_WEIGHTS, 1.0, 2)),
                Case(
                    "a weight equal to the threshold",
                    (3, PATH_EDGES[:2], np.array([0.5, 0.5]), 0.5, 0),
                ),
                Case(
                    "a random graph with repeated weights",
                    (30, RANDOM_EDGES, RANDOM_WEIGHTS, 0.7, 3),
                ),
            ],
            [
                Mistake(*LESS_EQUAL, _segment_graph_wrong(strict=False)),
                Mistake(*MIN_SIZE_FIRST, _segment_graph_wrong(min_size_first=True)),
            ],
            compare=same_partition,
        ),
        FunctionBattery(
            "felzenszwalb",
            _felzenszwalb,
            [
                Case("a coffee crop, scale 100, sigma 0.8, min_size 10", (COFFEE, 100, 0.8, 10)),
                Case(
                    "the astronaut's face, scale 100, sigma 0.5, min_size 20", (ASTRO, 100, 0.5, 20)
                ),
                Case(
                    "a grey crop of camera, scale 50, sigma 0.5, min_size 5", (CAMERA, 50, 0.5, 5)
                ),
                Case("a weight exactly at the threshold", (TIE, 127.5, 0.0, 0)),
            ],
            [
                Mistake(*FOUR, _felzenszwalb_wrong(connectivity=4)),
                Mistake(*LESS_EQUAL, _felzenszwalb_wrong(strict=False)),
                Mistake(
                    "the image not scaled to [0, 1]",
                    "uint8 pixels become x * (1/255) before anything else (img_as_float); "
                    "with 0..255 values every weight is 255 times too large",
                    _felzenszwalb_wrong(scale_image=False),
                ),
                Mistake(
                    "k = scale instead of scale / 255",
                    "scale is given in 0..255 units while the weights are in 0..1, so the paper's "
                    "k is scale / 255",
                    _felzenszwalb_wrong(divide_k=False),
                ),
                Mistake(*MIN_SIZE_FIRST, _felzenszwalb_wrong(min_size_first=True)),
            ],
            compare=same_partition,
        ),
    ],
)
