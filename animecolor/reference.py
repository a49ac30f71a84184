"""Colors from the user's own color pictures: reference stills and colored keyframes.

The method (training-free semantic correspondence, ``docs/reference.md``):

1. **Encode the references once.**  Each color reference frame is turned into
   the gray frame a B&W copy would carry and run through the base model's
   backbone; its features at strides 8 and 16 (each L2-normalized per position,
   concatenated) describe every cell of a stride-8 grid.  Each cell also keeps
   a small *luma-band table*: the sum of the reference's a/b and the pixel
   count in each of ``bands`` gray-level bands, over the cell's pixels.  A
   global table over all reference pixels (the lookup table fitted on the
   references) is kept too.
2. **Match.**  For every cell of a target frame, cosine similarity to every
   reference cell (in chunks; the bank is capped at ``max_positions`` cells),
   the ``top_k`` best, weighted by ``exp((sim - 1) / tau)`` (a softmax that
   also remembers how good the best match was).
3. **Transfer by brightness.**  The matched cells' tables are mixed with those
   weights, upsampled to the a/b grid, and each a/b pixel reads the mix at its
   own gray level.  So a matched cell gives *its* color for *this* brightness:
   the ink outline, the cel and its shadow each take the color the reference
   has at that brightness, and the chroma follows the target's own edges
   rather than the coarse grid.  The global table enters every mix with the
   pseudo-weight ``prior``: where matches are weak (low similarity) or the
   matched cells never show this brightness, the result falls back to the
   references' lookup table instead of to nothing.

:class:`ReferenceColorizer` applies one bank of references to every frame
(a series palette); :class:`KeyframeColorizer` applies each colored keyframe
within its shot (forward and backward to the scene cuts).
"""
from __future__ import annotations

import bisect
import contextlib
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as TF

from . import frames as fr
from .adapt import ADAPT_STEPS, adapt_to_references
from .color import rgb_to_lab, y_to_gray
from .colorize import Colorizer, ModelColorizer, apply_colorizer
from .propagate import PROPAGATE_PARAMS, KeyframeTrack, PropagateParams
from .runtime import runtime_like

__all__ = [
    "MatchParams",
    "ReferenceBank",
    "ReferenceColorizer",
    "reference_colorizer",
    "guided_colorizer",
    "KeyframeColorizer",
    "Keyframe",
    "ReferenceError",
    "GrayImageError",
    "scan_shots",
    "write_shot_frames",
    "pick_shot_frames",
    "expand_keyframe_specs",
    "encode_references",
    "gray_of_rgb",
    "check_color",
    "copy_keyframe_chroma",
]


class ReferenceError(ValueError):
    """A reference or keyframe image cannot be used (one-line message)."""


class GrayImageError(ReferenceError):
    """A reference or keyframe image has no color to take."""


@dataclass(frozen=True)
class MatchParams:
    """Settings of the correspondence (defaults picked on validation material: docs/reference.md)."""

    features: str = "bb8+bb16"  # which network features describe a cell (see _Features)
    top_k: int = 8
    tau: float = 0.05  # similarity temperature of exp((sim - 1) / tau)
    prior: float = 0.5  # weight of the references' global lookup table in every mix
    bands: int = 32  # gray-level bands of the per-cell tables
    band_sigma: float = 0.5  # smoothing of the tables across bands (in bands)
    gate: tuple[float, float] | None = None  # best similarity (lo, hi): below lo the fallback's color, above hi the transfer
    memory: float | None = None  # keyframes: also match the previous colored frame, its similarities lowered by this
    fallback: str = "model"  # where matches are weak (gate): "model" (the base model's prediction) or "gray" (no color)
    fallback_scale: float = 1.0  # the fallback's a/b times this (toward gray below 1)
    pos_weight: float = 0.0  # similarity cost of distance in the picture (squared, frame fractions)
    model_mix: float = 0.0  # weight of the base model's own a/b in a linear mix with the transfer (for a base adapted to the references)
    max_positions: int = 4096  # cap on reference cells kept in the bank (a random subset beyond it)
    chunk: int = 2048  # target cells per similarity block (bounds memory)

    def __post_init__(self) -> None:
        if self.fallback not in ("model", "gray"):
            raise ValueError(f"unknown fallback {self.fallback!r}; choose model or gray")
        if not 0.0 <= self.fallback_scale <= 1.0:
            raise ValueError(f"fallback_scale must be between 0 and 1, got {self.fallback_scale}")
        if not 0.0 <= self.model_mix <= 1.0:
            raise ValueError(f"model_mix must be between 0 and 1, got {self.model_mix}")
        if self.gate is not None and not self.gate[0] < self.gate[1]:
            raise ValueError(f"gate needs lo < hi, got {self.gate}")


#: Reference stills (series palette): picked on validation material, docs/reference.md.
REFERENCE_PARAMS = MatchParams(max_positions=2048)
#: Reference stills with the base model adapted to them (``animecolor.adapt``, the default): picked on validation.
ADAPTED_REFERENCE_PARAMS = replace(REFERENCE_PARAMS, model_mix=0.7)
#: Colored keyframes: picked on validation shots, docs/reference.md.
KEYFRAME_PARAMS = MatchParams(prior=0.01, gate=(0.4, 0.7))

# --------------------------------------------------------------------------- helpers


def gray_of_rgb(rgb: np.ndarray) -> np.ndarray:
    """The full-range gray frame a B&W video of this color frame would carry (as the pipeline sees it)."""
    return y_to_gray(fr.rgb_to_y(rgb))


#: A reference whose 90th percentile of Lab chroma is below this has no color to give.
MIN_REFERENCE_CHROMA = 4.0


def check_color(rgb: np.ndarray, what: str) -> None:
    """Raise :class:`ReferenceError` when ``rgb`` is (near) gray: nothing to take from it."""
    ab = rgb_to_lab(fr.fit_long_side(rgb, 256))[..., 1:]
    chroma = np.sqrt((ab**2).sum(-1))
    if float(np.percentile(chroma, 90)) < MIN_REFERENCE_CHROMA:
        raise GrayImageError(f"{what} is gray (no color to take from it); give a color image")


def _band_kernel(bands: int, sigma: float) -> np.ndarray:
    i = np.arange(bands, dtype=np.float32)
    k = np.exp(-0.5 * ((i[:, None] - i[None, :]) / max(sigma, 1e-3)) ** 2)
    return k.astype(np.float32)


