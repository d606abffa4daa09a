"""Mask R-CNN's mask branch outside the network: training targets, the loss, and pasting back.

* :func:`project_masks_on_boxes` -- the m x m training target of each positive proposal: the
  ground-truth mask of its matched object, cropped and resampled to the proposal with
  :func:`minivision.roi_align` (soft values in [0, 1]; nothing is binarised);
* :func:`maskrcnn_loss` / :func:`maskrcnn_loss_backward` -- per-pixel binary cross-entropy on
  the logits of the proposal's own class only (no competition between classes, He et al. 2017);
* :func:`paste_masks_in_image` -- the inverse trip at test time: each m x m mask is resized to
  its (integer) box and written into a full-image canvas.

All mirror torchvision 0.29.1 (``models.detection.roi_heads``) and are device-pure.
"""

from __future__ import annotations

import math

from .._backend import namespace_of
from ..nn._loss_core import as_0d, check_float, check_real, log_sigmoid, sigmoid
from ..ops import roi_align

__all__ = [
    "project_masks_on_boxes",
    "maskrcnn_loss",
    "maskrcnn_loss_backward",
    "paste_masks_in_image",
]


# ----------------------------------------------------------------------------- targets and loss


def project_masks_on_boxes(gt_masks, boxes, matched_idxs, M: int):
    """Crop each proposal's matched ground-truth mask to the proposal, resampled to M x M.

    torchvision's ``project_masks_on_boxes``: ``roi_align`` of the masks (as floats, one
    "image" per object) with RoIs ``(matched_idx, x1, y1, x2, y2)``, output ``(M, M)``,
    ``spatial_scale = 1``, adaptive sampling, ``aligned=False``. The result is a **soft** target
    (a bin half inside the object gets ~0.5).

    Parameters
    ----------
    gt_masks : (G, H, W) array (bool, integer or float) -- the image's object masks.
    boxes : (P, 4) float -- the positive proposals.
    matched_idxs : (P,) int -- index into ``gt_masks`` of each proposal's object. A value
        outside ``[0, G)`` cannot be checked without reading the data (torchvision returns a
        zero target): that proposal's target is NaN, so a loss built on it is NaN, not a
        plausible number. ``G = 0`` with ``P > 0`` (nothing to match) is a ``ValueError``.
    M : int -- side of the target (the mask head's output width, 28 in Mask R-CNN).

    Returns
    -------
    (P, M, M) array of boxes' dtype.
    """
    xp = namespace_of(gt_masks=gt_masks, boxes=boxes, matched_idxs=matched_idxs)
    if gt_masks.ndim != 3:
        raise ValueError(f"gt_masks must have shape (G, H, W), got {tuple(gt_masks.shape)}")
    if boxes.ndim != 2 or boxes.shape[1] != 4 or not xp.isdtype(boxes.dtype, "real floating"):
        raise ValueError(
            f"boxes must be float of shape (P, 4), got {boxes.dtype} {tuple(boxes.shape)}"
        )
    if tuple(matched_idxs.shape) != (boxes.shape[0],):
        raise ValueError(
            f"matched_idxs must have shape ({boxes.shape[0]},), got {tuple(matched_idxs.shape)}"
        )
    if not xp.isdtype(matched_idxs.dtype, "integral"):
        raise TypeError(f"matched_idxs must have an integer dtype, got {matched_idxs.dtype}")
    g = gt_masks.shape[0]
    if g == 0 and boxes.shape[0] > 0:
        raise ValueError(
            f"gt_masks has no masks (shape {tuple(gt_masks.shape)}) but matched_idxs has "
            f"{boxes.shape[0]} entries to match"
        )
    bad = (matched_idxs < 0) | (matched_idxs >= g)  # (P,): no such ground-truth mask
    idx = xp.clip(matched_idxs, 0, max(g - 1, 0))
    rois = xp.concat([xp.astype(idx, boxes.dtype)[:, None], boxes], axis=1)
    masks = xp.astype(gt_masks, boxes.dtype)[:, None, :, :]
    out = roi_align(masks, rois, (M, M), 1.0)[:, 0, :, :]  # (P, M, M)
    return xp.where(bad[:, None, None], math.nan, out)


