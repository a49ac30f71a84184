"""A small learned refinement of the reference/keyframe transfer (docs/reference.md, "Learned refinement").

The training-free transfer (:mod:`animecolor.reference`) gives every a/b pixel
the color its matched reference cells have at its brightness, plus a
confidence (the best match's cosine similarity).  The refiner is a small conv
net at the a/b resolution that sees, for one target frame:

* its gray (at the a/b size),
* the transfer's a/b and the match confidence,
* the base model's a/b (``RefinerConfig.use_base``),
* the frozen matching features (strides 8+16 of the base model's backbone),

and predicts a per-pixel weight ``w`` toward the base model (toward gray when
``use_base`` is off) and a correction ``d``::

    ab = transfer + w * (base - transfer) + d

It is trained on pairs of frames of the same shot (the reference is another
frame of it) from training clips only (``pipelines/refine_train.py``).  Its
last layer starts at zero (``w`` ~ 0.02, ``d`` = 0), i.e. at the transfer.

Weights: safetensors with the config in the header (``save_refiner`` /
``load_refiner``); nothing is downloaded.

Status: **not shipped, not a CLI option.**  On the validation shots it did not
beat the training-free gate (docs/reference.md, "Learned refinement"): the
only training clips are ones the base model trained on, so the refiner learns
to trust the base model's (there in-sample) colors.  It stays as a Python
option (``KeyframeColorizer(..., refiner=load_refiner(path))``) for training
on other material.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .model.net import JsonConfig

__all__ = ["RefinerConfig", "Refiner", "save_refiner", "load_refiner", "FORMAT"]

FORMAT = "animecolor-refiner/1"


@dataclass
class RefinerConfig(JsonConfig):
    """Everything needed to rebuild a refiner; saved in its weights file."""

    _what = "refiner"

    feat_channels: int = 152  # matching features (bb8+bb16 of EfficientNet-Lite0)
    feat_proj: int = 24  # 1x1 projection of the features (0: features not used)
    width: int = 32  # trunk channels (trunk at half the a/b resolution)
    blocks: int = 2  # residual blocks of the trunk
    use_base: bool = True  # the base model's a/b is an input and the fallback


class _Block(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.c1 = nn.Conv2d(c, c, 3, padding=1)
        self.c2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.c2(F.relu(self.c1(x))))


class Refiner(nn.Module):
    """``forward(gray, transfer, conf, base, feats) -> a/b``, all at the a/b grid except conf/feats (cell grid).

    gray ``(N, 1, h, w)`` in [0, 255]; transfer/base ``(N, 2, h, w)`` Lab a/b
    (base ignored when ``use_base`` is off; may be None then); conf ``(N, 1, hc, wc)``
    best similarity; feats ``(N, C, hc, wc)`` unit-norm matching features.
    Returns a/b ``(N, 2, h, w)`` in Lab units.
    """

    def __init__(self, cfg: RefinerConfig | None = None):
        super().__init__()
        self.cfg = cfg or RefinerConfig()
        c = self.cfg
        n_pix = 3 + (2 if c.use_base else 0)  # gray, transfer a/b[, base a/b]
        self.proj = nn.Conv2d(c.feat_channels, c.feat_proj, 1) if c.feat_proj else None
        self.stem = nn.Conv2d(n_pix + 1 + c.feat_proj, c.width, 3, padding=1)
        self.blocks = nn.Sequential(*[_Block(c.width) for _ in range(c.blocks)])
        self.mix = nn.Conv2d(c.width + n_pix, 32, 1)
        self.out = nn.Conv2d(32, 3, 1)
        nn.init.zeros_(self.out.weight)
        with torch.no_grad():
            self.out.bias.copy_(torch.tensor([-4.0, 0.0, 0.0]))

    def forward(self, gray, transfer, conf, base, feats) -> torch.Tensor:
        h, w = transfer.shape[-2:]
        fb = torch.zeros_like(transfer) if base is None or not self.cfg.use_base else base
        parts = [gray / 127.5 - 1.0, transfer / 50.0] + ([fb / 50.0] if self.cfg.use_base else [])
        pix = torch.cat(parts, 1)
        h2, w2 = max(1, h // 2), max(1, w // 2)
        low = F.adaptive_avg_pool2d(pix, (h2, w2))
        cells = conf * 2 - 1 if self.proj is None else torch.cat([conf * 2 - 1, self.proj(feats)], 1)
        cf = F.interpolate(cells, size=(h2, w2), mode="bilinear", align_corners=False)
        x = self.blocks(F.relu(self.stem(torch.cat([low, cf], 1))))
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
        o = self.out(F.relu(self.mix(torch.cat([x, pix], 1))))
        wgt = torch.sigmoid(o[:, :1])
        return transfer + wgt * (fb - transfer) + 50.0 * o[:, 1:]


def save_refiner(model: Refiner, path: str | os.PathLike, info: dict[str, Any] | None = None) -> None:
    """Write ``model`` to ``path`` (safetensors, config and ``info`` in the header) atomically."""
    from .model.checkpoint import save_model

    save_model(model, path, info, fmt=FORMAT)  # type: ignore[arg-type]


def load_refiner(path: str | os.PathLike, device: str | torch.device = "cpu") -> Refiner:
    """Rebuild and load a refiner saved by :func:`save_refiner` (strict, eval mode)."""
    from safetensors.torch import load_file

    from .model.checkpoint import WeightsError, read_metadata

    meta = read_metadata(path, FORMAT, RefinerConfig)
    model = Refiner(meta["config"])
    try:
        model.load_state_dict(load_file(str(path), device="cpu"), strict=True)
    except Exception as e:  # noqa: BLE001 - safetensors/torch raise several types for a bad file
        raise WeightsError(f"cannot load refiner {path}: {str(e).strip().splitlines()[0] if str(e) else type(e).__name__}") from None
    model.info = meta["info"]  # type: ignore[attr-defined]
    return model.to(device).eval()
