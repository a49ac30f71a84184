"""Preview: colorize a few single frames (or a still image) to tune settings.

A frame is colorized exactly the way ``episode`` does it::

    frame -> yuv420p -> Y plane -> frames.model_input -> colorizer -> smoother
          -> frames.chroma_for(y, ab, "420") -> frames.yuv_to_rgb

so what a preview shows is what the episode will look like.  ``context`` feeds
the frames before the chosen one (and the smoother's look-ahead after it)
through the same smoother first, so its state is realistic.

Frames are reached by seeking (the nearest earlier keyframe, then decoding
forward to the wanted timestamp), never by decoding from the start.

API::

    col = load_colorizer(weights)
    previews = preview_frames("ep01.mkv", ["00:03:12.5", "#4000"], col, temporal="ema", context=8)
    sheet = render_sheet(previews)                     # uint8 RGB (H, W, 3)
    times = pick_times("ep01.mkv", 12)                 # contact sheet: one frame per scene if possible
"""
from __future__ import annotations

import math
import os
import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import av
import cv2
import numpy as np

from . import frames as F
from .color import y_to_gray
from .colorize import apply_colorizer
from .io import check_input_path
from .temporal import TemporalSmoother, make_smoother

__all__ = [
    "At",
    "PreviewFrame",
    "parse_time",
    "format_time",
    "is_still_image",
    "preview_frames",
    "pick_times",
    "render_sheet",
    "sheet_layout",
    "COLOR_THRESHOLD",
    "IMAGE_SUFFIXES",
]

#: Mean ``|U-128| + |V-128|`` above which the input counts as color footage.
COLOR_THRESHOLD = 2.0
#: Inputs read as still images (anything else is opened as a video; GIFs are videos).
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
LABEL_HEIGHT = 28  # px of the caption bar above each row of panels
GAP = 6  # px between panels and rows
_BG = 24  # sheet background gray level
_SHORT_VIDEO_FRAMES = 1000  # contact sheets may decode videos up to this length fully (exact cuts)
_CUT_THRESHOLD = 30.0  # mean abs difference of 32x18 thumbnails (0-255) that counts as a cut


# --------------------------------------------------------------------------- times
@dataclass(frozen=True)
class At:
    """A position in a video: ``seconds`` from its first frame, or a ``frame`` number."""

    seconds: float | None = None
    frame: int | None = None
    text: str = ""

    def to_seconds(self, fps: float) -> float:
        return self.seconds if self.frame is None else self.frame / fps


_HMS = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d*)?)$")


def parse_time(text: str | float | At) -> At:
    """``HH:MM:SS.s``, ``MM:SS``, seconds (``192.5``) or a frame number (``#123``)."""
    if isinstance(text, At):
        return text
    if isinstance(text, (int, float)):
        text = repr(float(text))
    s = str(text).strip()
    bad = ValueError(
        f"bad time {text!r}: use HH:MM:SS.s, MM:SS, seconds (192.5) or a frame number (#123, quoted in a shell)"
    )
    if s.startswith("#"):
        if not s[1:].isdigit():
            raise bad
        return At(frame=int(s[1:]), text=s)
    m = _HMS.match(s)
    if m:
        h, mnt, sec = int(m.group(1) or 0), int(m.group(2)), float(m.group(3))
        if sec >= 60 or (m.group(1) is not None and mnt >= 60):
            raise bad
        return At(seconds=h * 3600 + mnt * 60 + sec, text=s)
    try:
        val = float(s)
    except ValueError:
        raise bad from None
    if not math.isfinite(val) or val < 0:
        raise bad
    return At(seconds=val, text=s)


