"""One long video across workers: split at clean keyframes near scene cuts, join by packet copy.

A *clean* keyframe is one where the video can be cut without re-encoding and
without losing a frame: no packet before it (in decode order) is shown at or
after it, and none from it on is shown before it (closed GOPs; x264's default).
:func:`plan_segments` scans the packets (demux only, no decoding), aims the
``n - 1`` cuts at equal frame counts and, among the clean keyframes near each
aim, prefers a scene cut (decoding only the frames around the candidates), where
the temporal smoother restarts anyway.  :func:`cut_segment` copies one
segment's video packets into a NUT file (it takes any codec), which the
ordinary episode pipeline colorizes;
:func:`join_segments` copies the colorized segments' packets, in order, into one
file, puts the source's own frame times back, and remuxes the source's audio
and subtitle streams once, interleaved by time.
"""
from __future__ import annotations

import heapq
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import av
import numpy as np

__all__ = ["Segment", "plan_segments", "cut_segment", "join_segments", "SEGMENT_EXT"]

SEGMENT_EXT = ".nut"  # intermediate container: any codec; the join restores the source's timestamps
_CANDIDATES = 4  # clean keyframes tried for a scene cut near each aimed split
_MAX_GOP_SCAN = 600  # packets decoded at most to test one candidate for a cut


@dataclass(frozen=True)
class Segment:
    """Packets ``[first, end)`` (decode order) of the video stream; shown from ``start_pts`` on."""

    index: int
    first: int
    end: int
    start_pts: int
    scene_cut: bool  # the segment starts at a scene cut (always True for the first)

    @property
    def packets(self) -> int:
        return self.end - self.first


def _video_packets(path: Path) -> tuple[list[tuple[int, int, bool]], Fraction]:
    """(pts, dts, keyframe) of every video packet with data, in decode order."""
    with av.open(str(path)) as c:
        if not c.streams.video:
            raise ValueError(f"no video stream in {path}")
        vs = c.streams.video[0]
        out = []
        for p in c.demux(vs):
            if p.size == 0:
                continue
            if p.pts is None:
                raise ValueError(f"{path} has video packets without timestamps; it cannot be split (use --segments 1)")
            out.append((p.pts, p.dts if p.dts is not None else p.pts, bool(p.is_keyframe)))
        return out, vs.time_base


def _clean_keyframes(pk: Sequence[tuple[int, int, bool]]) -> list[int]:
    """Indices k > 0 of keyframes where the packet list splits into two closed halves."""
    n = len(pk)
    max_before = np.maximum.accumulate([p[0] for p in pk])
    min_after = np.minimum.accumulate([p[0] for p in pk][::-1])[::-1]
    return [k for k in range(1, n) if pk[k][2] and max_before[k - 1] < pk[k][0] and min_after[k] >= pk[k][0]]


def _small_gray(frame: av.VideoFrame) -> np.ndarray:
    import cv2

    y = frame.to_ndarray(format="gray")
    h, w = y.shape
    s = 128 / max(h, w)
    return cv2.resize(y, (max(8, round(w * s)), max(8, round(h * s))), interpolation=cv2.INTER_AREA)


def _is_scene_cut(path: Path, pk, prev_key: int, k: int) -> bool:
    """Decode packets ``[prev_key, k]`` and test the last frame shown before packet k against packet k's frame."""
    from .temporal import is_cut

    if k - prev_key > _MAX_GOP_SCAN:
        return False
    want = {pk[k][0]}
    before = max(pk[i][0] for i in range(prev_key, k))
    want.add(before)
    got: dict[int, np.ndarray] = {}
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        c.seek(pk[prev_key][0], stream=vs, backward=True, any_frame=False)
        for frame in c.decode(vs):
            if frame.pts in want:
                got[frame.pts] = _small_gray(frame)
            if len(got) == 2 or (frame.pts is not None and frame.pts > pk[k][0]):
                break
    if len(got) < 2:
        return False
    return is_cut(got[before], got[pk[k][0]])


