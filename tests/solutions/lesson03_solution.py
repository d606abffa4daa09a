"""A reference solution of lessons/03_selective_search.py, written independently of minivision."""

from __future__ import annotations

import heapq

import numpy as np


def region_neighbours(labels):
    labels = np.asarray(labels)
    shifts = [
        (labels[:, 1:], labels[:, :-1]),
        (labels[1:, :], labels[:-1, :]),
        (labels[1:, 1:], labels[:-1, :-1]),
        (labels[1:, :-1], labels[:-1, 1:]),
    ]
    a = np.concatenate([p.ravel() for p, _ in shifts])
    b = np.concatenate([q.ravel() for _, q in shifts])
    keep = a != b
    pairs = np.stack([np.minimum(a, b)[keep], np.maximum(a, b)[keep]], axis=1)
    return np.unique(pairs, axis=0)


def colour_histograms(image, labels, n):
    image = np.asarray(image, dtype=np.float64)
    c = image.shape[2]
    out = np.zeros((n, c * 25))
    lab = np.asarray(labels).ravel()
    for ch in range(c):
        bins = np.minimum(np.floor(image[..., ch].ravel() * 25 / 256).astype(int), 24)
        np.add.at(out, (lab, ch * 25 + bins), 1.0)
    return out / out.sum(axis=1, keepdims=True)


def group_regions(hist, sizes, boxes, pairs):
    n = len(sizes)
    hist = [np.asarray(h, float) for h in hist]
    size = [float(s) for s in sizes]
    box = [np.asarray(b, float) for b in boxes]
    total = float(sum(size))
    nbrs = [set() for _ in range(n)]

    def sim(i, j):
        w = max(box[i][2], box[j][2]) - min(box[i][0], box[j][0])
        h = max(box[i][3], box[j][3]) - min(box[i][1], box[j][1])
        s = np.minimum(hist[i], hist[j]).sum()
        s = s + (1.0 - (size[i] + size[j]) / total)
        return s + (1.0 - (w * h - size[i] - size[j]) / total)

    heap = []
    for i, j in np.asarray(pairs).tolist():
        i, j = min(i, j), max(i, j)
        nbrs[i].add(j)
        nbrs[j].add(i)
        heap.append((-sim(i, j), i, j))
    heapq.heapify(heap)
    dead = set()
    merges = []
    while heap:
        _, i, j = heapq.heappop(heap)
        if i in dead or j in dead:
            continue
        t = len(size)
        dead.update((i, j))
        size.append(size[i] + size[j])
        hist.append((size[i] * hist[i] + size[j] * hist[j]) / size[t])
        box.append(
            np.concatenate([np.minimum(box[i][:2], box[j][:2]), np.maximum(box[i][2:], box[j][2:])])
        )
        around = (nbrs[i] | nbrs[j]) - {i, j}
        nbrs.append(around)
        for k in around:
            nbrs[k] -= {i, j}
            nbrs[k].add(t)
            heapq.heappush(heap, (-sim(k, t), k, t))
        merges.append((i, j))
    return np.array(merges, dtype=np.intp).reshape(-1, 2)
