"""A correct solution of lessons/02_segmentation.py, written the way a learner would."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def grid_edges(height, width):
    idx = np.arange(height * width).reshape(height, width)
    pairs = [
        (idx[:, :-1], idx[:, 1:]),  # right
        (idx[:-1, :], idx[1:, :]),  # down
        (idx[:-1, :-1], idx[1:, 1:]),  # down-right
        (idx[1:, :-1], idx[:-1, 1:]),  # up-right
    ]
    return np.concatenate([np.stack([a.ravel(), b.ravel()], axis=1) for a, b in pairs])


def edge_weights(image, sigma):
    img = np.asarray(image)
    if img.dtype.kind == "u":
        img = img * (1.0 / np.iinfo(img.dtype).max)
    img = img.astype(np.float64)
    if img.ndim == 2:
        img = img[:, :, None]
    if sigma > 0:
        img = ndimage.gaussian_filter(img, (sigma, sigma, 0), mode="reflect")
    flat = img.reshape(-1, img.shape[2])
    e = grid_edges(img.shape[0], img.shape[1])
    return np.sqrt(((flat[e[:, 0]] - flat[e[:, 1]]) ** 2).sum(axis=1))


def segment_graph(num_nodes, edges, weights, k, min_size):
    order = np.argsort(weights, kind="stable")
    parent = list(range(num_nodes))
    size = [1] * num_nodes
    inner = [0.0] * num_nodes

    def find(x):
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    for i in order:
        a, b = find(edges[i][0]), find(edges[i][1])
        if a == b:
            continue
        w = weights[i]
        if w < min(np.float32(inner[a] + k / size[a]), np.float32(inner[b] + k / size[b])):
            parent[b] = a
            size[a] += size[b]
            inner[a] = w
    for i in order:
        a, b = find(edges[i][0]), find(edges[i][1])
        if a != b and (size[a] < min_size or size[b] < min_size):
            parent[b] = a
            size[a] += size[b]
    return np.array([find(x) for x in range(num_nodes)])


def felzenszwalb(image, scale=1, sigma=0.8, min_size=20):
    h, w = image.shape[:2]
    labels = segment_graph(
        h * w, grid_edges(h, w), edge_weights(image, sigma), scale / 255, min_size
    )
    return labels.reshape(h, w)
