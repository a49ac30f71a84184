"""The episode pipeline: a black-and-white video file in, a colorized one out, audio untouched.

Three stages overlap::

    decode thread            main thread                          encode thread
    demux + decode   ->  colorizer (batch) -> temporal   ->   chroma planes (made at their
    luma plane, resize      smoother (may hold back            own size with the source's luma)
    to working size         ``delay`` frames)                  -> encoder -> muxer (+ audio/
    audio/sub packets  ---------------------------------->     subtitle packets by copy)

Queues between the stages are bounded, so memory does not grow with the
episode's length.  The output is written to a temporary file beside the
destination and renamed only on success: a failure or Ctrl-C leaves nothing.
"""
from __future__ import annotations

import math
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import av
import numpy as np

from . import frames as F
from .colorize import Colorizer, apply_colorizer, default_batch_size, load_colorizer, resolve_device
from .io import (
    BatchReader,
    EncodeItem,
    EncodeSettings,
    FfmpegWriter,
    PyAVWriter,
    VideoInfo,
    check_output_folder,
    choose_pix_fmt,
    open_video,
    plane_array,
)
from .temporal import TemporalSmoother, make_smoother
from .heap import fix_mmap_threshold
from .timing import StageTimes

__all__ = ["colorize_video", "EpisodeResult", "default_temporal", "ENCODERS", "SUBTITLES", "luma_psnr"]

ENCODERS = ("pyav", "ffmpeg")
SUBTITLES = ("copy", "drop")  # what happens to the input's subtitle streams
ProgressFn = Callable[[int, "int | None"], None]


def default_temporal() -> str:
    """The default temporal smoother's name (``temporal.DEFAULT`` when defined, else ``"ema"``)."""
    from . import temporal

    return getattr(temporal, "DEFAULT", "ema")


def luma_psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 planes (``inf`` when identical)."""
    if np.array_equal(a, b):  # the usual case, and ~20x cheaper than the float path below
        return math.inf
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(255.0**2 / mse)


@dataclass
class EpisodeResult:
    """What :func:`colorize_video` did."""

    output: Path
    frames: int
    seconds: float
    colorizer: str
    info: VideoInfo
    luma_psnr_db: float  # worst frame: luma handed to the encoder vs the source's (before encoding)
    bad_packets: int = 0
    warnings: list[str] = field(default_factory=list)
    # wall seconds per stage and thread ("decode: ...", "main: ...", "encode: ..."; animecolor.timing)
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def _check_paths(src: Path, dst: Path, overwrite: bool) -> None:
    if not src.exists():
        raise FileNotFoundError(f"input not found: {src}")
    if dst.exists() and (dst.resolve() == src.resolve() or os.path.samefile(dst, src)):
        raise ValueError(f"input and output are the same file: {src}; choose another output path")
    if dst.resolve() == src.resolve():
        raise ValueError(f"input and output are the same file: {src}; choose another output path")
    if dst.is_dir():
        raise IsADirectoryError(f"output is a directory: {dst}; give a file name such as {dst / 'out.mp4'}")
    if dst.exists() and not overwrite:
        raise FileExistsError(f"output exists: {dst} (pass --overwrite to replace it)")
    if not dst.suffix:
        raise ValueError(f"output {dst} has no extension; use .mp4, .mkv, .mov, .avi or .webm")
    check_output_folder(dst)


def _temp_path(dst: Path) -> Path:
    return dst.with_name(f".{dst.stem}.partial-{os.getpid()}{dst.suffix}")


class _FrameClock:
    """Each frame's time in seconds from the first frame (what keyframe times are given in)."""

    def __init__(self, info: VideoInfo):
        self.tb = float(info.time_base)
        self.rate = float(info.rate) if info.rate else 25.0  # only for frames without a pts
        self.first: int | None = None

    def times(self, batch) -> list[float]:
        out = []
        for i, pts in enumerate(batch.pts):
            if pts is None or self.tb <= 0:
                out.append((batch.start + i) / self.rate)
                continue
            if self.first is None:
                self.first = pts
            out.append((pts - self.first) * self.tb)
        return out


def _resolve_colorizer(model, device: str | None) -> Colorizer:
    if model is None or isinstance(model, (str, os.PathLike)):
        return load_colorizer(model, device)
    if not isinstance(model, Colorizer):
        raise TypeError(f"model must be a weights path or a Colorizer, got {type(model).__name__}")
    return model


