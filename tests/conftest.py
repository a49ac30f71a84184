"""Shared fixtures: tiny synthetic clips made with PyAV, and a tiny *random* model.

``make_clip`` draws moving flat-colored shapes with outlines (a cartoon in
miniature) and can add audio tracks, a subtitle track, variable frame rate,
and store it as B&W with noisy chroma (B&W content in a color container).
"""
from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from animecolor.model import ModelConfig, ResidualColorizer, save_model


def clip_frame(i: int, w: int, h: int, gray: bool = True) -> np.ndarray:
    """Frame ``i`` of the synthetic cartoon: uint8 RGB ``(h, w, 3)``."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.empty((h, w, 3), np.uint8)
    img[...] = (200, 170, 120)
    cx = int(w * (0.3 + 0.4 * (i % 10) / 10))
    cy = h // 2
    r = max(3, min(w, h) // 4)
    d = np.hypot(xx - cx, yy - cy)
    img[d < r] = (220, 40, 40)
    img[np.abs(d - r) < 1.5] = (10, 10, 10)  # outline
    img[: h // 5, :] = (70, 90, 200)
    if gray:
        g = (0.299 * img[..., 0] + 0.587 * img[..., 1] + 0.114 * img[..., 2]).astype(np.uint8)
        img = np.repeat(g[..., None], 3, axis=2)
    return img


def write_rgb_clip(path: str | Path, frames, fps: int = 12, pix_fmt: str = "bgr0") -> Path:
    """Write uint8 RGB frames losslessly (FFV1) so decoded colors equal the given ones."""
    path = Path(path)
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=fps)
        first = True
        for f in frames:
            if first:
                s.height, s.width = f.shape[:2]
                s.pix_fmt = pix_fmt
                first = False
            for pkt in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


def make_clip(
    path: str | Path,
    n: int = 12,
    w: int = 96,
    h: int = 64,
    fps: int = 12,
    audio_tracks: int = 0,
    subtitle: bool = False,
    vfr: bool = False,
    codec: str = "libx264",
    gray: bool = True,
    chroma_noise: int = 0,
    pix_fmt: str | None = None,
    rotation: int = 0,
    sar: Fraction | None = None,
    color_tag: int | None = None,
) -> Path:
    """Write a synthetic clip and return its path.

    vfr: irregular frame durations (time base 1/1000).  chroma_noise: +-noise
    added to U/V around 128 (B&W stored as yuv420p with residual chroma).
    audio_tracks: 1 s-ish sine tracks (AAC, then MP2) covering the video.
    subtitle: one SubRip track (only in .mkv).  rotation: display rotation
    (degrees, counter-clockwise) in the container; sar: sample aspect ratio.
    color_tag: tag the stream's matrix, primaries and transfer with this libavutil
    code (1 = BT.709); untagged by default.
    """
    path = Path(path)
    rng = np.random.default_rng(0)
    out = av.open(str(path), "w")
    if path.suffix == ".gif":
        codec, pix_fmt = "gif", "rgb8"
    vs = out.add_stream(codec, rate=fps)
    vs.width, vs.height = w, h
    vs.pix_fmt = pix_fmt or ("yuv420p" if codec not in ("mjpeg",) else "yuvj420p")
    if codec == "libx264":
        vs.options = {"preset": "ultrafast", "crf": "10"}
    if rotation:
        vs.set_display_rotation(rotation)
    if sar is not None:
        vs.codec_context.sample_aspect_ratio = sar
    if color_tag is not None:
        cc = vs.codec_context
        cc.colorspace = cc.color_primaries = cc.color_trc = color_tag
    tb = Fraction(1, 1000) if vfr else Fraction(1, fps)
    vs.codec_context.time_base = tb
    if vfr:
        vs.time_base = tb
    audio = []
    for k in range(audio_tracks):
        a = out.add_stream("aac" if k == 0 else "mp2", rate=48000 if k == 0 else 44100)
        a.layout = "mono" if k == 0 else "stereo"
        audio.append(a)
    sub = out.add_mux_stream("subrip") if subtitle else None
    if sub is not None:
        sub.time_base = Fraction(1, 1000)

    times = []
    t = 0
    for i in range(n):
        times.append(t)
        t += (1000 // fps) * (1 + (i % 3)) if vfr else 1
    for i in range(n):
        rgb = clip_frame(i, w, h, gray)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        if codec != "gif":
            frame = frame.reformat(format=vs.pix_fmt)
            if chroma_noise:
                for p in frame.planes[1:]:
                    buf = np.frombuffer(memoryview(p), np.uint8).reshape(-1, p.line_size)
                    noise = rng.integers(-chroma_noise, chroma_noise + 1, size=buf.shape)
                    buf[...] = np.clip(128 + noise, 0, 255).astype(np.uint8)
        frame.pts = times[i]
        frame.time_base = tb
        for pkt in vs.encode(frame):
            out.mux(pkt)
    for pkt in vs.encode(None):
        out.mux(pkt)
    duration = float((times[-1] + (1000 // fps if vfr else 1)) * tb)
    for k, a in enumerate(audio):
        rate = a.codec_context.sample_rate
        chans = 1 if k == 0 else 2
        fsz = a.codec_context.frame_size or 1024
        total = int(duration * rate)
        pos = 0
        while pos < total:
            tt = (pos + np.arange(fsz)) / rate
            sig = (0.3 * np.sin(2 * math.pi * (440 + 220 * k) * tt)).astype(np.float32)
            if a.format.name.startswith("s16"):
                sig = (sig * 32767).astype(np.int16)
            if a.format.name.endswith("p"):
                arr = np.repeat(sig[None, :], chans, axis=0)
            else:
                arr = np.repeat(sig[:, None], chans, axis=1).reshape(1, -1)
            af = av.AudioFrame.from_ndarray(arr, format=a.format.name, layout=a.layout.name)
            af.sample_rate = rate
            af.pts = pos
            af.time_base = Fraction(1, rate)
            for pkt in a.encode(af):
                out.mux(pkt)
            pos += fsz
        for pkt in a.encode(None):
            out.mux(pkt)
    if sub is not None:
        for j, text in enumerate([b"Hello", b"World"]):
            pkt = av.Packet(text)
            pkt.stream = sub
            pkt.time_base = Fraction(1, 1000)
            pkt.pts = pkt.dts = int(j * duration * 500)
            pkt.duration = 300
            out.mux(pkt)
    out.close()
    return path


class ConstColorizer:
    """Test double: predicts the same a/b everywhere (shows where color lands)."""

    output_stride = 2
    name = "const"

    def __init__(self, a: float = 40.0, b: float = 30.0, long_side: int = 64):
        self.ab = np.array([a, b], np.float32)
        self.long_side = long_side
        self.calls = 0

    def working_size(self, width: int, height: int) -> tuple[int, int]:
        from animecolor.colorize import working_size

        return working_size(width, height, self.long_side)

    def __call__(self, gray: np.ndarray) -> np.ndarray:
        self.calls += 1
        n, h, w = gray.shape
        return np.broadcast_to(self.ab, (n, h // 2, w // 2, 2)).astype(np.float32)


def decode_planes(path: str | Path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Every frame of ``path`` as 8-bit (Y, U, V) planes (U/V at their stored size)."""
    from animecolor.io import plane_array

    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            if f.format.name not in ("yuv420p", "yuv444p", "yuvj420p"):
                f = f.reformat(format="yuv420p")
            out.append(tuple(plane_array(p).copy() for p in f.planes[:3]))
    return out


