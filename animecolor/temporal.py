"""Temporal chroma smoothing between the colorizer and the merger.

A smoother receives each batch of predicted chroma (at the colorizer's output
size) with the matching gray frames at the same size, and returns smoothed
chroma for the frames it is done with, in order.  A smoother with look-ahead
holds back up to ``delay`` frames; ``flush()`` returns them at end of stream.
State is O(1) frames so episodes of any length stream through.

Smoothers (``SMOOTHERS``):

* ``none``: the colorizer's output as is (flickers).
* ``ema``: exponential moving average; the baseline: damps flicker but drags
  colors behind moving objects (ghosts).
* ``flow``: motion-compensated recursive filter.  The previous output is warped
  into the current frame with DIS optical flow computed on the gray frames and
  blended with the fresh prediction, weighted per pixel by how well the warped
  previous gray matches the current gray (occlusions and new content keep the
  fresh prediction).  Scene cuts reset it.
* ``flow2`` (the default): ``flow`` plus a look-ahead of ``lookahead`` frames
  (default 2): the next predictions, warped back to the current frame, join the
  blend (bidirectional; ``delay`` = look-ahead); still pixels are smoothed
  harder (``static_alpha``).

The module also has the motion tools the evaluation shares: :func:`dis_flow`,
:func:`warp`, :func:`occlusion_mask` and :func:`warp_error` (Lai et al. 2018).
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "TemporalSmoother",
    "NoSmoothing",
    "EMASmoother",
    "FlowSmoother",
    "BidirectionalFlowSmoother",
    "SMOOTHERS",
    "DEFAULT",
    "make_smoother",
    "dis_flow",
    "warp",
    "occlusion_mask",
    "warp_error",
    "is_cut",
]


# --------------------------------------------------------------------------- motion tools

def _dis(finest_scale: int, preset: int) -> cv2.DISOpticalFlow:
    dis = cv2.DISOpticalFlow_create(preset)
    dis.setFinestScale(finest_scale)
    return dis


# One DIS object per (thread, settings, frame size): a DIS object that has seen
# a tiny frame (16x32) returns different, worse flow on larger frames afterwards
# (it keeps state from the earlier size), and DIS objects are not meant to be
# shared across threads.
_DIS_LOCAL = threading.local()


def dis_flow(
    src: np.ndarray,
    dst: np.ndarray,
    finest_scale: int | None = None,
    preset: int = cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
) -> np.ndarray:
    """Dense flow ``(h, w, 2)`` float32 such that ``src(x) ~ dst(x + flow(x))``.

    ``src``/``dst``: uint8 gray ``(h, w)``.  Use it with :func:`warp` to pull
    ``dst``-aligned data into ``src``'s frame.  ``finest_scale`` (the pyramid level
    where DIS stops, 0 = full resolution) defaults to 1 for frames up to 256 px
    wide (the a/b size: ~1.3 ms per 128x72 pair on a busy CPU core; level 0
    costs 4x more for a 25 % lower luma warp error) and 2 above.  ``preset``: a
    ``cv2.DISOPTICAL_FLOW_PRESET_*`` (ULTRAFAST: 8 px patches, stride 4, no
    variational refinement; evaluation uses MEDIUM).
    """
    if src.shape != dst.shape or src.dtype != np.uint8 or dst.dtype != np.uint8:
        raise ValueError(f"dis_flow needs two uint8 frames of one size, got {src.dtype}{src.shape} {dst.dtype}{dst.shape}")
    if finest_scale is None:
        finest_scale = 1 if src.shape[1] <= 256 else 2
    cache = getattr(_DIS_LOCAL, "cache", None)
    if cache is None:
        cache = _DIS_LOCAL.cache = {}
    key = (finest_scale, preset, src.shape)
    dis = cache.get(key)
    if dis is None:
        if len(cache) >= 8:
            cache.clear()
        dis = cache[key] = _dis(finest_scale, preset)
    return dis.calc(np.ascontiguousarray(src), np.ascontiguousarray(dst), None)


_GRID_CACHE: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def warp(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``img`` at ``x + flow(x)`` (bilinear, border replicated); keeps dtype and channels."""
    h, w = flow.shape[:2]
    grid = _GRID_CACHE.get((h, w))
    if grid is None:
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        grid = _GRID_CACHE[(h, w)] = (gx, gy)
    mx = grid[0] + flow[..., 0]
    my = grid[1] + flow[..., 1]
    return cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def occlusion_mask(flow_fw: np.ndarray, flow_bw: np.ndarray) -> np.ndarray:
    """Non-occluded pixels by forward-backward consistency (Sundaram et al. 2010, as in Lai et al. 2018).

    ``flow_fw``: frame t -> t+1, ``flow_bw``: t+1 -> t.  True where following
    ``flow_fw`` and then ``flow_bw`` comes back to the start.
    """
    bw = warp(flow_bw, flow_fw)
    s = flow_fw + bw
    lhs = (s * s).sum(-1)
    rhs = 0.01 * ((flow_fw * flow_fw).sum(-1) + (bw * bw).sum(-1)) + 0.5
    return lhs < rhs


