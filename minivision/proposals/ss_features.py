"""The features of selective search: colour spaces, region histograms, similarities.

Steps 2-4 of the algorithm in :mod:`minivision.proposals.ss_grouping`: the neighbours and boxes
of the initial regions, their L1-normalised colour (25 bins per channel) and texture histograms
(Gaussian derivatives, sigma = 1, 8 orientations, 10 bins each), all regions at once with
``bincount``, and the four similarities. Host island (NumPy; DESIGN.md §2, kind 3).
"""

from __future__ import annotations

import math

import array_api_compat.numpy as npx
import numpy as np

from ._gaussian import correlate1d, gaussian_kernel1d

__all__ = [
    "COLOUR_BINS",
    "TEXTURE_BINS",
    "STRATEGIES",
    "COLOUR_SPACES",
    "rgb_from_host",
    "convert_colour",
    "region_neighbours",
    "region_boxes",
    "colour_codes",
    "histograms",
    "colour_histograms",
    "texture_maps",
    "texture_codes",
    "image_texture_codes",
    "texture_histograms",
    "similarity_colour",
    "similarity_size",
    "similarity_fill",
]

COLOUR_BINS = 25
TEXTURE_BINS = 10
# Similarity combinations of the paper: C colour, T texture, S size, F fill.
STRATEGIES = ("CTSF", "TSF", "F", "S")
COLOUR_SPACES = ("rgb", "hsv", "lab", "rgi", "h", "i")


# ----------------------------------------------------------------------------- colour spaces


def rgb_from_host(host, kind):
    """A host image (H, W), (H, W, 1) or (H, W, 3) -> (H, W, 3) float64 RGB in [0, 255].

    ``kind`` is ``"uint8"`` (as is), ``"bool"`` (0 or 255) or ``"float"`` (values in [0, 1],
    rounded to 8 bits: ``rint(255 x)``; NaN, infinities and values outside [0, 1] raise
    ValueError). Grey images are repeated into three equal channels.
    """
    host = np.asarray(host, dtype=np.float64)
    if kind == "float":
        if not np.isfinite(host).all():
            raise ValueError("image must not contain NaN or infinite values")
        if host.min() < 0.0 or host.max() > 1.0:
            raise ValueError(
                "a float image must hold values in [0, 1], got range "
                f"[{host.min():g}, {host.max():g}]; pass uint8 for 0..255 data"
            )
        host = np.rint(host * 255.0)  # quantised to 8 bits, as img_as_ubyte does
    elif kind == "bool":
        host = host * 255.0
    if host.ndim == 2:
        host = host[..., None]
    if host.shape[2] == 1:
        host = np.repeat(host, 3, axis=2)
    return host