def _band_coords(gray: torch.Tensor, bands: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Linear interpolation between band centres: (lower band, upper band, weight of upper)."""
    x = gray.float() * (bands / 256.0) - 0.5
    x = x.clamp(0, bands - 1)
    lo = x.floor().long()
    hi = (lo + 1).clamp(max=bands - 1)
    return lo, hi, x - lo.float()


def _bilinear_taps(out: int, inp: int, device) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Source indices and weights of bilinear resizing ``inp`` -> ``out`` samples (``align_corners=False``,
    as ``TF.interpolate``): ((i0, i1), (w0, w1))."""
    src = ((torch.arange(out, device=device, dtype=torch.float32) + 0.5) * (inp / out) - 0.5).clamp_(min=0)
    i0 = src.floor().long().clamp_(max=inp - 1)
    i1 = (i0 + 1).clamp_(max=inp - 1)
    f = src - i0.float()
    return (i0, i1), (1 - f, f)


# --------------------------------------------------------------------------- loading references


def check_reference_frames(n: int) -> int:
    """Validate a ``--reference-frames`` count."""
    if n < 1:
        raise ReferenceError(f"--reference-frames must be >= 1, got {n}")
    return n


#: Long side (px) at which sampled reference frames are kept (the model works at 320).
REFERENCE_SIZE = 480


def sample_references(
    paths: Sequence[str | os.PathLike], n: int, size: int = REFERENCE_SIZE
) -> list[tuple[np.ndarray, str]]:
    """Up to ``n`` color frames (uint8 RGB, long side <= ``size``) spread across the scenes of ``paths``.

    ``paths``: color images, folders of images and/or color videos.  Frames are
    chosen with the dataset builder's sampler (scene cuts, blank, low-color,
    held and duplicate frames dropped), then spread over the scenes: one frame
    from each of ``n`` evenly spaced scenes, or several per scene when there
    are fewer.  Returns ``[(rgb, "file@seconds"), ...]``.  Raises
    :class:`ReferenceError` for a missing, unreadable or gray reference.
    """
    from .data.sampling import SceneSampler, SelectParams, ThumbIndex
    from .data.sources import discover, iter_frames

    check_reference_frames(n)
    sources, missing = discover(list(paths))
    if missing:
        raise ReferenceError(f"reference not found: {missing[0][0]}")
    if not sources:
        raise ReferenceError(f"no images or videos found in {', '.join(map(str, paths))}")
    params = SelectParams(size=size, max_per_scene=max(2, min(8, n)))
    known = ThumbIndex(params.thumb * params.thumb * 3)
    groups: list[list[tuple[np.ndarray, str]]] = []
    drops: dict[str, int] = {}
    for src in sources:
        errors: list[tuple[str, str]] = []
        sampler = SceneSampler(params, known, keep_aspect=True)
        try:
            for f in iter_frames(src, errors):
                sampler.push(f)
        except Exception as e:  # noqa: BLE001 - PyAV raises many kinds for a file that is not a video
            why = "not an image or video file" if "Invalid data" in str(e) else (str(e).splitlines()[0] if str(e) else type(e).__name__)
            raise ReferenceError(f"cannot read reference {src.path} ({why})") from None
        if errors:
            raise ReferenceError(f"cannot read reference image {errors[0][0]}: {errors[0][1]}")
        sampler.finish()
        for k, v in sampler.drops.items():
            drops[k] = drops.get(k, 0) + v
        by_scene: dict[int, list[tuple[np.ndarray, str]]] = {}
        for kf in sampler.kept:
            label = kf.name or f"{src.path}@{kf.timestamp_s:.2f}"
            by_scene.setdefault(kf.scene, []).append((kf.rgb, label))
        groups.extend(by_scene[k] for k in sorted(by_scene))
    if not groups:
        what = ", ".join(map(str, paths))
        if drops.get("low_color"):
            raise ReferenceError(f"reference {what} is gray (no color to take from it); give color images or video")
        raise ReferenceError(f"no usable reference frames in {what} (blank or unreadable)")
    if len(groups) >= n:  # the middle frame of each of n evenly spaced scenes
        spaced = [groups[int((j + 0.5) * len(groups) / n)] for j in range(n)]
        return [g[len(g) // 2] for g in spaced]
    picked: list[tuple[np.ndarray, str]] = []
    depth = 0
    while len(picked) < n and any(depth < len(g) for g in groups):
        for g in groups:
            if depth < len(g) and len(picked) < n:
                picked.append(g[depth])
        depth += 1
    return picked


# --------------------------------------------------------------------------- shots and keyframes

#: Analysis width for the cut scan (``temporal.is_cut`` is calibrated at ~128x72).
CUT_SCAN_WIDTH = 128


@dataclass
class ShotScan:
    """What :func:`scan_shots` found: cut times and the luma of the frames at the keyframe times."""

    cuts: list[float]
    frames: int
    duration: float
    keyframe_luma: dict[int, np.ndarray]  # keyframe index -> full-range gray of the video frame shown at its time
    keyframe_time: dict[int, float] = field(default_factory=dict)  # keyframe index -> that frame's own start time


def scan_shots(
    path: str | os.PathLike,
    times: Sequence[float] = (),
    until: float | None = None,
    on_frame: Callable[[int, float, object, np.ndarray], None] | None = None,
) -> ShotScan:
    """Decode ``path`` once (small frames) up to ``until`` seconds: scene cuts and the frames at ``times``.

    Cuts are judged by :func:`animecolor.temporal.is_cut`, the same test the
    temporal smoothers reset on.  ``times`` (keyframe times) get the gray frame
    shown at that time (the last frame starting at or before it), for checking
    that a keyframe matches its frame, and that frame's own start time.
    ``on_frame(shot, time, frame, small_gray)`` is called with every decoded
    ``av.VideoFrame`` (``shot``: its shot's index from 0; ``small_gray``: the
    uint8 gray the cut test saw); nothing is kept.
    """
    import av

    from .temporal import is_cut

    want = sorted(range(len(times)), key=lambda i: times[i])
    got: dict[int, np.ndarray] = {}
    got_t: dict[int, float] = {}
    cuts: list[float] = []
    prev_small = prev_full = None
    prev_t = None
    n = 0
    t = 0.0
    try:
        container = av.open(str(path))
    except av.FFmpegError as e:
        raise OSError(f"cannot open video {path}: {e}") from None
    try:
        if not container.streams.video:
            raise ValueError(f"{path} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        start = None
        k = 0
        for frame in container.decode(stream):
            t = float(frame.time) if frame.time is not None else n / float(stream.average_rate or 24)
            if start is None:
                start = t
            t -= start
            h = max(2, int(round(frame.height * CUT_SCAN_WIDTH / frame.width / 2)) * 2)
            small = frame.reformat(width=CUT_SCAN_WIDTH, height=h, format="gray").to_ndarray()
            if prev_small is not None and is_cut(prev_small, small):
                cuts.append(t)
            if on_frame is not None:
                on_frame(len(cuts), t, frame, small)
            while k < len(want) and times[want[k]] < t - 1e-6:
                if prev_full is not None:
                    got[want[k]], got_t[want[k]] = prev_full, prev_t
                k += 1
            prev_small = small
            if k < len(want):
                prev_full = frame.to_ndarray(format="gray")
            prev_t = t
            n += 1
            if until is not None and t > until and k >= len(want):
                break
        while k < len(want) and prev_full is not None and prev_t is not None:
            if times[want[k]] <= prev_t + 1.0 / float(stream.average_rate or 24) + 1e-6:
                got[want[k]], got_t[want[k]] = prev_full, prev_t
            k += 1
    except av.FFmpegError as e:
        raise OSError(f"cannot decode {path}: {e}") from None
    finally:
        container.close()
    return ShotScan(cuts, n, t, got, got_t)


#: Image files a keyframe folder may hold (``NAME@TIME.png``, as :func:`write_shot_frames` names them).
KEYFRAME_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def shot_frame_name(number: int, t: float) -> str:
    """``shot_0003@12.513.png``: the file :func:`write_shot_frames` writes for shot ``number`` (from 1) starting at ``t`` s.
    The time is rounded *up* to the millisecond, so it names this frame and never the one before the cut."""
    return f"shot_{number:04d}@{math.ceil(t * 1000 - 1e-6) / 1000:.3f}.png"


#: A frame whose gray (at the cut scan's size) varies less than this is blank (a fade, a flash): the dataset
#: sampler's test (``SelectParams.min_luma_std``).
BLANK_LUMA_STD = 8.0


#: ``shots --drift``: a new frame to paint within a shot once the last one explains less than this share of
#: the picture (picked on validation shots, docs/reference.md); None or 0: shot starts only.
SHOT_DRIFT: float | None = 0.5
#: ... and once the new picture has held this long (seconds): not in the middle of a dissolve or a pan.
SHOT_SETTLE = 0.5
#: ``shots --every``: a frame still explained is picked too once the last pick is this old (seconds; picked with
#: SHOT_DRIFT on validation clips, docs/reference.md); None: never.
SHOT_EVERY: float | None = 8.0


def _explained(small: np.ndarray) -> KeyframeTrack:
    """A flow track from this scan-size frame: its ``step(next)`` trust says which pixels it still explains."""
    return KeyframeTrack(small, np.zeros(small.shape + (2,), np.float32), PropagateParams(window=3, finest_scale=0))


def pick_shot_frames(video: str | os.PathLike, on_pick: Callable[[int, float, np.ndarray], None],
                     drift: float | None = SHOT_DRIFT, settle: float = SHOT_SETTLE,
                     every: float | None = SHOT_EVERY) -> ShotScan:
    """Decode ``video`` once and call ``on_pick(shot, time, rgb)`` for every shot with the frame to paint: its
    first frame that is not blank (a shot that fades in from black gets its first real picture), or its first
    frame when all of it is blank.

    With ``drift``, a shot can get more frames to paint: once the last picked frame explains (by optical flow
    and brightness, as the keyframe propagation tests it) less than ``drift`` of the picture, the first frame
    of the new picture that then holds for ``settle`` seconds (and is not blank) is picked too: after a
    dissolve the cut test does not see, a camera move to new things, a change of light.  A new picture still
    settling when its shot ends is not picked (nor anything in a video under 16 scan pixels high).  With
    ``every`` (and ``drift``), a frame still explained is picked too once the last pick is ``every`` seconds
    old.  At most two decoded frames are held.  Returns the scan (cuts, frames, duration)."""
    state: dict = {"shot": -1, "pending": None, "done": True, "track": None, "cand": None, "last": 0.0}

    def on_frame(shot: int, t: float, frame, small: np.ndarray) -> None:
        if shot != state["shot"]:
            if not state["done"]:
                on_pick(state["shot"], *state["pending"])  # the previous shot was blank throughout
            state.update(shot=shot, pending=None, done=False, track=None, cand=None)
        if state["done"]:
            if drift:
                _follow(shot, t, frame, small)
            return
        if float(small.std()) >= BLANK_LUMA_STD:
            state.update(done=True, pending=None, last=t,
                         track=_explained(small) if drift and min(small.shape) >= 16 else None)
            on_pick(shot, t, frame.to_ndarray(format="rgb24"))
        elif state["pending"] is None:
            state["pending"] = (t, frame.to_ndarray(format="rgb24"))

    def _follow(shot: int, t: float, frame, small: np.ndarray) -> None:
        blank = float(small.std()) < BLANK_LUMA_STD
        cand, track = state["cand"], state["track"]
        if cand is not None:  # a new picture since cand[0]: does it hold?
            if float(cand[2].step(small)[1].mean()) >= drift:
                if t - cand[0] >= settle - 1e-6:
                    on_pick(shot, cand[0], cand[1].to_ndarray(format="rgb24"))
                    state.update(track=cand[2], cand=None, last=cand[0])
                return
        elif track is not None and float(track.step(small)[1].mean()) >= drift:
            if every and t - state["last"] >= every - 1e-6 and not blank:  # explained, but long ago
                on_pick(shot, t, frame.to_ndarray(format="rgb24"))
                state.update(track=_explained(small), last=t)
            return  # the last picked frame still explains the picture
        # lost (or still changing): a new candidate here, or none while blank
        state.update(track=None, cand=None if blank or min(small.shape) < 16 else (t, frame, _explained(small)))  # the decoded frame, converted if picked

    scan = scan_shots(video, on_frame=on_frame)
    if not state["done"]:
        on_pick(state["shot"], *state["pending"])
    return scan


def write_shot_frames(
    video: str | os.PathLike,
    out_dir: str | os.PathLike,
    overwrite: bool = False,
    on_shot: Callable[[int, float, Path], None] | None = None,
    drift: float | None = SHOT_DRIFT,
    every: float | None = SHOT_EVERY,
) -> list[tuple[float, Path]]:
    """Write a frame of every shot of ``video`` into ``out_dir`` as ``shot_NNNN@TIME.png``, the frames to paint for
    keyframe mode (``--keyframe out_dir`` takes the painted ones back; gray ones are skipped): the shot's first
    frame that is not blank, or its first frame when all of it is, and with ``drift`` (and ``every``) a frame of
    each new picture within a shot (:func:`pick_shot_frames`).

    Shots are split by :func:`scan_shots` (the cut test keyframe mode uses).  One decode, at most two frames held.
    Existing shot frames in ``out_dir`` are an error unless ``overwrite``; on an error the frames written so far
    are removed.  ``on_shot(index, time, path)`` after each file (index from 0).  Returns ``[(time, path), ...]``.
    """
    video, out = Path(video), Path(out_dir)
    if not video.is_file():
        raise FileNotFoundError(f"input not found: {video}")
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    old = sorted(out.glob("shot_*@*.png")) if out.is_dir() else []
    if old and not overwrite:
        raise FileExistsError(f"{out} already holds shot frames ({old[0].name} ...); use --overwrite to replace them")
    for f in old:
        f.unlink()
    made_dir = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OSError(f"cannot create the folder {out}: {e.strerror or e}") from None
    written: list[tuple[float, Path]] = []

    def write(index: int, t: float, rgb: np.ndarray) -> None:
        path = out / shot_frame_name(index + 1, t)
        if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
            raise OSError(f"cannot write {path}")
        written.append((t, path))
        if on_shot is not None:
            on_shot(index, t, path)

    try:
        pick_shot_frames(video, write, drift=drift, every=every)
    except BaseException:
        for _, path in written:
            path.unlink(missing_ok=True)
        if made_dir:
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
    if not written:
        raise ValueError(f"{video} has no frames")
    return written


def expand_keyframe_specs(specs: Sequence[str]) -> list[tuple[str, bool]]:
    """``--keyframe`` values -> ``[(IMAGE@TIME, from_folder)]``: a folder stands for its ``NAME@TIME`` images
    (as :func:`write_shot_frames` names them, in name order); other values pass through."""
    out: list[tuple[str, bool]] = []
    for spec in specs:
        folder = Path(spec)
        if not folder.is_dir():
            out.append((str(spec), False))
            continue
        found = sorted(f for f in folder.iterdir()
                       if f.is_file() and f.suffix.lower() in KEYFRAME_IMAGE_SUFFIXES and "@" in f.stem)
        if not found:
            raise ReferenceError(f"keyframe folder {folder} holds no images named NAME@TIME.png "
                                 "(e.g. from `animecolor shots`)")
        out += [(f"{f}@{f.stem.rpartition('@')[2]}", True) for f in found]
    return out


def luma_match(keyframe_rgb: np.ndarray, frame_gray: np.ndarray) -> float:
    """Correlation of a keyframe's brightness with the video frame's (1 = same picture)."""
    g = gray_of_rgb(keyframe_rgb) if keyframe_rgb.ndim == 3 else keyframe_rgb
    size = (64, max(2, 64 * frame_gray.shape[0] // frame_gray.shape[1]))
    a = cv2.resize(g, size, interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    b = cv2.resize(frame_gray, size, interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    a -= a.mean()
    b -= b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0


# --------------------------------------------------------------------------- features


class _Features:
    """Features of gray frames on the stride-8 grid, unit-norm per position, from a ModelColorizer's network.

    ``source``: "+"-joined parts, each L2-normalized, concatenated, normalized
    again: ``bbS`` the backbone's output at stride S; ``decS`` the decoder's
    fused features at stride S (runs the whole network).
    """

    stride = 8

    def __init__(self, base: ModelColorizer, source: str = "bb8+bb16"):
        self.base = base
        self.device = base.device
        self._lut = base._lut
        self.net = base.model
        self.strides = list(self.net.backbone.strides)
        self.source = source
        self.parts = source.split("+")
        self._dec = any(p.startswith("dec") for p in self.parts)
        self._n_taps = max(self.strides.index(int(p[2:])) for p in self.parts if p.startswith("bb")) + 1 if not self._dec else len(self.strides)

    def working_size(self, width: int, height: int) -> tuple[int, int]:
        return self.base.working_size(width, height)

    @torch.inference_mode()
    def __call__(self, gray: np.ndarray, with_prediction: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """uint8 ``(N, h, w)`` at working size -> features ``(N, C, h/8, w/8)`` (unit-norm per
        position) and, with ``with_prediction``, the base model's a/b ``(N, 2, h/s, w/s)`` from the same pass."""
        if getattr(self.base, "features_source", None) == self.source and with_prediction:
            # ONNX Runtime runs the whole network once for both (animecolor.runtime): faster than PyTorch on CPU
            feats, ab = self.base.features_and_ab(gray)
            return torch.from_numpy(feats), torch.from_numpy(ab)
        g = torch.from_numpy(np.ascontiguousarray(gray)).to(self.device)
        x = self._lut[g.long()].unsqueeze(1).contiguous(memory_format=torch.channels_last)
        pred = None
        with self.base._ctx():
            if with_prediction:
                out, feats, dec = self.net.forward_maps(x)
                pred = self.net.decode(out).float()
            elif self._dec:
                _, feats, dec = self.net.forward_maps(x, min_stride=8)
            else:
                feats, dec = _backbone_until(self.net.backbone, x, self._n_taps), {}
        size = (gray.shape[1] // self.stride, gray.shape[2] // self.stride)
        return self.net.match_features(feats, dec, self.source, size).contiguous(), pred


def _backbone_until(bb, x: torch.Tensor, n_taps: int) -> list[torch.Tensor]:
    """The first ``n_taps`` feature maps of a backbone, stopping early when it allows."""
    if hasattr(bb, "features_until"):
        return bb.features_until(x, n_taps)
    return bb(x)[:n_taps]


# --------------------------------------------------------------------------- the bank


@dataclass
class ReferenceBank:
    """Encoded references: cell features and luma-band a/b tables (see module doc)."""

    feats: torch.Tensor  # (M, C) unit vectors
    pos: torch.Tensor  # (M, 2) cell centre (x, y) as fractions of the frame
    sums: torch.Tensor  # (M, B, 2) band-smoothed sums of a and b, normalized per cell
    counts: torch.Tensor  # (M, B) band-smoothed pixel counts, normalized per cell
    global_sums: torch.Tensor  # (B, 2)
    global_counts: torch.Tensor  # (B,)
    frames: int = 0
    names: list[str] = field(default_factory=list)
    bias: torch.Tensor | None = None  # (M,) added to every similarity (memory cells rank below keyframe cells)

    @property
    def positions(self) -> int:
        return int(self.feats.shape[0])

    def lut(self) -> np.ndarray:
        """The references' global table as a 256-level a/b lookup table ``(256, 2)``."""
        bands = self.global_counts.shape[0]
        g = torch.arange(256)
        lo, hi, w = _band_coords(g, bands)
        s = self.global_sums[lo] * (1 - w)[:, None] + self.global_sums[hi] * w[:, None]
        c = self.global_counts[lo] * (1 - w) + self.global_counts[hi] * w
        return (s / c.clamp_min(1e-6)[:, None]).cpu().numpy().astype(np.float32)


def _cell_pos(hc: int, wc: int) -> torch.Tensor:
    """Centres (x, y) of an ``hc x wc`` grid's cells as fractions of the frame, ``(hc*wc, 2)``."""
    y, x = torch.meshgrid((torch.arange(hc) + 0.5) / hc, (torch.arange(wc) + 0.5) / wc, indexing="ij")
    return torch.stack([x.reshape(-1), y.reshape(-1)], 1)


def _cell_tables(gray: np.ndarray, ab: np.ndarray, cell: int, bands: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell band sums ``(h/cell*w/cell, B, 2)`` of a and b, and counts ``(.., B)``, of one frame at working size."""
    h, w = gray.shape
    hc, wc = h // cell, w // cell
    band = np.minimum(gray.astype(np.int64) * bands // 256, bands - 1)
    cy = np.minimum(np.arange(h) // cell, hc - 1)
    cx = np.minimum(np.arange(w) // cell, wc - 1)
    cid = (cy[:, None] * wc + cx[None, :]).astype(np.int64)
    key = (cid * bands + band).reshape(-1)
    n = hc * wc * bands
    counts = np.bincount(key, minlength=n).astype(np.float32)
    sa = np.bincount(key, weights=ab[..., 0].reshape(-1), minlength=n).astype(np.float32)
    sb = np.bincount(key, weights=ab[..., 1].reshape(-1), minlength=n).astype(np.float32)
    return np.stack([sa, sb], -1).reshape(hc * wc, bands, 2), counts.reshape(hc * wc, bands)


def encode_references(
    base: ModelColorizer,
    rgb_frames: Iterable[np.ndarray],
    params: MatchParams | None = None,
    names: Sequence[str] = (),
    seed: int = 0,
) -> ReferenceBank:
    """Encode color reference frames (uint8 RGB, any size) into a :class:`ReferenceBank`."""
    params = params or REFERENCE_PARAMS
    feat = _Features(base, params.features)
    F_list, S_list, C_list, P_list = [], [], [], []
    g_s = torch.zeros(params.bands, 2)
    g_c = torch.zeros(params.bands)
    n = 0
    for rgb in rgb_frames:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ReferenceError(f"a reference frame must be uint8 RGB (H, W, 3), got {rgb.dtype} {rgb.shape}")
        H, W = rgb.shape[:2]
        size = feat.working_size(W, H)
        rgb_w = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if (W, H) != tuple(size) else rgb
        gray = gray_of_rgb(rgb_w)
        ab = rgb_to_lab(rgb_w)[..., 1:]
        f = feat(gray[None])[0][0]  # (C, hc, wc)
        C, hc, wc = f.shape
        sums, counts = _cell_tables(gray, ab, feat.stride, params.bands)
        sums, counts = torch.from_numpy(sums[: hc * wc]), torch.from_numpy(counts[: hc * wc])
        g_s += sums.sum(0)
        g_c += counts.sum(0)
        F_list.append(f.reshape(C, -1).t().cpu())
        P_list.append(_cell_pos(hc, wc))
        S_list.append(sums)
        C_list.append(counts)
        n += 1
    if n == 0:
        raise ReferenceError("no reference frames to encode")
    feats = torch.cat(F_list)
    pos = torch.cat(P_list)
    sums = torch.cat(S_list)
    counts = torch.cat(C_list)
    if feats.shape[0] > params.max_positions:
        gen = torch.Generator().manual_seed(seed)
        keep = torch.randperm(feats.shape[0], generator=gen)[: params.max_positions].sort().values
        feats, pos, sums, counts = feats[keep], pos[keep], sums[keep], counts[keep]
    return _make_bank(feats, pos, sums, counts, g_s, g_c, params, n, list(names), device=base.device)


def _make_bank(feats, pos, sums, counts, g_s, g_c, params: MatchParams, frames: int, names: list[str],
               bias: torch.Tensor | None = None, device=None) -> ReferenceBank:
    """A bank from raw per-cell band sums/counts and the raw global ones (of every cell, before any cap):
    tables smoothed across bands, each cell normalized to unit mass (every cell counts the same)."""
    kern = torch.from_numpy(_band_kernel(params.bands, params.band_sigma)).to(sums.device)
    sums = torch.einsum("mbc,bd->mdc", sums, kern)
    counts = counts @ kern
    mass = counts.sum(1, keepdim=True).clamp_min(1e-6)
    g_s, g_c = kern @ g_s, kern @ g_c
    gm = g_c.sum().clamp_min(1e-6)
    dev = device if device is not None else feats.device
    return ReferenceBank(feats.to(dev), pos.to(dev), (sums / mass[..., None]).to(dev), (counts / mass).to(dev),
                         (g_s / gm).to(dev), (g_c / gm).to(dev), frames, names, bias)


def merge_banks(banks: Sequence[ReferenceBank], weights: Sequence[float] | None = None) -> ReferenceBank:
    """One bank holding the cells of several (global tables averaged, weighted by ``weights``)."""
    if len(banks) == 1:
        return banks[0]
    w = list(weights) if weights is not None else [1.0] * len(banks)
    tot = sum(w)
    return ReferenceBank(
        torch.cat([b.feats for b in banks]),
        torch.cat([b.pos for b in banks]),
        torch.cat([b.sums for b in banks]),
        torch.cat([b.counts for b in banks]),
        sum(b.global_sums * (x / tot) for b, x in zip(banks, w)),
        sum(b.global_counts * (x / tot) for b, x in zip(banks, w)),
        sum(b.frames for b in banks),
        [n for b in banks for n in b.names],
        None if all(b.bias is None for b in banks)
        else torch.cat([b.bias if b.bias is not None else torch.zeros(b.positions, device=b.feats.device) for b in banks]),
    )


def frame_bank(feats: torch.Tensor, gray_ab: np.ndarray, ab: np.ndarray, params: MatchParams, bias: float = 0.0) -> ReferenceBank:
    """A bank of one already colorized frame: its features ``(C, hc, wc)``, gray and a/b at the a/b size."""
    C, hc, wc = feats.shape
    sums, counts = _cell_tables(gray_ab, ab, gray_ab.shape[0] // hc, params.bands)
    sums = torch.from_numpy(sums[: hc * wc]).to(feats.device)
    counts = torch.from_numpy(counts[: hc * wc]).to(feats.device)
    return _make_bank(feats.reshape(C, -1).t().contiguous(), _cell_pos(hc, wc).to(feats.device), sums, counts,
                      sums.sum(0), counts.sum(0), params, 1, ["previous frame"],
                      torch.full((hc * wc,), -float(bias), device=feats.device))


# --------------------------------------------------------------------------- transfer


@torch.inference_mode()
def transfer(
    bank: ReferenceBank,
    feats: torch.Tensor,
    gray_ab: torch.Tensor,
    params: MatchParams | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """a/b for target frames from the bank.

    feats: ``(N, C, hc, wc)`` target features (unit-norm); gray_ab: uint8/float
    ``(N, h, w)`` target gray at the a/b size.  Returns a/b ``(N, 2, h, w)`` and
    the per-cell confidence ``(N, hc, wc)`` (best similarity).
    """
    params = params or REFERENCE_PARAMS
    N, C, hc, wc = feats.shape
    B = params.bands
    K = bank.sums.shape[-1]  # a, b
    q = feats.permute(0, 2, 3, 1).reshape(-1, C)
    qpos = _cell_pos(hc, wc).to(q.device).repeat(N, 1) if params.pos_weight > 0 else None
    k = min(params.top_k, bank.positions)
    mix_s = torch.empty(q.shape[0], B, K, device=q.device)
    mix_c = torch.empty(q.shape[0], B, device=q.device)
    best = torch.empty(q.shape[0], device=q.device)
    for i in range(0, q.shape[0], params.chunk):
        sim = q[i : i + params.chunk] @ bank.feats.t()
        if bank.bias is not None:
            sim = sim + bank.bias
        if qpos is not None:  # prefer the same place in the picture (a keyframe of the same shot)
            sim = sim - params.pos_weight * torch.cdist(qpos[i : i + params.chunk], bank.pos).square_()
        val, idx = sim.topk(k, dim=1)
        w = torch.exp((val - 1.0) / params.tau)  # (n, k)
        mix_s[i : i + params.chunk] = torch.einsum("nk,nkbc->nbc", w, bank.sums[idx])
        mix_c[i : i + params.chunk] = torch.einsum("nk,nkb->nb", w, bank.counts[idx])
        best[i : i + params.chunk] = val[:, 0]
    mix_s = mix_s + params.prior * bank.global_sums
    mix_c = mix_c + params.prior * bank.global_counts
    # every a/b pixel reads the cell grid bilinearly (as TF.interpolate, align_corners=False) at its own two
    # gray-level bands: only those 2 x 4 table entries are gathered (no upsampled copy of every band)
    table = torch.cat([mix_s, mix_c.unsqueeze(-1)], -1).reshape(N, hc * wc * B, K + 1)
    h, w = gray_ab.shape[-2:]
    lo, hi, t = _band_coords(gray_ab.to(table.device), B)  # (N, h, w)
    ys, wy = _bilinear_taps(h, hc, table.device)
    xs, wx = _bilinear_taps(w, wc, table.device)
    acc = torch.zeros(N, h, w, K + 1, device=table.device)
    for iy in range(2):
        for ix in range(2):
            cell = (ys[iy][:, None] * wc + xs[ix][None, :]) * B  # (h, w)
            wgt = (wy[iy][:, None] * wx[ix][None, :]).unsqueeze(-1)  # (h, w, 1)
            for band, bw in ((lo, 1 - t), (hi, t)):
                idx = (cell + band).reshape(N, -1, 1).expand(-1, -1, K + 1)
                acc += table.gather(1, idx).reshape(N, h, w, K + 1) * (wgt * bw.unsqueeze(-1))
    acc = acc.permute(0, 3, 1, 2)  # (N, K + 1, h, w)
    ab = acc[:, :K] / acc[:, K : K + 1].clamp_min(1e-8)
    return ab, best.reshape(N, hc, wc)


# --------------------------------------------------------------------------- colorizers


class ReferenceColorizer:
    """Colors every frame from one bank of reference stills (a series' palette).

    ``base``: the :class:`~animecolor.colorize.ModelColorizer` whose network
    encodes the frames; ``bank`` may be None when only :meth:`colorize_with`
    is used (the keyframe colorizer passes each shot's bank).  With ``params.gate`` set, cells whose best match is
    weak take the base model's own prediction instead (blended linearly
    between the two similarity levels); otherwise the base prediction is not
    computed.  A ``refiner`` (:class:`animecolor.refine.Refiner`) replaces
    that gate (tried, not shipped: docs/reference.md).
    """

    def __init__(self, base: ModelColorizer, bank: ReferenceBank | None, params: MatchParams | None = None, name: str = "reference",
                 refiner=None):
        self.base = base
        self.bank = bank
        self.params = params or REFERENCE_PARAMS
        self.name = name
        self.refiner = refiner.to(base.device).eval() if refiner is not None else None  # animecolor.refine.Refiner: replaces the gate
        self._feat = _Features(base, self.params.features)
        self.output_stride = base.output_stride
        self.device = base.device

    @classmethod
    def from_images(cls, base: ModelColorizer, rgb_frames: Sequence[np.ndarray], params: MatchParams | None = None,
                    name: str = "reference", names: Sequence[str] = (), refiner=None):
        params = params or REFERENCE_PARAMS
        return cls(base, encode_references(base, rgb_frames, params, names), params, name, refiner)

    def working_size(self, width: int, height: int) -> tuple[int, int]:
        return self.base.working_size(width, height)

    def __call__(self, gray: np.ndarray) -> np.ndarray:
        if self.bank is None:
            raise ValueError("this ReferenceColorizer has no references (bank is None)")
        return self.colorize_with(self.bank, gray)

    def colorize_with(self, bank: ReferenceBank, gray: np.ndarray, memory: list | None = None) -> np.ndarray:
        """a/b ``(N, h/s, w/s, 2)`` for gray frames at working size, from ``bank``.

        ``memory`` (keyframes, ``params.memory`` set): a one-item list holding the
        previous frame's bank (or None); frames then go one by one, each matched
        against ``bank`` plus the frame before it, and the list is updated."""
        if gray.ndim != 3 or gray.dtype != np.uint8:
            raise ValueError(f"expected uint8 (N, h, w) gray batch, got {gray.dtype} {gray.shape}")
        s = self.output_stride
        N, h, w = gray.shape
        if N == 0:
            return np.zeros((0, h // s, w // s, 2), np.float32)
        p = self.params
        rf = self.refiner
        need_base = (p.gate is not None and p.fallback == "model") or p.model_mix > 0 if rf is None else rf.cfg.use_base
        feats, base_ab = self._feat(gray, with_prediction=need_base)
        g_ab = np.stack([fr.ab_gray_size(g, (h // s, w // s)) for g in gray])
        g_t = torch.from_numpy(g_ab).to(self.device)
        if memory is None or p.memory is None:
            return self._finish(*transfer(bank, feats, g_t, p), base_ab, feats, g_t)
        outs = []
        for i in range(N):
            b = bank if memory[0] is None else merge_banks([bank, memory[0]], [1.0, 0.0])
            ab = self._finish(*transfer(b, feats[i : i + 1], g_t[i : i + 1], p), None if base_ab is None else base_ab[i : i + 1],
                              feats[i : i + 1], g_t[i : i + 1])
            memory[0] = frame_bank(feats[i], g_ab[i], ab[0], p, p.memory)
            outs.append(ab)
        return np.concatenate(outs)

    def _finish(self, ab: torch.Tensor, conf: torch.Tensor, base_ab: torch.Tensor | None,
                feats: torch.Tensor, gray_ab: torch.Tensor) -> np.ndarray:
        p = self.params
        if self.refiner is not None:  # the learned refinement replaces the gate
            with torch.inference_mode():
                ab = self.refiner(gray_ab.float().unsqueeze(1), ab.float(), conf.unsqueeze(1).float(),
                                  None if base_ab is None else base_ab.float(), feats.float())
        elif p.gate is not None:
            lo, hi = p.gate
            wgt = ((conf - lo) / (hi - lo)).clamp_(0, 1).unsqueeze(1)
            wgt = TF.interpolate(wgt, size=ab.shape[-2:], mode="bilinear", align_corners=False)
            ab = wgt * ab + (1 - wgt) * (p.fallback_scale * base_ab.to(ab.dtype)) if base_ab is not None else wgt * ab
        if self.refiner is None and p.model_mix > 0:
            ab = (1 - p.model_mix) * ab + p.model_mix * base_ab.to(ab.dtype)
        return ab.permute(0, 2, 3, 1).float().cpu().numpy()


def copy_keyframe_chroma(keyframe_rgb: np.ndarray, size: tuple[int, int], stride: int) -> np.ndarray:
    """The naive baseline: the keyframe's own a/b, resized to the a/b grid ``(h/s, w/s, 2)``."""
    w, h = size
    small = cv2.resize(keyframe_rgb, (w // stride, h // stride), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb_to_lab(small)[..., 1:])


@dataclass
class Keyframe:
    """A colored version (uint8 RGB) of the frame shown at ``time`` seconds."""

    rgb: np.ndarray
    time: float
    name: str = ""


class KeyframeColorizer:
    """Colors each shot from its colored keyframes; shots without one go to ``fallback``.

    ``cuts``: times (seconds from the first frame) of the scene cuts.  A frame
    at time ``t`` belongs to the shot between the cuts around it; the keyframes
    whose times fall in that shot form its bank, so colors carry forward and
    backward from a keyframe up to the cuts.  Frames of a shot without a
    keyframe are colored by ``fallback`` (default: the keyframes themselves
    as reference stills, a :class:`ReferenceColorizer` built on first use: on
    validation shots far closer than the base model, docs/reference.md; pass
    the base model, or a ReferenceColorizer of other stills, to choose).  Within a
    shot, cells that match the keyframe weakly (new content, a dissolve the
    cut test missed) blend toward the base model (``params.gate``), or a
    learned ``refiner`` (:mod:`animecolor.refine`) replaces that gate.
    With ``propagate`` (default on), each frame from a keyframe on also gets
    that keyframe's own chroma carried by optical flow
    (:mod:`animecolor.propagate`) wherever the track still matches the
    keyframe's brightness; frames of a shot before its first keyframe use
    the matching alone.  With ``adapt_steps`` (Python only, off: tried on
    validation and not taken, docs/reference.md "Session 15") the model is
    first fine-tuned on all the keyframes (:mod:`animecolor.adapt`, once, on
    first use) and that model gives the matching and the weak-match colors.

    It needs each frame's time: ``uses_time = True`` makes every caller go
    through :func:`animecolor.colorize.apply_colorizer` with the times.
    """

    uses_time = True
    #: Flow propagation follows frames in order; a step back in time or a jump longer than this restarts from the keyframe.
    MAX_STEP_S = 0.5

    def __init__(
        self,
        base: ModelColorizer,
        keyframes: Sequence[Keyframe],
        cuts: Sequence[float] = (),
        fallback: Colorizer | None = None,
        params: MatchParams | None = None,
        name: str = "keyframes",
        method: str = "match",
        refiner=None,
        propagate: PropagateParams | None = PROPAGATE_PARAMS,
        adapt_steps: int = 0,
        weights: str | os.PathLike | None = None,
    ):
        if not keyframes:
            raise ReferenceError("no keyframes given")
        if method not in ("match", "copy"):
            raise ValueError(f"unknown keyframe method {method!r}; choose match or copy")
        self.method = method  # "copy": the naive baseline, the nearest keyframe's own chroma on every frame of its shot
        self.base = base
        self.params = params or KEYFRAME_PARAMS
        self.name = name
        self._fallback = fallback  # None: the keyframes as reference stills (see fallback)
        self.output_stride = base.output_stride
        self.device = base.device
        self._ref = ReferenceColorizer(base, None, self.params, name, refiner)  # the bank is given per shot
        self.cuts = sorted(float(c) for c in cuts)
        self.keyframes = sorted(keyframes, key=lambda k: k.time)
        self._by_shot: dict[int, list[Keyframe]] = {}
        for kf in self.keyframes:
            self._by_shot.setdefault(self.shot_of(kf.time), []).append(kf)
        self._cached: tuple[int, ReferenceBank] | None = None  # one shot's bank at a time: memory stays flat
        self._memory: tuple[int, list] | None = None  # (shot, [previous frame's bank]) when params.memory is set
        self.propagate = propagate  # carry the keyframe's chroma along the shot by optical flow (animecolor.propagate)
        self._track: list | None = None  # [shot, keyframe index, last frame's time, KeyframeTrack]
        if adapt_steps < 0:
            raise ValueError(f"keyframe adaptation steps must be >= 0, got {adapt_steps}")
        # > 0: the base fine-tuned on all the keyframes (animecolor.adapt, cached; once, on first use) gives the
        # matching features and the colors where matches are weak.  ``weights``: the base's checkpoint.
        self.adapt_steps, self.weights = int(adapt_steps), weights
        self._adapted = not self.adapt_steps

    @property
    def fallback(self) -> Colorizer:
        """What colors the shots without a keyframe (built on first use)."""
        if self._fallback is None:
            self._fallback = ReferenceColorizer.from_images(self.base, [k.rgb for k in self.keyframes], name="keyframes as references",
                                                            names=[k.name for k in self.keyframes])
        return self._fallback

    def shot_of(self, t: float) -> int:
        """Index of the shot holding time ``t`` (0 before the first cut)."""
        return bisect.bisect_right(self.cuts, t + 1e-6)

    def _bank(self, shot: int) -> ReferenceBank:
        """The bank of a shot that has keyframes (one shot's bank, and its colorizer, cached at a time)."""
        kfs = self._by_shot[shot]
        if not self._adapted:  # the first keyframed shot: adapt the model to all the keyframes
            from .colorize import DEFAULT_WEIGHTS, load_colorizer

            path = adapt_to_references(self.weights or DEFAULT_WEIGHTS, [k.rgb for k in self.keyframes], self.adapt_steps,
                                       device=self.base.device)
            model = load_colorizer(path, str(self.base.device), working_long_side=self.base.cfg.working_long_side,
                                   runtime=runtime_like(self.base))
            self._ref = ReferenceColorizer(model, None, self.params, self.name, self._ref.refiner)
            self._adapted = True
        if self._cached is None or self._cached[0] != shot:
            self._cached = (shot, encode_references(self._ref.base, [k.rgb for k in kfs], self.params, [k.name for k in kfs]))
        return self._cached[1]

    def working_size(self, width: int, height: int) -> tuple[int, int]:
        return self.base.working_size(width, height)

    def __call__(self, gray: np.ndarray, times: Sequence[float] | None = None) -> np.ndarray:
        if times is None or len(times) != len(gray):
            raise ValueError(f"{self.name} needs one time per frame, got {None if times is None else len(times)} for {len(gray)}")
        s = self.output_stride
        N, h, w = gray.shape
        out = np.zeros((N, h // s, w // s, 2), np.float32)
        shots = np.array([self.shot_of(float(t)) for t in times], dtype=np.int64)
        for shot in dict.fromkeys(shots.tolist()):  # in order of appearance
            sel = np.flatnonzero(shots == shot)
            kfs = self._by_shot.get(shot)
            if kfs is None:
                out[sel] = apply_colorizer(self.fallback, gray[sel], [times[i] for i in sel])
            elif self.method == "copy":
                for i in sel:
                    kf = min(kfs, key=lambda k: abs(k.time - float(times[i])))
                    out[i] = copy_keyframe_chroma(kf.rgb, (w, h), s)
            else:
                if self._memory is None or self._memory[0] != shot:
                    self._memory = (shot, [None])
                bank = self._bank(shot)  # (sets self._ref's model first when adapting)
                out[sel] = self._ref.colorize_with(bank, gray[sel], self._memory[1])
                if self.propagate is not None:
                    for i in sel:
                        out[i] = self._carry(shot, kfs, gray[i], float(times[i]), out[i])
        return out

    def _carry(self, shot: int, kfs: list[Keyframe], gray: np.ndarray, t: float, ab: np.ndarray) -> np.ndarray:
        """Blend the latest keyframe's chroma, followed by optical flow up to this frame, over ``ab``
        where the track holds (frames before the shot's first keyframe keep ``ab``)."""
        k = max((j for j, kf in enumerate(kfs) if kf.time <= t + 1e-6), default=None)
        if k is None:
            return ab
        tr = self._track
        if tr is None or tuple(tr[:2]) != (shot, k) or not tr[2] <= t <= tr[2] + self.MAX_STEP_S:
            # a new keyframe, or frames not in order (preview, a segment's start): follow from the keyframe itself
            h, w = gray.shape
            rgb = cv2.resize(kfs[k].rgb, (w, h), interpolation=cv2.INTER_AREA) if kfs[k].rgb.shape[:2] != (h, w) else kfs[k].rgb
            tr = [shot, k, t, KeyframeTrack(gray_of_rgb(rgb), rgb_to_lab(rgb)[..., 1:], self.propagate)]
            self._track = tr
        tr[2] = t
        carried, trust = tr[3].step(gray)
        hs, ws = ab.shape[:2]
        if carried.shape[:2] != (hs, ws):
            carried = cv2.resize(carried, (ws, hs), interpolation=cv2.INTER_AREA)
            trust = cv2.resize(trust, (ws, hs), interpolation=cv2.INTER_AREA)
        trust = trust[..., None]
        return trust * carried + (1.0 - trust) * ab


# --------------------------------------------------------------------------- building from user input

#: ``--reference-frames`` default: frames sampled from the references (picked on validation, docs/reference.md).
DEFAULT_REFERENCE_FRAMES = 16
#: Brightness correlation under which a keyframe is reported as not matching its frame.
MIN_KEYFRAME_MATCH = 0.7

def parse_keyframe(spec: str) -> tuple[Path, str]:
    """``IMAGE@TIME`` -> (image path, time text); TIME in seconds or HH:MM:SS.mmm."""
    path, sep, when = str(spec).rpartition("@")
    if not sep or not path or not when:
        raise ReferenceError(f"bad --keyframe {spec!r}: use IMAGE@TIME, e.g. shot1.png@12.5 or shot1.png@00:01:02.250")
    from .preview import parse_time

    try:
        at = parse_time(when)
    except ValueError as e:
        raise ReferenceError(f"bad --keyframe {spec!r}: {e}") from None
    if at.frame is not None:
        raise ReferenceError(f"bad --keyframe {spec!r}: give TIME in seconds or HH:MM:SS.mmm, not a frame number")
    return Path(path), when


def load_keyframe(path: str | os.PathLike) -> np.ndarray:
    """Read a colored keyframe image (uint8 RGB); unreadable or gray images raise :class:`ReferenceError`."""
    from .data.sources import load_image

    path = Path(path)
    if not path.is_file():
        raise ReferenceError(f"keyframe image not found: {path}")
    try:
        rgb = load_image(str(path))
    except (ValueError, OSError):
        raise ReferenceError(f"cannot read keyframe image {path} (not an image file?)") from None
    check_color(rgb, f"keyframe {path.name}")
    return rgb


def reference_colorizer(
    base: ModelColorizer,
    frames: Sequence[np.ndarray],
    names: Sequence[str] = (),
    *,
    adapt_steps: int | None = None,
    weights: str | os.PathLike | None = None,
    progress: Callable[[int, int], None] | None = None,
    name: str | None = None,
    params: MatchParams | None = None,
) -> ReferenceColorizer:
    """The reference-stills colorizer of ``--reference``, from color ``frames`` (uint8 RGB).

    By default (``adapt_steps`` None: :data:`animecolor.adapt.ADAPT_STEPS`) the
    base model is first fine-tuned on the frames (:func:`animecolor.adapt.adapt_to_references`,
    cached; ``weights`` is the base's checkpoint, default the shipped one;
    ``progress(step, steps)`` while it trains), and the colors mix that model's
    prediction with the correspondence transfer (:data:`ADAPTED_REFERENCE_PARAMS`).
    ``adapt_steps=0``: the transfer alone from ``base`` (:data:`REFERENCE_PARAMS`).
    ``params`` overrides those settings.
    """
    steps = ADAPT_STEPS if adapt_steps is None else int(adapt_steps)
    if steps < 0:
        raise ValueError(f"--reference-adapt must be >= 0, got {steps}")
    name = name or f"reference ({len(frames)} frames{', adapted' if steps else ''})"
    if steps == 0:
        return ReferenceColorizer.from_images(base, frames, params or REFERENCE_PARAMS, name, names)
    from .colorize import DEFAULT_WEIGHTS, load_colorizer

    path = adapt_to_references(weights or DEFAULT_WEIGHTS, frames, steps, device=base.device, progress=progress)
    model = load_colorizer(path, str(base.device), working_long_side=base.cfg.working_long_side,
                           runtime=runtime_like(base))
    return ReferenceColorizer.from_images(model, frames, params or ADAPTED_REFERENCE_PARAMS, name, names)


def guided_colorizer(
    base: ModelColorizer,
    video: str | os.PathLike | None = None,
    *,
    references: Sequence[str | os.PathLike] = (),
    reference_frames: int = DEFAULT_REFERENCE_FRAMES,
    keyframes: Sequence[str] = (),
    on_warning: Callable[[str], None] | None = None,
    adapt_steps: int | None = None,
    weights: str | os.PathLike | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Colorizer:
    """The colorizer for ``episode``/``preview``'s ``--reference`` and ``--keyframe`` options.

    ``references``: color images, folders or videos; up to ``reference_frames``
    frames are sampled across their scenes, and the base model (``weights``) is
    adapted to them (:func:`reference_colorizer`: ``adapt_steps``, ``progress``).  ``keyframes``: ``IMAGE@TIME``
    specs for ``video`` (scanned once up to the last keyframe for scene cuts
    and for the frames at those times).  With neither, ``base`` itself.
    Keyframe shots use the keyframes; the other shots the references if
    given, else the keyframes themselves as reference stills.
    """
    col: Colorizer = base
    if references:
        refs = sample_references(references, reference_frames)
        col = reference_colorizer(base, [r for r, _ in refs], [n for _, n in refs], adapt_steps=adapt_steps,
                                  weights=weights, progress=progress)
    if not keyframes:
        return col
    if video is None:
        raise ValueError("keyframes need the video they belong to")
    parsed, images, unpainted = [], [], 0
    for spec, from_folder in expand_keyframe_specs(keyframes):
        path, when = parse_keyframe(spec)
        try:
            images.append(load_keyframe(path))
        except GrayImageError:
            if not from_folder:
                raise
            unpainted += 1  # a shot frame not painted (yet)
            continue
        parsed.append((path, when))
    if unpainted and on_warning is not None:
        on_warning(f"{unpainted} gray image(s) in the keyframe folder skipped (not painted)")
    if not parsed:
        raise ReferenceError("every image in the keyframe folder is gray: paint some shot frames first")
    from .preview import parse_time

    times = [parse_time(w).seconds for _, w in parsed]  # parse_keyframe refuses frame numbers
    scan = scan_shots(video, times, until=max(times))
    kfs = []
    for i, ((path, when), rgb) in enumerate(zip(parsed, images)):
        frame = scan.keyframe_luma.get(i)
        if frame is None:
            raise ReferenceError(f"keyframe {path.name}@{when} is past the end of {Path(video).name} (it lasts {scan.duration:.3f} s)")
        H, W = frame.shape
        if rgb.shape[:2] != (H, W):
            rgb = cv2.resize(rgb, (W, H), interpolation=cv2.INTER_AREA if rgb.shape[0] > H else cv2.INTER_CUBIC)
        match = luma_match(rgb, frame)
        if match < MIN_KEYFRAME_MATCH and on_warning is not None:
            on_warning(f"keyframe {path.name} does not look like the frame at {when} (brightness correlation {match:.2f}); "
                       "check its time")
        kfs.append(Keyframe(rgb, scan.keyframe_time.get(i, times[i]), path.name))  # the start of the frame it shows
    return KeyframeColorizer(base, kfs, scan.cuts, fallback=col if references else None, params=KEYFRAME_PARAMS,
                             name=f"keyframes ({len(kfs)})" + (f" + {col.name}" if col is not base else ""))
