"""minivision.data.YoloFolder on tiny folders written here (and on coco128 when it is present):
boxes from the YOLO formula, polygon masks against matplotlib's point-in-polygon test, pairing
of segments with boxes, image conversions and bad input."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from matplotlib.path import Path as MplPath
from skimage.draw import polygon as sk_polygon

from minivision.data import YoloFolder, read_names

COCO128 = Path(__file__).resolve().parents[3] / "shared" / "data" / "coco128-train"


def centre_mask(xy, h, w):
    """Independent reference: pixels whose centre matplotlib finds inside the polygon."""
    yy, xx = np.mgrid[:h, :w]
    centres = np.stack([xx.ravel() + 0.5, yy.ravel() + 0.5], axis=1)
    return MplPath(np.asarray(xy)).contains_points(centres).reshape(h, w)


def edge_distance(points, xy):
    """(M,) distance of each point to the nearest edge of the closed polygon ``xy``."""
    a, b = xy, np.roll(xy, -1, axis=0)  # (E, 2) edge ends
    ab = b - a
    t = ((points[:, None] - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-300)
    near = a + np.clip(t, 0, 1)[..., None] * ab  # (M, E, 2)
    return np.sqrt(((points[:, None] - near) ** 2).sum(-1)).min(axis=1, initial=np.inf)


def yolo_box(cx, cy, bw, bh, w, h):
    """README's formula, clipped to the image."""
    box = np.array([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h])
    return np.clip(box, 0, [w, h, w, h]).astype(np.float32)


