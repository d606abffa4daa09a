"""The region proposal network without the network: from scores and deltas to proposals.

The RPN head (two small convolutions, lesson 01) outputs, at every cell of every feature
level, an objectness logit and four box deltas for each of the ``A`` anchors of that cell.
Everything after that is geometry, and it is what this module does, exactly as
``torchvision.models.detection.rpn.RegionProposalNetwork`` (0.29.1) does it at test time:

1. per level, keep the ``pre_nms_top_n`` anchors with the highest logit;
2. decode their deltas (:class:`~minivision.detection.box_coder.BoxCoder` with weights 1, 1, 1, 1) and
   turn the logits into probabilities (sigmoid);
3. clip the boxes to the image, drop boxes with a side below ``min_size`` and scores below
   ``score_thresh``;
4. NMS within each level (:func:`minivision.ops.nms.batched_nms`, the level as the category);
5. keep the ``post_nms_top_n`` best.

:func:`concat_box_prediction_layers` reorders the head's ``(N, A * C, H, W)`` maps into the
anchor order of :class:`~minivision.detection.anchors.AnchorGenerator`.
"""

from __future__ import annotations

import numbers

from .._backend import device, is_array_api_obj, library_sigmoid, namespace_of, smallest_k
from .._validate import check_image_size, check_number
from ..ops.boxes import clip_boxes_to_image
from ..ops.nms import batched_nms
from .box_coder import BoxCoder

__all__ = ["rpn_proposals", "concat_box_prediction_layers", "top_k"]

_RPN_CODER = BoxCoder((1.0, 1.0, 1.0, 1.0))


# ----------------------------------------------------------------------------- head layout


