"""The segmenters of :mod:`minivision.segmentation` written with ``torch.nn`` (the reference).

Each torch module has the same structure and ``state_dict`` names as its minivision twin, built
from torchvision's own ``FCNHead`` and ``ASPP`` (``torchvision.models.segmentation``) where they
exist, so ``torch_segmenter(model).load_state_dict(model.state_dict())`` gives the same network.
The reference tests compare outputs and gradients with these; the ``segmenter_*`` benchmarks
time and train them. torch is imported when a function is called.
"""

from __future__ import annotations

__all__ = ["torch_segmenter", "torch_dice_loss", "bilinear_kernel"]


def bilinear_kernel(channels: int, factor: int, depthwise: bool):
    """FCN's bilinear up-sampling kernel as a torch tensor, written from the formula."""
    import torch

    size = 2 * factor - factor % 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    tent = 1 - (torch.arange(size, dtype=torch.float64) - center).abs() / factor
    k2 = tent[:, None] * tent[None, :]
    if depthwise:
        return k2.expand(channels, 1, size, size).clone()
    w = torch.zeros(channels, channels, size, size, dtype=torch.float64)
    w[range(channels), range(channels)] = k2
    return w


def _modules():
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torchvision.models.segmentation.deeplabv3 import ASPP
    from torchvision.models.segmentation.fcn import FCNHead

    def cbr(c_in, c_out, k=3, d=1):
        return [nn.Conv2d(c_in, c_out, k, padding=d * (k - 1) // 2, dilation=d, bias=False),
                nn.BatchNorm2d(c_out), nn.ReLU()]  # fmt: skip

    class FCN(nn.Module):
        def __init__(self, m):
            super().__init__()
            self.variant, w, k = m.variant, m.backbone.widths, m.num_classes
            self.backbone = nn.Module()
            c_in = 3
            for i, c in enumerate(w, start=1):
                self.backbone.add_module(f"stage{i}", nn.Sequential(*cbr(c_in, c), *cbr(c, c),
                                                                    nn.MaxPool2d(2)))  # fmt: skip
                c_in = c
            self.head = FCNHead(w[4], k)
            if self.variant in ("16s", "8s"):
                self.up2_pool5 = nn.ConvTranspose2d(k, k, 4, 2, 1, bias=False)
                self.score_pool4 = nn.Conv2d(w[3], k, 1)
            if self.variant == "8s":
                self.up2_pool4 = nn.ConvTranspose2d(k, k, 4, 2, 1, bias=False)
                self.score_pool3 = nn.Conv2d(w[2], k, 1)
            self.factor = int(self.variant[:-1])
            self.register_buffer("upsample_kernel",
                                 bilinear_kernel(k, self.factor, True).float(), persistent=False)  # fmt: skip

        def forward(self, x):
            b = self.backbone
            pool3 = b.stage3(b.stage2(b.stage1(x)))
            pool4 = b.stage4(pool3)
            score = self.head(b.stage5(pool4))
            if self.variant in ("16s", "8s"):
                score = self.up2_pool5(score) + self.score_pool4(pool4)
            if self.variant == "8s":
                score = self.up2_pool4(score) + self.score_pool3(pool3)
            f = self.factor
            kernel = self.upsample_kernel.to(score.dtype)
            return F.conv_transpose2d(score, kernel, stride=f, padding=f // 2, groups=score.shape[1])

    class UNet(nn.Module):
        def __init__(self, m):
            super().__init__()
            w = self.widths = m.widths
            c_in = 3
            for i, c in enumerate(w, start=1):
                self.add_module(f"down{i}", nn.Sequential(*cbr(c_in, c), *cbr(c, c)))
                c_in = c
            for i in reversed(range(1, len(w))):
                self.add_module(f"up{i}", nn.ConvTranspose2d(w[i], w[i - 1], 2, stride=2))
                self.add_module(f"dec{i}", nn.Sequential(*cbr(2 * w[i - 1], w[i - 1]),
                                                         *cbr(w[i - 1], w[i - 1])))  # fmt: skip
            self.out = nn.Conv2d(w[0], m.num_classes, 1)

        def forward(self, x):
            skips, h, n = [], x, len(self.widths)
            for i in range(1, n + 1):
                h = getattr(self, f"down{i}")(h)
                if i < n:
                    skips.append(h)
                    h = F.max_pool2d(h, 2)
            for i in reversed(range(1, n)):
                h = getattr(self, f"dec{i}")(torch.cat([skips[i - 1], getattr(self, f"up{i}")(h)], 1))
            return self.out(h)

    class DeepLabV3(nn.Module):
        def __init__(self, m):
            super().__init__()
            self.backbone = nn.Module()
            c_in, w = 3, m.backbone.widths
            for i, c in enumerate(w):
                d = 1 if i < 3 else 2 ** (i - 2)
                layers = [*cbr(c_in, c, d=d), *cbr(c, c, d=d), *([nn.MaxPool2d(2)] if i < 3 else [])]
                self.backbone.add_module(f"stage{i + 1}", nn.Sequential(*layers))
                c_in = c
            k = m.num_classes
            if m.aspp:
                aspp = m.classifier[0]
                rates = [branch[0].dilation[0] for branch in list(aspp.convs)[1:-1]]
                ch = aspp.out_channels
                self.classifier = nn.Sequential(ASPP(c_in, rates, ch), *cbr(ch, ch), nn.Conv2d(ch, k, 1))
            else:
                ch = m.classifier[0].out_channels
                self.classifier = nn.Sequential(*cbr(c_in, ch), *cbr(ch, ch), nn.Conv2d(ch, k, 1))

        def forward(self, x):
            h = x
            for stage in self.backbone.children():
                h = stage(h)
            return F.interpolate(self.classifier(h), size=x.shape[-2:], mode="bilinear",
                                 align_corners=False)  # fmt: skip

    class SegNet(nn.Module):
        def __init__(self, m):
            super().__init__()
            w = self.widths = m.widths
            c_in = 3
            for i, c in enumerate(w, start=1):
                self.add_module(f"enc{i}", nn.Sequential(*cbr(c_in, c), *cbr(c, c)))
                c_in = c
            for i in reversed(range(1, len(w) + 1)):
                c = w[i - 1]
                tail = cbr(c, w[i - 2]) if i > 1 else [nn.Conv2d(c, m.num_classes, 3, padding=1)]
                self.add_module(f"dec{i}", nn.Sequential(*cbr(c, c), *tail))

        def forward(self, x):
            h, indices = x, []
            for i in range(1, len(self.widths) + 1):
                h, idx = F.max_pool2d(getattr(self, f"enc{i}")(h), 2, return_indices=True)
                indices.append(idx)
            for i in reversed(range(1, len(self.widths) + 1)):
                h = getattr(self, f"dec{i}")(F.max_unpool2d(h, indices[i - 1], 2))
            return h

    return {"FCN": FCN, "UNet": UNet, "DeepLabV3": DeepLabV3, "SegNet": SegNet}


def torch_segmenter(model):
    """An untrained torch twin of the minivision segmenter ``model`` (same structure and keys);
    load ``model.state_dict()`` into it to get the same network."""
    modules = _modules()
    name = type(model).__name__
    if name not in modules:
        raise ValueError(f"model must be an FCN, UNet, DeepLabV3 or SegNet, got {name}")
    return modules[name](model)


def torch_dice_loss(logits, target, eps: float = 1.0):
    """The soft Dice loss of :func:`minivision.segmentation.losses.dice_loss`, in torch ops."""
    import torch

    probs = torch.softmax(logits, dim=1)  # (N, C, H, W)
    onehot = torch.nn.functional.one_hot(target, logits.shape[1]).movedim(-1, 1).to(probs.dtype)
    dims = (0, 2, 3)
    inter = (probs * onehot).sum(dims)
    total = probs.sum(dims) + onehot.sum(dims)
    return 1 - ((2 * inter + eps) / (total + eps)).mean()
