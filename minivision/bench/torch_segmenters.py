"""torch.nn transcriptions of :mod:`minivision.segmentation`'s FCN, U-Net, DeepLabV3 and SegNet.

Each ``torch_*`` function builds the same network as the minivision model of the same
arguments, from ``torch.nn`` layers and torchvision's ``FCNHead``, ``ASPP`` and ``DeepLabHead``
where they exist, with the *same state_dict keys*, so

    ours = FCN(variant="8s")
    theirs = torch_fcn(ours)
    theirs.load_state_dict({k: torch.from_numpy(np.asarray(v))
                            for k, v in ours.state_dict().items()})

gives the two the same weights (:func:`torch_segmenter` does both: ``torch_segmenter(ours,
dtype=torch.float64)``). The reference tests (tests/segmentation) compare outputs and
gradients; the side-by-side training benchmark trains both from the same start. torch is
imported inside the functions: the package does not need it. Each function takes the
minivision model and reads its hyper-parameters; the weights are torch's defaults until loaded.
"""

from __future__ import annotations

__all__ = ["torch_fcn", "torch_unet", "torch_deeplabv3", "torch_segnet", "torch_segmenter",
           "load_weights"]  # fmt: skip


def load_weights(torch_model, model, dtype=None):
    """Copy ``model``'s state_dict (a minivision model) into ``torch_model``; returns it."""
    import numpy as np
    import torch

    from .._backend import to_numpy

    if dtype is not None:
        torch_model.to(dtype)  # first, so that loading does not round to float32
    state = {}
    for key, value in model.state_dict().items():
        t = torch.from_numpy(np.array(to_numpy(value)))
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        state[key] = t
    torch_model.load_state_dict(state)
    return torch_model


