"""Synthetic scenes of flat-coloured shapes: a detection and segmentation dataset with no download.

The scenes follow matterport's Mask R-CNN ``shapes`` sample (squares, circles and triangles on a
plain background, generated on the fly) and add what a small detector should cope with: several
sizes (from ~8 pixels up), optional textured backgrounds and pixel noise, and occlusion -- shapes
drawn later cover earlier ones, and the targets describe only what is *visible*.

Every item is computed from its own random generator ``numpy.random.default_rng([seed, i])``,
so item ``i`` is the same whatever was generated before it, in any order and on any machine.
The pixels use nothing but correctly rounded arithmetic on uniform draws (no ``sin``/``exp``,
no ziggurat normals, no floating-point sums whose order a SIMD loop may change), so the bytes
do not depend on the CPU or its maths library; ``tests/data/test_shapes.py`` pins them.

Host island (DESIGN.md §2): the output is NumPy arrays (images are host data).
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Sequence

import numpy as np

from ._targets import boxes_from_masks, check_count, rasterise_polygon

__all__ = ["Shapes", "SHAPE_KINDS"]

# Unit outlines (x, y) in the unit square, y pointing down; scaled to each shape's box.
_POLYGONS = {
    "square": ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)),
    "rectangle": ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)),
    "triangle": ((0.5, 0.0), (1.0, 1.0), (0.0, 1.0)),
    "diamond": ((0.5, 0.0), (1.0, 0.5), (0.5, 1.0), (0.0, 0.5)),
    "hexagon": ((0.5, 0.0), (1.0, 0.25), (1.0, 0.75), (0.5, 1.0), (0.0, 0.75), (0.0, 0.25)),
    "star": (
        (0.5, 0.0), (0.6236, 0.3739), (1.0, 0.382), (0.7, 0.6211), (0.809, 1.0),
        (0.5, 0.7739), (0.191, 1.0), (0.3, 0.6211), (0.0, 0.382), (0.3764, 0.3739),
    ),
}  # fmt: skip
_ELLIPSES = ("circle", "ellipse")
_ELONGATED = ("rectangle", "ellipse")  # box of aspect 0.45-0.7, the others are square
SHAPE_KINDS = ("square", "circle", "triangle", "rectangle", "ellipse", "diamond", "hexagon", "star")
_BACKGROUNDS = ("plain", "texture")

_MIN_SIZE = 4  # below this the kinds are no longer told apart
_TEXTURE_AMPLITUDE = 40.0  # grey levels of the coarse octave; the fine one has half
_COARSE, _FINE = 4, 16  # grid cells of the two octaves of the texture
_BACKGROUND_CONTRAST = 100  # an object's colour differs from the background's base colour
_OBJECT_CONTRAST = 48  # ... and from every earlier object's, by this much in some channel


def _ints(rng, low: int, high: int, size=None):
    """Uniform integers in [low, high] from uniform doubles (a stable, portable recipe)."""
    return low + np.floor(rng.random(size) * (high - low + 1)).astype(np.int64)


class Shapes(Sequence):
    """A seeded, index-addressable dataset of synthetic scenes with instance targets.

    Parameters
    ----------
    n : int
        Number of scenes, ``len(ds)``. Items are made when asked for (``ds[i]``, iteration).
    image_size : int or (int, int)
        Square side, or ``(height, width)``, in pixels.
    classes : sequence of str
        Shape kinds, a subset of :data:`SHAPE_KINDS`, in the order of their labels 1..K.
    seed : int
        Non-negative dataset seed; item ``i`` draws from ``default_rng([seed, i])``.
    min_objects, max_objects : int
        Objects drawn per scene, uniform in ``[min_objects, max_objects]``, before occluded
        ones are dropped. ``max_objects=1`` gives one whole object per image, the setting of
        lesson 09's classify-and-localise network (``Shapes(n, image_size=64, max_objects=1)``).
    min_size, max_size : int
        Side of each shape's box in pixels, uniform in ``[min_size, max_size]`` (rectangles and
        ellipses: the long side; the short one is 0.45-0.7 of it). ``max_size=None`` means half
        the shorter image side (at least ``min_size``).
    background : {"plain", "texture"}
        A flat random colour, or that colour with smooth random blotches (two octaves of value
        noise, +-60 grey levels) -- distracting edges that are not objects.
    noise : float
        Standard deviation, in grey levels, of zero-mean pixel noise added to the whole image
        (uniformly distributed, so that it needs only exact arithmetic). 0 = none.
    min_visible : int
        An object that the ones drawn over it hide completely, or leave with fewer visible
        pixels than this, is dropped, and its pixels are not drawn. (An unoccluded shape is
        always kept, so every scene has at least one object: the last one drawn.)

    Items
    -----
    ``ds[i]`` is a dict, objects in drawing order (back to front):

    * ``image``: (H, W, 3) uint8;
    * ``boxes``: (N, 4) float32 xyxy, the tight box of the object's *visible* pixels in
      continuous coordinates (x2 = last column + 1, as COCO's ``toBbox``; torchvision's
      ``masks_to_boxes`` gives the last column itself);
    * ``labels``: (N,) int64 in 1..K, ``ds.classes[label - 1]`` names it;
    * ``masks``: (N, H, W) bool, the visible pixels (disjoint, none empty);
    * ``semantic``: (H, W) int64 class map, 0 = background;
    * ``image_id``: ``i``.

    Shapes are rasterised without anti-aliasing, pixel by pixel: a pixel belongs to a shape
    when its centre lies inside the outline, so masks and painted pixels are the same set.
    """

    def __init__(
        self,
        n: int,
        image_size=128,
        classes: Sequence[str] = ("square", "circle", "triangle"),
        seed: int = 0,
        *,
        min_objects: int = 1,
        max_objects: int = 4,
        min_size: int = 8,
        max_size: int | None = None,
        background: str = "plain",
        noise: float = 0.0,
        min_visible: int = 16,
    ):
        self.n = check_count("n", n, minimum=0)
        self.seed = check_count("seed", seed, minimum=0)
        self.height, self.width = _image_size(image_size)
        self.classes = _classes(classes)
        self.min_objects = check_count("min_objects", min_objects, minimum=1)
        self.max_objects = check_count("max_objects", max_objects, minimum=1)
        if self.max_objects < self.min_objects:
            raise ValueError(
                f"max_objects must be >= min_objects ({min_objects}), got {max_objects}"
            )
        self.min_size = check_count("min_size", min_size, minimum=_MIN_SIZE)
        side = min(self.height, self.width)
        if side < self.min_size:
            raise ValueError(
                f"image_size must be at least min_size ({self.min_size}) on each side, "
                f"got {(self.height, self.width)}"
            )
        if max_size is None:
            max_size = max(self.min_size, side // 2)
        self.max_size = check_count("max_size", max_size, minimum=self.min_size)
        if self.max_size > side:
            raise ValueError(f"max_size must fit in the image (<= {side}), got {max_size}")
        if background not in _BACKGROUNDS:
            raise ValueError(f"background must be one of {_BACKGROUNDS}, got {background!r}")
        self.background = background
        if not isinstance(noise, numbers.Real) or not math.isfinite(noise) or noise < 0:
            raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
        self.noise = float(noise)
        self.min_visible = check_count("min_visible", min_visible, minimum=1)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        if isinstance(i, bool) or not isinstance(i, numbers.Integral):
            raise TypeError(f"Shapes indices must be integers, got {type(i).__name__}")
        if not -self.n <= i < self.n:
            raise IndexError(f"index {i} is out of range for {self.n} scenes")
        i = int(i) % self.n
        return self._scene(np.random.default_rng([self.seed, i]), i)

    def __iter__(self):
        for i in range(self.n):
            yield self[i]

    def __repr__(self) -> str:
        return (
            f"Shapes(n={self.n}, image_size={(self.height, self.width)}, classes={self.classes}, "
            f"seed={self.seed}, objects={self.min_objects}-{self.max_objects}, "
            f"sizes={self.min_size}-{self.max_size}, background={self.background!r}, "
            f"noise={self.noise})"
        )

    # ------------------------------------------------------------------------- one scene

    def _scene(self, rng: np.random.Generator, image_id: int) -> dict:
        h, w = self.height, self.width
        background, base = self._background(rng)  # (H, W, 3) float32, (3,) base colour
        k = int(_ints(rng, self.min_objects, self.max_objects))

        kinds, colours, windows = [], [], []  # windows: (y0, x0, (bh, bw) bool shape mask)
        for _ in range(k):
            kind = int(_ints(rng, 0, len(self.classes) - 1))
            windows.append(self._shape(rng, self.classes[kind]))
            colours.append(self._colour(rng, base, colours))
            kinds.append(kind)

        owner = _paint(windows, (h, w))  # (H, W) int: index of the visible object, -1 = none
        counts = np.bincount(owner[owner >= 0], minlength=k)  # visible pixels per object
        whole = np.asarray([m.sum() for _, _, m in windows])
        hidden = (counts == 0) | ((counts < self.min_visible) & (counts < whole))
        keep = np.flatnonzero(~hidden)
        if len(keep) < k:  # drop the (nearly) hidden ones; the others only gain pixels
            owner = _paint([windows[j] for j in keep], (h, w))

        labels = np.asarray(kinds, dtype=np.int64)[keep] + 1  # (N,) in 1..K
        masks = owner[None] == np.arange(len(keep), dtype=owner.dtype)[:, None, None]  # (N, H, W)
        palette = np.asarray(colours, dtype=np.float32).reshape(-1, 3)[keep]  # (N, 3)
        image = np.array(background)  # (H, W, 3) float32, a copy
        semantic = np.zeros((h, w), dtype=np.int64)
        for j, mask in enumerate(masks):  # masks are disjoint: the order does not matter
            image[mask] = palette[j]
            semantic[mask] = labels[j]
        if self.noise > 0:
            half_width = np.float32(self.noise * math.sqrt(3.0))  # uniform noise of this std
            image += (rng.random((h, w, 3), dtype=np.float32) - np.float32(0.5)) * (2 * half_width)
        np.rint(image, out=image)
        np.clip(image, 0, 255, out=image)
        return {
            "image": image.astype(np.uint8),
            "boxes": boxes_from_masks(masks),
            "labels": labels,
            "masks": masks,
            "semantic": semantic,
            "image_id": image_id,
        }

    def _background(self, rng):
        """(H, W, 3) float32 a random flat colour, plus value noise for "texture"; the colour."""
        h, w = self.height, self.width
        base = _ints(rng, 0, 255, 3).astype(np.float32)
        if self.background == "plain":
            return np.broadcast_to(base, (h, w, 3)), base
        # Two octaves of value noise: a coarse grid of random knots, carried onto the fine
        # grid by the same bilinear interpolation, plus the fine grid's own knots.
        coarse = rng.random((_COARSE + 1, _COARSE + 1, 3)) * 2.0 - 1.0  # (5, 5, 3) in [-1, 1)
        fine = rng.random((_FINE + 1, _FINE + 1, 3)) * 2.0 - 1.0  # (17, 17, 3)
        at_knots = np.arange(_FINE + 1) * (_COARSE / _FINE)  # fine knots in coarse-knot units
        knots = _TEXTURE_AMPLITUDE * (_interpolate(coarse, at_knots, at_knots) + 0.5 * fine)
        py = (np.arange(h) + 0.5) * (_FINE / h)  # pixel centres in fine-knot units
        px = (np.arange(w) + 0.5) * (_FINE / w)
        return base + _interpolate(knots.astype(np.float32), py, px), base

    def _shape(self, rng, kind: str):
        """One shape at a random place: (y0, x0, (bh, bw) bool mask of its box)."""
        size = int(_ints(rng, self.min_size, self.max_size))
        bh = bw = size
        if kind in _ELONGATED:
            short = max(_MIN_SIZE // 2, int(np.rint(size * (0.45 + 0.25 * rng.random()))))
            if rng.random() < 0.5:
                bh = short
            else:
                bw = short
        y0 = int(_ints(rng, 0, self.height - bh))
        x0 = int(_ints(rng, 0, self.width - bw))
        return y0, x0, _rasterise(kind, bh, bw)

    def _colour(self, rng, base, earlier) -> np.ndarray:
        """A colour far from the background's and not too close to earlier objects'."""
        for _ in range(100):
            colour = _ints(rng, 0, 255, 3).astype(np.float64)
            if np.abs(colour - base).max() >= _BACKGROUND_CONTRAST and all(
                np.abs(colour - c).max() >= _OBJECT_CONTRAST for c in earlier
            ):
                return colour
        return colour  # a rare crowded palette: accept the last draw


@functools.lru_cache(maxsize=4096)
def _rasterise(kind: str, bh: int, bw: int) -> np.ndarray:
    """(bh, bw) bool, read-only: the pixels of a ``kind`` filling a bh x bw box, by pixel centre."""
    if kind in _ELLIPSES:
        yc = (np.arange(bh) + 0.5) / bh * 2.0 - 1.0  # pixel centres in [-1, 1]
        xc = (np.arange(bw) + 0.5) / bw * 2.0 - 1.0
        mask = yc[:, None] ** 2 + xc[None, :] ** 2 < 1.0
    else:
        # Shrunk by a hair about the box centre, so that no pixel centre falls exactly on an
        # edge (a diamond's edges pass through half-integer points): symmetric outlines give
        # symmetric masks whatever the scan-line's tie rule.
        unit = 0.5 + (np.asarray(_POLYGONS[kind]) - 0.5) * (1.0 - 1e-9)  # (V, 2) unit (x, y)
        mask = rasterise_polygon(unit * (bw, bh), bh, bw)
    mask.flags.writeable = False
    return mask


def _paint(windows, shape) -> np.ndarray:
    """(H, W) int32 map of the top-most object at each pixel (-1 = background)."""
    owner = np.full(shape, -1, dtype=np.int32)
    for j, (y0, x0, mask) in enumerate(windows):
        bh, bw = mask.shape
        owner[y0 : y0 + bh, x0 : x0 + bw][mask] = j
    return owner


def _interpolate(knots: np.ndarray, py: np.ndarray, px: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of a (G+1, G+1, 3) knot grid at rows ``py`` x columns ``px``.

    Positions are in knot units (0 = first knot, G = last). Only products and sums of pairs,
    so the result is the same bytes on every machine.
    """
    cells = knots.shape[0] - 1
    iy = np.minimum(np.floor(py).astype(np.int64), cells - 1)
    ix = np.minimum(np.floor(px).astype(np.int64), cells - 1)
    fy = (py - iy).astype(knots.dtype)[:, None, None]  # (h, 1, 1)
    fx = (px - ix).astype(knots.dtype)[None, :, None]  # (1, w, 1)
    cols = knots[:, ix] + (knots[:, ix + 1] - knots[:, ix]) * fx  # (G+1, w, 3), small
    top = cols[iy]  # (h, w, 3): gathers along the first axis copy whole rows
    return top + (cols[iy + 1] - top) * fy


def _image_size(image_size) -> tuple[int, int]:
    if isinstance(image_size, numbers.Integral) and not isinstance(image_size, bool):
        h = w = image_size
    elif isinstance(image_size, Sequence) and len(image_size) == 2:
        h, w = image_size
    else:
        raise TypeError(f"image_size must be an int or (height, width), got {image_size!r}")
    for v in (h, w):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"image_size must be an int or (height, width), got {image_size!r}")
    if h < _MIN_SIZE or w < _MIN_SIZE:
        raise ValueError(f"image_size must be at least {_MIN_SIZE} pixels, got {image_size!r}")
    return int(h), int(w)


def _classes(classes) -> tuple[str, ...]:
    if isinstance(classes, str) or not isinstance(classes, Sequence):
        raise TypeError(f"classes must be a sequence of shape names, got {classes!r}")
    classes = tuple(classes)
    if not classes:
        raise ValueError("classes must name at least one shape kind")
    unknown = [c for c in classes if c not in SHAPE_KINDS]
    if unknown:
        raise ValueError(f"classes must be among {SHAPE_KINDS}, got unknown {unknown}")
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct, got {classes}")
    return classes
