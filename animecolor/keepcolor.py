"""Selective color: keep color only on chosen subjects, learned from a few edited frames.

A *pair* is a color frame and the same frame edited so that only the chosen
subjects keep their color (the rest gray).  The keep-color mask is derived from
the pair (:func:`derive_mask`), a small mask head (:class:`MaskHead`) learns it
on backbone features (by default an ImageNet EfficientNet-Lite0's on the frame's
colors, or the colorizer's on its lightness: ``HeadConfig.features``;
:mod:`animecolor.keepcolor_train`; minutes on a CPU), and :class:`KeepColorizer`
applies it in the episode pipeline:

* the mask is predicted at 1/4 of the model's working size, refined at the
  working size by OpenCV's GrabCut seeded with it (:func:`grabcut_refine`: the
  frame's own colors move its edge), smoothed over time (an exponential moving
  average reset at scene cuts, :class:`MaskSmoother`) and brought to the chroma
  planes' resolution by a guided filter with the source's luma as guide
  (:func:`guided_upsample`), so it follows ink lines;
* on a color source it keeps the source's own chroma inside the mask, on a B&W
  source the colorizer's; outside the mask the chroma is neutral.  The luma is
  always the source's.

Checkpoints (``RUN/best.safetensors``) hold the base colorizer's tensors
(``base.*``), the head's (``head.*``), and a JSON header (format
``animecolor-keepcolor/1``) with both configs and the training record.
"""
from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as TF
from torch import nn

from .color import gray_to_L, lab_to_rgb, rgb_to_lab, y_to_gray
from .frames import rgb_to_y
from .model.net import JsonConfig

__all__ = [
    "FORMAT", "MIN_CHROMA", "HeadConfig", "MaskHead", "find_pairs", "load_pair", "derive_mask", "guided_upsample",
    "grabcut_refine", "REFINES", "MaskSmoother", "KeepColorizer", "load_keepcolor", "apply_mask_rgb", "pair_scores",
    "hist_similarity", "mask_iou", "mask_flicker", "neutral_source", "FEATURES", "rgb_input",
]

FORMAT = "animecolor-keepcolor/1"
#: input pixels with less chroma than this (Lab a/b distance from gray) look the same kept or grayed:
#: the mask there is unknown and neither trained on nor scored.
MIN_CHROMA = 6.0
#: what refines the head's mask before smoothing: "grabcut" (:func:`grabcut_refine`, the default: chosen on the Koro
#: val shots and held-out clip-art training pairs, docs/keepcolor.md) or "none" (the head's mask as it is)
REFINES = ("grabcut", "none")
#: GrabCut's seeds: the mask's pixels above this probability are sure subject, below 1 - this sure background,
#: the rest probable either way; and its iterations (both chosen with the post-step, docs/keepcolor.md)
GRABCUT_SURE = 0.999
GRABCUT_ITERS = 1
#: what the head's features see (HeadConfig.features): "colorizer", the colorizer's backbone on the frame's
#: lightness; "rgb", an EfficientNet-Lite0 with ImageNet weights (held by the head) on the frame's colors
FEATURES = ("colorizer", "rgb")
AB_SCALE = 4.0  # a/b reach the head as Lab/100; x4: Lab/25, about unit scale
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


# ----------------------------------------------------------------------------- pairs

def _images(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.is_file())


def find_pairs(paths: Sequence[str | os.PathLike]) -> list[tuple[str, Path, Path]]:
    """``(name, input, target)`` of the pairs in ``paths``.

    One folder with ``NAME_input.EXT`` / ``NAME_target.EXT`` files (several such
    folders may be given), or two parallel folders: inputs, then targets, matched
    by file name.  One-line ``ValueError`` when nothing matches.
    """
    dirs = [Path(p) for p in paths]
    for d in dirs:
        if not d.is_dir():
            raise FileNotFoundError(f"pairs folder not found: {d}")
    pairs: list[tuple[str, Path, Path]] = []
    for d in dirs:
        files = {p.stem: p for p in _images(d)}
        for stem, p in files.items():
            if stem.endswith("_input") and stem[:-6] + "_target" in files:
                pairs.append((stem[:-6], p, files[stem[:-6] + "_target"]))
    if not pairs and len(dirs) == 2:
        targets = {p.name: p for p in _images(dirs[1])}
        pairs = [(p.stem, p, targets[p.name]) for p in _images(dirs[0]) if p.name in targets]
    if not pairs:
        raise ValueError(f"no pairs in {', '.join(map(str, dirs))}: expected NAME_input.png + NAME_target.png in a "
                         "folder, or two folders (inputs, targets) with the same file names")
    return pairs


