"""Streaming video I/O with PyAV: a decode thread that yields batches, encoders that remux.

* :func:`probe` opens a file once and describes its video stream.
* :class:`BatchReader` demuxes the input **once** in a background thread:
  video packets go to the decoder, audio and subtitle packets ride along with
  the batch they were read with, so the muxer gets them in roughly the right
  order and nothing of the episode is held in memory beyond a few batches.
* :class:`PyAVWriter` encodes frames (libx264/libx265/libsvtav1) and muxes
  the audio/subtitle packets by copy (bit-exact).  :class:`FfmpegWriter` pipes
  the frames (raw video in NUT, timestamps included) to an external ``ffmpeg``
  for encoders PyAV lacks, and lets it copy the audio/subtitle streams.

Frames travel as their luma plane ``y`` (uint8 ``(H, W)``): the writer puts it
back untouched beside the new chroma, so the output's brightness is the input's.
"""
from __future__ import annotations

import os
import queue
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator, Sequence

import av
import numpy as np

__all__ = [
    "VideoInfo",
    "FrameBatch",
    "probe",
    "BatchReader",
    "PyAVWriter",
    "FfmpegWriter",
    "luma_plane",
    "chroma_planes",
    "make_yuv_frame",
    "plane_array",
    "CODEC_DEFAULT_PRESET",
    "EncodeSettings",
    "EncodeItem",
    "choose_pix_fmt",
]

# Planar 8-bit YUV formats whose plane 0 is the luma we keep as is.
_YUV8 = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv440p", "yuvj440p", "yuv411p", "yuv410p", "nv12", "nv21", "gray"}
_FULL_RANGE_FORMATS = {"yuvj420p", "yuvj422p", "yuvj444p", "yuvj440p"}

# Default --preset per encoder (x264/x265 take names, SVT-AV1 takes 0..13).
CODEC_DEFAULT_PRESET = {"libx264": "medium", "libx265": "medium", "libsvtav1": "8"}
# Encoders that can write 4:4:4 (needed for odd frame sizes).
_CAN_444 = {"libx264", "libx265", "libx264rgb", "ffv1"}

# libavutil codes (pixfmt.h): the YUV matrix (AVColorSpace), primaries and transfer.
_SPC_BT709, _SPC_SMPTE170M = 1, 6
_SPC_NAMES = {_SPC_BT709: "bt709", _SPC_SMPTE170M: "smpte170m"}  # as ffmpeg's -colorspace takes them
# Source primaries / transfer tags carried to the output (the rest are left untagged: the
# chroma is made from Lab with sRGB primaries, so e.g. BT.2020 primaries would misstate it).
_PRIMARIES_NAMES = {1: "bt709", 5: "bt470bg", 6: "smpte170m"}
_TRC_NAMES = {1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 13: "iec61966-2-1"}

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
    def n_audio(self) -> int:
        return sum(1 for _, t, _ in self.side_streams if t == "audio")

    @property
    def n_subtitle(self) -> int:
        return sum(1 for _, t, _ in self.side_streams if t == "subtitle")


def check_output_folder(path: Path, what: str = "output") -> None:
    """The folder that ``path`` will be written into must exist and be writable."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"{what} folder does not exist: {parent}")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"{what} folder is not writable: {parent}")


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


def _set_color_tags(cc, info: VideoInfo) -> None:
    """Tag an output codec context with the matrix its chroma is made with, and the source's primaries / transfer."""
    cc.colorspace = info.colorspace
    if info.color_primaries in _PRIMARIES_NAMES:
        cc.color_primaries = info.color_primaries
    if info.color_trc in _TRC_NAMES:
        cc.color_trc = info.color_trc


def _ffmpeg_color_options(info: VideoInfo) -> dict[str, str]:
    """The same tags as ffmpeg output options."""
    opts = {"colorspace": _SPC_NAMES[info.colorspace]}
    if info.color_primaries in _PRIMARIES_NAMES:
        opts["color_primaries"] = _PRIMARIES_NAMES[info.color_primaries]
    if info.color_trc in _TRC_NAMES:
        opts["color_trc"] = _TRC_NAMES[info.color_trc]
    return opts


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


def make_yuv_frame(y: np.ndarray, u: np.ndarray, v: np.ndarray, pix_fmt: str) -> av.VideoFrame:
    """Build an ``av.VideoFrame`` from planes (``pix_fmt`` yuv420p or yuv444p), copying ``y`` untouched."""
    H, W = y.shape
    frame = av.VideoFrame(W, H, pix_fmt)
    for plane, data in zip(frame.planes, (y, u, v)):
        dst = plane_array(plane)
        if dst.shape != data.shape:
            raise ValueError(f"plane shape {data.shape} does not fit {pix_fmt} {W}x{H} (expects {dst.shape})")
        dst[...] = data
    return frame


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
        self._q: queue.Queue = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="animecolor-decode", daemon=True)
        self._started = False

    # -- thread side -------------------------------------------------------
    def _put(self, item) -> None:
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


