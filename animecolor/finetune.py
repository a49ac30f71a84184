"""Per-series fine-tuning in one call: color episodes in, a better checkpoint out.

:func:`finetune` chains the three steps of the documented workflow
(``docs/finetune.md``)::

    animecolor dataset build EPISODES... -o RUN/dataset
    animecolor train RUN/dataset -o RUN --init weights/default.safetensors
    animecolor episode BW.mp4 out.mp4 --weights RUN/best.safetensors

and measures the base model and the result on the same held-out (val) frames,
so the caller sees whether fine-tuning helped.  ``RUN/best.safetensors`` is
self-describing: its header records the base model (path + sha256), the
dataset's ``manifest_checksum``, the steps, and the before/after metrics.

Every stage is resumable: a finished dataset in ``RUN/dataset`` is reused (an
interrupted build continues), and training continues from ``RUN/last.safetensors``.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .model.checkpoint import file_sha256

__all__ = [
    "finetune", "base_model_info", "loss_for_head", "trained_loss", "check_crop", "evaluate_checkpoint",
    "tune_temperature", "pick_setting", "TEMPERATURES",
]

#: Annealed-mean temperatures ``finetune`` tries on the val frames (``ce`` head).  Above 1 the
#: bin distribution is flattened further than the plain mean's: duller, safer colors.  On one
#: series' palette the val frames keep preferring higher T up to 2 (docs/finetune.md).
TEMPERATURES = (0.38, 0.55, 0.7, 1.0, 1.4, 2.0)
#: ... of which it keeps the lowest CIEDE2000 that keeps at least this share of the original's colorfulness.
MIN_COLORFULNESS = 0.7

ProgressFn = Callable[[dict], None]


def base_model_info(path: str | os.PathLike) -> dict[str, str]:
    """Provenance of a starting checkpoint: ``{"path", "sha256"}``."""
    p = Path(path)
    return {"path": str(p.resolve()), "sha256": file_sha256(p)}


def loss_for_head(head: str, loss: str | None = None, what: str = "the model", default: str | None = None) -> str:
    """The training loss for a model head: ``ce`` or ``ce+l1`` for the ce head, ``l1`` or ``l2`` for reg.

    Without ``loss``: ``default`` (e.g. the loss the starting checkpoint was trained
    with) when it fits the head, else ``ce`` / ``l1``.
    """
    from .train import HEAD_LOSSES, LOSSES

    fits = HEAD_LOSSES["ce" if head == "ce" else "reg"]
    if loss is None:
        return default if default in fits else fits[0]
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
    if loss not in fits:
        raise ValueError(f"--loss {loss} does not fit the {head!r} head of {what}; use --loss {' or '.join(fits)}")
    return loss


def trained_loss(meta: dict) -> str | None:
    """The loss a checkpoint was trained with, from its metadata (None when not recorded)."""
    train = meta.get("info", {}).get("train")
    loss = train.get("loss") if isinstance(train, dict) else None
    return loss if isinstance(loss, str) else None


def check_crop(crop: int, what: str = "--crop") -> int:
    """Training crops must be positive multiples of 32 (the backbone's total stride)."""
    if crop < 32 or crop % 32:
        raise ValueError(f"{what} must be a multiple of 32 (at least 32), got {crop}")
    return int(crop)


def check_schedule(steps: int, batch_size: int, val_every: int, patience: int | None) -> None:
    """The training-loop options shared by ``animecolor train`` and ``finetune``: one-line errors."""
    for name, value in (("--steps", steps), ("--batch-size", batch_size), ("--val-every", val_every)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    if patience is not None and patience < 1:
        raise ValueError(f"--patience must be at least 1, got {patience}")


def evaluate_checkpoint(
    path: str | os.PathLike, val_set, device, batch_size: int = 16, temperature: float | None = None
) -> dict:
    """Val a/b MAE and chroma ratio (:func:`animecolor.train.evaluate_batches`) of a checkpoint file,
    decoded at ``temperature`` (``ce`` head) if given, else at the checkpoint's own."""
    from torch.utils.data import DataLoader

    from .model import load_model
    from .train import evaluate_batches

    model = load_model(path, device=device)
    if temperature is not None:
        model.cfg.temperature = float(temperature)
    return evaluate_batches(model, DataLoader(val_set, batch_size=batch_size, shuffle=False), device)


def pick_setting(rows: dict, min_colorfulness: float = MIN_COLORFULNESS):
    """The key of ``rows`` (``{setting: {"ciede2000", "colorfulness_ratio", ...}}``) with the lowest
    CIEDE2000 among those whose colorfulness ratio is at least ``min_colorfulness`` (all of them if none is)."""
    ok = {k: r for k, r in rows.items() if r["colorfulness_ratio"] >= min_colorfulness} or rows
    return min(ok, key=lambda k: ok[k]["ciede2000"])


def tune_temperature(
    model, frames, temperatures=TEMPERATURES, min_colorfulness: float = MIN_COLORFULNESS, device=None
) -> tuple[float, dict[str, dict]]:
    """Pick the decoding temperature of a ``ce`` model on color frames ``(N, H, W, 3)``.

    Each temperature is scored like ``animecolor evaluate`` scores a clip
    (:func:`animecolor.evaluate.score_frames`); the pick is the lowest mean
    CIEDE2000 among those whose colorfulness ratio is at least
    ``min_colorfulness`` (all of them if none is).  Returns ``(picked, rows)``
    with ``rows[str(T)] = {"ciede2000", "colorfulness_ratio", "n"}``.
    """
    from .colorize import ModelColorizer
    from .evaluate import score_frames

    if not temperatures:
        raise ValueError("no temperatures to try")
    col = ModelColorizer(model, device)
    rows: dict[str, dict] = {}
    for t in temperatures:
        if t <= 0:
            raise ValueError(f"temperatures must be > 0, got {t}")
        col.cfg.temperature = float(t)
        rows[str(float(t))] = score_frames(col, frames)
    return float(pick_setting(rows, min_colorfulness)), rows


def _check_same_run(last: Path, base: dict, checksum: str) -> None:
    """A resumed run must continue from the same base model and dataset it started with."""
    from .model import read_metadata

    info = read_metadata(last)["info"]
    prev = info.get("base_model")
    if isinstance(prev, dict) and prev.get("sha256") and prev["sha256"] != base["sha256"]:
        raise ValueError(
            f"{last} was fine-tuned from another base model ({prev.get('path')}); use the same --base or a new -o"
        )
    prev_ds = info.get("dataset_manifest_checksum")
    if prev_ds and prev_ds != checksum:
        raise ValueError(f"{last} was trained on another dataset (manifest_checksum {prev_ds[:12]}...); use a new -o")


def finetune(
    inputs: list[str | os.PathLike],
    run_dir: str | os.PathLike,
    *,
    base: str | os.PathLike | None = None,
    steps: int = 600,
    batch_size: int = 16,
    crop: int = 160,
    lr: float = 3e-4,
    val_every: int = 100,
    patience: int | None = 3,
    time_budget_s: float | None = None,
    size: int = 256,
    max_per_scene: int = 8,
    max_frames: int | None = None,
    val_fraction: float = 0.15,
    seed: int = 0,
    device: str | None = "auto",
    temperatures: tuple[float, ...] | None = TEMPERATURES,
    progress: ProgressFn | None = None,
    loss: str | None = None,
) -> dict[str, Any]:
    """Fine-tune ``base`` (default: the shipped weights) on color episodes of one series.

    Writes ``run_dir/dataset`` (frames), ``run_dir/last.safetensors``,
    ``run_dir/best.safetensors`` (lowest val a/b MAE) and ``history.jsonl``.
    ``progress`` receives dicts with ``stage``: ``dataset`` (``build``: a
    :class:`~animecolor.dataset.BuildEvent`, or ``reused``: True), ``before``
    and ``after`` (``metrics``), ``train`` (the training loop's progress dicts).
    Returns ``{"before", "after", "best", "steps", "steps_run", "stopped_early", ...}``;
    metrics are :func:`animecolor.train.evaluate_batches` dicts (``ab_mae``,
    ``chroma_ratio``, ``n``) on the val split at the full stored frame size.

    ``loss``: default the loss the base model was trained with (:func:`loss_for_head`).

    ``temperatures`` (``ce`` head; ``None`` keeps the base model's): the decoding
    temperature of ``best.safetensors`` is picked on the val frames with
    :func:`tune_temperature` (stage ``temperature`` in ``progress``; the result's
    ``temperature`` holds the pick and the scores).
    """
    from .colorize import DEFAULT_WEIGHTS, resolve_device
    from .dataset import FrameDataset, build_dataset, read_manifest
    from .model import WeightsError, load_model, read_metadata, save_model
    from .train import TrainConfig, train

    t0 = time.perf_counter()
    emit: ProgressFn = progress or (lambda ev: None)
    base_path = Path(base) if base else DEFAULT_WEIGHTS
    if not base_path.is_file():
        raise WeightsError(f"base model not found: {base_path} (pass --base)")
    base_meta = read_metadata(base_path)  # a bad file fails here, before any work
    check_crop(crop)
    check_schedule(steps, batch_size, val_every, patience)
    if crop > size:
        raise ValueError(f"--crop {crop} is larger than the stored frame --size {size}")
    loss = loss_for_head(base_meta["config"].head, loss, str(base_path), default=trained_loss(base_meta))
    dev = resolve_device(device)

    # (a) frames of the series, split into train/val by scene or episode
    run = Path(run_dir)
    ds_dir = run / "dataset"
    if (ds_dir / "manifest.json").is_file():
        manifest = read_manifest(ds_dir)
        built = manifest["frame_layout"]["size"][0]
        if built != size:
            raise ValueError(f"{ds_dir} was built with --size {built}; pass --size {built} or use a new -o")
        emit({"stage": "dataset", "reused": True, "path": str(ds_dir)})
        reused = True
    else:
        build_dataset(
            inputs, ds_dir, size=size, max_per_scene=max_per_scene, max_frames=max_frames,
            val_fraction=val_fraction, seed=seed, progress=lambda ev: emit({"stage": "dataset", "build": ev}),
        )
        manifest = read_manifest(ds_dir)
        reused = False
    checksum = manifest["manifest_checksum"]
    val_crop = min(manifest["frame_layout"]["size"]) // 32 * 32
    train_set = FrameDataset(ds_dir, "train", crop, augment=True, seed=seed)
    val_set = FrameDataset(ds_dir, "val", val_crop, augment=False)
    if len(val_set) == 0:
        raise ValueError(
            f"{ds_dir} has no val frames to measure fine-tuning on; give more episodes or a larger --val-fraction"
        )
    if len(train_set) == 0:
        raise ValueError(f"{ds_dir} has no train frames; give more episodes or a smaller --val-fraction")
    batch = min(batch_size, len(train_set))
    dataset = {
        "path": str(ds_dir), "manifest_checksum": checksum, "train": len(train_set), "val": len(val_set),
        "sources": len(manifest["sources"]), "reused": reused,
    }

    base_info = base_model_info(base_path)
    last = run / "last.safetensors"
    if last.is_file():
        _check_same_run(last, base_info, checksum)

    # (b) the base model on the val frames
    before = evaluate_checkpoint(base_path, val_set, dev, batch)
    emit({"stage": "before", "metrics": before})

    # (c) fine-tune with early stopping
    cfg = TrainConfig(
        loss=loss, steps=steps, batch_size=batch, lr=lr, val_every=val_every, patience=patience,
        time_budget_s=time_budget_s, seed=seed, warmup=min(TrainConfig.warmup, max(1, steps // 10)),
    )
    info = {
        "command": "finetune",
        "base_model": base_info,
        "dataset": str(ds_dir.resolve()),
        "dataset_manifest_checksum": checksum,
        "note": f"fine-tuned from {base_path.name} on {len(train_set)} frames of {dataset['sources']} source(s)",
    }
    summary = train(
        cfg, train_set, val_set, run, init=str(base_path), device=dev, info=info,
        callback=lambda d: emit({"stage": "train", **d}),
    )

    # (d) the result on the same frames
    best = run / "best.safetensors"
    if not best.is_file():  # cannot happen after a completed train(); guards a hand-edited run dir
        raise RuntimeError(f"training wrote no {best}")
    # at the base's decoding temperature, as training validated it: a rerun of a finished run
    # (whose best.safetensors holds the temperature picked last time) prints the same table
    after = evaluate_checkpoint(best, val_set, dev, batch, temperature=base_meta["config"].temperature)
    emit({"stage": "after", "metrics": after})

    # (e) make best.safetensors self-describing: provenance + before/after
    model = load_model(best)
    best_info = dict(model.info)  # type: ignore[attr-defined]
    best_steps = int(best_info.get("step", 0))
    best_info.update(
        info,
        steps=best_steps,
        finetune={"before": before, "after": after, "steps_run": summary["step"], "stopped_early": summary["stopped_early"]},
    )
    tuned = None
    if temperatures and model.cfg.head == "ce":
        val_rgb = np.stack(list(val_set.rgb_frames()))
        picked, rows = tune_temperature(model, val_rgb, temperatures, device=dev)
        tuned = {"picked": picked, "base": base_meta["config"].temperature, "rows": rows,
                 "rule": f"lowest CIEDE2000 with colorfulness ratio >= {MIN_COLORFULNESS}"}
        emit({"stage": "temperature", **tuned})
        model.cfg.temperature = picked
        best_info["temperature_tuning"] = tuned
    save_model(model, best, best_info)
    return {
        "temperature": tuned,
        "run_dir": str(run),
        "best": str(best),
        "dataset": dataset,
        "base_model": base_info,
        "before": before,
        "after": after,
        "improved": after["ab_mae"] < before["ab_mae"],
        "steps": best_steps,
        "steps_run": summary["step"],
        "trained_now": bool(summary["history"]),  # False: the run had already finished (a rerun)
        "stopped_early": summary["stopped_early"],
        "batch_size": batch,
        "elapsed": time.perf_counter() - t0,
    }