def _cbr(nn, c_in, c_out, dilation=1):
    return [nn.Conv2d(c_in, c_out, 3, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(c_out), nn.ReLU()]  # fmt: skip


def _fixed_bilinear(torch, channels, factor):
    """FCN's fixed depthwise bilinear kernel ``(C, 1, 2f, 2f)`` (as ``nn.init.bilinear_``)."""
    size = 2 * factor
    center = factor - 0.5
    og = torch.arange(size, dtype=torch.float64)
    filt1 = 1 - (og - center).abs() / factor
    return (filt1[:, None] * filt1[None, :]).expand(channels, 1, size, size).clone().float()


def torch_fcn(model):
    """The torch FCN-32s/16s/8s of a minivision :class:`~minivision.segmentation.FCN`."""
    import torch
    from torch import nn
    from torch.nn import functional as F
    from torchvision.models.segmentation.fcn import FCNHead

    widths, k1, variant = model.widths, model.num_outputs, model.variant
    convs = (1, 1, 2, 2, 2)

    class TorchFCN(nn.Module):
        def __init__(self):
            super().__init__()
            stages, c_in = [], 3
            for c, n in zip(widths, convs):
                layers = []
                for _ in range(n):
                    layers += _cbr(nn, c_in, c)
                    c_in = c
                stages.append(nn.Sequential(*layers, nn.MaxPool2d(2)))
            self.backbone = nn.Sequential(*stages)
            self.head = FCNHead(widths[4], k1)
            if variant in ("16s", "8s"):
                self.upscore2 = nn.ConvTranspose2d(k1, k1, 4, stride=2, padding=1, bias=False)
                self.score_pool4 = nn.Conv2d(widths[3], k1, 1)
            if variant == "8s":
                self.upscore_pool4 = nn.ConvTranspose2d(k1, k1, 4, 2, padding=1, bias=False)
                self.score_pool3 = nn.Conv2d(widths[2], k1, 1)
            self.factor = {"32s": 32, "16s": 16, "8s": 8}[variant]
            self.register_buffer("upscore", _fixed_bilinear(torch, k1, self.factor),
                                 persistent=False)  # fmt: skip

        def forward(self, x):
            feats = []
            for stage in self.backbone:
                x = stage(x)
                feats.append(x)
            pool3, pool4, pool5 = feats[-3:]
            score = self.head(pool5)
            if variant in ("16s", "8s"):
                score = self.upscore2(score) + self.score_pool4(pool4)
            if variant == "8s":
                score = self.upscore_pool4(score) + self.score_pool3(pool3)
            f = self.factor
            return F.conv_transpose2d(score, self.upscore, stride=f, padding=f // 2, groups=k1)

    return TorchFCN()


def torch_unet(model):
    """The torch U-Net of a minivision :class:`~minivision.segmentation.UNet`."""
    import torch
    from torch import nn

    widths, k1 = model.widths, model.num_outputs

    def double(c_in, c_out):
        return nn.Sequential(*_cbr(nn, c_in, c_out), *_cbr(nn, c_out, c_out))

    class TorchUNet(nn.Module):
        def __init__(self):
            super().__init__()
            chans = (3,) + widths
            self.encoder = nn.ModuleList(double(chans[i], chans[i + 1]) for i in range(len(widths)))
            levels = range(len(widths) - 2, -1, -1)
            self.ups = nn.ModuleList(
                nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in levels
            )
            self.decoder = nn.ModuleList(double(2 * widths[i], widths[i]) for i in levels)
            self.classifier = nn.Conv2d(widths[0], k1, 1)

        def forward(self, x):
            skips = []
            for level, block in enumerate(self.encoder):
                x = block(x)
                if level < len(widths) - 1:
                    skips.append(x)
                    x = nn.functional.max_pool2d(x, 2)
            for j, (up, block) in enumerate(zip(self.ups, self.decoder)):
                x = block(torch.cat([skips[-1 - j], up(x)], dim=1))
            return self.classifier(x)

    return TorchUNet()


def torch_deeplabv3(model):
    """The torch DeepLabV3 of a minivision :class:`~minivision.segmentation.DeepLabV3`, with
    torchvision's ``ASPP`` (and its ``DeepLabHead`` when ``aspp_channels == 256``)."""
    from torch import nn
    from torch.nn import functional as F
    from torchvision.models.segmentation.deeplabv3 import ASPP, DeepLabHead

    widths, k1, c = model.widths, model.num_outputs, model.aspp_channels
    rates, use_aspp = model.atrous_rates, model.aspp

    class TorchDeepLabV3(nn.Module):
        def __init__(self):
            super().__init__()
            stages, c_in = [], 3
            for j, w in enumerate(widths):
                d = 1 if j < 3 else 2 ** (j - 2)
                layers = _cbr(nn, c_in, w, d) + _cbr(nn, w, w, d)
                stages.append(nn.Sequential(*layers, nn.MaxPool2d(2)) if j < 3
                              else nn.Sequential(*layers))  # fmt: skip
                c_in = w
            self.backbone = nn.Sequential(*stages)
            if use_aspp and c == 256:
                self.classifier = DeepLabHead(widths[-1], k1, rates)
            else:
                first = ASPP(widths[-1], rates, c) if use_aspp else nn.Sequential(
                    *_cbr(nn, widths[-1], c))  # fmt: skip
                self.classifier = nn.Sequential(first, *_cbr(nn, c, c), nn.Conv2d(c, k1, 1))

        def forward(self, x):
            y = self.classifier(self.backbone(x))
            return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)

    return TorchDeepLabV3()


def torch_segnet(model):
    """The torch SegNet of a minivision :class:`~minivision.segmentation.SegNet`."""
    from torch import nn
    from torch.nn import functional as F

    widths, k1 = model.widths, model.num_outputs

    class TorchSegNet(nn.Module):
        def __init__(self):
            super().__init__()
            chans = (3,) + widths
            self.encoder = nn.ModuleList(
                nn.Sequential(
                    *_cbr(nn, chans[i], chans[i + 1]), *_cbr(nn, chans[i + 1], chans[i + 1])
                )
                for i in range(len(widths))
            )
            decoder = []
            for level in range(len(widths) - 1, -1, -1):
                w = widths[level]
                if level > 0:
                    layers = _cbr(nn, w, w) + _cbr(nn, w, widths[level - 1])
                else:
                    layers = _cbr(nn, w, w) + [nn.Conv2d(w, k1, 3, padding=1)]
                decoder.append(nn.Sequential(*layers))
            self.decoder = nn.ModuleList(decoder)

        def forward(self, x):
            indices = []
            for block in self.encoder:
                x, idx = F.max_pool2d(block(x), 2, return_indices=True)
                indices.append(idx)
            for j, block in enumerate(self.decoder):
                x = block(F.max_unpool2d(x, indices[-1 - j], 2))
            return x

    return TorchSegNet()


def torch_segmenter(model, dtype=None):
    """The torch transcription of any of the four models, holding ``model``'s weights."""
    from ..segmentation import FCN, DeepLabV3, SegNet, UNet

    build = {FCN: torch_fcn, UNet: torch_unet, DeepLabV3: torch_deeplabv3, SegNet: torch_segnet}
    for cls, fn in build.items():
        if isinstance(model, cls):
            return load_weights(fn(model), model, dtype)
    raise TypeError(f"no torch transcription for {type(model).__name__}")
