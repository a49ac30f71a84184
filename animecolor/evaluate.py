"""Score colorizers against held-out color video.

Each color frame is turned into what a black-and-white video would carry (its
luma plane), colorized through exactly the steps the real pipeline uses
(:mod:`animecolor.frames`), and the result is compared with the original::

    gt rgb --(luma)--> y --model_input--> gray_w --colorizer--> ab --[smoother]-->
    chroma_for(y, ab, "444") --> yuv_to_rgb(y, u, v) --> metrics vs gt rgb

Per colorizer and clip: mean CIEDE2000, PSNR and SSIM over frames, mean
colorfulness (and its ratio to the ground truth's), and CDC (temporal color
distribution consistency) of the output beside the ground truth's own CDC.

Clips stream through PyAV; memory holds one batch of frames plus the
smoother's look-ahead, whatever the clip length.  The library never prints:
pass ``progress`` to follow along.
"""
from __future__ import annotations

import math
import os
import time
from collections import deque
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import av
import cv2
import numpy as np

from . import frames as fr
from . import metrics
from .colorize import Colorizer, LutColorizer, apply_colorizer
from .temporal import TemporalSmoother

__all__ = [
    "VIDEO_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "METRIC_KEYS",
    "PSNR_CAP",
    "find_videos",
    "iter_color_frames",
    "fit_lut",
    "evaluate_video",
    "evaluate_paths",
    "score_frames",
    "to_markdown",
    "table_rows",
]

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".ts", ".mpg", ".mpeg", ".wmv", ".flv")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
#: Per-colorizer numbers in a result (frame-weighted when aggregated).
METRIC_KEYS = ("ciede2000", "psnr", "ssim", "colorfulness", "cdc")
#: PSNR of a frame is capped here (identical frames would give +inf).
PSNR_CAP = 100.0

Progress = Callable[[str, int, "int | None"], None]


# --------------------------------------------------------------------------- inputs


def _expand(paths: Iterable[str | os.PathLike], exts: Sequence[str]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in exts)
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"no such file or directory: {p}")
    return out


