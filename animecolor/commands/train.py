"""``animecolor train DATASET -o RUN``: train or fine-tune the colorizer on a built dataset."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

__all__ = ["register", "run", "TrainBar", "LOSS_CHOICES"]

# = animecolor.train.LOSSES (kept here so that `--help` does not import torch; a test checks they agree)
LOSS_CHOICES = ("ce", "ce+l1", "l1", "l2")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train or fine-tune the colorizer on a dataset built by `animecolor dataset build`",
        description=(
            "Train on the train split, validate on the val split, keep RUN/best.safetensors (lowest val a/b MAE) "
            "and RUN/last.safetensors. Rerunning the same command resumes from RUN/last.safetensors. "
            "With --init the run fine-tunes that checkpoint (e.g. weights/default.safetensors)."
        ),
    )
    p.add_argument("dataset", type=Path, metavar="DATASET_DIR", help="folder written by `animecolor dataset build`")
    p.add_argument("-o", "--out", required=True, type=Path, metavar="RUN_DIR", help="run folder (checkpoints, history.jsonl)")
    p.add_argument("--init", type=Path, default=None, metavar="CHECKPOINT",
                   help="start from this checkpoint (fine-tune); default: ImageNet backbone + fresh decoder")
    p.add_argument("--loss", choices=LOSS_CHOICES, default=None,
                   help="ce (classification, default), ce+l1 (ce plus L1 on the decoded color; the shipped model's), "
                        "l1 or l2 (regression); with --init: default the loss that checkpoint was trained with")
    p.add_argument("--steps", type=int, default=2000, help="total training steps, counted across resumes (default 2000)")
    p.add_argument("--batch-size", type=int, default=16, help="crops per step (default 16)")
    p.add_argument("--crop", type=int, default=160, help="training crop in px, multiple of 32 (default 160)")
    p.add_argument("--val-crop", type=int, default=None, help="center crop for validation (default: --crop)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default 1e-3; 3e-4 with --init)")
    p.add_argument("--val-every", type=int, default=250, metavar="K", help="validate and save every K steps (default 250)")
    p.add_argument("--patience", type=int, default=None, metavar="P",
                   help="stop when val a/b MAE has not improved for P validations (default: off)")
    p.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="stop (after a last validation and save) once this much time has passed")
    p.add_argument("--ema-decay", type=float, default=None, metavar="D",
                   help="validate and save a moving average of the weights (e.g. 0.999; default: off)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default 0)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or messages (errors still go to stderr)")
    p.set_defaults(func=run)


def _fmt_val(val: dict | None) -> str:
    if not val:
        return ""
    return f"val MAE {val['ab_mae']:.2f}, chroma {val['chroma_ratio']:.2f}"


class TrainBar:
    """Rich progress for the training loop's callback dicts (step, loss, val, ETA)."""

    def __init__(self, console, total: int, start: int = 0, label: str = "training"):
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.console = console
        self.bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[val]}"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=False,
        )
        self.task = self.bar.add_task(label, total=total, completed=start, loss="-", val="")

    def __enter__(self) -> "TrainBar":
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def __call__(self, ev: dict) -> None:
        loss = ev.get("loss")
        fields = {"loss": f"{loss:.3f}" if isinstance(loss, float) and math.isfinite(loss) else "-"}
        if ev.get("event") == "val":
            fields["val"] = _fmt_val(ev.get("val"))
            self.console.print(
                f"step {ev['step']}: loss {fields['loss']}" + (f", {fields['val']}" if fields["val"] else ""),
                highlight=False,
            )
        self.bar.update(self.task, completed=ev["step"], **fields)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..colorize import resolve_device
    from ..dataset import FrameDataset
    from ..finetune import base_model_info, check_crop, check_schedule, loss_for_head, trained_loss
    from ..model import read_metadata
    from ..train import TrainConfig, check_ema_decay, train

    err = Console(stderr=True, highlight=False, quiet=args.quiet)
    check_schedule(args.steps, args.batch_size, args.val_every, args.patience)
    check_ema_decay(args.ema_decay, "--ema-decay")
    crop = check_crop(args.crop)
    val_crop = check_crop(args.val_crop, "--val-crop") if args.val_crop is not None else crop

    last = args.out / "last.safetensors"
    resume_info = read_metadata(last)["info"] if last.is_file() else None
    if args.init is not None:
        init_meta = read_metadata(args.init)  # missing/bad --init: one-line error before loading data
        loss = loss_for_head(init_meta["config"].head, args.loss, str(args.init), default=trained_loss(init_meta))
    else:
        loss = args.loss or "ce"
    if resume_info is not None and isinstance(resume_info.get("train"), dict):
        prev = resume_info["train"].get("loss")
        if prev and args.loss is None:
            loss = prev  # resuming: keep the run's loss unless asked otherwise
    lr = args.lr if args.lr is not None else (3e-4 if args.init is not None else TrainConfig.lr)
    device = resolve_device(None if args.device == "auto" else args.device)

    train_set = FrameDataset(args.dataset, "train", crop, augment=True, seed=args.seed)
    val_set = FrameDataset(args.dataset, "val", val_crop, augment=False)
    checksum = train_set.manifest["manifest_checksum"]
    if len(val_set) == 0:
        err.print("animecolor: warning: the dataset has no val frames; best.safetensors will be the latest checkpoint")
    info: dict = {
        "command": "train",
        "dataset": str(args.dataset.resolve()),
        "dataset_manifest_checksum": checksum,
    }
    if args.init is not None:
        info["base_model"] = base_model_info(args.init)
    start = 0
    if resume_info is not None:
        start = int(resume_info.get("step", 0))
        if isinstance(resume_info.get("base_model"), dict):
            info["base_model"] = resume_info["base_model"]  # provenance of the run, not of this invocation
        prev_ds = resume_info.get("dataset_manifest_checksum")
        if prev_ds and prev_ds != checksum:
            err.print(f"animecolor: warning: {last} was trained on another dataset (manifest_checksum {prev_ds[:12]}...)")
        err.print(f"animecolor: resuming {last} at step {start} of {args.steps}")
    cfg = TrainConfig(
        loss=loss, steps=args.steps, batch_size=args.batch_size, lr=lr, val_every=args.val_every,
        patience=args.patience, time_budget_s=args.time_budget, seed=args.seed, num_workers=args.workers,
        ema_decay=args.ema_decay,
    )
    err.print(
        f"animecolor: training on {len(train_set)} frames (val {len(val_set)}) from {args.dataset}, "
        f"loss {loss}, batch {cfg.batch_size}, crop {crop}, lr {lr:g}, on {device}"
    )
    kwargs = dict(init=str(args.init) if args.init else None, device=device, info=info)
    vs = val_set if len(val_set) else None
    if args.quiet:
        summary = train(cfg, train_set, vs, args.out, **kwargs)
    else:
        with TrainBar(err, cfg.steps, start) as bar:
            summary = train(cfg, train_set, vs, args.out, callback=bar, **kwargs)
    why = "early stop (no val improvement)" if summary["stopped_early"] else (
        "time budget" if summary["step"] < cfg.steps else "done")
    best = summary["best_val"]
    best_s = f", best val a/b MAE {best:.2f}" if vs is not None and math.isfinite(best) else ""
    err.print(f"animecolor: step {summary['step']} of {cfg.steps} ({why}){best_s}; wrote {args.out / 'best.safetensors'}")
    return 0
