"""Box coding: how a detector says "move this anchor onto that object" with four numbers.

A network does not predict box corners directly. It predicts *deltas* relative to a reference
box (an anchor, or a proposal in the second stage) that are invariant to the box's position and
scale (R-CNN, Girshick et al. 2014, appendix C; Faster R-CNN eq. 2). For a reference box with
centre ``(x_a, y_a)`` and size ``(w_a, h_a)`` and a target box ``(x, y, w, h)``::

    t_x = w_x * (x - x_a) / w_a        t_w = w_w * log(w / w_a)
    t_y = w_y * (y - y_a) / h_a        t_h = w_h * log(h / h_a)

``(w_x, w_y, w_w, w_h)`` are the ``weights`` (1, 1, 1, 1 in the RPN; 10, 10, 5, 5 in the Fast
R-CNN head, which scales the small second-stage deltas up to about unit variance). Decoding
inverts the formulas, with ``t_w`` and ``t_h`` clamped from above so that ``exp`` cannot blow a box
up by more than ``1000 / 16 = 62.5`` times.

:class:`BoxCoder` mirrors ``torchvision.models.detection._utils.BoxCoder`` (0.29.1): the same
operation order (a centre is ``x1 + 0.5 * w``, not ``(x1 + x2) / 2``), the same dtypes, no
epsilon. Everything here is device-pure.
"""

from __future__ import annotations

import math
import numbers

from .._backend import device, is_array_api_obj, namespace_of

__all__ = ["BoxCoder"]


def _check_float_boxes(xp, boxes, name, *, floating=True):
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name} must have shape (N, 4), got {tuple(boxes.shape)}")
    kinds = ("real floating",) if floating else ("real floating", "integral")
    if not any(xp.isdtype(boxes.dtype, k) for k in kinds):
        what = "a floating-point" if floating else "a real"
        raise TypeError(f"{name} must have {what} dtype, got {boxes.dtype}")


def _concat_list(name, boxes):
    """A list/tuple of per-image (L_i, 4) arrays -> one (sum L_i, 4) array and the L_i."""
    if not boxes:
        raise ValueError(f"{name} must hold at least one (L_i, 4) array")
    for i, b in enumerate(boxes):
        if not is_array_api_obj(b):
            raise TypeError(f"{name}[{i}] must be an array, got {type(b).__name__}")
    xp = namespace_of(**{f"{name}[{i}]": b for i, b in enumerate(boxes)})
    return xp.concat(list(boxes), axis=0), [b.shape[0] for b in boxes]