def _mask_parts(mask_logits, proposals, gt_masks, gt_labels, mask_matched_idxs):
    xp = namespace_of(mask_logits=mask_logits)
    check_float(xp, mask_logits, "mask_logits")
    for name, parts in (("proposals", proposals), ("gt_labels", gt_labels)):
        for i, a in enumerate(parts):
            check_real(xp, a, f"{name}[{i}]")
    if mask_logits.ndim != 4 or mask_logits.shape[2] != mask_logits.shape[3]:
        raise ValueError(
            f"mask_logits must have shape (P, K, M, M), got {tuple(mask_logits.shape)}"
        )
    n = len(proposals)
    if not (len(gt_masks) == len(gt_labels) == len(mask_matched_idxs) == n):
        raise ValueError(
            "proposals, gt_masks, gt_labels and mask_matched_idxs must be lists with one entry "
            f"per image, got lengths {n}, {len(gt_masks)}, {len(gt_labels)}, {len(mask_matched_idxs)}"
        )
    for i, (g, lab) in enumerate(zip(gt_masks, gt_labels)):
        if lab.ndim != 1 or lab.shape[0] != g.shape[0]:
            raise ValueError(
                f"gt_labels[{i}] must have one label per mask of gt_masks[{i}] "
                f"({g.shape[0]},), got {tuple(lab.shape)}"
            )
    m = mask_logits.shape[-1]
    p, k = mask_logits.shape[:2]
    if n == 0 or sum(b.shape[0] for b in proposals) == 0:
        return xp, None, None
    # targets first: they check gt_masks / matched_idxs (an out-of-range index -> NaN target)
    targets = xp.concat(
        [
            project_masks_on_boxes(g, b, i, m)
            for g, b, i in zip(gt_masks, proposals, mask_matched_idxs)
        ]
    )
    labels = xp.concat(
        [
            xp.take(lab, xp.clip(idx, 0, lab.shape[0] - 1), axis=0)
            for lab, idx in zip(gt_labels, mask_matched_idxs)
            if idx.shape[0]
        ]
    )
    if tuple(targets.shape[:1]) != (p,):
        raise ValueError(
            f"mask_logits must have one row per proposal ({targets.shape[0]}), got {p}"
        )
    onehot = labels[:, None] == xp.arange(k, dtype=labels.dtype, device=labels.device)[None, :]
    sel = xp.astype(onehot, mask_logits.dtype)[:, :, None, None]  # (P, K, 1, 1)
    picked = xp.sum(mask_logits * sel, axis=1)  # (P, M, M): mask_logits[i, label_i]
    # a label outside [0, K) has no channel (torchvision raises; reading it would sync): NaN
    bad = (labels < 0) | (labels >= k)  # (P,)
    picked = xp.where(bad[:, None, None], math.nan, picked)
    return xp, (sel, picked), xp.astype(targets, mask_logits.dtype)


def maskrcnn_loss(mask_logits, proposals, gt_masks, gt_labels, mask_matched_idxs):
    """Mask R-CNN's mask loss, exactly torchvision's ``roi_heads.maskrcnn_loss``.

    For positive proposal ``i`` with matched object ``j``: target ``t_i`` =
    :func:`project_masks_on_boxes` of ``gt_masks[j]``, logits ``mask_logits[i, gt_labels[j]]``
    (the channel of the object's class; the other K - 1 channels get no loss), and
    ``L = mean over i, pixels of BCE-with-logits(logits, t_i)``. No positives gives 0.

    A ground-truth label outside ``[0, K)`` or a matched index outside ``[0, G_i)`` cannot be
    checked without reading the data (torchvision raises an ``IndexError`` for the label): the
    loss is NaN, and :func:`maskrcnn_loss_backward` is NaN in that proposal's row (every
    channel) and exact in the others. ``gt_labels[i]`` of another length than ``gt_masks[i]``
    is a ``ValueError``.

    Parameters (lists have one entry per image)
    ----------
    mask_logits : (P, K, M, M) float -- mask head output for the P positive proposals.
    proposals : list of (P_i, 4) float.  gt_masks : list of (G_i, H, W).
    gt_labels : list of (G_i,) int.  mask_matched_idxs : list of (P_i,) int.
    """
    xp, parts, targets = _mask_parts(mask_logits, proposals, gt_masks, gt_labels, mask_matched_idxs)
    if parts is None:
        return as_0d(xp, xp.sum(mask_logits) * 0)
    x = parts[1]
    loss = (1 - targets) * x - log_sigmoid(xp, x)
    return as_0d(xp, xp.sum(loss) / math.prod(loss.shape))


