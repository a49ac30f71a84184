"""Input discovery and streaming decode for ``animecolor dataset build``.

A *source* is one unit of work (and of resume): a video file, or one folder's
images.  Frames are streamed one at a time; a video is never held in memory.
Each :class:`SourceFrame` carries a small RGB copy for analysis and a callable
that converts the full-resolution frame only when it is actually sampled.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import av
import cv2
import numpy as np

__all__ = ["VIDEO_EXTS", "IMAGE_EXTS", "Source", "SourceFrame", "discover", "iter_frames", "load_image"]

VIDEO_EXTS = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".m2ts", ".wmv", ".flv", ".gif", ".ogv"}
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}

#: Width of the analysis copy (scene cuts, borders, color and duplicate checks).
ANALYSIS_WIDTH = 256


@dataclass(frozen=True)
class Source:
    """A video file (``kind="video"``) or the images of one folder (``kind="images"``)."""

    kind: str
    path: str
    images: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return self.path


@dataclass
class SourceFrame:
    """One decoded frame: position, small analysis copy, lazy full-resolution RGB."""

    index: int
    timestamp_s: float
    analysis: np.ndarray  # uint8 RGB, width ANALYSIS_WIDTH
    full: Callable[[], np.ndarray]  # -> uint8 RGB at source resolution
    new_scene: bool = False  # forced cut (every image is its own scene)
    name: str = ""  # image path for image sources
    fps: float = 24.0


def discover(inputs: list[str | os.PathLike]) -> tuple[list[Source], list[tuple[str, str]]]:
    """Expand input paths into sources (sorted, deterministic).

    Files are taken as videos unless they have an image extension; folders are
    walked recursively: each video is a source, the images directly in one
    folder form one source.  Returns ``(sources, missing)`` where ``missing``
    lists ``(path, reason)`` for inputs that do not exist.
    """
    sources: list[Source] = []
    missing: list[tuple[str, str]] = []
    seen: set[str] = set()

    def add(src: Source) -> None:
        if src.key not in seen:
            seen.add(src.key)
            sources.append(src)

    for raw in inputs:
        p = Path(raw)
        if p.is_file():
            if p.suffix.lower() in IMAGE_EXTS:
                add(Source("images", str(p), (str(p),)))
            else:
                add(Source("video", str(p)))
        elif p.is_dir():
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames.sort()
                images = []
                for fn in sorted(filenames):
                    ext = os.path.splitext(fn)[1].lower()
                    full = os.path.join(dirpath, fn)
                    if ext in VIDEO_EXTS:
                        add(Source("video", full))
                    elif ext in IMAGE_EXTS:
                        images.append(full)
                if images:
                    add(Source("images", dirpath, tuple(images)))
        else:
            missing.append((str(p), "no such file or folder"))
    return sources, missing


def _analysis_size(width: int, height: int) -> tuple[int, int]:
    w = min(ANALYSIS_WIDTH, width)
    h = max(2, int(round(height * w / width / 2)) * 2)
    return w, h


def load_image(path: str, background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Read an image as uint8 RGB; alpha is composited onto ``background``."""
    data = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise ValueError(f"cannot decode image {path}")
    if img.dtype == np.uint16:
        img = (img // 257).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        alpha = img[..., 3:4].astype(np.float32) / 255.0
        bgr = img[..., :3].astype(np.float32)
        bg = np.array(background[::-1], dtype=np.float32)
        img = np.clip(np.rint(bgr * alpha + bg * (1.0 - alpha)), 0, 255).astype(np.uint8)
    elif img.shape[2] == 2:  # gray + alpha
        gray = cv2.cvtColor(img[..., :1], cv2.COLOR_GRAY2BGR).astype(np.float32)
        alpha = img[..., 1:2].astype(np.float32) / 255.0
        bg = np.array(background[::-1], dtype=np.float32)
        img = np.clip(np.rint(gray * alpha + bg * (1.0 - alpha)), 0, 255).astype(np.uint8)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _iter_video(path: str) -> Iterator[SourceFrame]:
    with av.open(path) as container:
        if not container.streams.video:
            raise ValueError(f"{path} has no video stream")
        stream = container.streams.video[0]
        if stream.codec_context is None:  # no decoder for its codec id (a damaged header, often)
            raise ValueError(f"cannot decode the video stream of {path}: unknown codec; the file may be damaged")
        stream.thread_type = "AUTO"
        tb = stream.time_base
        rate = float(stream.average_rate or stream.guessed_rate or 24)
        first_pts = None
        for i, frame in enumerate(container.decode(stream)):
            if frame.pts is not None and tb is not None:
                if first_pts is None:
                    first_pts = frame.pts
                t = float((frame.pts - first_pts) * tb)
            else:
                t = i / rate
            w, h = _analysis_size(frame.width, frame.height)
            small = frame.reformat(width=w, height=h, format="rgb24").to_ndarray()
            yield SourceFrame(i, round(t, 4), small, (lambda f=frame: f.to_ndarray(format="rgb24")), fps=rate)


def _iter_images(src: Source, errors: list[tuple[str, str]], background: tuple[int, int, int]) -> Iterator[SourceFrame]:
    for i, p in enumerate(src.images):
        try:
            rgb = load_image(p, background)
        except (ValueError, OSError) as e:
            errors.append((p, str(e)))
            continue
        w, h = _analysis_size(rgb.shape[1], rgb.shape[0])
        small = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
        yield SourceFrame(i, 0.0, small, (lambda r=rgb: r), new_scene=True, name=p)


def iter_frames(
    src: Source, errors: list[tuple[str, str]], background: tuple[int, int, int] = (255, 255, 255)
) -> Iterator[SourceFrame]:
    """Stream the frames of ``src``; unreadable images are appended to ``errors`` and skipped.

    A video that cannot be opened or decoded raises (``av.error.FFmpegError`` /
    ``ValueError``): the caller reports it and skips the whole source.
    """
    if src.kind == "video":
        return _iter_video(src.path)
    return _iter_images(src, errors, background)


def frame_count(src: Source) -> int | None:
    """Frame count when the container knows it (for progress bars), else ``None``."""
    if src.kind == "images":
        return len(src.images)
    try:
        with av.open(src.path) as c:
            s = c.streams.video[0]
            if s.frames:
                return int(s.frames)
            dur = s.duration * s.time_base if s.duration else (c.duration / 1e6 if c.duration else None)
            rate = s.average_rate or s.guessed_rate
            if dur and rate:
                return int(round(float(dur) * float(rate)))
    except Exception:  # noqa: BLE001 - only a progress hint
        return None
    return None
