"""Matplotlib helpers for the lessons and the tour: boxes on images, pairwise matrices.

Arrays from any backend are accepted; they are copied to the host with ``to_numpy``.
"""

from __future__ import annotations

import numpy as np

from ._backend import to_numpy

COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324"]


def draw_boxes(ax, boxes, labels=None, colors=None, linewidth=2.0, fontsize=9, fill=False):
    """Draw xyxy boxes on a matplotlib axis (continuous coordinates, x = column).

    An image shown with ``ax.imshow(img)`` puts pixel ``(r, c)``'s centre at ``(c, r)``, so its
    edges are at half-integers; we pass ``extent`` in :func:`show_image` so that pixel edges sit
    on integers, matching the continuous box convention.
    """
    from matplotlib.patches import Rectangle

    boxes = np.asarray(to_numpy(boxes), dtype=float).reshape(-1, 4)
    colors = colors or COLORS
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        color = colors[i % len(colors)]
        ax.add_patch(
            Rectangle(
                (x1, y1),
                x2 - x1,
                y2 - y1,
                fill=fill,
                alpha=0.25 if fill else 1.0,
                edgecolor=color,
                facecolor=color,
                linewidth=linewidth,
            )
        )
        if labels is not None:
            ax.text(
                x1 + 2,
                y1 + 2,
                str(labels[i]),
                color="white",
                fontsize=fontsize,
                va="top",
                bbox=dict(facecolor=color, edgecolor="none", pad=1.5, alpha=0.85),
            )
    return ax


def show_image(ax, image, title=None):
    """Show an (H, W[, 3]) image with pixel edges on integer coordinates."""
    image = np.asarray(to_numpy(image))
    h, w = image.shape[:2]
    ax.imshow(image, extent=(0, w, h, 0), cmap="gray" if image.ndim == 2 else None)
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    if title:
        ax.set_title(title)
    return ax


def plot_matrix(
    ax, matrix, row_labels, col_labels=None, title=None, vmin=0.0, vmax=1.0, cmap="viridis"
):
    """A pairwise matrix (IoU, GIoU, ...) as a heat map with its values written in the cells."""
    m = np.asarray(to_numpy(matrix), dtype=float)
    col_labels = row_labels if col_labels is None else col_labels
    im = ax.imshow(m, vmin=vmin, vmax=vmax, cmap=cmap)
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=45, ha="right")
    ax.set_yticks(range(len(row_labels)), row_labels)
    for (i, j), v in np.ndenumerate(m):
        shade = (v - vmin) / (vmax - vmin) if vmax > vmin else 0.5
        ax.text(
            j,
            i,
            f"{v:.2f}",
            ha="center",
            va="center",
            fontsize=8,
            color="black" if shade > 0.6 else "white",
        )
    if title:
        ax.set_title(title)
    return im


def _index_of(values, wanted, what):
    values = np.asarray(values, dtype=float)
    hit = np.flatnonzero(np.isclose(values, wanted))
    if not len(hit):
        raise ValueError(f"{what} must be one of {values.tolist()}, got {wanted}")
    return int(hit[0])


def plot_pr_curves(
    ax, result, by="iou", *, iou=0.5, area="all", max_dets=None, category_names=None, top=None
):
    """Precision-recall curves from a ``coco_evaluate`` result (its ``.precision`` array).

    ``by="iou"``: one curve per IoU threshold, precision averaged over the categories that have
    ground truth (COCO's -1 entries left out), as AP@t is. ``by="category"``: one curve per
    category at IoU ``iou`` (``top`` = only the categories with the highest AP). Both read area
    range ``area`` and the largest ``max_dets`` unless given; the legend gives each curve's AP
    (the mean of the curve over the 101 recall points).

    ``result`` may also be a bare ``(T, R, K, A, M)`` precision array; then the thresholds are
    COCO's defaults.
    """
    precision = np.asarray(getattr(result, "precision", result), dtype=float)
    t_count, r_count, k_count, a_count, m_count = precision.shape
    ious = getattr(result, "iou_thresholds", np.linspace(0.5, 0.95, t_count))
    recalls = np.asarray(getattr(result, "rec_thresholds", np.linspace(0, 1, r_count)))
    areas = list(getattr(result, "area_labels", ("all", "small", "medium", "large")[:a_count]))
    dets = list(getattr(result, "max_dets", range(m_count)))
    cats = list(getattr(result, "cat_ids", range(1, k_count + 1)))
    if area not in areas:
        raise ValueError(f"area must be one of {areas}, got {area!r}")
    a = areas.index(area)
    m = m_count - 1 if max_dets is None else dets.index(max_dets)
    if by == "iou":
        for t in range(t_count):
            p = precision[t, :, :, a, m]  # (R, K)
            valid = p[0] > -1
            curve = p[:, valid].mean(axis=1) if valid.any() else np.zeros(r_count)
            ax.plot(
                recalls,
                curve,
                label=f"IoU {ious[t]:.2f}  AP {curve.mean():.3f}",
                color=_viridis(t / max(t_count - 1, 1)),
            )
        ax.set_title(f"precision-recall per IoU threshold (area {area}, maxDets {dets[m]})")
    elif by == "category":
        t = _index_of(ious, iou, "iou")
        p = precision[t, :, :, a, m]  # (R, K)
        order = [k for k in np.argsort(-p.mean(axis=0), kind="stable") if p[0, k] > -1]
        for rank, k in enumerate(order[:top]):
            name = category_names[k] if category_names is not None else f"category {cats[k]}"
            ax.plot(
                recalls,
                p[:, k],
                label=f"{name}  AP {p[:, k].mean():.3f}",
                color=COLORS[rank % len(COLORS)],
            )
        ax.set_title(f"precision-recall per category at IoU {ious[t]:.2f}")
    else:
        raise ValueError(f'by must be "iou" or "category", got {by!r}')
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return ax


