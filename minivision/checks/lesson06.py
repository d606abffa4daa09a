"""Lesson 06 battery: anchors, box coding, matching, sampling and the RPN's proposal filter.

The expected values come from minivision.detection.anchors / box_coder / matcher / rpn (pinned to
torchvision by the tests). The mistakes are the classic ones: width and height swapped in the
aspect ratio, anchors centred in their cell instead of on its corner, a float stride, the log of
the wrong ratio, forgetting the clamp (or clamping both ways), ">" at the matching threshold,
promoted anchors assigned to the wrong object, a sampler that back-fills the wrong way, and an
RPN filter that ranks or suppresses across levels.
"""

from __future__ import annotations

import math

import numpy as np

from ..detection.anchors import AnchorGenerator
from ..detection.box_coder import BoxCoder
from ..detection.matcher import Matcher
from ..detection.matcher import balanced_sample as ref_balanced_sample
from ..detection.rpn import rpn_proposals
from ..ops.nms import batched_nms, nms
from ._core import Battery, Case, FunctionBattery, Mistake

CLIP = math.log(1000.0 / 16)

# ----------------------------------------------------------------------------- references


def ref_cell_anchors(sizes, aspect_ratios):
    return AnchorGenerator((tuple(sizes),), (tuple(aspect_ratios),)).generate_anchors(
        sizes, aspect_ratios, like=np.zeros(1)
    )


def ref_grid_anchors(sizes, aspect_ratios, image_size, grid_size):
    gen = AnchorGenerator((tuple(sizes),), (tuple(aspect_ratios),))
    return gen(image_size, [grid_size], like=np.zeros(1))


def ref_encode_boxes(reference_boxes, proposals, weights):
    return BoxCoder(weights).encode(reference_boxes, proposals)


def ref_decode_boxes(rel_codes, boxes, weights, bbox_xform_clip=CLIP):
    return BoxCoder(weights, bbox_xform_clip).decode(rel_codes, boxes)


def ref_match(quality, high_threshold, low_threshold, allow_low_quality_matches):
    return Matcher(high_threshold, low_threshold, allow_low_quality_matches)(quality)


def ref_sample(labels, priority, batch_size_per_image, positive_fraction):
    return ref_balanced_sample(labels, priority, batch_size_per_image, positive_fraction)


def ref_filter_proposals(anchors, objectness, deltas, image_size, pre, post, nms_t, score_t, min_s):
    boxes, scores = rpn_proposals(
        anchors, objectness, deltas, image_size, pre, post, nms_t, score_t, min_s
    )
    return np.concatenate([boxes, scores[:, None]], axis=1)


# ----------------------------------------------------------------------------- inputs

RNG = np.random.default_rng(6)


def _boxes(n, lo=0.0, hi=200.0, size=(4.0, 80.0)):
    b = RNG.uniform(lo, hi, (n, 4))
    b[:, 2:] = b[:, :2] + RNG.uniform(*size, (n, 2))
    return np.round(b, 2)


GT = _boxes(8)
ANCHORS = _boxes(8)
BY_HAND_GT = np.array([[10.0, 20.0, 50.0, 40.0]])
BY_HAND_ANCHOR = np.array([[0.0, 10.0, 32.0, 42.0]])
CODES_K2 = np.round(RNG.normal(0, 1.5, (8, 8)), 3)
CODES_EXTREME = np.array([[0.1, -0.2, 6.0, -9.0], [0.0, 0.3, -8.0, 5.0]])

# 3 ground truths x 6 predictions: values exactly at both thresholds, a tie across GTs,
Q_THRESHOLDS = np.array(
    [
        [0.9, 0.7, 0.69, 0.3, 0.1, 0.0],
        [0.2, 0.7, 0.5, 0.29, 0.1, 0.0],
        [0.0, 0.1, 0.6, 0.3, 0.25, 0.0],
    ]
)
# GT 1's best predictions are 0 and 2 (tied at 0.4); prediction 2's own best GT is 0 (0.45)
Q_PROMOTE = np.array([[0.1, 0.95, 0.45, 0.0, 0.05], [0.4, 0.3, 0.4, 0.0, 0.2]])
# GT 1 overlaps nothing: every prediction is promoted to its best GT
Q_NO_OVERLAP = np.array([[0.2, 0.8, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0]])

