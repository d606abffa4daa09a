"""Evaluation: COCO AP/AR for boxes and masks, bit-exact with pycocotools (lesson 10), VOC AP,
semantic-segmentation scores and boundary measures (lesson 15), proposal recall."""

from .boundary import (
    BoundaryIoUScores,
    boundary_f_score,
    boundary_iou,
    boundary_width,
    mask_to_boundary,
    semantic_boundary_iou,
)
from .coco import COCOEvalResult, coco_evaluate
from .proposals import average_recall, best_overlap, mabo, proposal_recall
from .segmentation import (
    SegmentationEvaluation,
    SegmentationScores,
    confusion_matrix,
    evaluate_segmentation,
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
]
__all__ += ["best_overlap", "proposal_recall", "average_recall", "mabo"]
__all__ += [
    "boundary_width",
    "mask_to_boundary",
    "boundary_iou",
    "semantic_boundary_iou",
    "BoundaryIoUScores",
    "boundary_f_score",
]
