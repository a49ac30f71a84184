"""Reference values for the colorization metrics."""
from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.color import deltaE_ciede2000, rgb2lab

from animecolor import metrics
from animecolor.color import rgb_to_lab


def _rand_rgb(seed: int = 0, shape=(24, 32, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_opencv_lab_close_to_skimage():
    """OpenCV's float Lab (tabulated sRGB gamma) is ~0.1 off skimage's: far below a JND (~2.3)."""
    rgb = _rand_rgb(shape=(64, 64, 3))
    ours, ref = rgb_to_lab(rgb), rgb2lab(rgb)
    assert np.abs(ours - ref).max() < 0.5
    de = deltaE_ciede2000(ours, ref)
    assert de.mean() < 0.15 and de.max() < 0.5


def test_ciede2000_identical_is_zero():
    rgb = _rand_rgb()
    assert metrics.ciede2000(rgb, rgb) == pytest.approx(0.0, abs=1e-6)


def test_ciede2000_known_pair_matches_skimage():
    a = np.zeros((4, 4, 3), np.uint8)
    a[:] = (200, 30, 40)
    b = np.zeros((4, 4, 3), np.uint8)
    b[:] = (40, 160, 210)
    ref = float(deltaE_ciede2000(rgb2lab(a), rgb2lab(b)).mean())
    got = metrics.ciede2000(a, b)
    assert ref > 30  # a large, well-defined difference
    assert got == pytest.approx(ref, abs=0.05)
    # symmetric
    assert metrics.ciede2000(b, a) == pytest.approx(got, abs=1e-4)


def test_ciede2000_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.ciede2000(_rand_rgb(shape=(4, 4, 3)), _rand_rgb(shape=(4, 5, 3)))


def test_psnr_ssim_sane():
    rgb = _rand_rgb()
    assert metrics.psnr(rgb, rgb) == math.inf
    assert metrics.ssim(rgb, rgb) == pytest.approx(1.0)
    noisy = np.clip(rgb.astype(int) + np.random.default_rng(1).integers(-10, 11, rgb.shape), 0, 255).astype(np.uint8)
    very = np.clip(rgb.astype(int) + np.random.default_rng(2).integers(-80, 81, rgb.shape), 0, 255).astype(np.uint8)
    assert 25 < metrics.psnr(noisy, rgb) < 40
    assert metrics.psnr(very, rgb) < metrics.psnr(noisy, rgb)
    assert metrics.ssim(very, rgb) < metrics.ssim(noisy, rgb) < 1.0
    # PSNR of a known MSE: every pixel off by 5 -> 10 log10(255^2 / 25)
    off = (rgb.astype(int) // 2 + 5).astype(np.uint8)
    assert metrics.psnr(off, (rgb.astype(int) // 2).astype(np.uint8)) == pytest.approx(
        10 * math.log10(255**2 / 25), abs=1e-6
    )


def test_ssim_matches_skimage():
    from skimage.metrics import structural_similarity

    a = _rand_rgb(3, (40, 50, 3))
    b = np.clip(a.astype(int) + np.random.default_rng(4).integers(-60, 61, a.shape), 0, 255).astype(np.uint8)
    for x, y in ((a, b), (b // 2, a), (a[:9, :7], b[:9, :7])):
        ref = structural_similarity(y, x, channel_axis=-1, data_range=255)
        assert metrics.ssim(x, y) == pytest.approx(ref, abs=1e-9)
    with pytest.raises(ValueError, match="window"):
        metrics.ssim(a[:5, :6], b[:5, :6])


def test_colorfulness():
    gray = np.repeat(_rand_rgb()[..., :1], 3, axis=2)
    assert metrics.colorfulness(gray) == pytest.approx(0.0, abs=1e-9)
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255  # rg = 255, yb = 127.5, no variance
    assert metrics.colorfulness(red) == pytest.approx(0.3 * math.hypot(255, 127.5))
    assert metrics.colorfulness(_rand_rgb()) > metrics.colorfulness((_rand_rgb() // 4 + 96).astype(np.uint8))


def test_js_divergence_bounds():
    p = np.array([1.0, 0.0])
    q = np.array([0.0, 1.0])
    assert metrics.js_divergence(p, q) == pytest.approx(1.0)  # disjoint supports, base 2
    assert metrics.js_divergence(p, p) == pytest.approx(0.0)
    r = np.array([0.5, 0.5])
    # JS([1,0],[.5,.5]) = 0.5*log2(4/3) + 0.5*(0.5*log2(2/3) + 0.5*log2(2))
    ref = 0.5 * math.log2(4 / 3) + 0.5 * (0.5 * math.log2(2 / 3) + 0.5)
    assert metrics.js_divergence(p, r) == pytest.approx(ref)


def test_cdc_static_clip_is_zero():
    f = _rand_rgb()
    assert metrics.cdc([f] * 6) == pytest.approx(0.0, abs=1e-12)


def test_cdc_alternating_positive_and_per_step():
    a = np.full((8, 8, 3), 10, np.uint8)
    b = np.full((8, 8, 3), 200, np.uint8)
    meter = metrics.CDCMeter()
    for i in range(9):
        meter.update(a if i % 2 == 0 else b)
    steps = meter.per_step()
    # odd distance: disjoint histograms -> 1; even distances: identical -> 0
    assert steps[1] == pytest.approx(1.0)
    assert steps[2] == pytest.approx(0.0)
    assert steps[4] == pytest.approx(0.0)
    assert meter.value() == pytest.approx(1.0 / 3.0)
    assert meter.frames == 9


def test_cdc_streaming_matches_bruteforce_and_short_clips():
    frames = [_rand_rgb(s, (6, 7, 3)) // (s + 1) for s in range(7)]
    ref = []
    for k in metrics.CDC_STEPS:
        pairs = [
            metrics.js_divergence(metrics.color_histogram(frames[t]), metrics.color_histogram(frames[t + k])).mean()
            for t in range(len(frames) - k)
        ]
        ref.append(np.mean(pairs))
    assert metrics.cdc(frames) == pytest.approx(float(np.mean(ref)))
    assert math.isnan(metrics.cdc(frames[:1]))
    meter = metrics.CDCMeter()
    meter.update(frames[0])
    meter.update(frames[1])
    assert list(meter.per_step()) == [1]
    assert len(meter._hists) <= max(metrics.CDC_STEPS)
