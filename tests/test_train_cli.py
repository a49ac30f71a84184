"""``animecolor train`` / ``animecolor finetune`` and ``TrainConfig.patience``, on tiny data and a tiny model.

Everything runs a handful of steps on 32-64 px crops with the tiny random
model (EfficientNet-Lite0 backbone, 8-wide decoder), so the file stays fast.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import write_rgb_clip

from animecolor import train as train_mod
from animecolor.cli import main
from animecolor.colorize import load_colorizer
from animecolor.dataset import FrameDataset, build_dataset, read_manifest
from animecolor.finetune import TEMPERATURES, finetune, tune_temperature
from animecolor.model import file_sha256
from animecolor.model import read_metadata

W = H = 80
SCENES = [((230, 150, 60), (210, 30, 30)), ((60, 190, 80), (30, 60, 220)), ((150, 60, 170), (240, 220, 40)),
          ((90, 170, 220), (250, 120, 160))]


def color_frames(per_scene: int = 6) -> list[np.ndarray]:
    """A tiny color cartoon: four scenes (background + moving disc each), one cut between each."""
    yy, xx = np.mgrid[0:H, 0:W]
    frames = []
    for bg, fg in SCENES:
        for i in range(per_scene):
            img = np.empty((H, W, 3), np.uint8)
            img[...] = bg
            img -= (yy * 50 // H).astype(np.uint8)[..., None] // 2  # luma gradient: texture
            d = np.hypot(xx - (12 + 11 * i), yy - H // 2)
            img[d < 12] = fg
            img[np.abs(d - 12) < 1.2] = (15, 15, 15)
            frames.append(img)
    return frames


def write_color_clip(path: Path, frames: list[np.ndarray], fps: int = 12) -> Path:
    return write_rgb_clip(path, frames, fps=fps)


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """One intra-op thread: tiny tensors on a busy 2-core machine run ~4x faster than with 2 spinning threads."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def color_clip(tmp_path_factory) -> Path:
    return write_color_clip(tmp_path_factory.mktemp("color") / "series_ep1.mkv", color_frames())


@pytest.fixture(scope="module")
def tiny_dataset(color_clip, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ds") / "set"
    build_dataset([color_clip], out, size=64, val_fraction=0.3, seed=0)
    return out


def _train_args(ds: Path, run: Path, init: Path, *extra: str) -> list[str]:
    return ["train", str(ds), "-o", str(run), "--init", str(init), "--batch-size", "2", "--crop", "32",
            "--val-every", "2", "--device", "cpu", "-q", *extra]


def test_dataset_fixture_has_both_splits(tiny_dataset):
    m = read_manifest(tiny_dataset)
    assert m["splits"]["train"] >= 2 and m["splits"]["val"] >= 1


def test_train_cli_writes_checkpoints_and_resumes(tiny_dataset, tiny_random_model, tmp_path):
    run = tmp_path / "run"
    assert main(_train_args(tiny_dataset, run, tiny_random_model, "--steps", "3")) == 0
    last, best = run / "last.safetensors", run / "best.safetensors"
    assert last.is_file() and best.is_file()
    info = read_metadata(last)["info"]
    assert info["step"] == 3
    assert info["train"]["loss"] == "ce" and info["train"]["lr"] == pytest.approx(3e-4)  # fine-tune default lr
    assert info["base_model"]["sha256"] == file_sha256(tiny_random_model)
    assert info["dataset_manifest_checksum"] == read_manifest(tiny_dataset)["manifest_checksum"]
    assert info["val"]["n"] == read_manifest(tiny_dataset)["splits"]["val"]
    hist = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in hist] == [2, 3]
    # Rerun with more steps: continues from step 3 (not from 0) and keeps the provenance.
    assert main(_train_args(tiny_dataset, run, tiny_random_model, "--steps", "5")) == 0
    info2 = read_metadata(last)["info"]
    assert info2["step"] == 5 and info2["base_model"] == info["base_model"]
    hist = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in hist] == [2, 3, 4, 5]
    load_colorizer(best, device="cpu")


def test_train_cli_missing_dataset_is_one_line_error(tmp_path, tiny_random_model, capsys):
    rc = main(_train_args(tmp_path / "nope", tmp_path / "run", tiny_random_model, "--steps", "2"))
    assert rc == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("animecolor: error:") and "manifest.json" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run" / "last.safetensors").exists()


def test_train_cli_rejects_bad_crop_and_loss(tiny_dataset, tiny_random_model, tmp_path, capsys):
    assert main(_train_args(tiny_dataset, tmp_path / "r", tiny_random_model, "--crop", "40")) == 1
    assert "multiple of 32" in capsys.readouterr().err
    assert main(_train_args(tiny_dataset, tmp_path / "r", tiny_random_model, "--loss", "l1")) == 1
    assert "does not fit" in capsys.readouterr().err


