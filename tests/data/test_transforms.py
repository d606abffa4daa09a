"""minivision.data.transforms: collate against torchvision's GeneralizedRCNNTransform, flips
against torchvision.transforms.v2 and against re-deriving boxes from flipped masks, seeded
batch orders, bad input."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torchvision import tv_tensors
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import masks_to_boxes
from torchvision.transforms.v2 import functional as TF

from minivision.data import (
    RandomHorizontalFlip,
    Shapes,
    batch_indices,
    batches,
    collate,
    hflip,
)


def items_of_sizes(*sizes):
    return [Shapes(1, image_size=s, seed=k, max_objects=5)[0] for k, s in enumerate(sizes)]


# ----------------------------------------------------------------------------- collate


@pytest.mark.parametrize("size_divisible", [32, 1, 7])
def test_collate_pads_as_torchvision(size_divisible):
    items = items_of_sizes((40, 56), (70, 33), (64, 64))
    before = copy.deepcopy(items)
    images, targets = collate(items, size_divisible=size_divisible)
    transform = GeneralizedRCNNTransform(64, 64, [0, 0, 0], [1, 1, 1])
    # uint8 -> float as torchvision.transforms.v2 does it (x * (1/255), not x / 255)
    tensors = [
        TF.to_dtype(torch.from_numpy(it["image"].transpose(2, 0, 1).copy()), torch.float32, True)
        for it in items
    ]
    expected = transform.batch_images(tensors, size_divisible=size_divisible)
    assert images.dtype == np.float32
    np.testing.assert_array_equal(images, expected.numpy())
    if size_divisible == 32:
        assert images.shape == (3, 3, 96, 64)
    for item, target, old in zip(items, targets, before):
        assert "image" not in target
        assert target["image_size"] == item["image"].shape[:2]
        assert target["boxes"] is item["boxes"] and target["masks"] is item["masks"]
        for key in old:
            np.testing.assert_array_equal(item[key], old[key])  # inputs unchanged


def test_collate_bad_input():
    item = Shapes(1)[0]
    with pytest.raises(ValueError, match="items"):
        collate([])
    with pytest.raises(ValueError, match="items"):
        collate(item)
    with pytest.raises(ValueError, match="size_divisible"):
        collate([item], size_divisible=0)
    with pytest.raises(TypeError, match=r"items\[1\]\['image'\] must be uint8"):
        collate([item, dict(item, image=item["image"].astype(np.float32))])
    with pytest.raises(ValueError, match=r"items\[0\]\['image'\]"):
        collate([dict(item, image=item["image"][..., 0])])
    with pytest.raises(ValueError, match=r"items\[0\]\['labels'\] must have shape \(N,\)"):
        collate([dict(item, labels=np.zeros(len(item["boxes"]) + 1, np.int64))])
    empty = dict(item, boxes=np.zeros((0, 4), np.float32))
    with pytest.raises(ValueError, match=r"items\[0\]\['labels'\] must have shape \(N,\)"):
        collate([empty])
    with pytest.raises(ValueError, match=r"items\[0\]\['masks'\]"):
        collate([dict(item, masks=item["masks"][:, :10])])


# ----------------------------------------------------------------------------- flips


@pytest.mark.parametrize("seed", range(6))
def test_hflip_moves_boxes_masks_and_semantic_with_the_pixels(seed):
    item = Shapes(1, image_size=(48, 75), seed=seed, max_objects=6, min_size=4)[0]
    before = copy.deepcopy(item)
    out = hflip(item)
    w = item["image"].shape[1]
    np.testing.assert_array_equal(out["image"], item["image"][:, ::-1])
    np.testing.assert_array_equal(out["masks"], item["masks"][:, :, ::-1])
    np.testing.assert_array_equal(out["semantic"], item["semantic"][:, ::-1])
    # the flipped masks' own tight boxes (torchvision's last-pixel boxes + 1)
    expected = masks_to_boxes(torch.from_numpy(out["masks"])).numpy() + np.float32([0, 0, 1, 1])
    np.testing.assert_array_equal(out["boxes"], expected)
    # torchvision.transforms.v2 on the same boxes and masks
    boxes = tv_tensors.BoundingBoxes(
        torch.from_numpy(item["boxes"]), format="XYXY", canvas_size=item["image"].shape[:2]
    )
    np.testing.assert_array_equal(out["boxes"], TF.horizontal_flip(boxes).numpy())
    masks = tv_tensors.Mask(torch.from_numpy(item["masks"]))
    np.testing.assert_array_equal(out["masks"], TF.horizontal_flip(masks).numpy())
    assert out["boxes"].dtype == np.float32 and out["image_id"] == item["image_id"]
    assert (out["boxes"][:, 2] <= w).all()
    # the input is unchanged, and flipping twice gives it back
    for key in before:
        np.testing.assert_array_equal(item[key], before[key])
    back = hflip(out)
    for key in ("image", "boxes", "masks", "semantic"):
        np.testing.assert_array_equal(back[key], item[key])


def test_random_flip_is_seeded_and_resumable():
    ds = Shapes(40, seed=3)
    flipped = lambda a, b: not np.array_equal(a["image"], b["image"])  # noqa: E731
    t1, t2 = RandomHorizontalFlip(0.5, seed=11), RandomHorizontalFlip(0.5, seed=11)
    seq1 = [flipped(t1(ds[i]), ds[i]) for i in range(40)]
    seq2 = [flipped(t2(ds[i]), ds[i]) for i in range(40)]
    assert seq1 == seq2 and 10 < sum(seq1) < 30
    # state_dict after 20 calls, restored into a fresh transform: the same last 20 decisions
    t3 = RandomHorizontalFlip(0.5, seed=11)
    [t3(ds[i]) for i in range(20)]
    state = t3.state_dict()
    t4 = RandomHorizontalFlip(0.9, seed=0)
    t4.load_state_dict(state)
    assert [flipped(t4(ds[i]), ds[i]) for i in range(20, 40)] == seq1[20:]
    assert not any(flipped(RandomHorizontalFlip(0.0)(ds[i]), ds[i]) for i in range(10))
    assert all(flipped(RandomHorizontalFlip(1.0)(ds[i]), ds[i]) for i in range(10))
    rng = np.random.default_rng(5)
    assert RandomHorizontalFlip(0.5, seed=rng).rng is rng
    for p in (-0.1, 1.5, "half"):
        with pytest.raises(ValueError, match="p must"):
            RandomHorizontalFlip(p)
    with pytest.raises(ValueError, match="seed"):
        RandomHorizontalFlip(0.5, seed=-1)


# ----------------------------------------------------------------------------- batch order


def test_batch_indices_are_seeded_per_epoch():
    a = batch_indices(103, 10, seed=4, epoch=2)
    b = batch_indices(103, 10, seed=4, epoch=2)
    assert [x.tolist() for x in a] == [x.tolist() for x in b]
    assert [len(x) for x in a] == [10] * 10 + [3]
    np.testing.assert_array_equal(np.sort(np.concatenate(a)), np.arange(103))
    other_epoch = np.concatenate(batch_indices(103, 10, seed=4, epoch=3))
    other_seed = np.concatenate(batch_indices(103, 10, seed=5, epoch=2))
    assert not np.array_equal(other_epoch, np.concatenate(a))
    assert not np.array_equal(other_seed, np.concatenate(a))
    dropped = batch_indices(103, 10, seed=4, epoch=2, drop_last=True)
    assert [x.tolist() for x in dropped] == [x.tolist() for x in a[:10]]
    plain = batch_indices(7, 3, shuffle=False)
    assert [x.tolist() for x in plain] == [[0, 1, 2], [3, 4, 5], [6]]
    assert batch_indices(0, 4) == [] and batch_indices(3, 4, drop_last=True) == []


def test_batches_read_transform_and_collate():
    ds = Shapes(9, seed=1, image_size=(40, 50))
    order = batch_indices(9, 4, seed=2, epoch=1)
    got = list(batches(ds, 4, seed=2, epoch=1))
    assert [len(b) for b in got] == [4, 4, 1]
    for batch, index in zip(got, order):
        assert [it["image_id"] for it in batch] == index.tolist()
    flips = list(batches(ds, 4, seed=2, epoch=1, transform=RandomHorizontalFlip(1.0)))
    np.testing.assert_array_equal(flips[0][0]["image"], got[0][0]["image"][:, ::-1])
    images, targets = next(batches(ds, 4, seed=2, epoch=1, collate_fn=collate))
    assert images.shape == (4, 3, 64, 64) and len(targets) == 4


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(n=-1, batch_size=2), "n must"),
        (dict(n=5, batch_size=0), "batch_size"),
        (dict(n=5, batch_size=2.0), "batch_size"),
        (dict(n=5, batch_size=2, seed=-1), "seed"),
        (dict(n=5, batch_size=2, epoch=-2), "epoch"),
    ],
)
def test_batch_indices_bad_input(kwargs, name):
    with pytest.raises((ValueError, TypeError), match=name):
        batch_indices(**kwargs)
