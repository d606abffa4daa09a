"""Multi-scale RoIAlign over a feature pyramid (FPN, Lin et al., CVPR 2017), as torchvision does.

A feature pyramid has one map per stride (4, 8, 16, 32 for P2-P5). A small box should be
pooled from a fine map and a large box from a coarse one. FPN's Eqn. (1) assigns a box of
width ``w`` and height ``h`` to level

    k = floor(k0 + log2(sqrt(w * h) / 224)),    k0 = 4,

clamped to the pyramid's levels: a 224 x 224 box (ImageNet's canonical size) goes to level 4
(stride 16), one half as wide and tall to level 3, and so on. torchvision's ``LevelMapper``
adds ``eps = 1e-6`` inside the floor (so that 112 x 112 lands on level 3, not 2, despite
rounding) and ``MultiScaleRoIAlign`` infers each map's scale as ``2 ** round(log2(feature
height / image height))`` from the largest image of the batch, then pools each RoI with
``roi_align(..., aligned=False)`` on its level's map.

Differences by design: the scales are recomputed on every call from ``image_sizes``
(torchvision infers them on the first call and caches them on the module); a box whose area is
NaN maps to no level and gives 0 (torchvision converts NaN to int64, undefined behaviour that in
practice also matches no level); every RoI is pooled on every level and the right level is
picked afterwards, which keeps all shapes fixed (no data-dependent split) at ``L`` times the
work of one ``roi_align`` call.
"""

from __future__ import annotations

import math
import numbers
import struct

from .._backend import device, namespace_of
from .._validate import check_number
from ._rois import as_rois, check_input
from .boxes import box_area
from .roi_align import roi_align

__all__ = ["multiscale_roi_align", "level_mapper", "infer_scale"]


def _f32(x: float) -> float:
    """Round a Python float to float32 (torchvision computes the scales on float32 tensors)."""
    return struct.unpack("f", struct.pack("f", x))[0]


def infer_scale(feature_size, image_sizes) -> float:
    """torchvision's ``_infer_scale``: the power of two closest to feature height / image height.

    Parameters
    ----------
    feature_size : (int, int)
        ``(H, W)`` of the feature map.
    image_sizes : list of (int, int)
        ``(height, width)`` of every image of the batch; the largest height is used.

    Returns
    -------
    float, ``2 ** round(log2(H / max height))`` with the logarithm taken in float32 and
    rounded half to even (``torch.round``). Only the height ratio matters, as in torchvision.
    """
    heights = [int(s[0]) for s in image_sizes]
    approx = float(feature_size[0]) / float(max(heights))
    return 2.0 ** round(_f32(math.log2(_f32(approx))))


def level_mapper(
    boxes, k_min: int, k_max: int, canonical_scale: int = 224, canonical_level: int = 4, eps=1e-6
):
    """Pyramid level of every box (FPN Eqn. 1), counted from ``k_min``: int64 (K,).

    Parameters
    ----------
    boxes : list of arrays of shape (L_i, 4)
        xyxy boxes of every image, in image coordinates (concatenated in order).
    k_min, k_max : int
        Levels of the finest and coarsest maps (2 and 5 for P2-P5); ``k_min <= k_max``.
    canonical_scale, canonical_level : int
        The box size that maps to ``canonical_level`` (224 -> 4).
    eps : float
        Added inside the floor, in the boxes' dtype, as torchvision does.

    Returns
    -------
    int64 array of shape (K,): ``clamp(floor(k0 + log2(sqrt(area) / s0) + eps), k_min, k_max)
    - k_min``; -1 for a box whose area is NaN. Zero-area boxes give ``log2(0) = -inf`` and so
    level 0. Device-pure.
    """
    if not isinstance(boxes, (list, tuple)) or not boxes:
        raise TypeError("boxes must be a non-empty list of (L, 4) arrays, one per image")
    k_min = check_number("k_min", k_min, integer=True)
    k_max = check_number("k_max", k_max, integer=True)
    if k_min > k_max:
        raise ValueError(f"k_min must be <= k_max, got k_min={k_min} > k_max={k_max}")
    xp = namespace_of(**{f"boxes[{i}]": b for i, b in enumerate(boxes)})
    for i, b in enumerate(boxes):
        if b.ndim != 2 or b.shape[1] != 4:
            raise ValueError(f"boxes[{i}] must have shape (L, 4), got {tuple(b.shape)}")
    s = xp.sqrt(xp.concat([box_area(b) for b in boxes], axis=0))
    level = xp.floor((canonical_level + xp.log2(s / canonical_scale)) + eps)
    level = xp.clip(level, min=k_min, max=k_max)
    known = ~xp.isnan(level)
    level = xp.where(known, level, xp.full_like(level, k_min - 1))
    return xp.astype(level, xp.int64) - k_min


