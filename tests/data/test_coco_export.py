"""minivision.data.to_coco / from_coco against pycocotools 2.0.11: COCO() reads our JSON, its
masks, boxes and areas are ours, COCOeval scores the ground truth against itself as 1.0."""

from __future__ import annotations

import contextlib
import io
import json

import imageio.v3 as iio
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from minivision.data import Shapes, YoloFolder, from_coco, to_coco
from minivision.data.coco import mask_to_rle, rle_to_mask

# pycocotools 2.0.11's own decode passes copy=False to a NumPy 2 __array__
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def load(dataset_dict) -> COCO:
    """pycocotools' COCO from a dict, after a JSON round trip (what a file would give)."""
    coco = COCO()
    coco.dataset = json.loads(json.dumps(dataset_dict))
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(image_size=(40, 72), max_objects=8, min_size=4, max_size=30, background="texture"),
    ],
    ids=["default", "non-square crowded"],
)
def test_pycocotools_reads_our_masks_boxes_and_areas(kw):
    ds = Shapes(25, seed=4, **kw)
    d = to_coco(ds)
    coco = load(d)
    assert sorted(coco.getCatIds()) == [1, 2, 3]
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(ds.classes)
    assert sorted(coco.getImgIds()) == list(range(25))
    ids = [a["id"] for a in d["annotations"]]
    assert ids == list(range(1, len(ids) + 1))
    for i in range(25):
        item = ds[i]
        img = coco.loadImgs(i)[0]
        assert (img["height"], img["width"]) == item["image"].shape[:2]
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[i]))
        assert [a["category_id"] for a in anns] == item["labels"].tolist()
        for k, ann in enumerate(anns):
            where = f"image {i}, object {k}"
            mask = coco.annToMask(ann)
            np.testing.assert_array_equal(mask.astype(bool), item["masks"][k], err_msg=where)
            rle = coco.annToRLE(ann)
            x1, y1, x2, y2 = item["boxes"][k].tolist()
            assert ann["bbox"] == [x1, y1, x2 - x1, y2 - y1], where
            np.testing.assert_array_equal(mask_utils.toBbox(rle), ann["bbox"], err_msg=where)
            assert mask_utils.area(rle) == ann["area"] == item["masks"][k].sum(), where
            assert ann["iscrowd"] == 0


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (7, 2), (16, 16)])
def test_rle_runs_equal_pycocotools_encode(shape):
    """Our run lengths, through frPyObjects, give pycocotools' own encoding of the mask;
    masks starting with a set pixel (an empty first run), full and empty masks included."""
    rng = np.random.default_rng(sum(shape))
    masks = [rng.random(shape) < p for p in (0.2, 0.5, 0.9)]
    masks += [np.ones(shape, bool), np.zeros(shape, bool)]
    masks.append(np.eye(*shape, dtype=bool))  # the top-left pixel set
    for r, c in [(0, 0), (-1, -1), (0, -1), (-1, 0), (shape[0] // 2, shape[1] // 2)]:
        one = np.zeros(shape, bool)
        one[r, c] = True  # single pixels in the corners and the middle
        masks.append(one)
        column = np.zeros(shape, bool)
        column[:, c] = True  # a whole first, last or middle column
        masks.append(column)
    for mask in masks:
        ours = mask_to_rle(mask)
        assert ours["size"] == list(shape) and sum(ours["counts"]) == mask.size
        theirs = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        assert mask_utils.frPyObjects(ours, *shape)["counts"] == theirs["counts"]
        np.testing.assert_array_equal(rle_to_mask(ours), mask)


def test_cocoeval_scores_ground_truth_as_perfect():
    ds = Shapes(12, seed=9, max_objects=5)
    coco = load(to_coco(ds))
    for iou_type in ("bbox", "segm"):
        results = []
        for ann in coco.dataset["annotations"]:
            res = {k: ann[k] for k in ("image_id", "category_id", "bbox")} | {"score": 1.0}
            if iou_type == "segm":
                h, w = ann["segmentation"]["size"]
                res["segmentation"] = mask_utils.frPyObjects(ann["segmentation"], h, w)
            results.append(res)
        with contextlib.redirect_stdout(io.StringIO()):
            ev = COCOeval(coco, coco.loadRes(results), iou_type)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        assert ev.stats[0] == pytest.approx(1.0), iou_type  # AP@[.5:.95]


def test_round_trip_through_from_coco():
    ds = Shapes(10, seed=2, image_size=(50, 70), max_objects=6)
    back = from_coco(json.loads(json.dumps(to_coco(ds))))
    assert len(back) == 10
    for i, item in enumerate(back):
        want = ds[i]
        assert item["image_id"] == i and (item["height"], item["width"]) == (50, 70)
        for key in ("boxes", "labels", "masks", "semantic"):
            np.testing.assert_array_equal(item[key], want[key], err_msg=f"{i} {key}")
            assert item[key].dtype == want[key].dtype, key
        assert not item["iscrowd"].any()
    # boxes only
    assert "masks" not in from_coco(to_coco(ds, indices=[3]), masks=False)[0]


def test_indices_and_yolo_items(tmp_path):
    iio.imwrite(_mk(tmp_path / "images" / "a.png"), np.zeros((20, 30, 3), np.uint8))
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.txt").write_text(
        "0 0.5 0.5 0.4 0.5\n1 0.2 0.2 0.2 0.2 0.6 0.3 0.4 0.8\n"  # a box, then a polygon
    )
    ds = YoloFolder(tmp_path, classes=["a", "b"])
    item = ds[0]
    coco = load(to_coco(ds))
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[0]))
    assert coco.loadImgs(0)[0]["file_name"] == "a.png"
    # the box without a polygon: its box as the segmentation, the box's area
    assert anns[0]["segmentation"] == [[9.0, 5.0, 21.0, 5.0, 21.0, 15.0, 9.0, 15.0]]
    assert anns[0]["area"] == pytest.approx(12 * 10)
    np.testing.assert_array_equal(coco.annToMask(anns[0])[5:15, 9:21], 1)
    np.testing.assert_array_equal(coco.annToMask(anns[1]).astype(bool), item["masks"][1])
    assert anns[1]["area"] == item["masks"][1].sum()
    # and from_coco reads the box polygon back by pixel centre
    back = from_coco(coco.dataset)[0]
    np.testing.assert_array_equal(back["masks"][1], item["masks"][1])
    assert back["masks"][0].sum() == 120 and back["masks"][0][5:15, 9:21].all()

    shapes = Shapes(6, seed=1)
    d = to_coco(shapes, indices=[4, 1])
    assert [img["id"] for img in d["images"]] == [4, 1]
    assert {a["image_id"] for a in d["annotations"]} == {4, 1}


def test_bad_input():
    items = [Shapes(1)[0]]
    with pytest.raises(ValueError, match="classes"):
        to_coco(items)
    with pytest.raises(ValueError, match="labels"):
        to_coco([dict(items[0], labels=items[0]["labels"] + 3)], classes=["a", "b", "c"])
    with pytest.raises(TypeError, match="indices"):
        to_coco(Shapes(3), indices=[0.5])
    d = to_coco(Shapes(2))
    d["annotations"][0]["segmentation"] = {"counts": "PPYo0", "size": [128, 128]}
    with pytest.raises(ValueError, match="minivision.data.rle"):
        from_coco(d)
    assert len(from_coco(d, masks=False)) == 2
    d["annotations"][0]["segmentation"] = {"counts": [5, 3], "size": [128, 128]}
    with pytest.raises(ValueError, match="adding up"):
        from_coco(d)
    d["annotations"][0]["image_id"] = 99
    with pytest.raises(ValueError, match="image_id 99"):
        from_coco(d)
    with pytest.raises(ValueError, match="images"):
        from_coco({"annotations": []})
    with pytest.raises(ValueError, match="mask"):
        mask_to_rle(np.zeros((2, 2, 2)))


def _mk(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
