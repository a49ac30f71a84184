"""Per-frame steps shared by every path that colorizes (episode, preview, evaluate).

A frame travels as its luma plane ``y`` (uint8, limited range unless
``full_range``); the model sees a full-range gray copy resized to its working
size; the predicted a/b comes back at ``working size / output_stride`` and is
turned into chroma planes at their own size with the source's lightness there
(``color.merge_yuv``), beside the untouched source luma.
"""
from __future__ import annotations

import cv2
import numpy as np

from .color import merge_yuv, y_to_gray

__all__ = ["model_input", "chroma_size", "chroma_for", "yuv_to_rgb", "rgb_to_y", "ab_gray_size", "fit_long_side"]


def model_input(y: np.ndarray, size: tuple[int, int], full_range: bool = False) -> np.ndarray:
    """Luma plane -> full-range gray uint8 at the colorizer's working ``size`` (w, h)."""
    gray = y_to_gray(y, full_range)
    if (gray.shape[1], gray.shape[0]) == tuple(size):
        return gray
    return cv2.resize(gray, tuple(size), interpolation=cv2.INTER_AREA)


def fit_long_side(img: np.ndarray, max_side: int | None) -> np.ndarray:
    """Resize (area filter) so the long side is at most ``max_side``, keeping the aspect ratio
    (``None``/0, or an image small enough: returned as it is)."""
    h, w = img.shape[:2]
    if not max_side or max(w, h) <= max_side:
        return img
    s = max_side / max(w, h)
    size = (max(2, int(round(w * s))), max(2, int(round(h * s))))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def ab_gray_size(gray_w: np.ndarray, ab_shape: tuple[int, ...]) -> np.ndarray:
    """Gray at working size -> gray at the a/b size (what temporal smoothers get)."""
    h, w = ab_shape[:2]
    if gray_w.shape[:2] == (h, w):
        return gray_w
    return cv2.resize(gray_w, (w, h), interpolation=cv2.INTER_AREA)


def chroma_size(width: int, height: int, subsampling: str = "420") -> tuple[int, int]:
    """(Hc, Wc) of the chroma planes for 4:2:0 or 4:4:4."""
    if subsampling == "444":
        return height, width
    return (height + 1) // 2, (width + 1) // 2


def chroma_for(
    y: np.ndarray, ab: np.ndarray, subsampling: str = "420", full_range: bool = False, matrix: str = "bt601"
) -> tuple[np.ndarray, np.ndarray]:
    """U and V planes (uint8) to put beside luma ``y`` for the predicted ``ab`` (``matrix``: bt601 / bt709)."""
    H, W = y.shape
    return merge_yuv(y, ab, chroma_shape=chroma_size(W, H, subsampling), full_range=full_range, matrix=matrix)


def yuv_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray, full_range: bool = False) -> np.ndarray:
    """BT.601 Y'CbCr planes (chroma at any size) -> uint8 RGB ``(H, W, 3)``, for previews and metrics."""
    H, W = y.shape
    if u.shape != y.shape:
        u = cv2.resize(u, (W, H), interpolation=cv2.INTER_LINEAR)
        v = cv2.resize(v, (W, H), interpolation=cv2.INTER_LINEAR)
    yf = y.astype(np.float32)
    uf = u.astype(np.float32) - 128.0
    vf = v.astype(np.float32) - 128.0
    if full_range:
        ys, cs = 1.0, 1.0
        yf = yf
    else:
        ys, cs = 255.0 / 219.0, 255.0 / 224.0
        yf = yf - 16.0
    kr, kb = 0.299, 0.114
    kg = 1.0 - kr - kb
    Y = yf * ys
    r = Y + 2.0 * (1.0 - kr) * cs * vf
    b = Y + 2.0 * (1.0 - kb) * cs * uf
    g = (Y - kr * r - kb * b) / kg
    rgb = np.stack([r, g, b], axis=-1)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB -> limited-range BT.601 luma plane (what a B&W video would carry)."""
    f = rgb.astype(np.float32)
    yy = 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]
    return np.clip(np.rint(16.0 + yy * (219.0 / 255.0)), 16, 235).astype(np.uint8)
