"""RoI operations: crop every region of interest out of a feature map, forward and backward.

* :func:`roi_pool` / :func:`roi_pool_backward` -- Fast R-CNN's quantised max pooling (lesson 05);
* :func:`roi_align` / :func:`roi_align_backward` -- Mask R-CNN's bilinear RoIAlign (lesson 07);
* :func:`ps_roi_align` / :func:`ps_roi_align_backward` -- R-FCN's position-sensitive RoIAlign;
* :func:`multiscale_roi_align`, :func:`level_mapper`, :func:`infer_scale` -- RoIAlign on an FPN
  pyramid, each box on the level FPN's Eqn. (1) assigns it to.

Every function mirrors the ``torchvision.ops`` function of the same name (0.29.1), takes RoIs
as a ``(K, 5)`` array ``(batch_index, x1, y1, x2, y2)`` or a list of per-image ``(L_i, 4)``
arrays, and is device-pure: no host synchronisation, all RoIs, bins and samples at once.
"""

from .align import roi_align, roi_align_backward
from .multiscale import infer_scale, level_mapper, multiscale_roi_align
from .pool import roi_pool, roi_pool_backward
from .ps_align import ps_roi_align, ps_roi_align_backward

__all__ = [
    "roi_pool",
    "roi_pool_backward",
    "roi_align",
    "roi_align_backward",
    "ps_roi_align",
    "ps_roi_align_backward",
    "multiscale_roi_align",
    "level_mapper",
    "infer_scale",
]