def _parts(xp, boxes):
    """Width, height and centre of each box, torchvision's way: centre = x1 + 0.5 * width."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return w, h, boxes[:, 0] + 0.5 * w, boxes[:, 1] + 0.5 * h


class BoxCoder:
    """Encode boxes as deltas relative to reference boxes, and decode deltas back into boxes.

    Parameters
    ----------
    weights : (float, float, float, float)
        ``(w_x, w_y, w_w, w_h)``; (1, 1, 1, 1) in the RPN, (10, 10, 5, 5) in Fast R-CNN. Each
        must be positive and finite (``ValueError``): decoding divides by them.
    bbox_xform_clip : float
        Upper clamp of the decoded ``t_w / w_w`` and ``t_h / w_h`` (default ``log(1000 / 16)``).
        There is no lower clamp: a very negative ``t_w`` gives a width near 0.

    Notes
    -----
    No "+1" in widths (the legacy maskrcnn-benchmark coder had one) and no epsilon: a
    zero-width reference box encodes to ``inf``/``NaN`` as in torchvision.
    """

    def __init__(self, weights, bbox_xform_clip: float = math.log(1000.0 / 16)):
        try:
            weights = tuple(weights)
        except TypeError:
            weights = None
        if (
            weights is None
            or len(weights) != 4
            or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in weights)
        ):
            raise ValueError(f"weights must be four numbers (wx, wy, ww, wh), got {weights!r}")
        if not all(0 < float(v) < math.inf for v in weights):
            # decoding divides by the weights: 0 gives inf, a negative weight flips the deltas
            raise ValueError(f"weights must be four positive finite numbers, got {weights!r}")
        if isinstance(bbox_xform_clip, bool) or not isinstance(bbox_xform_clip, numbers.Real):
            raise TypeError(
                f"bbox_xform_clip must be a number, got {type(bbox_xform_clip).__name__}"
            )
        self.weights = weights
        self.bbox_xform_clip = float(bbox_xform_clip)

    def __repr__(self):
        return f"BoxCoder(weights={self.weights}, bbox_xform_clip={self.bbox_xform_clip})"

    # ------------------------------------------------------------------------- encode

    def encode(self, reference_boxes, proposals):
        """The deltas that move each proposal onto its reference (ground-truth) box.

        Parameters
        ----------
        reference_boxes : float array of shape (N, 4), or a list of (L_i, 4) arrays
            The targets (matched ground truth) -- torchvision's confusing name, kept.
        proposals : float array of shape (N, 4), or a list of (L_i, 4) arrays
            The boxes the deltas are relative to (anchors, proposals). Pairs row by row with
            ``reference_boxes``.

        Returns
        -------
        array of shape (N, 4) ``(t_x, t_y, t_w, t_h)``; for lists, a tuple of (L_i, 4) arrays
            (torchvision's ``encode``; arrays give its ``encode_single``). The dtype is the
            promotion of the two inputs; the weights are first converted to the reference
            boxes' dtype, as in torchvision.

        Notes
        -----
        Integer boxes are refused (torchvision would convert the weights to integers).
        Device-pure.
        """
        if isinstance(reference_boxes, (list, tuple)) or isinstance(proposals, (list, tuple)):
            if not (
                isinstance(reference_boxes, (list, tuple)) and isinstance(proposals, (list, tuple))
            ):
                raise TypeError("reference_boxes and proposals must both be arrays or both lists")
            ref, counts = _concat_list("reference_boxes", reference_boxes)
            props, _ = _concat_list("proposals", proposals)
            targets = self.encode(ref, props)
            starts = [sum(counts[:i]) for i in range(len(counts))]
            return tuple(targets[s : s + n, :] for s, n in zip(starts, counts))
        xp = namespace_of(reference_boxes=reference_boxes, proposals=proposals)
        _check_float_boxes(xp, reference_boxes, "reference_boxes")
        _check_float_boxes(xp, proposals, "proposals")
        if reference_boxes.shape[0] != proposals.shape[0]:
            raise ValueError(
                f"reference_boxes and proposals must pair row by row, got "
                f"{reference_boxes.shape[0]} and {proposals.shape[0]} rows"
            )
        w = xp.asarray(self.weights, dtype=reference_boxes.dtype, device=device(reference_boxes))
        ex_w, ex_h, ex_cx, ex_cy = _parts(xp, proposals)
        gt_w, gt_h, gt_cx, gt_cy = _parts(xp, reference_boxes)
        dx = w[0] * (gt_cx - ex_cx) / ex_w
        dy = w[1] * (gt_cy - ex_cy) / ex_h
        dw = w[2] * xp.log(gt_w / ex_w)
        dh = w[3] * xp.log(gt_h / ex_h)
        return xp.stack((dx, dy, dw, dh), axis=1)

    # ------------------------------------------------------------------------- decode

    def _deltas(self, xp, rel_codes):
        """``(dx, dy, dw, dh)``, each (N, K), weights divided out, dw and dh clamped."""
        wx, wy, ww, wh = self.weights
        dx = rel_codes[:, 0::4] / wx
        dy = rel_codes[:, 1::4] / wy
        raw_w = rel_codes[:, 2::4] / ww
        raw_h = rel_codes[:, 3::4] / wh
        clip = self.bbox_xform_clip
        return dx, dy, raw_w, raw_h, xp.clip(raw_w, max=clip), xp.clip(raw_h, max=clip)

    def decode(self, rel_codes, boxes):
        """Apply deltas to reference boxes.

        Parameters
        ----------
        rel_codes : float array of shape (N, 4 * K)
            ``K`` sets of ``(t_x, t_y, t_w, t_h)`` per box (one per class in Fast R-CNN).
        boxes : array of shape (N, 4), or a list of (L_i, 4) arrays with sum L_i = N
            The reference boxes; cast to ``rel_codes``' dtype.

        Returns
        -------
        array of shape (N, 4 * K) for an array ``boxes`` (torchvision's ``decode_single``),
        (N, K, 4) for a list (its ``decode``; with N = 0 the shape stays (0, 4 * K)).
            ``x1 = cx + t_x / w_x * w - 0.5 * exp(min(t_w / w_w, clip)) * w``, and so on.

        Notes
        -----
        Device-pure. ``exp`` may differ from torch's by an ulp, so results agree with
        torchvision to a few ulp of the coordinates (bitwise on torch tensors).
        """
        as_list = isinstance(boxes, (list, tuple))
        if as_list:
            boxes, _ = _concat_list("boxes", boxes)
        xp = namespace_of(rel_codes=rel_codes, boxes=boxes)
        self._check_decode(xp, rel_codes, boxes)
        boxes = xp.astype(boxes, rel_codes.dtype)
        w, h, cx, cy = _parts(xp, boxes)
        dx, dy, _, _, dw, dh = self._deltas(xp, rel_codes)
        pcx = dx * w[:, None] + cx[:, None]  # (N, K)
        pcy = dy * h[:, None] + cy[:, None]
        half_w = 0.5 * (xp.exp(dw) * w[:, None])
        half_h = 0.5 * (xp.exp(dh) * h[:, None])
        out = xp.stack((pcx - half_w, pcy - half_h, pcx + half_w, pcy + half_h), axis=2)
        n = out.shape[0]
        if as_list and n > 0:
            return out  # (N, K, 4)
        return xp.reshape(out, (n, rel_codes.shape[1]))  # (N, K, 4) -> (N, 4K), interleaved

    def _check_decode(self, xp, rel_codes, boxes):
        _check_float_boxes(xp, boxes, "boxes", floating=False)
        if rel_codes.ndim != 2 or rel_codes.shape[1] % 4 != 0:
            raise ValueError(f"rel_codes must have shape (N, 4 * K), got {tuple(rel_codes.shape)}")
        if not xp.isdtype(rel_codes.dtype, "real floating"):
            raise TypeError(f"rel_codes must have a floating-point dtype, got {rel_codes.dtype}")
        if rel_codes.shape[0] != boxes.shape[0]:
            raise ValueError(
                f"rel_codes and boxes must pair row by row, got {rel_codes.shape[0]} and "
                f"{boxes.shape[0]} rows"
            )

    def decode_backward(self, grad_output, rel_codes, boxes):
        """Gradients of :meth:`decode` (array form) with respect to ``rel_codes`` and ``boxes``.

        Parameters
        ----------
        grad_output : array of shape (N, 4 * K)
            Gradient of the loss with respect to the decoded boxes.
        rel_codes : float array of shape (N, 4 * K)
        boxes : array of shape (N, 4)

        Returns
        -------
        grad_rel_codes : array of shape (N, 4 * K), ``rel_codes``' dtype
        grad_boxes : array of shape (N, 4), or None for integer ``boxes``
            Summed over the ``K`` sets. (torchvision detaches the reference boxes -- anchors
            and proposals are constants -- but the gradient exists and is given.)

        Notes
        -----
        With ``c = (cx, cy)``, ``s = (w, h)`` and ``e = exp(min(t_w / w_w, clip))``, each output
        corner is ``cx + (t_x / w_x) w -+ 0.5 e w``. So, with ``g1..g4`` the gradients of
        ``x1, y1, x2, y2``::

            dL/dt_x = (g1 + g3) * w / w_x
            dL/dt_w = 0.5 * (g3 - g1) * e * w / w_w    (0 where t_w / w_w >= clip)

        and the same in y. The clamp passes the gradient only where ``t_w / w_w < clip``:
        exactly at the clamp value ``torch.clamp``'s gradient is already 0, and so is ours.
        Device-pure.
        """
        xp = namespace_of(grad_output=grad_output, rel_codes=rel_codes, boxes=boxes)
        self._check_decode(xp, rel_codes, boxes)
        if tuple(grad_output.shape) != tuple(rel_codes.shape):
            raise ValueError(
                f"grad_output must have the shape of rel_codes {tuple(rel_codes.shape)}, "
                f"got {tuple(grad_output.shape)}"
            )
        box_dtype = boxes.dtype
        boxes = xp.astype(boxes, rel_codes.dtype)
        g = xp.astype(grad_output, rel_codes.dtype)
        w, h, _, _ = _parts(xp, boxes)
        w, h = w[:, None], h[:, None]  # (N, 1)
        wx, wy, ww, wh = self.weights
        clip = self.bbox_xform_clip
        dx, dy, raw_w, raw_h, dw, dh = self._deltas(xp, rel_codes)
        ew, eh = xp.exp(dw), xp.exp(dh)
        g1, g2, g3, g4 = g[:, 0::4], g[:, 1::4], g[:, 2::4], g[:, 3::4]  # (N, K) each
        g_cx, g_cy = g1 + g3, g2 + g4  # dL/d(predicted centre)
        g_pw, g_ph = 0.5 * (g3 - g1), 0.5 * (g4 - g2)  # dL/d(predicted width, height)
        zero = xp.zeros_like(g_pw)
        grad_codes = xp.stack(
            (
                g_cx * w / wx,
                g_cy * h / wy,
                xp.where(raw_w < clip, g_pw * ew * w, zero) / ww,
                xp.where(raw_h < clip, g_ph * eh * h, zero) / wh,
            ),
            axis=2,
        )  # (N, K, 4)
        grad_codes = xp.reshape(grad_codes, tuple(rel_codes.shape))
        if not xp.isdtype(box_dtype, "real floating"):
            return grad_codes, None
        # centre = x1 + 0.5 * w, width = x2 - x1; predicted centre = dx * w + centre,
        # predicted width = e * w
        g_w = xp.sum(g_cx * (dx + 0.5) + g_pw * ew, axis=1)  # dL/dw, (N,)
        g_h = xp.sum(g_cy * (dy + 0.5) + g_ph * eh, axis=1)
        g_x1 = xp.sum(g_cx, axis=1) - g_w
        g_y1 = xp.sum(g_cy, axis=1) - g_h
        grad_boxes = xp.stack((g_x1, g_y1, g_w, g_h), axis=1)
        return grad_codes, xp.astype(grad_boxes, box_dtype)
