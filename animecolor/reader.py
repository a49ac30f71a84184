"""Reading video with PyAV: probe a file, and a decode thread that yields batches.

* :func:`probe` opens a file once and describes its video stream; :func:`open_video`
  opens it for reading and describes it.
* :class:`BatchReader` demuxes the input **once** in a background thread:
  video packets go to the decoder, audio and subtitle packets ride along with
  the batch they were read with, so the muxer gets them in roughly the right
  order and nothing of the episode is held in memory beyond a few batches.

Frames travel as their luma plane ``y`` (uint8 ``(H, W)``): the writers put it
back untouched beside the new chroma, so the output's brightness is the input's.
"""
from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator, Sequence

import av
import numpy as np

from .timing import StageTimes

__all__ = [
    "VideoInfo",
    "FrameBatch",
    "BatchReader",
    "probe",
    "open_video",
    "check_input_path",
    "luma_plane",
    "chroma_planes",
    "plane_array",
]

# Planar 8-bit YUV formats whose plane 0 is the luma we keep as is.
_YUV8 = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv440p", "yuvj440p", "yuv411p", "yuv410p", "nv12", "nv21", "gray"}
_FULL_RANGE_FORMATS = {"yuvj420p", "yuvj422p", "yuvj444p", "yuvj440p"}

# libavutil codes (pixfmt.h): the YUV matrix (AVColorSpace), primaries and transfer.
_SPC_BT709, _SPC_SMPTE170M = 1, 6

_WarnFn = Callable[[str], None]


@dataclass
class VideoInfo:
    """What the pipeline needs to know about the input's video stream."""

    path: Path
    width: int
    height: int
    codec: str
    pix_fmt: str
    time_base: Fraction
    rate: Fraction | None  # average frame rate (None when unknown)
    frames: int | None  # frame count (exact from the header, else an estimate, else None)
    duration: float | None  # seconds
    sample_aspect_ratio: Fraction | None
    full_range: bool
    side_streams: list[tuple[int, str, str]] = field(default_factory=list)  # (index, type, codec)
    # The YUV matrix of the source ("bt709" when tagged so, else "bt601", which is also what
    # untagged SD video uses); the output's chroma is made with it and tagged with it.
    matrix: str = "bt601"
    color_primaries: int = 2  # the source's tags (2 = unspecified), carried to the output
    color_trc: int = 2

    @property
    def colorspace(self) -> int:
        """AVColorSpace code the output is tagged with: the matrix its chroma was made with."""
        return _SPC_BT709 if self.matrix == "bt709" else _SPC_SMPTE170M

    @property
    def colorspace_name(self) -> str:
        """The same as ffmpeg's ``-colorspace`` names it."""
        return "bt709" if self.matrix == "bt709" else "smpte170m"

    @property
    def n_audio(self) -> int:
        return sum(1 for _, t, _ in self.side_streams if t == "audio")

    @property
    def n_subtitle(self) -> int:
        return sum(1 for _, t, _ in self.side_streams if t == "subtitle")


def check_input_path(path: Path, kind: str = "a video file") -> None:
    """One-line errors for an input that is missing, a directory or unreadable."""
    if not path.exists():
        raise FileNotFoundError(f"input not found: {path}")
    if path.is_dir():
        raise IsADirectoryError(f"input is a directory, not {kind}: {path}")
    if not os.access(path, os.R_OK):
        raise PermissionError(f"input is not readable (check its permissions): {path}")


def _open_input(path: Path) -> av.container.InputContainer:
    check_input_path(path)
    try:
        return av.open(str(path), "r")
    except av.FFmpegError as e:
        raise ValueError(f"cannot read {path} as a video file ({e.strerror or e}); is it a complete, supported video?") from None


def _video_stream(container: av.container.InputContainer, path: Path) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise ValueError(f"no video stream in {path}")
    return container.streams.video[0]


def _info(container, stream, path: Path) -> VideoInfo:
    cc = stream.codec_context
    if cc is None:  # no decoder for its codec id (in damaged files, often a flipped bit)
        raise ValueError(f"cannot decode the video stream of {path}: unknown codec; the file may be damaged")
    rate = stream.average_rate or stream.guessed_rate or None
    duration = None
    if stream.duration is not None and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    frames = stream.frames or None
    if frames is None and duration and rate:
        frames = max(1, int(round(duration * float(rate))))
    pix_fmt = cc.format.name if cc.format is not None else "unknown"
    full = pix_fmt in _FULL_RANGE_FORMATS or getattr(cc, "color_range", 0) == 2
    side = [
        (s.index, s.type, s.codec_context.name if s.codec_context is not None else "?")
        for s in container.streams
        if s.type in ("audio", "subtitle")
    ]
    sar = stream.sample_aspect_ratio or cc.sample_aspect_ratio or None
    return VideoInfo(
        path=path,
        width=cc.width,
        height=cc.height,
        codec=cc.name,
        pix_fmt=pix_fmt,
        time_base=stream.time_base or Fraction(1, 1000),
        rate=Fraction(rate) if rate else None,
        frames=frames,
        duration=duration,
        sample_aspect_ratio=Fraction(sar) if sar else None,
        full_range=bool(full),
        side_streams=side,
        matrix="bt709" if _tag(cc, "colorspace") == _SPC_BT709 else "bt601",
        color_primaries=_tag(cc, "color_primaries"),
        color_trc=_tag(cc, "color_trc"),
    )


