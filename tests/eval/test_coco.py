"""coco_evaluate against live pycocotools 2.0.11: every array bit for bit, every quirk by name.

Each quirk of ``minivision.eval.coco``'s docstring has a tiny case built so that the quirk
changes the number, checked against pycocotools (and, for the opt-outs, against the number
the opt-out should give). Hypothesis then draws whole evaluations -- crowds, tied scores,
empty images, images without detections, categories without ground truth, areas exactly at
32² and 96², objects and masks running off the image -- compared number for number.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from coco_reference import assert_same_as_pycocotools, pycocotools_eval
from hypothesis import given
from hypothesis import strategies as st

from minivision.eval import coco_evaluate

pytest.importorskip("pycocotools")
from pycocotools import mask as cocomask  # noqa: E402

# pycocotools' decode predates NumPy 2's copy keyword; its warning is not ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def dataset(anns, images=((1, 100, 100),), cats=(1,)):
    """A COCO gt dict; annotations get ids 1.. unless they carry one."""
    out = []
    for i, a in enumerate(anns):
        a = dict(a)
        a.setdefault("id", i + 1)
        a.setdefault("iscrowd", 0)
        a.setdefault("image_id", 1)
        a.setdefault("category_id", 1)
        if "area" not in a:
            a["area"] = float(a["bbox"][2] * a["bbox"][3])
        out.append(a)
    return {
        "images": [{"id": i, "width": w, "height": h} for i, w, h in images],
        "categories": [{"id": c, "name": str(c)} for c in cats],
        "annotations": out,
    }


def box(x, y, w, h, **kw):
    return {"bbox": [x, y, w, h], **kw}


def det(x, y, w, h, score, **kw):
    return {"bbox": [x, y, w, h], "score": score, "image_id": kw.pop("image_id", 1),
            "category_id": kw.pop("category_id", 1), **kw}


def about(value):
    """Hand-computed AP values: precision is tp / (tp + fp + eps), so 1 is 1 - 2e-16."""
    return pytest.approx(value, abs=1e-12)


PARAMS = {"iou_thresholds": "iouThrs", "rec_thresholds": "recThrs", "max_dets": "maxDets",
          "use_cats": "useCats"}


def check(gt, dt, iou_type="bbox", **kw):
    """Run both; assert equality; return minivision's result."""
    ref_params = {}
    for key, value in kw.items():
        if key == "area_ranges":
            ref_params["areaRng"] = [list(v) for v in value.values()]
            ref_params["areaRngLbl"] = list(value)
        elif key == "use_cats":
            ref_params["useCats"] = int(value)
        else:
            ref_params[PARAMS[key]] = np.asarray(value) if "thresholds" in key else list(value)
    E, lines = pycocotools_eval(gt, dt, iou_type, **ref_params)
    result = coco_evaluate(gt, dt, iou_type, **kw)
    assert_same_as_pycocotools(result, E, lines)
    return result


# --- the quirks, one by one ----------------------------------------------------------------


def test_stable_score_sort_ties_keep_input_order():
    gt = dataset([box(0, 0, 10, 10)])
    miss, hit = det(50, 50, 10, 10, 0.9), det(0, 0, 10, 10, 0.9)
    assert check(gt, [miss, hit]).stats[1] == about(0.5)  # FP first: precision 1/2 at recall 1
    assert check(gt, [hit, miss]).stats[1] == about(1.0)


def test_iou_at_least_threshold_and_perfect_match_at_one():
    gt = dataset([box(0, 0, 10, 10)])
    r = check(gt, [det(0, 0, 10, 5, 0.8)])  # IoU exactly 0.5
    assert r.precision[0, :, 0, 0, -1].min() == about(1.0) and r.precision[1, 0, 0, 0, -1] == 0.0
    r = check(gt, [det(0, 0, 10, 10, 0.8)], iou_thresholds=[1.0])
    assert r.stats[0] == about(1.0)


def test_iou_tie_goes_to_the_later_ground_truth():
    a, b = box(0, 0, 10, 10), box(2, 0, 10, 10)
    dts = [det(1, 0, 10, 10, 0.9), det(-3, 0, 10, 10, 0.5)]  # dt1 ties A and B; dt2 fits A only
    assert check(dataset([a, b]), dts).stats[1] == about(1.0)  # dt1 takes B, dt2 takes A
    assert check(dataset([b, a]), dts).stats[1] < 0.9  # dt1 takes A (later), dt2 is a FP


