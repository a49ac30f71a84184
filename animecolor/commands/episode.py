"""``animecolor episode IN OUT``: colorize a whole video file, keeping its audio and subtitles."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["register", "run", "add_guide_options", "build_guided"]


def add_guide_options(p) -> None:
    """``--reference``, ``--reference-frames``, ``--reference-adapt`` and ``--keyframe`` (shared by episode and preview)."""
    from ..adapt import ADAPT_STEPS
    from ..reference import DEFAULT_REFERENCE_FRAMES

    p.add_argument("--reference", nargs="+", default=[], metavar="REF",
                   help="color images, folders of images or color videos of the same series whose colors steer the "
                        "whole video (see docs/reference.md)")
    p.add_argument("--reference-frames", type=int, default=DEFAULT_REFERENCE_FRAMES, metavar="N",
                   help="frames sampled across the references' scenes (default %(default)s)")
    p.add_argument("--reference-adapt", type=int, default=ADAPT_STEPS, metavar="STEPS",
                   help="fine-tune the model on the reference frames for STEPS steps first (about 2 min on 2 CPU "
                        "cores at the default %(default)s; cached, so a preview and the episode train once); "
                        "0: colors from matching alone")
    p.add_argument("--keyframe", action="append", default=[], metavar="IMAGE@TIME",
                   help="a colored version of the frame at TIME (seconds or HH:MM:SS.mmm); its colors carry through "
                        "its shot, forward and backward to the scene cuts. Repeat for more shots. A folder stands for "
                        "its NAME@TIME.png images (from `animecolor shots`; gray, unpainted ones are skipped)")


def adapt_progress(quiet: bool):
    """A ``progress(step, steps)`` callback for the reference adaptation: a line on stderr every 10 %."""
    shown = [-1]

    def progress(step: int, steps: int) -> None:
        tenth = step * 10 // steps
        if not quiet and tenth != shown[0] and (tenth > 0 or step == 1):
            shown[0] = tenth
            print(f"animecolor: adapting the model to the references: step {step}/{steps}", file=sys.stderr, flush=True)

    return progress


def build_guided(args, base, video: Path, warn, quiet: bool = False):
    """The colorizer the guide options ask for (``base`` itself when none is given)."""
    if not args.reference and not args.keyframe:
        return base
    from ..reference import guided_colorizer

    return guided_colorizer(base, video, references=args.reference, reference_frames=args.reference_frames,
                            keyframes=args.keyframe, on_warning=warn, adapt_steps=args.reference_adapt,
                            weights=args.weights, progress=adapt_progress(quiet))


def register(subparsers) -> None:
    from .select import add_keep_color_options

    p = subparsers.add_parser(
        "episode",
        help="colorize a black-and-white video file",
        description="Colorize a black-and-white video (any container FFmpeg reads, animated GIF too). "
        "The output keeps the source's brightness, timestamps, audio and subtitle streams.",
    )
    p.add_argument("input", type=Path, help="black-and-white video file")
    p.add_argument("output", type=Path, help="colorized video file to write (.mp4, .mkv, .mov, ...)")
    p.add_argument("--weights", type=Path, default=None, help="model checkpoint (default: weights/default.safetensors)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    add_decoding_options(p)
    add_guide_options(p)
    add_runtime_option(p)
    add_keep_color_options(p)
    add_encode_options(p)
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for the model (default: PyTorch's choice, the core count). On small CPUs the model, "
        "decoder and encoder share the cores; with 2 cores and ONNX Runtime, 1 thread was ~4%% slower at 480p "
        "(see the README's benchmark)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or messages (errors still go to stderr)")
    p.set_defaults(func=run)


def add_decoding_options(p: argparse.ArgumentParser) -> None:
    """--working-size and --temperature (episode and batch)."""
    p.add_argument("--working-size", type=int, default=None, metavar="PX",
                   help="model input long side, multiple of 32 (default: the checkpoint's, 320 for the shipped "
                        "weights); 256 is ~1.8x faster, a little less accurate")
    p.add_argument("--temperature", type=float, default=None, metavar="T",
                   help="color decoding temperature (default: the checkpoint's, 0.85 for the shipped weights); "
                        "lower is more vivid, higher duller and safer")


def add_encode_options(p: argparse.ArgumentParser) -> None:
    """Batch size, temporal smoother and the encoder settings (episode and batch)."""
    from ..pipeline import ENCODERS, SUBTITLES, default_temporal
    from ..temporal import SMOOTHERS

    p.add_argument("--batch-size", type=int, default=None, help="frames per model batch (default: 32 on CUDA, 8 on CPU)")
    p.add_argument("--temporal", choices=sorted(SMOOTHERS), default=default_temporal(), help="temporal chroma smoother (default: %(default)s; see docs/temporal.md)")
    p.add_argument("--codec", default="libx264", help="video encoder: libx264 (default), libx265, libsvtav1, ...")
    p.add_argument("--crf", type=int, default=18, help="constant rate factor (lower = better, default 18)")
    p.add_argument("--preset", default=None, help="encoder preset (default: medium for x264/x265, 8 for SVT-AV1)")
    p.add_argument("--encoder", choices=ENCODERS, default="pyav", help="encode in-process (pyav) or pipe to the ffmpeg program")
    p.add_argument("--subtitles", choices=SUBTITLES, default="copy",
                   help="copy the subtitle streams (default) or drop them, e.g. bitmap (PGS) subtitles that .mp4 "
                        "cannot hold")


def add_runtime_option(p: argparse.ArgumentParser) -> None:
    from ..runtime import RUNTIMES

    p.add_argument("--runtime", choices=RUNTIMES, default="auto",
                   help="run the model with PyTorch or ONNX Runtime (CPU only; same colors, faster on CPU). auto "
                        "(default): ONNX Runtime on CPU (the shipped weights have an export; other weights and "
                        "--keep-color models are exported once into ~/.cache/animecolor), PyTorch where that cannot "
                        "be done and on CUDA; onnx: ONNX Runtime or an error")


def _weights_line(weights: Path | None) -> str:
    from ..colorize import DEFAULT_WEIGHTS
    from ..model import read_metadata

    path = weights or DEFAULT_WEIGHTS
    try:
        info = read_metadata(path)["info"]
    except Exception:
        info = {}
    what = "shipped default weights" if weights is None else "weights"
    extra = f" ({info['note']})" if isinstance(info, dict) and info.get("note") else ""
    return f"animecolor: using {what} {path}{extra}"


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from ..colorize import load_colorizer
    from ..pipeline import _check_paths, colorize_video

    err = Console(stderr=True, highlight=False)
    if args.batch_size is not None and args.batch_size < 1:
        raise ValueError("--batch-size must be >= 1")
    from ..reference import check_reference_frames, expand_keyframe_specs, parse_keyframe

    check_reference_frames(args.reference_frames)
    if args.reference_adapt < 0:
        raise ValueError(f"--reference-adapt must be >= 0, got {args.reference_adapt}")
    for k, _ in expand_keyframe_specs(args.keyframe):
        parse_keyframe(k)  # bad syntax fails before the model loads
    _check_paths(args.input, args.output, args.overwrite)  # path mistakes first: cheaper than loading weights
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    device = None if args.device == "auto" else args.device
    if args.keep_color:
        from .select import keep_colorizer

        colorizer = keep_colorizer(args, device)
        if not args.quiet:
            err.print(f"animecolor: keeping color where {args.keep_color} says, on {colorizer.device} ({colorizer.runtime})",
                      markup=False, soft_wrap=True)
    else:
        colorizer = load_colorizer(args.weights, device, working_long_side=args.working_size,
                                   temperature=args.temperature, runtime=args.runtime)
        if not args.quiet:
            err.print(_weights_line(args.weights) + f" on {colorizer.device} ({colorizer.runtime})", markup=False,
                      soft_wrap=True)

    def warn(msg: str) -> None:
        if not args.quiet:
            err.print(f"animecolor: warning: {msg}", markup=False, soft_wrap=True)

    if args.reference or args.keyframe:
        if not args.quiet:
            err.print("animecolor: reading references/keyframes ...", markup=False)
        colorizer = build_guided(args, colorizer, args.input, warn, quiet=args.quiet)
        if not args.quiet:
            err.print(f"animecolor: colors from {colorizer.name}", markup=False, soft_wrap=True)

    kwargs = dict(
        model=colorizer,
        batch_size=args.batch_size,
        temporal=args.temporal,
        codec=args.codec,
        crf=args.crf,
        preset=args.preset,
        encoder=args.encoder,
        subtitles=args.subtitles,
        overwrite=args.overwrite,
        on_warning=warn,
    )
    if args.quiet or not sys.stderr.isatty():
        result = colorize_video(args.input, args.output, **kwargs)
    else:
        columns = [
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[fps]:.1f} fps"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        ]
        with Progress(*columns, console=err, transient=False) as bar:
            task = bar.add_task("colorizing", total=None, fps=0.0)

            def progress(done: int, total: int | None) -> None:
                elapsed = bar.tasks[0].elapsed or 0.0
                bar.update(task, completed=done, total=max(total, done) if total else None, fps=done / elapsed if elapsed else 0.0)

            result = colorize_video(args.input, args.output, progress=progress, **kwargs)
    if not args.quiet:
        err.print(
            f"animecolor: wrote {result.output} ({result.frames} frames, {result.fps:.1f} fps"
            + (f", {result.bad_packets} corrupt packets skipped" if result.bad_packets else "")
            + ")",
            markup=False,
            soft_wrap=True,
        )
    return 0
