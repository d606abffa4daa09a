"""A learner's correct solution to lessons/04_nms.py, written with plain NumPy.

It does not import minivision: the checker must accept an independent, correct implementation.
"""

import numpy as np


def _iou_one_to_many(box, others):
    w = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    inter = w * h
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / (area + areas - inter)


def nms(boxes, scores, iou_threshold):
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(i)
        iou = _iou_one_to_many(boxes[i], boxes[order[1:]])
        order = order[1:][~(iou > iou_threshold)]
    return np.array(keep, dtype=np.int64)


def batched_nms(boxes, scores, idxs, iou_threshold):
    keep = []
    for c in np.unique(idxs):
        members = np.flatnonzero(idxs == c)
        keep.extend(members[nms(boxes[members], scores[members], iou_threshold)])
    keep = np.array(sorted(keep), dtype=np.int64)  # index order, then a stable sort by score
    return keep[np.argsort(-scores[keep], kind="stable")]


def soft_nms(boxes, scores, iou_threshold=0.3, sigma=0.5, score_threshold=0.001, method="linear"):
    scores = scores.astype(float)  # a copy: the caller's array stays as it was
    left = np.arange(len(scores))
    keep, kept_scores = [], []
    while left.size > 0:
        best = np.argmax(scores[left])  # the first maximum: the lower index on ties
        m = left[best]
        if scores[m] < score_threshold:
            break
        keep.append(m)
        kept_scores.append(scores[m])
        left = np.delete(left, best)
        iou = _iou_one_to_many(boxes[m], boxes[left])
        if method == "linear":
            weight = np.where(iou > iou_threshold, 1 - iou, 1.0)
        else:
            weight = np.exp(-(iou**2) / sigma)
        scores[left] = scores[left] * weight
    return np.array(keep, dtype=np.int64), np.array(kept_scores)