def warp_error(
    out_t: np.ndarray, out_t1: np.ndarray, flow_fw: np.ndarray, mask: np.ndarray
) -> float:
    """Warp error of one frame pair (Lai et al. 2018), RGB in [0, 1].

    ``out_t1`` is warped back to frame t with ``flow_fw`` (t -> t+1, computed on
    the ground truth); returns the mean over non-occluded pixels (``mask``) of the
    squared RGB difference (summed over channels, as in the paper's L2 norm).
    NaN when no pixel is visible.
    """
    if not mask.any():
        return float("nan")
    a = out_t.astype(np.float32) * (1.0 / 255.0) if out_t.dtype == np.uint8 else out_t.astype(np.float32)
    b = out_t1.astype(np.float32) * (1.0 / 255.0) if out_t1.dtype == np.uint8 else out_t1.astype(np.float32)
    d = a - warp(b, flow_fw)
    return float((d * d).sum(-1)[mask].mean())


def _hist(gray: np.ndarray) -> np.ndarray:
    h = cv2.calcHist([gray], [0], None, [32], [0, 256]).ravel()
    return h / max(h.sum(), 1.0)


def is_cut(
    prev: np.ndarray,
    cur: np.ndarray,
    warped_err: np.ndarray | None = None,
    err_threshold: float = 25.0,
    hist_threshold: float = 0.1,
) -> bool:
    """Scene cut between two gray frames (uint8, any size; calibrated at ~128x72).

    The score is the motion-compensated luma error ``|cur - warp(prev)|`` (pass
    ``warped_err`` when it is already computed): median + half the mean.  Optical
    flow explains motion, so the score stays low within a shot (p99 ~12-16 on
    ``general/`` clips at 128x72, including fast pans and fades) and is high at
    cuts (>= 70 on Big Buck Bunny's cuts).  A cut needs ``score > err_threshold``
    and a gray histogram change (total variation > ``hist_threshold``), or
    ``score > 2 * err_threshold`` alone.
    """
    if warped_err is None:
        warped_err = np.abs(cur.astype(np.float32) - warp(prev, dis_flow(cur, prev)).astype(np.float32))
    err = float(np.median(warped_err)) + 0.5 * float(warped_err.mean())
    if err > 2.0 * err_threshold:
        return True
    if err <= err_threshold:
        return False
    hd = 0.5 * float(np.abs(_hist(prev) - _hist(cur)).sum())  # total variation of 32-bin histograms
    return hd > hist_threshold


# --------------------------------------------------------------------------- smoothers

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


def _check_batch(gray: np.ndarray, ab: np.ndarray) -> None:
    if gray.ndim != 3 or ab.ndim != 4 or ab.shape[-1] != 2 or gray.shape != ab.shape[:3]:
        raise ValueError(f"expected gray (N, h, w) and ab (N, h, w, 2) of one size, got {gray.shape} and {ab.shape}")
    if gray.dtype != np.uint8:
        raise ValueError(f"gray must be uint8, got {gray.dtype}")


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