def _viridis(x):
    """A colour from matplotlib's viridis at ``x`` in [0, 1]."""
    from matplotlib import colormaps

    return colormaps["viridis"](x)


def plot_confusion_matrix(ax, confmat, class_names=None, normalize=None, title=None, cmap="Blues"):
    """A (C, C) confusion matrix (rows: true class, columns: predicted) as an annotated heat map.

    ``normalize="true"`` divides each row by its total (each row then shows where the pixels
    of one true class went: the diagonal is the class accuracy); ``"pred"`` divides each
    column; ``None`` shows the counts.
    """
    m = np.asarray(to_numpy(confmat), dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"confmat must have shape (C, C), got {m.shape}")
    if normalize not in (None, "true", "pred"):
        raise ValueError(f'normalize must be None, "true" or "pred", got {normalize!r}')
    shown = m
    if normalize is not None:
        totals = (
            m.sum(axis=1, keepdims=True) if normalize == "true" else m.sum(axis=0, keepdims=True)
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            shown = np.where(totals > 0, m / np.where(totals > 0, totals, 1), np.nan)
    names = class_names if class_names is not None else [str(i) for i in range(len(m))]
    top = np.nanmax(shown) if np.isfinite(shown).any() else 1.0
    im = ax.imshow(shown, cmap=cmap, vmin=0, vmax=top if top > 0 else 1.0)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    for (i, j), v in np.ndenumerate(shown):
        text = "" if np.isnan(v) else (f"{v:.2f}" if normalize else f"{int(v)}")
        dark = not np.isnan(v) and top > 0 and v / top > 0.6
        ax.text(
            j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black"
        )
    if title:
        ax.set_title(title)
    return im


#: Colours of class maps: background black, then one distinct colour per class (Okabe-Ito).
CLASS_COLORS = np.array(
    [[0, 0, 0], [230, 159, 0], [86, 180, 233], [0, 158, 115], [240, 228, 66], [0, 114, 178],
     [213, 94, 0], [204, 121, 167], [255, 255, 255]], dtype=np.uint8)  # fmt: skip


def class_map_colors(classes):
    """An ``(H, W)`` integer class map as an ``(H, W, 3)`` uint8 picture (:data:`CLASS_COLORS`;
    classes beyond the palette cycle through it, negative ones -- ignored pixels -- are grey)."""
    c = np.asarray(to_numpy(classes))
    if c.ndim != 2 or not np.issubdtype(c.dtype, np.integer):
        raise ValueError(f"classes must be an (H, W) integer map, got {c.dtype}{c.shape}")
    picture = CLASS_COLORS[np.where(c < 0, 0, c) % len(CLASS_COLORS)]
    picture[c < 0] = 128
    return picture


def show_class_map(ax, classes, names=None, title=None):
    """Draw a class map in :data:`CLASS_COLORS`, with a legend of the ``names`` it contains."""
    from matplotlib.patches import Patch

    show_image(ax, class_map_colors(classes), title)
    if names is not None:
        present = np.unique(np.asarray(to_numpy(classes)))
        handles = [Patch(color=CLASS_COLORS[k % len(CLASS_COLORS)] / 255, label=names[k])
                   for k in present if 0 <= k < len(names)]  # fmt: skip
        ax.legend(handles=handles, fontsize=7, loc="lower right", framealpha=0.7)
    return ax
