"""The ONNX Runtime path (animecolor.runtime): same colors as PyTorch, never a stale export."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import pytest

pytest.importorskip("onnxruntime")

from animecolor import frames  # noqa: E402
from animecolor.colorize import DEFAULT_WEIGHTS, ModelColorizer, load_colorizer  # noqa: E402
from animecolor.model import file_sha256
from animecolor.runtime import OnnxColorizer, find_export  # noqa: E402

DATA = Path(__file__).parent / "data"


def _gray_batch(col, n: int = 2) -> np.ndarray:
    """Real frames (the held-out BBB test frames) at the colorizer's working size."""

    out = []
    for p in sorted(DATA.glob("bbb_eval_*.png"))[:n]:
        rgb = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
        y = frames.rgb_to_y(rgb)
        out.append(frames.model_input(y, col.working_size(y.shape[1], y.shape[0])))
    return np.stack(out)


def test_shipped_weights_have_a_matching_export():
    onnx_path = DEFAULT_WEIGHTS.with_suffix(".onnx")
    assert onnx_path.is_file(), "weights/default.onnx is missing: run pipelines/export_onnx.py"
    assert find_export(DEFAULT_WEIGHTS, file_sha256(DEFAULT_WEIGHTS)) == onnx_path


@pytest.mark.parametrize("temperature", [None, 0.5])
def test_shipped_onnx_gives_the_same_chroma_as_pytorch(temperature):
    ort_col = load_colorizer(None, "cpu", temperature=temperature)  # auto: the shipped export
    torch_col = load_colorizer(None, "cpu", temperature=temperature, runtime="torch")
    assert isinstance(ort_col, OnnxColorizer) and ort_col.runtime == "onnx"
    assert isinstance(torch_col, ModelColorizer)
    gray = _gray_batch(torch_col)
    a, b = torch_col(gray), ort_col(gray)
    assert a.shape == b.shape and a.dtype == b.dtype == np.float32
    assert np.abs(a).max() > 5  # real colors, not a collapse to gray
    assert np.abs(a - b).max() < 2e-3


def test_other_weights_export_once_into_the_cache(tiny_random_model, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    col = load_colorizer(tiny_random_model, "cpu")  # auto on CPU: exported on first use
    assert isinstance(col, OnnxColorizer)
    cached = list((tmp_path / "cache" / "animecolor").glob("*.onnx"))
    assert [p.stem for p in cached] == [file_sha256(tiny_random_model)]
    stamp = cached[0].stat().st_mtime_ns
    assert isinstance(load_colorizer(tiny_random_model, "cpu", runtime="onnx"), OnnxColorizer)  # found, not redone
    assert cached[0].stat().st_mtime_ns == stamp
    gray = np.random.default_rng(0).integers(0, 256, (3, 64, 96), dtype=np.uint8)
    ref = load_colorizer(tiny_random_model, "cpu", runtime="torch")(gray)
    assert np.abs(col(gray) - ref).max() < 2e-3
    assert col(gray[:0]).shape == (0, 32, 48, 2)


def test_stale_export_is_not_used(tiny_random_model, tmp_path, monkeypatch):
    """An export beside the weights that was made from other weights is ignored (its digest differs)."""
    import shutil

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    weights = tmp_path / "mine.safetensors"
    shutil.copy(tiny_random_model, weights)
    shutil.copy(DEFAULT_WEIGHTS.with_suffix(".onnx"), tmp_path / "mine.onnx")
    assert find_export(weights, file_sha256(weights)) is None
    col = load_colorizer(weights, "cpu")
    assert isinstance(col, OnnxColorizer) and col.path.parent == tmp_path / "cache" / "animecolor"  # fresh, not the stale one


def test_auto_falls_back_to_pytorch_when_it_cannot_export(tiny_random_model, tmp_path, monkeypatch):
    import sys

    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # the cache cannot be made
    assert isinstance(load_colorizer(tiny_random_model, "cpu"), ModelColorizer)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setitem(sys.modules, "onnx", None)  # no onnx package
    assert isinstance(load_colorizer(tiny_random_model, "cpu"), ModelColorizer)
    assert not (tmp_path / "cache" / "animecolor").exists() or not list((tmp_path / "cache" / "animecolor").glob("*.onnx"))


def test_bad_runtime_is_refused():
    with pytest.raises(ValueError, match="runtime must be one of"):
        load_colorizer(None, "cpu", runtime="tensorrt")


def test_shipped_export_gives_the_matchers_features_and_the_same_keyframe_colors():
    """The guided modes run the network on ONNX Runtime too: same features, same keyframe colors as PyTorch."""
    from animecolor import reference as R

    ort_col = load_colorizer(None, "cpu")
    torch_col = load_colorizer(None, "cpu", runtime="torch")
    assert ort_col.features_source == R.KEYFRAME_PARAMS.features == R.REFERENCE_PARAMS.features
    gray = _gray_batch(torch_col, 2)
    f_ort, ab_ort = R._Features(ort_col, R.KEYFRAME_PARAMS.features)(gray, with_prediction=True)
    f_pt, ab_pt = R._Features(torch_col, R.KEYFRAME_PARAMS.features)(gray, with_prediction=True)
    assert f_ort.shape == f_pt.shape == (2, f_pt.shape[1], gray.shape[1] // 8, gray.shape[2] // 8)
    assert torch.allclose(f_ort.norm(dim=1), torch.ones(1), atol=1e-4)
    assert (f_ort - f_pt).abs().max() < 1e-4 and (ab_ort - ab_pt).abs().max() < 2e-3
    key = cv2.cvtColor(cv2.imread(str(sorted(DATA.glob("bbb_eval_*.png"))[0])), cv2.COLOR_BGR2RGB)
    outs = [R.KeyframeColorizer(c, [R.Keyframe(key, 0.0)])(gray, [0.0, 0.04]) for c in (ort_col, torch_col)]
    assert np.abs(outs[0]).max() > 5 and np.abs(outs[0] - outs[1]).max() < 0.05