@dataclass
class EncodeSettings:
    """Encoder choice shared by the writers."""

    codec: str = "libx264"
    crf: int = 18
    preset: str | None = None
    pix_fmt: str = "yuv420p"  # yuv444p for odd frame sizes

    def options(self) -> dict[str, str]:
        opts = {"crf": str(self.crf)}
        preset = self.preset or CODEC_DEFAULT_PRESET.get(self.codec)
        if preset is not None:
            opts["preset"] = str(preset)
        if self.codec == "libx265":
            opts["x265-params"] = "log-level=error"
        return opts


def choose_pix_fmt(codec: str, width: int, height: int) -> str:
    """yuv420p, or yuv444p when the frame size is odd (4:2:0 encoders need even sizes)."""
    if width % 2 == 0 and height % 2 == 0:
        return "yuv420p"
    if codec not in _CAN_444:
        raise ValueError(
            f"the frame size {width}x{height} is odd, which needs 4:4:4 output, and {codec} cannot encode it; "
            "use --codec libx264 or libx265"
        )
    return "yuv444p"


class _ThreadedWriter:
    """Runs ``_write_item`` for every queued item in an encode thread; errors surface in the caller."""

    def __init__(self, queue_size: int = 3):
        self._q: queue.Queue = queue.Queue(maxsize=queue_size)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="animecolor-encode", daemon=True)
        self._started = False
        self._closed = False
        self._aborted = False

    def _run(self) -> None:
        try:
            while True:
                item = self._q.get()
                if self._aborted:  # nothing more is written, not even the trailer
                    return
                if item is None:
                    self._finish()
                    return
                self._write_item(item)
        except BaseException as e:
            self._error = e
            # drain so the producer never blocks on a dead consumer
            while True:
                try:
                    if self._q.get(timeout=0.2) is None:
                        return
                except queue.Empty:
                    if self._closed:
                        return

    def put(self, item) -> None:
        """Queue ``item`` (blocks while the encoder is behind: the pipeline's back-pressure)."""
        if not self._started:
            self._started = True
            self._thread.start()
        while True:
            if self._error is not None:
                raise self._error
            try:
                self._q.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Flush the encoder, write the trailer and wait for the thread; re-raise its error."""
        self.put(None)
        self._thread.join()
        self._closed = True
        self.close_pool()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        """Stop without finishing the file (the caller deletes it): the queued items are dropped,
        the one being encoded is the last, the encoder is not flushed."""
        self._closed = True
        self._aborted = True
        if self._started and self._thread.is_alive():
            try:
                while True:
                    self._q.get_nowait()
            except queue.Empty:
                pass
            try:
                self._q.put_nowait(None)
            except queue.Full:
                pass
            self._thread.join(timeout=10)
        self.close_pool()
        self._cleanup()

    def _write_item(self, item) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _video_frames(self, item: "EncodeItem") -> Iterator[av.VideoFrame]:
        """The item's frames ready to encode: chroma merged beside the source luma, pts fixed, range set.

        For the writers that define ``_merge``, ``settings``, ``_fix``, ``vstream``,
        ``_full_range`` and ``on_frame``; ``on_frame(y, frame)`` sees each frame first.
        """
        for (y, _, pts), (u, v) in zip(item.frames, self._merge(item.frames)):
            frame = make_yuv_frame(y, u, v, self.settings.pix_fmt)
            frame.pts = self._fix(pts)
            frame.time_base = self.vstream.codec_context.time_base
            if self._full_range:
                frame.color_range = 2
            if self.on_frame is not None:
                self.on_frame(y, frame)
            yield frame

    def _finish(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _cleanup(self) -> None:
        pass

    def close_pool(self) -> None:
        merger = getattr(self, "_merge", None)
        if merger is not None:
            merger.close()


@dataclass
class EncodeItem:
    """Frames ready to merge and encode (source luma, predicted a/b, pts) and packets to copy, in order."""

    frames: list[tuple[np.ndarray, np.ndarray, int | None]]
    packets: list[av.Packet]


MergeFn = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


class _Merger:
    """Turns (luma, a/b) into chroma planes on a small thread pool (OpenCV releases the GIL)."""

    def __init__(self, merge: MergeFn, workers: int | None = None):
        from concurrent.futures import ThreadPoolExecutor

        self.merge = merge
        n = workers or max(1, min(4, (os.cpu_count() or 2) - 1))
        self.pool = ThreadPoolExecutor(n, thread_name_prefix="animecolor-merge") if n > 1 else None

    def __call__(self, frames):
        if self.pool is None or len(frames) < 2:
            return [self.merge(y, ab) for y, ab, _ in frames]
        return list(self.pool.map(lambda f: self.merge(f[0], f[1]), frames))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)


class _PtsFixer:
    """Timestamps for the encoder: the source's own, made strictly increasing when missing or repeated."""

    def __init__(self, time_base: Fraction, rate: Fraction | None):
        self.step = max(1, int(round(1 / (rate * time_base)))) if rate else 1
        self.last: int | None = None

    def __call__(self, pts: int | None) -> int:
        if pts is None:
            pts = 0 if self.last is None else self.last + self.step
        elif self.last is not None and pts <= self.last:
            pts = self.last + 1
        self.last = pts
        return pts