def concat_box_prediction_layers(box_cls, box_regression):
    """Flatten the head's per-level maps into one row per anchor, in the anchors' order.

    Parameters
    ----------
    box_cls : list of arrays of shape (N, A_l * C, H_l, W_l)
        Per level: ``C`` scores for each of the ``A_l`` anchors of each cell (C = 1 in the RPN).
    box_regression : list of arrays of shape (N, A_l * 4, H_l, W_l)

    Returns
    -------
    box_cls : array of shape (N * sum_l H_l W_l A_l, C)
    box_regression : array of shape (N * sum_l H_l W_l A_l, 4)
        Image-major, then levels, cells row-major and anchors inner: row ``(i * W + j) * A + a``
        of a level is anchor ``a`` of cell ``(i, j)``, as :class:`AnchorGenerator` orders them.

    Notes
    -----
    Channel ``a * C + c`` of a level belongs to anchor ``a``: ``(N, A*C, H, W) -> (N, A, C, H, W)
    -> (N, H, W, A, C)``. Mirrors torchvision's function of the same name. Device-pure.
    """
    if not isinstance(box_cls, (list, tuple)) or not isinstance(box_regression, (list, tuple)):
        raise TypeError("box_cls and box_regression must be lists with one array per level")
    if len(box_cls) != len(box_regression) or not box_cls:
        raise ValueError(
            f"box_cls and box_regression must have the same, non-zero number of levels, "
            f"got {len(box_cls)} and {len(box_regression)}"
        )
    cls_out, reg_out = [], []
    for lvl, (c, r) in enumerate(zip(box_cls, box_regression)):
        xp = namespace_of(**{f"box_cls[{lvl}]": c, f"box_regression[{lvl}]": r})
        if c.ndim != 4 or r.ndim != 4 or r.shape[1] % 4 or c.shape[0] != r.shape[0]:
            raise ValueError(
                f"level {lvl}: box_cls must be (N, A*C, H, W) and box_regression (N, A*4, H, W), "
                f"got {tuple(c.shape)} and {tuple(r.shape)}"
            )
        n, ac, h, w = c.shape
        a = r.shape[1] // 4
        if a == 0 or ac % a or tuple(r.shape[2:]) != (h, w):
            raise ValueError(
                f"level {lvl}: box_cls {tuple(c.shape)} and box_regression {tuple(r.shape)} "
                "do not describe the same anchors"
            )
        cls_out.append(_permute_and_flatten(xp, c, n, a, ac // a, h, w))
        reg_out.append(_permute_and_flatten(xp, r, n, a, 4, h, w))
    cls = xp.concat(cls_out, axis=1)  # (N, sum HWA, C)
    reg = xp.concat(reg_out, axis=1)  # (N, sum HWA, 4)
    return xp.reshape(cls, (-1, cls.shape[-1])), xp.reshape(reg, (-1, 4))


def _permute_and_flatten(xp, layer, n, a, c, h, w):
    layer = xp.reshape(layer, (n, a, c, h, w))
    layer = xp.permute_dims(layer, (0, 3, 4, 1, 2))  # (N, H, W, A, C)
    return xp.reshape(layer, (n, -1, c))


# ----------------------------------------------------------------------------- top-k


def top_k(x, k: int):
    """Indices of the ``k`` largest values of a 1-D array, largest first.

    Equal values: the lower index first (a stable order), so the result is fully determined.
    NaN counts as ``+inf`` (it ranks first, tied with any ``+inf`` by index). Integer scores
    (signed or unsigned, extremes included) are ranked exactly, as ``torch.topk`` ranks them;
    bool and complex scores are a ``TypeError``.

    Notes
    -----
    The Array API has no ``topk``; this is a stable ``argsort`` of the negated values, cut at
    ``k`` -- device-pure, since ``k`` is a Python int. On NumPy a partial sort finds the
    candidates first (``argpartition``), with the same result. torchvision uses ``torch.topk``,
    whose order among equal values is unspecified (on the CPU it differs between small and
    large inputs), so only inputs without ties at the cut are guaranteed to select the same
    anchors as torchvision.
    """
    xp = namespace_of(x=x)
    if x.ndim != 1:
        raise ValueError(f"x must be 1-D, got shape {tuple(x.shape)}")
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 0 <= k <= x.shape[0]:
        raise ValueError(f"k must be an integer in [0, {x.shape[0]}], got {k!r}")
    if xp.isdtype(x.dtype, "integral"):
        # ~x = -x - 1 reverses the order without overflow (-x does not exist for the most
        # negative signed value, and wraps for unsigned ones); integers have no NaN
        return smallest_k(xp, xp.bitwise_invert(x), k)
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(f"x must have a real floating-point or integer dtype, got {x.dtype}")
    key = xp.where(xp.isnan(x), xp.asarray(-xp.inf, dtype=x.dtype, device=device(x)), -x)
    return smallest_k(xp, key, k)


# ----------------------------------------------------------------------------- proposals




def _flat(xp, name, value, per_level, width):
    """A (sum A_l[, 4]) array from an array or from a list of per-level arrays."""
    if isinstance(value, (list, tuple)):
        if len(value) != len(per_level):
            raise ValueError(
                f"{name} must have one entry per level ({len(per_level)}), got {len(value)}"
            )
        for lvl, (v, n) in enumerate(zip(value, per_level)):
            if not is_array_api_obj(v) or v.shape[0] != n:
                shape = getattr(v, "shape", type(v).__name__)
                raise ValueError(
                    f"{name}[{lvl}] must be an array with {n} rows (one per anchor), got {shape}"
                )
        value = xp.concat([xp.reshape(v, (v.shape[0], *width)) for v in value], axis=0)
    elif not is_array_api_obj(value):
        raise TypeError(f"{name} must be an array or a list of arrays, got {type(value).__name__}")
    expected = (sum(per_level), *width)
    if tuple(value.shape) != expected:
        raise ValueError(f"{name} must have shape {expected}, got {tuple(value.shape)}")
    return value




def rpn_proposals(
    anchors,
    objectness,
    deltas,
    image_size,
    pre_nms_top_n: int = 1000,
    post_nms_top_n: int = 1000,
    nms_thresh: float = 0.7,
    score_thresh: float = 0.0,
    min_size: float = 1e-3,
):
    """Proposals of one image from the RPN head's objectness logits and box deltas.

    Parameters
    ----------
    anchors : list of float arrays of shape (A_l, 4), one per feature level
        ``AnchorGenerator(...)(image_size, feature_maps, per_level=True)``.
    objectness : array of shape (sum A_l,), or a list of (A_l,) arrays
        Logits, in the anchors' order (:func:`concat_box_prediction_layers`).
    deltas : array of shape (sum A_l, 4), or a list of (A_l, 4) arrays
        ``(t_x, t_y, t_w, t_h)`` per anchor, weights (1, 1, 1, 1).
    image_size : (int, int)
        ``(height, width)`` of the image (unpadded: torchvision's ``image_sizes``); the
        proposals are clipped to it.
    pre_nms_top_n : int
        Anchors kept per level before NMS, by logit (torchvision: 2000 training, 1000 testing).
    post_nms_top_n : int
        Proposals kept after NMS, over all levels (2000 training, 1000 testing).
    nms_thresh : float
        IoU threshold of the per-level NMS (0.7).
    score_thresh : float
        Proposals with ``sigmoid(logit) >= score_thresh`` are kept (0.0 keeps all).
    min_size : float
        Proposals with a side ``< min_size`` after clipping are dropped (torchvision: 1e-3).

    Returns
    -------
    boxes : array of shape (K, 4), xyxy, clipped; K <= post_nms_top_n
    scores : array of shape (K,), probabilities in decreasing order (ties: earlier first)

    Notes
    -----
    Gives the proposals of ``RegionProposalNetwork.filter_proposals`` (after its
    ``box_coder.decode``) for one image. torchvision decodes every anchor and then selects the
    top-k; here the top-k comes first and only the selected anchors are decoded -- the same
    numbers, as decoding is element-wise, for a fraction of the work. Differences, all on
    inputs a trained RPN does not produce: ties in the logits at the top-k cut (see
    :func:`top_k`) and tied scores in the output order (torchvision re-sorts them with an
    unstable sort above 1000 boxes); decoded coordinates agree to an ulp of ``exp``.
    **Declared syncs**: the top-k is device-pure, but the filter's output size depends on the
    values (one ``nonzero``), and NMS syncs as :func:`minivision.ops.nms.batched_nms` says.
    """
    if not isinstance(anchors, (list, tuple)) or not anchors:
        raise TypeError(
            "anchors must be a non-empty list of (A_l, 4) arrays, one per level "
            "(AnchorGenerator(...)(image_size, feature_maps, per_level=True))"
        )
    xp = namespace_of(**{f"anchors[{i}]": a for i, a in enumerate(anchors)})
    for i, a in enumerate(anchors):
        if a.ndim != 2 or a.shape[1] != 4:
            raise ValueError(f"anchors[{i}] must have shape (A, 4), got {tuple(a.shape)}")
    per_level = [a.shape[0] for a in anchors]
    objectness = _flat(xp, "objectness", objectness, per_level, ())
    deltas = _flat(xp, "deltas", deltas, per_level, (4,))
    xp = namespace_of(anchors=anchors[0], objectness=objectness, deltas=deltas)
    for name, v in (("objectness", objectness), ("deltas", deltas)):
        if not xp.isdtype(v.dtype, "real floating"):
            raise TypeError(f"{name} must have a floating-point dtype, got {v.dtype}")
    pre_nms_top_n = check_number("pre_nms_top_n", pre_nms_top_n, integer=True, minimum=0)
    post_nms_top_n = check_number("post_nms_top_n", post_nms_top_n, integer=True, minimum=0)
    min_size = check_number("min_size", min_size, minimum=0)
    if isinstance(score_thresh, bool) or not isinstance(score_thresh, numbers.Real):
        raise TypeError(f"score_thresh must be a number, got {type(score_thresh).__name__}")
    h, w = check_image_size("image_size", image_size)
    dev = device(objectness)

    # 1. top-k logits per level (device-pure: every k is known from the shapes)
    picked, levels, start = [], [], 0
    for lvl, n in enumerate(per_level):
        k = min(pre_nms_top_n, n)
        picked.append(top_k(objectness[start : start + n], k) + start)
        levels.append(xp.full(k, lvl, dtype=xp.int64, device=dev))
        start += n
    idx = xp.concat(picked)  # (sum k_l,), levels in order, logits decreasing within each
    lvl = xp.concat(levels)

    # 2. decode the chosen anchors only; probabilities
    chosen = xp.take(xp.concat(list(anchors), axis=0), idx, axis=0)
    boxes = _RPN_CODER.decode(xp.take(deltas, idx, axis=0), chosen)  # (sum k_l, 4)
    scores = library_sigmoid(xp, xp.take(objectness, idx))

    # 3. clip, drop small and low-scoring boxes (the declared sync: how many are left)
    boxes = clip_boxes_to_image(boxes, (h, w))
    ws, hs = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    keep = xp.nonzero((ws >= min_size) & (hs >= min_size) & (scores >= score_thresh))[0]
    boxes, scores, lvl = xp.take(boxes, keep, axis=0), xp.take(scores, keep), xp.take(lvl, keep)

    # 4. NMS within each level; 5. the best post_nms_top_n
    kept = batched_nms(boxes, scores, lvl, nms_thresh)
    kept = kept[: min(post_nms_top_n, kept.shape[0])]
    return xp.take(boxes, kept, axis=0), xp.take(scores, kept)