def maskrcnn_loss_backward(
    mask_logits, proposals, gt_masks, gt_labels, mask_matched_idxs, grad_output=None
):
    """dL/d(mask_logits) of :func:`maskrcnn_loss`: ``(sigmoid(x) - t) / (P M M)`` in the channel
    of each proposal's class, 0 in every other channel."""
    xp, parts, targets = _mask_parts(mask_logits, proposals, gt_masks, gt_labels, mask_matched_idxs)
    if parts is None:
        return xp.zeros_like(mask_logits)
    sel, x = parts
    g = (sigmoid(xp, x) - targets) * (
        (1.0 if grad_output is None else grad_output) / math.prod(x.shape)
    )
    return sel * g[:, None, :, :]


# ----------------------------------------------------------------------------- pasting


def _pad(xp, masks, p):
    """Zero-pad (R, M, M) by p on all four sides."""
    if p == 0:
        return masks
    r, mh, mw = masks.shape
    zc = xp.zeros((r, mh, p), dtype=masks.dtype, device=masks.device)
    masks = xp.concat([zc, masks, zc], axis=2)
    zr = xp.zeros((r, p, mw + 2 * p), dtype=masks.dtype, device=masks.device)
    return xp.concat([zr, masks, zr], axis=1)


def _axis_sampling(xp, lo, hi, size_in, n_out, dtype):
    """Bilinear sampling along one axis for every output pixel 0..n_out-1 of every box.

    ``lo``/``hi`` (R,) int: the box's first and last (inclusive) pixel. The mask is resized to
    ``n = max(hi - lo + 1, 1)`` pixels with ``F.interpolate(bilinear, align_corners=False)``:
    source ``max((d + 0.5) * size_in / n - 0.5, 0)`` for destination ``d = pixel - lo``.
    Returns (i0, i1, w0, w1, inside), each (R, n_out).
    """
    n = xp.maximum(hi - lo + 1, xp.ones_like(lo))
    pix = xp.arange(n_out, dtype=lo.dtype, device=lo.device)[None, :]
    d = pix - lo[:, None]
    inside = (d >= 0) & (pix <= hi[:, None])
    scale = xp.asarray(float(size_in), dtype=dtype, device=lo.device) / xp.astype(n, dtype)
    src = (xp.astype(d, dtype) + 0.5) * scale[:, None] - 0.5
    src = xp.clip(src, min=0.0)
    # pixels outside the box get clipped indices (their values are masked out afterwards)
    i0 = xp.clip(xp.astype(xp.floor(src), lo.dtype), max=size_in - 1)
    w1 = src - xp.astype(i0, dtype)
    i1 = xp.minimum(i0 + 1, xp.full_like(i0, size_in - 1))
    return i0, i1, 1 - w1, w1, inside