def _hsv(rgb):
    """(H, W, 3) float RGB in [0, 255] -> HSV, each channel scaled to [0, 255]."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = rgb.max(axis=-1)
    c = v - rgb.min(axis=-1)
    safe = np.where(c > 0, c, 1.0)
    h = np.where(
        v == r, (g - b) / safe, np.where(v == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe)
    )
    h = np.where(c > 0, (h / 6.0) % 1.0, 0.0)
    s = np.where(v > 0, c / np.where(v > 0, v, 1.0), 0.0)
    return np.stack([h * 255.0, s * 255.0, v], axis=-1)


def _lab(rgb):
    """(H, W, 3) float sRGB in [0, 255] -> CIELAB (D65), scaled as 8-bit OpenCV does.

    L in [0, 100] becomes L * 255 / 100; a and b are offset by 128 and clipped to [0, 255].
    """
    c = rgb / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array(
        [
            [0.412453, 0.357580, 0.180423],
            [0.212671, 0.715160, 0.072169],
            [0.019334, 0.119193, 0.950227],
        ]
    )
    xyz = lin @ m.T / np.array([0.950456, 1.0, 1.088754])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    L = np.where(xyz[..., 1] > 0.008856, 116.0 * f[..., 1] - 16.0, 903.3 * xyz[..., 1])
    a = 500.0 * (f[..., 0] - f[..., 1]) + 128.0
    b = 200.0 * (f[..., 1] - f[..., 2]) + 128.0
    return np.clip(np.stack([L * 255.0 / 100.0, a, b], axis=-1), 0.0, 255.0)


def convert_colour(rgb, space):
    """Convert an (H, W, 3) float RGB image in [0, 255] to ``space``; returns (H, W, C) in [0, 255].

    ``space`` is one of the paper's colour spaces: ``"rgb"``, ``"hsv"``, ``"lab"``, ``"rgi"``
    (normalised r = R/(R+G+B), g = G/(R+G+B), and intensity I), ``"h"`` (hue only) or ``"i"``
    (intensity only, the mean of R, G, B). Every channel is scaled to [0, 255], so that the
    25 colour bins and the F&H ``k`` mean the same thing in every space.
    """
    rgb = np.asarray(rgb, dtype=np.float64)
    if space == "rgb":
        return rgb
    if space == "hsv":
        return _hsv(rgb)
    if space == "lab":
        return _lab(rgb)
    intensity = rgb.mean(axis=-1, keepdims=True)
    if space == "i":
        return intensity
    if space == "h":
        return _hsv(rgb)[..., :1]
    if space == "rgi":
        total = rgb.sum(axis=-1, keepdims=True)
        rg = np.where(total > 0, rgb[..., :2] / np.where(total > 0, total, 1.0), 1.0 / 3.0)
        return np.concatenate([rg * 255.0, intensity], axis=-1)
    raise ValueError(f"colour space must be one of {COLOUR_SPACES}, got {space!r}")


# ----------------------------------------------------------------------------- regions


def region_neighbours(labels):
    """Pairs of 8-adjacent regions of a label image: (P, 2) intp, ``a < b``, sorted, unique.

    Two regions are neighbours iff a pixel of one touches a pixel of the other horizontally,
    vertically or diagonally (the same 8-connected graph as the segmentation).
    """
    labels = np.asarray(labels)
    n = int(labels.max()) + 1 if labels.size else 0
    pairs = [
        (labels[:, 1:], labels[:, :-1]),
        (labels[1:, :], labels[:-1, :]),
        (labels[1:, 1:], labels[:-1, :-1]),
        (labels[1:, :-1], labels[:-1, 1:]),
    ]
    a = np.concatenate([p.ravel() for p, _ in pairs]).astype(np.intp)
    b = np.concatenate([q.ravel() for _, q in pairs]).astype(np.intp)
    keep = a != b
    lo, hi = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
    code = np.unique(lo * n + hi)
    return np.stack([code // max(n, 1), code % max(n, 1)], axis=1).astype(np.intp)


def region_boxes(labels, n):
    """Bounding boxes (n, 4) float64 xyxy in pixels (x2 = last column + 1) and sizes (n,)."""
    labels = np.asarray(labels)
    height, width = labels.shape
    flat = labels.ravel()
    ys, xs = np.divmod(np.arange(flat.size), width)
    sizes = np.bincount(flat, minlength=n).astype(np.float64)
    x1 = np.full(n, width, np.intp)
    y1 = np.full(n, height, np.intp)
    x2 = np.zeros(n, np.intp)
    y2 = np.zeros(n, np.intp)
    np.minimum.at(x1, flat, xs)
    np.minimum.at(y1, flat, ys)
    np.maximum.at(x2, flat, xs + 1)
    np.maximum.at(y2, flat, ys + 1)
    return np.stack([x1, y1, x2, y2], axis=1).astype(np.float64), sizes


def _normalise_rows(counts):
    total = counts.sum(axis=1, keepdims=True)
    return counts / np.where(total > 0, total, 1.0)


def colour_codes(image, bins=COLOUR_BINS):
    """Per-pixel histogram slots (H*W, C) of an (H, W, C) image in [0, 255].

    Channel c, value v goes to slot ``c * bins + min(floor(v * bins / 256), bins - 1)``.
    Computed once per colour space and reused for every segmentation of it.
    """
    image = np.asarray(image, dtype=np.float64)
    c = image.shape[-1]
    b = np.minimum((image * (bins / 256.0)).astype(np.intp), bins - 1).reshape(-1, c)
    return b + np.arange(c, dtype=np.intp) * bins


def histograms(codes, labels, n, width):
    """L1-normalised histograms (n, width): row r counts the ``codes`` of region r's pixels.

    ``codes`` is (H*W, K) slots in [0, width); every row sums to 1 (over all K blocks).
    """
    idx = labels.reshape(-1, 1) * width + codes
    counts = np.bincount(idx.ravel(), minlength=n * width).reshape(n, width)
    return _normalise_rows(counts.astype(np.float64))


def colour_histograms(image, labels, n, bins=COLOUR_BINS):
    """L1-normalised colour histograms (n, C * bins) of the regions of ``labels``.

    ``image`` is (H, W, C) in [0, 255]; 25 bins per channel over [0, 256); each row sums to 1
    over all C blocks together (the paper's L1 normalisation).
    """
    c = np.asarray(image).shape[-1]
    return histograms(colour_codes(image, bins), np.asarray(labels), n, c * bins)


def _oriented_derivatives(image, sigma):
    """(H, W, C, 4) directional Gaussian derivatives at 0, 45, 90 and 135 degrees."""
    image = np.asarray(image, dtype=np.float64)
    g = np.array(gaussian_kernel1d(sigma))
    r = len(g) // 2
    x = np.arange(-r, r + 1)
    dg = -x / (sigma * sigma) * g  # derivative of the Gaussian
    dg = dg[::-1]  # correlation taps of the convolution with g'
    gx = correlate1d(npx, correlate1d(npx, image, g, 0), dg, 1)
    gy = correlate1d(npx, correlate1d(npx, image, dg, 0), g, 1)
    s = math.sqrt(0.5)
    return np.stack([gx, (gx + gy) * s, gy, (gy - gx) * s], axis=-1)


def _halves(d):
    """The positive and negative parts of ``d``, each divided by its maximum over the image.

    A flat image has derivatives of rounding-error size (1e-14); dividing by their maximum
    would blow them up to 1. Below 1e-6 grey levels per pixel a map counts as zero.
    """
    for sign in (1.0, -1.0):
        part = np.maximum(d if sign > 0 else -d, 0.0)
        top = part.max(axis=(0, 1), keepdims=True)
        part /= np.where(top > 1e-6, top, np.inf)
        yield part


def texture_maps(image, sigma=1.0):
    """Oriented Gaussian-derivative responses: (H, W, C, 8), each in [0, 1].

    Per channel, the first derivatives ``Gx``, ``Gy`` of a Gaussian with ``sigma`` give the
    directional derivatives at 0, 45, 90 and 135 degrees; each is split into its positive and
    negative part (8 orientations, as the paper's "8 orientations"). Each of the 8 maps is
    divided by its maximum over the image so that it fits the 10 bins (a map whose maximum is
    below 1e-6, i.e. no gradient at all, is all zeros).
    """
    return np.concatenate(list(_halves(_oriented_derivatives(image, sigma))), axis=-1)


def _bin(maps, bins):
    return np.minimum((maps * bins).astype(np.intp), bins - 1)


def texture_codes(maps, bins=TEXTURE_BINS):
    """Per-pixel histogram slots (H*W, C*8) of :func:`texture_maps` output (10 bins each)."""
    h, w, c, o = maps.shape
    return _bin(maps, bins).reshape(h * w, c * o) + np.arange(c * o, dtype=np.intp) * bins


def image_texture_codes(image, sigma=1.0, bins=TEXTURE_BINS):
    """``texture_codes(texture_maps(image, sigma), bins)``, without building the 8 float maps.

    The same numbers, computed half by half into one compact int16 array (H*W, C*8): the
    texture histograms are the largest per-pixel data of selective search.
    """
    d = _oriented_derivatives(image, sigma)
    h, w, c, o = d.shape
    codes = np.empty((h, w, c, 2 * o), dtype=np.int16)
    for half, maps in enumerate(_halves(d)):
        maps *= bins
        # min before the cast equals _bin's min after it (maps >= 0); the cast truncates
        codes[..., half * o : (half + 1) * o] = np.minimum(maps, bins - 1, out=maps)
    codes = codes.reshape(h * w, c * 2 * o)
    codes += (np.arange(c * 2 * o) * bins).astype(np.int16)
    return codes


def texture_histograms(maps, labels, n, bins=TEXTURE_BINS):
    """L1-normalised texture histograms (n, C * 8 * bins) from :func:`texture_maps` output."""
    _, _, c, o = maps.shape
    return histograms(texture_codes(maps, bins), np.asarray(labels), n, c * o * bins)


# ----------------------------------------------------------------------------- similarities


def similarity_colour(hi, hj):
    """Histogram intersection ``sum_k min(hi_k, hj_k)`` over the last axis (colour or texture)."""
    return np.minimum(hi, hj).sum(axis=-1)


def similarity_size(si, sj, image_size):
    """``1 - (size_i + size_j) / size(im)``: small regions merge first."""
    return 1.0 - (si + sj) / image_size


def similarity_fill(box_i, box_j, si, sj, image_size):
    """``1 - (size(BB_ij) - size_i - size_j) / size(im)``, BB_ij the tight box around both."""
    bi, bj = np.asarray(box_i), np.asarray(box_j)
    w = np.maximum(bi[..., 2], bj[..., 2]) - np.minimum(bi[..., 0], bj[..., 0])
    h = np.maximum(bi[..., 3], bj[..., 3]) - np.minimum(bi[..., 1], bj[..., 1])
    return 1.0 - (w * h - si - sj) / image_size
