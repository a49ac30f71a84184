"""``animecolor finetune EPISODES... -o RUN``: dataset + fine-tune + before/after, in one command."""
from __future__ import annotations

import argparse
from pathlib import Path

from .train import LOSS_CHOICES

__all__ = ["register", "run"]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "finetune",
        help="fine-tune the model on color episodes of one series (dataset, training, before/after table)",
        description=(
            "Build a frame dataset from color episodes into RUN/dataset, measure the base model on its val "
            "frames, fine-tune with early stopping, and measure RUN/best.safetensors on the same frames. "
            "Rerunning the same command resumes. Use the result with "
            "`animecolor episode BW.mp4 out.mp4 --weights RUN/best.safetensors`."
        ),
    )
    p.add_argument("inputs", nargs="+", metavar="COLOR_EPISODE", help="color videos and/or folders of them (and images)")
    p.add_argument("-o", "--out", required=True, type=Path, metavar="RUN_DIR", help="run folder (dataset, checkpoints)")
    p.add_argument("--base", type=Path, default=None, help="checkpoint to start from (default: weights/default.safetensors)")
    p.add_argument("--steps", type=int, default=600, help="training steps at most (default 600)")
    p.add_argument("--time-budget", type=float, default=None, metavar="SECONDS", help="stop training after this long")
    p.add_argument("--size", type=int, default=256, help="stored frame size in px (default 256)")
    p.add_argument("--crop", type=int, default=160, help="training crop in px, multiple of 32 (default 160)")
    p.add_argument("--batch-size", type=int, default=16, help="crops per step (default 16)")
    p.add_argument("--lr", type=float, default=3e-4, help="peak learning rate (default 3e-4)")
    p.add_argument("--val-every", type=int, default=100, metavar="K", help="validate every K steps (default 100)")
    p.add_argument("--patience", type=int, default=3, metavar="P",
                   help="stop when val a/b MAE has not improved for P validations (default 3; 0 = off)")
    p.add_argument("--max-per-scene", type=int, default=8, help="frames kept per scene at most (default 8)")
    p.add_argument("--max-frames", type=int, default=None, help="total frames at most")
    p.add_argument("--val-fraction", type=float, default=0.15, help="share of frames held out for val (default 0.15)")
    p.add_argument("--loss", choices=LOSS_CHOICES, default=None,
                   help="training loss (default: the one the base model was trained with, ce+l1 for the shipped model)")
    p.add_argument("--keep-temperature", action="store_true",
                   help="keep the base model's decoding temperature (default: pick it on the val frames)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress messages (the before/after table still prints)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from ..finetune import TEMPERATURES, finetune
    from .train import TrainBar

    err = Console(stderr=True, highlight=False, quiet=args.quiet)
    if args.patience < 0:
        raise ValueError("--patience must be at least 0")
    state: dict = {"bar": None}

    def progress(ev: dict) -> None:
        stage = ev["stage"]
        if stage == "dataset":
            if ev.get("reused"):
                err.print(f"animecolor: reusing the dataset in {ev['path']}")
            else:
                b = ev["build"]
                name = b.source.rsplit("/", 1)[-1] or b.source
                if b.kind == "done":
                    err.print(f"dataset: {name}: kept {b.kept} frames")
                elif b.kind == "resumed":
                    err.print(f"dataset: {name}: {b.kept} frames already staged")
                elif b.kind == "skipped":
                    err.print(f"dataset: skipped {b.source}: {b.message}")
                elif b.kind == "writing":
                    err.print("dataset: writing shards")
        elif stage == "before":
            m = ev["metrics"]
            err.print(f"base model on {m['n']} val frames: a/b MAE {m['ab_mae']:.2f}, chroma ratio {m['chroma_ratio']:.2f}")
            if not args.quiet:
                state["bar"] = TrainBar(err, args.steps, 0, "fine-tuning").__enter__()
        elif stage == "train":
            if state["bar"] is not None:
                state["bar"](ev)
        elif stage == "after" and state["bar"] is not None:
            state["bar"].__exit__(None, None, None)
            state["bar"] = None
        elif stage == "temperature":
            scores = ", ".join(f"T={t}: {r['ciede2000']:.2f}" for t, r in ev["rows"].items())
            err.print(f"decoding temperature on the val frames (CIEDE2000): {scores}; picked T={ev['picked']}")

    try:
        res = finetune(
            args.inputs, args.out, base=args.base, steps=args.steps, batch_size=args.batch_size, crop=args.crop,
            lr=args.lr, val_every=args.val_every, patience=args.patience or None, time_budget_s=args.time_budget,
            size=args.size, max_per_scene=args.max_per_scene, max_frames=args.max_frames,
            val_fraction=args.val_fraction, seed=args.seed, device=None if args.device == "auto" else args.device,
            temperatures=None if args.keep_temperature else TEMPERATURES, progress=progress, loss=args.loss,
        )
    finally:
        if state["bar"] is not None:
            state["bar"].__exit__(None, None, None)

    b, a = res["before"], res["after"]
    t = Table(title=f"val split: {a['n']} frames", title_justify="left")
    t.add_column("model")
    t.add_column("a/b MAE (lower is better)", justify="right")
    t.add_column("chroma ratio (1 = true saturation)", justify="right")
    t.add_row(f"before: {Path(res['base_model']['path']).name}", f"{b['ab_mae']:.2f}", f"{b['chroma_ratio']:.2f}")
    t.add_row(f"after: best.safetensors (step {res['steps']})", f"{a['ab_mae']:.2f}", f"{a['chroma_ratio']:.2f}")
    out = Console(highlight=False)
    out.print(t)
    why = "early stop" if res["stopped_early"] else ("time budget" if res["steps_run"] < args.steps else "all steps")
    if res["trained_now"]:
        out.print(f"trained {res['steps_run']} steps ({why}) in {res['elapsed']:.0f} s; wrote {res['best']}")
    else:
        out.print(f"training had already finished at step {res['steps_run']} ({why}); "
                  f"re-scored and re-tuned in {res['elapsed']:.0f} s; wrote {res['best']}")
    if not res["improved"]:
        err.print("animecolor: warning: fine-tuning did not lower the val a/b MAE; the base model may be the better choice")
    out.print(f"use it: animecolor episode BW.mp4 out.mp4 --weights {res['best']}")
    return 0