def _copy_refusal(tmpl, idx: int, suffix: str, err: Exception) -> str:
    """Why stream ``idx`` cannot be copied into the output, and the ways out."""
    drop = " or pass --subtitles drop" if tmpl.type == "subtitle" else ""
    if tmpl.codec_context is None:
        return (f"cannot copy {tmpl.type} stream #{idx}: its codec is unknown to this FFmpeg build "
                f"(the file may be damaged){drop.replace(' or', ';')}")
    return (f"cannot copy {tmpl.type} stream #{idx} ({tmpl.codec_context.name}) into {suffix or 'this'} files "
            f"({err}); use another output container such as .mkv{drop}")


class PyAVWriter(_ThreadedWriter):
    """Encode with PyAV and mux audio/subtitle packets by copy into ``path``.

    ``on_frame(y_source, frame)`` (optional) sees every frame handed to the
    encoder, for measurements such as the luma PSNR.
    """

    def __init__(
        self,
        path: Path,
        info: VideoInfo,
        in_container: av.container.InputContainer,
        settings: EncodeSettings,
        merge: MergeFn,
        side_streams: Sequence[int] = (),
        on_frame: Callable[[np.ndarray, av.VideoFrame], None] | None = None,
        queue_size: int = 3,
    ):
        super().__init__(queue_size)
        self._merge = _Merger(merge)
        self.path = path
        self.settings = settings
        self.on_frame = on_frame
        self.frames_written = 0
        self._fix = _PtsFixer(info.time_base, info.rate)
        self._full_range = False
        self._pending_packets: list[av.Packet] = []
        self._rotation_set = False
        try:
            self.out = av.open(str(path), "w")
        except av.FFmpegError as e:
            raise OSError(f"cannot create the output file {path}: {e.strerror or e}") from None
        try:
            vs = self.out.add_stream(settings.codec, rate=info.rate or None)
        except (av.FFmpegError, ValueError) as e:
            self.out.close()
            raise ValueError(f"encoder {settings.codec!r} is not available in this PyAV build ({e}); try --encoder ffmpeg") from None
        vs.width, vs.height = info.width, info.height
        vs.pix_fmt = settings.pix_fmt
        vs.time_base = info.time_base
        vs.codec_context.time_base = info.time_base
        vs.thread_type = "AUTO"
        vs.options = settings.options()
        if info.sample_aspect_ratio:
            vs.codec_context.sample_aspect_ratio = info.sample_aspect_ratio
        _set_color_tags(vs.codec_context, info)
        self.vstream = vs
        self.side_map: dict[int, av.stream.Stream] = {}
        for idx in side_streams:
            tmpl = in_container.streams[idx]
            try:
                self.side_map[idx] = self.out.add_stream_from_template(tmpl)
            except (av.FFmpegError, ValueError) as e:
                self.out.close()
                raise ValueError(_copy_refusal(tmpl, idx, path.suffix, e)) from None

    def configure(self, full_range: bool, rotation: float) -> None:
        """Set what is only known after the first decoded frame (before anything is written)."""
        self._full_range = full_range
        if full_range:
            self.vstream.codec_context.color_range = 2
        if rotation:
            self.vstream.set_display_rotation(rotation)

    def _mux(self, packets) -> None:
        for p in packets:
            try:
                self.out.mux(p)
            except av.FFmpegError as e:
                if p.stream.type != "video":  # a copied packet the muxer refuses (damaged parameters, often)
                    src = next((i for i, s in self.side_map.items() if s is p.stream), "?")
                    raise ValueError(
                        f"cannot copy {p.stream.type} stream #{src} into {self.path.suffix or 'the output'}: "
                        f"{e.strerror or e}; that stream of the input may be damaged"
                    ) from None
                raise OSError(f"cannot write {self.path}: {e.strerror or e}") from None

    def _write_item(self, item: EncodeItem) -> None:
        for frame in self._video_frames(item):
            self._mux(self.vstream.encode(frame))
            self.frames_written += 1
            if self._pending_packets:
                self._mux(self._pending_packets)
                self._pending_packets = []
        for p in item.packets:
            p.stream = self.side_map[p.stream_index]
        if self.frames_written == 0:  # header not written yet: keep side packets until video starts
            self._pending_packets.extend(item.packets)
        else:
            self._mux(item.packets)

    def _finish(self) -> None:
        self._mux(self.vstream.encode(None))
        self._mux(self._pending_packets)
        self.out.close()

    def _cleanup(self) -> None:
        try:
            self.out.close()
        except Exception:
            pass


