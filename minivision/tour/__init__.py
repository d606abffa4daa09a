"""``minivision tour``: the whole pipeline on one photograph, as an illustrated report.

Each stage writes its figures and a paragraph; ``index.html`` strings them together in pipeline
order (segmentation -> proposals -> boxes -> features -> anchors -> NMS -> RoI crops -> masks ->
a trained network -> its score -> semantic maps). The stages live by part of the course: ``classical.py``
(lessons 00-03), ``regions.py`` (04-08), ``learning.py`` (09-10), ``semantic.py`` (15); ``common.py`` holds what they
share. Later lessons add a stage function to ``STAGES``. Like the command line, this is a host
island: it works on NumPy arrays (images read from disk, figures for matplotlib), never on a
device.
"""

from __future__ import annotations

import html
from pathlib import Path

from .classical import stage_boxes, stage_features, stage_proposals, stage_segmentation
from .common import ASTRONAUT_BOXES, Stage, demo_boxes, load_image, save_figure
from .learning import stage_evaluation, stage_training
from .regions import candidate_detections, stage_anchors, stage_masks, stage_nms, stage_roi_crops
from .semantic import stage_semantic

__all__ = [
    "STAGES", "run_tour", "write_index", "Stage", "load_image", "save_figure", "demo_boxes",
    "ASTRONAUT_BOXES", "candidate_detections", "stage_segmentation", "stage_proposals",
    "stage_boxes", "stage_features", "stage_anchors", "stage_nms", "stage_roi_crops",
    "stage_masks", "stage_training", "stage_evaluation", "stage_semantic",
]

# In pipeline order: the classical proposals (segments, then grouped boxes), how a box is
# measured against an object (IoU), the network's feature map, the anchors a region proposal
# network scores on it, NMS of the scored boxes, the RoI crops of the kept boxes, their masks;
# then a network trained from scratch, the field's score of its detections, and the
# segmenters' semantic maps.
STAGES = [
    stage_segmentation,
    stage_proposals,
    stage_boxes,
    stage_features,
    stage_anchors,
    stage_nms,
    stage_roi_crops,
    stage_masks,
    stage_training,
    stage_evaluation,
    stage_semantic,
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
