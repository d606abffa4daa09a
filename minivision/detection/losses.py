"""The multi-task losses of the R-CNN family, forward and backward: L = L_cls + L_box.

Exactly as torchvision 0.29.1 computes them: :func:`fastrcnn_loss` (``roi_heads.fastrcnn_loss``)
and :func:`rpn_loss` (``RegionProposalNetwork.compute_loss``), each with a hand-written backward;
:func:`fastrcnn_loss_and_grad` returns the Fast R-CNN losses and gradients from one pass. The
mask loss lives in :mod:`minivision.detection.masks`. All device-pure.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from .._backend import namespace_of, scatter_add
from ..nn._loss_core import (
    as_0d,
    check_float,
    check_real,
    concat_parts,
    sigmoid,
    smooth_l1,
    smooth_l1_grad,
)
from ..nn.losses import (
    binary_cross_entropy_with_logits,
    smooth_l1_loss,
    smooth_l1_loss_backward,
)

__all__ = [
    "fastrcnn_loss",
    "fastrcnn_loss_backward",
    "fastrcnn_loss_and_grad",
    "rpn_loss",
    "rpn_loss_backward",
]


class _FastRCNNSaved(NamedTuple):
    """What the Fast R-CNN backward needs from the forward (the tensors autograd would save)."""

    valid: object  # (R,) bool: label != -100, the rows of the classification mean
    bad: object  # (R,) bool: label outside [0, K] (NaN rows)
    flat: object  # (R,) int64: i (K+1) + label_i, the flat index of each row's own class
    e: object  # (R, K+1): exp(logits - row max)
    s: object  # (R,): row sums of e
    n: object  # 0-d: number of kept rows
    d: object  # (R, 4): own-class box regression - target (0 for negatives)


def _fastrcnn_inputs(class_logits, box_regression, labels, regression_targets):
    """Concatenate per-image lists and check shapes and dtypes (metadata only)."""
    if isinstance(labels, (list, tuple)) or isinstance(regression_targets, (list, tuple)):
        xp = namespace_of(class_logits=class_logits)
        labels = concat_parts(xp, labels, "labels")
        regression_targets = concat_parts(xp, regression_targets, "regression_targets")
    xp = namespace_of(
        class_logits=class_logits,
        box_regression=box_regression,
        labels=labels,
        regression_targets=regression_targets,
    )
    check_float(xp, class_logits, "class_logits")
    check_float(xp, box_regression, "box_regression")  # a prediction: ints have no gradient
    check_real(xp, regression_targets, "regression_targets")
    if class_logits.ndim != 2:
        raise ValueError(f"class_logits must have shape (R, K+1), got {tuple(class_logits.shape)}")
    r, k1 = class_logits.shape
    if tuple(box_regression.shape) != (r, 4 * k1):
        raise ValueError(
            f"box_regression must have shape ({r}, {4 * k1}) = (R, 4(K+1)), "
            f"got {tuple(box_regression.shape)}"
        )
    if tuple(labels.shape) != (r,) or not xp.isdtype(labels.dtype, "integral"):
        raise ValueError(f"labels must be integers of shape ({r},), got {tuple(labels.shape)}")
    if tuple(regression_targets.shape) != (r, 4):
        raise ValueError(
            f"regression_targets must have shape ({r}, 4), got {tuple(regression_targets.shape)}"
        )
    return xp, labels, regression_targets


def _fastrcnn_forward(xp, class_logits, box_regression, labels, regression_targets, losses=True):
    """The intermediates both gradients need (what autograd saves), and the two losses.

    Each proposal needs one entry of its logits row, ``class_logits[i, label_i]``, and one
    4-vector of its regression row, ``box_regression[i, 4 label_i : 4 label_i + 4]``; both are
    read with the flat index ``i (K+1) + label_i`` into a reshaped view (one ``take`` each: no
    one-hot mask, no boolean indexing). ``losses=False`` (the backward pass) skips the two sums.
    """
    r, k1 = class_logits.shape
    lab = xp.astype(labels, xp.int64)
    valid = lab != -100  # torch's default ignore_index: such rows leave the classification mean
    pos = lab > 0  # background (0) proposals have no box loss
    # Labels outside [0, K] (other than -100) cannot be reported without reading them (torch
    # raises): their rows get NaN loss and NaN gradients, and clamping keeps the index in range.
    bad = ((lab < 0) & valid) | (lab >= k1)
    t = xp.minimum(xp.maximum(lab, 0), k1 - 1)
    flat = xp.arange(r, dtype=xp.int64, device=lab.device) * k1 + t  # (R,)
    # softmax with the row maximum subtracted (the log-sum-exp trick): p = e / s
    shifted = class_logits - xp.max(class_logits, axis=1, keepdims=True)  # (R, K+1)
    e = xp.exp(shifted)
    s = xp.sum(e, axis=1)  # (R,), >= 1
    n = xp.sum(xp.astype(valid, class_logits.dtype))  # kept proposals
    # box_regression[i, label_i] - target_i, zero for negatives (no loss, and no NaN leaking in)
    picked = xp.take(xp.reshape(box_regression, (r * k1, 4)), flat, axis=0)  # (R, 4)
    d = xp.where(pos[:, None], picked - xp.astype(regression_targets, picked.dtype), 0.0)
    d = xp.where(bad[:, None], math.nan, d)
    saved = _FastRCNNSaved(valid, bad, flat, e, s, n, d)
    if not losses:
        return None, None, saved
    # -log p_{i, label_i} = log s_i - shifted_{i, label_i}
    nll = xp.log(s) - xp.take(xp.reshape(shifted, (-1,)), flat)  # (R,)
    nll = xp.where(bad, math.nan, nll)
    cls = xp.sum(xp.where(valid, nll, 0.0)) / n  # mean over kept proposals; 0/0 = NaN if none
    box_sum = xp.sum(smooth_l1(xp, xp.abs(d), 1 / 9))
    box = box_sum / r if r else box_sum * math.nan  # divided by ALL sampled proposals
    return as_0d(xp, cls), as_0d(xp, box), saved


def _fastrcnn_grads(xp, saved, box_shape, grad_cls, grad_box):
    """``(dL/d class_logits, dL/d box_regression)`` from the saved forward intermediates."""
    valid, bad, flat, e, s, n, d = saved
    r, k1 = e.shape
    gc = 1.0 if grad_cls is None else grad_cls
    gb = 1.0 if grad_box is None else grad_box
    # cross-entropy: coef_i (p_i - onehot(label_i)), coef_i = grad_cls / n on kept rows, else 0
    # (NaN on rows with an out-of-range label); p_i = e_i / s_i, and the one-hot part is a
    # scatter of -coef_i to the flat index
    coef = xp.where(valid, gc / xp.maximum(n, 1.0), 0.0)  # (R,)
    coef = xp.where(bad, math.nan, coef)
    g = xp.reshape(e * (coef / s)[:, None], (-1,))
    g_cls = xp.reshape(scatter_add(g, flat, -coef), (r, k1))
    # smooth L1 (beta = 1/9): the 4 gradients of row i go to entries 4 flat_i + j, j = 0..3, of
    # the flattened (R, 4(K+1)) gradient, i.e. to the 4 columns of its class (d = 0: negatives)
    g_d = smooth_l1_grad(xp, d, 1 / 9) * (gb / max(r, 1))  # (R, 4)
    quad = xp.arange(4, dtype=flat.dtype, device=flat.device)
    cols = xp.reshape(flat[:, None] * 4 + quad[None, :], (-1,))  # (4R,)
    zeros = xp.zeros(r * k1 * 4, dtype=g_d.dtype, device=g_d.device)
    g_reg = xp.reshape(scatter_add(zeros, cols, xp.reshape(g_d, (-1,))), box_shape)
    return g_cls, g_reg


def fastrcnn_loss(class_logits, box_regression, labels, regression_targets):
    """Fast R-CNN multi-task loss, exactly torchvision's ``roi_heads.fastrcnn_loss``.

    ``cls = cross_entropy(class_logits, labels)`` (mean over all sampled proposals) and
    ``box = sum_{i: label_i > 0} smooth_l1(box_regression[i, label_i] - target_i, beta=1/9) / R``:
    the box loss is divided by **all** R sampled proposals, not by the positives, so no positives
    gives a box loss of 0. Only the regression of the proposal's own class is penalised.

    Parameters
    ----------
    class_logits : (R, K+1) float.  box_regression : (R, 4(K+1)) float: an integer array is a
        ``TypeError`` (torchvision computes the loss of the integer values; a prediction that
        is differentiated must be floating-point, and the targets would be cast to its dtype).
    labels : (R,) int in [0, K], or a list of per-image arrays (concatenated, as torchvision
        does). A label of -100 (torch's ``ignore_index``) leaves the proposal out of the
        classification loss, as in torchvision; other values outside [0, K] cannot be checked
        without reading the data (torch raises): they make both losses and their rows of the
        gradients NaN.
    regression_targets : (R, 4), or a list of per-image arrays.

    Returns
    -------
    (classification_loss, box_loss) : two scalars. R = 0 gives NaN for both (0/0), as torch.
    Device-pure: the picked entries are read with a flat index and the positives selected with a
    mask, not by boolean indexing.
    """
    xp, labels, targets = _fastrcnn_inputs(class_logits, box_regression, labels, regression_targets)
    cls, box, _ = _fastrcnn_forward(xp, class_logits, box_regression, labels, targets)
    return cls, box


def fastrcnn_loss_backward(
    class_logits, box_regression, labels, regression_targets, grad_cls=None, grad_box=None
):
    """Gradients of :func:`fastrcnn_loss`: ``(dL/d class_logits, dL/d box_regression)``.

    ``grad_cls`` / ``grad_box`` are the upstream gradients of the two losses (default 1). The
    class gradient of row i is ``(softmax(x_i) - onehot(label_i)) * grad_cls / N`` (N kept
    proposals: R unless some labels are -100); the box gradient is non-zero only in the 4
    columns of each positive proposal's class. When both losses and gradients are wanted,
    :func:`fastrcnn_loss_and_grad` computes the shared softmax once.
    """
    xp, labels, targets = _fastrcnn_inputs(class_logits, box_regression, labels, regression_targets)
    _, _, saved = _fastrcnn_forward(xp, class_logits, box_regression, labels, targets, losses=False)
    return _fastrcnn_grads(xp, saved, box_regression.shape, grad_cls, grad_box)


def fastrcnn_loss_and_grad(
    class_logits, box_regression, labels, regression_targets, grad_cls=None, grad_box=None
):
    """:func:`fastrcnn_loss` and :func:`fastrcnn_loss_backward` in one call, sharing their work.

    Returns ``((classification_loss, box_loss), (dL/d class_logits, dL/d box_regression))``,
    equal to the two separate calls. Why a fused function: the backward pass needs what the
    forward pass computed -- the softmax of each row (``exp(x - max)`` and its sum) and each
    proposal's picked class entry and regression offsets -- exactly the tensors torch autograd
    saves during the forward pass. Two separate calls compute them twice (the row max, the
    exponentials and the row sums dominate the cost); a training step wants both, so this is the
    function a training loop calls. Device-pure.
    """
    xp, labels, targets = _fastrcnn_inputs(class_logits, box_regression, labels, regression_targets)
    cls, box, saved = _fastrcnn_forward(xp, class_logits, box_regression, labels, targets)
    grads = _fastrcnn_grads(xp, saved, box_regression.shape, grad_cls, grad_box)
    return (cls, box), grads


class _RPNParts(NamedTuple):
    """The RPN loss inputs, checked and flattened, and the masks both passes use."""

    xp: object
    obj: object  # (A,) objectness logits
    pos: object  # (A,) bool: sampled positives
    sampled: object  # (A,) float 0/1: sampled positives and negatives
    n: object  # 0-d: number of sampled anchors
    deltas: object  # (A, 4): predicted deltas, zero off the positives
    targets: object  # (A, 4): regression targets, zero off the positives


def _rpn_parts(objectness, pred_bbox_deltas, labels, regression_targets):
    xp = namespace_of(objectness=objectness, pred_bbox_deltas=pred_bbox_deltas)
    labels = concat_parts(xp, labels, "labels")
    regression_targets = concat_parts(xp, regression_targets, "regression_targets")
    namespace_of(objectness=objectness, labels=labels, regression_targets=regression_targets)
    check_float(xp, objectness, "objectness")
    for name, arr in (
        ("pred_bbox_deltas", pred_bbox_deltas),
        ("labels", labels),
        ("regression_targets", regression_targets),
    ):
        check_real(xp, arr, name)
    a = objectness.shape[0] if objectness.ndim else 0
    if objectness.ndim not in (1, 2) or (objectness.ndim == 2 and objectness.shape[1] != 1):
        raise ValueError(f"objectness must have shape (A,) or (A, 1), got {objectness.shape}")
    if tuple(pred_bbox_deltas.shape) != (a, 4):
        raise ValueError(
            f"pred_bbox_deltas must have shape ({a}, 4), got {tuple(pred_bbox_deltas.shape)}"
        )
    if tuple(labels.shape) != (a,):
        raise ValueError(f"labels must have shape ({a},), got {tuple(labels.shape)}")
    if tuple(regression_targets.shape) != (a, 4):
        raise ValueError(
            f"regression_targets must have shape ({a}, 4), got {tuple(regression_targets.shape)}"
        )
    obj = xp.reshape(objectness, (a,))
    lab = xp.astype(labels, obj.dtype)
    pos = lab == 1
    sampled = xp.astype((lab == 1) | (lab == 0), obj.dtype)
    n = xp.sum(sampled)
    deltas = xp.where(pos[:, None], pred_bbox_deltas, xp.zeros_like(pred_bbox_deltas))
    targets = xp.where(
        pos[:, None], xp.astype(regression_targets, deltas.dtype), xp.zeros_like(deltas)
    )
    return _RPNParts(xp, obj, pos, sampled, n, deltas, targets)


def rpn_loss(objectness, pred_bbox_deltas, labels, regression_targets):
    """RPN loss given sampled anchors (torchvision's ``RegionProposalNetwork.compute_loss``).

    ``labels`` marks each anchor 1 (sampled positive), 0 (sampled negative) or -1 (not
    sampled: ignored), i.e. the output of matching + ``BalancedPositiveNegativeSampler``.

    * objectness loss: BCE-with-logits, mean over the sampled anchors (positives + negatives);
    * box loss: smooth L1 (beta = 1/9, sum) over the sampled positives, divided by the number of
      **sampled** anchors (positives + negatives) -- not by the positives.

    Lists of per-image arrays are concatenated. Returns ``(loss_objectness, loss_rpn_box_reg)``.
    No sampled anchor gives NaN for both (0/0), as torch. Device-pure.
    """
    p = _rpn_parts(objectness, pred_bbox_deltas, labels, regression_targets)
    xp, obj, pos, sampled, n = p.xp, p.obj, p.pos, p.sampled, p.n
    y = xp.where(pos, xp.ones_like(obj), xp.zeros_like(obj))
    bce = binary_cross_entropy_with_logits(obj, y, reduction="none")
    loss_obj = xp.sum(xp.where(sampled > 0, bce, xp.zeros_like(bce))) / n
    loss_box = smooth_l1_loss(p.deltas, p.targets, "sum", 1 / 9) / n
    return as_0d(xp, loss_obj), as_0d(xp, loss_box)


def rpn_loss_backward(
    objectness, pred_bbox_deltas, labels, regression_targets, grad_obj=None, grad_box=None
):
    """Gradients of :func:`rpn_loss`: ``(dL/d objectness, dL/d pred_bbox_deltas)``."""
    p = _rpn_parts(objectness, pred_bbox_deltas, labels, regression_targets)
    xp, obj, pos, sampled, n = p.xp, p.obj, p.pos, p.sampled, p.n
    go = 1.0 if grad_obj is None else grad_obj
    gb = 1.0 if grad_box is None else grad_box
    y = xp.where(pos, xp.ones_like(obj), xp.zeros_like(obj))
    g_obj = (sigmoid(xp, obj) - y) * (go / n)
    g_obj = xp.where(sampled > 0, g_obj, xp.zeros_like(g_obj))  # 0, not 0 * inf, if none sampled
    g_obj = xp.reshape(g_obj, objectness.shape)
    g_box = smooth_l1_loss_backward(p.deltas, p.targets, "sum", 1 / 9) * (gb / n)
    return g_obj, xp.where(pos[:, None], g_box, xp.zeros_like(g_box))
