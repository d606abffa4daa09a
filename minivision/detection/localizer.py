"""A small CNN that classifies *and* localises one object: "treat localisation as regression".

Before proposals and anchors, the simplest detector of a single object is a classifier with
four more outputs (CS231n's "classification + localisation", Sermanet et al.'s OverFeat
regression head): a convolutional trunk turns the image into one feature vector ``h``, and two
linear heads read it,

    logits = W_cls h + b_cls        (N, K)   scores of the K classes (label k is logit k - 1)
    box    = W_box h + b_box        (N, 4)   x1, y1, x2, y2 divided by the image width/height

trained with one loss that mixes the two tasks,

    L = alpha * CE(logits, label - 1) + (1 - alpha) * mean_i ||box_i - box*_i||^2

(``box*`` is the ground-truth box normalised to [0, 1]; the L2 term sums the four coordinates
and averages over the batch). The outputs are returned side by side, ``(N, K + 4)``: the
"n_labels + 4 outputs" head.

``backward`` is the forward pass in reverse: the heads' input gradients are *added* (both read
the same ``h``, so by the multivariate chain rule ``dL/dh = W_cls^T g_cls + W_box^T g_box``),
and the sum runs back through the hidden layer and the trunk.

The network is device-pure array code on any backend (``model.to(xp)``); :func:`make_batch`,
:func:`evaluate` and :meth:`Localizer.predict` are host code around it (Shapes scenes are NumPy).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .._backend import array_namespace, from_numpy, to_numpy
from ..data import Shapes, collate
from ..nn import BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, Module, ReLU, Sequential
from ..nn.losses import cross_entropy, cross_entropy_backward
from ..nn.optim import Adam
from ..ops import box_iou

__all__ = [
    "LocalizerConfig",
    "Localizer",
    "localizer_loss",
    "localizer_loss_backward",
    "make_batch",
    "evaluate",
    "training_recipe",
]


@dataclass
class LocalizerConfig:
    """The hyper-parameters, in one place (printed into each run's ``config.json``).

    ``channels`` are the three convolution blocks' widths (each conv 3x3 -> BatchNorm -> ReLU
    -> 2x2 max-pool, so the map shrinks by 8), ``hidden`` the width of the shared fully
    connected layer, ``alpha`` the classification weight of the loss. The data are
    ``Shapes(..., image_size=image_size, max_objects=1)`` scenes.
    """

    classes: tuple = ("square", "circle", "triangle")
    image_size: int = 32
    min_size: int = 12
    max_size: int | None = None
    channels: tuple = (8, 16, 32)
    hidden: int = 64
    alpha: float = 0.2
    lr: float = 3e-3
    batch_size: int = 32
    val_seed: int = 1_000_003
    val_size: int = 200

    def __post_init__(self):
        self.classes, self.channels = tuple(self.classes), tuple(int(c) for c in self.channels)
        if self.image_size % 8 or self.image_size < 8:
            raise ValueError(f"image_size must be a positive multiple of 8, got {self.image_size}")
        if len(self.channels) != 3 or min(self.channels) < 1:
            raise ValueError(f"channels must be three positive widths, got {self.channels}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")

    def dataset(self, n: int, seed: int) -> Shapes:
        return Shapes(n, image_size=self.image_size, classes=self.classes, seed=seed,
                      max_objects=1, min_size=self.min_size, max_size=self.max_size)

    def to_dict(self) -> dict:
        return asdict(self)


class Localizer(Module):
    """Conv trunk -> shared hidden layer -> class head and box head.

    Parameters
    ----------
    config : LocalizerConfig
    seed : int
        Seeds every layer's default (torch) initialisation: layer ``i`` in data-flow order
        draws from seed ``1000 * seed + i``.

    Shapes: input ``(N, 3, S, S)`` floats in [0, 1]; output ``(N, K + 4)``: ``K`` class logits,
    then the box as fractions of the image side.
    """

    def __init__(self, config: LocalizerConfig | None = None, *, seed: int = 0):
        super().__init__()
        self.config = config = config or LocalizerConfig()
        seeds = iter(range(1000 * seed, 1000 * seed + 1000))
        blocks, c_in = [], 3
        for c in config.channels:
            blocks += [Conv2d(c_in, c, 3, padding=1, bias=False, rng=next(seeds)),
                       BatchNorm2d(c), ReLU(), MaxPool2d(2)]  # fmt: skip
            c_in = c
        self.features = Sequential(*blocks)  # (N, 3, S, S) -> (N, C3, S/8, S/8)
        side = config.image_size // 8
        self.flatten = Flatten()
        self.fc = Sequential(Linear(c_in * side * side, config.hidden, rng=next(seeds)), ReLU())
        self.cls_head = Linear(config.hidden, len(config.classes), rng=next(seeds))
        self.box_head = Linear(config.hidden, 4, rng=next(seeds))

    @property
    def classes(self) -> tuple:
        return self.config.classes

    def forward(self, x):
        h = self.fc(self.flatten(self.features(x)))  # (N, hidden)
        xp = array_namespace(h)
        return xp.concat([self.cls_head(h), self.box_head(h)], axis=1)  # (N, K + 4)

    def backward(self, grad_output):
        k = len(self.config.classes)
        grad_h = self.cls_head.backward(grad_output[:, :k])  # (N, hidden) from each head ...
        grad_h = grad_h + self.box_head.backward(grad_output[:, k:])  # ... summed: h is shared
        return self.features.backward(self.flatten.backward(self.fc.backward(grad_h)))

    def predict(self, images) -> list[dict]:
        """Detect the one object of each ``(S, S, 3)`` uint8 image (DESIGN.md §8's API).

        Returns a list of ``{"boxes": (1, 4) xyxy pixels, "scores": (1,) softmax probability,
        "labels": (1,) int64 in 1..K}`` (NumPy), in eval mode; the box is clipped to the image.
        """
        was_training = self.training
        self.eval()
        batch, _ = collate([{"image": im} for im in images], size_divisible=1)
        like = self.cls_head.weight.data
        out = to_numpy(self(from_numpy(batch, like)))
        self.train(was_training)
        xp = array_namespace(out)
        k = len(self.classes)
        logits = out[:, :k] - xp.max(out[:, :k], axis=1, keepdims=True)
        probs = xp.exp(logits) / xp.sum(xp.exp(logits), axis=1, keepdims=True)
        results = []
        for i, image in enumerate(images):
            h, w = image.shape[:2]
            scale = xp.asarray([w, h, w, h], dtype=out.dtype)
            box = xp.clip(out[i, k:], 0.0, 1.0) * scale
            label = int(xp.argmax(probs[i]))
            results.append({"boxes": xp.astype(box[None, :], xp.float32),
                            "scores": xp.astype(probs[i, label:label + 1], xp.float32),
                            "labels": xp.asarray([label + 1], dtype=xp.int64)})  # fmt: skip
        return results


# ----------------------------------------------------------------------------- the loss


def _split(outputs, labels, boxes, k):
    xp = array_namespace(outputs, boxes)
    return xp, outputs[:, :k], outputs[:, k:], labels - 1, boxes


def localizer_loss(outputs, labels, boxes, alpha: float = 0.2):
    """``alpha * CE(logits, labels - 1) + (1 - alpha) * mean_i ||box_i - boxes_i||^2``.

    ``outputs`` (N, K + 4) as :meth:`Localizer.forward` returns them, ``labels`` (N,) int in
    1..K, ``boxes`` (N, 4) normalised to [0, 1]. A 0-d array. Device-pure.
    """
    k = outputs.shape[1] - 4
    xp, logits, pred, target, boxes = _split(outputs, labels, boxes, k)
    diff = pred - boxes
    l2 = xp.sum(diff * diff) / outputs.shape[0]
    return alpha * cross_entropy(logits, target) + (1 - alpha) * l2


def localizer_loss_backward(outputs, labels, boxes, alpha: float = 0.2):
    """dL/d(outputs) of :func:`localizer_loss`, (N, K + 4): both tasks' gradients side by side."""
    k = outputs.shape[1] - 4
    xp, logits, pred, target, boxes = _split(outputs, labels, boxes, k)
    grad_cls = alpha * cross_entropy_backward(logits, target)  # (softmax - onehot) / N
    grad_box = (1 - alpha) * 2.0 * (pred - boxes) / outputs.shape[0]
    return xp.concat([grad_cls, grad_box], axis=1)


# ----------------------------------------------------------------------------- data and scores


def make_batch(dataset: Shapes, indices, like=None):
    """Images ``(B, 3, S, S)`` in [0, 1], labels ``(B,)`` and boxes ``(B, 4)`` in [0, 1].

    One object per scene (``max_objects=1``); the arrays go onto ``like``'s backend (NumPy if
    None). Host code: Shapes makes NumPy scenes.
    """
    items = [dataset[int(i)] for i in indices]
    images, targets = collate(items, size_divisible=1)
    xp = array_namespace(images)
    scale = xp.asarray([dataset.width, dataset.height] * 2, dtype=xp.float32)
    labels = xp.stack([t["labels"][0] for t in targets])
    boxes = xp.stack([t["boxes"][0] for t in targets]) / scale
    if like is None:
        return images, labels, boxes
    return tuple(from_numpy(a, like) for a in (images, labels, boxes))


def evaluate(model: Localizer, dataset: Shapes, batch_size: int = 100) -> dict:
    """Class accuracy and mean IoU of the predicted box with the true one, over ``dataset``."""
    correct, ious = 0, []
    for start in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        preds = model.predict([it["image"] for it in items])
        for item, pred in zip(items, preds):
            correct += int(pred["labels"][0] == item["labels"][0])
            ious.append(float(box_iou(pred["boxes"], item["boxes"][:1])[0, 0]))
    n = max(len(dataset), 1)
    return {"accuracy": correct / n, "mean_iou": sum(ious) / n}


def training_recipe(config: LocalizerConfig, seed: int) -> dict:
    """What :func:`minivision.training.train` needs to train a :class:`Localizer`.

    Step ``s`` sees the fresh scenes ``s * B ... s * B + B - 1`` of ``Shapes(seed=seed)``, so
    the data are a function of (seed, step) and a resumed run sees the same batches. The model
    is initialised from ``seed`` too; Adam at ``config.lr``. Returns ``model``, ``optimizer``,
    ``batch_fn``, ``step_fn`` and ``eval_fn`` (held-out ``Shapes(val_size, seed=val_seed)``).
    """
    model = Localizer(config, seed=seed)
    optimizer = Adam(model.parameters(), lr=config.lr)
    b = config.batch_size
    train_set = config.dataset(2**31 - 1, seed)
    val_set = config.dataset(config.val_size, config.val_seed)

    def batch_fn(step, rng):
        return make_batch(train_set, range(step * b, step * b + b))

    def step_fn(batch, rng):
        images, labels, boxes = batch
        outputs = model(images)
        model.backward(localizer_loss_backward(outputs, labels, boxes, config.alpha))
        return localizer_loss(outputs, labels, boxes, config.alpha)

    return {"model": model, "optimizer": optimizer, "batch_fn": batch_fn, "step_fn": step_fn,
            "eval_fn": lambda m: evaluate(m, val_set)}  # fmt: skip
