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
        "frame that is not blank (a fade-in from black has nothing to paint), and a frame of each new picture within a "
        "shot, as DIR/shot_NNNN@TIME.png. Paint the "
        "ones you want in color (keep the file names), then `animecolor episode IN OUT --keyframe DIR`: each painted frame colors its shot; frames left gray are "
        "skipped, and their shots take the painted ones' palette.",
    )
    p.add_argument("input", type=Path, metavar="IN", help="video file")
    p.add_argument("-o", "--out", required=True, type=Path, metavar="DIR", help="folder for the shot frames (made if missing)")
    p.add_argument("--drift", type=float, default=None, metavar="SHARE",
                   help="also write a frame of each new picture within a shot (after a dissolve, a camera move to new "
                   "things, a change of light): once the last frame written explains less than SHARE of the picture "
                   "(default: animecolor.reference.SHOT_DRIFT, 0.5, picked on validation clips; 0: shot starts only)")
    p.add_argument("--every", type=float, default=None, metavar="SECONDS",
                   help="with --drift: also write a frame once the last one written within the shot is this old "
                   "(default: animecolor.reference.SHOT_EVERY, 8; 0: never)")
    p.add_argument("--overwrite", action="store_true", help="replace shot frames already in DIR")
    p.add_argument("-q", "--quiet", action="store_true", help="no line per shot")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..preview import format_time
    from ..cli import CLIError
    from ..reference import SHOT_DRIFT, SHOT_EVERY, write_shot_frames

    shots: set[int] = set()

    def shown(index: int, t: float, path: Path) -> None:
        shots.add(index)
        if not args.quiet:
            print(f"shot {index + 1:4d} at {format_time(t)}  {path}", file=sys.stderr, flush=True)

    if args.drift is not None and not 0.0 <= args.drift < 1.0:
        raise CLIError(f"--drift must be at least 0 and under 1, got {args.drift}")
    if args.every is not None and args.every < 0:
        raise CLIError(f"--every must be at least 0, got {args.every}")
    drift = SHOT_DRIFT if args.drift is None else args.drift or None
    every = SHOT_EVERY if args.every is None else args.every or None
    written = write_shot_frames(args.input, args.out, overwrite=args.overwrite, on_shot=shown, drift=drift, every=every)
    print(f"wrote {len(written)} frame(s) of {len(shots)} shot(s) to {args.out}; paint some, then: "
          f"animecolor episode {args.input} OUT.mp4 --keyframe {args.out}")
    return 0
