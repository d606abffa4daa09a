"""What the segmenters share: the seed stream and the conv-BN-ReLU block.

Seeding follows :class:`minivision.detection.localizer.Localizer`: a network built from the
integer ``seed`` gives its ``i``-th layer (in data-flow order) the seed ``1000 * seed + i``, so
the same seed builds the same weights and no two layers draw the same numbers.
"""

from __future__ import annotations

from ..nn import BatchNorm2d, Conv2d, ReLU, Sequential


def seed_stream(seed):
    """Per-layer ``rng`` arguments: ``1000 * seed, 1000 * seed + 1, ...`` for an integer seed;
    a ``numpy.random.Generator`` (or None) is handed to every layer as it is."""
    if isinstance(seed, int) and not isinstance(seed, bool):
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        return iter(range(1000 * seed, 1000 * seed + 1000))
    return iter(lambda: seed, object())  # the same generator, forever


def conv_bn_relu(c_in: int, c_out: int, seeds, *, kernel_size: int = 3, dilation: int = 1):
    """``Conv2d(c_in, c_out, k, padding="same" size, dilation, bias=False) -> BatchNorm2d -> ReLU``.

    The padding ``dilation * (k - 1) / 2`` keeps the map's size, so every stride in a network
    comes from its pooling layers. Keys: ``0.weight``, ``1.weight``, ``1.bias``, ``1.running_*``.
    """
    pad = dilation * (kernel_size - 1) // 2
    return Sequential(
        Conv2d(c_in, c_out, kernel_size, padding=pad, dilation=dilation, bias=False,
               rng=next(seeds)),  # fmt: skip
        BatchNorm2d(c_out),
        ReLU(),
    )


def widths_tuple(widths, count: int | None = None, name: str = "widths") -> tuple:
    """``widths`` as a tuple of positive ints (of length ``count`` when given)."""
    try:
        out = tuple(int(w) for w in widths)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of channel counts, got {widths!r}") from None
    if not out or min(out) < 1 or (count is not None and len(out) != count):
        what = f"{count} positive channel counts" if count else "positive channel counts"
        raise ValueError(f"{name} must be {what}, got {widths!r}")
    return out