def paste_masks_in_image(masks, boxes, img_shape, padding: int = 1):
    """Paste m x m mask probabilities into full-image canvases, as torchvision does.

    Steps (torchvision-semantics §13): zero-pad every mask by ``padding`` (so the bilinear
    resize fades out at the border) and grow its box by ``(M + 2p)/M`` about the centre;
    convert the box to int64 **truncating toward zero** (``-16.8 -> -16``, not floor); resize
    the padded mask to ``w = max(x2 - x1 + 1, 1)`` by ``h`` pixels (bilinear,
    ``align_corners=False``); write it at rows ``y1..y2`` and columns ``x1..x2`` (inclusive),
    clipped to the image. No threshold is applied: the result holds probabilities.

    Here every output pixel computes its own source coordinates instead of resizing each mask
    separately, so there is no loop over masks and no data-dependent shape (device-pure).

    Parameters
    ----------
    masks : (R, 1, M, M) float.  boxes : (R, 4) float, xyxy image coordinates.
    img_shape : (H, W).  padding : int >= 0.

    Returns
    -------
    (R, 1, H, W) of masks' dtype; R = 0 gives ``(0, 1, H, W)``. A box that lies entirely
    outside the image, or is inverted after rounding, pastes nothing (torchvision raises a
    shape error for some of these; we return zeros).
    """
    xp = namespace_of(masks=masks, boxes=boxes)
    if masks.ndim != 4 or masks.shape[1] != 1 or not xp.isdtype(masks.dtype, "real floating"):
        raise ValueError(
            f"masks must be float of shape (R, 1, M, M), got {masks.dtype} {tuple(masks.shape)}"
        )
    r = masks.shape[0]
    if tuple(boxes.shape) != (r, 4):
        raise ValueError(f"boxes must have shape ({r}, 4), got {tuple(boxes.shape)}")
    if len(img_shape) != 2 or any(int(s) < 0 for s in img_shape):
        raise ValueError(f"img_shape must be (H, W) of non-negative ints, got {img_shape!r}")
    if int(padding) != padding or padding < 0:
        raise ValueError(f"padding must be an integer >= 0, got {padding!r}")
    h_img, w_img = int(img_shape[0]), int(img_shape[1])
    m = masks.shape[-1]
    padded = _pad(xp, masks[:, 0, :, :], int(padding))  # (R, Mp, Mp)
    mp = m + 2 * int(padding)
    scale = float(mp) / m
    # expand_boxes, in torchvision's order
    bx = xp.astype(boxes, masks.dtype) if not xp.isdtype(boxes.dtype, "real floating") else boxes
    w_half = (bx[:, 2] - bx[:, 0]) * 0.5 * scale
    h_half = (bx[:, 3] - bx[:, 1]) * 0.5 * scale
    x_c = (bx[:, 2] + bx[:, 0]) * 0.5
    y_c = (bx[:, 3] + bx[:, 1]) * 0.5
    to_int = lambda v: xp.astype(xp.trunc(v), xp.int64)  # noqa: E731 (.to(int64) truncates)
    x1, x2 = to_int(x_c - w_half), to_int(x_c + w_half)
    y1, y2 = to_int(y_c - h_half), to_int(y_c + h_half)
    dt = masks.dtype
    ix0, ix1, wx0, wx1, in_x = _axis_sampling(xp, x1, x2, mp, w_img, dt)  # (R, W)
    iy0, iy1, wy0, wy1, in_y = _axis_sampling(xp, y1, y2, mp, h_img, dt)  # (R, H)

    def cols(idx):  # padded[r, :, idx[r, X]] -> (R, Mp, W)
        return xp.take_along_axis(padded, xp.broadcast_to(idx[:, None, :], (r, mp, w_img)), axis=2)

    rows_x = cols(ix0) * wx0[:, None, :] + cols(ix1) * wx1[:, None, :]  # x-interpolated rows

    def rows(idx):  # rows_x[r, idx[r, Y], :] -> (R, H, W)
        return xp.take_along_axis(
            rows_x, xp.broadcast_to(idx[:, :, None], (r, h_img, w_img)), axis=1
        )

    out = rows(iy0) * wy0[:, :, None] + rows(iy1) * wy1[:, :, None]
    inside = in_y[:, :, None] & in_x[:, None, :]
    out = xp.where(inside, out, xp.zeros_like(out))
    return out[:, None, :, :]
