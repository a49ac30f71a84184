"""Tests for the temporal smoothers on synthetic moving-object clips (tiny and fast)."""
from __future__ import annotations

import numpy as np
import pytest

from animecolor import temporal
from animecolor.temporal import EMASmoother, FlowSmoother, NoSmoothing, make_smoother

H, W = 72, 128
BG_AB = np.array([0.0, -30.0], np.float32)  # blue-ish background
FG_AB = np.array([55.0, 35.0], np.float32)  # red square


def _texture(seed: int, h: int = H, w: int = W, lo: int = 60, hi: int = 130) -> np.ndarray:
    """Smooth random texture (so optical flow has something to lock on to)."""
    import cv2

    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 1, (h // 4 + 1, w // 4 + 1)).astype(np.float32)
    t = cv2.resize(t, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(lo + (hi - lo) * t, 0, 255).astype(np.uint8)


def moving_square(n: int = 24, step: int = 2, size: int = 20, seed: int = 0):
    """Static textured background, a bright square moving right by ``step`` px per frame.

    Returns gray uint8 (n, H, W), true ab (n, H, W, 2) and the square's x per frame.
    """
    bg = _texture(seed)
    gray = np.empty((n, H, W), np.uint8)
    ab = np.empty((n, H, W, 2), np.float32)
    xs = []
    y0 = (H - size) // 2
    for t in range(n):
        x0 = 10 + step * t
        g = bg.copy()
        g[y0 : y0 + size, x0 : x0 + size] = 200
        a = np.broadcast_to(BG_AB, (H, W, 2)).copy()
        a[y0 : y0 + size, x0 : x0 + size] = FG_AB
        gray[t], ab[t] = g, a
        xs.append(x0)
    return gray, ab, xs


def run(sm, gray, ab, batch: int = 5) -> np.ndarray:
    outs = [sm.process(gray[i : i + batch], ab[i : i + batch]) for i in range(0, len(ab), batch)]
    outs.append(sm.flush())
    outs = [o for o in outs if len(o)]
    return np.concatenate(outs)


def trail_error(out: np.ndarray, xs, step: int = 2, size: int = 20, width: int = 6) -> float:
    """Worst chroma error in the background strip just uncovered behind the square."""
    y0 = (H - size) // 2
    worst = 0.0
    for t in range(5, len(out)):
        x0 = xs[t]
        strip = out[t, y0 + 3 : y0 + size - 3, max(0, x0 - width) : x0 - 1]
        worst = max(worst, float(np.abs(strip - BG_AB).max()))
    return worst


@pytest.mark.parametrize("name", ["flow", "flow2"])
def test_moving_square_keeps_color_without_ghost(name):
    gray, ab, xs = moving_square()
    out = run(make_smoother(name), gray, ab)
    assert out.shape == ab.shape
    size, y0 = 20, (72 - 20) // 2
    for t in range(len(out)):  # the square's inside keeps its color
        inner = out[t, y0 + 4 : y0 + size - 4, xs[t] + 4 : xs[t] + size - 4]
        assert np.abs(inner - FG_AB).max() < 3.0
    assert trail_error(out, xs) < 6.0


def test_ema_baseline_ghosts():
    """The same check fails for a plain EMA: the trail would be caught."""
    gray, ab, xs = moving_square()
    out = run(EMASmoother(alpha=0.5), gray, ab)
    assert trail_error(out, xs) > 20.0


def _two_shots(n1: int = 10, n2: int = 10):
    g1, a1 = np.stack([_texture(1)] * n1), np.broadcast_to(BG_AB, (n1, H, W, 2)).copy()
    # Second shot: brighter, different structure and color.
    g2, a2 = np.stack([_texture(2, lo=120, hi=230)] * n2), np.broadcast_to(FG_AB, (n2, H, W, 2)).copy()
    return np.concatenate([g1, g2]), np.concatenate([a1, a2])


@pytest.mark.parametrize("name", ["flow", "flow2"])
def test_hard_cut_does_not_blend_shots(name):
    gray, ab = _two_shots()
    sm = make_smoother(name)
    out = run(sm, gray, ab, batch=3)
    np.testing.assert_allclose(out[:10], ab[:10], atol=1e-3)
    np.testing.assert_allclose(out[10:], ab[10:], atol=1e-3)
    assert sm.cuts == 1


def test_cut_detector_ignores_motion():
    gray, _, _ = moving_square(n=6, step=4)
    for t in range(1, len(gray)):
        assert not temporal.is_cut(gray[t - 1], gray[t])
    g, _ = _two_shots(1, 1)
    assert temporal.is_cut(g[0], g[1])


@pytest.mark.parametrize("name", ["flow", "flow2"])
def test_flicker_is_reduced(name):
    gray, ab, _ = moving_square(n=30)
    rng = np.random.default_rng(3)
    offsets = rng.normal(0, 8.0, (len(ab), 1, 1, 2)).astype(np.float32)
    noisy = ab + offsets
    out = run(make_smoother(name), gray, noisy)
    # Frame-to-frame change of the background's mean chroma (the flicker).
    def flicker(x):
        m = x[:, :10, :].mean(axis=(1, 2))
        return float(np.abs(np.diff(m, axis=0)).mean())

    assert flicker(out) < 0.5 * flicker(noisy)


def test_streaming_matches_any_batching_and_flushes():
    gray, ab, _ = moving_square(n=13)
    rng = np.random.default_rng(0)
    ab = ab + rng.normal(0, 4.0, ab.shape).astype(np.float32)
    ref = run(FlowSmoother(lookahead=2), gray, ab, batch=13)
    for batch in (1, 4):
        sm = FlowSmoother(lookahead=2)
        got = run(sm, gray, ab, batch=batch)
        np.testing.assert_allclose(got, ref, atol=1e-4)
    sm = FlowSmoother(lookahead=2)
    assert sm.delay == 2
    assert len(sm.process(gray[:2], ab[:2])) == 0  # held back
    assert len(sm.flush()) == 2
    assert len(sm.flush()) == 0


def test_registry_and_errors():
    assert temporal.DEFAULT in temporal.SMOOTHERS
    assert isinstance(make_smoother("none"), NoSmoothing)
    with pytest.raises(ValueError):
        make_smoother("nope")
    with pytest.raises(ValueError):
        FlowSmoother().process(np.zeros((1, 4, 4), np.float32), np.zeros((1, 4, 4, 2), np.float32))


def test_warp_error_zero_for_consistent_motion():
    gray, _, _ = moving_square(n=2, step=3)
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    fw = temporal.dis_flow(gray[0], gray[1])
    bw = temporal.dis_flow(gray[1], gray[0])
    mask = temporal.occlusion_mask(fw, bw)
    assert 0.5 < mask.mean() <= 1.0
    e = temporal.warp_error(rgb[0], rgb[1], fw, mask)
    still = temporal.warp_error(rgb[0], rgb[0], np.zeros_like(fw), np.ones_like(mask))
    assert still == 0.0
    assert e < 0.2 * temporal.warp_error(rgb[0], rgb[1], np.zeros_like(fw), np.ones_like(mask))


def test_caller_may_reuse_batch_buffers():
    gray, ab, _ = moving_square(n=8)
    ref = run(FlowSmoother(lookahead=2), gray, ab, batch=4)
    sm = FlowSmoother(lookahead=2)
    g_buf, a_buf = np.empty((4, H, W), np.uint8), np.empty((4, H, W, 2), np.float32)
    outs = []
    for i in (0, 4):
        g_buf[:], a_buf[:] = gray[i : i + 4], ab[i : i + 4]
        outs.append(sm.process(g_buf, a_buf).copy())
        g_buf[:], a_buf[:] = 0, 99.0  # scribble over the buffers
    outs.append(sm.flush())
    np.testing.assert_allclose(np.concatenate(outs), ref, atol=1e-4)


def test_flow_does_not_depend_on_earlier_frame_sizes():
    """Regression: a shared DIS object that had seen another size gave different flow."""
    import cv2

    gray, _, _ = moving_square()
    rng = np.random.default_rng(1)
    big = rng.integers(0, 255, (16, 32), dtype=np.uint8)  # a tiny frame (as in the pipeline tests)
    temporal.dis_flow(big, big)
    fresh = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
    fresh.setFinestScale(1)
    np.testing.assert_array_equal(temporal.dis_flow(gray[0], gray[1]), fresh.calc(gray[0], gray[1], None))


def test_static_alpha_smooths_still_background_more_and_keeps_the_square():
    gray, ab, xs = moving_square(n=30)
    rng = np.random.default_rng(3)
    noisy = ab + rng.normal(0, 8.0, (len(ab), 1, 1, 2)).astype(np.float32)

    def flicker(x):
        m = x[:, :10, :].mean(axis=(1, 2))  # the still background strip
        return float(np.abs(np.diff(m, axis=0)).mean())

    plain = run(FlowSmoother(), gray, noisy)
    still = run(FlowSmoother(static_alpha=0.2, static_px=0.25), gray, noisy)
    assert flicker(still) < 0.8 * flicker(plain)
    clean = run(FlowSmoother(static_alpha=0.2, static_px=0.25), gray, ab)
    assert trail_error(clean, xs) < 6.0  # the moving square still leaves no ghost
    with pytest.raises(ValueError):
        FlowSmoother(static_alpha=0.0)


def test_default_smooths_still_scenes_harder_than_flow():
    """flow2 (the default) uses a smaller alpha where nothing moves: less flicker on a still shot."""
    assert temporal.DEFAULT == "flow2" and make_smoother("flow2").static_alpha is not None
    gray = np.stack([_texture(1)] * 30)
    rng = np.random.default_rng(5)
    noisy = np.broadcast_to(BG_AB, gray.shape + (2,)) + rng.normal(0, 6.0, (30, 1, 1, 2)).astype(np.float32)

    def flicker(x):
        return float(np.abs(np.diff(x.mean(axis=(1, 2)), axis=0)).mean())

    f_flow, f_flow2 = (flicker(run(make_smoother(n), gray, noisy)[5:]) for n in ("flow", "flow2"))
    assert f_flow2 < 0.8 * f_flow < 0.8 * flicker(noisy[5:])
