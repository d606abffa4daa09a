"""PASCAL VOC AP against a transcription of the published devkit code.

``devkit_voc_ap`` and ``devkit_voc_eval`` below are written from py-faster-rcnn's
``lib/datasets/voc_eval.py`` (Bharath Hariharan's port of the MATLAB ``VOCevaldet``/``VOCap``),
line for line, with the file reading replaced by in-memory records. Two lines differ, each
marked: the sort is stable (MATLAB's ``sort`` is; NumPy's default quicksort is not, so tied
scores would be ranked arbitrarily), and precision is ``tp / max(tp + fp, eps)`` (detectron2's
fix for the 0 / 0 the port gives while the first detections hit difficult objects; MATLAB's
``max`` skips that NaN and gets the same AP).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minivision.eval.voc import voc_ap, voc_evaluate

# ----------------------------------------------------------------------------- the devkit


def devkit_voc_ap(rec, prec, use_07_metric=False):
    if use_07_metric:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            if np.sum(rec >= t) == 0:
                p = 0
            else:
                p = np.max(prec[rec >= t])
            ap = ap + p / 11.0
    else:
        mrec = np.concatenate(([0.0], rec, [1.0]))
        mpre = np.concatenate(([0.0], prec, [0.0]))
        for i in range(mpre.size - 1, 0, -1):
            mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
        i = np.where(mrec[1:] != mrec[:-1])[0]
        ap = np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])
    return ap


def devkit_voc_eval(recs, detections, classname, ovthresh=0.5, use_07_metric=False):
    """recs: {image: [{"name", "bbox", "difficult"}]}; detections: [(image, score, x1, y1, x2, y2)]."""
    class_recs = {}
    npos = 0
    for imagename in recs:
        R = [obj for obj in recs[imagename] if obj["name"] == classname]
        bbox = np.array([x["bbox"] for x in R])
        difficult = np.array([x["difficult"] for x in R]).astype(bool)
        det = [False] * len(R)
        npos = npos + sum(~difficult)
        class_recs[imagename] = {"bbox": bbox, "difficult": difficult, "det": det}

    image_ids = [x[0] for x in detections]
    confidence = np.array([float(x[1]) for x in detections])
    BB = np.array([[float(z) for z in x[2:]] for x in detections]).reshape(-1, 4)

    sorted_ind = np.argsort(-confidence, kind="stable")  # stable, as MATLAB's sort
    BB = BB[sorted_ind, :]
    image_ids = [image_ids[x] for x in sorted_ind]

    nd = len(image_ids)
    tp = np.zeros(nd)
    fp = np.zeros(nd)
    for d in range(nd):
        R = class_recs[image_ids[d]]
        bb = BB[d, :].astype(float)
        ovmax = -np.inf
        BBGT = R["bbox"].astype(float)

        if BBGT.size > 0:
            ixmin = np.maximum(BBGT[:, 0], bb[0])
            iymin = np.maximum(BBGT[:, 1], bb[1])
            ixmax = np.minimum(BBGT[:, 2], bb[2])
            iymax = np.minimum(BBGT[:, 3], bb[3])
            iw = np.maximum(ixmax - ixmin + 1.0, 0.0)
            ih = np.maximum(iymax - iymin + 1.0, 0.0)
            inters = iw * ih
            uni = (
                (bb[2] - bb[0] + 1.0) * (bb[3] - bb[1] + 1.0)
                + (BBGT[:, 2] - BBGT[:, 0] + 1.0) * (BBGT[:, 3] - BBGT[:, 1] + 1.0)
                - inters
            )
            overlaps = inters / uni
            ovmax = np.max(overlaps)
            jmax = np.argmax(overlaps)

        if ovmax > ovthresh:
            if not R["difficult"][jmax]:
                if not R["det"][jmax]:
                    tp[d] = 1.0
                    R["det"][jmax] = 1
                else:
                    fp[d] = 1.0
        else:
            fp[d] = 1.0

    fp = np.cumsum(fp)
    tp = np.cumsum(tp)
    rec = tp / float(npos)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)  # detectron2's 0 / 0 fix
    ap = devkit_voc_ap(rec, prec, use_07_metric)
    return rec, prec, ap


# ----------------------------------------------------------------------------- helpers


def to_devkit(gt, dt, classes):
    """Our per-image dicts as the devkit's records and per-class detection lists."""
    recs = {
        i: [
            {"name": int(lab), "bbox": list(box), "difficult": int(dif)}
            for box, lab, dif in zip(g["boxes"], g["labels"], g["difficult"])
        ]
        for i, g in enumerate(gt)
    }
    dets = {
        c: [
            (i, s, *box)
            for i, d in enumerate(dt)
            for box, s, lab in zip(d["boxes"], d["scores"], d["labels"])
            if lab == c
        ]
        for c in classes
    }
    return recs, dets