@dataclass
class _Pending:
    """A frame the flow smoother has seen but not output yet."""

    gray: np.ndarray
    ab: np.ndarray
    cut_before: bool  # a scene cut separates it from the frame before
    flow_prev: np.ndarray | None  # flow to the frame before (None after a cut / at the start)
    err_prev: np.ndarray | None  # |gray - warp(prev gray)| along flow_prev


class FlowSmoother(TemporalSmoother):
    """Motion-compensated recursive chroma filter with optional look-ahead.

    For frame t the output is the weighted mean of

    * the fresh prediction ``ab_t`` (weight 1),
    * the previous *output* warped into frame t (weight ``rho * c``), where
      ``rho = (1 - alpha) / alpha`` (so with perfect confidence this is an EMA
      with factor ``alpha`` along the motion), and
    * with ``lookahead = k``: the next k predictions warped back to frame t
      (weights ``beta ** j * c``),

    where the confidence ``c = exp(-(e / (sigma + grad_tol * |grad g_t|)) ** 2)``
    comes from the luma warp error ``e`` (dilated by one pixel so that motion
    boundaries count as occluded); the gradient term forgives the sub-pixel
    interpolation error of a correct flow on edges.  Warps never cross a scene
    cut (:func:`is_cut`).  Defaults are tuned in ``docs/temporal.md``.

    ``static_alpha`` (off by default): pixels whose flow is below about
    ``static_px`` pixels use this (smaller) alpha instead, i.e. stronger
    smoothing where nothing moves.  Measured (``docs/temporal.md``):
    ``static_alpha=0.2, static_px=0.25`` lowers CDC / GT CDC from 1.29 to 1.23
    but raises the perfect-color ghosting figure from +1.4 % to +1.8 %.

    State: the previous output and gray plus at most ``lookahead`` pending frames.
    """

    name = "flow"

    def __init__(
        self,
        alpha: float = 0.3,
        sigma: float = 6.0,
        lookahead: int = 0,
        beta: float = 0.7,
        grad_tol: float = 0.5,
        detect_cuts: bool = True,
        finest_scale: int | None = None,
        static_alpha: float | None = None,
        static_px: float = 0.5,
    ):
        if not 0.0 < alpha <= 1.0:
            raise ValueError("alpha must be in (0, 1]")
        if static_alpha is not None and not 0.0 < static_alpha <= 1.0:
            raise ValueError("static_alpha must be in (0, 1]")
        if sigma <= 0:
            raise ValueError("sigma must be > 0")
        if lookahead < 0:
            raise ValueError("lookahead must be >= 0")
        self.alpha = alpha
        self.sigma = sigma
        self.lookahead = lookahead
        self.delay = lookahead
        self.beta = beta
        self.grad_tol = grad_tol
        self.finest_scale = finest_scale
        self.static_alpha = static_alpha
        self.static_px = static_px
        self.detect_cuts = detect_cuts
        self.cuts = 0  # scene cuts seen (for logging / tests)
        self.reset()

    def reset(self) -> None:
        self._pending: deque[_Pending] = deque()
        self._last_gray: np.ndarray | None = None  # last frame pushed (for cut detection / flow)
        self._prev_out: np.ndarray | None = None  # output of the frame before the first pending one

    # ------------------------------------------------------------------ helpers
    def _confidence(self, err: np.ndarray, gray: np.ndarray) -> np.ndarray:
        err = cv2.dilate(err, np.ones((3, 3), np.uint8))
        tol = np.float32(self.sigma)
        if self.grad_tol > 0:
            g = gray.astype(np.float32)
            gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3) * 0.125
            gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3) * 0.125
            tol = tol + self.grad_tol * np.sqrt(gx * gx + gy * gy)
        return np.exp(-np.square(err / tol))

    def _push(self, gray: np.ndarray, ab: np.ndarray) -> None:
        prev = self._last_gray
        flow = err = None
        cut = True
        if prev is not None and prev.shape == gray.shape:
            flow = dis_flow(gray, prev, self.finest_scale)
            err = np.abs(gray.astype(np.float32) - warp(prev, flow).astype(np.float32))
            cut = self.detect_cuts and is_cut(prev, gray, err)
            if cut:
                self.cuts += 1
                flow = err = None
        # Copies: the caller may reuse its batch buffers.
        gray = np.array(gray, np.uint8, copy=True)
        self._pending.append(_Pending(gray, np.array(ab, np.float32, copy=True), cut, flow, err))
        self._last_gray = gray

    def _emit(self) -> np.ndarray:
        """Output the oldest pending frame, using whatever look-ahead is pending."""
        cur = self._pending[0]
        num = cur.ab.copy()
        den = np.ones(cur.ab.shape[:2], np.float32)
        if self._prev_out is not None and not cur.cut_before and cur.flow_prev is not None:
            rho = (1.0 - self.alpha) / self.alpha
            if self.static_alpha is not None:  # still pixels: stronger smoothing (nothing to ghost)
                rho_s = (1.0 - self.static_alpha) / self.static_alpha
                still = np.exp(-(np.square(cur.flow_prev).sum(-1) / (self.static_px * self.static_px)))
                rho = rho + (rho_s - rho) * still
            w = rho * self._confidence(cur.err_prev, cur.gray)
            num += w[..., None] * warp(self._prev_out, cur.flow_prev)
            den += w
        for j in range(1, min(self.lookahead, len(self._pending) - 1) + 1):
            fut = self._pending[j]
            if fut.cut_before:
                break
            flow = dis_flow(cur.gray, fut.gray, self.finest_scale)
            err = np.abs(cur.gray.astype(np.float32) - warp(fut.gray, flow).astype(np.float32))
            w = (self.beta**j) * self._confidence(err, cur.gray)
            num += w[..., None] * warp(fut.ab, flow)
            den += w
        out = num / den[..., None]
        self._pending.popleft()
        self._prev_out = out
        return out

    # ------------------------------------------------------------------ interface
    def process(self, gray: np.ndarray, ab: np.ndarray) -> np.ndarray:
        _check_batch(gray, ab)
        outs = []
        for i in range(len(ab)):
            self._push(gray[i], ab[i])
            if len(self._pending) > self.lookahead:
                outs.append(self._emit())
        if not outs:
            return np.zeros((0,) + ab.shape[1:], np.float32)
        return np.stack(outs)

    def flush(self) -> np.ndarray:
        outs = [self._emit() for _ in range(len(self._pending))]
        self._last_gray = None
        self._prev_out = None
        if not outs:
            return np.zeros((0, 0, 0, 2), np.float32)
        return np.stack(outs)


