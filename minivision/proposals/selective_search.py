"""Selective search (Uijlings, van de Sande, Gevers & Smeulders, IJCV 2013).

R-CNN's region proposals. Start from a fine over-segmentation (lesson 02), then merge the two
most similar neighbouring regions again and again until one region -- the image -- is left.
Every region created on the way is a proposal: small ones early, whole objects later. No single
way of measuring similarity suits every image, so the search is *diversified*: it is run in
several colour spaces, from several starting segmentations (F&H ``k``), with several
similarity combinations, and the results are pooled and ranked.

Modes (paper §4 / the official MATLAB code; see ``../shared/reference/segmentation-anchors.md``):

========== ============================== =================== =========================== ======
mode       colour spaces                  k (min_size = k)    strategies                  groups
========== ============================== =================== =========================== ======
"single"   HSV                            100                 CTSF                        1
"fast"     HSV, Lab                       50, 100             CTSF, TSF                   8
"quality"  HSV, Lab, rgI, H, I            50, 100, 150, 300   CTSF, TSF, F, S             80
========== ============================== =================== =========================== ======

(C colour, T texture, S size, F fill; a strategy adds its similarities.) OpenCV's
``switchToSelectiveSearchFast`` uses k = 150, 300, 450 with min_size 100, so its initial
regions are coarser; and OpenCV ranks the boxes the other way round (small regions first),
as its source says ("this is inverted from the paper").

Backend kind: host island. One ``to_numpy`` of the image, the grouping in NumPy
(:mod:`minivision.proposals.ss_grouping`), one ``from_numpy`` of the boxes.
"""

from __future__ import annotations

import numbers
import operator

from .._backend import array_namespace, from_numpy, to_numpy
from .ss_features import STRATEGIES, rgb_from_host
from .ss_grouping import proposals_host

__all__ = ["selective_search", "MODES"]

MODES = {
    "single": (("hsv",), (100,), ("CTSF",)),
    "fast": (("hsv", "lab"), (50, 100), ("CTSF", "TSF")),
    "quality": (("hsv", "lab", "rgi", "h", "i"), (50, 100, 150, 300), STRATEGIES),
}


def _rgb_host(image):
    """Check shape and dtype (metadata only); return the host (H, W, 3) float64 RGB image."""
    xp = array_namespace(image)
    if image.ndim not in (2, 3):
        raise ValueError(
            f"image must have shape (H, W) or (H, W, 3), got shape {tuple(image.shape)}"
        )
    if image.ndim == 3 and image.shape[2] == 4:
        raise ValueError(
            "image must be RGB (H, W, 3) or grey (H, W), got RGBA (H, W, 4): "
            "drop or composite the alpha channel first, e.g. image[..., :3]"
        )
    if image.ndim == 3 and image.shape[2] not in (1, 3):
        raise ValueError(
            f"image must have 1 or 3 channels (H, W, 3), got shape {tuple(image.shape)}"
        )
    if 0 in tuple(image.shape):
        raise ValueError(f"image must not be empty, got shape {tuple(image.shape)}")
    dtype = image.dtype
    is_float = xp.isdtype(dtype, "real floating")
    if not (is_float or dtype == xp.uint8 or dtype == xp.bool):
        raise TypeError(f"image must be uint8 (0..255), float (0..1) or bool, got dtype {dtype}")
    kind = "float" if is_float else ("bool" if dtype == xp.bool else "uint8")
    return rgb_from_host(to_numpy(image), kind)


def _ks(scale, default):
    if scale is None:
        return default
    values = scale if isinstance(scale, (tuple, list)) else (scale,)
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"scale must be a number or a sequence of numbers, got {scale!r}")
        v = int(v) if isinstance(v, numbers.Integral) else float(v)  # NumPy scalars too
        if not v > 0:
            raise ValueError(f"scale must be > 0, got {v}")
        out.append(v)
    if not out:
        raise ValueError("scale must not be an empty sequence")
    return tuple(out)