def test_patience_stops_early_and_persists(tiny_dataset, tiny_random_model, tmp_path, monkeypatch):
    # A model that never improves on val: 1.0, then 1.0, 1.0, ... (first validation sets the best).
    scores = iter([1.0, 0.9, 0.95, 0.9, 1.2] + [5.0] * 50)
    monkeypatch.setattr(train_mod, "evaluate_batches",
                        lambda *a, **k: {"ab_mae": next(scores), "chroma_ratio": 1.0, "n": 1})
    run = tmp_path / "run"
    args = ["train", str(tiny_dataset), "-o", str(run), "--init", str(tiny_random_model), "--batch-size", "2",
            "--crop", "32", "--val-every", "1", "--patience", "3", "--steps", "40", "--device", "cpu", "-q"]
    assert main(args) == 0
    info = read_metadata(run / "last.safetensors")["info"]
    # best at validation 2 (0.9); validations 3, 4, 5 do not beat it -> stop at step 5.
    assert info["step"] == 5 and info["since_best"] == 3 and info["best_val"] == pytest.approx(0.9)
    assert read_metadata(run / "best.safetensors")["info"]["step"] == 2
    # A resumed run that already ran out of patience does not train further.
    assert main(args) == 0
    assert read_metadata(run / "last.safetensors")["info"]["step"] == 5


def test_train_library_patience_off_by_default(tiny_dataset, tiny_random_model, tmp_path, monkeypatch):
    monkeypatch.setattr(train_mod, "evaluate_batches", lambda *a, **k: {"ab_mae": 1.0, "chroma_ratio": 1.0, "n": 1})
    ds = FrameDataset(tiny_dataset, "train", 32, augment=True)
    cfg = train_mod.TrainConfig(steps=4, batch_size=2, val_every=1, warmup=1)
    res = train_mod.train(cfg, ds, ds, tmp_path / "r", init=str(tiny_random_model))
    assert res["step"] == 4 and not res["stopped_early"]


def test_finetune_library_self_describing_checkpoint(color_clip, tiny_random_model, tmp_path):
    events: list[str] = []
    res = finetune([color_clip], tmp_path / "ft", base=tiny_random_model, steps=3, batch_size=2, crop=32, size=64,
                   val_every=2, val_fraction=0.3, device="cpu", progress=lambda ev: events.append(ev["stage"]))
    best = Path(res["best"])
    assert best == tmp_path / "ft" / "best.safetensors" and best.is_file()
    assert (tmp_path / "ft" / "dataset" / "manifest.json").is_file()
    assert events[0] == "dataset" and "before" in events and "train" in events and events[-2:] == ["after", "temperature"]
    meta = read_metadata(best)
    info = meta["info"]
    # the decoding temperature was picked on the val frames and stored in the config
    tuned = info["temperature_tuning"]
    assert tuned["picked"] == res["temperature"]["picked"] == meta["config"].temperature
    assert set(tuned["rows"]) == {str(t) for t in TEMPERATURES}
    assert info["base_model"]["sha256"] == file_sha256(tiny_random_model)
    assert info["base_model"]["path"] == str(tiny_random_model.resolve())
    assert info["dataset_manifest_checksum"] == read_manifest(tmp_path / "ft" / "dataset")["manifest_checksum"]
    assert info["steps"] == res["steps"] >= 2
    assert info["finetune"]["before"]["ab_mae"] == pytest.approx(res["before"]["ab_mae"])
    assert info["finetune"]["after"]["ab_mae"] == pytest.approx(res["after"]["ab_mae"])
    assert res["before"]["n"] == res["after"]["n"] == res["dataset"]["val"] > 0
    col = load_colorizer(best, device="cpu")
    assert col(np.full((1, 64, 64), 128, np.uint8)).shape == (1, 32, 32, 2)

    # Rerun: the dataset is reused, training is already complete, the header stays self-describing.
    res2 = finetune([color_clip], tmp_path / "ft", base=tiny_random_model, steps=3, batch_size=2, crop=32, size=64,
                    val_every=2, device="cpu")
    assert res2["dataset"]["reused"] and res2["steps_run"] == 3
    assert res["trained_now"] and not res2["trained_now"]
    # "after" is measured at the base's temperature both times, not at the one picked by the first run
    assert res2["after"]["ab_mae"] == pytest.approx(res["after"]["ab_mae"])
    base_t = read_metadata(tiny_random_model)["config"].temperature
    assert res["temperature"]["base"] == res2["temperature"]["base"] == base_t
    assert read_metadata(best)["info"]["base_model"]["sha256"] == info["base_model"]["sha256"]


