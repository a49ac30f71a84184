"""Carry a colored keyframe's chroma along its shot by optical flow.

A :class:`KeyframeTrack` follows every pixel of the current frame back to the
keyframe: the backward flow of each frame to the one before it (OpenCV DIS,
:func:`animecolor.temporal.dis_flow`) is composed into one map from the
current frame to the keyframe, so the keyframe's own chroma is sampled once
per frame (no blur piling up frame after frame).  Whether a pixel's track
still holds is checked against the keyframe itself: the keyframe's gray at
the tracked place must match the frame's gray (a window-averaged absolute
difference between ``err_lo`` and ``err_hi`` gray levels blends from the
carried color to whatever the caller has there: the correspondence transfer
of :mod:`animecolor.reference`).  Pixels tracked out of the picture, newly
uncovered or changed content fail the check and fall back.  Each frame is also
flowed straight to the keyframe (``direct``): where that track is trusted more
than the chain's, it is taken and the chain continues from it, so content that
comes back into view (after an occlusion, a flash, a pan back) is found again.

Used by :class:`animecolor.reference.KeyframeColorizer`; settings picked on
validation shots (docs/reference.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .temporal import dis_flow

__all__ = ["PropagateParams", "PROPAGATE_PARAMS", "KeyframeTrack"]


@dataclass(frozen=True)
class PropagateParams:
    """Settings of the flow propagation (defaults picked on validation shots: docs/reference.md)."""

    err_lo: float = 6.0  # gray levels: a tracked pixel this close to the keyframe's takes its color fully
    err_hi: float = 18.0  # and from this far on the fallback's
    window: int = 5  # the difference is averaged over this square window (pixels at working size)
    finest_scale: int = 1  # DIS pyramid level where the flow stops (0 = full working size)
    gain: bool = True  # compare with the keyframe after fitting one brightness gain and offset (fades, film flicker)
    direct: bool = True  # also flow each frame straight to the keyframe; take that track where it is trusted more

    def __post_init__(self) -> None:
        if not 0 <= self.err_lo < self.err_hi:
            raise ValueError(f"propagation needs 0 <= err_lo < err_hi, got {self.err_lo}, {self.err_hi}")
        if self.window < 1:
            raise ValueError(f"propagation window must be >= 1, got {self.window}")


PROPAGATE_PARAMS = PropagateParams()

_OUT = -1.0e4  # map value for "tracked out of the picture"


class KeyframeTrack:
    """One keyframe followed through the frames after it, one frame at a time.

    ``key_gray``: uint8 ``(h, w)`` gray of the keyframe at working size;
    ``key_ab``: float32 ``(h, w, 2)`` its a/b at the same size.
    """

    def __init__(self, key_gray: np.ndarray, key_ab: np.ndarray, params: PropagateParams | None = None):
        if key_gray.dtype != np.uint8 or key_gray.ndim != 2 or key_ab.shape != key_gray.shape + (2,):
            raise ValueError(f"keyframe track needs uint8 (h, w) gray and (h, w, 2) a/b, got {key_gray.shape} {key_ab.shape}")
        self.params = params or PROPAGATE_PARAMS
        self.key_gray = np.ascontiguousarray(key_gray)
        self.key_gray_f = key_gray.astype(np.float32)
        self.key_ab = np.ascontiguousarray(key_ab, dtype=np.float32)
        h, w = key_gray.shape
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        self._grid = np.stack([gx, gy], -1)
        self.map = self._grid.copy()  # where each pixel of the previous frame lies in the keyframe
        self.prev = self.key_gray

    def step(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Next frame (uint8 ``(h, w)`` at working size) -> the keyframe's a/b carried onto it
        ``(h, w, 2)`` and the trust in it ``(h, w)`` in [0, 1]."""
        if gray.shape != self.key_gray.shape:
            raise ValueError(f"frame {gray.shape} is not the keyframe's size {self.key_gray.shape}")
        p = self.params
        flow = dis_flow(gray, self.prev, p.finest_scale)  # gray(x) ~ prev(x + flow(x))
        at = self._grid + flow
        self.map = cv2.remap(self.map, at[..., 0], at[..., 1], cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=(_OUT, _OUT, 0, 0))
        self.prev = gray
        g = gray.astype(np.float32)
        ab, trust = self._carry(self.map, g)
        if p.direct:
            direct = self._grid + dis_flow(gray, self.key_gray, p.finest_scale)
            ab_d, trust_d = self._carry(direct, g)
            better = trust_d > trust
            self.map[better] = direct[better]  # re-anchored: the chain goes on from the recovered places
            ab[better] = ab_d[better]
            trust = np.maximum(trust, trust_d)
        return ab, trust

    def _carry(self, map_: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The keyframe's a/b at ``map_``'s places and the trust in it (gray agreement)."""
        p = self.params
        mx, my = map_[..., 0], map_[..., 1]
        h, w = g.shape
        inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
        key_at = cv2.remap(self.key_gray_f, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        ab = cv2.remap(self.key_ab, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if p.gain:
            key_at = _fit_brightness(key_at, g, inside, p.err_hi)
        err = np.abs(key_at - g)
        if p.window > 1:
            err = cv2.blur(err, (p.window, p.window))
        trust = np.clip((p.err_hi - err) / (p.err_hi - p.err_lo), 0.0, 1.0)
        trust[~inside] = 0.0
        return ab, trust


def _fit_brightness(key_at: np.ndarray, gray: np.ndarray, inside: np.ndarray, tol: float) -> np.ndarray:
    """``key_at`` mapped by the gain and offset that best bring it onto ``gray``: least squares over the
    tracked pixels that agree with the median offset, refitted on those within ``tol`` of the fit (pixels
    of new content or lost tracks do not pull it); unchanged when the fit is unsure."""
    k, g = key_at[::2, ::2][inside[::2, ::2]], gray[::2, ::2][inside[::2, ::2]]
    if k.size < 64:
        return key_at
    keep = np.abs(k + np.median(g - k) - g) < 2 * tol
    for _ in range(2):
        kk, gg = k[keep], g[keep]
        if kk.size < 64 or kk.std() < 2.0:
            return key_at
        a, b = np.polyfit(kk, gg, 1)
        keep = np.abs(a * k + b - g) < tol
    if not 0.25 <= a <= 4.0:
        return key_at
    return key_at * np.float32(a) + np.float32(b)
