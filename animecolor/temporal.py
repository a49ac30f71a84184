"""Temporal chroma smoothing between the colorizer and the merger.

A smoother receives each batch of predicted chroma (at the colorizer's output
size) with the matching gray frames at the same size, and returns smoothed
chroma for the frames it is done with, in order.  A smoother with look-ahead
holds back up to ``delay`` frames; ``flush()`` returns them at end of stream.
State is O(1) frames so episodes of any length stream through.
"""
from __future__ import annotations

import numpy as np

__all__ = ["TemporalSmoother", "NoSmoothing", "EMASmoother", "SMOOTHERS", "make_smoother"]


class TemporalSmoother:
    """Interface. ``process`` may return fewer frames than it got (up to ``delay`` fewer in total)."""

    name = "base"
    delay: int = 0

    def process(self, gray: np.ndarray, ab: np.ndarray) -> np.ndarray:
        """gray uint8 ``(N, h, w)``, ab float32 ``(N, h, w, 2)`` -> ab ``(M, h, w, 2)``."""
        raise NotImplementedError

    def flush(self) -> np.ndarray:
        """End of stream: return every frame still held back (empty array when none)."""
        return np.zeros((0, 0, 0, 2), np.float32)

    def reset(self) -> None:
        """Forget all state (new shot / new stream)."""


class NoSmoothing(TemporalSmoother):
    name = "none"

    def process(self, gray: np.ndarray, ab: np.ndarray) -> np.ndarray:
        return ab


class EMASmoother(TemporalSmoother):
    """Exponential moving average of chroma; resets on a large luma change (a cut).

    The baseline: it damps flicker but ghosts on motion.
    """

    name = "ema"

    def __init__(self, alpha: float = 0.5, cut_threshold: float = 30.0):
        if not 0.0 < alpha <= 1.0:
            raise ValueError("alpha must be in (0, 1]")
        self.alpha = alpha
        self.cut_threshold = cut_threshold
        self.reset()

    def reset(self) -> None:
        self._prev_ab: np.ndarray | None = None
        self._prev_gray: np.ndarray | None = None

    def process(self, gray: np.ndarray, ab: np.ndarray) -> np.ndarray:
        out = np.empty_like(ab)
        for i in range(len(ab)):
            g = gray[i].astype(np.float32)
            if self._prev_ab is None or self._prev_ab.shape != ab[i].shape or (
                np.abs(g - self._prev_gray).mean() > self.cut_threshold
            ):
                cur = ab[i].copy()
            else:
                cur = self.alpha * ab[i] + (1.0 - self.alpha) * self._prev_ab
            out[i] = cur
            self._prev_ab = cur
            self._prev_gray = g
        return out


SMOOTHERS: dict[str, type[TemporalSmoother]] = {"none": NoSmoothing, "ema": EMASmoother}


def make_smoother(name: str, **kwargs) -> TemporalSmoother:
    try:
        cls = SMOOTHERS[name]
    except KeyError:
        raise ValueError(f"unknown temporal smoother {name!r}; choose one of {sorted(SMOOTHERS)}") from None
    return cls(**kwargs)
