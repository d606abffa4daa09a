"""Tour stages of the two-stage detector's machinery (lessons 04-08): anchors and their matches,
NMS of scored boxes, RoI crops of the kept boxes, mask targets.

Host island (DESIGN.md §2): the tour draws pictures with NumPy and matplotlib.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..ops import boxes as B
from .common import Stage, demo_boxes, save_figure

__all__ = ["candidate_detections", "stage_anchors", "stage_nms", "stage_roi_crops", "stage_masks"]


def stage_anchors(image, out: Path, default: bool) -> Stage:
    import matplotlib.pyplot as plt

    from ..detection.anchors import AnchorGenerator
    from ..detection.matcher import Matcher
    from ..viz import COLORS, draw_boxes, show_image

    boxes, names = demo_boxes(image.shape, default)
    h, w = image.shape[:2]
    padded = (-(-h // 64) * 64, -(-w // 64) * 64)  # a batch padded to the coarsest stride
    strides = (4, 8, 16, 32, 64)
    gen = AnchorGenerator(((32,), (64,), (128,), (256,), (512,)), ((0.5, 1.0, 2.0),) * 5)
    grids = [(padded[0] // s, padded[1] // s) for s in strides]
    anchors = gen(padded, grids, like=np.zeros(1))
    level = np.repeat(np.arange(5), [3 * gh * gw for gh, gw in grids])
    iou = B.box_iou(boxes, anchors)  # (objects, anchors)
    matches = Matcher(0.7, 0.3, allow_low_quality_matches=True)(iou)
    best = iou.max(axis=0)
    positive = np.flatnonzero(matches >= 0)
    promoted = positive[best[positive] < 0.7]

    fig, axes = plt.subplots(1, 2, figsize=(13, 6), gridspec_kw={"width_ratios": [1.1, 1]})
    show_image(axes[0], image, f"{len(positive)} positive anchors of {len(anchors)}")
    draw_boxes(
        axes[0],
        anchors[positive],
        colors=[COLORS[m % len(COLORS)] for m in matches[positive]],
        linewidth=0.8,
    )
    draw_boxes(
        axes[0],
        boxes,
        names,
        colors=[COLORS[i % len(COLORS)] for i in range(len(boxes))],
        linewidth=2.5,
    )
    axes[0].axis("off")
    edges = np.linspace(0, 1, 51)
    axes[1].hist(best[best > 0], bins=edges, color="#4363d8", log=True)
    for t, label in ((0.3, "background below 0.3"), (0.7, "object from 0.7")):
        axes[1].axvline(t, color="#e6194b", linestyle="--")
        axes[1].text(t + 0.01, axes[1].get_ylim()[1] * 0.3, label, color="#e6194b", fontsize=9)
    axes[1].set_xlabel("best IoU of an anchor with any object")
    axes[1].set_ylabel("anchors (log scale)")
    axes[1].set_title(f"{np.sum(best == 0)} anchors overlap nothing (not shown)")
    save_figure(fig, out / "06_anchors.png", dpi=90)

    per_object = np.bincount(matches[positive], minlength=len(boxes))
    by_level = np.bincount(level[positive], minlength=5)
    text = (
        f"Faster R-CNN's region proposal network scores fixed anchors: here a five-level FPN "
        f"(sizes 32 to 512 at strides 4 to 64, aspect ratios 1:2, 1:1, 2:1) lays {len(anchors)} "
        f"anchors on the {padded[0]} x {padded[1]} padded image, on the corners of each level's "
        f"cells. Each anchor is matched to the object it overlaps most (lesson 06): IoU >= 0.7 is "
        f"positive, < 0.3 background, in between ignored, and each object also gets its best "
        f"anchors whatever their IoU. Positives per object: "
        + ", ".join(f"{n} {c}" for n, c in zip(names, per_object))
        + f"; per level (stride 4 to 64): {', '.join(map(str, by_level))}. {len(promoted)} of the "
        f"positives are such low-quality matches, below 0.7."
    )
    return Stage("Anchors and matched positives (lesson 06)", text, ["06_anchors.png"])


def candidate_detections(boxes, image_shape, per_object=25, seed=0):
    """What a detector's raw output looks like: many jittered, scored boxes around each object.

    Scores fall with the distance from the object's box (its IoU with it, times a random
    factor), as a detector's confidence does. Returns boxes (K, 4), scores (K,), object ids (K,).
    """
    rng = np.random.default_rng(seed)
    ctr = (boxes[:, :2] + boxes[:, 2:]) / 2  # (O, 2)
    wh = boxes[:, 2:] - boxes[:, :2]
    obj = np.repeat(np.arange(len(boxes)), per_object)  # (K,)
    c = ctr[obj] + rng.normal(0, 0.07, (len(obj), 2)) * wh[obj]
    s = wh[obj] * np.exp(rng.normal(0, 0.1, (len(obj), 2)))
    cand = B.clip_boxes_to_image(np.concatenate([c - s / 2, c + s / 2], axis=1), image_shape[:2])
    iou = B.box_iou(cand, boxes)[np.arange(len(obj)), obj]
    scores = iou * rng.uniform(0.6, 1.0, len(obj))
    return cand, scores, obj


def stage_nms(image, out: Path, default: bool) -> Stage:
    import matplotlib.pyplot as plt

    from ..ops.nms import nms
    from ..viz import COLORS, draw_boxes, show_image

    boxes, names = demo_boxes(image.shape, default)
    cand, scores, obj = candidate_detections(boxes, image.shape)
    threshold = 0.5
    keep = nms(cand, scores, threshold)

    fig, axes = plt.subplots(1, 2, figsize=(12, 6))
    colors = [COLORS[i % len(COLORS)] for i in obj]
    show_image(axes[0], image, f"before: {len(cand)} scored candidate boxes")
    draw_boxes(axes[0], cand, colors=colors, linewidth=0.8)
    show_image(axes[1], image, f"after greedy NMS at IoU {threshold}: {len(keep)} boxes")
    labels = [f"{names[obj[k]]} {scores[k]:.2f}" for k in keep]
    draw_boxes(axes[1], cand[keep], labels, colors=[colors[k] for k in keep])
    for ax in axes:
        ax.axis("off")
    save_figure(fig, out / "04_nms.png", dpi=90)

    per_object = np.bincount(obj[keep], minlength=len(boxes))
    extra = [names[i] for i in np.flatnonzero(per_object > 1)]
    nested = float(B.box_iou(boxes[:1], boxes[1:2])[0, 0])  # the face inside the head
    text = (
        f"A detector fires many overlapping boxes on every object: here {len(cand)} jittered, "
        f"scored candidates around the {len(boxes)} objects. Greedy non-maximum suppression "
        f"(lesson 04) keeps the best-scoring box, drops every box overlapping it by IoU > "
        f"{threshold}, and repeats: {len(keep)} boxes remain"
        + (f" (more than one on {', '.join(extra)})." if extra else ", one per object.")
        + f" {names[0]} survives inside {names[1]}: NMS compares overlap, not containment, and "
        f"their IoU is only {nested:.2f}."
    )
    return Stage("Boxes before and after NMS (lesson 04)", text, ["04_nms.png"])


def stage_roi_crops(image, out: Path, default: bool) -> Stage:
    """Lessons 05 and 07: the boxes projected onto a stride-16 grid and pooled to fixed size."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from ..ops import roi_align, roi_pool
    from ..viz import draw_boxes, show_image

    stride = 16 if min(image.shape[:2]) >= 64 else max(1, min(image.shape[:2]) // 4)
    boxes, names = demo_boxes(image.shape, default)
    gray = image[..., :3].astype(np.float64).mean(axis=-1) / 255.0
    h, w = gray.shape[0] // stride, gray.shape[1] // stride
    # No CNN yet: the stand-in feature map averages every 16 x 16 block of the grey image.
    feature = gray[: h * stride, : w * stride].reshape(h, stride, w, stride).mean(axis=(1, 3))
    feature = feature[None, None]  # (N, C, H, W) = (1, 1, h, w)
    rois = np.concatenate([np.zeros((len(boxes), 1)), boxes], axis=1)  # (K, 5)
    pooled = roi_pool(feature, rois, 7, 1.0 / stride)
    aligned = roi_align(feature, rois, 7, 1.0 / stride, 2, True)

    fig, ax = plt.subplots(figsize=(6, 6))
    show_image(ax, feature[0, 0], f"stand-in feature map, {h} x {w} cells (stride {stride})")
    snapped = np.sign(boxes / stride) * np.floor(np.abs(boxes / stride) + 0.5)
    for x1, y1, x2, y2 in snapped:  # the cells RoI pooling reads (inclusive end)
        ax.add_patch(Rectangle((x1, y1), x2 - x1 + 1, y2 - y1 + 1, color="#ffe119", alpha=0.3))
    draw_boxes(ax, boxes / stride, names)
    save_figure(fig, out / "05_roi_grid.png", dpi=90, tight_layout=False)

    fig, axes = plt.subplots(2, len(names), figsize=(2.2 * len(names), 4.6))
    axes = np.asarray(axes).reshape(2, -1)
    for k, name in enumerate(names):
        axes[0, k].imshow(pooled[k, 0], cmap="gray")
        axes[0, k].set_title(f"{name}: RoI pool")
        axes[1, k].imshow(aligned[k, 0], cmap="gray")
        axes[1, k].set_title("RoIAlign")
    for a in axes.ravel():
        a.axis("off")
    save_figure(fig, out / "05_roi_crops.png", dpi=90)

    shift = np.abs(snapped * stride - boxes).max()
    text = (
        f"Fast R-CNN runs the CNN once and crops every proposal out of the feature map. With no "
        f"CNN yet, the feature map here is the grey image averaged over {stride} x {stride} "
        f"blocks ({h} x {w} cells). Each box is projected onto it (spatial_scale 1/{stride}); "
        f"RoI pooling snaps it to whole cells (shaded; up to {shift:.0f} image pixels off here) "
        f"and max-pools 7 x 7 bins, RoIAlign samples the exact box by bilinear interpolation. "
        f"Every box, whatever its size, becomes a 7 x 7 crop."
    )
    return Stage("RoI crops (lessons 05 and 07)", text, ["05_roi_grid.png", "05_roi_crops.png"])


def stage_masks(image, out: Path, default: bool) -> Stage:
    """Lesson 08: a ground-truth mask projected onto a proposal (the 28 x 28 target) and pasted back."""
    import matplotlib.pyplot as plt
    from skimage.draw import ellipse

    from ..detection.masks import paste_masks_in_image, project_masks_on_boxes
    from ..viz import draw_boxes, show_image

    boxes, names = demo_boxes(image.shape, default)
    h, w = image.shape[:2]
    x1, y1, x2, y2 = boxes[0]  # the face: an ellipse inscribed in its box is the "ground truth"
    gt = np.zeros((1, h, w), dtype=np.float64)
    rr, cc = ellipse(
        (y1 + y2) / 2, (x1 + x2) / 2, max((y2 - y1) / 2, 1), max((x2 - x1) / 2, 1), (h, w)
    )
    gt[0, rr, cc] = 1.0
    bw, bh = x2 - x1, y2 - y1
    proposal = np.array([[x1 - 0.15 * bw, y1 + 0.1 * bh, x2 + 0.05 * bw, y2 + 0.2 * bh]])
    proposal = B.clip_boxes_to_image(proposal, (h, w))
    target = project_masks_on_boxes(gt, proposal, np.zeros(1, dtype=np.int64), 28)  # (1, 28, 28)
    pasted = paste_masks_in_image(target[:, None], proposal, (h, w))[0, 0]
    inside = pasted >= 0.5
    agree = np.logical_and(inside, gt[0] > 0).sum() / max(np.logical_or(inside, gt[0] > 0).sum(), 1)

    fig, axes = plt.subplots(1, 3, figsize=(13, 4.6))
    show_image(axes[0], image, "ground-truth mask and a proposal")
    axes[0].contour(gt[0], levels=[0.5], colors="#3cb44b")
    draw_boxes(axes[0], proposal, ["proposal"])
    axes[1].imshow(target[0], cmap="viridis", vmin=0, vmax=1)
    axes[1].set_title("28 x 28 soft target (roi_align)")
    show_image(axes[2], image, "target pasted back, threshold 0.5")
    axes[2].imshow(np.ma.masked_where(~inside, pasted), cmap="autumn", alpha=0.5, vmin=0, vmax=1)
    axes[2].contour(gt[0], levels=[0.5], colors="#3cb44b")
    for a in axes:
        a.axis("off")
    save_figure(fig, out / "08_masks.png", dpi=90)

    soft = float(np.mean((target > 0.02) & (target < 0.98)))
    text = (
        f"Mask R-CNN learns a 28 x 28 mask per positive proposal. Its training target is the "
        f"ground-truth mask of the matched object (here an ellipse on the {names[0]}) cropped to "
        f"the proposal with RoIAlign: a soft target, {100 * soft:.0f}% of its cells strictly "
        f"between 0 and 1 along the outline. At test time paste_masks_in_image resizes the 28 x 28 "
        f"mask to the (integer) box and writes it into the image; pasting the target back and "
        f"thresholding at 0.5 recovers the ground truth with IoU {agree:.3f} (lesson 08)."
    )
    return Stage("Mask targets and pasting (lesson 08)", text, ["08_masks.png"])
