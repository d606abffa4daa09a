"""Graph-based image segmentation (Felzenszwalb & Huttenlocher, IJCV 2004).

Selective search (lesson 03) starts from this over-segmentation. The image is a graph: every
pixel is a node, every pixel is joined to its 8 neighbours, and an edge weighs the colour
distance between its two pixels. Components grow from single pixels along the lightest edges,
and two components merge only when the edge between them is lighter than the variation inside
each of them plus a bonus ``k / |C|`` that favours small components.

:func:`felzenszwalb` mirrors ``skimage.segmentation.felzenszwalb`` (scikit-image 0.26):
the same arguments, the same partition, and the same label numbers (by first appearance in a
raster scan). Two parts, two backend kinds:

* :func:`edge_weights` -- smoothing and edge weights -- runs on the input's backend
  (NumPy, CuPy, torch, ...) and is device-pure;
* the merge (a union-find sweep over the sorted edges) is a **host island**:
  one ``to_numpy`` of the weights, NumPy in :mod:`minivision.proposals.felzenszwalb_merge`, one
  ``from_numpy`` of the labels.
"""

from __future__ import annotations

import math
import operator

from .._backend import from_numpy, namespace_of, to_numpy
from .._validate import check_number
from ._felzenszwalb_batched import segment_grid
from ._gaussian import gaussian_filter2d

__all__ = ["felzenszwalb", "edge_weights"]


# ----------------------------------------------------------------------------- checks


def _channels_last(xp, image, channel_axis):
    """Check ``image`` and ``channel_axis``; return the image as (H, W, C)."""
    if image.ndim not in (2, 3):
        raise ValueError(
            f"image must have shape (H, W) or (H, W, C), got {image.ndim} dimensions "
            f"{tuple(image.shape)}"
        )
    if channel_axis is not None:
        if isinstance(channel_axis, bool):
            raise TypeError(f"channel_axis must be an int or None, got {channel_axis!r}")
        try:
            channel_axis = operator.index(channel_axis)
        except TypeError:
            raise TypeError(
                f"channel_axis must be an int or None, got {type(channel_axis).__name__}"
            ) from None
    if image.ndim == 2:
        # scikit-image treats a 2-D image as grey for the default -1; with 0 or -2 it would
        # segment the transposed image, which is never what was meant.
        if channel_axis not in (None, -1):
            raise ValueError(
                f"channel_axis must be None or -1 for a 2-D (grey) image, got {channel_axis}"
            )
        image = xp.reshape(image, (*image.shape, 1))
    else:
        if channel_axis is None:
            raise ValueError(
                f"channel_axis is None, so image must be 2-D (grey), got shape {tuple(image.shape)}"
            )
        if not -3 <= channel_axis <= 2:
            raise ValueError(f"channel_axis must be in [-3, 2] for a 3-D image, got {channel_axis}")
        image = xp.moveaxis(image, channel_axis, -1)
    if 0 in tuple(image.shape):
        raise ValueError(f"image must not be empty, got shape {tuple(image.shape)} (H, W, C)")
    return image


def _as_float64(xp, image):
    """scikit-image's ``img_as_float64``: integers scaled to [0, 1] (signed: [-1, 1]).

    uint8 becomes ``x * (1/255)`` -- a multiplication by the rounded reciprocal, which is not
    always bit-identical to ``x / 255``.
    """
    dtype = image.dtype
    if dtype == xp.bool:
        return xp.astype(image, xp.float64)
    if xp.isdtype(dtype, "real floating"):
        return xp.astype(image, xp.float64)
    if xp.isdtype(dtype, "integral"):
        top = xp.iinfo(dtype).max
        out = xp.astype(image, xp.float64) * (1.0 / top)
        if xp.isdtype(dtype, "signed integer"):
            out = xp.maximum(out, -1.0)
        return out
    raise TypeError(f"image must have a boolean, integer or real floating dtype, got {dtype}")




# ----------------------------------------------------------------------------- smoothing


# ----------------------------------------------------------------------------- weights


def _distance(xp, a, b):
    """Euclidean distance over the last axis, summed left to right as NumPy does for C < 8."""
    d = a - b
    sq = d * d
    c = sq.shape[-1]
    if c >= 8:  # NumPy switches to pairwise summation; use the library's own sum
        total = xp.sum(sq, axis=-1)
    else:
        total = sq[..., 0]
        for i in range(1, c):
            total = total + sq[..., i]
    return xp.sqrt(total)


def _weights(xp, img):
    """(E,) edge weights of a smoothed (H, W, C) float64 image, in scikit-image's edge order."""
    right = _distance(xp, img[:, 1:, :], img[:, :-1, :])  # (H, W-1)
    down = _distance(xp, img[1:, :, :], img[:-1, :, :])  # (H-1, W)
    dright = _distance(xp, img[1:, 1:, :], img[:-1, :-1, :])  # (H-1, W-1)
    uright = _distance(xp, img[1:, :-1, :], img[:-1, 1:, :])  # (H-1, W-1)
    return xp.concat([xp.reshape(t, (-1,)) for t in (right, down, dright, uright)])


