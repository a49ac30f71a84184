"""Residual-encoder colorizer (after Dahl 2016): backbone hypercolumns fused top-down.

The network sees Lab lightness only (1 channel, ``L / 50 - 1``) and predicts
the a/b chroma at half the input resolution, either directly (regression head,
L1/L2 losses) or as a distribution over a quantized a/b grid (classification
head, Zhang et al. 2016) decoded with the annealed mean.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .backbone import build_backbone

__all__ = ["JsonConfig", "ModelConfig", "ResidualColorizer", "ab_grid", "fuse_conv_bn"]


class JsonConfig:
    """JSON round trip of a dataclass config saved in a checkpoint's header; unknown keys are refused
    (``_what`` names the config in that error)."""

    _what = "model"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str):
        data = json.loads(text)
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown {cls._what} config keys: {sorted(unknown)}")
        return cls(**data)


@dataclass
class ModelConfig(JsonConfig):
    """Everything needed to rebuild the network; saved inside every checkpoint."""

    backbone: str = "efficientnet_lite0"
    decoder_widths: list[int] = field(default_factory=lambda: [32, 48, 64, 96, 128])
    # "ce": classification over quantized a and b (two 1-D marginals, see module doc);
    # "reg": direct a/b regression (trained with L1 or L2).
    head: str = "ce"
    ab_bin: float = 10.0  # grid step of the a/b quantization (ce head)
    ab_max: float = 110.0  # a/b range covered by the grid: [-ab_max, ab_max)
    temperature: float = 0.38  # annealed-mean temperature (ce head)
    working_long_side: int = 256  # model input size: long side in pixels (multiple of 32)

    @property
    def n_bins(self) -> int:
        """Bins per chroma axis (the ce head predicts a and b marginals)."""
        return int(round(2 * self.ab_max / self.ab_bin))


def ab_grid(cfg: ModelConfig) -> torch.Tensor:
    """Centres of the quantized bins of one chroma axis, ``(n_bins,)``."""
    n = cfg.n_bins
    return -cfg.ab_max + cfg.ab_bin * (torch.arange(n, dtype=torch.float32) + 0.5)


class _ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 1):
        super().__init__(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _ResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = self.bn2(self.conv2(y))
        return F.relu(x + y, inplace=True)


class ResidualColorizer(nn.Module):
    """Backbone features at strides 2..32 fused coarse-to-fine by residual blocks.

    ``forward(x)`` takes ``(N, 1, H, W)`` lightness in [-1, 1] (H, W multiples of
    32) and returns raw head outputs at ``H/2 x W/2``; ``predict_ab`` decodes them
    to a/b in Lab units, ``(N, 2, H/2, W/2)``.
    """

    output_stride = 2

    def __init__(self, cfg: ModelConfig | None = None):
        super().__init__()
        self.cfg = cfg or ModelConfig()
        self.backbone = build_backbone(self.cfg.backbone)
        chans = list(self.backbone.channels)
        strides = list(self.backbone.strides)
        widths = list(self.cfg.decoder_widths)
        if len(widths) != len(chans):
            raise ValueError(f"decoder_widths needs {len(chans)} entries for backbone {self.cfg.backbone}")
        # Only keep scales at stride >= 2 (VGG's stride-1 features are skipped).
        keep = [i for i, s in enumerate(strides) if s >= 2]
        self._keep = keep
        self.lateral = nn.ModuleList([_ConvBNReLU(chans[i], widths[i]) for i in keep])
        self.reduce = nn.ModuleList(
            [_ConvBNReLU(widths[keep[j + 1]], widths[keep[j]]) for j in range(len(keep) - 1)]
        )
        self.fuse = nn.ModuleList([_ResBlock(widths[i]) for i in keep])
        self._out_stride = strides[keep[0]]
        out_ch = 2 * self.cfg.n_bins if self.cfg.head == "ce" else 2
        self.head = nn.Conv2d(widths[keep[0]], out_ch, 1)
        if self.cfg.head not in ("ce", "reg"):
            raise ValueError(f"unknown head {self.cfg.head!r}")
        self.register_buffer("grid", ab_grid(self.cfg), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_maps(x)[0]

    def forward_maps(
        self, x: torch.Tensor, min_stride: int | None = None
    ) -> tuple[torch.Tensor | None, list[torch.Tensor], dict[int, torch.Tensor]]:
        """``(head output, backbone features, decoder's fused maps by stride)``.

        With ``min_stride`` the decoder stops after its map at that stride and
        the head output is ``None`` (the reference matcher's features).
        """
        feats = self.backbone(x)
        kept = [feats[i] for i in self._keep]
        strides = [self.backbone.strides[i] for i in self._keep]
        y = self.fuse[-1](self.lateral[-1](kept[-1]))
        maps = {strides[-1]: y}
        for j in range(len(kept) - 2, -1, -1):
            if min_stride is not None and strides[j] < min_stride:
                return None, feats, maps
            y = F.interpolate(y, size=kept[j].shape[-2:], mode="bilinear", align_corners=False)
            y = self.reduce[j](y) + self.lateral[j](kept[j])
            y = self.fuse[j](y)
            maps[strides[j]] = y
        if min_stride is not None:
            return None, feats, maps
        out = self.head(y)
        if self._out_stride != self.output_stride:
            scale = self._out_stride / self.output_stride
            out = F.interpolate(out, scale_factor=scale, mode="bilinear", align_corners=False)
        return out, feats, maps

    def match_features(self, feats: list[torch.Tensor], dec: dict[int, torch.Tensor], source: str,
                       size: tuple[int, int]) -> torch.Tensor:
        """Per-position unit vectors ``(N, C, *size)`` describing the picture for the reference matcher.

        ``source``: "+"-joined parts, each L2-normalized, brought to ``size``
        (bilinear from coarser maps, averaged from finer ones), concatenated and
        normalized again: ``bbS`` the backbone's output at stride S, ``decS`` the
        decoder's fused map at stride S (``feats``/``dec`` as :meth:`forward_maps` gives them).
        """
        strides = list(self.backbone.strides)
        maps = []
        for p in source.split("+"):
            s = int(p[3:]) if p.startswith("dec") else int(p[2:])
            m = (dec[s] if p.startswith("dec") else feats[strides.index(s)]).float()
            if m.shape[-2:] != size:
                if m.shape[-1] < size[1]:
                    m = F.interpolate(m, size=size, mode="bilinear", align_corners=False)
                else:
                    m = F.adaptive_avg_pool2d(m, size)
            maps.append(F.normalize(m, dim=1))
        return F.normalize(torch.cat(maps, 1), dim=1)

    def decode(self, out: torch.Tensor, temperature: float | None = None) -> torch.Tensor:
        """Head output -> a/b ``(N, 2, h, w)`` in Lab units."""
        if self.cfg.head == "reg":
            return out.float() * 100.0
        t = self.cfg.temperature if temperature is None else temperature
        n, _, h, w = out.shape
        logits = out.float().reshape(n, 2, self.cfg.n_bins, h, w)
        p = torch.softmax(logits / t, dim=2)
        return torch.einsum("ncqhw,q->nchw", p, self.grid.to(p.dtype))

    def predict_ab(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self(x))


def fuse_conv_bn(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm2d into the Conv2d registered just before it (inference only).

    Both backbones and the decoder register each conv immediately before the
    batch norm applied to its output, so adjacent (Conv2d, BatchNorm2d)
    children are folded and the norm becomes ``nn.Identity``.  Batch norm
    costs about a third of CPU inference time unfused.  ``model`` must be in
    eval mode; it is changed in place and returned.
    """
    if model.training:
        raise ValueError("fuse_conv_bn needs a model in eval mode")
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for parent in model.modules():
        names = list(parent._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = parent._modules[a], parent._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                parent._modules[a] = fuse_conv_bn_eval(conv, bn)
                parent._modules[b] = nn.Identity()
    return model
