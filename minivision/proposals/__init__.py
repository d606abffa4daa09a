"""``minivision.proposals`` -- classical region proposals, before any network.

* :func:`felzenszwalb` -- Felzenszwalb & Huttenlocher's graph-based segmentation (lesson 02);
* :func:`selective_search` -- Uijlings et al.'s hierarchical grouping of those segments into
  object proposals (lesson 03);
* :mod:`minivision.proposals.runner` -- R-CNN's pre-computation step, selective search over a
  folder of images (``minivision proposals``).
"""

from .felzenszwalb import felzenszwalb
from .selective_search import selective_search

__all__ = ["felzenszwalb", "selective_search"]
