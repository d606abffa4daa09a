"""Evaluation: COCO AP/AR for boxes and masks, bit-exact with pycocotools (lesson 10)."""

from .coco import COCOEvalResult, coco_evaluate

__all__ = ["COCOEvalResult", "coco_evaluate"]