class BidirectionalFlowSmoother(FlowSmoother):
    """:class:`FlowSmoother` with a look-ahead of 2 frames (``delay = 2``) and stronger smoothing of still pixels.

    ``static_alpha=0.12, static_px=0.3``: where the flow is below ~0.3 px the
    recursive filter uses alpha 0.12 instead of 0.3.  Measured (session 7,
    ``docs/temporal.md``, the CE + L1 model, 639 frames of 6 clips): CDC / GT CDC
    1.099 (``flow``: 1.130), perfect-color ghosting +1.94 % (``flow``: +1.75 %).
    Session 9, after the merger change: 1.073 (``flow`` 1.096); perfect-color
    ghosting +0.16 CIEDE2000 (``flow`` +0.13), +13.7 % of a base error that halved.
    """

    name = "flow2"

    def __init__(self, lookahead: int = 2, static_alpha: float | None = 0.12, static_px: float = 0.3, **kwargs):
        super().__init__(lookahead=lookahead, static_alpha=static_alpha, static_px=static_px, **kwargs)


SMOOTHERS: dict[str, type[TemporalSmoother]] = {
    "none": NoSmoothing,
    "ema": EMASmoother,
    "flow": FlowSmoother,
    "flow2": BidirectionalFlowSmoother,
}

# The default for ``animecolor episode --temporal``: best by measurement (docs/temporal.md):
# the only one within 10 % of the ground truth's CDC both before and after the session-9 merger
# change, and it lowers the real model's CIEDE2000 (the ghosting figures are in the doc).
DEFAULT = "flow2"


def make_smoother(name: str, **kwargs) -> TemporalSmoother:
    try:
        cls = SMOOTHERS[name]
    except KeyError:
        raise ValueError(f"unknown temporal smoother {name!r}; choose one of {sorted(SMOOTHERS)}") from None
    return cls(**kwargs)
