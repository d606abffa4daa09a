"""A learner's correct solution to lessons/06_anchors.py, written with plain NumPy.

It does not import minivision: the checker must accept an independent, correct implementation.
"""

import math

import numpy as np

CLIP = math.log(1000.0 / 16)


def cell_anchors(sizes, aspect_ratios):
    rows = []
    for r in aspect_ratios:
        for s in sizes:
            h = s * math.sqrt(r)
            w = s / math.sqrt(r)
            rows.append([-w / 2, -h / 2, w / 2, h / 2])
    return np.round(np.array(rows))


def grid_anchors(sizes, aspect_ratios, image_size, grid_size):
    cells = cell_anchors(sizes, aspect_ratios)
    stride_h, stride_w = image_size[0] // grid_size[0], image_size[1] // grid_size[1]
    out = []
    for i in range(grid_size[0]):
        for j in range(grid_size[1]):
            shift = np.array([j * stride_w, i * stride_h, j * stride_w, i * stride_h])
            out.append(cells + shift)
    return np.concatenate(out).reshape(-1, 4)


def _centres(b):
    w = b[:, 2] - b[:, 0]
    h = b[:, 3] - b[:, 1]
    return b[:, 0] + 0.5 * w, b[:, 1] + 0.5 * h, w, h


def encode_boxes(reference_boxes, proposals, weights):
    wx, wy, ww, wh = weights
    px, py, pw, ph = _centres(proposals)
    gx, gy, gw, gh = _centres(reference_boxes)
    return np.stack(
        [wx * (gx - px) / pw, wy * (gy - py) / ph, ww * np.log(gw / pw), wh * np.log(gh / ph)],
        axis=1,
    )


def decode_boxes(rel_codes, boxes, weights, bbox_xform_clip=CLIP):
    cx, cy, w, h = (v[:, None] for v in _centres(boxes))
    codes = rel_codes.reshape(len(rel_codes), -1, 4) / np.asarray(weights)  # (N, K, 4)
    dw = np.minimum(codes[..., 2], bbox_xform_clip)
    dh = np.minimum(codes[..., 3], bbox_xform_clip)
    pcx, pcy = codes[..., 0] * w + cx, codes[..., 1] * h + cy
    half_w, half_h = 0.5 * np.exp(dw) * w, 0.5 * np.exp(dh) * h
    out = np.stack([pcx - half_w, pcy - half_h, pcx + half_w, pcy + half_h], axis=-1)
    return out.reshape(len(rel_codes), -1)


def match(quality, high_threshold, low_threshold, allow_low_quality_matches):
    best_gt = quality.argmax(axis=0)
    best = quality.max(axis=0)
    out = best_gt.astype(np.int64)
    out[best < high_threshold] = -2
    out[best < low_threshold] = -1
    if allow_low_quality_matches:
        promoted = (quality == quality.max(axis=1, keepdims=True)).any(axis=0)
        out[promoted] = best_gt[promoted]
    return out


def balanced_sample(labels, priority, batch_size_per_image, positive_fraction):
    order = np.argsort(priority, kind="stable")
    positives = [i for i in order if labels[i] >= 1]
    negatives = [i for i in order if labels[i] == 0]
    num_pos = min(int(batch_size_per_image * positive_fraction), len(positives))
    num_neg = min(batch_size_per_image - num_pos, len(negatives))
    pos = np.zeros(len(labels), dtype=bool)
    neg = np.zeros(len(labels), dtype=bool)
    pos[positives[:num_pos]] = True
    neg[negatives[:num_neg]] = True
    return pos, neg


def _nms(boxes, scores, thresh):
    order = list(np.argsort(-scores, kind="stable"))
    keep = []
    while order:
        i = order.pop(0)
        keep.append(i)
        rest = np.array(order, dtype=int)
        if rest.size == 0:
            break
        w = np.clip(
            np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]),
            0,
            None,
        )
        h = np.clip(
            np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]),
            0,
            None,
        )
        area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
        iou = w * h / (area(boxes[i]) + area(boxes[rest]) - w * h)
        order = list(rest[~(iou > thresh)])
    return np.array(keep, dtype=int)


def filter_proposals(anchors, objectness, deltas, image_size, pre_nms_top_n, post_nms_top_n,
                     nms_thresh, score_thresh, min_size):  # fmt: skip
    chosen, levels, start = [], [], 0
    for level, a in enumerate(anchors):
        top = np.argsort(-objectness[start : start + len(a)], kind="stable")[:pre_nms_top_n]
        chosen.append(start + top)
        levels.append(np.full(len(top), level))
        start += len(a)
    idx, lvl = np.concatenate(chosen), np.concatenate(levels)
    boxes = decode_boxes(deltas[idx], np.concatenate(anchors)[idx], (1.0, 1.0, 1.0, 1.0))
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, image_size[1])
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, image_size[0])
    scores = 1 / (1 + np.exp(-objectness[idx]))
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    ok = (w >= min_size) & (h >= min_size) & (scores >= score_thresh)
    boxes, scores, lvl = boxes[ok], scores[ok], lvl[ok]
    kept = []
    for level in np.unique(lvl):
        members = np.flatnonzero(lvl == level)
        kept.extend(members[_nms(boxes[members], scores[members], nms_thresh)])
    kept = np.array(sorted(kept), dtype=int)
    kept = kept[np.argsort(-scores[kept], kind="stable")][:post_nms_top_n]
    return np.concatenate([boxes[kept], scores[kept, None]], axis=1)
