"""The merger: predicted a/b (low resolution) + the source's luma -> chroma planes."""
from __future__ import annotations

import cv2
import numpy as np
from animecolor import color, frames


def _cels(h: int = 96, w: int = 128) -> np.ndarray:
    """Two flat colored cels split by a 2 px black outline, on a light blue ground."""
    rgb = np.empty((h, w, 3), np.uint8)
    rgb[:] = (150, 200, 235)
    rgb[16:80, 10:62] = (220, 40, 40)
    rgb[16:80, 64:118] = (60, 170, 60)
    rgb[16:80, 62:64] = (10, 10, 10)
    return rgb


def _merge(rgb: np.ndarray, factor: int, full_range: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Colorize ``rgb``'s own luma with its true a/b shrunk by ``factor``, at 4:4:4."""
    h, w = rgb.shape[:2]
    ab = color.rgb_to_lab(rgb)[..., 1:]
    ab_lo = cv2.resize(ab, (w // factor, h // factor), interpolation=cv2.INTER_AREA)
    if full_range:
        yy = np.clip(np.rint(rgb.astype(np.float32) @ np.float32([0.299, 0.587, 0.114])), 0, 255).astype(np.uint8)
    else:
        yy = frames.rgb_to_y(rgb)
    u, v = frames.chroma_for(yy, ab_lo, "444", full_range=full_range)
    return frames.yuv_to_rgb(yy, u, v, full_range=full_range), yy


def test_true_ab_at_full_size_gives_back_the_colors():
    # Not exact: the merger reads lightness off the video's luma (Y' = 0.299 R' + ...),
    # which is not Lab L for saturated colors; the model is trained with the same rule.
    rgb = _cels()
    out, _ = _merge(rgb, 1)
    for region in [(slice(20, 76), slice(14, 58)), (slice(20, 76), slice(68, 114)), (slice(0, 10), slice(0, 128))]:
        err = np.abs(out[region].astype(int) - rgb[region].astype(int))
        assert err.max() <= 20, (region, err.max(axis=(0, 1)))


def test_full_range_video_gets_the_same_colors_as_limited_range():
    # full-range chroma must not be scaled like limited range (224/255: washed out)
    lim, _ = _merge(_cels(), 1, full_range=False)
    full, _ = _merge(_cels(), 1, full_range=True)
    assert np.abs(full.astype(int) - lim.astype(int)).max() <= 3


def test_outline_stays_dark_when_ab_is_smeared_across_it():
    rgb = _cels()
    out, _ = _merge(rgb, 4)  # a/b at 1/4 size: the 2 px outline is smeared into red and green
    outline = out[20:76, 62:64].astype(int)
    # the black outline stays dark (converting at the a/b size first lifts it to dark red, 141)
    assert outline.max() <= 60, outline.max()
    # and the cels keep their colors right up to the outline
    assert out[40, 59, 0] >= 180 and out[40, 59, 1] < 70, out[40, 59]  # red side
    assert out[40, 66, 1] >= 165 and out[40, 66, 0] < 70, out[40, 66]  # green side


def test_chroma_planes_have_the_requested_shape_and_range():
    y = np.full((31, 45), 120, np.uint8)
    ab = np.full((8, 12, 2), 90.0, np.float32)  # far out of gamut: clipped, not wrapped
    u, v = frames.chroma_for(y, ab, "420")
    assert u.shape == v.shape == (16, 23) and u.dtype == np.uint8
    assert 16 <= int(u.min()) and int(v.max()) <= 240
    assert int(v.mean()) > 160  # +a (red) pushes Cr up
