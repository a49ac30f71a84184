"""``animecolor dataset build|info``: make a training set from color episodes, and describe one."""
from __future__ import annotations

import argparse

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("dataset", help="build or inspect a training set of color frames")
    sub = p.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)

    b = sub.add_parser(
        "build",
        help="sample frames from color videos/image folders into shards + manifest",
        description=(
            "Scene-aware sampling of color frames (cuts by PySceneDetect, near-duplicates, blank and "
            "colorless frames dropped, borders cropped) into .npz shards plus manifest.json. "
            "Rerunning the same command resumes an interrupted build."
        ),
    )
    b.add_argument("inputs", nargs="+", metavar="INPUT", help="video files and/or folders (videos and images, recursive)")
    b.add_argument("-o", "--out", required=True, metavar="OUTDIR", help="output folder (new or empty, or an interrupted build)")
    b.add_argument("--size", type=int, default=256, help="stored frame size in px, square (default 256)")
    b.add_argument("--max-per-scene", type=int, default=8, help="frames kept per scene at most (default 8)")
    b.add_argument("--max-frames", type=int, default=None, help="total frames at most, spread over scenes")
    b.add_argument("--val-fraction", type=float, default=0.15, help="share of frames in the val split (default 0.15)")
    b.add_argument(
        "--split-by", choices=["auto", "scene", "source"], default="auto",
        help="split unit; auto: by source file when there are >= max(3, 2/val-fraction) sources, else by scene",
    )
    b.add_argument("--seed", type=int, default=0, help="seed for the split and --max-frames choices (default 0)")
    b.add_argument("--overwrite", action="store_true", help="replace an existing dataset in OUTDIR")
    b.set_defaults(func=run_build)

    i = sub.add_parser("info", help="counts, bytes and splits of a built dataset")
    i.add_argument("root", metavar="OUTDIR")
    i.add_argument("--verify", action="store_true", help="also check shard and frame checksums")
    i.set_defaults(func=run_info)


def run_build(args: argparse.Namespace) -> int:
    from ..dataset import BuildEvent, build_dataset

    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(), console=console, transient=False,
    ) as bar:
        tasks: dict[str, int] = {}

        def progress(ev: BuildEvent) -> None:
            name = ev.source.rsplit("/", 1)[-1] or ev.source
            if ev.kind in ("start", "writing"):
                label = "writing shards" if ev.kind == "writing" else name
                tasks[ev.source] = bar.add_task(label[:40], total=ev.total, note="")
            elif ev.kind == "frames" and ev.source in tasks:
                bar.advance(tasks[ev.source], ev.n)
            elif ev.kind == "done" and ev.source in tasks:
                t = tasks[ev.source]
                bar.update(t, total=bar.tasks[t].completed, note=f"kept {ev.kept}")
            elif ev.kind == "resumed":
                console.print(f"[dim]resumed[/] {name}: {ev.kept} frames already staged")
            elif ev.kind == "skipped":
                console.print(f"[yellow]skipped[/] {ev.source}: {ev.message}")

        rep = build_dataset(
            args.inputs, args.out, size=args.size, max_per_scene=args.max_per_scene, max_frames=args.max_frames,
            val_fraction=args.val_fraction, seed=args.seed, split_by=args.split_by, overwrite=args.overwrite,
            progress=progress,
        )
    drops = ", ".join(f"{k} {v}" for k, v in rep.drops.items() if v) or "none"
    console.print(
        f"[bold]{rep.out}[/]: {rep.frames_kept} of {rep.frames_in} frames kept "
        f"(train {rep.splits['train']}, val {rep.splits['val']}, split by {rep.split_by}), "
        f"{rep.scenes} scenes from {rep.sources} sources, {_mb(rep.bytes)}, {rep.seconds:.1f} s"
    )
    console.print(f"dropped: {drops}")
    if rep.resumed:
        console.print(f"resumed {rep.resumed} staged source(s)")
    if rep.skipped:
        console.print(f"[yellow]{len(rep.skipped)} input(s) skipped (unreadable):[/]")
        for path, why in rep.skipped:
            console.print(f"  {path}: {why}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from ..dataset import dataset_info

    info = dataset_info(args.root, verify=args.verify)
    t = Table(show_header=False, box=None)
    t.add_row("dataset", info["path"])
    t.add_row("built by", f"animecolor {info['version']}")
    t.add_row("frames", f"{info['frames_kept']} kept of {info['frames_in']} read, {info['size'][0]}x{info['size'][1]} RGB")
    t.add_row("splits", f"train {info['splits']['train']}, val {info['splits']['val']} (by {info['split_by']})")
    t.add_row("scenes / sources", f"{info['scenes']} / {info['sources']} ({info['skipped']} skipped)")
    t.add_row("dropped", ", ".join(f"{k} {v}" for k, v in info["drops"].items() if v) or "none")
    t.add_row("bytes", f"{info['bytes']:,} ({_mb(info['bytes'])}) in {info['shards']} shards")
    t.add_row("manifest_checksum", info["manifest_checksum"])
    if info["problems"] is not None:
        t.add_row("verify", "ok" if not info["problems"] else "; ".join(info["problems"][:5]))
    Console().print(t)
    return 1 if info["problems"] else 0