def _prepare(image, sigma, channel_axis):
    xp = namespace_of(image=image)
    sigma = check_number("sigma", sigma, minimum=0)
    if math.isinf(sigma):
        raise ValueError(f"sigma must be finite, got {sigma}")
    img = _as_float64(xp, _channels_last(xp, image, channel_axis))
    return xp, img, gaussian_filter2d(xp, img, sigma)


def edge_weights(image, sigma=0.8, *, channel_axis=-1):
    """Weights of the 8-connected pixel graph: colour distances after Gaussian smoothing.

    Parameters
    ----------
    image : array of shape (H, W) or (H, W, C)
        Grey or colour image (uint8 and other integers are scaled to [0, 1] first, floats are
        used as they are), on any backend.
    sigma : float
        Standard deviation of the Gaussian applied to each channel first (the paper's sigma).
    channel_axis : int or None
        Axis of the colour channels; None for a 2-D grey image.

    Returns
    -------
    float64 array of shape (E,), E = H(W-1) + (H-1)W + 2(H-1)(W-1)
        ``sqrt(sum_c (I[p, c] - I[q, c])**2)`` for each edge ``(p, q)`` of
        :func:`minivision.proposals.felzenszwalb_merge.grid_edges`, in that order: right, down,
        down-right, up-right neighbours. Bit-identical to scikit-image's ``costs``.

    Notes
    -----
    Smoothing is ``scipy.ndimage.gaussian_filter`` with ``mode='reflect'`` and ``truncate=4``,
    reproduced with array operations. Device-pure.
    """
    xp, _, smooth = _prepare(image, sigma, channel_axis)
    return _weights(xp, smooth)


def felzenszwalb(image, scale=1, sigma=0.8, min_size=20, *, channel_axis=-1):
    """Felzenszwalb–Huttenlocher graph-based segmentation, as ``skimage.segmentation.felzenszwalb``.

    Parameters
    ----------
    image : array of shape (H, W) or (H, W, C)
        Grey or colour image on any backend. Integer images are scaled to [0, 1] (uint8:
        ``x * (1/255)``), boolean ones to {0, 1}; float images are used as given, so a float
        image holding 0..255 behaves like a much more contrasted one.
    scale : float
        The paper's ``k``, in units of the 0..255 scale: the threshold bonus is
        ``k / |C|`` with ``k = scale / 255``. Larger means fewer, larger segments. >= 0.
    sigma : float
        Standard deviation of the Gaussian that smooths each channel first (0 = none). >= 0.
    min_size : int
        Segments smaller than this are merged into a neighbour after the main pass. >= 0.
    channel_axis : int or None
        Axis of the colour channels of a 3-D image; None (or the default -1) for a 2-D image.

    Returns
    -------
    int64 array of shape (H, W)
        Segment labels 0..n-1, numbered by first appearance in a raster scan, on the input's
        backend and device.

    Notes
    -----
    The algorithm, with scikit-image's implementation details that change the result:

    1. the image as float64 (``img_as_float64``), each channel smoothed (``sigma`` here is the
       paper's sigma);
    2. the 8-connected graph, each edge weighted by the Euclidean colour distance
       (:func:`edge_weights`); colour is one distance, not three per-channel segmentations;
    3. edges sorted by weight; the merge pass joins components A and B across an edge of
       weight w iff ``w < min(Int(A) + k/|A|, Int(B) + k/|B|)`` (strict ``<``, thresholds
       rounded to float32), where ``Int(C)`` -- the paper's internal difference, the largest
       weight in C's minimum spanning tree -- is the weight of the edge that last merged C;
    4. the min_size pass over the same sorted edges; 5. labels by first appearance.

    Ties between equal weights are visited in edge-index order (a stable sort). scikit-image
    uses NumPy's default, unstable ``argsort``, whose tie order depends on the CPU's SIMD
    support and the NumPy version; where tied edges meet in the min_size pass (integer images
    with ``sigma=0``, synthetic images) the two partitions can then differ slightly. With
    ``sigma > 0`` on photographs the labels are identical.

    Raises ``ValueError`` for a wrong number of dimensions, ``channel_axis`` out of range, an
    empty image, negative ``scale``, ``sigma`` or ``min_size``, and NaN or infinite pixels.

    Backend kind: host island. The smoothing and weights run on the input's backend; the
    merge copies the weights to the host once (``to_numpy``), runs in NumPy
    (:func:`minivision.proposals._felzenszwalb_batched.merge_batched`) and copies the labels back once
    (``from_numpy``). The NaN check rides on that same copy.
    """
    scale = check_number("scale", scale, minimum=0)
    min_size = check_number("min_size", min_size, integer=True, minimum=0)
    xp, img, smooth = _prepare(image, sigma, channel_axis)
    height, width = smooth.shape[0], smooth.shape[1]
    # One more entry after the weights: 0.0 if every pixel is finite, 1.0 otherwise.
    finite = xp.isfinite(xp.max(xp.abs(img)))  # NaN propagates through max
    flag = xp.reshape(1.0 - xp.astype(finite, xp.float64), (1,))
    host = to_numpy(xp.concat([_weights(xp, smooth), flag]))
    if host[-1] != 0.0:
        raise ValueError("image must not contain NaN or infinite values")
    labels = segment_grid(host[:-1], height, width, scale, min_size)
    return from_numpy(labels, like=image)
