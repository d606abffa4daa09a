"""Lesson 06 exercise: anchors, box coding, matching, sampling and the RPN's proposal filter.

Fill in each function below with NumPy, then grade your work with

    minivision check 06 lessons/06_anchors.py

The checker runs every function on a battery of small cases, compares with the reference
(torchvision's semantics) and, when a case fails, tells you which classic mistake your output
matches. Work through notebooks/06_anchors_rpn.ipynb first; it builds every function step by step.

Conventions (the same as torchvision's):
* a box is (x1, y1, x2, y2) in continuous pixel coordinates; width = x2 - x1 -- no "+1";
* an aspect ratio r is height / width;
* a box's centre is (x1 + 0.5 * w, y1 + 0.5 * h);
* matching codes: -1 = below the low threshold (background), -2 = between the thresholds.

You may use your lesson 04 NMS, or ``from minivision import batched_nms``, in filter_proposals.
Do not change the input arrays.
"""

from __future__ import annotations

import math

import numpy as np


def cell_anchors(sizes: tuple, aspect_ratios: tuple) -> np.ndarray:
    """The anchors of one feature-map cell, centred on the origin.

    For each ratio r (outer loop) and each size s (inner loop): h = s * sqrt(r), w = s / sqrt(r),
    anchor = [-w, -h, w, h] / 2 rounded half to even (np.round). Returns (len(aspect_ratios) *
    len(sizes), 4). Example: size 32, ratio 2 -> [-11, -23, 11, 23].
    """
    raise NotImplementedError("lesson 06: cell_anchors")


def grid_anchors(
    sizes: tuple, aspect_ratios: tuple, image_size: tuple, grid_size: tuple
) -> np.ndarray:
    """All anchors of one feature level.

    image_size = (image_h, image_w), grid_size = (H, W) cells. The stride is
    (image_h // H, image_w // W); the cell anchors of cell (i, j) are shifted by
    (j * stride_w, i * stride_h) -- the cell's top-left corner. Returns (H * W * A, 4), where
    row (i * W + j) * A + a is anchor a of cell (i, j).
    """
    raise NotImplementedError("lesson 06: grid_anchors")


def encode_boxes(reference_boxes: np.ndarray, proposals: np.ndarray, weights: tuple) -> np.ndarray:
    """The deltas that move each proposal (anchor) onto its reference (ground-truth) box.

    reference_boxes, proposals: (N, 4), paired row by row; weights = (wx, wy, ww, wh).
    t_x = wx * (cx_ref - cx_prop) / w_prop, t_y likewise, t_w = ww * log(w_ref / w_prop),
    t_h likewise. Returns (N, 4).
    """
    raise NotImplementedError("lesson 06: encode_boxes")


def decode_boxes(
    rel_codes: np.ndarray,
    boxes: np.ndarray,
    weights: tuple,
    bbox_xform_clip: float = math.log(1000.0 / 16),
) -> np.ndarray:
    """Apply deltas to boxes: the inverse of encode_boxes.

    rel_codes: (N, 4 * K), K sets of (t_x, t_y, t_w, t_h) per box; boxes: (N, 4).
    dx = t_x / wx, ..., dw = min(t_w / ww, bbox_xform_clip), dh likewise (no lower bound);
    centre = (dx * w + cx, dy * h + cy), size = (exp(dw) * w, exp(dh) * h).
    Returns (N, 4 * K): the K boxes of each row, (x1, y1, x2, y2) one after another.
    """
    raise NotImplementedError("lesson 06: decode_boxes")


def match(
    quality: np.ndarray,
    high_threshold: float,
    low_threshold: float,
    allow_low_quality_matches: bool,
) -> np.ndarray:
    """Match each prediction (column) to a ground truth (row) of the (M, N) quality matrix.

    Best GT per prediction = argmax over the column (ties: lowest index). Best quality
    >= high_threshold: that GT's index; < low_threshold: -1; in between: -2. With
    allow_low_quality_matches, every prediction whose quality equals some GT's best quality
    (its row maximum, ties included) gets its own best GT instead. Returns int64 (N,).
    """
    raise NotImplementedError("lesson 06: match")


def balanced_sample(
    labels: np.ndarray, priority: np.ndarray, batch_size_per_image: int, positive_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Choose a training batch: at most a fraction of positives, the rest negatives.

    labels: (N,), >= 1 positive, 0 negative, -1 ignored. priority: (N,), lower is taken first
    (ties: lower index). num_pos = min(int(batch_size_per_image * positive_fraction),
    #positives); num_neg = min(batch_size_per_image - num_pos, #negatives). Returns two bool
    masks (pos, neg) of shape (N,).
    """
    raise NotImplementedError("lesson 06: balanced_sample")


def filter_proposals(
    anchors: list,
    objectness: np.ndarray,
    deltas: np.ndarray,
    image_size: tuple,
    pre_nms_top_n: int,
    post_nms_top_n: int,
    nms_thresh: float,
    score_thresh: float,
    min_size: float,
) -> np.ndarray:
    """The region proposal network's proposals for one image.

    anchors: one (A_l, 4) array per level; objectness: (sum A_l,) logits and deltas:
    (sum A_l, 4), in the anchors' order. Per level keep the pre_nms_top_n highest logits
    (ties: lower index first); decode their deltas with weights (1, 1, 1, 1); scores =
    sigmoid(logits); clip the boxes to image_size = (height, width); drop boxes with a side
    < min_size or a score < score_thresh; NMS at nms_thresh within each level; keep the
    post_nms_top_n best. Returns (K, 5): x1, y1, x2, y2, score, by decreasing score.
    """
    raise NotImplementedError("lesson 06: filter_proposals")
