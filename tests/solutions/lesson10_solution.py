"""A learner's correct lesson 10 exercise, written with NumPy only."""

from __future__ import annotations

import numpy as np


def coco_iou(det_boxes, gt_boxes, gt_iscrowd):
    d = np.asarray(det_boxes, dtype=float).reshape(-1, 4)
    g = np.asarray(gt_boxes, dtype=float).reshape(-1, 4)
    lt = np.maximum(d[:, None, :2], g[None, :, :2])
    rb = np.minimum(d[:, None, 2:], g[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)  # (D, G)
    area_d = (d[:, 2] - d[:, 0]) * (d[:, 3] - d[:, 1])
    area_g = (g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1])
    denominator = np.where(
        np.asarray(gt_iscrowd, bool)[None, :],
        area_d[:, None] + 0 * inter,
        area_d[:, None] + area_g[None, :] - inter,
    )
    out = np.zeros_like(inter)
    np.divide(inter, denominator, out=out, where=denominator > 0)
    return out


def match_detections(det_boxes, det_scores, gt_boxes, gt_iscrowd, iou_threshold=0.5):
    crowd = np.asarray(gt_iscrowd, bool)
    iou = coco_iou(det_boxes, gt_boxes, crowd)
    status = np.zeros(len(det_scores), dtype=np.int64)
    taken = np.zeros(len(crowd), dtype=bool)
    for d in np.argsort(-np.asarray(det_scores), kind="stable"):
        free = ~taken & ~crowd & (iou[d] >= iou_threshold)
        if free.any():
            # the highest IoU; on a tie pycocotools keeps the later object
            best = np.flatnonzero(free)[::-1][np.argmax(iou[d][free][::-1])]
            taken[best] = True
            status[d] = 1
        elif (crowd & (iou[d] >= iou_threshold)).any():
            status[d] = -1
    return status


def precision_recall(scores, status, num_gt):
    scores, status = np.asarray(scores, float), np.asarray(status)
    counted = status != -1
    order = np.argsort(-scores[counted], kind="stable")
    hits = status[counted][order] == 1
    tp = np.cumsum(hits)
    k = np.arange(1, len(hits) + 1)
    return tp / k, tp / num_gt


def average_precision(recall, precision, rec_thresholds=None):
    if rec_thresholds is None:
        rec_thresholds = np.linspace(0, 1, 101)
    recall, precision = np.asarray(recall, float), np.asarray(precision, float)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    values = []
    for r in rec_thresholds:
        i = np.searchsorted(recall, r, side="left")
        values.append(envelope[i] if i < len(envelope) else 0.0)
    return float(np.mean(values))


def voc_ap(recall, precision, use_07_metric=False):
    recall, precision = np.asarray(recall, float), np.asarray(precision, float)
    if use_07_metric:
        total = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            reached = recall >= t
            total += (precision[reached].max() if reached.any() else 0.0) / 11
        return total
    r = np.concatenate(([0.0], recall, [1.0]))
    p = np.concatenate(([0.0], precision, [0.0]))
    p = np.maximum.accumulate(p[::-1])[::-1]
    change = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[change + 1] - r[change]) * p[change + 1]))


def evaluate_ap(gt, dt, iou_threshold=0.5):
    scores, status, num_gt = [], [], 0
    for g, d in zip(gt, dt):
        crowd = np.asarray(g["iscrowd"], bool)
        status.append(match_detections(d["boxes"], d["scores"], g["boxes"], crowd, iou_threshold))
        scores.append(np.asarray(d["scores"], float))
        num_gt += int((~crowd).sum())
    precision, recall = precision_recall(np.concatenate(scores), np.concatenate(status), num_gt)
    return average_precision(recall, precision)