def plan_segments(path: str | os.PathLike, n: int) -> list[Segment]:
    """Split ``path``'s video into at most ``n`` segments at clean keyframes, preferring scene cuts.

    Fewer segments come back when no clean keyframe lies within a third of a
    segment of an aimed cut (a single GOP cannot be split at all).  Raises ``ValueError`` for a video that cannot be split.
    """
    path = Path(path)
    if n < 1:
        raise ValueError(f"segments must be >= 1, got {n}")
    pk, _ = _video_packets(path)
    if not pk:
        raise ValueError(f"no video packets in {path}")
    clean = _clean_keyframes(pk) if n > 1 else []
    cuts: list[tuple[int, bool]] = []
    used: set[int] = set()
    for j in range(1, n):
        aim = j * len(pk) / n
        # within a third of a segment of the aim; none there: one segment fewer (never a tiny segment)
        near = sorted((c for c in clean if c not in used and abs(c - aim) <= len(pk) / (3 * n)),
                      key=lambda c: abs(c - aim))[:_CANDIDATES]
        if not near:
            continue
        pick, is_cut = near[0], False
        for c in near:
            prev_key = max((i for i in range(c) if pk[i][2]), default=0)
            if _is_scene_cut(path, pk, prev_key, c):
                pick, is_cut = c, True
                break
        used.add(pick)
        cuts.append((pick, is_cut))
    cuts = sorted(set(cuts))
    bounds = [(0, True)] + cuts
    segs = []
    for i, (first, cut) in enumerate(bounds):
        end = bounds[i + 1][0] if i + 1 < len(bounds) else len(pk)
        if end > first:
            segs.append(Segment(len(segs), first, end, pk[first][0], cut))
    return segs


def cut_segment(src: str | os.PathLike, seg: Segment, dst: str | os.PathLike) -> int:
    """Copy the video packets of ``seg`` from ``src`` into ``dst`` (NUT, timestamps unchanged); returns packets."""
    src, dst = Path(src), Path(dst)
    n = 0
    with av.open(str(src)) as c:
        vs = c.streams.video[0]
        with av.open(str(dst), "w", format="nut") as out:
            os_ = out.add_stream_from_template(vs)
            os_.time_base = vs.time_base
            i = 0
            for p in c.demux(vs):
                if p.size == 0:
                    continue
                if i >= seg.end:
                    break
                if i >= seg.first:
                    p.stream = os_
                    out.mux(p)
                    n += 1
                i += 1
    return n


def _packets(path: Path, streams: Sequence[int]) -> Iterator[av.Packet]:
    if not streams:  # demux([]) would mean every stream
        return
    with av.open(str(path)) as c:
        for p in c.demux([c.streams[i] for i in streams]):
            if p.size:
                yield p


def _seconds(p: av.Packet) -> float:
    t = p.dts if p.dts is not None else p.pts
    return float(t * p.time_base) if t is not None else -1e18


def _decode_delay(pts: Sequence[int], order: Sequence[int]) -> int:
    """Smallest d with ``sorted_pts[m - d] <= pts[m]`` for every packet m in decode order."""
    d = 0
    while any(order[m] < m - d for m in range(d, len(order))):
        d += 1
    return d


