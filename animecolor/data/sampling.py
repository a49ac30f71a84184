"""Frame selection: scene cuts, border crop, blank/low-color/duplicate filters, spread sampling.

Every decoded frame gets exactly one fate, counted in :attr:`SceneSampler.drops`
or kept:

``blank``       black/white/flat frame (fades, flashes) or nothing left after the border crop
``low_color``   almost no chroma (title cards, B&W inserts): 90th percentile of Lab chroma < ``min_chroma``
``hold``        near-identical to the previous frame (a drawing held on twos/threes)
``duplicate``   near-identical to a frame already collected (reused shots, static scenes)
``not_sampled`` skipped by the per-scene sampling stride
``scene_cap``   a candidate beyond ``max_per_scene`` (the kept ones are spread across the scene)

Scene cuts come from PySceneDetect's :class:`~scenedetect.ContentDetector`
(HSV + edge change between consecutive frames) run on the small analysis copy.
Duplicates are judged on a 16x16 RGB thumbnail (mean absolute difference in
0..255 units): cheap, and robust to film grain and compression noise.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import cv2
import numpy as np
from scenedetect import ContentDetector, FrameTimecode
from scenedetect.detector import FlashFilter

from ..color import rgb_to_lab
from ..frames import fit_long_side
from .sources import SourceFrame

__all__ = ["SelectParams", "content_box", "crop_resize", "thumbnail", "SceneSampler", "KeptFrame", "ThumbIndex", "DROP_REASONS"]

DROP_REASONS = ("blank", "low_color", "hold", "duplicate", "not_sampled", "scene_cap", "max_frames")


@dataclass(frozen=True)
class SelectParams:
    """Thresholds of the frame selection (recorded in the manifest)."""

    size: int = 256
    max_per_scene: int = 8
    cut_threshold: float = 27.0  # ContentDetector threshold
    min_scene_frames: int = 8
    dark_level: int = 40  # luma below which a border row/column counts as dark
    border_inset: float = 0.02  # extra crop on every side once a border is found (rounded gate corners)
    min_luma_std: float = 8.0
    min_chroma: float = 5.0
    hold_diff: float = 1.0
    dup_diff: float = 3.0
    stride: int = 2
    thumb: int = 16


def content_box(rgb: np.ndarray, dark_level: int = 40, inset: float = 0.02, max_side: float = 0.25) -> tuple[float, float, float, float]:
    """Picture area ``(x0, y0, x1, y1)`` as fractions, without dark letterbox/pillarbox/gate borders.

    A row (column) is border when at least 90% of its pixels are darker than
    ``dark_level``; borders are peeled from each edge, at most ``max_side`` per
    side.  When any border is found, ``inset`` more is cropped on every side
    (film gates have rounded, uneven corners).
    """
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    dark = gray < dark_level
    h, w = gray.shape
    rows = dark.mean(axis=1) >= 0.9
    cols = dark.mean(axis=0) >= 0.9

    def peel(flags: np.ndarray, n: int) -> tuple[int, int]:
        lim = int(n * max_side)
        a = 0
        while a < lim and flags[a]:
            a += 1
        b = 0
        while b < lim and flags[n - 1 - b]:
            b += 1
        return a, b

    top, bottom = peel(rows, h)
    left, right = peel(cols, w)
    x0, y0, x1, y1 = left / w, top / h, 1 - right / w, 1 - bottom / h
    if top or bottom or left or right:
        x0, y0, x1, y1 = x0 + inset, y0 + inset, x1 - inset, y1 - inset
    return x0, y0, x1, y1


def _crop(rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    h, w = rgb.shape[:2]
    x0, y0 = int(round(box[0] * w)), int(round(box[1] * h))
    x1, y1 = max(x0 + 1, int(round(box[2] * w))), max(y0 + 1, int(round(box[3] * h)))
    return rgb[y0:y1, x0:x1]


def crop_resize(rgb: np.ndarray, box: tuple[float, float, float, float], size: int) -> np.ndarray:
    """Crop to ``box``, resize the short side to ``size`` (area filter), center-crop ``size x size``."""
    pic = _crop(rgb, box)
    h, w = pic.shape[:2]
    scale = size / min(h, w)
    nw, nh = max(size, int(round(w * scale))), max(size, int(round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    pic = cv2.resize(pic, (nw, nh), interpolation=interp)
    x, y = (nw - size) // 2, (nh - size) // 2
    return np.ascontiguousarray(pic[y : y + size, x : x + size])


def thumbnail(rgb: np.ndarray, n: int = 16) -> np.ndarray:
    """Flattened float32 ``n x n`` RGB thumbnail for duplicate checks."""
    return cv2.resize(rgb, (n, n), interpolation=cv2.INTER_AREA).astype(np.float32).reshape(-1)


class ThumbIndex:
    """Thumbnails of all collected frames (for cross-scene and cross-source duplicates)."""

    def __init__(self, dim: int) -> None:
        self._arr = np.zeros((0, dim), np.float32)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def add(self, thumbs: np.ndarray) -> None:
        thumbs = np.asarray(thumbs, np.float32).reshape(-1, self._arr.shape[1])
        need = self._n + len(thumbs)
        if need > len(self._arr):
            grown = np.zeros((max(need, 2 * len(self._arr), 64), self._arr.shape[1]), np.float32)
            grown[: self._n] = self._arr[: self._n]
            self._arr = grown
        self._arr[self._n : need] = thumbs
        self._n = need

    def min_diff(self, thumb: np.ndarray) -> float:
        if self._n == 0:
            return float("inf")
        return float(np.abs(self._arr[: self._n] - thumb).mean(axis=1).min())


@dataclass
class KeptFrame:
    rgb: np.ndarray  # uint8 (size, size, 3)
    thumb: np.ndarray
    timestamp_s: float
    scene: int  # scene number within the source
    name: str = ""


@dataclass
class _Scene:
    number: int
    start_s: float
    cands: list[KeptFrame] = field(default_factory=list)
    stride: int = 1
    since: int = 10**9  # frames since the last candidate attempt (first frame is tried)


class SceneSampler:
    """Streams the frames of one source and collects the frames to keep.

    ``push`` every frame in order, then ``finish``; kept frames are appended to
    :attr:`kept` scene by scene (drain it between calls to bound memory).
    ``known`` holds thumbnails of frames kept so far (other sources included)
    and is updated as scenes are finalized.
    """

    def __init__(self, params: SelectParams, known: ThumbIndex, keep_aspect: bool = False) -> None:
        self.p = params
        self.keep_aspect = keep_aspect  # kept frames: long side ``size``, whole picture (else a ``size`` square)
        self.known = known
        self.kept: list[KeptFrame] = []
        self.drops: Counter[str] = Counter()
        self.frames_in = 0
        self.scenes: list[dict] = []  # {"number", "start_s", "end_s"} of every detected scene
        self._detector: ContentDetector | None = None
        self._scene: _Scene | None = None
        self._prev_thumb: np.ndarray | None = None
        self._last_t = 0.0

    def _new_scene(self, start_s: float) -> None:
        self._close_scene()
        self._scene = _Scene(number=len(self.scenes), start_s=start_s, stride=self.p.stride)
        self.scenes.append({"number": self._scene.number, "start_s": start_s, "end_s": start_s})
        self._prev_thumb = None

    def _close_scene(self) -> None:
        sc = self._scene
        if sc is None:
            return
        self.scenes[sc.number]["end_s"] = self._last_t
        n, k = len(sc.cands), self.p.max_per_scene
        if n > k:
            pick = [int((j + 0.5) * n / k) for j in range(k)]
            chosen = [sc.cands[i] for i in pick]
            self.drops["scene_cap"] += n - k
        else:
            chosen = sc.cands
        for kf in chosen:
            self.known.add(kf.thumb)
        self.kept.extend(chosen)
        self._scene = None

    def push(self, fr: SourceFrame) -> None:
        """Process the next frame of the source."""
        self.frames_in += 1
        p = self.p
        box = content_box(fr.analysis, p.dark_level, p.border_inset)
        has_picture = (box[2] - box[0]) * (box[3] - box[1]) >= 0.3
        if fr.new_scene:
            cut = True
        else:
            if self._detector is None:
                self._detector = ContentDetector(
                    threshold=p.cut_threshold, min_scene_len=p.min_scene_frames, filter_mode=FlashFilter.Mode.SUPPRESS
                )
            # Judge cuts on the picture area only: borders would dilute the change score.
            h, w = fr.analysis.shape[:2]
            pic = cv2.resize(_crop(fr.analysis, box), (w, h), interpolation=cv2.INTER_AREA) if has_picture else fr.analysis
            bgr = cv2.cvtColor(pic, cv2.COLOR_RGB2BGR)
            cuts = self._detector.process_frame(FrameTimecode(fr.index, fps=fr.fps), bgr)
            cut = bool(cuts) or self._scene is None
        if cut:
            self._new_scene(fr.timestamp_s)
        self._last_t = fr.timestamp_s
        sc = self._scene
        assert sc is not None

        if not has_picture:
            self.drops["blank"] += 1
            return
        pic = _crop(fr.analysis, box)
        luma = cv2.cvtColor(pic, cv2.COLOR_RGB2GRAY)
        if float(luma.std()) < p.min_luma_std:
            self.drops["blank"] += 1
            return
        ab = rgb_to_lab(pic)[..., 1:]
        chroma = np.sqrt(ab[..., 0] ** 2 + ab[..., 1] ** 2)
        if float(np.percentile(chroma, 90)) < p.min_chroma:
            self.drops["low_color"] += 1
            return
        th = thumbnail(pic, p.thumb)
        prev, self._prev_thumb = self._prev_thumb, th
        if prev is not None and float(np.abs(th - prev).mean()) < p.hold_diff:
            self.drops["hold"] += 1
            return
        sc.since += 1
        if sc.since < sc.stride:
            self.drops["not_sampled"] += 1
            return
        sc.since = 0
        near = self.known.min_diff(th)
        for c in sc.cands:
            near = min(near, float(np.abs(c.thumb - th).mean()))
        if near < p.dup_diff:
            self.drops["duplicate"] += 1
            return
        if self.keep_aspect:
            rgb = np.ascontiguousarray(fit_long_side(_crop(fr.full(), box), p.size))
        else:
            rgb = crop_resize(fr.full(), box, p.size)
        sc.cands.append(KeptFrame(rgb, th, fr.timestamp_s, sc.number, fr.name))
        cap = max(8, 4 * p.max_per_scene)
        if len(sc.cands) > cap:
            self.drops["not_sampled"] += len(sc.cands) - len(sc.cands[::2])
            sc.cands = sc.cands[::2]
            sc.stride *= 2

    def finish(self) -> None:
        """Close the last scene (call once after the last frame)."""
        self._close_scene()
