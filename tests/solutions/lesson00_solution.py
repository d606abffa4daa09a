"""A learner's correct solution to lessons/00_boxes.py, written with plain NumPy.

It does not import minivision: the checker must accept an independent, correct implementation.
"""

import numpy as np


def box_area(boxes):
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_convert(boxes, in_fmt, out_fmt):
    b = np.array(boxes, dtype=float)
    if in_fmt == "xywh":
        b[:, 2:] += b[:, :2]
    elif in_fmt == "cxcywh":
        b = np.concatenate([b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2], axis=1)
    if out_fmt == "xywh":
        b[:, 2:] -= b[:, :2]
    elif out_fmt == "cxcywh":
        b = np.concatenate([(b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]], axis=1)
    return b


def box_iou(boxes1, boxes2):
    lt = np.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = np.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(boxes1)[:, None] + box_area(boxes2)[None, :] - inter
    return inter / union


def generalized_box_iou(boxes1, boxes2):
    iou = box_iou(boxes1, boxes2)
    lt = np.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = np.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(boxes1)[:, None] + box_area(boxes2)[None, :] - inter
    c_lt = np.minimum(boxes1[:, None, :2], boxes2[None, :, :2])
    c_rb = np.maximum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    c = np.prod(np.clip(c_rb - c_lt, 0, None), axis=-1)
    return iou - (c - union) / c


def clip_boxes_to_image(boxes, size):
    height, width = size
    out = np.array(boxes, copy=True)
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, width)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, height)
    return out


def masks_to_boxes(masks):
    out = np.zeros((len(masks), 4), dtype=np.float32)
    for i, m in enumerate(masks):
        ys, xs = np.nonzero(m)
        if len(xs):
            out[i] = xs.min(), ys.min(), xs.max(), ys.max()
    return out
