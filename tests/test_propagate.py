"""Flow propagation of a keyframe's chroma (animecolor.propagate)."""
from __future__ import annotations

import numpy as np
import pytest

from animecolor.propagate import KeyframeTrack, PropagateParams

H, W = 96, 128
RED, BLUE = (40.0, 25.0), (10.0, -45.0)


def _scene(x: int) -> tuple[np.ndarray, np.ndarray]:
    """Textured gray background (blue) with a brighter textured square (red) at column ``x``."""
    rng = np.random.default_rng(0)
    tex = rng.integers(0, 60, size=(H // 4, (W + 64) // 4), dtype=np.uint8).repeat(4, 0).repeat(4, 1)
    gray = (60 + tex[:, 32 : 32 + W]).astype(np.uint8)
    ab = np.empty((H, W, 2), np.float32)
    ab[:] = BLUE
    gray[30:62, x : x + 32] = 160 + tex[30:62, :32]
    ab[30:62, x : x + 32] = RED
    return gray, ab


def test_track_carries_the_keyframe_color_with_the_motion():
    g0, ab0 = _scene(20)
    track = KeyframeTrack(g0, ab0)
    for x in range(22, 42, 2):  # the square moves 20 px right in 10 frames
        g, ab_true = _scene(x)
        carried, trust = track.step(g)
    inner = (slice(36, 56), slice(x + 6, x + 26))
    assert np.abs(carried[inner] - np.array(RED)).max() < 3.0  # red followed the square
    assert trust[inner].mean() > 0.9
    # where the square was in the keyframe the background shows now: red is not trusted there (the
    # straight flow to the keyframe may match some of it to the background's texture: blue)
    left = (slice(36, 56), slice(22, 34))
    is_red = np.abs(carried[left] - np.array(RED)).max(-1) < 10
    assert (trust[left] * is_red).mean() < 0.2


def test_trust_falls_where_the_frame_no_longer_matches_the_keyframe():
    g0, ab0 = _scene(20)
    track = KeyframeTrack(g0, ab0)
    g = g0.copy()
    g[:, W // 2 :] = 255 - g[:, W // 2 :]  # new content on the right half
    _, trust = track.step(g)
    assert trust[:, : W // 2 - 8].mean() > 0.9
    assert trust[:, W // 2 + 8 :].mean() < 0.2


def test_gain_keeps_trust_through_a_fade():
    # the square moves while the whole picture darkens (a fade, film exposure flicker):
    # the plain brightness test loses the track, the gain-compensated one keeps it
    g0, ab0 = _scene(20)
    plain = KeyframeTrack(g0, ab0, PropagateParams(gain=False, direct=False))
    gained = KeyframeTrack(g0, ab0, PropagateParams(direct=False))  # default: gain on
    for i, x in enumerate(range(22, 32, 2)):
        g, _ = _scene(x)
        g = np.clip(g.astype(np.float32) * (1.0 - 0.07 * (i + 1)) + 3 * (i + 1), 0, 255).astype(np.uint8)
        (_, t_plain), (carried, t_gain) = plain.step(g), gained.step(g)
    inner = (slice(36, 56), slice(x + 6, x + 26))
    assert t_plain.mean() < 0.2
    assert t_gain.mean() > 0.7 and t_gain[inner].mean() > 0.9 and np.abs(carried[inner] - np.array(RED)).max() < 3.0


def test_direct_flow_finds_the_keyframe_again_after_a_flash():
    # two frames of other content (a flash) break the frame-to-frame chain; when the scene comes back
    # (the square moved on meanwhile) only the straight flow to the keyframe finds it again, and the
    # chain then carries it on from there
    g0, ab0 = _scene(20)
    tracks = {d: KeyframeTrack(g0, ab0, PropagateParams(direct=d)) for d in (False, True)}
    flash = np.random.default_rng(1).integers(0, 255, size=(H, W), dtype=np.uint8)
    frames = [_scene(22)[0], flash, flash, _scene(30)[0], _scene(32)[0], _scene(34)[0]]
    out = {d: [t.step(g) for g in frames] for d, t in tracks.items()}
    back = (slice(36, 56), slice(36, 56))  # inside the square at x = 30 .. 34
    for i in (3, 4, 5):
        assert out[False][i][1][back].mean() < 0.5
        carried, trust = out[True][i]
        assert trust[back].mean() > 0.9 and np.abs(carried[back] - np.array(RED)).max() < 3.0


def test_params_and_sizes_are_checked():
    with pytest.raises(ValueError):
        PropagateParams(err_lo=10, err_hi=5)
    g0, ab0 = _scene(20)
    with pytest.raises(ValueError):
        KeyframeTrack(g0, ab0[..., :1])
    with pytest.raises(ValueError):
        KeyframeTrack(g0, ab0).step(g0[:-2])