def find_videos(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given, directories expanded (recursively, sorted) to their video files."""
    paths = list(paths)
    vids = _expand(paths, VIDEO_EXTENSIONS)
    if not vids:
        raise ValueError(f"no video files found in {', '.join(map(str, paths))} (looked for {', '.join(VIDEO_EXTENSIONS)})")
    return vids


def _open_video(path: Path):
    try:
        container = av.open(str(path))
    except av.FFmpegError as e:
        raise OSError(f"cannot open video {path}: {e}") from None
    if not container.streams.video:
        container.close()
        raise ValueError(f"{path} has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container, stream


def iter_color_frames(
    paths: Iterable[str | os.PathLike], *, max_side: int | None = 320, stride: int = 1, max_frames: int | None = None
) -> Iterator[np.ndarray]:
    """uint8 RGB frames from color videos and image files/folders (for fitting a LUT).

    Every ``stride``-th video frame, resized so the long side is at most
    ``max_side``; at most ``max_frames`` frames in all.
    """
    files = _expand(paths, VIDEO_EXTENSIONS + IMAGE_EXTENSIONS)
    if not files:
        raise ValueError("no videos or images found to fit the lookup table on")
    n = 0
    for f in files:
        if f.suffix.lower() in IMAGE_EXTENSIONS:
            bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if bgr is None:
                raise OSError(f"cannot read image {f}")
            frames_: Iterable[np.ndarray] = [cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)]
        else:
            frames_ = _decode_rgb(f, stride)
        for rgb in frames_:
            if max_frames is not None and n >= max_frames:
                return
            yield fr.fit_long_side(rgb, max_side)
            n += 1


def _decode_rgb(path: Path, stride: int) -> Iterator[np.ndarray]:
    container, stream = _open_video(path)
    try:
        for i, frame in enumerate(container.decode(stream)):
            if i % stride == 0:
                yield frame.to_ndarray(format="rgb24")
    finally:
        container.close()


def fit_lut(
    paths: Iterable[str | os.PathLike], *, max_side: int | None = 320, stride: int = 2, max_frames: int | None = 2000
) -> LutColorizer:
    """Fit the gray-level -> mean a/b baseline on color videos and/or image folders."""
    return LutColorizer.fit(iter_color_frames(paths, max_side=max_side, stride=stride, max_frames=max_frames))


# --------------------------------------------------------------------------- scoring


class _Scores:
    """Running sums for one colorizer on one clip."""

    def __init__(self) -> None:
        self.sums = {k: 0.0 for k in ("ciede2000", "psnr", "ssim", "colorfulness")}
        self.n = 0
        self.cdc = metrics.CDCMeter()
        self.infer_seconds = 0.0

    def add(self, out: np.ndarray, gt: np.ndarray) -> None:
        self.sums["ciede2000"] += metrics.ciede2000(out, gt)
        self.sums["psnr"] += min(metrics.psnr(out, gt), PSNR_CAP)
        self.sums["ssim"] += metrics.ssim(out, gt)
        self.sums["colorfulness"] += metrics.colorfulness(out)
        self.cdc.update(out)
        self.n += 1

    def result(self, gt_colorfulness: float) -> dict:
        n = max(self.n, 1)
        res = {k: v / n for k, v in self.sums.items()}
        res["colorfulness_ratio"] = res["colorfulness"] / gt_colorfulness if gt_colorfulness > 0 else float("nan")
        res["cdc"] = self.cdc.value()
        res["frames"] = self.n
        res["infer_seconds"] = self.infer_seconds
        return res


class _Lane:
    """One colorizer on one clip: its smoother and the frames awaiting smoothed chroma."""

    def __init__(self, col: Colorizer, smoother: TemporalSmoother | None):
        self.col = col
        self.smoother = smoother
        self.pending: deque[tuple[np.ndarray, np.ndarray, float]] = deque()  # (y, gt, time) in order
        self.scores = _Scores()

    def push(self, batch: list[tuple[np.ndarray, np.ndarray, float]]) -> None:
        H, W = batch[0][0].shape
        size = self.col.working_size(W, H)
        gray = np.stack([fr.model_input(y, size) for y, _, _ in batch])
        t0 = time.perf_counter()
        ab = np.asarray(apply_colorizer(self.col, gray, [t for _, _, t in batch]), np.float32)
        self.scores.infer_seconds += time.perf_counter() - t0
        if ab.shape[0] != len(batch) or ab.ndim != 4 or ab.shape[-1] != 2:
            raise RuntimeError(f"colorizer {self.col.name!r} returned {ab.shape} for {len(batch)} frames")
        self.pending.extend(batch)
        if self.smoother is not None:
            g_ab = np.stack([fr.ab_gray_size(g, ab.shape[1:3]) for g in gray])
            ab = self.smoother.process(g_ab, ab)
        self._score(ab)

    def finish(self) -> None:
        if self.smoother is not None:
            rest = self.smoother.flush()
            if len(rest):
                self._score(rest)
        if self.pending:
            raise RuntimeError(f"temporal smoother of {self.col.name!r} dropped {len(self.pending)} frames")

    def _score(self, ab: np.ndarray) -> None:
        for a in ab:
            y, gt, _ = self.pending.popleft()
            u, v = fr.chroma_for(y, a, "444")
            self.scores.add(fr.yuv_to_rgb(y, u, v), gt)


def _luma(frame: "av.VideoFrame", rgb: np.ndarray, resized: bool) -> np.ndarray:
    """The luma plane a B&W copy of this frame would carry (limited range BT.601)."""
    full_range = frame.color_range == 2  # AVCOL_RANGE_JPEG
    if resized or full_range:
        return fr.rgb_to_y(rgb)
    plane = frame.reformat(format="yuv420p").planes[0]
    buf = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
    return np.ascontiguousarray(buf[:, : plane.width])


def evaluate_video(
    path: str | os.PathLike,
    colorizers: Mapping[str, Colorizer],
    *,
    max_frames: int | None = None,
    stride: int = 1,
    max_side: int | None = 640,
    batch_size: int = 8,
    smoother_factory: Callable[[], TemporalSmoother] | None = None,
    progress: Progress | None = None,
    per_clip: Callable[[Path, np.ndarray], Mapping[str, Colorizer] | tuple[Mapping[str, Colorizer], Sequence[float]]]
    | None = None,
) -> dict:
    """Colorize the luma of a color clip with each colorizer and score it against the clip.

    ``stride``: evaluate every k-th frame (CDC then compares frames k, 2k, 4k apart).
    ``max_side``: resize the ground truth so its long side is at most this
    (``None``/0: full size); the luma is then derived from the resized RGB.
    ``smoother_factory``: builds one temporal smoother per colorizer and clip.
    ``progress(clip_name, frames_done, frames_expected_or_None)`` after each batch.
    ``per_clip(path, first_rgb)``: more colorizers built from the clip's first
    frame (its color original, at the scoring size), e.g. a colored keyframe;
    with it, the first frame is used only for that and every colorizer is
    scored on the frames after it.  ``per_clip`` may also return
    ``(colorizers, times)``: the frames at those times (seconds from the first
    frame; keyframes taken from the clip itself) are not scored either.

    Returns ``{"path", "frames", "size": [w, h], "source_size", "stride",
    "seconds", "ground_truth": {"colorfulness", "cdc"}, "colorizers": {name:
    {"ciede2000", "psnr", "ssim", "colorfulness", "colorfulness_ratio", "cdc",
    "frames", "infer_seconds"}}}``.
    """
    if not colorizers:
        raise ValueError("no colorizers to evaluate")
    if stride < 1:
        raise ValueError(f"--stride must be >= 1, got {stride}")
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    path = Path(path)
    t_start = time.perf_counter()
    container, stream = _open_video(path)
    src_size = [stream.codec_context.width, stream.codec_context.height]
    expected = None
    if stream.frames:
        expected = (stream.frames + stride - 1) // stride
    if max_frames is not None:
        expected = min(expected, max_frames) if expected is not None else max_frames

    lanes = {name: _Lane(col, smoother_factory() if smoother_factory else None) for name, col in colorizers.items()}
    t_first: float | None = None
    gt_color = 0.0
    gt_cdc = metrics.CDCMeter()
    n = 0
    size: list[int] = [0, 0]
    batch: list[tuple[np.ndarray, np.ndarray, float]] = []
    unscored: Sequence[float] = ()

    def flush_batch() -> None:
        for lane in lanes.values():
            lane.push(batch)
        batch.clear()
        if progress is not None:
            progress(path.name, n, expected)

    try:
        for i, frame in enumerate(container.decode(stream)):
            if max_frames is not None and n >= max_frames:
                break
            if i % stride:
                continue
            rgb = frame.to_ndarray(format="rgb24")
            gt = fr.fit_long_side(rgb, max_side)
            resized = gt.shape != rgb.shape
            y = _luma(frame, gt, resized)
            if y.shape != gt.shape[:2]:  # odd sizes etc.: stay consistent with the ground truth
                y = fr.rgb_to_y(gt)
            size = [gt.shape[1], gt.shape[0]]
            t = float(frame.time) if frame.time is not None else i / float(stream.average_rate or 24)
            t_first = t if t_first is None else t_first
            if per_clip is not None and i == 0:
                more = per_clip(path, gt)
                more, unscored = more if isinstance(more, tuple) else (more, ())
                for name, col in more.items():
                    lanes[name] = _Lane(col, smoother_factory() if smoother_factory else None)
                continue
            if any(abs(t - t_first - u) < 1e-4 for u in unscored):  # a keyframe taken from this frame
                continue
            gt_color += metrics.colorfulness(gt)
            gt_cdc.update(gt)
            batch.append((y, gt, t - t_first))
            n += 1
            if len(batch) >= batch_size:
                flush_batch()
        if batch:
            flush_batch()
        for lane in lanes.values():
            lane.finish()
    except av.FFmpegError as e:
        raise OSError(f"cannot decode {path}: {e}") from None
    finally:
        container.close()
    if n == 0:
        raise ValueError(f"no frames decoded from {path}")

    gt_mean = gt_color / n
    return {
        "path": str(path),
        "frames": n,
        "size": size,
        "source_size": src_size,
        "stride": stride,
        "seconds": time.perf_counter() - t_start,
        "ground_truth": {"colorfulness": gt_mean, "cdc": gt_cdc.value()},
        "colorizers": {name: lane.scores.result(gt_mean) for name, lane in lanes.items()},
    }


def score_frames(col: Colorizer, frames: np.ndarray, batch: int = 16) -> dict:
    """Score a colorizer on same-size uint8 RGB still frames ``(N, H, W, 3)`` (e.g. a dataset's val split).

    Each frame goes the way ``episode`` treats it (luma -> working size -> colorizer
    -> chroma beside the source luma -> RGB).  Returns ``{"ciede2000": mean over
    frames, "colorfulness_ratio": mean output / mean ground-truth colorfulness, "n"}``.
    """
    if len(frames) == 0:
        raise ValueError("no frames to score")
    H, W = frames.shape[1:3]
    size = col.working_size(W, H)
    d, cf_o, cf_t = [], [], []
    for i in range(0, len(frames), batch):
        rgb = frames[i : i + batch]
        ys = [fr.rgb_to_y(f) for f in rgb]
        ab = col(np.stack([fr.model_input(y, size) for y in ys]))
        for y, a, t in zip(ys, ab, rgb):
            u, v = fr.chroma_for(y, a, "444")
            out = fr.yuv_to_rgb(y, u, v)
            d.append(metrics.ciede2000(out, t))
            cf_o.append(metrics.colorfulness(out))
            cf_t.append(metrics.colorfulness(t))
    return {
        "ciede2000": float(np.mean(d)),
        "colorfulness_ratio": float(np.mean(cf_o) / max(float(np.mean(cf_t)), 1e-6)),
        "n": len(d),
    }


def _weighted(items: list[tuple[float, int]]) -> float:
    items = [(v, w) for v, w in items if not math.isnan(v) and w > 0]
    total = sum(w for _, w in items)
    return sum(v * w for v, w in items) / total if total else float("nan")


def evaluate_paths(
    paths: Iterable[str | os.PathLike], colorizers: Mapping[str, Colorizer], **kwargs
) -> dict:
    """:func:`evaluate_video` on every clip (directories expanded) and a frame-weighted overall.

    Returns ``{"clips": [clip results], "overall": {"frames", "ground_truth",
    "colorizers"}}``; keyword arguments go to :func:`evaluate_video`.
    """
    clips = [evaluate_video(p, colorizers, **kwargs) for p in find_videos(paths)]
    frames = sum(c["frames"] for c in clips)
    names = list(clips[0]["colorizers"]) if clips else list(colorizers)
    gt_colorfulness = _weighted([(c["ground_truth"]["colorfulness"], c["frames"]) for c in clips])
    overall_cols = {}
    for name in names:
        res = {
            k: _weighted([(c["colorizers"][name][k], c["colorizers"][name]["frames"]) for c in clips])
            for k in METRIC_KEYS
        }
        res["colorfulness_ratio"] = res["colorfulness"] / gt_colorfulness if gt_colorfulness > 0 else float("nan")
        res["frames"] = sum(c["colorizers"][name]["frames"] for c in clips)
        res["infer_seconds"] = sum(c["colorizers"][name]["infer_seconds"] for c in clips)
        overall_cols[name] = res
    return {
        "clips": clips,
        "overall": {
            "frames": frames,
            "seconds": sum(c["seconds"] for c in clips),
            "ground_truth": {
                "colorfulness": gt_colorfulness,
                "cdc": _weighted([(c["ground_truth"]["cdc"], c["frames"]) for c in clips]),
            },
            "colorizers": overall_cols,
        },
    }


# --------------------------------------------------------------------------- tables

TABLE_HEADER = ("colorizer", "ΔE00 ↓", "PSNR ↑", "SSIM ↑", "colorful (÷orig)", "CDC ↓", "ms/frame")


def _fmt(v: float, spec: str) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def table_rows(result: Mapping) -> list[tuple[str, ...]]:
    """Rows (strings) of one clip result or an ``overall`` block; last row is the ground truth."""
    rows = []
    for name, r in result["colorizers"].items():
        ms = 1000.0 * r["infer_seconds"] / r["frames"] if r.get("frames") else float("nan")
        rows.append(
            (
                name,
                _fmt(r["ciede2000"], ".2f"),
                _fmt(r["psnr"], ".2f"),
                _fmt(r["ssim"], ".3f"),
                f"{_fmt(r['colorfulness'], '.1f')} ({_fmt(r['colorfulness_ratio'], '.2f')})",
                _fmt(r["cdc"], ".4f"),
                _fmt(ms, ".1f"),
            )
        )
    gt = result["ground_truth"]
    rows.append(("original", "0", "∞", "1", f"{_fmt(gt['colorfulness'], '.1f')} (1.00)", _fmt(gt["cdc"], ".4f"), ""))
    return rows


def to_markdown(report: Mapping, notes: Sequence[str] = ()) -> str:
    """Markdown tables (overall first, then each clip) of an :func:`evaluate_paths` report."""

    def table(result: Mapping) -> list[str]:
        lines = ["| " + " | ".join(TABLE_HEADER) + " |", "|" + "---|" * len(TABLE_HEADER)]
        lines += ["| " + " | ".join(row) + " |" for row in table_rows(result)]
        return lines

    ov = report["overall"]
    out = [f"### Overall ({len(report['clips'])} clips, {ov['frames']} frames)", ""] + table(ov) + [""]
    for c in report["clips"]:
        w, h = c["size"]
        out += [f"### {Path(c['path']).name} ({c['frames']} frames at {w}x{h}, stride {c['stride']})", ""]
        out += table(c) + [""]
    if notes:
        out += [f"- {n}" for n in notes] + [""]
    out += [
        "ΔE00: mean CIEDE2000 color difference to the original (lower is better); PSNR in dB. "
        "Colorfulness: Hasler & Süsstrunk 2003, ratio to the original in brackets. "
        "CDC: color distribution consistency (Liu et al. 2021), mean base-2 Jensen-Shannon "
        "divergence of RGB histograms between frames 1, 2 and 4 evaluated frames apart (lower is steadier; "
        "compare with the ground truth's). ms/frame: colorizer inference only.",
        "",
    ]
    return "\n".join(out)