class FfmpegWriter(_ThreadedWriter):
    """Pipe frames to an external ``ffmpeg`` (built with ffmpeg-python, argument lists only).

    Frames travel as raw video in a NUT stream on ffmpeg's stdin, so their
    timestamps (variable frame rate too) and sample aspect ratio survive; ffmpeg
    copies the audio/subtitle streams straight from the source file.  The
    display rotation is not carried on this path.
    """

    def __init__(
        self,
        path: Path,
        info: VideoInfo,
        settings: EncodeSettings,
        merge: MergeFn,
        side_streams: Sequence[int] = (),
        on_frame: Callable[[np.ndarray, av.VideoFrame], None] | None = None,
        queue_size: int = 3,
        ffmpeg_bin: str = "ffmpeg",
    ):
        import ffmpeg  # ffmpeg-python

        super().__init__(queue_size)
        self._merge = _Merger(merge)
        exe = shutil.which(ffmpeg_bin)
        if exe is None:
            raise RuntimeError(f"--encoder ffmpeg needs the {ffmpeg_bin!r} program on PATH; install FFmpeg or use --encoder pyav")
        self.path = path
        self.settings = settings
        self.on_frame = on_frame
        self.frames_written = 0
        self._fix = _PtsFixer(info.time_base, info.rate)
        video = ffmpeg.input("pipe:", f="nut")
        src = ffmpeg.input(str(info.path))
        streams = [video["v:0"]] + [src[str(i)] for i in side_streams]
        opts = dict(vcodec=settings.codec, pix_fmt=settings.pix_fmt, fps_mode="passthrough", **settings.options())
        opts.update(_ffmpeg_color_options(info))
        if side_streams:
            opts.update(acodec="copy", scodec="copy")
        args = ffmpeg.output(*streams, str(path), **opts).global_args("-hide_banner", "-loglevel", "error", "-nostdin", "-copyts")
        args = args.overwrite_output().compile(cmd=exe)
        self.args = args
        self._stderr_path = path.with_name(path.name + ".log")
        self._stderr = open(self._stderr_path, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._stderr)
        self.nut = av.open(self.proc.stdin, "w", format="nut")
        vs = self.nut.add_stream("rawvideo", rate=info.rate or None)
        vs.width, vs.height, vs.pix_fmt = info.width, info.height, settings.pix_fmt
        vs.time_base = info.time_base
        vs.codec_context.time_base = info.time_base
        if info.sample_aspect_ratio:
            vs.codec_context.sample_aspect_ratio = info.sample_aspect_ratio
        self.vstream = vs
        self._full_range = False

    def configure(self, full_range: bool, rotation: float) -> None:
        self._full_range = full_range
        if full_range:
            self.vstream.codec_context.color_range = 2

    def _write_item(self, item: EncodeItem) -> None:
        for frame in self._video_frames(item):
            try:
                self.nut.mux(self.vstream.encode(frame))
            except (BrokenPipeError, av.FFmpegError) as e:
                raise RuntimeError(f"external ffmpeg stopped: {self._tail() or e}") from None
            self.frames_written += 1
        # side packets are copied by ffmpeg itself from the source file

    def _tail(self) -> str:
        try:
            self._stderr.flush()
            text = self._stderr_path.read_text(errors="replace").strip().splitlines()
            return text[-1] if text else ""
        except OSError:
            return ""

    def _finish(self) -> None:
        try:
            self.nut.mux(self.vstream.encode(None))
            self.nut.close()
            self.proc.stdin.close()
        except (BrokenPipeError, av.FFmpegError):
            pass
        rc = self.proc.wait()
        msg = self._tail()
        self._close_log()
        if rc != 0:
            raise RuntimeError(f"external ffmpeg failed (exit {rc}): {msg or 'no message'}")

    def _close_log(self) -> None:
        try:
            self._stderr.close()
            self._stderr_path.unlink(missing_ok=True)
        except OSError:
            pass

    def _cleanup(self) -> None:
        try:
            self.nut.close()
        except Exception:
            pass
        try:
            self.proc.stdin.close()
        except Exception:
            pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._close_log()
