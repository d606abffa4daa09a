"""The evaluation plots draw what they are given: PR curves from coco_evaluate, a confusion matrix."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from minivision.eval import coco_evaluate, confusion_matrix  # noqa: E402
from minivision.viz import plot_confusion_matrix, plot_pr_curves  # noqa: E402


def _result():
    gt = {
        "images": [{"id": 1, "width": 100, "height": 100}],
        "categories": [{"id": 1}, {"id": 2}, {"id": 3}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": [0, 0, 10, 10],
                "area": 100,
                "iscrowd": 0,
            },
            {
                "id": 2,
                "image_id": 1,
                "category_id": 2,
                "bbox": [20, 0, 10, 10],
                "area": 100,
                "iscrowd": 0,
            },
        ],
    }
    dt = [
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 9], "score": 0.9},
        {"image_id": 1, "category_id": 2, "bbox": [50, 50, 10, 10], "score": 0.8},
        {"image_id": 1, "category_id": 2, "bbox": [21, 0, 10, 10], "score": 0.7},
    ]
    return coco_evaluate(gt, dt)


def test_pr_curves_per_iou_and_per_category():
    r = _result()
    fig, (a, b) = plt.subplots(1, 2)
    plot_pr_curves(a, r, by="iou")
    assert len(a.lines) == 10
    mean_curve = r.precision[0, :, :2, 0, -1].mean(axis=1)  # category 3 has no ground truth
    np.testing.assert_array_equal(a.lines[0].get_ydata(), mean_curve)
    plot_pr_curves(b, r, by="category", iou=0.75, category_names=["cat", "dog", "fox"])
    labels = [line.get_label() for line in b.lines]
    assert len(labels) == 2 and labels[0].startswith("cat") and labels[1].startswith("dog")
    plot_pr_curves(b, r.precision, by="category", top=1)  # a bare array works too
    with pytest.raises(ValueError, match="iou must be one of"):
        plot_pr_curves(b, r, by="category", iou=0.42)
    with pytest.raises(ValueError, match="by must be"):
        plot_pr_curves(b, r, by="area")
    plt.close(fig)


def test_confusion_matrix_plot():
    pred, target = np.array([0, 1, 1, 2, 2, 2]), np.array([0, 1, 2, 2, 2, 1])
    cm = confusion_matrix(pred, target, 4)
    fig, ax = plt.subplots()
    im = plot_confusion_matrix(ax, cm, ["a", "b", "c", "d"], normalize="true")
    shown = im.get_array()
    np.testing.assert_allclose(shown[2], [0, 1 / 3, 2 / 3, 0])
    assert np.ma.getmaskarray(shown)[3].all()  # class d has no pixels: its row is blank (NaN)
    texts = [t.get_text() for t in ax.texts]
    assert "0.67" in texts
    plot_confusion_matrix(ax, cm)
    assert "2" in [t.get_text() for t in ax.texts]
    with pytest.raises(ValueError, match="normalize"):
        plot_confusion_matrix(ax, cm, normalize="all")
    plt.close(fig)
