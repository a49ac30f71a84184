"""``animecolor shots IN -o DIR``: a frame of every shot (its first that is not blank), to paint as keyframes."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "shots",
        help="write a frame of every shot as a PNG, to paint as keyframes",
        description="Split a video into shots (the scene-cut test keyframe mode uses) and write each shot's first "
        "frame that is not blank (a fade-in from black has nothing to paint) as DIR/shot_NNNN@TIME.png. Paint the "
        "ones you want in color (keep the file names), then `animecolor episode IN OUT --keyframe DIR`: each painted frame colors its shot; frames left gray are "
        "skipped, and their shots take the painted ones' palette.",
    )
    p.add_argument("input", type=Path, metavar="IN", help="video file")
    p.add_argument("-o", "--out", required=True, type=Path, metavar="DIR", help="folder for the shot frames (made if missing)")
    p.add_argument("--overwrite", action="store_true", help="replace shot frames already in DIR")
    p.add_argument("-q", "--quiet", action="store_true", help="no line per shot")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..preview import format_time
    from ..reference import write_shot_frames

    def shown(index: int, t: float, path: Path) -> None:
        if not args.quiet:
            print(f"shot {index + 1:4d} at {format_time(t)}  {path}", file=sys.stderr, flush=True)

    written = write_shot_frames(args.input, args.out, overwrite=args.overwrite, on_shot=shown)
    print(f"wrote {len(written)} shot frame(s) to {args.out}; paint some, then: "
          f"animecolor episode {args.input} OUT.mp4 --keyframe {args.out}")
    return 0