def colorize_video(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    model: Colorizer | str | os.PathLike | None = None,
    *,
    device: str | None = None,
    batch_size: int | None = None,
    temporal: str | TemporalSmoother | None = None,
    codec: str = "libx264",
    crf: int = 18,
    preset: str | None = None,
    encoder: str = "pyav",
    overwrite: bool = False,
    progress: ProgressFn | None = None,
    on_warning: Callable[[str], None] | None = None,
    max_bad_packets: int = 50,
    subtitles: str = "copy",
    queue_size: int = 3,
) -> EpisodeResult:
    """Colorize the video ``src`` into ``dst``, keeping its luma, timestamps, audio and subtitles.

    model: a :class:`~animecolor.colorize.Colorizer`, a weights path, or ``None``
    for the shipped default weights.  ``progress(done, total)`` is called after
    every batch (``total`` may be ``None`` when the container does not say);
    ``on_warning(message)`` for skipped corrupt packets.  ``subtitles``: "copy" every
    subtitle stream (refused with an error naming the ways out when the output container
    cannot hold one, e.g. PGS in .mp4) or "drop" them all.  Never prints.
    Raises ``FileNotFoundError``/``FileExistsError``/``PermissionError``/``ValueError``/
    ``RuntimeError`` with one-line messages; ``dst`` is only created on success.
    """
    src, dst = Path(src), Path(dst)
    if encoder not in ENCODERS:
        raise ValueError(f"unknown encoder {encoder!r}; choose one of {', '.join(ENCODERS)}")
    if subtitles not in SUBTITLES:
        raise ValueError(f"subtitles must be one of {', '.join(SUBTITLES)}, got {subtitles!r}")
    if crf < 0 or crf > 63:
        raise ValueError(f"crf must be in 0..63, got {crf}")
    _check_paths(src, dst, overwrite)
    fix_mmap_threshold()  # keeps memory flat with length (animecolor.heap)
    colorizer = _resolve_colorizer(model, device)
    if batch_size is None:
        dev = getattr(colorizer, "device", None) or resolve_device(device)
        batch_size = default_batch_size(dev)
    smoother = make_smoother(temporal or default_temporal()) if not isinstance(temporal, TemporalSmoother) else temporal
    smoother.reset()
    # keep-color (animecolor.keepcolor): reads the source's chroma, makes the chroma planes itself
    keep = bool(getattr(colorizer, "needs_source_chroma", False))
    if keep:
        colorizer.reset()

    warnings: list[str] = []

    def warn(msg: str) -> None:
        warnings.append(msg)
        if on_warning is not None:
            on_warning(msg)

    t0 = time.perf_counter()
    container, info = open_video(src)
    reader = writer = None
    tmp = _temp_path(dst)
    try:
        if info.width <= 0 or info.height <= 0:
            raise ValueError(f"cannot tell the frame size of {src}; the file may be damaged")
        settings = EncodeSettings(codec=codec, crf=crf, preset=preset, pix_fmt=choose_pix_fmt(codec, info.width, info.height))
        subsampling = "444" if settings.pix_fmt == "yuv444p" else "420"
        side = [i for i, kind, _ in info.side_streams if kind != "subtitle" or subtitles == "copy"]
        wsize = colorizer.working_size(info.width, info.height)
        full_range = [info.full_range]
        worst = [math.inf]

        def merge(y: np.ndarray, ab):
            if keep:  # ab is (a/b, the keep-color colorizer's per-frame data)
                return colorizer.merge(y, ab, subsampling, full_range[0], info.matrix)
            return F.chroma_for(y, ab, subsampling, full_range=full_range[0], matrix=info.matrix)

        def check_luma(y_src: np.ndarray, frame: av.VideoFrame) -> None:
            worst[0] = min(worst[0], luma_psnr(y_src, plane_array(frame.planes[0])))

        if encoder == "pyav":
            writer = PyAVWriter(tmp, info, container, settings, merge, side, on_frame=check_luma, queue_size=queue_size)
        else:
            writer = FfmpegWriter(tmp, info, settings, merge, side, on_frame=check_luma, queue_size=queue_size)
        reader = BatchReader(
            container,
            batch_size,
            prepare=lambda y, full: F.model_input(y, wsize, full),
            side_streams=side,
            queue_size=queue_size,
            max_bad_packets=max_bad_packets,
            on_warning=warn,
            chroma=keep,
        )
        pending: deque = deque()  # (y, pts, keep-color data or None) waiting for their smoothed chroma
        done = 0
        configured = False
        clock = _FrameClock(info)

        def emit(ab: np.ndarray, packets: list) -> None:
            nonlocal done
            if len(ab) > len(pending):
                raise RuntimeError(f"temporal smoother {smoother.name!r} returned more frames than it was given")
            out = []
            for i in range(len(ab)):
                y, pts, extra = pending.popleft()
                out.append((y, ab[i] if extra is None else (ab[i], extra), pts))
            if out or packets:
                with times("main: wait for encoder"):
                    writer.put(EncodeItem(out, packets))
            done += len(out)
            if progress is not None:
                progress(done, info.frames)

        times = StageTimes()  # the main thread's
        batches = iter(reader)
        while True:
            with times("main: wait for frames"):
                batch = next(batches, None)
            if batch is None:
                break
            if not configured and len(batch):
                full_range[0] = batch.full_range
                writer.configure(batch.full_range, batch.rotation)
                configured = True
            if not len(batch):
                emit(np.zeros((0, 1, 1, 2), np.float32), batch.packets)
                continue
            with times("main: model"):
                if keep:
                    colorizer.take_source(batch.y, batch.uv, batch.full_range)
                ab = apply_colorizer(colorizer, batch.gray, clock.times(batch))
                extras = colorizer.frame_extras(len(batch)) if keep else [None] * len(batch)
            with times("main: temporal smoother"):
                gray_ab = np.stack([F.ab_gray_size(g, ab.shape[1:3]) for g in batch.gray])
                pending.extend(zip(batch.y, batch.pts, extras))
                smoothed = smoother.process(gray_ab, ab)
            emit(smoothed, batch.packets)
        tail = smoother.flush()
        emit(tail if len(tail) else np.zeros((0, 1, 1, 2), np.float32), [])
        if pending:
            raise RuntimeError(f"temporal smoother {smoother.name!r} kept {len(pending)} frames after flush")
        if done == 0:
            raise ValueError(f"no decodable video frames in {src}")
        with times("main: wait for encoder"):
            writer.finish()
        container.close()
        os.replace(tmp, dst)
    except BaseException:
        if reader is not None:
            reader.close()
        if writer is not None:
            writer.abort()
        try:
            container.close()
        except Exception:
            pass
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if reader is not None:
            reader.close()
    return EpisodeResult(
        output=dst,
        frames=done,
        seconds=time.perf_counter() - t0,
        colorizer=getattr(colorizer, "name", type(colorizer).__name__),
        info=info,
        luma_psnr_db=worst[0],
        bad_packets=reader.bad_packets if reader else 0,
        warnings=warnings,
        stages={**reader.times.seconds, **times.seconds, **writer.times.seconds},
    )
