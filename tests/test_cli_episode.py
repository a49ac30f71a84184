"""``animecolor episode`` on the command line: outputs, the weights line, one-line errors."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import decode_planes

from animecolor.cli import main


def test_episode_cli_writes_output_and_names_weights(clip, tmp_path, tiny_random_model, capsys):
    src = clip("in.mp4", n=5, audio_tracks=1)
    dst = tmp_path / "out.mp4"
    rc = main(["episode", str(src), str(dst), "--weights", str(tiny_random_model), "--device", "cpu",
               "--batch-size", "2", "--preset", "ultrafast", "--temporal", "none"])
    err = capsys.readouterr().err
    assert rc == 0
    assert f"using weights {tiny_random_model}" in err and "tiny random model" in err
    assert "wrote" in err and len(decode_planes(dst)) == 5


def test_episode_cli_quiet_prints_nothing(clip, tmp_path, tiny_random_model, capsys):
    src = clip("in.mp4", n=3)
    rc = main(["episode", str(src), str(tmp_path / "o.mkv"), "--weights", str(tiny_random_model), "-q"])
    out = capsys.readouterr()
    assert rc == 0 and out.out == "" and out.err == ""


def test_episode_cli_errors_are_one_line(clip, tmp_path, tiny_random_model, capsys):
    src = clip("in.mp4", n=3)
    w = ["--weights", str(tiny_random_model), "-q"]
    cases = [
        ([str(tmp_path / "missing.mp4"), str(tmp_path / "o.mp4")], "input not found"),
        ([str(src), str(src), "--overwrite"], "same file"),
        ([str(src), str(src.parent / "in.mp4")], "same file"),
        ([str(src), str(tmp_path / "nodir" / "o.mp4")], "output folder does not exist"),
        ([str(src), str(tmp_path / "o.mp4"), "--codec", "no-such-codec"], "not available"),
        ([str(src), str(tmp_path / "o.mp4"), "--threads", "0"], "--threads must be >= 1"),
        ([str(src), str(tmp_path / "o.mp4"), "--working-size", "100"], "--working-size must be a multiple of 32"),
        ([str(src), str(tmp_path / "o.mp4"), "--temperature", "0"], "--temperature must be between"),
    ]
    for argv, msg in cases:
        rc = main(["episode", *argv, *w])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 1 and len(err) == 1, (argv, err)
        assert err[0].startswith("animecolor: error:") and msg in err[0], err[0]
    (tmp_path / "exists.mp4").write_bytes(b"x")
    assert main(["episode", str(src), str(tmp_path / "exists.mp4"), *w]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.mp4", "in.mp4"]


def test_missing_weights_say_which_file(clip, tmp_path, capsys):
    src = clip("in.mp4", n=2)
    rc = main(["episode", str(src), str(tmp_path / "o.mp4"), "--weights", str(tmp_path / "none.safetensors")])
    err = capsys.readouterr().err
    assert rc == 1 and "none.safetensors" in err


def test_working_size_overrides_the_checkpoint(tiny_random_model):
    from animecolor.colorize import load_colorizer

    assert load_colorizer(tiny_random_model, "cpu").working_size(640, 480) == (64, 64)  # the checkpoint's 64 px
    col = load_colorizer(tiny_random_model, "cpu", working_long_side=128)
    assert col.working_size(640, 480) == (128, 96)
    assert col(np.full((1, 96, 128), 100, np.uint8)).shape == (1, 48, 64, 2)


def test_temperature_overrides_the_checkpoint(tiny_random_model, tmp_path):
    """Lower temperature = more saturated decoded colors; a regression head refuses the option."""
    from animecolor.colorize import load_colorizer
    from animecolor.model import ModelConfig, ResidualColorizer, save_model

    gray = np.random.default_rng(0).integers(0, 256, (2, 64, 64), dtype=np.uint8)
    chroma = {t: np.abs(load_colorizer(tiny_random_model, "cpu", temperature=t)(gray)).mean() for t in (0.2, 1.0, 5.0)}
    assert chroma[0.2] > chroma[1.0] > chroma[5.0], chroma
    assert load_colorizer(tiny_random_model, "cpu", temperature=0.2).cfg.temperature == 0.2
    reg = tmp_path / "reg.safetensors"
    save_model(ResidualColorizer(ModelConfig(head="reg", decoder_widths=[8] * 5, working_long_side=64)), reg, {})
    with pytest.raises(ValueError, match="classification-head"):
        load_colorizer(reg, "cpu", temperature=0.5)
