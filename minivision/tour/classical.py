"""Tour stages of the classical front end (lessons 00-03): graph segmentation, selective-search
proposals, boxes and IoU, a hand-made convolution layer.

Host island (DESIGN.md §2): the tour draws pictures with NumPy and matplotlib.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..ops import boxes as B
from .common import Stage, demo_boxes, save_figure

__all__ = ["stage_segmentation", "stage_proposals", "stage_boxes", "stage_features"]


def stage_segmentation(image, out: Path, default: bool) -> Stage:
    import time

    import matplotlib.pyplot as plt
    from skimage.segmentation import find_boundaries

    from ..proposals.felzenszwalb import felzenszwalb

    params = dict(scale=100, sigma=0.5, min_size=50)
    t0 = time.perf_counter()
    labels = felzenszwalb(image, **params)
    seconds = time.perf_counter() - t0
    n = int(labels.max()) + 1
    # each segment painted with its mean colour: what selective search starts from
    counts = np.bincount(labels.ravel(), minlength=n)[:, None]
    sums = np.stack([np.bincount(labels.ravel(), image[..., c].ravel(), n) for c in range(3)], 1)
    mean = (sums / counts)[labels].astype(np.uint8)
    edges = image.copy()
    edges[find_boundaries(labels, mode="inner")] = (255, 230, 0)

    fig, axes = plt.subplots(1, 2, figsize=(12, 6))
    for ax, img, title in zip(
        axes, [edges, mean], ["segment boundaries", "mean colour of each segment"]
    ):
        ax.imshow(img)
        ax.set_title(title)
        ax.axis("off")
    save_figure(fig, out / "02_segments.png", dpi=90)

    sizes = counts.ravel()
    text = (
        f"Felzenszwalb-Huttenlocher graph segmentation (scale={params['scale']}, "
        f"sigma={params['sigma']}, min_size={params['min_size']}): {n} segments in "
        f"{seconds * 1e3:.0f} ms, from {sizes.min()} to {sizes.max()} pixels (median "
        f"{int(np.median(sizes))}). Pixels are nodes, 8-connected neighbours are edges weighted "
        "by colour distance, and two regions merge when the edge between them is lighter than "
        "the variation inside each plus scale/255 divided by its size. Selective search "
        "(lesson 03) groups these segments into object proposals."
    )
    return Stage("Graph-based segmentation (lesson 02)", text, ["02_segments.png"])


def stage_proposals(image, out: Path, default: bool) -> Stage:
    import time

    import matplotlib.pyplot as plt

    from ..proposals.selective_search import selective_search
    from ..viz import draw_boxes, show_image

    t0 = time.perf_counter()
    props = selective_search(image, "fast")
    seconds = time.perf_counter() - t0
    top = 30
    fig, axes = plt.subplots(1, 2, figsize=(12, 6))
    show_image(axes[0], image, f"the top {top} of {len(props)} proposals")
    draw_boxes(axes[0], props[:top], linewidth=1.5)
    truth, names = demo_boxes(image.shape, default)
    best = B.box_iou(truth, props)  # (objects, proposals)
    pick = best.argmax(axis=1)
    show_image(axes[1], image, "the best proposal for each object")
    draw_boxes(
        axes[1],
        props[pick],
        [f"{n} {best[i, pick[i]]:.2f}" for i, n in enumerate(names)],
        linewidth=2.0,
    )
    save_figure(fig, out / "03_proposals.png", dpi=90)
    found = ", ".join(
        f"{n} {best[i, pick[i]]:.2f} (rank {int(pick[i]) + 1})" for i, n in enumerate(names)
    )
    text = (
        f"Selective search, fast mode (HSV and Lab, k = 50 and 100, colour+texture+size+fill and "
        f"texture+size+fill: 8 hierarchies): {len(props)} distinct boxes in {seconds:.1f} s. "
        "Starting from the graph segmentation, the two most similar neighbouring regions are "
        "merged again and again until one region is left; every region on the way is a "
        "proposal, and the paper's ranking puts the large, late ones first. Best IoU with "
        f"each {'object' if default else 'demo box'} (and the rank of that proposal): {found}."
    )
    return Stage("Selective search proposals (lesson 03)", text, ["03_proposals.png"])


def stage_boxes(image, out: Path, default: bool) -> Stage:
    import matplotlib.pyplot as plt

    from ..viz import draw_boxes, plot_matrix, show_image

    boxes, names = demo_boxes(image.shape, default)
    iou = B.box_iou(boxes, boxes)
    giou = B.generalized_box_iou(boxes, boxes)

    fig, ax = plt.subplots(figsize=(6, 6))
    show_image(ax, image, "boxes (x1, y1, x2, y2), x = column")
    draw_boxes(ax, boxes, names)
    ax.axis("off")
    save_figure(fig, out / "00_boxes.png", dpi=90, tight_layout=False)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    plot_matrix(axes[0], iou, names, title="IoU")
    plot_matrix(axes[1], giou, names, title="generalized IoU", vmin=-1.0, vmax=1.0, cmap="coolwarm")
    save_figure(fig, out / "00_iou.png", dpi=90)

    i, j = 0, 1  # a nested pair: the face inside the head
    text = (
        f"{len(boxes)} boxes on the photograph and their pairwise IoU and GIoU. "
        f"{names[i]} lies inside {names[j]}: IoU = area({names[i]}) / area({names[j]}) = "
        f"{iou[i, j]:.3f}. Disjoint boxes all have IoU 0, but GIoU still tells near from far "
        f"({names[3]}-{names[4]}, near: {giou[3, 4]:.2f}; {names[0]}-{names[4]}, far: {giou[0, 4]:.2f})."
    )
    return Stage("Boxes and IoU (lesson 00)", text, ["00_boxes.png", "00_iou.png"])


def stage_features(image, out: Path, default: bool) -> Stage:
    import matplotlib.pyplot as plt

    from ..nn.functional.conv import conv2d
    from ..nn.functional.pool import max_pool2d

    gray = image[..., :3].astype(np.float64).mean(axis=2)[None, None] / 255.0  # (1, 1, H, W)
    sobel = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
    weight = np.stack([sobel, -sobel, sobel.T, -sobel.T])[:, None]  # (4, 1, 3, 3)
    names = [
        "bright -> dark, left to right",
        "dark -> bright",
        "bright -> dark, downwards",
        "dark -> bright",
    ]
    features = np.maximum(conv2d(gray, weight, padding=1), 0.0)  # a conv layer with ReLU
    pooled = max_pool2d(features, 4)

    fig, axes = plt.subplots(2, 4, figsize=(14, 7.2))
    for k in range(4):
        axes[0, k].imshow(features[0, k], cmap="magma")
        axes[0, k].set_title(f"edges {names[k]}", fontsize=9)
        axes[1, k].imshow(pooled[0, k], cmap="magma")
        axes[1, k].set_title(f"max-pooled 4 x 4: {pooled.shape[2]} x {pooled.shape[3]}", fontsize=9)
    for ax in axes.flat:
        ax.axis("off")
    save_figure(fig, out / "01_features.png", dpi=80)
    text = (
        f"A hand-made convolution layer: four Sobel kernels (edges of each orientation and sign) "
        f"as one conv2d with 4 output channels, a ReLU, then a 4 x 4 max pool that keeps the "
        f"strongest response of each cell: a {gray.shape[2]} x {gray.shape[3]} image becomes a "
        f"4 x {pooled.shape[2]} x {pooled.shape[3]} feature map, the kind of map a detector's "
        f"region proposals and RoI pooling work on. A trained backbone learns its kernels; its "
        f"first layer finds filters much like these."
    )
    return Stage("Convolution and pooling (lesson 01)", text, ["01_features.png"])
