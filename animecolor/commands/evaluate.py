"""``animecolor evaluate``: score model(s) and baselines on held-out color video."""
from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score colorizers against color video (CIEDE2000, PSNR, SSIM, colorfulness, CDC)",
        description=(
            "Turn each color clip into the luma a B&W copy would carry, colorize it with every "
            "model and the gray and lookup-table baselines, and compare with the original."
        ),
    )
    p.add_argument("inputs", nargs="+", metavar="COLOR_VIDEO_OR_DIR", help="color clips or folders of them")
    p.add_argument(
        "--weights",
        action="append",
        default=[],
        metavar="PATH",
        help="model checkpoint (.safetensors); repeat to compare several (default: the shipped weights)",
    )
    p.add_argument(
        "--baselines-only", action="store_true", help="score only the gray and lut baselines (no model)"
    )
    lut = p.add_mutually_exclusive_group()
    lut.add_argument("--lut", metavar="PATH.npy", help="lookup-table baseline saved by training (runs/<name>/lut.npy)")
    lut.add_argument(
        "--fit-lut",
        action="append",
        metavar="DATASET_DIR_OR_VIDEOS",
        help="fit the lookup-table baseline on color videos / image folders (repeatable; not on the eval clips!)",
    )
    p.add_argument("--reference", nargs="+", default=[], metavar="REF",
                   help="color images/folders/videos (not the eval clips!): add the reference-guided colorizer "
                        "and a lookup table fitted on the same reference frames")
    p.add_argument("--reference-frames", type=int, nargs="+", default=None, metavar="N",
                   help="frames sampled from --reference; several values compare them (default: episode's default)")
    p.add_argument("--reference-adapt", type=int, nargs="+", default=None, metavar="STEPS",
                   help="steps of fine-tuning on the reference frames (0: matching alone); several values compare "
                        "them (default: episode's default)")
    p.add_argument("--keyframe-first", action="store_true",
                   help="each clip's first frame (its color original) is its colored keyframe: add the keyframe "
                        "colorizer and the copy-the-keyframe baseline; every colorizer is scored on the frames after it")
    p.add_argument("--keyframe-shots", action="store_true",
                   help="the frame `animecolor shots` writes for every shot (its first that is not blank; color "
                        "originals) is a keyframe, as if every shot were painted: add keyframe-shots and "
                        "copy-keyframe-shots; those frames are not scored")
    p.add_argument("--temporal", default=None, metavar="NAME", help="temporal smoother applied to every colorizer")
    p.add_argument("--max-frames", type=int, default=None, metavar="N", help="evaluate at most N frames per clip")
    p.add_argument("--stride", type=int, default=1, metavar="K", help="evaluate every K-th frame (default 1)")
    p.add_argument(
        "--max-side",
        type=int,
        default=640,
        metavar="PX",
        help="resize the ground truth to this long side before scoring (default 640; 0 = full size)",
    )
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    from .episode import add_runtime_option

    add_runtime_option(p)
    p.add_argument("--batch-size", type=int, default=None, help="frames per colorizer call (default: 8 CPU, 32 GPU)")
    p.add_argument("--json", type=Path, metavar="OUT.json", help="write the full report as JSON")
    p.add_argument("--markdown", type=Path, metavar="OUT.md", help="write the tables as markdown (model card)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--keep-color", type=Path, default=None, metavar="RUN/best.safetensors",
                   help="score a selective-color model instead: the inputs are pair folders (as for `select train`); "
                        "prints mask IoU, histogram similarity and CIEDE2000 to the targets (docs/keepcolor.md)")
    p.add_argument("--keep-color-bw", action="store_true",
                   help="with --keep-color: predict the masks as on B&W video (from the colorizer's chroma)")
    from .select import add_refine_option

    add_refine_option(p)
    p.set_defaults(func=run)


