"""``evaluate_video`` / ``evaluate_paths`` / ``animecolor evaluate`` on a tiny synthetic clip."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import write_rgb_clip

from animecolor import evaluate as ev
from animecolor.cli import main
from animecolor.colorize import GrayColorizer, LutColorizer, ModelColorizer
from animecolor.model import ModelConfig, ResidualColorizer, save_model
from animecolor.temporal import TemporalSmoother

# Flat cel colors whose brightness alone tells them apart: color is a function of luma.
PALETTE = np.array([[30, 40, 150], [200, 50, 40], [70, 190, 80], [250, 230, 90]], np.uint8)
W, H, N = 64, 48, 8


def _frame(t: int) -> np.ndarray:
    """Blue sky, a red and a green block sliding, a yellow sun: cartoon-like, all flat."""
    img = np.empty((H, W, 3), np.uint8)
    img[:] = PALETTE[0]
    img[28:, :] = PALETTE[2]
    x = 4 + 3 * t
    img[10:30, x : x + 16] = PALETTE[1]
    img[4:14, 48:58] = PALETTE[3]
    return img


def _write_clip(path: Path, n: int = N) -> Path:
    return write_rgb_clip(path, (_frame(t) for t in range(n)), fps=10, pix_fmt="yuv444p")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return _write_clip(tmp_path_factory.mktemp("clips") / "cels.mkv")


@pytest.fixture(scope="module")
def tiny_random_model(tmp_path_factory) -> Path:
    import torch

    torch.manual_seed(0)
    model = ResidualColorizer(ModelConfig(decoder_widths=[8, 8, 8, 8, 8], working_long_side=64))
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_model(model, path)
    return path


def test_result_keys_and_shapes(clip, tiny_random_model):
    from animecolor.model import load_model

    cols = {"tiny": ModelColorizer(load_model(tiny_random_model), "cpu", name="tiny"), "gray": GrayColorizer()}
    seen = []
    res = ev.evaluate_video(clip, cols, batch_size=3, progress=lambda *a: seen.append(a))
    assert res["frames"] == N and res["size"] == [W, H] and res["source_size"] == [W, H]
    assert set(res["colorizers"]) == {"tiny", "gray"}
    for r in res["colorizers"].values():
        assert set(r) >= {"ciede2000", "psnr", "ssim", "colorfulness", "colorfulness_ratio", "cdc", "frames"}
        assert r["frames"] == N
        assert all(math.isfinite(r[k]) for k in ev.METRIC_KEYS)
    assert res["ground_truth"]["colorfulness"] > 20
    gray = res["colorizers"]["gray"]
    assert gray["colorfulness"] == pytest.approx(0.0, abs=1e-6)
    assert gray["colorfulness_ratio"] == pytest.approx(0.0, abs=1e-6)
    assert gray["ciede2000"] > 5
    assert gray["cdc"] == pytest.approx(0.0, abs=0.05)  # gray output barely changes its histogram
    # progress after each batch of 3: 3, 6, 8 frames
    assert [s[1] for s in seen] == [3, 6, 8] and seen[0][0] == "cels.mkv"


def test_lut_fitted_on_brightness_coded_clip_beats_gray(clip):
    lut = ev.fit_lut([clip], stride=1)
    res = ev.evaluate_video(clip, {"gray": GrayColorizer(), "lut": lut})
    gray, lutr = res["colorizers"]["gray"], res["colorizers"]["lut"]
    assert lutr["ciede2000"] < 0.35 * gray["ciede2000"]
    assert lutr["psnr"] > gray["psnr"] + 5
    assert 0.6 < lutr["colorfulness_ratio"] < 1.4


def test_stride_max_frames_and_resize(clip):
    res = ev.evaluate_video(clip, {"gray": GrayColorizer()}, stride=2, max_frames=3, max_side=32)
    assert res["frames"] == 3 and res["stride"] == 2
    assert res["size"] == [32, 24]


class _DelayOne(TemporalSmoother):
    """Look-ahead of one frame: returns each frame one call late, the rest on flush."""

    delay = 1

    def __init__(self):
        self.calls = 0
        self.held = None

    def process(self, gray, ab):
        self.calls += 1
        assert gray.shape[:3] == ab.shape[:3]
        seq = ([self.held] if self.held is not None else []) + list(ab)
        self.held = seq.pop()
        return np.stack(seq) if seq else np.zeros((0,) + ab.shape[1:], np.float32)

    def flush(self):
        out = np.stack([self.held]) if self.held is not None else np.zeros((0, 1, 1, 2), np.float32)
        self.held = None
        return out


def test_smoother_with_delay_scores_every_frame(clip):
    made = []

    def factory():
        made.append(_DelayOne())
        return made[-1]

    plain = ev.evaluate_video(clip, {"lut": ev.fit_lut([clip])}, batch_size=1)
    res = ev.evaluate_video(clip, {"lut": ev.fit_lut([clip])}, batch_size=1, smoother_factory=factory)
    assert len(made) == 1 and made[0].calls == N
    assert res["colorizers"]["lut"]["frames"] == N
    # the delay must not misalign frames with their ground truth
    assert res["colorizers"]["lut"]["ciede2000"] == pytest.approx(plain["colorizers"]["lut"]["ciede2000"], rel=1e-6)


def test_evaluate_paths_overall_is_frame_weighted(clip, tmp_path):
    _write_clip(tmp_path / "short.mkv", n=2)
    cols = {"gray": GrayColorizer(), "lut": LutColorizer(np.zeros((256, 2), np.float32) + 20.0)}
    rep = ev.evaluate_paths([clip, tmp_path], cols)
    assert [Path(c["path"]).name for c in rep["clips"]] == ["cels.mkv", "short.mkv"]
    assert rep["overall"]["frames"] == N + 2
    a, b = (c["colorizers"]["lut"]["ciede2000"] for c in rep["clips"])
    assert rep["overall"]["colorizers"]["lut"]["ciede2000"] == pytest.approx((N * a + 2 * b) / (N + 2))
    md = ev.to_markdown(rep, ["lut baseline: constant"])
    assert "| gray |" in md and "### short.mkv" in md and "lut baseline: constant" in md


def test_find_videos_errors(tmp_path):
    with pytest.raises(ValueError, match="no video files"):
        ev.find_videos([tmp_path])
    with pytest.raises(FileNotFoundError):
        ev.find_videos([tmp_path / "nope.mp4"])


def test_cli_evaluate(clip, tiny_random_model, tmp_path, capsys):
    js, md = tmp_path / "r.json", tmp_path / "r.md"
    rc = main(
        ["evaluate", str(clip), "--weights", str(tiny_random_model), "--fit-lut", str(clip),
         "--json", str(js), "--markdown", str(md), "--quiet", "--device", "cpu"]
    )  # fmt: skip
    assert rc == 0
    rep = json.loads(js.read_text())
    assert list(rep["overall"]["colorizers"]) == ["tiny.safetensors", "gray", "lut"]
    assert "| tiny.safetensors |" in md.read_text()
    assert "Overall" in capsys.readouterr().out


def test_cli_evaluate_without_lut_says_so(clip, tiny_random_model, capsys):
    rc = main(["evaluate", str(clip), "--weights", str(tiny_random_model), "--max-frames", "2", "--quiet"])
    assert rc == 0
    cap = capsys.readouterr()
    assert "lut baseline skipped" in cap.out and "lut" in cap.err


def test_cli_baselines_only(clip, capsys):
    assert main(["evaluate", str(clip), "--baselines-only", "--fit-lut", str(clip), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "lut" in out and "gray" in out and "default" not in out


def test_cli_evaluate_bad_input(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "missing.mp4")]) == 1
    assert "animecolor: error:" in capsys.readouterr().err


def test_cli_evaluate_bad_report_path_fails_before_evaluating(clip, tmp_path, capsys, monkeypatch):
    from animecolor import evaluate as ev

    def boom(*a, **k):
        raise AssertionError("evaluated before checking the report path")

    monkeypatch.setattr(ev, "evaluate_paths", boom)
    for flag, path, msg in [("--markdown", tmp_path / "no_such_dir" / "r.md", "report folder does not exist"),
                            ("--json", tmp_path, "report path is a directory")]:
        assert main(["evaluate", str(clip), "--baselines-only", flag, str(path), "--quiet"]) == 1
        err = capsys.readouterr().err
        assert msg in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "no_such_dir").exists()


def test_cli_evaluate_says_when_it_replaces_a_report(clip, tmp_path, capsys):
    md = tmp_path / "r.md"
    md.write_text("old")
    assert main(["evaluate", str(clip), "--baselines-only", "--max-frames", "2", "--markdown", str(md), "--quiet"]) == 0
    assert "(replaced the previous file)" in capsys.readouterr().out and "old" not in md.read_text()
