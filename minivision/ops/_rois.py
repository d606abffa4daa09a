"""What every RoI operation shares: argument checks, the ``(K, 5)`` RoI format, the batch index.

A region of interest is a row ``(batch_index, x1, y1, x2, y2)`` in the coordinates of the
*image*; ``spatial_scale`` maps it onto the feature map (1/16 for a stride-16 backbone). A list
of per-image ``(L_i, 4)`` box arrays is turned into that format by prepending the list position
as the batch index, exactly as ``torchvision.ops._utils.convert_boxes_to_roi_format`` does.

The batch index is read with C's ``(int)`` cast (truncation toward zero, so 0.9 -> 0 and
-0.5 -> 0). torchvision does not check it against the batch size (an index >= N reads memory
out of bounds) and crashes or returns garbage on NaN/inf coordinates (torchvision issues
#9272/#9273). minivision cannot check values without a host sync, so it *defines* those cases
instead: a RoI whose batch index is outside ``[0, N)`` or not finite, or whose coordinates are
not finite, is an **invalid RoI** -- it pools nothing (output 0) and receives no gradient.
"""

from __future__ import annotations

from .._backend import device, namespace_of
from .._validate import check_ints

__all__ = [
    "as_rois",
    "check_input",
    "output_hw",
    "roi_validity",
]




def check_input(xp, input, name="input"):
    """A feature map: 4-D ``(N, C, H, W)`` with a real floating-point dtype."""
    if input.ndim != 4:
        raise ValueError(f"{name} must have shape (N, C, H, W), got {tuple(input.shape)}")
    if not xp.isdtype(input.dtype, "real floating"):
        raise TypeError(f"{name} must have a real floating-point dtype, got {input.dtype}")
    return input


def output_hw(output_size) -> tuple[int, int]:
    """``output_size`` as ``(PH, PW)``: an int or a pair of positive ints."""
    return check_ints("output_size", output_size, 2, minimum=1, text="(PH, PW)", scalar=True)




def as_rois(input, boxes, name: str = "boxes"):
    """``boxes`` as one ``(K, 5)`` array of ``input``'s library, device and dtype.

    Accepts a ``(K, 5)`` array ``(batch_index, x1, y1, x2, y2)`` or a list/tuple of per-image
    ``(L_i, 4)`` arrays (image ``i`` gets batch index ``i``). Returns ``(xp, rois)``.
    """
    if isinstance(boxes, (list, tuple)):
        for i, b in enumerate(boxes):
            namespace_of(**{"input": input, f"{name}[{i}]": b})
            if b.ndim != 2 or b.shape[1] != 4:
                raise ValueError(
                    f"{name}[{i}] must have shape (L, 4) (a list holds one (L, 4) array per "
                    f"image), got {tuple(b.shape)}"
                )
            _same_dtype(input, b, f"{name}[{i}]")
        xp = namespace_of(input=input)
        dev = device(input)
        parts = [
            xp.concat((xp.full((b.shape[0], 1), i, dtype=b.dtype, device=dev), b), axis=1)
            for i, b in enumerate(boxes)
        ]
        if not parts:
            return xp, xp.zeros((0, 5), dtype=input.dtype, device=dev)
        return xp, xp.concat(parts, axis=0)
    xp = namespace_of(input=input, **{name: boxes})
    if boxes.ndim != 2 or boxes.shape[1] != 5:
        raise ValueError(
            f"{name} must have shape (K, 5) as (batch_index, x1, y1, x2, y2), or be a list of "
            f"(L, 4) arrays, got {tuple(boxes.shape)}"
        )
    _same_dtype(input, boxes, name)
    return xp, boxes


def _same_dtype(input, boxes, name):
    if boxes.dtype != input.dtype:
        raise TypeError(
            f"{name} must have the same dtype as input ({input.dtype}), got {boxes.dtype}"
        )


def roi_validity(xp, rois, n_images: int):
    """Batch index of each RoI and whether the RoI is valid (see the module notes).

    Returns ``(batch, ok)``: int64 ``(K,)`` indices (0 for invalid RoIs, so that they can be
    used to index safely) and a bool ``(K,)`` mask. Device-pure.
    """
    raw = xp.trunc(rois[:, 0])  # C's (int) cast: toward zero
    finite = xp.all(xp.isfinite(rois), axis=1)
    ok = finite & (raw >= 0) & (raw < n_images)
    batch = xp.astype(xp.where(ok, raw, xp.zeros_like(raw)), xp.int64)
    return batch, ok