def compare_with_devkit(gt, dt, use_07_metric, ovthresh=0.5):
    ours = voc_evaluate(gt, dt, iou_threshold=ovthresh, use_07_metric=use_07_metric)
    classes = sorted({int(c) for g in gt for c, d in zip(g["labels"], g["difficult"]) if not d})
    recs, dets = to_devkit(gt, dt, classes)
    for c in classes:
        rec, prec, ap = devkit_voc_eval(recs, dets[c], c, ovthresh, use_07_metric)
        np.testing.assert_array_equal(ours.recall[c], rec, err_msg=f"recall of class {c}")
        np.testing.assert_array_equal(ours.precision[c], prec, err_msg=f"precision of class {c}")
        assert ours.ap[c] == ap, f"AP of class {c}: got {ours.ap[c]!r}, devkit {ap!r}"
    return ours


def image(boxes, labels, difficult=None):
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    d = np.zeros(len(boxes), bool) if difficult is None else np.asarray(difficult, bool)
    return {"boxes": boxes, "labels": np.asarray(labels, np.int64), "difficult": d}


def dets(boxes, scores, labels):
    return {
        "boxes": np.asarray(boxes, float).reshape(-1, 4),
        "scores": np.asarray(scores, float),
        "labels": np.asarray(labels, np.int64),
    }


# ----------------------------------------------------------------------------- voc_ap


@pytest.mark.parametrize("use_07", [False, True])
def test_voc_ap_equals_devkit_on_random_curves(use_07):
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(0, 30))
        tp = rng.random(n) < 0.6
        npos = max(int(tp.sum()) + int(rng.integers(0, 4)), 1)
        rec = np.cumsum(tp) / npos
        prec = np.cumsum(tp) / np.arange(1, n + 1)
        assert voc_ap(rec, prec, use_07) == devkit_voc_ap(rec, prec, use_07)


def test_voc_ap_11_point_thresholds_are_the_devkits():
    """A recall of exactly 3/10 does not reach np.arange's 0.30000000000000004."""
    rec, prec = np.array([0.3]), np.array([1.0])
    assert voc_ap(rec, prec, True) == devkit_voc_ap(rec, prec, True) == pytest.approx(3 / 11)


def test_voc_ap_envelope_and_sentinels():
    rec = np.array([0.25, 0.25, 0.5, 0.5, 0.75])
    prec = np.array([1.0, 0.5, 0.667, 0.5, 0.6])
    # envelope: 1 up to 0.25, 0.667 up to 0.5, 0.6 up to 0.75, nothing after
    assert voc_ap(rec, prec) == pytest.approx(0.25 * 1.0 + 0.25 * 0.667 + 0.25 * 0.6)


def test_voc_ap_rejects_nan_precision_and_bad_shapes():
    with pytest.raises(ValueError, match="precision has NaN"):
        voc_ap(np.array([0.0, 0.5]), np.array([np.nan, 0.5]))
    with pytest.raises(ValueError, match="recall and precision"):
        voc_ap(np.zeros(3), np.zeros(2))


# ----------------------------------------------------------------------------- voc_evaluate


def test_iou_exactly_one_half_is_not_a_match():
    # with the +1: gt 10 x 10 = 100 px, detection 10 x 5 = 50 px inside it -> IoU 0.5 exactly
    gt = [image([[0, 0, 9, 9]], [1])]
    dt = [dets([[0, 0, 9, 4]], [0.9], [1])]
    assert voc_evaluate(gt, dt).ap[1] == 0.0
    assert voc_evaluate(gt, [dets([[0, 0, 9, 5]], [0.9], [1])]).ap[1] == 1.0
    compare_with_devkit(gt, dt, False)


def test_duplicate_goes_to_its_argmax_and_is_a_false_positive():
    """The second detection's best object is taken: FP, although another object fits it."""
    gt = [image([[0, 0, 9, 9], [2, 0, 11, 9]], [1, 1])]
    dt = [dets([[0, 0, 9, 9], [1, 0, 10, 9]], [0.9, 0.8], [1, 1])]
    r = compare_with_devkit(gt, dt, False)
    np.testing.assert_array_equal(r.precision[1], [1.0, 0.5])
    np.testing.assert_array_equal(r.recall[1], [0.5, 0.5])


