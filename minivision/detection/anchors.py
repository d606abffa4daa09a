"""Anchors: the fixed reference boxes a region proposal network scores and refines.

Faster R-CNN (Ren et al., NeurIPS 2015) replaced selective search by a small network that, at
every cell of a feature map, scores ``A`` reference boxes of several sizes and shapes -- the
*anchors* -- and predicts how to move each one onto an object (:mod:`minivision.detection.box_coder`).
The anchors themselves are pure geometry, fixed before training:

* :class:`AnchorGenerator` -- Faster R-CNN / FPN anchors, exactly as
  ``torchvision.models.detection.anchor_utils.AnchorGenerator`` (0.29.1) lays them out;
* :class:`DefaultBoxGenerator` -- SSD's "default boxes" (Liu et al., ECCV 2016), as
  ``torchvision.models.detection.anchor_utils.DefaultBoxGenerator``.

Both are device-pure: the anchors depend only on the sizes of the image and the feature maps,
never on array values, and are built on the device of a given array.
"""

from __future__ import annotations

import math
import numbers

from .._backend import array_namespace, device, is_array_api_obj
from .._validate import check_image_size

__all__ = ["AnchorGenerator", "DefaultBoxGenerator"]


# ----------------------------------------------------------------------------- argument checks


def _positive_numbers(name, values, *, integers=False):
    try:
        values = tuple(values)
    except TypeError:
        values = None
    kind = numbers.Integral if integers else numbers.Real
    ok = values is not None and all(
        isinstance(v, kind) and not isinstance(v, bool) and v > 0 for v in values
    )
    if not ok or not values:
        what = "positive integers" if integers else "positive numbers"
        raise ValueError(f"{name} must be a non-empty sequence of {what}, got {values!r}")
    return values




def _grid_sizes_and_like(feature_maps, like):
    """``[(H_l, W_l), ...]`` from arrays (their last two axes) or pairs, and the array to follow.

    Anchors take their namespace, device and dtype from ``like`` if given, else from the first
    array in ``feature_maps`` -- torchvision follows ``feature_maps[0]``.
    """
    if is_array_api_obj(feature_maps) or not isinstance(feature_maps, (list, tuple)):
        raise TypeError(
            "feature_maps must be a list of feature maps (arrays of shape (..., H, W)) "
            f"or of (H, W) pairs, got {type(feature_maps).__name__}"
        )
    sizes = []
    for i, f in enumerate(feature_maps):
        if is_array_api_obj(f):
            if f.ndim < 2:
                raise ValueError(
                    f"feature_maps[{i}] must have shape (..., H, W), got {tuple(f.shape)}"
                )
            size = tuple(f.shape[-2:])
        else:
            try:
                size = tuple(f)
            except TypeError:
                size = ()
        if len(size) != 2 or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in size
        ):
            raise ValueError(
                f"feature_maps[{i}] must be an array of shape (..., H, W) or an (H, W) pair "
                f"with H, W >= 1, got {f!r}"
            )
        sizes.append((int(size[0]), int(size[1])))
    if like is None:
        like = next((f for f in feature_maps if is_array_api_obj(f)), None)
        if like is None:
            raise TypeError(
                "pass like=<array> to choose the anchors' library, device and dtype when "
                "feature_maps holds only (H, W) pairs"
            )
    elif not is_array_api_obj(like):
        raise TypeError(f"like must be an array, got {type(like).__name__}")
    xp = array_namespace(like)
    if not xp.isdtype(like.dtype, "real floating"):
        raise TypeError(
            f"anchors take a floating-point dtype from like/feature_maps, got {like.dtype}"
        )
    return sizes, like, xp


# ----------------------------------------------------------------------------- Faster R-CNN


