"""``animecolor batch INPUTS... -o OUT_DIR``: many episodes, on one machine or a Ray cluster."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

__all__ = ["register", "run"]


def _segments(text: str):
    if text == "auto":
        return text
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 1 or 'auto', got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1 or 'auto', got {text!r}")
    return n


def register(subparsers) -> None:
    from .episode import add_decoding_options, add_encode_options

    p = subparsers.add_parser(
        "batch",
        help="colorize many videos (folders too), spread over Ray workers; resumable",
        description="Colorize every video of INPUTS into OUT_DIR, each output named after its input. Each episode "
        "(or segment, with --segments) is a Ray task; a rerun skips the episodes already complete. "
        "See docs/batch.md.",
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="video files and folders of videos")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT_DIR", help="folder for the outputs")
    p.add_argument("--format", default=None, metavar="EXT",
                   help="output container for every episode, e.g. mkv (default: each input's own)")
    p.add_argument("--segments", type=_segments, default=1, metavar="N|auto",
                   help="split each episode at keyframes near scene cuts into N segments colorized in parallel, "
                        "then joined by packet copy (default 1; auto: when there are more workers than episodes)")
    p.add_argument("--ray-address", default=None, metavar="auto|HOST:PORT",
                   help="join an existing Ray cluster (default: start a local one, or run in this process when "
                        "one worker is all that fits)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="tasks at a time on the local cluster (default: CPU cores // --threads)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="model threads per task; a CPU task asks Ray for that many CPUs (default 1; in-process: "
                        "PyTorch's choice)")
    p.add_argument("--weights", type=Path, default=None, help="model checkpoint (default: weights/default.safetensors)")
    p.add_argument("--device", default="auto", help="auto (CUDA when the cluster has GPUs; one GPU per task), cpu, cuda")
    add_decoding_options(p)
    add_encode_options(p)
    p.add_argument("--overwrite", action="store_true",
                   help="replace outputs that exist but were not made from the same input, options and weights")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or table (errors still go to stderr)")
    p.set_defaults(func=run)


def _table(result):
    from rich.table import Table

    ran = any(e.attempts for e in result.episodes)
    where = (f"{result.workers} worker{'s' if result.workers != 1 else ''}, {'Ray' if result.ray else 'in-process'}"
             if ran else "nothing to run")
    t = Table(title=f"animecolor batch: {len(result.episodes)} episodes in {result.seconds:.1f} s ({where})")
    for col, kw in (("episode", {}), ("frames", {"justify": "right"}), ("fps", {"justify": "right"}),
                    ("status", {}), ("note", {})):
        t.add_column(col, **kw)
    for e in result.episodes:
        note = e.error or ""
        if not note and e.segments > 1:
            note = f"{e.segments} segments"
        if not note and e.attempts > (e.segments if e.segments > 1 else 1):
            note = f"{e.attempts} task starts (retried)"
        style = {"failed": "red", "skipped": "dim"}.get(e.status, "")
        t.add_row(e.input.name, str(e.frames), f"{e.fps:.1f}" if e.status == "done" else "", e.status, note,
                  style=style)
    return t


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..batch import EpisodeOptions, colorize_many
    from ..colorize import check_temperature, check_working_size

    err = Console(stderr=True, highlight=False)
    for name in ("workers", "threads", "batch_size"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {v}")
    if args.working_size is not None:
        check_working_size(args.working_size)
    if args.temperature is not None:
        check_temperature(args.temperature)
    opts = EpisodeOptions(working_size=args.working_size, temperature=args.temperature, batch_size=args.batch_size,
                          temporal=args.temporal, codec=args.codec, crf=args.crf, preset=args.preset,
                          encoder=args.encoder, subtitles=args.subtitles)
    kwargs = dict(weights=args.weights, options=opts, fmt=args.format, segments=args.segments,
                  ray_address=args.ray_address, workers=args.workers, threads=args.threads,
                  device=None if args.device == "auto" else args.device, overwrite=args.overwrite)
    if args.quiet or not sys.stderr.isatty():
        result = colorize_many(args.inputs, args.output, **kwargs)
    else:
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[fps]:.1f} fps"), TextColumn("ETA"), TimeRemainingColumn()]
        with Progress(*columns, console=err, transient=True) as bar:
            whole = bar.add_task("batch", total=None, fps=0.0)
            rows: dict[str, tuple[int, float]] = {}  # running task -> (bar id, when first seen)

            def progress(p) -> None:
                now = time.monotonic()
                fps = p.frames_done / p.seconds if p.seconds > 0 else 0.0
                bar.update(whole, completed=p.frames_done, total=p.frames_total or None, fps=fps)
                for key, t in p.tasks.items():
                    if key not in rows and not t.finished:
                        rows[key] = (bar.add_task(f"  {key}", total=t.total, fps=0.0), now)
                    if key in rows:
                        tid, since = rows[key]
                        bar.update(tid, completed=t.done, total=max(t.total or 0, t.done) or None,
                                   fps=t.done / (now - since) if now > since else 0.0)
                        if t.finished:
                            bar.remove_task(tid)
                            del rows[key]

            result = colorize_many(args.inputs, args.output, progress=progress, **kwargs)
    out = Console(highlight=False)
    if not args.quiet:
        out.print(_table(result))
    for e in result.failed:
        err.print(f"animecolor: error: {e.input}: {e.error}", markup=False, soft_wrap=True)
    return 1 if result.failed else 0
