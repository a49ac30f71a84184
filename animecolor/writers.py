"""Writing video: encoders that put new chroma beside the source's luma and remux the rest.

:class:`PyAVWriter` encodes frames (libx264/libx265/libsvtav1) and muxes the
audio/subtitle packets by copy (bit-exact).  :class:`FfmpegWriter` pipes the
frames (raw video in NUT, timestamps included) to an external ``ffmpeg`` for
encoders PyAV lacks, and lets it copy the audio/subtitle streams.  Both encode in
a thread fed by a bounded queue (the pipeline's back-pressure).
"""
from __future__ import annotations

import os
import queue
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator, Sequence

import av
import numpy as np

from .reader import VideoInfo, plane_array
from .timing import StageTimes

__all__ = [
    "PyAVWriter",
    "FfmpegWriter",
    "EncodeSettings",
    "EncodeItem",
    "CODEC_DEFAULT_PRESET",
    "choose_pix_fmt",
    "check_output_folder",
    "make_yuv_frame",
    "copy_refusal",
]

# Default --preset per encoder (x264/x265 take names, SVT-AV1 takes 0..13).
CODEC_DEFAULT_PRESET = {"libx264": "medium", "libx265": "medium", "libsvtav1": "8"}
# Encoders that can write 4:4:4 (needed for odd frame sizes).
_CAN_444 = {"libx264", "libx265", "libx264rgb", "ffv1"}

# ffmpeg's names for the libavutil color codes (pixfmt.h).
# Source primaries / transfer tags carried to the output (the rest are left untagged: the
# chroma is made from Lab with sRGB primaries, so e.g. BT.2020 primaries would misstate it).
_PRIMARIES_NAMES = {1: "bt709", 5: "bt470bg", 6: "smpte170m"}
_TRC_NAMES = {1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 13: "iec61966-2-1"}


def check_output_folder(path: Path, what: str = "output") -> None:
    """The folder that ``path`` will be written into must exist and be writable."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"{what} folder does not exist: {parent}")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"{what} folder is not writable: {parent}")


def _set_color_tags(cc, info: VideoInfo) -> None:
    """Tag an output codec context with the matrix its chroma is made with, and the source's primaries / transfer."""
    cc.colorspace = info.colorspace
    if info.color_primaries in _PRIMARIES_NAMES:
        cc.color_primaries = info.color_primaries
    if info.color_trc in _TRC_NAMES:
        cc.color_trc = info.color_trc


def _ffmpeg_color_options(info: VideoInfo) -> dict[str, str]:
    """The same tags as ffmpeg output options."""
    opts = {"colorspace": info.colorspace_name}
    if info.color_primaries in _PRIMARIES_NAMES:
        opts["color_primaries"] = _PRIMARIES_NAMES[info.color_primaries]
    if info.color_trc in _TRC_NAMES:
        opts["color_trc"] = _TRC_NAMES[info.color_trc]
    return opts


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
        self.times = StageTimes()  # the encode thread's: waiting for frames, merging chroma, encoding + muxing

    def _run(self) -> None:
        times = self.times
        try:
            while True:
                with times("encode: wait for model"):
                    item = self._q.get()
                if self._aborted:  # nothing more is written, not even the trailer
                    return
                t0, merged = time.perf_counter(), times.seconds["encode: merge"]
                if item is None:
                    self._finish()
                else:
                    self._write_item(item)
                times.add("encode: encode + mux", time.perf_counter() - t0 - (times.seconds["encode: merge"] - merged))
                if item is None:
                    return
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
        with self.times("encode: merge"):
            planes = self._merge(item.frames)
        for (y, _, pts), (u, v) in zip(item.frames, planes):
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


def copy_refusal(tmpl, idx: int, suffix: str, err: Exception) -> str:
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
                raise ValueError(copy_refusal(tmpl, idx, path.suffix, e)) from None

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
