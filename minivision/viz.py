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