class AnchorGenerator:
    """Faster R-CNN anchors for a list of feature maps: ``A = len(sizes_l) * len(ratios_l)`` per cell.

    Parameters
    ----------
    sizes : sequence of sequences of positive numbers, one per feature level
        The side of a square anchor in pixels (``s`` in the paper: 128, 256, 512 on one level;
        32, 64, 128, 256, 512 on the five levels of an FPN). A flat sequence ``(32, 64)`` means
        one size per level: ``((32,), (64,))``, as in torchvision.
    aspect_ratios : sequence of sequences of positive numbers, one per level
        ``r = height / width``. A flat sequence is used for every level.

    Notes
    -----
    The cell anchors of a level (its anchors around the origin) are, for each ratio ``r``
    (outer loop) and each size ``s`` (inner loop)::

        h_ratio = sqrt(r);  w_ratio = 1 / h_ratio
        w = w_ratio * s;  h = h_ratio * s                  # so w * h = s**2 and h / w = r
        cell = round([-w, -h, w, h] / 2)                   # round half to even, in float32

    The rounding makes every anchor's width and height even integers (size 45, ratio 1 gives
    ``[-22, -22, 22, 22]``: 22.5 rounds to 22), so the area is only roughly ``s**2``.

    On a feature map of ``H x W`` cells for an image of ``image_h x image_w`` pixels the
    stride is ``(image_h // H, image_w // W)`` (floor division: 100 // 13 = 7) and the cell
    anchors are shifted to ``(j * stride_w, i * stride_h)`` -- the **top-left corner** of cell
    ``(i, j)``, not its centre (torchvision issue #1765; the centred variant adds half a stride,
    see lesson 06). Anchor ``a`` of cell ``(i, j)`` on a level is row ``(i * W + j) * A + a``,
    the levels follow one another in order, which is the order in which
    :func:`minivision.detection.rpn.concat_box_prediction_layers` lays out the head's ``(A * C, H, W)``
    outputs.

    Mirrors torchvision's ``AnchorGenerator`` bit for bit (the values are integers). Device-pure.
    """

    def __init__(self, sizes=((128, 256, 512),), aspect_ratios=((0.5, 1.0, 2.0),)):
        sizes, aspect_ratios = _nested(sizes, "sizes"), aspect_ratios
        if not isinstance(aspect_ratios, (list, tuple)) or not aspect_ratios:
            raise ValueError(f"aspect_ratios must be a non-empty sequence, got {aspect_ratios!r}")
        if not isinstance(aspect_ratios[0], (list, tuple)):
            aspect_ratios = (tuple(aspect_ratios),) * len(sizes)
        if len(aspect_ratios) != len(sizes):
            raise ValueError(
                f"aspect_ratios must have one entry per level of sizes ({len(sizes)}), "
                f"got {len(aspect_ratios)}"
            )
        self.sizes = tuple(_positive_numbers(f"sizes[{i}]", s) for i, s in enumerate(sizes))
        self.aspect_ratios = tuple(
            _positive_numbers(f"aspect_ratios[{i}]", r) for i, r in enumerate(aspect_ratios)
        )
        self._cache = {}

    def __repr__(self):
        return f"AnchorGenerator(sizes={self.sizes}, aspect_ratios={self.aspect_ratios})"

    def num_anchors_per_location(self) -> list[int]:
        """``A`` of each level: ``len(sizes[l]) * len(aspect_ratios[l])``."""
        return [len(s) * len(r) for s, r in zip(self.sizes, self.aspect_ratios)]

    def generate_anchors(self, scales, aspect_ratios, *, like):
        """The cell anchors of one level, ``(len(aspect_ratios) * len(scales), 4)``, float32.

        Ratio-major order: ``(r0, s0), (r0, s1), ..., (r1, s0), ...``. Computed in float32
        (as torchvision does before casting) on ``like``'s device.
        """
        xp = array_namespace(like)
        dev = device(like)
        s = xp.asarray(scales, dtype=xp.float32, device=dev)  # (S,)
        r = xp.asarray(aspect_ratios, dtype=xp.float32, device=dev)  # (R,)
        h_ratios = xp.sqrt(r)
        w_ratios = 1 / h_ratios
        ws = xp.reshape(w_ratios[:, None] * s[None, :], (-1,))  # (R, S) -> (R*S,)
        hs = xp.reshape(h_ratios[:, None] * s[None, :], (-1,))
        return xp.round(xp.stack((-ws, -hs, ws, hs), axis=1) / 2)  # half to even

    def cell_anchors(self, *, like):
        """The cell anchors of every level, in ``like``'s dtype and on its device (cached)."""
        xp = array_namespace(like)
        key = (xp.__name__, str(device(like)), str(like.dtype))
        if key not in self._cache:
            self._cache[key] = [
                xp.astype(self.generate_anchors(s, r, like=like), like.dtype)
                for s, r in zip(self.sizes, self.aspect_ratios)
            ]
        return self._cache[key]

    def grid_anchors(self, grid_sizes, strides, *, like):
        """Anchors of each level for given grids and strides: a list of ``(H*W*A, 4)`` arrays."""
        if len(grid_sizes) != len(self.sizes) or len(strides) != len(self.sizes):
            raise ValueError(
                f"this generator has {len(self.sizes)} levels (one per entry of sizes), got "
                f"{len(grid_sizes)} feature maps"
            )
        xp = array_namespace(like)
        dev = device(like)
        out = []
        on_x = xp.asarray([1, 0, 1, 0], dtype=like.dtype, device=dev)  # which columns move with x
        on_y = xp.asarray([0, 1, 0, 1], dtype=like.dtype, device=dev)
        for (gh, gw), (sh, sw), base in zip(grid_sizes, strides, self.cell_anchors(like=like)):
            # the shifts are integers (int32 in torchvision), exact in the anchors' dtype
            shift_x = xp.astype(xp.arange(gw, dtype=xp.int32, device=dev) * sw, like.dtype)
            shift_y = xp.astype(xp.arange(gh, dtype=xp.int32, device=dev) * sh, like.dtype)
            # (W, 1, 4) + (1, A, 4) -> (W, A, 4): the anchors of one row of cells (small) ...
            row = shift_x[:, None, None] * on_x + base[None, :, :]
            # ... (1, W, A, 4) + (H, 1, 1, 4) -> (H, W, A, 4): every row, in one pass over the
            # output. Adding 0 to the other coordinate is exact, so the values are torchvision's
            # shift + base; the order is cells row-major, anchors inner.
            level = row[None, :, :, :] + shift_y[:, None, None, None] * on_y
            out.append(xp.reshape(level, (-1, 4)))
        return out

    def __call__(self, image_size, feature_maps, *, like=None, per_level=False):
        """The anchors of an image.

        Parameters
        ----------
        image_size : (int, int)
            ``(height, width)`` of the (padded) image batch the feature maps were computed from
            -- torchvision uses ``image_list.tensors.shape[-2:]``, not the unpadded sizes.
        feature_maps : list of arrays of shape (..., H_l, W_l), or of (H_l, W_l) pairs
            One per level; only their sizes matter.
        like : array, optional
            Library, device and dtype of the anchors; default: the first array in
            ``feature_maps`` (torchvision follows ``feature_maps[0]``). Must be floating.
        per_level : bool
            Return one array per level instead of their concatenation.

        Returns
        -------
        array of shape (sum_l H_l * W_l * A_l, 4), xyxy; or a list of (H_l * W_l * A_l, 4)
            torchvision returns a list with this same array once per image of the batch.
        """
        h, w = check_image_size("image_size", image_size)
        sizes, like, xp = _grid_sizes_and_like(feature_maps, like)
        strides = [(h // gh, w // gw) for gh, gw in sizes]
        levels = self.grid_anchors(sizes, strides, like=like)
        return levels if per_level else xp.concat(levels, axis=0)


def _nested(values, name):
    if not isinstance(values, (list, tuple)) or not values:
        raise ValueError(f"{name} must be a non-empty sequence, got {values!r}")
    if not isinstance(values[0], (list, tuple)):
        return tuple((v,) for v in values)
    return tuple(values)


# ----------------------------------------------------------------------------- SSD


class DefaultBoxGenerator:
    """SSD's default boxes: ``2 + 2 * len(aspect_ratios[k])`` boxes per cell of level ``k``.

    Parameters
    ----------
    aspect_ratios : list of lists of numbers
        Extra aspect ratios of each level (SSD300 uses ``[[2], [2, 3], [2, 3], [2, 3], [2], [2]]``).
    min_ratio, max_ratio : float
        ``s_min`` and ``s_max`` of the paper: with ``m`` levels and no ``scales`` given,
        ``s_k = s_min + (s_max - s_min) * k / (m - 1)`` for ``k = 0 .. m-1``, then 1.0 appended
        (one level: ``[s_min, s_max]``).
    scales : list of floats, optional
        The ``m + 1`` scales, relative to the image size, instead of the formula.
    steps : list of ints, optional
        Pixel step of each level's grid; by default the grid covers the image exactly.
    clip : bool
        Clamp the relative ``(w, h)`` of every default box to ``[0, 1]`` (the pairs, not the
        boxes: a box can still reach outside the image).

    Notes
    -----
    Per level ``k`` the relative ``(w, h)`` pairs are ``(s_k, s_k)``,
    ``(s'_k, s'_k)`` with ``s'_k = sqrt(s_k * s_{k+1})``, then for each ratio ``a``
    ``(s_k sqrt(a), s_k / sqrt(a))`` and its swap -- computed in double, stored in float32.
    Centres are ``((j + 0.5) / f_x, (i + 0.5) / f_y)`` with ``f`` the grid size (or
    ``image_size / steps[k]``), in float32, then cast to the anchors' dtype; cells row-major,
    pairs inner. Boxes in pixels: ``(c - wh / 2) * (W, H)`` and ``(c + wh / 2) * (W, H)``.

    Mirrors torchvision's ``DefaultBoxGenerator`` bit for bit. Device-pure.
    """

    def __init__(
        self,
        aspect_ratios,
        min_ratio: float = 0.15,
        max_ratio: float = 0.9,
        scales=None,
        steps=None,
        clip: bool = True,
    ):
        if not isinstance(aspect_ratios, (list, tuple)) or not aspect_ratios:
            raise ValueError(
                f"aspect_ratios must be a non-empty list of lists, got {aspect_ratios!r}"
            )
        self.aspect_ratios = [
            _ratios(f"aspect_ratios[{k}]", r) for k, r in enumerate(aspect_ratios)
        ]
        m = len(self.aspect_ratios)
        if steps is not None:
            steps = list(_positive_numbers("steps", steps, integers=True))
            if len(steps) != m:
                raise ValueError("aspect_ratios and steps should have the same length")
        self.steps = steps
        self.clip = bool(clip)
        if scales is None:
            for name, v in (("min_ratio", min_ratio), ("max_ratio", max_ratio)):
                if isinstance(v, bool) or not isinstance(v, numbers.Real):
                    raise TypeError(f"{name} must be a number, got {type(v).__name__}")
            if m > 1:
                span = max_ratio - min_ratio
                self.scales = [min_ratio + span * k / (m - 1.0) for k in range(m)] + [1.0]
            else:
                self.scales = [min_ratio, max_ratio]
        else:
            self.scales = list(_positive_numbers("scales", scales))
            if len(self.scales) < m + 1:
                raise ValueError(
                    f"scales must have len(aspect_ratios) + 1 = {m + 1} entries, got {len(self.scales)}"
                )
        self._wh_pairs = [self._pairs(k) for k in range(m)]

    def _pairs(self, k):
        """The (w, h) pairs of level k as Python floats (double precision, as torchvision)."""
        s_k = self.scales[k]
        s_prime = math.sqrt(self.scales[k] * self.scales[k + 1])
        pairs = [[s_k, s_k], [s_prime, s_prime]]
        for ar in self.aspect_ratios[k]:
            sq = math.sqrt(ar)
            w, h = self.scales[k] * sq, self.scales[k] / sq
            pairs += [[w, h], [h, w]]
        return pairs

    def __repr__(self):
        return (
            f"DefaultBoxGenerator(aspect_ratios={self.aspect_ratios}, clip={self.clip}, "
            f"scales={self.scales}, steps={self.steps})"
        )

    def num_anchors_per_location(self) -> list[int]:
        return [2 + 2 * len(r) for r in self.aspect_ratios]

    def __call__(self, image_size, feature_maps, *, like=None):
        """The default boxes of an image: ``(sum_k H_k * W_k * P_k, 4)``, xyxy in pixels.

        Arguments as for :meth:`AnchorGenerator.__call__`.
        """
        h, w = check_image_size("image_size", image_size)
        sizes, like, xp = _grid_sizes_and_like(feature_maps, like)
        if len(sizes) != len(self.aspect_ratios):
            raise ValueError(
                f"this generator has {len(self.aspect_ratios)} levels (one per entry of "
                f"aspect_ratios), got {len(sizes)} feature maps"
            )
        dev, dtype = device(like), like.dtype
        boxes = []
        for k, (fh, fw) in enumerate(sizes):
            if self.steps is not None:
                x_f, y_f = w / self.steps[k], h / self.steps[k]
            else:
                x_f, y_f = fw, fh
            # centres computed in float32 (torch's default dtype), then cast
            cx = (xp.arange(fw, dtype=xp.float32, device=dev) + 0.5) / x_f
            cy = (xp.arange(fh, dtype=xp.float32, device=dev) + 0.5) / y_f
            cy, cx = xp.meshgrid(xp.astype(cy, dtype), xp.astype(cx, dtype), indexing="ij")
            wh = xp.asarray(self._wh_pairs[k], dtype=xp.float32, device=dev)  # (P, 2)
            if self.clip:
                wh = xp.clip(wh, min=0.0, max=1.0)
            p = wh.shape[0]
            centres = xp.stack((xp.reshape(cx, (-1,)), xp.reshape(cy, (-1,))), axis=1)  # (HW, 2)
            centres = xp.reshape(
                xp.broadcast_to(centres[:, None, :], (fh * fw, p, 2)), (-1, 2)
            )  # (HW*P, 2): each cell P times
            wh = xp.reshape(
                xp.broadcast_to(xp.astype(wh, dtype)[None, :, :], (fh * fw, p, 2)), (-1, 2)
            )  # (HW*P, 2)
            boxes.append(xp.concat((centres, wh), axis=1))
        cxcywh = xp.concat(boxes, axis=0)
        scale = xp.asarray([w, h], dtype=dtype, device=dev)
        half = 0.5 * cxcywh[:, 2:]
        return xp.concat(((cxcywh[:, :2] - half) * scale, (cxcywh[:, :2] + half) * scale), axis=1)


def _ratios(name, values):
    if not isinstance(values, (list, tuple)):
        raise ValueError(f"{name} must be a list of positive numbers, got {values!r}")
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and v > 0 for v in values):
        raise ValueError(f"{name} must be a list of positive numbers, got {values!r}")
    return list(values)
