"""Damaged input files, made reproducibly, and a checker for what ``animecolor`` does with them.

Shared by the test suite (``tests/test_fuzz.py``, ~100 cases) and ``pipelines/fuzz.py``
(1,000+ cases in worker processes).  Plain module: no pytest needed.

* :func:`make_sources` writes tiny valid clips with PyAV: mp4 (H.264 + AAC), mkv
  (H.264 + AAC + SubRip), avi (MPEG-4 Part 2 + MP2), webm (VP8 + Opus) and gif.
* :func:`damage` turns a file's bytes into a damaged copy, one of :data:`KINDS`.
* :func:`case` names case ``i`` of a seed: which source, which damage, the rng.
* :func:`run_episode` runs ``animecolor episode`` in-process on one damaged file
  and returns an :class:`Outcome`: ``ok`` (output checked), ``error`` (exit 1 with
  exactly one ``animecolor: error:`` line, output folder empty) or ``fail`` (anything
  else: a traceback, a second error line, a leftover file, a bad output ...).
"""
from __future__ import annotations

import contextlib
import io
import traceback
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

FORMATS = ("mp4", "mkv", "avi", "webm", "gif")
KINDS = ("truncate", "bitflip", "zero_block", "splice", "header_only", "empty", "random", "text")
SIDE_KINDS = ("video", "audio", "subtitle")

_CODECS = {  # container -> (video codec, pix_fmt, audio codec or None, subtitle)
    "mp4": ("libx264", "yuv420p", "aac", False),
    "mkv": ("libx264", "yuv420p", "aac", True),
    "avi": ("mpeg4", "yuv420p", "mp2", False),
    "webm": ("libvpx", "yuv420p", "libopus", False),
    "gif": ("gif", "rgb8", None, False),
}