def run_keep_color(args: argparse.Namespace) -> int:
    """``evaluate --keep-color``: the selective-color measures on held-out pairs, beside two trivial outputs."""
    from ..keepcolor import find_pairs, load_keepcolor, pair_scores

    col = load_keepcolor(args.keep_color, None if args.device == "auto" else args.device, runtime=args.runtime,
                         refine=args.keep_color_refine)
    res = pair_scores(col, sorted(find_pairs(args.inputs)), bw=args.keep_color_bw)
    print(f"| output | mask IoU | histogram similarity | CIEDE2000 |  ({res['n']} pairs)")
    print("|---|---:|---:|---:|")
    for key, label in (("model", args.keep_color.name), ("gray", "all gray"), ("input", "input unchanged")):
        r = res[key]
        iou = f"{r['iou']:.3f}" if "iou" in r else "-"
        print(f"| {label} | {iou} | {r['hist_similarity']:.3f} | {r['ciede2000']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    return 0


def _model_names(paths: list[Path]) -> list[str]:
    """Column names: file names, prefixed with parent folders where two would clash."""
    names = [p.name for p in paths]
    depth = 1
    while len(set(names)) < len(names) and depth < 4:
        depth += 1
        names = ["/".join(p.resolve().parts[-depth:]) for p in paths]
    return [n if names.count(n) == 1 else f"{n}#{i + 1}" for i, n in enumerate(names)]


def _check_report_path(path: Path, error: type[Exception]) -> None:
    """A report file must go into an existing, writable folder and must not name a folder."""
    from ..io import check_output_folder

    if path.is_dir():
        raise error(f"report path is a directory: {path}; give a file name such as {path / 'report.md'}")
    check_output_folder(path, "report")
    if path.exists() and not os.access(path, os.W_OK):
        raise error(f"cannot write the report {path}: permission denied")


def _write_report(path: Path, text: str, out) -> None:
    replaced = path.exists()
    path.write_text(text)
    out.print(f"wrote {path}" + (" (replaced the previous file)" if replaced else ""))


def _keyframe_pair(base, kfs, cuts, name: str) -> dict:
    """The keyframe colorizer ``name`` and its baselines: ``copy-NAME`` (the keyframes copied within their
    shots, the base model elsewhere) and ``lut-NAME`` (a brightness-to-color lookup table fitted on the
    clip's keyframes, on every frame)."""
    from .. import reference as R
    from ..colorize import LutColorizer

    return {name: R.KeyframeColorizer(base, kfs, cuts, name=name),
            f"copy-{name}": R.KeyframeColorizer(base, kfs, cuts, fallback=base, name=f"copy-{name}", method="copy"),
            f"lut-{name}": LutColorizer.fit([k.rgb for k in kfs], name=f"lut-{name}")}


def _guided_keyframes(base, first: bool, shots: bool, max_side: int | None):
    """``evaluate --keyframe-first`` / ``--keyframe-shots``: per clip (one scan for both), its first frame as
    keyframe (``keyframe``), and/or every frame `animecolor shots` writes (:func:`reference.pick_shot_frames`)
    from the color original at the scoring size, as if all were painted (``keyframe-shots``; those frames are
    then not scored)."""
    from .. import frames as fr
    from .. import reference as R

    def per_clip(path, first_rgb):
        kfs: list = []

        def keep(index, t, rgb):
            kfs.append(R.Keyframe(fr.fit_long_side(rgb, max_side), t, f"shot {index + 1}"))

        cuts = (R.pick_shot_frames(path, keep) if shots else R.scan_shots(path)).cuts
        cols = _keyframe_pair(base, [R.Keyframe(first_rgb, 0.0, "first frame")], cuts, "keyframe") if first else {}
        if not shots:
            return cols
        return {**cols, **_keyframe_pair(base, kfs, cuts, "keyframe-shots")}, [k.time for k in kfs]

    return per_clip


def _json_safe(obj):
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from .. import evaluate as ev
    from ..cli import CLIError
    from ..colorize import GrayColorizer, LutColorizer, default_batch_size, load_colorizer, resolve_device
    from ..temporal import make_smoother

    if args.keep_color:
        return run_keep_color(args)
    console = Console(stderr=True)
    out = Console()
    if args.stride < 1:
        raise CLIError(f"--stride must be >= 1, got {args.stride}")
    if args.max_frames is not None and args.max_frames < 1:
        raise CLIError(f"--max-frames must be >= 1, got {args.max_frames}")
    if args.max_side < 0:
        raise CLIError(f"--max-side must be >= 0 (0 = full size), got {args.max_side}")
    videos = ev.find_videos(args.inputs)  # fail early, before loading anything
    for report_path in (args.json, args.markdown):  # ... and before a long evaluation
        if report_path is not None:
            _check_report_path(report_path, CLIError)
    smoother_factory = None
    if args.temporal:
        make_smoother(args.temporal)  # validates the name
        smoother_factory = lambda: make_smoother(args.temporal)  # noqa: E731

    device = resolve_device(args.device)
    colorizers: dict = {}
    if args.baselines_only and args.weights:
        raise CLIError("--baselines-only and --weights exclude each other")
    weights = [] if args.baselines_only else ([Path(w) for w in args.weights] or [None])
    names = _model_names([w for w in weights if w is not None]) if args.weights else ["default"]
    for name, w in zip(names, weights):
        col = load_colorizer(w, device=str(device), runtime=args.runtime)
        col.name = name
        colorizers[name] = col
    colorizers["gray"] = GrayColorizer()
    notes: list[str] = []
    base = next((c for c in colorizers.values() if hasattr(c, "model")), None)
    if (args.reference or args.keyframe_first or args.keyframe_shots) and base is None:
        raise CLIError("--reference, --keyframe-first and --keyframe-shots need a model (drop --baselines-only)")
    per_clip = None
    if args.reference:
        from .. import reference as R

        for n in args.reference_frames or [R.DEFAULT_REFERENCE_FRAMES]:
            R.check_reference_frames(n)
            with console.status(f"sampling {n} reference frames..."):
                refs = R.sample_references(args.reference, n)
            tag = "" if args.reference_frames is None else f"-{n}"
            for steps in args.reference_adapt or [None]:
                name = f"reference{tag}" if args.reference_adapt is None else f"reference{tag}-adapt{steps}"
                with console.status(f"{name}: adapting the model to the references..." if steps != 0 else f"{name}..."):
                    colorizers[name] = R.reference_colorizer(base, [r for r, _ in refs], adapt_steps=steps,
                                                             weights=weights[0], name=name)
            colorizers[f"lut-references{tag}"] = LutColorizer.fit([r for r, _ in refs], name=f"lut-references{tag}")
            notes.append(f"reference{tag}: {len(refs)} frames sampled from {', '.join(args.reference)}; "
                         f"lut-references{tag}: a lookup table fitted on the same frames")
    if args.keyframe_first or args.keyframe_shots:
        per_clip = _guided_keyframes(base, args.keyframe_first, args.keyframe_shots, args.max_side or None)
    if args.keyframe_first:
        notes.append("keyframe / copy-keyframe / lut-keyframe: each clip's first frame is its keyframe (lut-keyframe: a "
                     "lookup table fitted on it); all colorizers scored on the frames after it")
    if args.keyframe_shots:
        notes.append("keyframe-shots / copy-keyframe-shots / lut-keyframe-shots: every frame `animecolor shots` proposes (each "
                     "shot's first that is not blank, each new picture's within a shot) is a keyframe; those frames are "
                     "not scored, for any colorizer")

    if args.lut:
        colorizers["lut"] = LutColorizer.load(args.lut)
        notes.append(f"lut baseline: loaded from {args.lut}")
    elif args.fit_lut:
        with console.status("fitting the lookup-table baseline..."):
            colorizers["lut"] = ev.fit_lut(args.fit_lut)
        notes.append(f"lut baseline: fitted on {', '.join(args.fit_lut)}")
    else:
        notes.append("lut baseline skipped: pass --lut runs/<name>/lut.npy or --fit-lut COLOR_VIDEOS_OR_DIR")
        console.print("[yellow]note:[/] the lut baseline was skipped (no --lut or --fit-lut given)")
    if args.temporal:
        notes.append(f"temporal smoother: {args.temporal} (on every colorizer)")

    batch = args.batch_size or default_batch_size(device)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=args.quiet,
        transient=True,
    ) as bar:
        task = bar.add_task("evaluating", total=None)

        def progress(clip: str, done: int, total: int | None) -> None:
            bar.update(task, description=clip, completed=done, total=total)

        report = ev.evaluate_paths(
            videos,
            colorizers,
            max_frames=args.max_frames,
            stride=args.stride,
            max_side=args.max_side or None,
            batch_size=batch,
            smoother_factory=smoother_factory,
            progress=progress,
            per_clip=per_clip,
        )
    report["notes"] = notes
    report["settings"] = {
        "stride": args.stride,
        "max_side": args.max_side,
        "max_frames": args.max_frames,
        "temporal": args.temporal,
        "device": str(device),
        "weights": [str(w) for w in args.weights],
        "reference": [str(r) for r in args.reference],
        "reference_frames": args.reference_frames,
        "keyframe_first": args.keyframe_first,
        "keyframe_shots": args.keyframe_shots,
    }

    def show(title: str, result) -> None:
        t = Table(title=title, title_justify="left")
        for i, h in enumerate(ev.TABLE_HEADER):
            t.add_column(h, justify="left" if i == 0 else "right")
        rows = ev.table_rows(result)
        for row in rows[:-1]:
            t.add_row(*row)
        t.add_row(*rows[-1], style="dim")
        out.print(t)

    for c in report["clips"]:
        w, h = c["size"]
        show(f"{Path(c['path']).name}: {c['frames']} frames at {w}x{h}, stride {c['stride']}", c)
    ov = report["overall"]
    show(f"Overall: {len(report['clips'])} clips, {ov['frames']} frames, {ov['seconds']:.0f} s", ov)
    for n in notes:
        out.print(f"[dim]{n}[/]")

    if args.json:
        _write_report(args.json, json.dumps(_json_safe(report), indent=2) + "\n", out)
    if args.markdown:
        _write_report(args.markdown, ev.to_markdown(report, notes), out)
    return 0