def _tag(cc, name: str) -> int:
    """A color tag of a codec context as an int (2 = unspecified when missing or odd)."""
    try:
        return int(getattr(cc, name))
    except (AttributeError, TypeError, ValueError):
        return 2


def open_video(path: str | os.PathLike) -> tuple[av.container.InputContainer, VideoInfo]:
    """Open ``path`` for reading and describe its first video stream (one-line errors; the
    container is closed again when it cannot be described)."""
    path = Path(path)
    container = _open_input(path)
    try:
        return container, _info(container, _video_stream(container, path), path)
    except BaseException:
        container.close()
        raise


def probe(path: str | os.PathLike) -> VideoInfo:
    """Describe the first video stream of ``path`` (raises a one-line error when it has none)."""
    path = Path(path)
    with _open_input(path) as c:
        return _info(c, _video_stream(c, path), path)


def plane_array(plane) -> np.ndarray:
    """A writable ``(h, w)`` uint8 view of one plane of an 8-bit frame, honouring its ``line_size``."""
    buf = np.frombuffer(memoryview(plane), np.uint8)
    return buf.reshape(-1, plane.line_size)[: plane.height, : plane.width]


def luma_plane(frame: av.VideoFrame) -> tuple[np.ndarray, bool]:
    """The frame's 8-bit luma as a fresh ``(H, W)`` array, and whether it is full range.

    Planar 8-bit YUV keeps its own plane 0 (bit-exact); anything else (RGB, palette
    GIFs, 10-bit) is converted once to limited-range yuv420p by libswscale.
    """
    name = frame.format.name
    full = name in _FULL_RANGE_FORMATS or frame.color_range == 2
    if name not in _YUV8:
        frame = frame.reformat(format="yuv420p")
        full = False
    return plane_array(frame.planes[0]).copy(), bool(full and name != "gray")


def chroma_planes(frame: av.VideoFrame) -> tuple[np.ndarray, np.ndarray]:
    """The frame's 8-bit Cb and Cr planes as fresh arrays, at their own (subsampled) size.

    Planar 8-bit YUV keeps its own planes; anything else (RGB, palette, gray, NV12,
    10-bit) is converted once to yuv420p.  Read only by colorizers that ask for the
    source's chroma (``BatchReader(chroma=True)``, e.g. keep-color on a color video).
    """
    if frame.format.name not in _YUV8 or frame.format.name in ("gray", "nv12", "nv21"):
        frame = frame.reformat(format="yuv420p")
    return plane_array(frame.planes[1]).copy(), plane_array(frame.planes[2]).copy()


@dataclass
class FrameBatch:
    """Consecutive decoded frames plus the audio/subtitle packets demuxed alongside them."""

    start: int  # index of the first frame in the stream
    y: list[np.ndarray]  # luma planes (H, W) uint8, untouched
    gray: np.ndarray | None  # (N, h, w) uint8 model input (``prepare`` output), None without ``prepare``
    pts: list[int | None]
    packets: list[av.Packet]
    full_range: bool = False
    rotation: float = 0.0
    uv: list[tuple[np.ndarray, np.ndarray]] | None = None  # source Cb/Cr planes, only with ``chroma=True``

    def __len__(self) -> int:
        return len(self.y)


class _Stop(Exception):
    pass