def _frame(i: int, w: int, h: int, color: bool = False) -> np.ndarray:
    """A cartoon-ish RGB frame, gray unless ``color``: flat background, a moving outlined disc, a band."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.empty((h, w, 3), np.uint8)
    img[...] = (200, 170, 120) if color else 160
    d = np.hypot(xx - (w * (0.25 + 0.05 * (i % 10))), yy - h / 2)
    r = min(w, h) / 4
    img[d < r] = (220, 40, 40) if color else 90
    img[np.abs(d - r) < 1.5] = 10
    img[: h // 5] = (70, 90, 200) if color else 60
    return img


def make_clip(path: Path, n: int = 12, w: int = 64, h: int = 48, fps: int = 12, color: bool = False) -> Path:
    """One small valid clip (gray unless ``color``); the container, and so the codecs, come from
    ``path``'s extension."""
    vcodec, pix_fmt, acodec, subtitle = _CODECS[path.suffix[1:]]
    with av.open(str(path), "w") as out:
        vs = out.add_stream(vcodec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        if vcodec == "libx264":
            vs.options = {"preset": "ultrafast"}
        a = out.add_stream(acodec, rate=48000) if acodec else None
        if a is not None:
            a.layout = "mono"
        sub = out.add_mux_stream("subrip") if subtitle else None
        if sub is not None:
            sub.time_base = Fraction(1, 1000)
        for i in range(n):
            f = av.VideoFrame.from_ndarray(_frame(i, w, h, color), format="rgb24").reformat(format=pix_fmt)
            f.pts = i
            out.mux(vs.encode(f))
        out.mux(vs.encode(None))
        if a is not None:
            cc = a.codec_context
            fsz, rate = cc.frame_size or 1024, cc.sample_rate
            fmt = a.format.name
            for pos in range(0, int(n / fps * rate), fsz):
                sig = 0.2 * np.sin(2 * np.pi * 440 * (pos + np.arange(fsz)) / rate)
                arr = (sig * 32767).astype(np.int16) if fmt.startswith("s16") else sig.astype(np.float32)
                af = av.AudioFrame.from_ndarray(arr[None, :], format=fmt, layout="mono")
                af.sample_rate, af.pts, af.time_base = rate, pos, Fraction(1, rate)
                out.mux(a.encode(af))
            out.mux(a.encode(None))
        if sub is not None:
            for j, text in enumerate((b"Hello", b"World")):
                pkt = av.Packet(text)
                pkt.stream, pkt.time_base = sub, Fraction(1, 1000)
                pkt.pts = pkt.dts = j * 400
                pkt.duration = 300
                out.mux(pkt)
    return path


def make_sources(folder: Path) -> dict[str, bytes]:
    """The valid clips of every format in :data:`FORMATS`, as bytes (also left in ``folder``)."""
    folder.mkdir(parents=True, exist_ok=True)
    return {fmt: make_clip(folder / f"clip.{fmt}").read_bytes() for fmt in FORMATS}


def damage(data: bytes, kind: str, rng: np.random.Generator) -> bytes:
    """A damaged copy of ``data``: one of :data:`KINDS`, sized and placed by ``rng``."""
    n = len(data)
    if kind == "truncate":
        return data[: int(rng.integers(1, n))]
    if kind == "bitflip":
        buf = bytearray(data)
        for pos in rng.integers(0, n, size=int(rng.integers(1, 64))):
            buf[pos] ^= 1 << int(rng.integers(0, 8))
        return bytes(buf)
    if kind == "zero_block":
        start, size = int(rng.integers(0, n)), int(rng.integers(16, 4096))
        return data[:start] + bytes(min(size, n - start)) + data[start + size:]
    if kind == "splice":
        start = int(rng.integers(0, n))
        garbage = rng.integers(0, 256, size=int(rng.integers(8, 2048)), dtype=np.uint8).tobytes()
        keep = int(rng.integers(0, 2)) * len(garbage)  # insert, or overwrite as much as is spliced in
        return data[:start] + garbage + data[start + (len(garbage) - keep):]
    if kind == "header_only":
        return data[: int(rng.integers(8, min(n, 1024)))]
    if kind == "empty":
        return b""
    if kind == "random":
        return rng.integers(0, 256, size=int(rng.integers(1, 65536)), dtype=np.uint8).tobytes()
    if kind == "text":
        return b"".join(b"this is not a video, line %d\n" % i for i in range(int(rng.integers(1, 200))))
    raise ValueError(f"unknown damage {kind!r}")


@dataclass
class Case:
    index: int
    fmt: str
    kind: str
    rng: np.random.Generator

    @property
    def name(self) -> str:
        return f"case{self.index:05d}-{self.kind}.{self.fmt}"


def case(seed: int, index: int) -> Case:
    """Case ``index`` of ``seed``: kinds and formats taken in turn, so any 40 cases cover every pair."""
    kind = KINDS[index % len(KINDS)]
    fmt = FORMATS[(index // len(KINDS)) % len(FORMATS)]
    return Case(index, fmt, kind, np.random.default_rng([seed, index]))


def write_case(c: Case, sources: dict[str, bytes], folder: Path) -> Path:
    path = folder / c.name
    path.write_bytes(damage(sources[c.fmt], c.kind, c.rng))
    return path


# -- what animecolor must do --------------------------------------------------------------

@dataclass
class Outcome:
    status: str  # "ok", "error" or "fail"
    detail: str = ""  # the error line, or why it failed


def decodable(path: Path, thread_type: str = "AUTO") -> tuple[int, list[str]] | None:
    """Frames of the first video stream that decode (skipping corrupt packets), and the stream kinds
    an output keeps: video + every audio/subtitle stream.  None when the file does not open as video.

    ``thread_type`` "AUTO" decodes as the pipeline does (frame threads).  Near a corrupt packet a
    single-threaded decoder ("NONE") sometimes recovers a frame more, or one fewer: FFmpeg's
    error concealment differs between the two, so the frame count is compared with "AUTO"."""
    try:
        c = av.open(str(path))
    except Exception:
        return None
    with c:
        if not c.streams.video or c.streams.video[0].codec_context is None:
            return None
        kinds = ["video"] + [s.type for s in c.streams if s.type in ("audio", "subtitle")]
        vs = c.streams.video[0]
        vs.thread_type = thread_type
        n = 0
        try:
            for pkt in c.demux(vs):
                try:
                    n += len(vs.decode(pkt))
                except av.FFmpegError:
                    pass
        except av.FFmpegError:
            pass
        return n, kinds


def check_output(path: Path, src: Path) -> str:
    """'' when ``path`` plays (decodes without error) with the stream kinds of ``src`` and every
    decodable frame of it; else what is wrong."""
    try:
        with av.open(str(path)) as c:
            kinds = [s.type for s in c.streams]
            frames = sum(1 for _ in c.decode(video=0))
    except Exception as e:
        return f"output does not play: {type(e).__name__}: {e}"
    want = decodable(src)
    if want is None:
        return "succeeded on a file PyAV cannot open as video"
    if sorted(kinds) != sorted(want[1]):
        return f"output streams {kinds}, input's {want[1]}"
    if frames != want[0]:
        return f"output has {frames} frames, input {want[0]} decodable"
    return ""


def run_cli(argv: list[str]) -> tuple[int | None, str, str]:
    """``animecolor.cli.main(argv)`` in-process: (exit code or None when it raised, stderr, traceback)."""
    from animecolor.cli import main

    err = io.StringIO()
    tb = ""
    rc: int | None = None
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
        except BaseException:
            tb = traceback.format_exc()
    return rc, err.getvalue(), tb


def judge(rc: int | None, stderr: str, tb: str, out_dir: Path, out: Path | None, src: Path) -> Outcome:
    """The rules: exit 0 with a good output and nothing else in ``out_dir``, or exit 1 with exactly
    one ``animecolor: error:`` line and ``out_dir`` empty; never a traceback."""
    if tb or "Traceback" in stderr:
        last = (tb or stderr).strip().splitlines()[-1]
        return Outcome("fail", f"traceback: {last}")
    errors = [ln for ln in stderr.splitlines() if ln.startswith("animecolor: error:")]
    left = sorted(p.name for p in out_dir.iterdir())
    if rc == 0:
        if errors:
            return Outcome("fail", f"exit 0 with an error line: {errors[0]}")
        if out is None:
            return Outcome("ok")
        if left != [out.name]:
            return Outcome("fail", f"output folder holds {left}")
        why = check_output(out, src)
        return Outcome("fail", why) if why else Outcome("ok")
    if rc != 1 or len(errors) != 1:
        return Outcome("fail", f"exit {rc} with {len(errors)} error lines: {stderr.strip()[-300:]}")
    if left:
        return Outcome("fail", f"error, but the output folder holds {left}")
    return Outcome("error", errors[0])


def run_episode(src: Path, out_dir: Path, weights: Path, ext: str = ".mkv") -> Outcome:
    """``animecolor episode SRC OUT_DIR/out.EXT`` with the tiny model, judged (``out_dir`` must be empty)."""
    out = out_dir / f"out{ext}"
    argv = ["episode", str(src), str(out), "--weights", str(weights), "--device", "cpu", "--batch-size", "4",
            "--preset", "ultrafast", "--temporal", "none"]
    return judge(*run_cli(argv), out_dir, out, src)


def run_preview(src: Path, out_dir: Path, weights: Path, frames: int = 2) -> Outcome:
    """``animecolor preview SRC --frames N -o OUT_DIR/sheet.png`` with the tiny model, judged."""
    out = out_dir / "sheet.png"
    argv = ["preview", str(src), "--frames", str(frames), "-o", str(out), "--weights", str(weights),
            "--device", "cpu", "--temporal", "none"]
    rc, stderr, tb = run_cli(argv)
    res = judge(rc, stderr, tb, out_dir, None, src)
    if res.status == "ok":
        left = sorted(p.name for p in out_dir.iterdir())
        if left != [out.name]:
            return Outcome("fail", f"output folder holds {left}")
        import cv2

        img = cv2.imread(str(out))
        if img is None or img.size == 0:
            return Outcome("fail", "the preview PNG does not read back")
    return res


def run_dataset(damaged: Path, good: list[Path], out_dir: Path) -> Outcome:
    """``animecolor dataset build GOOD... DAMAGED -o OUT_DIR/set``, judged: it must build from every good
    episode and either use the damaged one or skip it with a warning naming it; a clean error only
    when nothing at all could be kept (never expected here: the good episodes have color frames)."""
    out = out_dir / "set"
    rc, stderr, tb = run_cli(["dataset", "build", *map(str, good), str(damaged), "-o", str(out), "--size", "32"])
    res = judge(rc, stderr, tb, out_dir, None, damaged)
    if res.status != "ok":
        return res if res.status == "fail" else Outcome("fail", f"no dataset: {res.detail}")
    from animecolor.dataset import read_manifest

    m = read_manifest(out)
    used = {s["path"] for s in m["sources"]}
    skipped = {s["path"] for s in m["skipped"]}
    if not {str(p) for p in good} <= used:
        return Outcome("fail", f"good episodes missing from the dataset: {sorted(used)}")
    if str(damaged) in skipped:
        if damaged.name not in "".join(stderr.split()) or "skipped" not in stderr:
            return Outcome("fail", "damaged input skipped without a warning naming it")
        return Outcome("ok", "skipped")
    if str(damaged) not in used:
        return Outcome("fail", "damaged input neither used nor listed as skipped")
    return Outcome("ok", "used")