def multiscale_roi_align(
    features,
    boxes,
    image_sizes,
    output_size,
    sampling_ratio: int,
    *,
    canonical_scale: int = 224,
    canonical_level: int = 4,
):
    """RoIAlign on a feature pyramid: each box is pooled from the level FPN assigns it to.

    Parameters
    ----------
    features : list of arrays of shape (N, C, H_l, W_l)
        The pyramid, finest first (torchvision takes them in the feature dict's order).
    boxes : list of arrays of shape (L_i, 4)
        Boxes per image, in image coordinates, same dtype as the features; at most one list
        per image of the batch (``ValueError`` otherwise).
    image_sizes : list of (int, int)
        ``(height, width)`` of each image before batching/padding.
    output_size : int or (int, int)
    sampling_ratio : int
        Passed to :func:`roi_align` (2 in Faster / Mask R-CNN).
    canonical_scale, canonical_level : int
        FPN's ``224`` and ``k0 = 4``.

    Returns
    -------
    array of shape (K, C, PH, PW), the first map's dtype; row ``i`` is the ``i``-th box of the
    concatenated lists.

    Notes
    -----
    Mirrors ``torchvision.ops.MultiScaleRoIAlign`` (0.29.1) called once on a batch (see the
    module notes for the differences). Device-pure.
    """
    if not isinstance(features, (list, tuple)) or not features:
        raise TypeError("features must be a non-empty list of (N, C, H, W) arrays")
    if not isinstance(image_sizes, (list, tuple)) or not image_sizes:
        raise ValueError("image_sizes must be a non-empty list of (height, width) pairs")
    for i, s in enumerate(image_sizes):
        if len(s) != 2 or not all(isinstance(v, numbers.Integral) and v > 0 for v in s):
            raise ValueError(f"image_sizes[{i}] must be (height, width), positive ints, got {s!r}")
    xp = namespace_of(**{f"features[{i}]": f for i, f in enumerate(features)})
    for i, f in enumerate(features):
        check_input(xp, f, f"features[{i}]")
        if f.shape[:2] != features[0].shape[:2]:
            raise ValueError(
                f"features[{i}] must have the batch size and channels of features[0] "
                f"{tuple(features[0].shape[:2])}, got {tuple(f.shape[:2])}"
            )
    if not isinstance(boxes, (list, tuple)):
        raise TypeError("boxes must be a list of (L, 4) arrays, one per image")
    if len(boxes) > features[0].shape[0]:
        raise ValueError(
            f"boxes must have at most one list per image: got {len(boxes)} lists for a batch of "
            f"{features[0].shape[0]} images (features[0] {tuple(features[0].shape)})"
        )
    _, rois = as_rois(features[0], list(boxes))
    scales = [infer_scale(f.shape[-2:], image_sizes) for f in features]
    if len(features) == 1:
        return roi_align(features[0], rois, output_size, scales[0], sampling_ratio, False)
    k_min = int(-math.log2(scales[0]))
    k_max = int(-math.log2(scales[-1]))
    if k_min > k_max:
        raise ValueError(
            f"features must be ordered finest first: features[0] has scale {scales[0]}, "
            f"features[-1] {scales[-1]}"
        )
    levels = level_mapper(list(boxes), k_min, k_max, canonical_scale, canonical_level)
    result = None
    for level, (feature, scale) in enumerate(zip(features, scales)):
        pooled = roi_align(feature, rois, output_size, scale, sampling_ratio, False)
        pooled = xp.astype(pooled, features[0].dtype)
        if result is None:
            result = xp.zeros(pooled.shape, dtype=pooled.dtype, device=device(pooled))
        result = xp.where((levels == level)[:, None, None, None], pooled, result)
    return result