def test_tune_temperature_picks_lowest_error_among_colorful_enough(tiny_random_model):
    from animecolor.model import load_model

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    model = load_model(tiny_random_model)
    picked, rows = tune_temperature(model, frames, (0.4, 1.0), min_colorfulness=0.0)
    assert set(rows) == {"0.4", "1.0"} and all(r["n"] == 3 for r in rows.values())
    assert picked == float(min(rows, key=lambda t: rows[t]["ciede2000"]))
    # a colorfulness floor nobody reaches: fall back to the lowest error overall
    assert tune_temperature(model, frames, (0.4, 1.0), min_colorfulness=1e9)[0] == picked
    floor = min(r["colorfulness_ratio"] for r in rows.values()) + 1e-9
    only = [t for t, r in rows.items() if r["colorfulness_ratio"] >= floor]
    if only:  # the floor excludes the least colorful temperature
        assert str(tune_temperature(model, frames, (0.4, 1.0), min_colorfulness=floor)[0]) in only
    with pytest.raises(ValueError):
        tune_temperature(model, frames, ())


def test_finetune_cli_table_and_episode_loads(color_clip, tiny_random_model, tmp_path, capsys):
    run = tmp_path / "ft"
    rc = main(["finetune", str(color_clip), "-o", str(run), "--base", str(tiny_random_model), "--steps", "2",
               "--batch-size", "2", "--crop", "32", "--size", "64", "--val-every", "1", "--val-fraction", "0.3",
               "--device", "cpu", "-q", "--loss", "ce+l1"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "before" in out and "after" in out and "a/b MAE" in out
    assert read_metadata(run / "last.safetensors")["info"]["train"]["loss"] == "ce+l1"
    # A different base for the same run folder is refused (provenance would lie).
    other = tmp_path / "other.safetensors"
    from animecolor.model import load_model, save_model

    save_model(load_model(tiny_random_model), other, {"note": "different bytes"})
    rc = main(["finetune", str(color_clip), "-o", str(run), "--base", str(other), "--steps", "2", "--size", "64",
               "--crop", "32", "--device", "cpu", "-q"])
    assert rc == 1
    assert "another base model" in capsys.readouterr().err


def test_finetune_missing_base_and_bad_loss_are_one_line_errors(color_clip, tiny_random_model, tmp_path, capsys):
    rc = main(["finetune", str(color_clip), "-o", str(tmp_path / "ft"), "--base", str(tmp_path / "missing.safetensors")])
    assert rc == 1
    err = capsys.readouterr().err.strip()
    assert "base model not found" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "ft").exists()
    rc = main(["finetune", str(color_clip), "-o", str(tmp_path / "ft"), "--base", str(tiny_random_model), "--loss", "l1"])
    assert rc == 1 and "does not fit" in capsys.readouterr().err  # a regression loss on the ce head
    assert not (tmp_path / "ft").exists()


def test_ce_plus_l1_loss_pulls_the_decoded_mean_toward_the_l1_optimum():
    """One prediction for three pixels whose true a/b disagree (-50, 40, 50): CE's best mean is their mean
    (13), the L1-optimal color is their median (40); ``ce+l1`` lands nearer the median and its L1 error is lower."""
    import torch

    from animecolor.model import ModelConfig, ResidualColorizer

    model = ResidualColorizer(ModelConfig(head="ce", decoder_widths=[8] * 5))
    ab = torch.tensor([-50.0, 40.0, 50.0]).reshape(3, 1, 1, 1).expand(3, 2, 1, 1)
    res = {}
    for loss in ("ce", "ce+l1"):
        logits = torch.zeros(1, 2 * model.cfg.n_bins, 1, 1, requires_grad=True)
        fn = train_mod._loss_fn(model, loss, None)
        opt = torch.optim.Adam([logits], lr=0.1)
        for _ in range(300):
            opt.zero_grad()
            fn(logits.expand(3, -1, -1, -1), ab).backward()
            opt.step()
        mean = model.decode(logits.detach(), temperature=1.0)[0, 0, 0, 0].item()
        res[loss] = (mean, (mean - ab[:, 0]).abs().mean().item())
    assert abs(res["ce"][0] - 40 / 3) < 3, res
    assert res["ce+l1"][0] > res["ce"][0] + 10 and res["ce+l1"][1] < res["ce"][1] - 3, res
    # the L1 term's weight is TrainConfig.l1_weight: at 0 the loss is plain CE
    x = torch.randn(3, 2 * model.cfg.n_bins, 1, 1)
    ce = train_mod._loss_fn(model, "ce", None)(x, ab).item()
    assert train_mod._loss_fn(model, "ce+l1", None, l1_weight=0.0)(x, ab).item() == pytest.approx(ce)
    assert train_mod._loss_fn(model, "ce+l1", None, l1_weight=20.0)(x, ab).item() > ce + 1e-3
    with pytest.raises(ValueError, match="choose one of ce, l1, l2, ce\\+l1"):
        train_mod._loss_fn(model, "huber", None)(logits, ab)


def test_loss_for_head_fits_heads_and_inherits_the_checkpoint_loss():
    from animecolor.commands.train import LOSS_CHOICES
    from animecolor.finetune import loss_for_head, trained_loss

    assert sorted(LOSS_CHOICES) == sorted(train_mod.LOSSES)  # the CLI's list is the trainer's
    assert sorted(sum(train_mod.HEAD_LOSSES.values(), ())) == sorted(train_mod.LOSSES)  # every loss has one head
    assert [train_mod.head_for_loss(x) for x in ("ce", "ce+l1", "l1", "l2")] == ["ce", "ce", "reg", "reg"]
    assert loss_for_head("ce") == "ce" and loss_for_head("reg") == "l1"
    assert loss_for_head("ce", default="ce+l1") == "ce+l1"  # fine-tuning keeps the base model's loss
    assert loss_for_head("ce", default="l1") == "ce"  # ...when it fits the head
    assert loss_for_head("ce", "ce+l1") == "ce+l1" and loss_for_head("reg", "l2") == "l2"
    for head, bad in (("ce", "l1"), ("reg", "ce+l1"), ("reg", "ce")):
        with pytest.raises(ValueError, match="does not fit"):
            loss_for_head(head, bad)
    with pytest.raises(ValueError, match="unknown loss"):
        loss_for_head("ce", "huber")
    assert trained_loss({"info": {"train": {"loss": "ce+l1"}}}) == "ce+l1"
    assert trained_loss({"info": {"note": "x"}}) is None and trained_loss({}) is None


def test_train_cli_fine_tune_keeps_the_init_checkpoints_loss(tiny_dataset, tiny_random_model, tmp_path):
    run1, run2 = tmp_path / "r1", tmp_path / "r2"
    assert main(_train_args(tiny_dataset, run1, tiny_random_model, "--steps", "2", "--loss", "ce+l1")) == 0
    assert read_metadata(run1 / "last.safetensors")["info"]["train"]["loss"] == "ce+l1"
    assert main(_train_args(tiny_dataset, run2, run1 / "last.safetensors", "--steps", "2")) == 0
    assert read_metadata(run2 / "last.safetensors")["info"]["train"]["loss"] == "ce+l1"


def test_ema_update_averages_parameters_and_copies_buffers():
    import torch

    ema, model = torch.nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    with torch.no_grad():
        ema.weight.fill_(0.0)
        model.weight.fill_(1.0)
        model.running_mean.fill_(5.0)
    train_mod.ema_update(ema, model, decay=0.9, step=1000)  # d = min(0.9, 1001/1010) = 0.9
    assert torch.allclose(ema.weight, torch.full((3,), 0.1))
    assert torch.equal(ema.running_mean, model.running_mean)
    train_mod.ema_update(ema, model, decay=0.9, step=0)  # warm-up: d = 1/10
    assert torch.allclose(ema.weight, torch.full((3,), 0.1 * 0.1 + 0.9))


def test_train_cli_ema_saves_the_average(tiny_dataset, tiny_random_model, tmp_path, capsys):
    import torch
    from safetensors.torch import load_file

    run, raw = tmp_path / "ema", tmp_path / "raw"
    assert main(_train_args(tiny_dataset, run, tiny_random_model, "--steps", "4", "--ema-decay", "0.99")) == 0
    assert main(_train_args(tiny_dataset, raw, tiny_random_model, "--steps", "4")) == 0
    assert read_metadata(run / "last.safetensors")["info"]["train"]["ema_decay"] == 0.99
    init, e, r = (load_file(p) for p in (tiny_random_model, run / "last.safetensors", raw / "last.safetensors"))
    key = "lateral.0.0.weight"  # a trained (not frozen) decoder conv
    # Same seed and data: the average lies between the start and the raw weights, nearer the raw ones
    # (early decay is small), and differs from both.
    moved_raw, moved_ema = (r[key] - init[key]).norm(), (e[key] - init[key]).norm()
    assert 0 < moved_ema < moved_raw and not torch.equal(e[key], r[key])
    assert main(_train_args(tiny_dataset, tmp_path / "bad", tiny_random_model, "--ema-decay", "1.5")) == 1
    assert "--ema-decay" in capsys.readouterr().err