def test_difficult_objects_are_neither_true_nor_false_positives():
    gt = [image([[0, 0, 9, 9], [20, 20, 29, 29]], [1, 1], [True, False])]
    dt = [dets([[0, 0, 9, 9], [20, 20, 29, 29], [50, 50, 59, 59]], [0.9, 0.8, 0.7], [1, 1, 1])]
    r = compare_with_devkit(gt, dt, False)
    assert r.num_positives[1] == 1
    np.testing.assert_array_equal(r.precision[1], [0.0, 1.0, 0.5])  # 0, not 0 / 0, first
    assert r.ap[1] == 1.0
    assert compare_with_devkit(gt, dt, True).ap[1] == pytest.approx(1.0)


def test_tied_scores_keep_input_order():
    gt = [image([[0, 0, 9, 9]], [1]), image([[0, 0, 9, 9]], [1])]
    dt = [dets([[30, 30, 39, 39]], [0.5], [1]), dets([[0, 0, 9, 9]], [0.5], [1])]
    r = compare_with_devkit(gt, dt, False)
    np.testing.assert_array_equal(r.precision[1], [0.0, 0.5])


def test_classes_without_positives_are_nan_and_left_out_of_the_mean():
    gt = [image([[0, 0, 9, 9]], [1])]
    dt = [dets([[0, 0, 9, 9], [0, 0, 9, 9]], [0.9, 0.8], [1, 2])]
    r = voc_evaluate(gt, dt)
    assert r.ap[1] == 1.0 and np.isnan(r.ap[2]) and r.map == 1.0


def test_empty_images_and_no_detections():
    gt = [image(np.zeros((0, 4)), []), image([[0, 0, 9, 9]], [3])]
    dt = [dets(np.zeros((0, 4)), [], []), dets(np.zeros((0, 4)), [], [])]
    r = compare_with_devkit(gt, dt, True)
    assert r.ap[3] == 0.0


def test_continuous_boxes_without_plus_one():
    gt = [image([[0, 0, 10, 10]], [1])]
    dt = [dets([[0, 0, 10, 5]], [0.9], [1])]  # IoU exactly 0.5 without the +1
    assert voc_evaluate(gt, dt, plus_one=False).ap[1] == 0.0
    assert voc_evaluate(gt, dt, plus_one=True).ap[1] == 1.0  # (11 * 6) / (11 * 11) > 0.5


def test_inputs_are_not_mutated_and_bad_input_is_named():
    gt = [image([[0, 0, 9, 9]], [1])]
    dt = [dets([[0, 0, 9, 9]], [0.9], [1])]
    before = [{k: v.copy() for k, v in d.items()} for d in gt + dt]
    voc_evaluate(gt, dt)
    for a, b in zip(gt + dt, before):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    with pytest.raises(ValueError, match=r"dt\[0\]\['scores'\] has NaN"):
        voc_evaluate(gt, [dets([[0, 0, 9, 9]], [np.nan], [1])])
    with pytest.raises(ValueError, match=r"gt\[0\]\['boxes'\]\[0\]"):
        voc_evaluate([image([[5, 0, 1, 9]], [1])], dt)
    with pytest.raises(ValueError, match="same images"):
        voc_evaluate(gt, dt + dt)
    with pytest.raises(ValueError, match=r"dt\[0\] has 1 boxes but 2 scores"):
        voc_evaluate(gt, [dets([[0, 0, 9, 9]], [0.9, 0.8], [1])])


# ----------------------------------------------------------------------------- generated


@st.composite
def scenes(draw):
    """A few images with integer boxes, difficult flags, clustered detections and tied scores."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_images = draw(st.integers(1, 5))
    gt, dt = [], []
    for _ in range(n_images):
        g = int(rng.integers(0, 6))
        xy = rng.integers(0, 40, (g, 2))
        wh = rng.integers(0, 15, (g, 2))
        boxes = np.concatenate([xy, xy + wh], axis=1).astype(float)
        gt.append(image(boxes, rng.integers(1, 4, g), rng.random(g) < 0.25))
        d = int(rng.integers(0, 10))
        src = boxes[rng.integers(0, g, d)] if g else rng.integers(0, 40, (d, 4)).astype(float)
        jitter = rng.integers(-3, 4, (d, 4))
        db = src + jitter
        db = np.concatenate([np.minimum(db[:, :2], db[:, 2:]), np.maximum(db[:, :2], db[:, 2:])], 1)
        scores = np.round(rng.random(d), 1)  # many ties
        dt.append(dets(db, scores, rng.integers(1, 4, d)))
    return gt, dt


@given(scenes(), st.booleans())
def test_generated_scenes_equal_devkit(scene, use_07):
    compare_with_devkit(*scene, use_07)