def test_real_ground_truth_beats_a_better_crowd_match():
    gt = dataset([box(0, 0, 100, 100, iscrowd=1), box(0, 0, 10, 10)])
    r = check(gt, [det(0, 0, 10, 9, 0.9)])  # IoU 0.9 with the object, 1.0 with the crowd
    assert r.stats[1] == about(1.0)


def test_crowd_absorbs_many_detections_iou_over_detection_area():
    gt = dataset([box(0, 0, 50, 50, iscrowd=1), box(60, 60, 20, 20)])
    inside = [det(5 * i, 5 * i, 8, 8, 0.9 - 0.01 * i) for i in range(5)]
    half = det(40, 0, 20, 10, 0.95)  # half inside: IoU with the crowd = 100 / 200
    r = check(gt, inside + [half, det(60, 60, 20, 20, 0.1)])
    assert r.precision[0, -1, 0, 0, -1] == about(1.0)  # at .50 nothing is a FP
    assert r.precision[1, -1, 0, 0, -1] < 0.9  # at .55 the half-inside box is one


def test_iscrowd_overrides_the_ignore_field_unless_opted_out():
    gt = dataset([box(0, 0, 10, 10, ignore=1)])
    dt = [det(0, 0, 10, 10, 0.9)]
    assert check(gt, dt).stats[0] == about(1.0)  # pycocotools evaluates it as a normal object
    assert coco_evaluate(gt, dt, ignore_flag=True).stats[0] == -1.0  # nothing left to find


def test_area_ranges_are_closed_at_both_ends():
    gt = dataset([box(0, 0, 32, 32, area=1024.0), box(50, 50, 40, 40, area=9216.0)])
    r = check(gt, [det(0, 0, 32, 32, 0.9), det(50, 50, 40, 40, 0.8)])
    small, medium, large = r.recall[0, 0, 1:, -1]
    assert (small, medium, large) == (1.0, 1.0, 1.0)


def test_ground_truth_area_comes_from_the_annotation():
    gt = dataset([box(0, 0, 50, 50, area=100.0)])  # box 2500 (medium), annotation says small
    r = check(gt, [det(0, 0, 50, 50, 0.9)])
    assert r.recall[0, 0, 1, -1] == 1.0 and r.recall[0, 0, 2, -1] == -1.0


def _square_rle(x, y, s, h=100, w=100):
    r = cocomask.frPyObjects([[x, y, x + s, y, x + s, y + s, x, y + s]], h, w)[0]
    return {"size": r["size"], "counts": r["counts"].decode()}


def test_detection_area_comes_from_the_box_when_results_carry_boxes():
    gt = dataset([{"segmentation": [[0, 0, 10, 0, 10, 10, 0, 10]], "area": 100.0, "bbox": [0, 0, 10, 10]}])
    hit = {"image_id": 1, "category_id": 1, "score": 0.5, "segmentation": _square_rle(0, 0, 10)}
    fp = {"image_id": 1, "category_id": 1, "score": 0.9, "segmentation": _square_rle(60, 60, 8)}
    masks_only = check(gt, [fp, hit], "segm")
    boxed = [dict(fp, bbox=[0, 0, 99, 99]), dict(hit, bbox=[0, 0, 10, 10])]
    with_boxes = check(gt, boxed, "segm")
    # The FP's mask is small, its box large: it counts in "small" only in the mask-only run.
    assert masks_only.stats[3] < 0.9 and with_boxes.stats[3] == about(1.0)


def test_loadres_rewrites_ids_and_iscrowd_and_inputs_stay_untouched():
    gt = dataset([box(0, 0, 10, 10), box(20, 20, 10, 10)])
    dt = [det(0, 0, 10, 10, 0.9, id=0, iscrowd=1, area=5.0), det(20, 20, 10, 10, 0.8, id=0)]
    before = copy.deepcopy((gt, dt))
    r = check(gt, dt)
    assert r.stats[0] == about(1.0)
    assert (gt, dt) == before