def write(path: Path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# Polygons in pixels (x, y), vertices off the half-pixel grid so that no centre is on an edge.
POLY_A = np.array([[5.3, 4.1], [30.7, 6.2], [26.9, 29.4], [8.2, 25.8]])  # big quadrilateral
POLY_B = np.array([[20.1, 18.3], [37.6, 19.9], [28.4, 35.2]])  # triangle overlapping A
POLY_C = np.array([[40.2, 2.3], [57.9, 3.1], [55.3, 20.6], [47.7, 9.9], [41.1, 21.8]])  # concave


def norm(xy, w, h):
    return " ".join(f"{v:.6f}" for v in (xy / [w, h]).ravel())


def extent_line(cls, xy, w, h):
    (x1, y1), (x2, y2) = xy.min(0), xy.max(0)
    return f"{cls} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}"


@pytest.fixture
def folder(tmp_path):
    """a.png: 40x60 RGB, three boxes (two with segments, written out of order and with other
    class ids) and a segment matching no box; b.png: grey, polygons in labels/ itself;
    c.png: RGBA without a label file."""
    rng = np.random.default_rng(0)
    h, w = 40, 60
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    iio.imwrite(_mk(tmp_path / "images" / "a.png"), rgb)
    grey = rng.integers(0, 256, (30, 30), dtype=np.uint8)
    iio.imwrite(tmp_path / "images" / "b.png", grey)
    rgba = rng.integers(0, 256, (20, 24, 4), dtype=np.uint8)
    iio.imwrite(tmp_path / "images" / "c.png", rgba)
    write(tmp_path / "names.yaml", "names:\n  0: cat\n  1: dog\n  2: 'hot dog'\nnc: 3\n")
    write(
        tmp_path / "labels" / "a.txt",
        "\n".join(
            [
                extent_line(1, POLY_A, w, h),
                extent_line(0, POLY_C, w, h),
                "2 0.950000 0.900000 0.200000 0.300000",  # crosses the right edge: clipped
                "",
            ]
        ),
    )
    write(
        tmp_path / "segments" / "a.txt",
        f"17 {norm(POLY_C, w, h)}\n"  # class ids of another numbering: ignored
        f"18 {norm(POLY_A, w, h)}\n"
        f"5 {norm(POLY_B + [0, -15], w, h)}\n",  # matches no box
    )
    write(
        tmp_path / "labels" / "b.txt",
        f"0 {norm(POLY_A * 0.8, 30, 30)}\n1 {norm(POLY_B * 0.8, 30, 30)}\n",
    )
    return tmp_path, dict(rgb=rgb, grey=grey, rgba=rgba)


def _mk(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def test_boxes_labels_and_matched_segments(folder):
    root, pixels = folder
    ds = YoloFolder(root)
    assert len(ds) == 3 and ds.files == ["a.png", "b.png", "c.png"]
    assert ds.classes == ("cat", "dog", "hot dog")
    item = ds[0]
    h, w = 40, 60
    np.testing.assert_array_equal(item["image"], pixels["rgb"])
    lines = (root / "labels" / "a.txt").read_text().split("\n")
    expected = np.stack([yolo_box(*map(float, line.split()[1:]), w, h) for line in lines[:3]])
    np.testing.assert_array_equal(item["boxes"], expected)
    assert item["boxes"][2, 2] == w  # clipped
    np.testing.assert_array_equal(item["labels"], [2, 1, 3])
    # paired by extent: box 0 with segment line 2 (POLY_A), box 1 with line 1 (POLY_C)
    np.testing.assert_array_equal(item["has_mask"], [True, True, False])
    np.testing.assert_array_equal(item["masks"][0], centre_mask(POLY_A, h, w))
    np.testing.assert_array_equal(item["masks"][1], centre_mask(POLY_C, h, w))
    assert not item["masks"][2].any()
    semantic = np.where(item["masks"][1], 1, np.where(item["masks"][0], 2, 0))
    np.testing.assert_array_equal(item["semantic"], semantic)
    assert item["image_id"] == 0 and item["file_name"] == "a.png"


def test_polygons_in_label_files_and_overlaps(folder):
    root, pixels = folder
    item = YoloFolder(root)[1]
    np.testing.assert_array_equal(item["image"], np.repeat(pixels["grey"][..., None], 3, axis=2))
    a, b = POLY_A * 0.8, POLY_B * 0.8
    for k, xy in enumerate([a, b]):
        np.testing.assert_array_equal(item["masks"][k], centre_mask(xy, 30, 30))
        box = np.clip(np.concatenate([xy.min(0), xy.max(0)]), 0, 30)  # b pokes out: clipped
        np.testing.assert_allclose(item["boxes"][k], box, rtol=0, atol=1e-4)  # 6 decimals
    assert item["has_mask"].all()
    overlap = item["masks"][0] & item["masks"][1]
    assert overlap.any()
    # where masks overlap the smaller one (the triangle, label 2) wins
    assert item["masks"][1].sum() < item["masks"][0].sum()
    assert (item["semantic"][overlap] == 2).all()
    assert (item["semantic"][item["masks"][0] & ~overlap] == 1).all()


def test_image_without_labels_has_no_objects(folder):
    root, pixels = folder
    item = YoloFolder(root)[2]
    np.testing.assert_array_equal(item["image"], pixels["rgba"][..., :3])
    assert item["boxes"].shape == (0, 4) and item["boxes"].dtype == np.float32
    assert item["labels"].shape == (0,) and item["masks"].shape == (0, 20, 24)
    assert not item["semantic"].any()


def test_random_polygons_against_matplotlib_and_skimage(tmp_path):
    """Self-intersecting polygons too: the even-odd rule, as matplotlib's contains_points and
    scikit-image's polygon (random vertices: no pixel centre lies on an edge)."""
    rng = np.random.default_rng(1)
    h, w = 33, 47
    iio.imwrite(_mk(tmp_path / "images" / "x.png"), np.zeros((h, w, 3), np.uint8))
    polys = [rng.random((rng.integers(3, 25), 2)) * [w + 8, h + 8] - 4 for _ in range(40)]
    polys = [np.clip(p, 0, [w, h]) for p in polys]
    write(tmp_path / "labels" / "x.txt", "".join(f"0 {norm(p, w, h)}\n" for p in polys))
    item = YoloFolder(tmp_path, classes=["thing"])[0]
    for k, p in enumerate(polys):
        xy = np.round(p / [w, h], 6) * [w, h]  # what the file holds
        np.testing.assert_array_equal(item["masks"][k], centre_mask(xy, h, w), err_msg=f"{k}")
        ref = np.zeros((h, w), bool)  # scikit-image tests integer coordinates: shift by 1/2
        ref[sk_polygon(xy[:, 1] - 0.5, xy[:, 0] - 0.5, (h, w))] = True
        np.testing.assert_array_equal(item["masks"][k], ref, err_msg=f"{k}")


@pytest.mark.parametrize(
    "text, names",
    [
        ("names:\n  0: a\n  1: b c\n", ("a", "b c")),
        ("path: x\nnames:\n- a\n- 'b'\nnc: 2\n", ("a", "b")),
        ("names: [a, 'b', \"c\"]\n", ("a", "b", "c")),
        ("names: {0: a, 1: 'b b'}\nnc: 2\n", ("a", "b b")),
    ],
)
def test_read_names(tmp_path, text, names):
    write(tmp_path / "names.yaml", text)
    assert read_names(tmp_path / "names.yaml") == names


@pytest.mark.filterwarnings("ignore:The legacy `DICOM` plugin:DeprecationWarning")
def test_bad_input(folder, tmp_path_factory):
    root, _ = folder
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(ValueError, match="root"):
        YoloFolder(empty)
    with pytest.raises(ValueError, match="match_iou"):
        YoloFolder(root, match_iou=0)
    with pytest.raises(ValueError, match="classes"):
        YoloFolder(root, classes="cat")
    (root / "names.yaml").unlink()
    with pytest.raises(ValueError, match="names.yaml"):
        YoloFolder(root)
    ds = YoloFolder(root, classes=["cat", "dog"])
    with pytest.raises(ValueError, match=r"a\.txt:3: class id 2"):
        ds[0]
    write(root / "labels" / "b.txt", "0 0.5 0.5 0.2\n")
    with pytest.raises(ValueError, match=r"b\.txt:1: expected a class id"):
        ds[1]
    write(root / "labels" / "b.txt", "0 0.5 0.5 0.2 x\n")
    with pytest.raises(ValueError, match=r"b\.txt:1: expected numbers"):
        ds[1]
    write(root / "labels" / "b.txt", "0 0.5 nan 0.2 0.1\n")
    with pytest.raises(ValueError, match=r"b\.txt:1: coordinates must be finite"):
        ds[1]
    (root / "images" / "c.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"c\.png"):
        ds[2]
    with pytest.raises(IndexError):
        ds[3]
    bad = tmp_path_factory.mktemp("bad") / "names.yaml"
    write(bad, "names:\n  1: a\n")
    with pytest.raises(ValueError, match="0..K-1"):
        read_names(bad)
    write(bad, "classes: [a]\n")
    with pytest.raises(ValueError, match="names"):
        read_names(bad)


def test_coco128():
    """The course's folder, when it is beside the repository: every image loads, boxes follow
    the README's formula, and each polygon paired with a box by extent has that box's class
    under COCO's 80 -> 91 category table (the segments use COCO's ids)."""
    if not COCO128.is_dir():
        pytest.skip("coco128-train is not beside the repository")
    ds = YoloFolder(COCO128)
    assert len(ds) == len(list((COCO128 / "images").glob("*.jpg"))) and len(ds.classes) == 80
    coco91 = [
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
        27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51,
        52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77,
        78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90,
    ]  # fmt: skip
    paired = 0
    for i in range(0, len(ds), 3):
        item = ds[i]
        h, w = item["image"].shape[:2]
        stem = Path(item["file_name"]).stem
        label_file = COCO128 / "labels" / f"{stem}.txt"
        if not label_file.is_file():
            assert len(item["labels"]) == 0
            continue
        rows = np.loadtxt(label_file, ndmin=2)
        boxes = np.stack([yolo_box(*r[1:], w, h) for r in rows])
        np.testing.assert_allclose(item["boxes"], boxes, rtol=0, atol=1e-4)
        np.testing.assert_array_equal(item["labels"], rows[:, 0].astype(np.int64) + 1)
        segments = COCO128 / "segments" / f"{stem}.txt"
        if not segments.is_file():
            assert not item["has_mask"].any()
            continue
        rasters, polygons = [], []  # scikit-image's rasterisation of every polygon
        for line in segments.read_text().splitlines():
            cls, *xy = line.split()
            xy = np.asarray(xy, float).reshape(-1, 2) * [w, h]
            raster = np.zeros((h, w), bool)
            raster[sk_polygon(xy[:, 1] - 0.5, xy[:, 0] - 0.5, (h, w))] = True
            rasters.append(raster)
            polygons.append((int(cls), xy))
        rasters = np.stack(rasters)
        for k in np.flatnonzero(item["has_mask"]):
            mask = item["masks"][k]
            j = int(
                np.argmax((rasters & mask).sum(axis=(1, 2)) / (rasters | mask).sum(axis=(1, 2)))
            )
            cls, xy = polygons[j]
            assert coco91[item["labels"][k] - 1] == cls, (item["file_name"], k)
            # real outlines pass through pixel centres, where scikit-image counts the centre in
            # and the scan line's half-open rule may not: those are the only differences
            r, c = np.nonzero(rasters[j] != mask)
            gap = edge_distance(np.stack([c + 0.5, r + 0.5], axis=1), xy)
            assert (gap < 1e-6).all(), (item["file_name"], k, gap.max())
            paired += 1
    assert paired > 200
