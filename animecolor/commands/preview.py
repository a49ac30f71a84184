"""``animecolor preview IN (--at TIME ... | --frames N) -o preview.png``: colorize a few frames to tune settings."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2

from ..temporal import SMOOTHERS

DEFAULT_FRAMES = 6
SHEET_PANEL_HEIGHT = 270  # contact sheets: panel height in px unless --panel-height


def _default_temporal() -> str:
    from .. import temporal

    return getattr(temporal, "DEFAULT", "ema")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "preview",
        help="colorize single frames (or a still image) into a side-by-side PNG",
        description=(
            "Colorize a few frames exactly as 'episode' would and write a PNG: gray input | colorized "
            "(| original with its CIEDE2000 when the input is color footage)."
        ),
    )
    p.add_argument("input", type=Path, metavar="IN", help="video file, or a still image (PNG/JPEG)")
    p.add_argument(
        "--at",
        action="append",
        default=[],
        metavar="TIME",
        help="frame to preview: HH:MM:SS.s, MM:SS, seconds or '#FRAME' (quote it); repeat for more rows",
    )
    p.add_argument(
        "--frames",
        type=int,
        metavar="N",
        help=f"contact sheet of N frames spread across the video, one per scene where possible (default {DEFAULT_FRAMES})",
    )
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT", help="PNG (or JPEG) to write")
    p.add_argument("--overwrite", action="store_true", help="replace OUT when it exists")
    p.add_argument("--colorized-only", action="store_true", help="write only the colorized frame(s), no panels or labels")
    p.add_argument(
        "--context", type=int, default=0, metavar="K", help="colorize the K frames before each one first, so the temporal smoother's state is realistic"
    )
    p.add_argument("--weights", type=Path, help="model checkpoint (.safetensors); default: the shipped weights")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1 ...")
    p.add_argument("--working-size", type=int, default=None, metavar="PX",
                   help="model input long side, multiple of 32 (default: the checkpoint's), as in 'episode'")
    p.add_argument("--temperature", type=float, default=None, metavar="T",
                   help="color decoding temperature (default: the checkpoint's), as in 'episode'")
    p.add_argument("--temporal", choices=sorted(SMOOTHERS), default=None, help=f"temporal smoother, as in 'episode' (default {_default_temporal()})")
    from .episode import add_guide_options, add_runtime_option
    from .select import add_keep_color_options

    add_guide_options(p)
    add_runtime_option(p)
    add_keep_color_options(p)
    p.add_argument("--panel-height", type=int, metavar="PX", help=f"scale panels to this height (default: full size for --at, {SHEET_PANEL_HEIGHT} for --frames)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..cli import CLIError
    from ..colorize import load_colorizer
    from ..preview import is_still_image, parse_time, pick_times, preview_frames, render_sheet

    src: Path = args.input
    out: Path = args.output
    still = is_still_image(src)
    if args.at and args.frames is not None:
        raise CLIError("use --at or --frames, not both")
    if still and (args.at or args.frames is not None):
        raise CLIError(f"{src.name} is a still image: drop --at/--frames")
    if args.frames is not None and args.frames < 1:
        raise CLIError(f"--frames must be >= 1, got {args.frames}")
    if args.context < 0:
        raise CLIError(f"--context must be >= 0, got {args.context}")
    if args.panel_height is not None and args.panel_height < 16:
        raise CLIError(f"--panel-height must be >= 16, got {args.panel_height}")
    for t in args.at:
        parse_time(t)  # bad syntax fails before the model loads
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise CLIError(f"output {out} must end in .png (or .jpg)")
    if out.exists() and not args.overwrite:
        raise CLIError(f"{out} exists; pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise CLIError(f"output folder {out.parent} does not exist; create it first")
    if not src.exists():
        raise CLIError(f"input not found: {src}")

    if args.keep_color:
        from .select import keep_colorizer

        colorizer = keep_colorizer(args, None if args.device == "auto" else args.device)
    else:
        colorizer = load_colorizer(args.weights, args.device, working_long_side=args.working_size,
                                   temperature=args.temperature, runtime=args.runtime)
    if args.keyframe and still:
        raise CLIError(f"{src.name} is a still image: --keyframe needs a video")
    from .episode import build_guided

    colorizer = build_guided(args, colorizer, src, lambda m: print(f"animecolor: warning: {m}", file=sys.stderr))
    t0 = time.perf_counter()
    sheet_mode = not still and not args.at
    times = [] if still else (args.at or pick_times(src, args.frames or DEFAULT_FRAMES))
    previews = preview_frames(src, times, colorizer, temporal=args.temporal, context=args.context)
    seconds = time.perf_counter() - t0
    height = args.panel_height or (SHEET_PANEL_HEIGHT if sheet_mode and len(previews) > 1 else None)
    sheet = render_sheet(previews, colorized_only=args.colorized_only, panel_height=height)
    if not cv2.imwrite(str(out), sheet[..., ::-1]):
        raise OSError(f"could not write {out}; check the folder's permissions and free space")
    for p in previews:
        where = "image" if p.time is None else f"{p.time:9.3f} s  frame {p.frame_index}"
        score = f"  CIEDE2000 {p.ciede2000:.2f}" if p.ciede2000 is not None else ""
        print(f"{where}{score}")
    n = len(previews)
    print(f"wrote {out} ({n} frame{'s' if n != 1 else ''}, {seconds:.2f} s after loading the model)")
    return 0