def format_time(seconds: float) -> str:
    """``HH:MM:SS.mmm``."""
    ms = int(round(max(0.0, seconds) * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    return f"{h:02d}:{m:02d}:{rem / 1000:06.3f}"


# --------------------------------------------------------------------------- result
@dataclass
class PreviewFrame:
    """One previewed frame: the panels (uint8 RGB) and what is known about it."""

    source: str
    time: float | None  # seconds from the first frame (None for a still image)
    frame_index: int | None  # 0-based frame number (from the timestamp and frame rate)
    gray: np.ndarray  # what the colorizer saw, at full size
    colorized: np.ndarray
    original: np.ndarray | None  # the input itself when it is color footage
    ciede2000: float | None  # mean CIEDE2000 of colorized vs original (color footage only; see metric_max_side)
    chroma_spread: float  # mean |U-128| + |V-128| of the input
    context: int = 0  # frames fed through the smoother before this one
    colorizer: str = ""
    mask: np.ndarray | None = None  # keep-color: the gray input with the kept area tinted

    @property
    def is_color(self) -> bool:
        return self.original is not None


@dataclass
class _Decoded:
    time: float
    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    full_range: bool


# --------------------------------------------------------------------------- input
def is_still_image(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _plane(plane) -> np.ndarray:
    """A copy of one 8-bit plane as ``(h, w)``, honouring ``line_size``."""
    buf = np.frombuffer(memoryview(plane), np.uint8)
    return buf.reshape(-1, plane.line_size)[: plane.height, : plane.width].copy()


def _planes(frame: av.VideoFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Y, U, V (4:2:0) planes of a decoded frame and whether it is full range (as ``episode`` reads it)."""
    name = frame.format.name
    full = name.startswith("yuvj") or frame.color_range == 2
    if name not in ("yuv420p", "yuvj420p"):
        frame = frame.reformat(format="yuv420p")
        full = full and name.startswith("yuvj")
    y, u, v = (_plane(p) for p in frame.planes[:3])
    return y, u, v, bool(full)


def _luma(frame: av.VideoFrame) -> tuple[np.ndarray, bool]:
    y, _, _, full = _planes(frame)
    return y, full


def _check_input(path: Path) -> None:
    check_input_path(path, "a video or image file")


def _load_still(path: Path) -> _Decoded:
    rgb = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if rgb is None:
        raise ValueError(f"cannot read {path} as an image; is it a complete PNG/JPEG file?")
    rgb = np.ascontiguousarray(rgb[..., ::-1])
    if rgb.shape[0] < 2 or rgb.shape[1] < 2:
        raise ValueError(f"image {path} is too small ({rgb.shape[1]}x{rgb.shape[0]})")
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    y, u, v, full = _planes(frame)
    return _Decoded(0.0, y, u, v, full)


class _Video:
    """An open video with the numbers needed to seek in it."""

    def __init__(self, path: Path):
        _check_input(path)
        self.path = path
        try:
            self.container = av.open(str(path), "r")
        except av.FFmpegError as e:
            raise ValueError(
                f"cannot read {path} as a video or image ({getattr(e, 'strerror', None) or e}); is it a complete, supported file?"
            ) from None
        if not self.container.streams.video:
            self.container.close()
            raise ValueError(f"no video stream in {path}")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.fps = float(rate) if rate else 25.0
        self.tb = float(self.stream.time_base or 1 / 1000)
        self.start_pts = self.stream.start_time or 0
        duration = None
        if self.stream.duration is not None:
            duration = self.stream.duration * self.tb
        elif self.container.duration is not None:
            duration = self.container.duration / av.time_base
        self.duration: float | None = duration
        frames = self.stream.frames or None
        if frames is None and duration:
            frames = max(1, int(round(duration * self.fps)))
        self.frames: int | None = frames

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> "_Video":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def time_of(self, frame: av.VideoFrame) -> float | None:
        pts = frame.pts if frame.pts is not None else frame.dts
        if pts is None:
            return None
        return (pts - self.start_pts) * self.tb

    def _seek(self, seconds: float) -> None:
        target = int(self.start_pts + max(0.0, seconds) / self.tb)
        try:
            self.container.seek(target, stream=self.stream, backward=True)
        except av.FFmpegError:
            try:
                self.container.seek(self.start_pts, stream=self.stream, backward=True)
            except av.FFmpegError as e:
                raise ValueError(f"cannot seek in {self.path.name} ({e.strerror or type(e).__name__}); "
                                 "the file may be damaged") from None

    def _frames(self):
        """Decoded frames after the last seek; corrupt packets are skipped."""
        for packet in self.container.demux(self.stream):
            try:
                decoded = packet.decode()
            except av.InvalidDataError:
                continue
            yield from decoded

    def window(self, t: float, before: int, after: int, prepare) -> tuple[_Decoded, list, list]:
        """The frame shown at ``t`` (nearest timestamp), ``prepare(y, full)`` of up to
        ``before`` frames before it and of up to ``after`` frames after it."""
        half = 0.5 / self.fps
        if self.duration is not None and t > self.duration + half:
            raise ValueError(self._past_end(t, self.duration))
        for attempt in range(2):
            seek_t = 0.0 if attempt else t - (before + 1) / self.fps
            self._seek(seek_t)
            ctx: deque = deque(maxlen=max(before, 1))
            target: _Decoded | None = None
            tail: list = []
            last: tuple[float, av.VideoFrame] | None = None
            overshot = False
            n = 0
            for frame in self._frames():
                ft = self.time_of(frame)
                if ft is None:  # no timestamps: count frames from the seek point (only valid from 0)
                    ft = n / self.fps if seek_t <= 0 else None
                n += 1
                if ft is None:
                    continue
                if target is None:
                    if n == 1 and ft > t + half and seek_t > 0:
                        overshot = True  # the demuxer seeked past the target: decode from the start
                        break
                    if ft < t - half:
                        if before:
                            ctx.append(prepare(*_luma(frame)))
                        last = (ft, frame)
                        continue
                    target = _Decoded(ft, *_planes(frame))
                    if after == 0:
                        break
                else:
                    tail.append(prepare(*_luma(frame)))
                    if len(tail) >= after:
                        break
            if overshot:
                continue
            if target is None:
                end = (last[0] + 1 / self.fps) if last else 0.0
                if last is not None and t <= end:  # within the last frame's display time
                    if before:
                        ctx.pop()
                    target = _Decoded(last[0], *_planes(last[1]))
                else:
                    raise ValueError(self._past_end(t, end if last else self.duration))
            return target, list(ctx) if before else [], tail
        raise ValueError(f"cannot seek to {format_time(t)} in {self.path}; the file may be damaged")

    def _past_end(self, t: float, end: float | None) -> str:
        length = f" (it lasts {format_time(end)})" if end else ""
        return f"time {format_time(t)} is past the end of {self.path.name}{length}; pick an earlier --at"


# --------------------------------------------------------------------------- colorize
def _colorize_window(
    colorizer, smoother: TemporalSmoother, grays: list[np.ndarray], index: int, batch_size: int = 8,
    times: Sequence[float] | None = None, source=None,
):
    """Run ``grays`` (working size) through colorizer and smoother like ``episode``; a/b of frame ``index``.

    ``times``: the frames' times in seconds (for colorizers that use them, e.g. keyframes).
    ``source``: the previewed frame's (u, v) planes, for a keep-color colorizer, which then
    returns ``(a/b, its per-frame data)``."""
    smoother.reset()
    outs: list[np.ndarray] = []
    keep = getattr(colorizer, "needs_source_chroma", False)  # keep-color: masks of every frame, in order
    if keep:
        colorizer.reset()
        extras: list = []
    for i in range(0, len(grays), batch_size):
        g = np.stack(grays[i : i + batch_size])
        if keep:  # only the previewed frame's source chroma is decoded (``source``); context frames: None
            colorizer.take_source(list(g), [source if i + j == index else None for j in range(len(g))])
        ab = apply_colorizer(colorizer, g, None if times is None else list(times[i : i + batch_size]))
        gray_ab = np.stack([F.ab_gray_size(x, ab.shape[1:3]) for x in g])
        outs.extend(smoother.process(gray_ab, ab))
        if keep:
            extras.extend(colorizer.frame_extras(len(g)))
    if len(outs) <= index:
        outs.extend(smoother.flush())
    if len(outs) <= index:
        raise RuntimeError(f"temporal smoother {smoother.name!r} returned too few frames")
    ab = np.asarray(outs[index], np.float32)
    return (ab, extras[index]) if keep else ab


def _shrink(rgb: np.ndarray, max_side: int | None) -> np.ndarray:
    """Resize so the long side is at most ``max_side`` (as ``evaluate`` does before its metrics)."""
    h, w = rgb.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return rgb
    s = max_side / max(h, w)
    return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def _build(
    dec: _Decoded,
    ab: np.ndarray,
    source: str,
    time: float | None,
    index: int | None,
    n_ctx: int,
    name: str,
    metric_max_side: int | None,
    keep=None,
) -> PreviewFrame:
    from .metrics import ciede2000

    y = dec.y
    gray = np.repeat(y_to_gray(y, dec.full_range)[..., None], 3, axis=2)
    mask = None
    if isinstance(ab, tuple):  # keep-color: (a/b, per-frame data) and the colorizer's own merge
        u, v = keep.merge(y, ab, "420", dec.full_range, "bt601")
        m = keep.full_mask(ab[1][0], gray[..., 0])[..., None]
        mask = np.clip(gray * (1 - 0.5 * m) + np.array([255.0, 40.0, 40.0]) * 0.5 * m, 0, 255).astype(np.uint8)
    else:
        u, v = F.chroma_for(y, ab, "420", full_range=dec.full_range)
    colorized = F.yuv_to_rgb(y, u, v, dec.full_range)
    spread = float(np.mean(np.abs(dec.u.astype(np.int16) - 128)) + np.mean(np.abs(dec.v.astype(np.int16) - 128)))
    original = score = None
    if spread > COLOR_THRESHOLD:
        original = F.yuv_to_rgb(y, dec.u, dec.v, dec.full_range)
        score = ciede2000(_shrink(colorized, metric_max_side), _shrink(original, metric_max_side))
    return PreviewFrame(source, time, index, gray, colorized, original, score, spread, n_ctx, name, mask)


def _smoother(temporal: str | TemporalSmoother | None) -> TemporalSmoother:
    if isinstance(temporal, TemporalSmoother):
        return temporal
    if temporal is None:
        from . import temporal as T

        temporal = getattr(T, "DEFAULT", "ema")
    return make_smoother(temporal)


def preview_frames(
    path: str | os.PathLike,
    times: Sequence[str | float | At],
    colorizer,
    *,
    temporal: str | TemporalSmoother | None = None,
    context: int = 0,
    batch_size: int = 8,
    metric_max_side: int | None = 640,
) -> list[PreviewFrame]:
    """Colorize the frames of ``path`` at ``times`` (see :func:`parse_time`).

    A still image (by suffix, see ``IMAGE_SUFFIXES``) takes no times.  ``context``:
    how many frames before each one go through the smoother first (the
    smoother's look-ahead, ``delay``, is decoded after it as well).
    ``metric_max_side``: CIEDE2000 is measured on copies whose long side is at
    most this (640, like ``evaluate``; ``None``: full size, ~1 s more at 1080p).
    """
    path = Path(path)
    if context < 0:
        raise ValueError(f"--context must be >= 0, got {context}")
    smoother = _smoother(temporal)
    name = getattr(colorizer, "name", type(colorizer).__name__)
    if is_still_image(path):
        if times:
            raise ValueError(f"{path.name} is a still image: drop --at/--frames")
        _check_input(path)
        dec = _load_still(path)
        H, W = dec.y.shape
        g = F.model_input(dec.y, colorizer.working_size(W, H), dec.full_range)
        ab = _colorize_window(colorizer, smoother, [g], 0, batch_size, [0.0], (dec.u, dec.v))
        return [_build(dec, ab, str(path), None, None, 0, name, metric_max_side, colorizer)]
    if not times:
        raise ValueError("no times given: pass --at TIME or --frames N")
    ats = [parse_time(t) for t in times]
    out = []
    with _Video(path) as video:
        size: list[tuple[int, int] | None] = [None]

        def prepare(y: np.ndarray, full: bool) -> np.ndarray:
            if size[0] is None:
                size[0] = colorizer.working_size(y.shape[1], y.shape[0])
            return F.model_input(y, size[0], full)

        for at in ats:
            t = at.to_seconds(video.fps)
            target, before, after = video.window(t, context, smoother.delay, prepare)
            grays = before + [prepare(target.y, target.full_range)] + after
            when = [target.time + (j - len(before)) / video.fps for j in range(len(grays))]
            ab = _colorize_window(colorizer, smoother, grays, len(before), batch_size, when, (target.u, target.v))
            index = int(round(target.time * video.fps))
            out.append(_build(target, ab, str(path), target.time, index, len(before), name, metric_max_side,
                              colorizer))
    return out


# --------------------------------------------------------------------------- contact sheet
def _thumb(y: np.ndarray) -> np.ndarray:
    return cv2.resize(y, (32, 18), interpolation=cv2.INTER_AREA).astype(np.float32)


def _scenes_sequential(video: _Video) -> list[tuple[float, float]]:
    """Decode every frame (short videos): scenes as (start, end) seconds between cuts."""
    video._seek(0.0)
    scenes: list[list[float]] = []
    prev = None
    for i, frame in enumerate(video._frames()):
        t = video.time_of(frame)
        t = i / video.fps if t is None else t
        th = _thumb(_plane(frame.planes[0]) if frame.format.name in ("yuv420p", "yuvj420p") else _planes(frame)[0])
        if prev is None or float(np.mean(np.abs(th - prev))) > _CUT_THRESHOLD:
            scenes.append([t, t])
        scenes[-1][1] = t
        prev = th
    return [(a, b) for a, b in scenes]


def _scenes_keyframes(video: _Video, n: int) -> tuple[list[tuple[float, float]], int]:
    """Long videos: look at the keyframes near ``4n`` spread positions (cheap seeks);
    similar neighbours merge into one scene (encoders put keyframes at cuts).
    Returns the scenes and how many distinct keyframes were seen."""
    end = video.duration or 0.0
    k = max(4 * n, 16)
    seen: dict[float, np.ndarray] = {}
    for j in range(k):
        video._seek(end * j / k)
        for frame in video._frames():
            t = video.time_of(frame)
            if t is not None and t not in seen:
                seen[t] = _thumb(_planes(frame)[0])
            break
    keys = sorted(seen)
    scenes: list[list[float]] = []
    for i, t in enumerate(keys):
        if not scenes or float(np.mean(np.abs(seen[t] - seen[keys[i - 1]]))) > _CUT_THRESHOLD:
            scenes.append([t, t])
        scenes[-1][1] = keys[i + 1] if i + 1 < len(keys) else max(t, end - 1 / video.fps)
    return [(a, b) for a, b in scenes], len(keys)


def _spread(scenes: list[tuple[float, float]], n: int) -> list[float]:
    """``n`` times: one per scene where possible, spread over the whole video."""
    if not scenes:
        return []
    total = scenes[-1][1] - scenes[0][0]
    if len(scenes) >= n:  # the scene nearest each evenly spaced time, without repeats
        chosen: list[int] = []
        for i in range(n):
            target = scenes[0][0] + total * (i + 0.5) / n
            order = sorted(range(len(scenes)), key=lambda s: abs((scenes[s][0] + scenes[s][1]) / 2 - target))
            chosen.append(next(s for s in order if s not in chosen))
        return sorted((scenes[s][0] + scenes[s][1]) / 2 for s in chosen)
    picks = [1] * len(scenes)  # every scene once, the rest to the longest scenes
    for _ in range(n - len(scenes)):
        s = max(range(len(scenes)), key=lambda s: (scenes[s][1] - scenes[s][0]) / picks[s])
        picks[s] += 1
    times = []
    for (a, b), p in zip(scenes, picks):
        times.extend(a + (b - a) * (j + 0.5) / p for j in range(p))
    return sorted(times)


def pick_times(path: str | os.PathLike, n: int) -> list[float]:
    """``n`` times (seconds) spread across a video, one per scene where possible.

    First the keyframes near ``4n`` positions are looked at (seeks, not a full
    decode); when there are fewer than ``n`` distinct ones and the video is short
    (few keyframes: a web clip), it is decoded fully and cut where consecutive
    frames differ a lot.
    """
    if n < 1:
        raise ValueError(f"--frames must be >= 1, got {n}")
    path = Path(path)
    if is_still_image(path):
        raise ValueError(f"{path.name} is a still image: drop --at/--frames")
    with _Video(path) as video:
        scenes, keys = _scenes_keyframes(video, n) if video.duration else ([], 0)
        if keys < n and (not video.duration or (video.frames or 0) <= _SHORT_VIDEO_FRAMES):
            scenes = _scenes_sequential(video)
        if not scenes:
            raise ValueError(f"no decodable video frames in {path}")
        times = _spread(scenes, n)
        # snap to frame times so the labels show real frames
        return [round(t * video.fps) / video.fps for t in times]


# --------------------------------------------------------------------------- rendering
@dataclass
class _Layout:
    size: tuple[int, int]  # sheet (H, W)
    boxes: list[list[tuple[int, int, int, int]]] = field(default_factory=list)  # per frame, per panel: x, y, w, h
    labels: list[list[tuple[int, int, str]]] = field(default_factory=list)  # per frame, per panel: x, y, text


def _panels(p: PreviewFrame, colorized_only: bool) -> list[tuple[np.ndarray, str]]:
    where = "image" if p.time is None else f"{format_time(p.time)} #{p.frame_index}"
    if colorized_only:
        return [(p.colorized, f"colorized {where}")]
    ctx = f", context {p.context}" if p.context else ""
    panels = [(p.gray, f"gray input {where}"), (p.colorized, f"colorized ({p.colorizer}{ctx})")]
    if p.original is not None:
        panels.append((p.original, f"original  CIEDE2000 {p.ciede2000:.2f}"))
    if p.mask is not None:
        panels.append((p.mask, "keep-color mask (red)"))
    return panels


def sheet_layout(
    previews: Sequence[PreviewFrame], *, colorized_only: bool = False, panel_height: int | None = None, labels: bool = True
) -> _Layout:
    """Where :func:`render_sheet` puts each panel: one row per frame, panels left to right
    (gray input | colorized | original), a caption bar above each row when ``labels``."""
    if not previews:
        raise ValueError("nothing to render")
    lab = LABEL_HEIGHT if labels else 0
    gap = GAP if (len(previews) > 1 or not colorized_only or labels) else 0
    rows = []
    for p in previews:
        panels = _panels(p, colorized_only)
        h, w = panels[0][0].shape[:2]
        ph = panel_height or h
        pw = max(1, int(round(w * ph / h)))
        rows.append((len(panels), pw, ph, [t for _, t in panels]))
    width = max(n * pw + (n - 1) * gap for n, pw, _, _ in rows) + 2 * gap
    layout = _Layout((0, width))
    y = gap
    for n, pw, ph, texts in rows:
        top = y + lab
        layout.boxes.append([(gap + i * (pw + gap), top, pw, ph) for i in range(n)])
        layout.labels.append([(gap + i * (pw + gap), y, t) for i, t in enumerate(texts)] if labels else [])
        y = top + ph + gap
    layout.size = (y, width)
    if not labels and len(previews) == 1 and colorized_only:  # plain output: just the image
        n, pw, ph, _ = rows[0]
        layout.size = (ph, pw)
        layout.boxes = [[(0, 0, pw, ph)]]
    return layout


def render_sheet(
    previews: Sequence[PreviewFrame], *, colorized_only: bool = False, panel_height: int | None = None, labels: bool | None = None
) -> np.ndarray:
    """The preview image (uint8 RGB).  ``colorized_only`` with one frame and no labels
    (the default then) is just the colorized frame at full size."""
    if labels is None:
        labels = not (colorized_only and len(previews) == 1)
    layout = sheet_layout(previews, colorized_only=colorized_only, panel_height=panel_height, labels=labels)
    sheet = np.full(layout.size + (3,), _BG, np.uint8)
    for p, boxes, texts in zip(previews, layout.boxes, layout.labels):
        for (img, _), (x, y, w, h) in zip(_panels(p, colorized_only), boxes):
            if img.shape[:2] != (h, w):
                img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
            sheet[y : y + h, x : x + w] = img
        for x, y, text in texts:
            _caption(sheet, x, y, boxes[0][2], text)
    return sheet


def _caption(sheet: np.ndarray, x: int, y: int, width: int, text: str) -> None:
    """White text in the caption bar at (x, y), shrunk to fit ``width``."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = 0.55
    while scale > 0.3 and cv2.getTextSize(text, font, scale, 1)[0][0] > width - 8:
        scale -= 0.05
    region = np.ascontiguousarray(sheet[y : y + LABEL_HEIGHT, x : x + width])  # text cannot spill over
    cv2.putText(region, text, (4, LABEL_HEIGHT - 9), font, scale, (235, 235, 235), 1, cv2.LINE_AA)
    sheet[y : y + LABEL_HEIGHT, x : x + width] = region