LABELS = np.array([1, 0, 0, 1, -1, 0, 2, 0, 0, 1, 0, -1, 0, 1, 0, 0, 0, 1, 0, 0])
PRIORITY = RNG.permutation(len(LABELS))
FEW_POS = np.array([0, 0, 1, 0, -1, 0, 0, 0, 0, 0])
FEW_NEG = np.array([1, 1, -1, 0, 1, 1, -1, 1, 1, 1])


def _rpn_inputs(seed, padded, grids):
    rng = np.random.default_rng(seed)
    anchors = AnchorGenerator(((16,), (32,), (64,)), ((0.5, 1.0, 2.0),) * 3)(
        padded, grids, like=np.zeros(1), per_level=True
    )
    n = sum(len(a) for a in anchors)
    logits = np.round(rng.normal(0, 2, n), 4)
    logits[len(anchors[0]) :] += 1.5  # later levels score higher: a global top-k is lopsided
    deltas = np.round(rng.normal(0, 0.4, (n, 4)), 4)
    return anchors, logits, deltas


RPN_A = _rpn_inputs(1, (64, 96), [(8, 12), (4, 6), (2, 3)])
RPN_B = _rpn_inputs(2, (80, 80), [(10, 10), (5, 5), (3, 3)])

# ----------------------------------------------------------------------------- mistakes


def _cells(swap=False, sizes_outer=False, rounding="even", halve=True):
    def cell_anchors(sizes, aspect_ratios):
        r = np.sqrt(np.asarray(aspect_ratios, dtype=np.float32))
        h_ratio, w_ratio = (1 / r, r) if swap else (r, 1 / r)
        s = np.asarray(sizes, dtype=np.float32)
        if sizes_outer:
            ws, hs = np.outer(s, w_ratio).ravel(), np.outer(s, h_ratio).ravel()
        else:
            ws, hs = np.outer(w_ratio, s).ravel(), np.outer(h_ratio, s).ravel()
        base = np.stack([-ws, -hs, ws, hs], axis=1)
        base = base / 2 if halve else base
        if rounding == "even":
            return np.round(base)
        if rounding == "up":
            return np.floor(base + 0.5)
        return base

    return cell_anchors