class BatchReader:
    """Decode ``container``'s first video stream in a thread; iterate to get :class:`FrameBatch` es.

    ``prepare(y, full_range)`` runs in the decode thread on every frame (resize to
    the model's working size), so it overlaps inference.  Audio/subtitle packets
    of ``side_streams`` are attached to the batches in demux order.  Corrupt
    packets are skipped with a warning (the frames around them keep their own
    timestamps, so audio stays in sync); more than ``max_bad_packets`` raises.
    The queue holds at most ``queue_size`` batches: memory does not grow with length.
    """

    def __init__(
        self,
        container: av.container.InputContainer,
        batch_size: int,
        prepare: Callable[[np.ndarray, bool], np.ndarray] | None = None,
        side_streams: Sequence[int] = (),
        queue_size: int = 3,
        max_bad_packets: int = 50,
        on_warning: _WarnFn | None = None,
        chroma: bool = False,
    ):
        """``chroma``: also hand over each frame's source Cb/Cr planes (:func:`chroma_planes`) in ``FrameBatch.uv``."""
        if batch_size < 1:
            raise ValueError("batch size must be >= 1")
        self.container = container
        self.stream = _video_stream(container, Path(container.name))
        self.stream.thread_type = "AUTO"
        self.batch_size = batch_size
        self.prepare = prepare
        self.side_streams = set(side_streams)
        self.max_bad_packets = max_bad_packets
        self.on_warning = on_warning
        self.chroma = chroma
        self.bad_packets = 0
        self.frames_read = 0
        self.times = StageTimes()  # the decode thread's: decoding, resizing, waiting on a full queue
        self._q: queue.Queue = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="animecolor-decode", daemon=True)
        self._started = False

    # -- thread side -------------------------------------------------------
    def _put(self, item) -> None:
        with self.times("decode: wait for model"):
            self._put_blocking(item)

    def _put_blocking(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Stop

    def _warn(self, msg: str) -> None:
        if self.on_warning is not None:
            self.on_warning(msg)

    def _bad(self, what: str, err: Exception) -> None:
        self.bad_packets += 1
        self._warn(f"skipped a corrupt {what} near frame {self.frames_read} ({err})")
        if self.bad_packets > self.max_bad_packets:
            raise RuntimeError(
                f"too many corrupt packets ({self.bad_packets}) in {self.container.name}; the file is damaged, "
                "repair or re-download it"
            )

    def _run(self) -> None:
        t0 = time.perf_counter()
        try:
            self._decode_all()
            self._put(None)
        except _Stop:
            pass
        except BaseException as e:  # hand every failure to the consumer
            try:
                self._put(e)
            except _Stop:
                pass
        finally:  # the rest of the thread's time: demuxing, decoding, copying the luma planes
            rest = time.perf_counter() - t0 - sum(self.times.seconds.values())
            self.times.add("decode: demux + decode", rest)

    def _decode_all(self) -> None:
        ys: list[np.ndarray] = []
        uvs: list[tuple[np.ndarray, np.ndarray]] = []
        grays: list[np.ndarray] = []
        pts: list[int | None] = []
        pkts: list[av.Packet] = []
        start = 0
        full_range = False
        rotation = 0.0
        vindex = self.stream.index

        def flush_batch(force: bool = False) -> None:
            nonlocal ys, uvs, grays, pts, pkts, start
            if len(ys) >= self.batch_size or (force and (ys or pkts)):
                gray = np.stack(grays) if grays else None
                self._put(FrameBatch(start, ys, gray, pts, pkts, full_range, rotation, uvs if self.chroma else None))
                start += len(ys)
                ys, uvs, grays, pts, pkts = [], [], [], [], []

        def take(frames) -> None:
            nonlocal full_range, rotation
            for frame in frames:
                if self._stop.is_set():
                    raise _Stop
                y, full = luma_plane(frame)
                if self.frames_read == 0:
                    full_range = full
                    rotation = float(frame.rotation or 0.0)
                ys.append(y)
                if self.chroma:
                    uvs.append(chroma_planes(frame))
                pts.append(frame.pts)
                if self.prepare is not None:
                    with self.times("decode: resize"):
                        grays.append(self.prepare(y, full_range))
                self.frames_read += 1
                flush_batch()

        streams = [self.stream] + [s for s in self.container.streams if s.index in self.side_streams]
        eof = False
        while not eof:
            try:
                for packet in self.container.demux(streams):
                    if self._stop.is_set():
                        raise _Stop
                    if packet.stream_index == vindex:
                        try:
                            take(self.stream.decode(packet))
                        except av.error.EOFError:
                            pass  # decoder already drained
                        except av.FFmpegError as e:
                            self._bad("video packet", e)
                    elif packet.dts is not None and packet.size > 0:
                        pkts.append(packet)
                eof = True
            except av.FFmpegError as e:  # demuxer hiccup: note it and read on from where it stopped
                self._bad("container packet", e)
                if isinstance(e, av.error.EOFError):
                    eof = True
        try:  # PyAV's demux ends with an empty packet that already drains the decoder
            take(self.stream.decode(None))
        except av.error.EOFError:
            pass
        except av.FFmpegError as e:
            self._bad("video packet at the end", e)
        flush_batch(force=True)

    # -- consumer side -----------------------------------------------------
    def __iter__(self) -> Iterator[FrameBatch]:
        if not self._started:
            self._started = True
            self._thread.start()
        while True:
            item = self._q.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop the decode thread (safe to call at any time, several times)."""
        self._stop.set()
        if self._started:
            self._thread.join(timeout=10)