def load_pair(inp: Path, tgt: Path) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 input and target of one pair (same size, else one-line error)."""
    out = []
    for p in (inp, tgt):
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"cannot read image {p}")
        out.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    if out[0].shape != out[1].shape:
        raise ValueError(f"pair {inp.name} / {tgt.name}: sizes differ ({out[0].shape[1]}x{out[0].shape[0]} vs "
                         f"{out[1].shape[1]}x{out[1].shape[0]})")
    return out[0], out[1]


def derive_mask(inp: np.ndarray, tgt: np.ndarray, min_chroma: float = MIN_CHROMA) -> tuple[np.ndarray, np.ndarray]:
    """The keep-color mask a pair shows: ``(mask, known)``, float32 ``(H, W)`` in {0, 1}.

    A pixel is kept where the target's a/b is closer to the input's than to gray;
    it is *known* only where the input has chroma (>= ``min_chroma``): a gray
    input pixel looks the same either way.
    """
    ab_in = rgb_to_lab(inp)[..., 1:]
    ab_t = rgb_to_lab(tgt)[..., 1:]
    keep = np.linalg.norm(ab_t - ab_in, axis=-1) < np.linalg.norm(ab_t, axis=-1)
    known = np.linalg.norm(ab_in, axis=-1) >= min_chroma
    return keep.astype(np.float32), known.astype(np.float32)


# ----------------------------------------------------------------------------- model

@dataclass
class HeadConfig(JsonConfig):
    """The mask head's shape and how it is applied; saved inside every keep-color checkpoint."""

    _what = "keep-color"

    taps: list[int] = field(default_factory=lambda: [1, 2, 3, 4])  # backbone feature indices (strides 4..32)
    width: int = 32
    chroma: bool = True  # the head also sees the frame's Lab a/b (the source's, or the colorizer's on B&W video)
    ema: float = 0.5  # weight of the new frame in the mask's moving average (1 = no smoothing)
    guide_radius: int = 4  # guided-filter radius at working size (px)
    guide_eps: float = 1e-3  # guided-filter regularization (gray in [0, 1])
    # fine-tuning: the head holds its own trained copy of the backbone's blocks from this stride on
    # (16: the stride-16 and -32 stages; 32: the stride-32 stage), run on the frozen backbone's map at the
    # stride before; 0: the backbone is frozen, its maps used as they are
    tune_from: int = 0
    # which maps the head reads (FEATURES): "colorizer" (the colorizer's backbone on the frame's lightness: what a
    # checkpoint without the key means) or "rgb" (the head's own frozen copy of an ImageNet EfficientNet-Lite0's first
    # blocks on the frame's colors: the source's, or on a B&W video the colorizer's)
    features: str = "colorizer"