def _grid(
    centred=False, float_stride=False, anchors_outer=False, column_major=False, swap_strides=False
):
    def grid_anchors(sizes, aspect_ratios, image_size, grid_size):
        cells = ref_cell_anchors(sizes, aspect_ratios).astype(np.float64)
        (h, w), (gh, gw) = image_size, grid_size
        sh, sw = (h / gh, w / gw) if float_stride else (h // gh, w // gw)
        if swap_strides:
            sh, sw = sw, sh
        ys, xs = np.arange(gh) * sh, np.arange(gw) * sw
        if centred:
            ys, xs = ys + sh / 2, xs + sw / 2
        if column_major:
            xx, yy = np.meshgrid(xs, ys, indexing="ij")
        else:
            yy, xx = np.meshgrid(ys, xs, indexing="ij")
        shifts = np.stack([xx.ravel(), yy.ravel()] * 2, axis=1)  # (HW, 4)
        if anchors_outer:
            return (cells[:, None, :] + shifts[None]).reshape(-1, 4)
        return (shifts[:, None, :] + cells[None]).reshape(-1, 4)

    return grid_anchors


def _parts(b):
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    return w, h, b[:, 0] + 0.5 * w, b[:, 1] + 0.5 * h


def _encode(wrong_log=False, by_target=False, no_weights=False, corners=False, divide=False):
    def encode_boxes(reference_boxes, proposals, weights):
        wx, wy, ww, wh = (1.0, 1.0, 1.0, 1.0) if no_weights else weights
        ew, eh, ecx, ecy = _parts(proposals)
        gw, gh, gcx, gcy = _parts(reference_boxes)
        if corners:
            gcx, gcy, ecx, ecy = (
                reference_boxes[:, 0],
                reference_boxes[:, 1],
                proposals[:, 0],
                proposals[:, 1],
            )
        nw, nh = (gw, gh) if by_target else (ew, eh)
        if divide:
            dx, dy = (gcx - ecx) / nw / wx, (gcy - ecy) / nh / wy
            dw, dh = np.log(gw / ew) / ww, np.log(gh / eh) / wh
        else:
            dx, dy = wx * (gcx - ecx) / nw, wy * (gcy - ecy) / nh
            dw, dh = ww * np.log(gw / ew), wh * np.log(gh / eh)
        if wrong_log:
            dw, dh = ww * np.log(ew / gw), wh * np.log(eh / gh)
        return np.stack([dx, dy, dw, dh], axis=1)

    return encode_boxes


def _decode(clamp="max", multiply=False, no_exp=False):
    def decode_boxes(rel_codes, boxes, weights, bbox_xform_clip=CLIP):
        wx, wy, ww, wh = weights
        w, h, cx, cy = (v[:, None] for v in _parts(boxes))
        if multiply:
            dx, dy, dw, dh = (rel_codes[:, i::4] * k for i, k in enumerate(weights))
        else:
            dx, dy, dw, dh = (
                rel_codes[:, 0::4] / wx,
                rel_codes[:, 1::4] / wy,
                rel_codes[:, 2::4] / ww,
                rel_codes[:, 3::4] / wh,
            )
        if clamp == "max":
            dw, dh = np.minimum(dw, bbox_xform_clip), np.minimum(dh, bbox_xform_clip)
        elif clamp == "both":
            dw, dh = (
                np.clip(dw, -bbox_xform_clip, bbox_xform_clip),
                np.clip(dh, -bbox_xform_clip, bbox_xform_clip),
            )
        pcx, pcy = dx * w + cx, dy * h + cy
        pw, ph = (dw * w, dh * h) if no_exp else (np.exp(dw) * w, np.exp(dh) * h)
        out = np.stack([pcx - 0.5 * pw, pcy - 0.5 * ph, pcx + 0.5 * pw, pcy + 0.5 * ph], axis=2)
        return out.reshape(len(boxes), -1)

    return decode_boxes


def _match(strict_high=False, own_gt=True, ties=True, swap_codes=False, low_quality=True):
    def match(quality, high_threshold, low_threshold, allow_low_quality_matches):
        best_gt = np.argmax(quality, axis=0)
        best = quality.max(axis=0)
        below, between = (-2, -1) if swap_codes else (-1, -2)
        high_ok = best > high_threshold if strict_high else best >= high_threshold
        out = np.where(high_ok, best_gt, np.where(best < low_threshold, below, between))
        if allow_low_quality_matches and low_quality:
            for g in range(quality.shape[0]):
                if ties:
                    preds = np.flatnonzero(quality[g] == quality[g].max())
                else:
                    preds = [np.argmax(quality[g])]
                for p in preds:
                    out[p] = best_gt[p] if own_gt else g
        return out.astype(np.int64)

    return match


def _sample(
    refill_positives=False,
    no_refill=False,
    rounding=False,
    ignore_priority=False,
    ignored_negative=False,
):
    def balanced_sample(labels, priority, batch_size_per_image, positive_fraction):
        pos = labels >= 1
        neg = labels <= 0 if ignored_negative else labels == 0
        order = np.arange(len(labels)) if ignore_priority else np.argsort(priority, kind="stable")
        quota = (
            round(batch_size_per_image * positive_fraction)
            if rounding
            else int(batch_size_per_image * positive_fraction)
        )
        num_pos = min(quota, int(pos.sum()))
        num_neg = min(
            (batch_size_per_image - quota) if no_refill else (batch_size_per_image - num_pos),
            int(neg.sum()),
        )
        if refill_positives:
            num_pos = min(int(pos.sum()), batch_size_per_image - num_neg)
        chosen_pos = order[pos[order]][:num_pos]
        chosen_neg = order[neg[order]][:num_neg]
        p, n = np.zeros(len(labels), bool), np.zeros(len(labels), bool)
        p[chosen_pos], n[chosen_neg] = True, True
        return p, n

    return balanced_sample


def _filter(global_topk=False, across_levels=False, no_clip=False, logits=False):
    def filter_proposals(anchors, objectness, deltas, image_size, pre, post, nms_t, score_t, min_s):
        sizes = [len(a) for a in anchors]
        starts = np.cumsum([0] + sizes)[:-1]
        if global_topk:
            idx = np.argsort(-objectness, kind="stable")[: pre * len(anchors)]
            lvl = np.searchsorted(starts, idx, side="right") - 1
        else:
            idx = np.concatenate(
                [
                    s + np.argsort(-objectness[s : s + n], kind="stable")[:pre]
                    for s, n in zip(starts, sizes)
                ]
            )
            lvl = np.concatenate([np.full(min(pre, n), i) for i, n in enumerate(sizes)])
        boxes = BoxCoder((1.0, 1.0, 1.0, 1.0)).decode(deltas[idx], np.concatenate(anchors)[idx])
        if not no_clip:
            boxes[:, 0::2] = boxes[:, 0::2].clip(0, image_size[1])
            boxes[:, 1::2] = boxes[:, 1::2].clip(0, image_size[0])
        scores = objectness[idx] if logits else 1 / (1 + np.exp(-objectness[idx]))
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        keep = np.flatnonzero((w >= min_s) & (h >= min_s) & (scores >= score_t))
        boxes, scores, lvl = boxes[keep], scores[keep], lvl[keep]
        kept = (
            nms(boxes, scores, nms_t) if across_levels else batched_nms(boxes, scores, lvl, nms_t)
        )
        kept = kept[:post]
        return np.concatenate([boxes[kept], scores[kept, None]], axis=1)

    return filter_proposals


BATTERY = Battery(
    lesson="06",
    title="lesson 06, anchors and the region proposal network",
    functions=[
        FunctionBattery(
            "cell_anchors",
            ref_cell_anchors,
            [
                Case(
                    "torchvision's default: sizes 128, 256, 512; ratios 0.5, 1, 2",
                    ((128, 256, 512), (0.5, 1.0, 2.0)),
                ),
                Case(
                    "sizes 32, 45, 47 at ratio 1 (22.5 and 23.5 to round)", ((32, 45, 47), (1.0,))
                ),
                Case("one FPN level: size 32, ratios 0.5, 1, 2", ((32,), (0.5, 1.0, 2.0))),
                Case("sizes 16, 100; ratios 0.25, 3", ((16, 100), (0.25, 3.0))),
            ],
            [
                Mistake(
                    "width and height swapped in the aspect ratio",
                    "the aspect ratio is height / width: h = s * sqrt(r), w = s / sqrt(r), so "
                    "r = 2 is a tall anchor",
                    _cells(swap=True),
                ),
                Mistake(
                    "sizes outer, ratios inner",
                    "list the anchors ratio by ratio, and within each ratio size by size: "
                    "np.outer(w_ratios, sizes).ravel()",
                    _cells(sizes_outer=True),
                ),
                Mistake(
                    "rounding half up",
                    "torchvision rounds half to even (np.round): 22.5 -> 22, 23.5 -> 24; "
                    "floor(x + 0.5) rounds 22.5 up to 23",
                    _cells(rounding="up"),
                ),
                Mistake(
                    "no rounding",
                    "round the cell anchors to integers (half to even, np.round), as torchvision does",
                    _cells(rounding="none"),
                ),
                Mistake(
                    "the full width instead of half of it",
                    "an anchor of width w around the origin is [-w/2, -h/2, w/2, h/2]",
                    _cells(halve=False),
                ),
            ],
        ),
        FunctionBattery(
            "grid_anchors",
            ref_grid_anchors,
            [
                Case(
                    "size 32 on a 4 x 4 grid of a 64 x 64 image", ((32,), (1.0,), (64, 64), (4, 4))
                ),
                Case(
                    "three ratios, 6 x 5 grid on a 60 x 100 image (strides 10, 20)",
                    ((16,), (0.5, 1.0, 2.0), (60, 100), (6, 5)),
                ),
                Case(
                    "100 x 130 image, 13 x 17 grid: 100 // 13 = 7",
                    ((24, 48), (1.0, 2.0), (100, 130), (13, 17)),
                ),
            ],
            [
                Mistake(
                    "anchors centred in their cell",
                    "torchvision puts the anchors of cell (i, j) at (j * stride_w, i * stride_h), "
                    "the cell's top-left corner -- no + stride / 2 (that is the d2l variant)",
                    _grid(centred=True),
                ),
                Mistake(
                    "a fractional stride",
                    "the stride is image_size // grid_size (floor division): 100 // 13 = 7, not 7.69",
                    _grid(float_stride=True),
                ),
                Mistake(
                    "anchors outer, cells inner",
                    "row (i * W + j) * A + a is anchor a of cell (i, j): all A anchors of a cell "
                    "come together",
                    _grid(anchors_outer=True),
                ),
                Mistake(
                    "cells in column-major order",
                    "go through the cells row by row (y outer, x inner): "
                    'np.meshgrid(ys, xs, indexing="ij") gives (y, x)',
                    _grid(column_major=True),
                ),
                Mistake(
                    "x and y strides swapped",
                    "x moves by image_width // grid_width, y by image_height // grid_height",
                    _grid(swap_strides=True),
                ),
            ],
        ),
        FunctionBattery(
            "encode_boxes",
            ref_encode_boxes,
            [
                Case(
                    "one box by hand, weights 1", (BY_HAND_GT, BY_HAND_ANCHOR, (1.0, 1.0, 1.0, 1.0))
                ),
                Case(
                    "eight boxes, Fast R-CNN weights (10, 10, 5, 5)",
                    (GT, ANCHORS, (10.0, 10.0, 5.0, 5.0)),
                ),
            ],
            [
                Mistake(
                    "the log of the wrong ratio",
                    "t_w = w_w * log(w_target / w_anchor): target over anchor, so a bigger target "
                    "gives a positive t_w",
                    _encode(wrong_log=True),
                ),
                Mistake(
                    "offsets divided by the target's size",
                    "t_x = w_x * (x_target - x_anchor) / w_anchor: divide by the anchor's width "
                    "(the prediction must not need the answer)",
                    _encode(by_target=True),
                ),
                Mistake(
                    "the weights ignored",
                    "multiply the four deltas by weights = (w_x, w_y, w_w, w_h)",
                    _encode(no_weights=True),
                ),
                Mistake(
                    "the weights divided instead of multiplied",
                    "encode multiplies by the weights, decode divides by them",
                    _encode(divide=True),
                ),
                Mistake(
                    "corner offsets instead of centre offsets",
                    "t_x compares the centres x1 + 0.5 * w, not the left edges",
                    _encode(corners=True),
                ),
            ],
        ),
        FunctionBattery(
            "decode_boxes",
            ref_decode_boxes,
            [
                Case(
                    "one anchor by hand, weights 1",
                    (
                        np.array([[0.5, -0.25, 0.2, -0.1]]),
                        np.array([[0.0, 0.0, 20.0, 10.0]]),
                        (1.0, 1.0, 1.0, 1.0),
                    ),
                ),
                Case(
                    "eight anchors, two classes (K = 2), weights (10, 10, 5, 5)",
                    (CODES_K2, ANCHORS, (10.0, 10.0, 5.0, 5.0)),
                ),
                Case(
                    "t_w, t_h far above and below the clamp",
                    (CODES_EXTREME, ANCHORS[:2], (1.0, 1.0, 1.0, 1.0)),
                ),
            ],
            [
                Mistake(
                    "forgetting the clamp",
                    "clamp t_w / w_w and t_h / w_h to at most bbox_xform_clip = log(1000 / 16) "
                    "before exp, so that a box grows at most 62.5 times",
                    _decode(clamp="none"),
                ),
                Mistake(
                    "clamping from below too",
                    "the clamp is only an upper bound: a very negative t_w shrinks the box towards "
                    "zero width, which is harmless",
                    _decode(clamp="both"),
                ),
                Mistake(
                    "multiplying by the weights instead of dividing",
                    "decode undoes encode: divide the deltas by the weights",
                    _decode(multiply=True),
                ),
                Mistake(
                    "no exp",
                    "t_w is a log-ratio: the new width is exp(t_w) * w_anchor",
                    _decode(no_exp=True),
                ),
            ],
        ),
        FunctionBattery(
            "match",
            ref_match,
            [
                Case("values at both thresholds, 0.7 / 0.3", (Q_THRESHOLDS, 0.7, 0.3, False)),
                Case("equal thresholds 0.5 / 0.5", (Q_THRESHOLDS, 0.5, 0.5, False)),
                Case("low-quality matches with tied best predictions", (Q_PROMOTE, 0.7, 0.3, True)),
                Case(
                    "a ground truth that overlaps nothing, low-quality on",
                    (Q_NO_OVERLAP, 0.7, 0.3, True),
                ),
                Case("values at both thresholds, low-quality on", (Q_THRESHOLDS, 0.7, 0.3, True)),
            ],
            [
                Mistake(
                    '">" instead of ">=" at the high threshold',
                    "a quality equal to high_threshold is a match (>=); below low_threshold is -1, "
                    "[low, high) is -2",
                    _match(strict_high=True),
                ),
                Mistake(
                    "-1 and -2 swapped",
                    "below low_threshold is -1 (background), between the thresholds -2 (ignored)",
                    _match(swap_codes=True),
                ),
                Mistake(
                    "promoted predictions assigned to the ground truth that promoted them",
                    "a prediction promoted by ground truth g gets its *own* best ground truth "
                    "(argmax over its column), which may not be g",
                    _match(own_gt=False),
                ),
                Mistake(
                    "one best prediction per ground truth",
                    "promote every prediction tied at a ground truth's best quality "
                    "(quality[g] == quality[g].max()), not only the first argmax",
                    _match(ties=False),
                ),
                Mistake(
                    "no low-quality matches",
                    "with allow_low_quality_matches, every ground truth's best predictions are "
                    "matched even below high_threshold",
                    _match(low_quality=False),
                ),
            ],
        ),
        FunctionBattery(
            "balanced_sample",
            ref_sample,
            [
                Case("20 labels, batch 8, fraction 0.25", (LABELS, PRIORITY, 8, 0.25)),
                Case(
                    "one positive: the rest are negatives",
                    (FEW_POS, np.arange(10)[::-1].copy(), 6, 0.5),
                ),
                Case("one negative: no positives added", (FEW_NEG, np.arange(10), 6, 0.5)),
                Case("batch 7, fraction 0.5: 3.5 positives", (LABELS, PRIORITY, 7, 0.5)),
            ],
            [
                Mistake(
                    "too few negatives made up with positives",
                    "num_pos = min(int(batch * fraction), #positives) is final; when negatives run "
                    "out the batch is simply smaller",
                    _sample(refill_positives=True),
                ),
                Mistake(
                    "too few positives not made up with negatives",
                    "num_neg = min(batch - num_pos, #negatives), with num_pos the positives "
                    "actually taken",
                    _sample(no_refill=True),
                ),
                Mistake(
                    "rounding the positive quota",
                    "the quota is int(batch * fraction), rounded down: 3.5 -> 3",
                    _sample(rounding=True),
                ),
                Mistake(
                    "the priority ignored",
                    "take the positives (and negatives) with the lowest priority first, "
                    "np.argsort(priority, kind='stable'), not the lowest indices",
                    _sample(ignore_priority=True),
                ),
                Mistake(
                    "ignored labels (-1) counted as negatives",
                    "negatives are labels == 0; -1 marks anchors between the thresholds, never sampled",
                    _sample(ignored_negative=True),
                ),
            ],
        ),
        FunctionBattery(
            "filter_proposals",
            ref_filter_proposals,
            [
                Case(
                    "three levels on a 64 x 96 image; top 8 per level, 12 after NMS at 0.5",
                    (*RPN_A, (60, 90), 8, 12, 0.5, 0.0, 1e-3),
                ),
                Case(
                    "three levels, 80 x 80, NMS at 0.3, score threshold 0.6, min size 4",
                    (*RPN_B, (80, 76), 10, 20, 0.3, 0.6, 4.0),
                ),
            ],
            [
                Mistake(
                    "the top-k over all levels at once",
                    "take the pre_nms_top_n best anchors of *each* level, so that every scale of "
                    "object gets candidates",
                    _filter(global_topk=True),
                ),
                Mistake(
                    "NMS across levels",
                    "suppress only within a level: batched_nms with the level as the category",
                    _filter(across_levels=True),
                ),
                Mistake(
                    "no clipping",
                    "clip the decoded boxes to the image (x to [0, width], y to [0, height]) "
                    "before removing small boxes",
                    _filter(no_clip=True),
                ),
                Mistake(
                    "scores left as logits",
                    "turn the objectness logits into probabilities with the sigmoid "
                    "1 / (1 + exp(-x)) before the score threshold",
                    _filter(logits=True),
                ),
            ],
        ),
    ],
)
