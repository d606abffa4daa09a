"""pycocotools as the reference for the COCO tests: run it on copies, quietly, and compare."""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np


def pycocotools_eval(gt, dt, iou_type="bbox", **params):
    """(COCOeval after evaluate/accumulate/summarize, its 12 printed summary lines).

    ``params`` set ``COCOeval.params`` fields (``iouThrs``, ``maxDets``, ``useCats`` ...).
    ``gt`` and ``dt`` are deep-copied: loadRes and evaluate write into their dicts.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()) as out:
        cg = COCO()
        cg.dataset = copy.deepcopy(gt)
        cg.createIndex()
        cd = cg.loadRes(copy.deepcopy(dt))
        E = COCOeval(cg, cd, iou_type)
        for key, value in params.items():
            setattr(E.params, key, value)
        E.evaluate()
        E.accumulate()
        E.summarize()
    lines = [line for line in out.getvalue().splitlines() if line.startswith(" Average")]
    return E, lines


def assert_same_as_pycocotools(result, E, lines):
    """Every array bit for bit, the stats and the printed summary."""
    for name in ("precision", "recall", "scores"):
        ours, ref = getattr(result, name), E.eval[name]
        assert ours.shape == ref.shape, f"{name}: shape {ours.shape}, pycocotools {ref.shape}"
        if not np.array_equal(ours, ref):
            where = np.argwhere(ours != ref)[0]
            raise AssertionError(
                f"{name} differs at {tuple(where)}: got {ours[tuple(where)]!r}, "
                f"pycocotools {ref[tuple(where)]!r}"
            )
    assert np.array_equal(result.stats, np.asarray(E.stats)), (result.stats, E.stats)
    assert result.summary().splitlines() == lines
