"""The learned refinement of the keyframe/reference transfer (animecolor.refine): plumbing, loading, effect."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from animecolor import reference as R
from animecolor.colorize import DEFAULT_WEIGHTS, apply_colorizer, load_colorizer
from animecolor.model import WeightsError
from animecolor.refine import Refiner, RefinerConfig, load_refiner, save_refiner

from conftest import ConstColorizer, clip_frame


@pytest.fixture(scope="module")
def base():
    return load_colorizer(None, "cpu")


def tiny_random_refiner(use_base: bool = True, feat_proj: int = 2) -> Refiner:
    """A TINY RANDOM refiner for plumbing tests only (its output layer randomized too): not a model."""
    torch.manual_seed(0)
    net = Refiner(RefinerConfig(feat_proj=feat_proj, width=4, blocks=1, use_base=use_base))
    torch.nn.init.normal_(net.out.weight, std=0.5)
    return net.eval()


def _gray(base, W, H, frames):
    from animecolor import frames as fr

    return np.stack([fr.model_input(fr.rgb_to_y(f), base.working_size(W, H)) for f in frames])


def test_tiny_random_refiner_plumbing(base, tmp_path):
    # the refiner changes the keyframed shot only; the other shot gets the fallback exactly; save/load round trip
    W, H = 128, 96
    kf = [R.Keyframe(clip_frame(0, W, H, gray=False), 0.5)]
    fallback = ConstColorizer(7.0, -9.0)
    gray = _gray(base, W, H, [clip_frame(i, W, H, gray=False) for i in (1, 2, 3)])
    times = [1.0, 1.5, 2.5]
    plain = apply_colorizer(R.KeyframeColorizer(base, kf, cuts=[2.0], fallback=fallback), gray, times)
    net = tiny_random_refiner()
    refined = apply_colorizer(R.KeyframeColorizer(base, kf, cuts=[2.0], fallback=fallback, refiner=net), gray, times)
    assert refined.shape == plain.shape and np.isfinite(refined).all()
    assert np.allclose(refined[2], [7.0, -9.0]) and np.allclose(plain[2], [7.0, -9.0])
    assert np.abs(refined[:2] - plain[:2]).mean() > 0.5
    path = tmp_path / "tiny.safetensors"
    save_refiner(net, path, {"what": "tiny random, tests only"})
    again = load_refiner(path)
    assert again.info == {"what": "tiny random, tests only"}
    col = R.KeyframeColorizer(base, kf, cuts=[2.0], fallback=fallback, refiner=again)
    assert np.allclose(apply_colorizer(col, gray, times), refined, atol=1e-5)
    # without the base-model (and feature) input: still one a/b per pixel
    nb = apply_colorizer(R.KeyframeColorizer(base, kf, refiner=tiny_random_refiner(use_base=False, feat_proj=0)), gray, times)
    assert nb.shape == plain.shape and np.isfinite(nb).all()


def test_untrained_refiner_starts_near_the_transfer():
    # zero-initialized output layer: ab = transfer + sigmoid(-4) * (base - transfer)
    net = Refiner().eval()
    tr = torch.randn(1, 2, 16, 24) * 20
    bs = torch.randn(1, 2, 16, 24) * 20
    out = net(torch.rand(1, 1, 16, 24) * 255, tr, torch.rand(1, 1, 4, 6), bs, torch.randn(1, 152, 4, 6))
    w = torch.sigmoid(torch.tensor(-4.0))
    assert torch.allclose(out, tr + w * (bs - tr), atol=1e-4)


def test_bad_refiner_files_are_one_line_errors(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_refiner(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(WeightsError, match="not a safetensors") as e:
        load_refiner(junk)
    assert "\n" not in str(e.value)
    with pytest.raises(WeightsError, match="not an animecolor-refiner checkpoint"):  # the colorizer's weights
        load_refiner(DEFAULT_WEIGHTS)