def test_max_dets_apply_per_image_and_category():
    gt = dataset([box(0, 0, 10, 10), box(0, 0, 10, 10, category_id=2)], cats=(1, 2))
    dt = [det(50, 50, 10, 10, 0.9), det(0, 0, 10, 10, 0.5),
          det(50, 50, 10, 10, 0.9, category_id=2), det(0, 0, 10, 10, 0.5, category_id=2)]
    r = check(gt, dt, max_dets=[1, 2, 100])
    assert r.stats[6] == 0.0 and r.stats[7] == about(1.0)  # AR@1 keeps only each category's FP


def test_categories_without_ground_truth_are_minus_one_and_left_out():
    gt = dataset([box(0, 0, 10, 10), box(30, 30, 10, 10, category_id=3)], cats=(1, 2, 3))
    r = check(gt, [det(0, 0, 10, 10, 0.9), det(60, 60, 10, 10, 0.9, category_id=2)])
    assert (r.precision[:, :, 1] == -1).all() and (r.recall[:, 1] == -1).all()
    assert (r.recall[:, 2, 0, -1] == 0).all()  # ground truth, no detection: 0
    assert r.per_category_ap() == {1: about(1.0), 2: -1.0, 3: 0.0}
    assert r.stats[0] == about(0.5)


def test_stats0_reads_max_dets_100_unless_opted_out():
    gt = dataset([box(0, 0, 10, 10)])
    dt = [det(0, 0, 10, 10, 0.9)]
    assert check(gt, dt, max_dets=[1, 10, 50]).stats[0] == -1.0
    assert coco_evaluate(gt, dt, max_dets=[1, 10, 50], ap_at_max_dets_100=False).stats[0] == about(1.0)


def test_ground_truth_id_zero_is_a_miss_unless_opted_out():
    gt = dataset([box(0, 0, 10, 10, id=0), box(20, 20, 10, 10, id=7)])
    dt = [det(0, 0, 10, 10, 0.9), det(20, 20, 10, 10, 0.8)]
    r = check(gt, dt)
    assert r.recall[0, 0, 0, -1] == 0.5
    assert coco_evaluate(gt, dt, zero_id_quirk=False).recall[0, 0, 0, -1] == 1.0


def test_fewer_than_three_max_dets_where_pycocotools_cannot_summarise():
    gt = dataset([box(0, 0, 10, 10), box(20, 20, 10, 10)])
    dt = [det(0, 0, 10, 10, 0.9), det(20, 20, 10, 10, 0.8)]
    with pytest.raises(IndexError):
        pycocotools_eval(gt, dt, maxDets=[10])
    from pycocotools.coco import COCO  # evaluate + accumulate still work there
    from pycocotools.cocoeval import COCOeval

    E, _ = _evaluate_only(COCO, COCOeval, gt, dt, maxDets=[10])
    r = coco_evaluate(gt, dt, max_dets=[10])
    assert np.array_equal(r.precision, E.eval["precision"])
    assert np.array_equal(r.stats[6:9], [1.0, 1.0, 1.0])  # the one max_dets stands in


def _evaluate_only(COCO, COCOeval, gt, dt, **params):
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = copy.deepcopy(gt)
        cg.createIndex()
        E = COCOeval(cg, cg.loadRes(copy.deepcopy(dt)), "bbox")
        for k, v in params.items():
            setattr(E.params, k, v)
        E.evaluate()
        E.accumulate()
    return E, None


def test_empty_results_score_zero_where_pycocotools_crashes():
    gt = dataset([box(0, 0, 10, 10)], cats=(1, 2))
    with pytest.raises(IndexError):
        pycocotools_eval(gt, [])
    r = coco_evaluate(gt, [])
    assert (r.precision[:, :, 0, :2] == 0).all() and (r.precision[:, :, 1] == -1).all()
    assert r.stats[0] == 0.0 and r.stats[8] == 0.0


def test_pooled_categories():
    gt = dataset([box(0, 0, 10, 10), box(30, 30, 10, 10, category_id=2)], cats=(1, 2))
    dt = [det(0, 0, 10, 10, 0.9, category_id=2), det(30, 30, 10, 10, 0.9)]
    assert check(gt, dt, use_cats=False).stats[0] == about(1.0)
    assert check(gt, dt).stats[0] == 0.0


