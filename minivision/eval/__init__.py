"""Evaluation: COCO AP/AR for boxes and masks, bit-exact with pycocotools (lesson 10); the
semantic-segmentation scores and the boundary IoU (lesson 15)."""

from .coco import COCOEvalResult, coco_evaluate
from .proposals import average_recall, best_overlap, mabo, proposal_recall
from .segmentation import (
    BoundaryScores,
    SegmentationEvaluation,
    SegmentationScores,
    boundary_iou,
    boundary_width,
    confusion_matrix,
    evaluate_segmentation,
    mask_boundary,
    segmentation_scores,
)
from .voc import VOCResult, voc_ap, voc_evaluate

__all__ = ["COCOEvalResult", "coco_evaluate"]
__all__ += ["voc_ap", "voc_evaluate", "VOCResult"]
__all__ += [
    "confusion_matrix",
    "segmentation_scores",
    "evaluate_segmentation",
    "SegmentationScores",
    "SegmentationEvaluation",
    "boundary_iou",
    "boundary_width",
    "mask_boundary",
    "BoundaryScores",
]
__all__ += ["best_overlap", "proposal_recall", "average_recall", "mabo"]