def _retimed(parts: Sequence[Path], seg_pts: Sequence[Sequence[int]], tb: Fraction) -> Iterator[av.Packet]:
    """The parts' video packets in order, with the source's frame times (``seg_pts``, time base ``tb``).

    Each part's muxer may shift or rescale its timestamps (NUT changes the time
    base, and moves the first decode time to 0); the pipeline keeps every frame's
    time, so the k-th earliest packet of a part is the k-th earliest frame of its
    segment.  Decode times are rebuilt the way an encoder sets them: the sorted
    frame times, ``d`` packets behind (``d`` = the largest B-frame delay).
    """
    ranked: list[tuple[Path, list[int]]] = []
    order: list[int] = []  # rank of each packet's pts over the whole video, in decode order
    base = 0
    extradata = None
    for part, want in zip(parts, seg_pts):
        with av.open(str(part)) as c:
            vs = c.streams.video[0]
            if extradata is None:
                extradata = vs.codec_context.extradata
            elif vs.codec_context.extradata != extradata:
                raise RuntimeError(f"segment {part.name} was encoded with other codec parameters; cannot join")
            got = [p.pts for p in c.demux(vs) if p.size]
        if len(got) != len(want) or None in got:
            raise RuntimeError(f"segment {part.name} has {len(got)} frames where its source has {len(want)} "
                               "(damaged packets?); colorize this file with --segments 1")
        rank = {t: i for i, t in enumerate(sorted(got))}
        order.extend(base + rank[t] for t in got)
        base += len(want)
        ranked.append((part, [rank[t] for t in got]))
    times = sorted(t for seg in seg_pts for t in seg)
    d = _decode_delay(times, order)
    step = times[1] - times[0] if len(times) > 1 else 1
    m = 0
    for (part, ranks), want in zip(ranked, seg_pts):
        want_sorted = sorted(want)
        with av.open(str(part)) as c:
            packets = (p for p in c.demux(c.streams.video[0]) if p.size)
            for p, r in zip(packets, ranks):
                p.pts = want_sorted[r]
                p.dts = times[m - d] if m >= d else times[0] - (d - m) * step
                p.time_base = tb
                m += 1
                yield p


def _rotation(path: Path) -> float:
    with av.open(str(path)) as c:
        for frame in c.decode(c.streams.video[0]):
            return float(getattr(frame, "rotation", 0.0) or 0.0)
    return 0.0


def join_segments(
    src: str | os.PathLike,
    parts: Sequence[str | os.PathLike],
    dst: str | os.PathLike,
    side_streams: Sequence[int] = (),
    segments: Sequence[Segment] | None = None,
) -> int:
    """Write ``dst``: the video packets of ``parts`` in order, plus ``src``'s streams ``side_streams`` by copy.

    ``segments``: the plan the parts were cut by (required).  Every frame gets the
    source's own timestamp; returns the number of video packets written.  Every part must
    hold the same codec parameters (they were encoded with the same settings).
    """
    src, dst = Path(src), Path(dst)
    parts = [Path(p) for p in parts]
    if not parts or segments is None or len(segments) != len(parts):
        raise ValueError("join_segments needs one colorized part per segment of the plan")
    from .writers import copy_refusal  # same message as the episode pipeline

    pk, tb = _video_packets(src)
    seg_pts = [[pk[i][0] for i in range(s.first, s.end)] for s in segments]
    rotation = _rotation(src)
    first = av.open(str(parts[0]))
    inp = av.open(str(src))
    n = 0
    try:
        tmpl = first.streams.video[0]
        with av.open(str(dst), "w") as out:
            vs = out.add_stream_from_template(tmpl)
            vs.time_base = tb
            if rotation:
                vs.set_display_rotation(rotation)
            side = {}
            for idx in side_streams:
                try:
                    side[idx] = out.add_stream_from_template(inp.streams[idx])
                except (av.FFmpegError, ValueError) as e:
                    raise ValueError(copy_refusal(inp.streams[idx], idx, dst.suffix, e)) from None
            merged = heapq.merge(
                ((_seconds(p), 0, p) for p in _retimed(parts, seg_pts, tb)),
                ((_seconds(p), 1, p) for p in _packets(src, list(side))),
                key=lambda t: (t[0], t[1]),
            )
            for _, kind, p in merged:
                if kind == 0:
                    p.stream = vs
                    n += 1
                else:
                    p.stream = side[p.stream_index]
                out.mux(p)
    finally:
        first.close()
        inp.close()
    return n