def test_custom_thresholds_ranges_and_max_dets():
    gt = dataset([box(0, 0, 10, 10), box(20, 20, 30, 30), box(0, 50, 40, 40, iscrowd=1)])
    dt = [det(1, 1, 10, 10, 0.9), det(21, 22, 28, 30, 0.7), det(5, 55, 10, 10, 0.6),
          det(60, 60, 5, 5, 0.95)]
    check(gt, dt, iou_thresholds=[0.3, 0.75, 0.95], rec_thresholds=[0.0, 0.5, 0.25, 1.0],
          max_dets=[3, 1, 2], area_ranges={"all": (0, 1e10), "small": (0, 200), "large": (200, 1e10)})


# --- whole evaluations drawn by hypothesis -------------------------------------------------

W, H = 48, 40


@st.composite
def evaluations(draw, masks=False):
    n_img = draw(st.integers(1, 3))
    n_cat = draw(st.integers(1, 3))
    scores = st.sampled_from([0.1, 0.5, 0.5, 0.7, 0.9, 1.0])
    anns, dts = [], []
    for img in range(1, n_img + 1):
        objs = []
        for _ in range(draw(st.integers(0, 4))):
            x, y = draw(st.integers(-4, W - 4)), draw(st.integers(-4, H - 4))
            w, h = draw(st.integers(1, 40)), draw(st.integers(1, 36))
            cat = draw(st.integers(1, n_cat))
            crowd = draw(st.sampled_from([0, 0, 0, 1]))
            area = draw(st.sampled_from([None, 1024.0, 9216.0, 1023.0, 30.0]))
            a = {"image_id": img, "category_id": cat, "iscrowd": crowd, "bbox": [x, y, w, h]}
            if masks:
                poly = [x, y, x + w, y + draw(st.integers(0, 3)), x + w, y + h, x + draw(st.integers(0, 5)), y + h]
                r = cocomask.merge(cocomask.frPyObjects([poly], H, W))
                if crowd:
                    m = cocomask.decode(r).ravel(order="F")
                    cuts = np.flatnonzero(np.diff(m)) + 1
                    runs = np.diff(np.concatenate([[0], cuts, [m.size]])).tolist()
                    a["segmentation"] = {"size": [H, W], "counts": ([0] if m[0] else []) + runs}
                else:
                    a["segmentation"] = [poly]
                a["area"] = float(cocomask.area(r)) if area is None else area
            else:
                a["area"] = float(w * h) if area is None else area
            objs.append(a)
            anns.append(a)
        for _ in range(draw(st.integers(0, 6))):
            if objs and draw(st.booleans()):
                obj = draw(st.sampled_from(objs))
                src = obj["bbox"]
                j = [draw(st.integers(-3, 3)) for _ in range(4)]
                b = [src[0] + j[0], src[1] + j[1], max(src[2] + j[2], 0), max(src[3] + j[3], 0)]
                cat = draw(st.sampled_from([obj["category_id"], draw(st.integers(1, n_cat))]))
            else:
                b = [draw(st.integers(-2, W)), draw(st.integers(-2, H)), draw(st.integers(0, 30)), draw(st.integers(0, 30))]
                cat = draw(st.integers(1, n_cat))
            d = {"image_id": img, "category_id": cat, "score": draw(scores), "bbox": b}
            if masks:
                x, y, w, h = b
                r = cocomask.frPyObjects([[x, y, x + w, y, x + w, y + h, x, y + h]], H, W)[0]
                d["segmentation"] = {"size": r["size"], "counts": r["counts"].decode()}
                if draw(st.booleans()):
                    del d["bbox"]
            dts.append(d)
    for i, a in enumerate(anns):
        a["id"] = i + 1
    images = tuple((i, W, H) for i in range(1, n_img + 1))
    gt = {"images": [{"id": i, "width": w, "height": h} for i, w, h in images],
          "categories": [{"id": c} for c in range(1, n_cat + 1)], "annotations": anns}
    if dts and masks and "bbox" in dts[0]:  # loadRes takes its branch from the first result:
        # then every result needs a box; give the others their mask's box
        dts = [d if "bbox" in d else dict(d, bbox=cocomask.toBbox(d["segmentation"]).tolist()) for d in dts]
    return gt, dts


@given(evaluations(), st.booleans())
def test_boxes_match_pycocotools_on_drawn_evaluations(case, use_cats):
    gt, dt = case
    if not dt:
        return
    check(gt, dt, use_cats=use_cats)