class MaskHead(nn.Module):
    """Backbone features (frozen) -> one keep-color logit per pixel at the finest tapped stride.

    With ``cfg.tune_from`` the head holds a copy of the backbone's blocks from that
    stride on (``tuned``; initialised from ``backbone`` when given, else to be loaded)
    and recomputes the coarser maps with them.  With ``cfg.features == "rgb"`` the head
    also holds the frozen blocks before them (``rgb``, from ``backbone``: a 3-channel
    EfficientNet-Lite0) and its maps come from :meth:`rgb_maps` of the frame's colors.
    """

    def __init__(self, cfg: HeadConfig, channels: Sequence[int], backbone: nn.Module | None = None):
        import copy

        from .model.backbone import EfficientNetLite0

        super().__init__()
        self.cfg = cfg
        self.tuned = self.rgb = None
        if cfg.features not in FEATURES:
            raise ValueError(f"mask head features must be one of {', '.join(FEATURES)}, got {cfg.features!r}")
        if cfg.features == "rgb":
            backbone = backbone if backbone is not None else EfficientNetLite0(in_channels=3)
            if not isinstance(backbone, EfficientNetLite0) or backbone._conv_stem.in_channels != 3:
                raise ValueError("rgb features need a 3-channel EfficientNet-Lite0")
        if cfg.tune_from:
            strides = list(EfficientNetLite0.strides)
            if cfg.tune_from not in strides[1:] or (backbone is not None and not isinstance(backbone, EfficientNetLite0)):
                raise ValueError(f"fine-tuning needs an EfficientNet-Lite0 backbone and tune_from in {strides[1:]}, "
                                 f"got {cfg.tune_from}")
            self._first = strides.index(cfg.tune_from)  # the first recomputed map
            start = EfficientNetLite0._taps[self._first - 1] + 1
            self._taps = [t - start for t in EfficientNetLite0._taps[self._first:]]
            src = backbone if backbone is not None else EfficientNetLite0()
            self.tuned = nn.ModuleList(copy.deepcopy(list(src._blocks)[start:]))
        if cfg.features == "rgb":  # the frozen blocks up to the last map the head reads from them
            self._rgb_maps = self._first if self.tuned is not None else max(cfg.taps) + 1
            self.rgb = copy.deepcopy(backbone)
            self.rgb._blocks = nn.ModuleList(list(self.rgb._blocks)[:EfficientNetLite0._taps[self._rgb_maps - 1] + 1])
            self.rgb.requires_grad_(False)
        self.proj = nn.ModuleList([nn.Sequential(nn.Conv2d(channels[i], cfg.width, 1), nn.ReLU()) for i in cfg.taps])
        # the frame's a/b gets a 3x3 projection of its own, as wide as a feature scale's: fed in raw
        # (2 channels of ~0.1-0.5 among 128 of features), the head learned to ignore it
        self.ab_proj = nn.Sequential(nn.Conv2d(2, cfg.width, 3, padding=1), nn.ReLU()) if cfg.chroma else None
        n = cfg.width * (len(cfg.taps) + (1 if cfg.chroma else 0))
        self.fuse = nn.Sequential(
            nn.Conv2d(n, cfg.width, 1), nn.ReLU(),
            nn.Conv2d(cfg.width, cfg.width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(cfg.width, cfg.width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(cfg.width, 1, 1),
        )

    def forward(self, feats: Sequence[torch.Tensor], ab: torch.Tensor | None = None) -> torch.Tensor:
        """``ab``: ``(N, 2, h, w)`` Lab a/b / 100 at the finest tapped stride (needed when ``cfg.chroma``)."""
        if self.tuned is not None:
            x, feats = feats[self._first - 1], list(feats[:self._first])
            for i, blk in enumerate(self.tuned):
                x = blk(x)
                if i in self._taps:
                    feats.append(x)
        xs = [feats[i] for i in self.cfg.taps]
        size = xs[0].shape[-2:]
        ys = [p(x) if x.shape[-2:] == size else TF.interpolate(p(x), size=size, mode="bilinear", align_corners=False)
              for p, x in zip(self.proj, xs)]
        if self.cfg.chroma:
            if ab is None:
                raise ValueError("this mask head needs the frame's a/b")
            ys.append(self.ab_proj(ab * AB_SCALE))
        return self.fuse(torch.cat(ys, 1))[:, 0]

    def rgb_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The ``rgb`` blocks' maps of ``x`` (:func:`rgb_input`), for :meth:`forward`."""
        return self.rgb.features_until(x, self._rgb_maps)

    def train(self, mode: bool = True):
        super().train(mode)
        for frozen in (self.tuned, self.rgb):  # the copied blocks keep the backbone's batch-norm statistics
            if frozen is not None:
                frozen.eval()
        return self


def rgb_input(rgb: np.ndarray | Sequence[np.ndarray], device="cpu") -> torch.Tensor:
    """uint8 RGB ``(N, h, w, 3)`` -> ``(N, 3, h, w)`` in [-1, 1], the ImageNet EfficientNet-Lite0's input."""
    x = torch.from_numpy(np.ascontiguousarray(np.stack(list(rgb)) if not isinstance(rgb, np.ndarray) else rgb))
    return x.to(device).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def _lut(device) -> torch.Tensor:
    return torch.from_numpy(gray_to_L(np.arange(256, dtype=np.uint8)) / 50.0 - 1.0).float().to(device)


def _gray_of(rgb: np.ndarray) -> np.ndarray:
    """The full-range gray a video of this color frame gives the model (BT.601 luma, as in training)."""
    return y_to_gray(rgb_to_y(rgb))


# ----------------------------------------------------------------------------- full-resolution mask

def guided_upsample(mask: np.ndarray, guide: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Mask (any size, float) -> the guide's size, edges snapped to the guide's (He et al. guided filter).

    ``guide``: uint8 gray at the output size.  The filter runs at the output size
    with a radius scaled from working-size pixels; result clipped to [0, 1].
    """
    H, W = guide.shape
    p = cv2.resize(mask.astype(np.float32), (W, H), interpolation=cv2.INTER_LINEAR)
    if radius <= 0:
        return np.clip(p, 0, 1)
    I = guide.astype(np.float32) * (1.0 / 255.0)
    k = (2 * radius + 1, 2 * radius + 1)
    box = lambda x: cv2.boxFilter(x, -1, k, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    mI, mp = box(I), box(p)
    a = (box(I * p) - mI * mp) / (box(I * I) - mI * mI + eps)
    b = mp - a * mI
    return np.clip(box(a) * I + box(b), 0.0, 1.0)


def grabcut_refine(rgb: np.ndarray, prob: np.ndarray, sure: float = GRABCUT_SURE, iters: int = GRABCUT_ITERS) -> np.ndarray:
    """The mask ``prob`` (float ``(h, w)`` in [0, 1], ``rgb``'s size) after OpenCV's GrabCut seeded by it; float {0, 1}.

    Probable subject where ``prob`` > 0.5, probable background elsewhere, sure subject above ``sure``
    and sure background below ``1 - sure``; GrabCut's color models (one Gaussian mixture each) and
    its graph cut then move the edge to where the frame's own colors change.  A mask with under 20
    pixels on either side is only thresholded (GrabCut needs both models).  Deterministic: OpenCV's
    random generator is reseeded for each call.
    """
    gc = np.where(prob > 0.5, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    gc[prob > sure] = cv2.GC_FGD
    gc[prob < 1 - sure] = cv2.GC_BGD
    fg = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
    if fg.sum() < 20 or (~fg).sum() < 20:
        return fg.astype(np.float32)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut seeds its color models by k-means from OpenCV's (thread's) global RNG: the same
    # frame then gives the same mask whatever ran before it (a preview, a segment of `batch --segments`)
    cv2.grabCut(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), gc, None, bgd, fgd, iters, cv2.GC_INIT_WITH_MASK)
    return ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)).astype(np.float32)


class MaskSmoother:
    """The episode's EMA chroma smoother (:class:`animecolor.temporal.EMASmoother`: moving average,
    restarted at a large luma change, i.e. a cut) run on a mask, one frame at a time (no blinking subjects)."""

    def __init__(self, alpha: float):
        from .temporal import EMASmoother

        if not 0 < alpha <= 1:
            raise ValueError(f"mask smoothing weight must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self.ema = EMASmoother(alpha)

    def reset(self) -> None:
        self.ema.reset()

    def __call__(self, gray: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """gray uint8 ``(h, w)`` (any size), mask float ``(h', w')`` of one frame -> smoothed mask."""
        g = cv2.resize(gray, (mask.shape[1], mask.shape[0]), interpolation=cv2.INTER_AREA)
        two = np.repeat(mask[None, ..., None].astype(np.float32), 2, axis=-1)  # EMASmoother takes a/b pairs
        return self.ema.process(g[None], two)[0, ..., 0]


def neutral_source(uv: Sequence[tuple[np.ndarray, np.ndarray]], tol: float = 3.0) -> bool:
    """True when the source's chroma planes are (nearly) gray: a B&W video stored in a color format."""
    if not uv:
        return True
    dev = [float(np.mean(np.abs(u.astype(np.int16) - 128)) + np.mean(np.abs(v.astype(np.int16) - 128))) for u, v in uv]
    return float(np.mean(dev)) < tol


# ----------------------------------------------------------------------------- inference

def _feed(session, **inputs) -> dict:
    """``inputs`` that ``session`` takes: an export drops an input its graph does not use (a head's a/b
    without ``HeadConfig.chroma``)."""
    names = {i.name for i in session.get_inputs()}
    return {k: v for k, v in inputs.items() if k in names}


class KeepColorizer:
    """A colorizer whose output keeps color only where its mask says (see the module doc).

    ``source``: ``"auto"`` (the source's own chroma on a color video, the base
    model's on a B&W one, decided on the first batch), ``"source"`` or ``"model"``.
    ``refine``: "grabcut" (the head's mask refined by :func:`grabcut_refine` at the working
    size, on the frame's own colors or, on a B&W video, the colorizer's) or "none".
    In the pipeline it asks the reader for the source's chroma planes
    (``needs_source_chroma``), hands per-frame masks to the merger
    (:meth:`frame_extras`) and makes the chroma planes itself (:meth:`merge`).
    """

    needs_source_chroma = True

    def __init__(self, base, head: MaskHead, device="cpu", name: str = "keep-color", source: str = "auto",
                 refine: str = "grabcut"):
        from .model.net import fuse_conv_bn

        if source not in ("auto", "source", "model"):
            raise ValueError(f"keep-color source must be auto, source or model, got {source!r}")
        if refine not in REFINES:
            raise ValueError(f"keep-color refine must be one of {', '.join(REFINES)}, got {refine!r}")
        self.refine = refine
        #: masks handed on (:meth:`masks`, :meth:`frame_extras`) are at the working size / this
        self.mask_stride = 1 if refine == "grabcut" else 4
        self.device = torch.device(device)
        self.model = fuse_conv_bn(base.eval()).to(self.device)
        self.head = head.eval().to(self.device)
        self.cfg = head.cfg
        self.output_stride = base.output_stride
        self.name = name
        self.source = source
        self.smoother = MaskSmoother(self.cfg.ema)
        self._lut = _lut(self.device)
        self._lut_np = self._lut.cpu().numpy()
        self._masks: deque = deque()
        self._uv: deque = deque()
        self._src: list | None = None
        self._full_range = False
        self.session = None  # an ONNX Runtime session of model + head (animecolor.runtime.export_keepcolor_onnx), see load_keepcolor
        self.head_session = None  # with RGB features: the session above is the colorizer's, this one the head's
        self.runtime = "torch"

    def use_onnx(self, session, head_session=None) -> None:
        """Run :meth:`predict` with ``session`` (an export of this colorizer's networks; with RGB features
        ``session`` of the colorizer and ``head_session`` of the head) instead of PyTorch."""
        self.session, self.head_session, self.runtime = session, head_session, "onnx"

    def working_size(self, width: int, height: int) -> tuple[int, int]:
        from .colorize import working_size

        return working_size(width, height, self.model.cfg.working_long_side)

    def predict(self, gray: np.ndarray, src_ab: np.ndarray | None = None,
                src_rgb: Sequence[np.ndarray | None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """uint8 ``(N, h, w)`` -> (a/b ``(N, h/2, w/2, 2)``, raw mask probabilities ``(N, h/4, w/4)``).

        ``src_ab``: the frames' own Lab a/b ``(N, h/4, w/4, 2)`` (color source; NaN for a frame
        without one); without it the head sees the colorizer's a/b.  ``src_rgb``: the frames' own
        colors (uint8 ``(h, w, 3)``, ``None`` for a frame without), which a head on RGB features
        reads (the colorizer's colors where there are none).
        """
        ab, m, _ = self._predict(gray, src_ab, src_rgb)
        return ab, m

    def _predict(self, gray: np.ndarray, src_ab: np.ndarray | None, src_rgb: Sequence[np.ndarray | None] | None):
        """:meth:`predict`, and the frames' colors (:meth:`colors`) when an RGB-feature head built them, else None."""
        colors = None
        if self.session is not None:
            n, h, w = gray.shape
            src = np.full((n, 2, h // 4, w // 4), np.nan, np.float32) if src_ab is None else \
                np.ascontiguousarray(src_ab.transpose(0, 3, 1, 2), dtype=np.float32)
            if self.head_session is None:
                ab, m = self.session.run(["ab", "mask"], _feed(self.session, x=self._lut_np[gray][:, None], src=src))
                return np.ascontiguousarray(ab.transpose(0, 2, 3, 1)), m, colors
            (ab,) = self.session.run(["ab"], {"x": self._lut_np[gray][:, None]})
            hab = ab.reshape(n, 2, h // 4, 2, w // 4, 2).mean((3, 5))  # = area resize: sizes are multiples of 32
            hab = np.where(np.isnan(src), hab, src).astype(np.float32)
            ab = np.ascontiguousarray(ab.transpose(0, 2, 3, 1))
            colors = self.colors(gray, ab, src_rgb)
            (m,) = self.head_session.run(["mask"], _feed(self.head_session, rgb=rgb_input(colors).numpy(), hab=hab))
            return ab, m, colors
        with torch.inference_mode():
            x = self._lut[torch.from_numpy(np.ascontiguousarray(gray)).to(self.device).long()].unsqueeze(1)
            out, feats, _ = self.model.forward_maps(x)
            ab_t = self.model.decode(out).float()
            ab = ab_t.permute(0, 2, 3, 1).cpu().numpy()
            if self.cfg.features == "rgb":
                colors = self.colors(gray, ab, src_rgb)
                feats = self.head.rgb_maps(rgb_input(colors, self.device))
            hab = TF.interpolate(ab_t, size=feats[self.cfg.taps[0]].shape[-2:], mode="area")
            if src_ab is not None:  # frames without a source (NaN) keep the colorizer's a/b
                src = torch.from_numpy(np.ascontiguousarray(src_ab)).to(self.device).permute(0, 3, 1, 2).float()
                hab = torch.where(torch.isnan(src), hab, src)
            m = torch.sigmoid(self.head(feats, hab / 100.0)).float().cpu().numpy()
        return ab, m, colors

    @staticmethod
    def colors(gray: np.ndarray, ab: np.ndarray, src_rgb: Sequence[np.ndarray | None] | None = None) -> list:
        """Each frame's colors at the working size: its own (``src_rgb``) or, where it has none, the
        colorizer's (``ab`` of :meth:`predict` on the frame's lightness), uint8 RGB."""
        src = list(src_rgb) if src_rgb is not None else [None] * len(gray)
        h, w = gray.shape[1:]
        return [c if c is not None else
                (lab_to_rgb(np.dstack([gray_to_L(g), cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)]))
                 * 255.0 + 0.5).astype(np.uint8)
                for g, a, c in zip(gray, ab, src)]

    def masks(self, gray: np.ndarray, src_rgb: Sequence[np.ndarray | None] | None = None) -> tuple[np.ndarray, list]:
        """uint8 ``(N, h, w)`` at the working size -> (a/b as :meth:`predict`, one mask per frame at
        the working size / :attr:`mask_stride`, refined as ``refine`` says).

        ``src_rgb``: each frame's own colors, uint8 ``(h, w, 3)`` (``None`` for a frame without):
        the head sees them (their a/b, or with RGB features their colors) and GrabCut their colors;
        without, all see the colorizer's.
        """
        n, h, w = gray.shape
        src = list(src_rgb) if src_rgb is not None else [None] * n
        src_ab = None
        if any(c is not None for c in src):
            src_ab = np.stack([np.full((h // 4, w // 4, 2), np.nan, np.float32) if c is None else
                               cv2.resize(rgb_to_lab(c)[..., 1:], (w // 4, h // 4), interpolation=cv2.INTER_AREA)
                               for c in src])
        ab, m, colors = self._predict(gray, src_ab, src)
        if self.refine == "none":
            return ab, list(m)
        return ab, [grabcut_refine(c, guided_upsample(mi, g, self.cfg.guide_radius, self.cfg.guide_eps))
                    for g, mi, c in zip(gray, m, colors or self.colors(gray, ab, src))]

    def take_source(self, ys: Sequence[np.ndarray], uvs: Sequence | None, full_range: bool = False) -> None:
        """The next batch's source planes (luma and, when read, chroma); call before the colorizer.

        The first batch decides the mode when ``source="auto"``: the source's chroma
        when it has color, else the colorizer's (:func:`neutral_source`).  An entry of
        ``uvs`` may be ``None`` (a frame whose chroma was not read: the colorizer's is used).
        """
        if self.source == "auto":
            known = [p for p in uvs or [] if p is not None]
            self.source = "model" if not known or neutral_source(known) else "source"
        n = len(ys)
        self._src = list(zip(ys, uvs)) if self.source == "source" and uvs is not None else None
        self._uv.extend(uvs if self._src is not None else [None] * n)
        self._full_range = full_range

    def _source_rgb(self, shape: tuple[int, int]) -> list | None:
        """The pending source frames' colors at ``shape`` (uint8 RGB; ``None`` for a frame without chroma)."""
        if self._src is None:
            return None
        from .frames import yuv_to_rgb

        h, w = shape
        size = lambda p: cv2.resize(p, (w, h), interpolation=cv2.INTER_AREA)  # noqa: E731
        out = [None if uv is None else yuv_to_rgb(size(y), size(uv[0]), size(uv[1]), self._full_range)
               for y, uv in self._src]
        self._src = None
        return out

    def __call__(self, gray: np.ndarray) -> np.ndarray:
        if gray.ndim != 3 or gray.dtype != np.uint8:
            raise ValueError(f"expected uint8 (N, h, w) gray batch, got {gray.dtype} {gray.shape}")
        src = self._source_rgb(gray.shape[1:])
        if src is not None and len(src) != len(gray):
            raise RuntimeError("keep-color: take_source got another batch than the colorizer")
        ab, m = self.masks(gray, src)
        for g, mi in zip(gray, m):
            self._masks.append(self.smoother(g, mi))
        if len(self._uv) < len(self._masks):  # called without take_source: the colorizer's chroma
            self._uv.extend([None] * (len(self._masks) - len(self._uv)))
        return ab

    def reset(self) -> None:
        self.smoother.reset()
        self._masks.clear()
        self._uv.clear()
        self._src = None

    def frame_extras(self, n: int) -> list:
        """Per-frame ``(mask, source uv or None)`` of the next ``n`` frames colorized, in order (popped),
        for :meth:`merge`."""
        return [(self._masks.popleft(), self._uv.popleft()) for _ in range(n)]

    def merge(self, y: np.ndarray, item, subsampling: str, full_range: bool, matrix: str):
        """Chroma planes (u, v) for luma ``y``: ``item`` is ``(ab, (mask, gray_w, uv))``."""
        from .frames import chroma_for, chroma_size

        ab, (mask, uv) = item
        Hc, Wc = chroma_size(y.shape[1], y.shape[0], subsampling)
        guide = y if y.shape == (Hc, Wc) else cv2.resize(y, (Wc, Hc), interpolation=cv2.INTER_AREA)
        scale = Wc / (mask.shape[1] * self.mask_stride)  # chroma px per working-size px
        m = guided_upsample(mask, guide, max(1, round(self.cfg.guide_radius * scale)), self.cfg.guide_eps)
        if uv is not None:
            u, v = uv
            if u.shape != (Hc, Wc):
                u = cv2.resize(u, (Wc, Hc), interpolation=cv2.INTER_LINEAR)
                v = cv2.resize(v, (Wc, Hc), interpolation=cv2.INTER_LINEAR)
        else:
            u, v = chroma_for(y, ab, subsampling, full_range=full_range, matrix=matrix)
        keep = lambda c: np.clip(128.0 + (c.astype(np.float32) - 128.0) * m + 0.5, 0, 255).astype(np.uint8)  # noqa: E731
        return keep(u), keep(v)

    def image_mask(self, rgb: np.ndarray, bw: bool = False) -> np.ndarray:
        """One color image (uint8 RGB) -> its mask at the image's size, unsmoothed: the head (and GrabCut) see
        the image's own colors or, with ``bw``, the colorizer's (as on a B&W video)."""
        w, h = self.working_size(rgb.shape[1], rgb.shape[0])
        gray = _gray_of(rgb)
        src = None if bw else [cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)]
        _, (m,) = self.masks(cv2.resize(gray, (w, h), interpolation=cv2.INTER_AREA)[None], src)
        return self.full_mask(m, gray)

    def full_mask(self, mask: np.ndarray, gray: np.ndarray) -> np.ndarray:
        """A mask of :meth:`masks` at ``gray``'s size (uint8 full-range gray as guide)."""
        scale = gray.shape[1] / (mask.shape[1] * self.mask_stride)
        return guided_upsample(mask, gray, max(1, round(self.cfg.guide_radius * scale)), self.cfg.guide_eps)


def load_keepcolor(path: str | os.PathLike, device: str | None = "cpu", source: str = "auto", runtime: str = "auto",
                   refine: str = "grabcut") -> KeepColorizer:
    """Rebuild a :class:`KeepColorizer` from ``RUN/best.safetensors`` (safetensors only, strict).

    ``runtime``: "torch", "onnx" (ONNX Runtime on CPU, about twice as fast here: the networks are
    exported once into the user cache, keyed by the checkpoint's SHA-256) or "auto" (ONNX Runtime on
    CPU when onnxruntime and onnx are installed, else PyTorch)."""
    from safetensors.torch import load_file

    from .colorize import resolve_device
    from .model import ModelConfig, ResidualColorizer, WeightsError, read_metadata

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"keep-color weights not found: {path}")
    meta = read_metadata(path, FORMAT, HeadConfig, hint="make one with `animecolor select train`")
    try:
        state = load_file(str(path), device="cpu")
        base = ResidualColorizer(ModelConfig.from_json(meta["header"]["base_config"]))
        head = MaskHead(meta["config"], base.backbone.channels)
        base.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("base.")}, strict=True)
        head.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("head.")}, strict=True)
    except Exception as e:  # noqa: BLE001 - safetensors/torch raise several types for a bad file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsError(f"corrupt keep-color checkpoint {path}: {first}") from None
    col = KeepColorizer(base, head, resolve_device(device), name=path.name, source=source, refine=refine)
    col.info = meta["info"]  # type: ignore[attr-defined]
    _maybe_onnx(col, path, runtime)
    return col


def _maybe_onnx(col: KeepColorizer, path: Path, runtime: str) -> None:
    """Switch ``col`` to ONNX Runtime as ``runtime`` asks (see :func:`load_keepcolor`)."""
    from . import runtime as rt
    from .model import file_sha256

    if runtime not in rt.RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(rt.RUNTIMES)}, got {runtime!r}")
    if runtime == "torch" or (runtime == "auto" and (col.device.type != "cpu" or not rt.onnx_available()
                                                    or not rt.can_export())):
        return
    if col.device.type != "cpu":
        raise ValueError(f"--runtime onnx runs on the CPU only; use --runtime torch on {col.device}")
    if not rt.onnx_available():
        raise RuntimeError("--runtime onnx needs the onnxruntime package (pip install onnxruntime)")
    digest = file_sha256(path)
    rgb = col.cfg.features == "rgb"  # two graphs: the colorizer's and the head's

    def sessions(dst: Path) -> tuple | None:
        found = rt._matching_session(dst, digest), rt._matching_session(rt.keepcolor_head_path(dst), digest) if rgb else None
        return found if found[0] is not None and (found[1] is not None or not rgb) else None

    dst = rt.cache_dir() / f"keep-{digest}.onnx"
    found = sessions(dst)
    if found is None:
        try:
            rt.export_keepcolor_onnx(col.model, col.head, dst, digest)
        except OSError:  # no writable cache: export into a temporary folder
            import tempfile

            dst = rt.export_keepcolor_onnx(col.model, col.head, Path(tempfile.mkdtemp(prefix="animecolor-")) / dst.name, digest)
        found = sessions(dst)
    col.use_onnx(*found)


# ----------------------------------------------------------------------------- measures

def apply_mask_rgb(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``rgb`` with its Lab a/b scaled by ``mask`` (1 keeps the color, 0 grays it, L unchanged)."""
    lab = rgb_to_lab(rgb)
    lab[..., 1:] *= mask[..., None]
    from .color import lab_to_rgb

    return np.clip(lab_to_rgb(lab) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def hist_similarity(a: np.ndarray, b: np.ndarray, bins: int = 8) -> float:
    """The student project's measure: OpenCV ``calcHist`` of both RGB images (``bins`` per channel,
    3-D) compared with ``compareHist`` correlation (1 = same color distribution)."""
    ha = cv2.calcHist([np.ascontiguousarray(a)], [0, 1, 2], None, [bins] * 3, [0, 256] * 3)
    hb = cv2.calcHist([np.ascontiguousarray(b)], [0, 1, 2], None, [bins] * 3, [0, 256] * 3)
    return float(cv2.compareHist(ha, hb, cv2.HISTCMP_CORREL))


def mask_iou(pred: np.ndarray, mask: np.ndarray, known: np.ndarray) -> tuple[float, float]:
    """(intersection, union) of ``pred > 0.5`` and ``mask > 0.5`` over the known pixels."""
    p, t, k = pred > 0.5, mask > 0.5, known > 0.5
    return float((p & t & k).sum()), float(((p | t) & k).sum())


def mask_flicker(masks: Sequence[np.ndarray]) -> float:
    """Share of pixels whose binary mask (``> 0.5``) changes between consecutive frames (mean)."""
    if len(masks) < 2:
        return 0.0
    return float(np.mean([np.mean((a > 0.5) != (b > 0.5)) for a, b in zip(masks, masks[1:])]))


def pair_scores(col: KeepColorizer, pairs: Sequence[tuple[str, Path, Path]], bw: bool = False) -> dict:
    """IoU (pooled over pairs), mean histogram similarity and mean CIEDE2000 of ``col`` on ``pairs``,
    beside the same measures for two trivial outputs (all gray; the input unchanged).

    The mask is predicted as on a color video (the head sees the input's a/b) or, with
    ``bw``, as on a B&W one (it sees the colorizer's a/b); either way it selects the
    input's own colors, so the scores measure the mask.
    """
    from .metrics import ciede2000

    inter = union = 0.0
    rows: dict[str, list] = {"model": [], "gray": [], "input": []}
    for _, ip, tp in pairs:
        inp, tgt = load_pair(ip, tp)
        mask, known = derive_mask(inp, tgt)
        pm = col.image_mask(inp, bw)
        i, u = mask_iou(pm, mask, known)
        inter, union = inter + i, union + u
        for key, out in (("model", apply_mask_rgb(inp, pm)), ("gray", apply_mask_rgb(inp, np.zeros_like(pm))),
                         ("input", inp)):
            rows[key].append((hist_similarity(out, tgt), ciede2000(out, tgt)))
    res = {k: {"hist_similarity": float(np.mean([r[0] for r in v])), "ciede2000": float(np.mean([r[1] for r in v]))}
           for k, v in rows.items()}
    res["model"]["iou"] = inter / union if union else 1.0
    res["n"] = len(pairs)
    return res