def side_packets(path: str | Path) -> dict[int, list[tuple[bytes, float | None]]]:
    """Audio/subtitle packets per stream order (payload, pts in seconds)."""
    res: dict[int, list] = {}
    with av.open(str(path)) as c:
        order = {s.index: k for k, s in enumerate(s for s in c.streams if s.type in ("audio", "subtitle"))}
        if not order:
            return res
        for p in c.demux([s for s in c.streams if s.type in ("audio", "subtitle")]):
            if p.size == 0 or p.dts is None:
                continue
            res.setdefault(order[p.stream_index], []).append(
                (bytes(p), float(p.pts * p.time_base) if p.pts is not None else None)
            )
    return res


@pytest.fixture(scope="session", autouse=True)
def _user_cache(tmp_path_factory):
    """Exports and reference adaptations go to a temporary cache, not the user's ~/.cache."""
    import os

    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


@pytest.fixture(scope="session")
def tiny_random_model(tmp_path_factory) -> Path:
    """A tiny, randomly initialised checkpoint (NOT the trained model): for plumbing tests only."""
    import torch

    torch.manual_seed(0)
    model = ResidualColorizer(ModelConfig(decoder_widths=[8, 8, 8, 8, 8], working_long_side=64))
    path = tmp_path_factory.mktemp("weights") / "tiny_random_model.safetensors"
    save_model(model, path, info={"note": "tiny random model for tests"})
    return path


@pytest.fixture
def clip(tmp_path):
    """``clip(name, **make_clip_kwargs)`` -> path of a synthetic clip in tmp_path."""

    def _make(name: str = "in.mp4", **kw) -> Path:
        return make_clip(tmp_path / name, **kw)

    return _make