@given(evaluations(masks=True), st.sampled_from(["segm", "bbox"]))
def test_masks_match_pycocotools_on_drawn_evaluations(case, iou_type):
    gt, dt = case
    if not dt:
        return
    check(gt, dt, iou_type)


# --- files, bad input, command line --------------------------------------------------------


def _small_case():
    gt = dataset([box(0, 0, 10, 10), box(20, 20, 10, 10, category_id=2)], cats=(1, 2))
    dt = [det(0, 0, 10, 10, 0.9), det(21, 20, 10, 10, 0.8, category_id=2), det(50, 50, 5, 5, 0.3)]
    return gt, dt


def test_paths_are_read_as_json(tmp_path):
    gt, dt = _small_case()
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(dt))
    a = coco_evaluate(tmp_path / "gt.json", str(tmp_path / "dt.json"))
    assert np.array_equal(a.precision, coco_evaluate(gt, dt).precision)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda gt, dt: dt[1].update(image_id=99), r"dt\[1\]\['image_id'\] = 99 is not an image"),
        (lambda gt, dt: dt[0].update(category_id=7), r"dt\[0\]\['category_id'\] = 7 is not a category"),
        (lambda gt, dt: dt[2].update(bbox=[1, 1, -2, 3]), r"dt\[2\]\['bbox'\].*negative width"),
        (lambda gt, dt: dt[2].update(score=float("nan")), r"dt\[2\]\['score'\] is NaN"),
        (lambda gt, dt: dt[1].pop("score"), r"dt\[1\] has no 'score'"),
        (lambda gt, dt: dt[0].update(bbox=[1, 2, 3]), r"dt\[0\]\['bbox'\] must be 4 numbers"),
        (lambda gt, dt: dt[0].update(score="high"), r"dt\[0\]\['score'\] must be a number"),
        (lambda gt, dt: gt["annotations"][1].update(id=1), r"annotations'\]\[1\]\['id'\] = 1 repeats"),
        (lambda gt, dt: gt["annotations"][0].update(bbox=[0, 0, 5, -1]), r"annotations'\]\[0\]\['bbox'\].*negative"),
        (lambda gt, dt: gt["annotations"][0].pop("area"), r"annotations'\]\[0\] has no 'area'"),
        (lambda gt, dt: gt.pop("images"), r"gt\['images'\] must be a list"),
    ],
)
def test_bad_input_names_the_record(edit, message):
    gt, dt = _small_case()
    edit(gt, dt)
    with pytest.raises(ValueError, match=message):
        coco_evaluate(gt, dt)


def test_bad_files_and_arguments(tmp_path):
    gt, dt = _small_case()
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json.*not valid JSON"):
        coco_evaluate(tmp_path / "bad.json", dt)
    with pytest.raises(ValueError, match="cannot read"):
        coco_evaluate(gt, tmp_path / "missing.json")
    with pytest.raises(ValueError, match="iou_type"):
        coco_evaluate(gt, dt, "keypoints")
    with pytest.raises(ValueError, match="max_dets"):
        coco_evaluate(gt, dt, max_dets=[])


def test_mask_of_the_wrong_size_is_an_error():
    gt = dataset([{"segmentation": [[0, 0, 10, 0, 10, 10, 0, 10]], "area": 100.0, "bbox": [0, 0, 10, 10]}])
    dt = [{"image_id": 1, "category_id": 1, "score": 0.5, "segmentation": _square_rle(0, 0, 10, h=50)}]
    with pytest.raises(ValueError, match=r"dt\[0\]\['segmentation'\] has size \[50, 100\]"):
        coco_evaluate(gt, dt, "segm")


def test_command_line_prints_the_summary(tmp_path, capsys):
    from minivision.cli import main

    gt, dt = _small_case()
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(dt))
    assert main(["eval", str(tmp_path / "gt.json"), str(tmp_path / "dt.json")]) == 0
    _, lines = pycocotools_eval(gt, dt)
    assert capsys.readouterr().out.splitlines() == lines
    assert main(["eval", str(tmp_path / "gt.json"), str(tmp_path / "nope.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_benchmark_entry_checks_agreement_on_a_small_workload(iou_type):
    from minivision.bench.eval import _entry

    (row,) = _entry(f"coco_{iou_type}", iou_type, 12, repeats=1)
    assert row.minivision_ms > 0 and row.reference_ms > 0 and "12 img" in row.workload
