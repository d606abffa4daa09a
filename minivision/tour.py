"""``minivision tour``: the whole pipeline on one photograph, as an illustrated report.

Each stage that exists so far writes its figures and a paragraph; ``index.html`` strings them
together in pipeline order (segmentation -> proposals -> anchors -> NMS -> RoI crops -> masks).
Later lessons add a stage function to ``STAGES``. Like the command line, this is a host island:
it works on NumPy arrays (images read from disk, figures for matplotlib), never on a device.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .ops import boxes as B

# The default image's objects, in its pixel coordinates (skimage.data.astronaut, 512 x 512).
ASTRONAUT_BOXES = {
    "face": (170, 35, 265, 165),
    "head": (148, 12, 300, 178),
    "collar": (110, 150, 310, 290),
    "patch": (135, 345, 210, 420),
    "helmet": (278, 338, 512, 512),
    "shuttle": (362, 0, 470, 262),
}


def save_figure(fig, path: Path, dpi: int = 90, tight_layout: bool = True) -> None:
    """Write ``fig`` as a PNG (cropped to its content) and free it: every stage ends this way."""
    import matplotlib.pyplot as plt

    if tight_layout:
        fig.tight_layout()
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)


@dataclass
class Stage:
    title: str
    text: str
    figures: list[str] = field(default_factory=list)


def load_image(path=None):
    """The photograph to tour: ``path`` if given, else scikit-image's astronaut (no download)."""
    if path is None:
        from skimage import data

        return data.astronaut(), "skimage.data.astronaut()"
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IMAGE must be an image file, {path} does not exist")
    from skimage import io

    try:
        image = io.imread(path)
    except Exception as err:  # imageio / PIL raise many kinds for a file that is not a picture
        raise ValueError(
            f"IMAGE must be a picture scikit-image can read (PNG, JPEG, ...), {path} is not "
            f"({type(err).__name__}: {err})"
        ) from None
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    if image.ndim != 3 or image.shape[2] < 3:
        raise ValueError(f"IMAGE must be a grayscale or colour picture, got shape {image.shape}")
    return image[..., :3], str(path)


def demo_boxes(image_shape, default: bool):
    """Named boxes: the astronaut's objects, or the same layout scaled to another image."""
    names = list(ASTRONAUT_BOXES)
    b = np.array(list(ASTRONAUT_BOXES.values()), dtype=np.float64)
    if default:
        return b, names
    h, w = image_shape[:2]
    b = b / 512.0 * np.array([w, h, w, h])
    return B.clip_boxes_to_image(b, (h, w)), [chr(ord("A") + i) for i in range(len(names))]


def stage_boxes(image, out: Path, default: bool) -> Stage:
    import matplotlib.pyplot as plt

    from .viz import draw_boxes, plot_matrix, show_image

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

    from .ops.nms import nms
    from .viz import COLORS, draw_boxes, show_image

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


def stage_features(image, out: Path, default: bool) -> Stage:
    import matplotlib.pyplot as plt

    from .nn.functional.conv import conv2d
    from .nn.functional.pool import max_pool2d

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


def stage_segmentation(image, out: Path, default: bool) -> Stage:
    import time

    import matplotlib.pyplot as plt
    from skimage.segmentation import find_boundaries

    from .proposals.felzenszwalb import felzenszwalb

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


def stage_roi_crops(image, out: Path, default: bool) -> Stage:
    """Lessons 05 and 07: the boxes projected onto a stride-16 grid and pooled to fixed size."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from .ops import roi_align, roi_pool
    from .viz import draw_boxes, show_image

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


def stage_proposals(image, out: Path, default: bool) -> Stage:
    import time

    import matplotlib.pyplot as plt

    from .proposals.selective_search import selective_search
    from .viz import draw_boxes, show_image

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


def stage_anchors(image, out: Path, default: bool) -> Stage:
    import matplotlib.pyplot as plt

    from .detection.anchors import AnchorGenerator
    from .detection.matcher import Matcher
    from .viz import COLORS, draw_boxes, show_image

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


def stage_masks(image, out: Path, default: bool) -> Stage:
    """Lesson 08: a ground-truth mask projected onto a proposal (the 28 x 28 target) and pasted back."""
    import matplotlib.pyplot as plt
    from skimage.draw import ellipse

    from .detection.masks import paste_masks_in_image, project_masks_on_boxes
    from .viz import draw_boxes, show_image

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


# In pipeline order: the classical proposals (segments, then grouped boxes), how a box is
# measured against an object (IoU), the network's feature map, the anchors a region proposal
# network scores on it, NMS of the scored boxes, the RoI crops of the kept boxes, their masks.
STAGES = [
    stage_segmentation,
    stage_proposals,
    stage_boxes,
    stage_features,
    stage_anchors,
    stage_nms,
    stage_roi_crops,
    stage_masks,
]


def write_index(out: Path, source: str, stages: list[Stage]) -> Path:
    parts = [
        "<!doctype html><meta charset='utf-8'><title>minivision tour</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}img{max-width:100%}</style>",
        f"<h1>minivision tour</h1><p>Image: <code>{html.escape(source)}</code></p>",
    ]
    for s in stages:
        parts.append(f"<h2>{html.escape(s.title)}</h2><p>{html.escape(s.text)}</p>")
        parts += [f"<p><img src='{html.escape(f)}' alt='{html.escape(f)}'></p>" for f in s.figures]
    index = out / "index.html"
    index.write_text("\n".join(parts), encoding="utf-8")
    return index


def run_tour(image_path=None, out="minivision-tour") -> Path:
    """Run every stage on the image and write PNG figures and ``index.html`` into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    image, source = load_image(image_path)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stages = [stage(image, out, image_path is None) for stage in STAGES]
    return write_index(out, source, stages)
