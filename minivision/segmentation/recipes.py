"""Training the segmenters on Shapes' semantic maps: one config, one recipe, one scorer.

Every network of this package learns the same task: give each pixel of a synthetic scene its
class, ``0`` = background and ``1..K`` = the shape kinds (``Shapes(...)[i]["semantic"]``). The
loss is the per-pixel cross-entropy, averaged over all pixels of the batch,

    L = -1/(N H W) sum_{n,y,x} log softmax(z[n, :, y, x])[t[n, y, x]]

(:func:`minivision.nn.losses.cross_entropy` on ``(N, K + 1, H, W)`` logits). The data of step ``s`` are the fresh scenes
``s * B ... s * B + B - 1`` of ``Shapes(seed=seed)``, so a run is a function of its seed and a
resumed run sees the same batches; Adam at ``config.lr``.

:func:`evaluate` scores a model on held-out scenes with lesson 10's metrics (pixel accuracy,
per-class IoU and mIoU of the confusion matrix summed over the data set) and the boundary IoU
of :func:`minivision.eval.semantic_boundary_iou`. :func:`score_maps` does the same for maps from anywhere (the
benchmark scores torch's predictions with it).

Host island (DESIGN.md §2): host code around the device-pure networks. Shapes makes NumPy
scenes, a batch goes onto the model's backend in :func:`make_batch`, and the scores read NumPy
maps from ``predict``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .._backend import from_numpy
from ..data import Shapes, collate
from ..eval import evaluate_segmentation, semantic_boundary_iou
from ..nn.losses import cross_entropy, cross_entropy_backward
from ..nn.optim import Adam
from .deeplab import DeepLabV3
from .fcn import FCN
from .segnet import SegNet
from .unet import UNet

__all__ = [
    "MODELS",
    "SegmenterConfig",
    "build_segmenter",
    "make_batch",
    "score_maps",
    "evaluate",
    "segmentation_loss",
    "segmentation_loss_backward",
    "training_recipe",
]

#: ``minivision train NAME`` -> (network class, its fixed keyword arguments).
MODELS = {
    "fcn32s": (FCN, {"variant": "32s"}),
    "fcn16s": (FCN, {"variant": "16s"}),
    "fcn8s": (FCN, {"variant": "8s"}),
    "unet": (UNet, {}),
    "deeplab": (DeepLabV3, {"aspp": True}),
    "deeplab_no_aspp": (DeepLabV3, {"aspp": False}),  # the ablation: one 3x3 conv for ASPP
    "segnet": (SegNet, {}),
}


@dataclass
class SegmenterConfig:
    """The hyper-parameters of one segmenter's training run (written to each run's config.json).

    ``model`` names the network (a key of :data:`MODELS`); ``widths`` overrides its default
    channel widths (None = the class's default). The scenes are ``Shapes(n, image_size=...,
    min_size=..., max_objects=..., seed=...)``; ``val_seed``/``val_size`` are the held-out set.
    """

    model: str = "unet"
    classes: tuple = ("square", "circle", "triangle")
    image_size: int = 64
    min_size: int = 12
    max_objects: int = 4
    widths: tuple | None = None
    lr: float = 3e-3
    batch_size: int = 8
    val_seed: int = 1_000_003
    val_size: int = 200

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {sorted(MODELS)}, got {self.model!r}")
        self.classes = tuple(self.classes)
        self.widths = None if self.widths is None else tuple(int(w) for w in self.widths)

    @property
    def num_classes(self) -> int:
        return len(self.classes) + 1  # + background

    def dataset(self, n: int, seed: int) -> Shapes:
        return Shapes(n, image_size=self.image_size, classes=self.classes, seed=seed,
                      min_size=self.min_size, max_objects=self.max_objects)  # fmt: skip

    def to_dict(self) -> dict:
        return asdict(self)


def build_segmenter(config: SegmenterConfig, seed: int = 0):
    """The network ``config.model`` names, initialised from ``seed``."""
    cls, fixed = MODELS[config.model]
    kwargs = dict(fixed)
    if config.widths is not None:
        kwargs["widths"] = config.widths
    return cls(config.classes, seed=seed, **kwargs)


def make_batch(dataset: Shapes, indices, like=None):
    """Images ``(B, 3, S, S)`` in [0, 1] and class maps ``(B, S, S)`` int64, on ``like``'s backend."""
    items = [dataset[int(i)] for i in indices]
    images, _ = collate(items, size_divisible=1)
    maps = np.stack([item["semantic"] for item in items])
    if like is None:
        return images, maps
    return from_numpy(images, like), from_numpy(maps, like)


def score_maps(pred, target, num_classes: int, classes=None) -> dict:
    """Pixel accuracy, mIoU, each class's IoU and the boundary IoU of ``(N, H, W)`` class maps.

    Dataset-level scores (one confusion matrix summed over every pixel of the set; lesson 10).
    ``classes`` names the foreground classes for the ``iou_<name>`` keys.
    """
    ev = evaluate_segmentation(pred, target, num_classes).dataset
    names = ["background", *(classes or [str(c) for c in range(1, num_classes)])]
    scores = {"pixel_accuracy": float(ev.pixel_accuracy), "miou": float(ev.mean_iou)}
    scores.update({f"iou_{n}": float(v) for n, v in zip(names, ev.class_iou)})
    scores["boundary_iou"] = float(semantic_boundary_iou(pred, target, num_classes).mean_iou)
    return scores


def evaluate(model, dataset: Shapes, batch_size: int = 50) -> dict:
    """:func:`score_maps` of ``model.predict`` over every scene of ``dataset``."""
    preds, targets = [], []
    for start in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        preds += model.predict([item["image"] for item in items])
        targets += [item["semantic"] for item in items]
    return score_maps(np.stack(preds), np.stack(targets), model.num_outputs, model.classes)


def segmentation_loss(logits, target):
    """Mean per-pixel cross-entropy of ``(N, C, H, W)`` logits against ``(N, H, W)`` classes."""
    return cross_entropy(logits, target)


def segmentation_loss_backward(logits, target):
    """dL/d(logits) of :func:`segmentation_loss`, ``(N, C, H, W)``: ``(softmax - onehot) / NHW``."""
    return cross_entropy_backward(logits, target)


def training_recipe(config: SegmenterConfig, seed: int) -> dict:
    """What :func:`minivision.training.train` needs to train ``config.model`` from ``seed``.

    Returns ``model``, ``optimizer`` (Adam), ``batch_fn``, ``step_fn`` and ``eval_fn`` (the
    held-out ``Shapes(val_size, seed=val_seed)``).
    """
    model = build_segmenter(config, seed)
    if config.image_size % model.output_stride:
        raise ValueError(f"image_size must be a multiple of {model.output_stride} (the output "
                         f"stride of {config.model}), got {config.image_size}")  # fmt: skip
    optimizer = Adam(model.parameters(), lr=config.lr)
    b = config.batch_size
    train_set = config.dataset(2**31 - 1, seed)
    val_set = config.dataset(config.val_size, config.val_seed)
    like = next(iter(model.parameters())).data

    def batch_fn(step, rng):
        return make_batch(train_set, range(step * b, step * b + b), like)

    def step_fn(batch, rng):
        images, maps = batch
        logits = model(images)  # (B, K + 1, S, S)
        model.backward(segmentation_loss_backward(logits, maps))
        return segmentation_loss(logits, maps)

    def eval_fn(m):
        return evaluate(m, val_set)

    return {"model": model, "optimizer": optimizer, "batch_fn": batch_fn, "step_fn": step_fn,
            "eval_fn": eval_fn}  # fmt: skip