def selective_search(
    image,
    mode="fast",
    *,
    strategies=None,
    scale=None,
    sigma=0.8,
    min_size=None,
    seed=0,
    workers=None,
):
    """Selective search region proposals: boxes ranked as the paper ranks them.

    Parameters
    ----------
    image : array of shape (H, W, 3) or (H, W) (grey), any backend
        RGB uint8 (0..255), float (0..1; rounded to 8 bits, ``rint(255 x)``) or bool (0 or
        255). RGBA is rejected (drop the alpha first).
    mode : {"single", "fast", "quality"}
        Diversification set (module docstring table).
    strategies : sequence of str, optional
        Similarity combinations, each letters from ``"CTSF"``; default: the mode's.
    scale : float or sequence of float, optional
        F&H ``k`` values (0..255 units); default: the mode's.
    sigma : float
        F&H smoothing (paper: 0.8).
    min_size : int, optional
        F&H minimum segment size; default: equal to each ``k`` (the official code's choice).
    seed : int
        Seed of the ranking's random factor; the same seed gives the same boxes in the same order.
    workers : int, optional
        Processes sharing the colour spaces, which are searched independently: this one and
        ``workers - 1`` forked workers (default: one per CPU core, at most one per colour
        space; 1 = everything in this process). Forking is used on Linux only; elsewhere the
        search runs in this process. The result does not depend on it.

    Returns
    -------
    float64 array of shape (N, 4), on the input's backend
        ``(x1, y1, x2, y2)`` in pixels, ``x2`` = last column + 1 (continuous extent: a
        one-pixel region at (x, y) is ``(x, y, x+1, y+1)``). Best-ranked first, no duplicates.

    Notes
    -----
    Paper (§3) → code: initial regions = :func:`minivision.felzenszwalb` of the image in each
    colour space; neighbours by pixel adjacency; s_colour / s_texture = histogram
    intersection of L1-normalised 25-bin colour and 8-orientation x 10-bin Gaussian-derivative
    texture histograms; s_size, s_fill; greedy merging with size-weighted histogram
    propagation and only the new region's similarities recomputed (a heap);
    ranking key = position in the hierarchy (1 = whole image) x RND, pooled over all
    hierarchies, duplicates removed. Details: :mod:`minivision.proposals.ss_grouping`.

    Backend kind: host island (one ``to_numpy`` in, one ``from_numpy`` out).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {tuple(MODES)}, got {mode!r}")
    spaces, default_ks, default_strategies = MODES[mode]
    if strategies is None:
        strategies = default_strategies
    elif isinstance(strategies, str):
        strategies = (strategies,)
    strategies = tuple(strategies)
    for s in strategies:
        if not isinstance(s, str) or not s or not set(s) <= set("CTSF"):
            raise ValueError(f"each strategy must be letters from 'CTSF', got {s!r}")
    if not strategies:
        raise ValueError("strategies must not be empty")
    ks = _ks(scale, default_ks)
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real) or not sigma >= 0:
        raise ValueError(f"sigma must be a real number >= 0, got {sigma!r}")
    if min_size is not None:
        if isinstance(min_size, bool):
            raise TypeError(f"min_size must be an int or None, got {min_size!r}")
        try:
            min_size = operator.index(min_size)
        except TypeError:
            raise TypeError(f"min_size must be an int or None, got {min_size!r}") from None
        if min_size < 0:
            raise ValueError(f"min_size must be >= 0, got {min_size}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int, got {seed!r}")
    seed = operator.index(seed)
    if workers is not None:
        if isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 1:
            raise ValueError(f"workers must be a positive int or None, got {workers!r}")
        workers = operator.index(workers)  # a NumPy integer becomes a Python int
    rgb = _rgb_host(image)
    boxes = proposals_host(rgb, spaces, ks, strategies, float(sigma), min_size, seed, workers)
    return from_numpy(boxes, like=image)
