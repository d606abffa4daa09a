"""``minivision.ops`` -- the operators of ``torchvision.ops``, on NumPy and CuPy from one source.

* boxes (lesson 00): :func:`box_convert`, :func:`box_area`, :func:`box_iou` and the GIoU / DIoU /
  CIoU family (``boxes``); :func:`clip_boxes_to_image`, :func:`remove_small_boxes`,
  :func:`masks_to_boxes` (``box_image``: boxes against the image they lie in);
* non-maximum suppression (lesson 04): :func:`nms`, :func:`batched_nms`, :func:`soft_nms`;
* RoI operators, each box cropped out of a feature map, forward and backward:
  :func:`roi_pool` (Fast R-CNN, lesson 05), :func:`roi_align` (Mask R-CNN, lesson 07),
  :func:`ps_roi_align` (R-FCN), and the multi-scale RoIAlign of an FPN pyramid,
  :func:`multiscale_roi_align` with :func:`level_mapper` and :func:`infer_scale` (``poolers``).

Every function mirrors the ``torchvision.ops`` function of the same name (0.29.1). As in
torchvision, a module and its main function share a name (``ops.roi_align`` is the function;
the module is ``minivision.ops.roi_align`` for ``from ... import``).
"""

from .box_image import clip_boxes_to_image, masks_to_boxes, remove_small_boxes
from .boxes import (
    box_area,
    box_convert,
    box_iou,
    complete_box_iou,
    distance_box_iou,
    generalized_box_iou,
)
from .nms import batched_nms, nms, soft_nms
from .poolers import infer_scale, level_mapper, multiscale_roi_align
from .ps_roi_align import ps_roi_align, ps_roi_align_backward
from .roi_align import roi_align, roi_align_backward, roi_align_naive
from .roi_pool import roi_pool, roi_pool_backward

__all__ = [
    "box_area",
    "box_convert",
    "box_iou",
    "clip_boxes_to_image",
    "complete_box_iou",
    "distance_box_iou",
    "generalized_box_iou",
    "masks_to_boxes",
    "remove_small_boxes",
    "nms",
    "batched_nms",
    "soft_nms",
    "roi_pool",
    "roi_pool_backward",
    "roi_align",
    "roi_align_backward",
    "roi_align_naive",
    "ps_roi_align",
    "ps_roi_align_backward",
    "multiscale_roi_align",
    "level_mapper",
    "infer_scale",
]
