"""``animecolor select train PAIRS... -o RUN``: learn where to keep color from a few edited frames."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["register", "run_train", "add_keep_color_options", "keep_colorizer"]


def add_keep_color_options(p) -> None:
    """``--keep-color``, ``--keep-color-source`` and ``--keep-color-refine`` (episode and preview)."""
    p.add_argument("--keep-color", type=Path, default=None, metavar="RUN/best.safetensors",
                   help="keep color only where this selective-color model (from `animecolor select train`) says; "
                        "the rest is gray (see docs/keepcolor.md)")
    p.add_argument("--keep-color-source", choices=("auto", "source", "model"), default="auto",
                   help="with --keep-color: keep the source's own colors (color video) or the colorizer's (B&W "
                        "video); auto decides from the source's chroma (default)")
    add_refine_option(p)


def add_refine_option(p) -> None:
    from ..keepcolor import REFINES

    p.add_argument("--keep-color-refine", choices=REFINES, default=REFINES[0],
                   help="with --keep-color: refine each frame's mask with OpenCV GrabCut on the frame's colors "
                        "(default; edges follow the subject's colors, about 40 ms per frame on one core) or not (none)")


def keep_colorizer(args, device: str | None):
    """The keep-color colorizer ``args`` ask for; one-line errors for options it cannot be combined with."""
    from ..keepcolor import load_keepcolor

    for flag, used in (("--weights", args.weights), ("--reference", args.reference), ("--keyframe", args.keyframe),
                       ("--working-size", args.working_size), ("--temperature", args.temperature)):
        if used:
            raise ValueError(f"--keep-color cannot be combined with {flag} (the keep-color model holds its own colorizer)")
    return load_keepcolor(args.keep_color, device, source=args.keep_color_source, runtime=getattr(args, "runtime", "auto"),
                          refine=args.keep_color_refine)


def register(subparsers) -> None:
    from ..keepcolor import FEATURES
    from ..keepcolor_train import DECOYS, EARLY_STOP_EPOCHS, EPOCHS, FEATURE_SOURCE, PASTE, TUNE_FROM

    p = subparsers.add_parser(
        "select",
        help="selective color: keep color only on chosen subjects (train the mask from edited frames)",
        description="Selective color. `select train` learns, from pairs (a color frame and the same frame edited so "
        "only the chosen subjects keep color), a mask head on the colorizer's backbone; use the result with "
        "`animecolor episode IN OUT --keep-color RUN/best.safetensors`.",
    )
    sub = p.add_subparsers(dest="select_command", metavar="SUBCOMMAND")
    t = sub.add_parser(
        "train",
        help="learn the keep-color mask from pairs",
        description="Pairs: a folder with NAME_input.png and NAME_target.png (several folders may be given), or two "
        "folders (inputs, targets) with the same file names. The target keeps the input's colors on the chosen "
        "subjects and is gray elsewhere. Every pair trains, for a fixed number of epochs (--early-stop: every 5th pair "
        "is held out instead, and training stops when its mask IoU no longer improves).",
    )
    t.add_argument("pairs", nargs="+", type=Path, metavar="PAIRS", help="pair folder(s)")
    t.add_argument("-o", "--out", required=True, type=Path, metavar="RUN", help="run folder (best.safetensors, history.jsonl)")
    t.add_argument("--base", type=Path, default=None, help="colorizer whose backbone is used (default: weights/default.safetensors)")
    t.add_argument("--epochs", type=int, default=None,
                   help=f"epochs (default {EPOCHS}; with --early-stop: at most, default {EARLY_STOP_EPOCHS})")
    t.add_argument("--early-stop", action="store_true",
                   help="hold every 5th pair out and keep the epoch with the best mask IoU on them")
    t.add_argument("--patience", type=int, default=10,
                   help="with --early-stop: stop after this many epochs without a better val IoU (default 10)")
    t.add_argument("--max-pairs", type=int, default=None, metavar="N", help="use the first N pairs (by name) only")
    t.add_argument("--augment", type=int, default=0, metavar="N",
                   help="random views per training pair (crop, mirror, light; default 0)")
    t.add_argument("--no-augment-light", dest="augment_light", action="store_false",
                   help="with --augment: crops and mirrors only, no light changes")
    t.add_argument("--paste", type=int, default=PASTE, metavar="N",
                   help=f"copy-paste views per training pair: another pair's subject pasted onto it "
                        f"(default {PASTE}; 0: none)")
    t.add_argument("--bw-views", type=int, default=0, metavar="N",
                   help="train on the first N views of each pair (the pair, its mirror image, ...) also in the "
                        "colorizer's colors, as on a B&W video (default 0)")
    t.add_argument("--decoys", type=int, default=DECOYS, metavar="N",
                   help=f"decoy views per training pair: a piece of its background recolored in a subject's "
                        f"colors, still background (default {DECOYS}; 0: none)")
    t.add_argument("--ab-input", action="store_true",
                   help="the head also reads the frame's a/b beside the rgb features (the model before session 21; "
                        "colorizer features always do)")
    t.add_argument("--hard-negatives", type=float, default=0.0, metavar="W",
                   help="extra loss weight of background pixels colored like the subject (default 0)")
    t.add_argument("--tune-from", type=int, default=TUNE_FROM, choices=(0, 8, 16, 32), metavar="STRIDE",
                   help=f"fine-tune the backbone's blocks from this stride on (8, 16 or 32; 0: backbone frozen; "
                        f"default {TUNE_FROM})")
    t.add_argument("--features", choices=FEATURES, default=FEATURE_SOURCE,
                   help=f"what the head reads: rgb (an ImageNet EfficientNet-Lite0 on the frame's colors) or "
                        f"colorizer (the colorizer's backbone on its lightness; default {FEATURE_SOURCE})")
    t.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    t.add_argument("--overwrite", action="store_true", help="replace RUN/best.safetensors if it exists")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    t.set_defaults(func=run_train)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1] if a.select_command is None else a.func(a))


def run_train(args: argparse.Namespace) -> int:
    from ..keepcolor import find_pairs
    from ..keepcolor_train import default_config, train_keepcolor

    pairs = sorted(find_pairs(args.pairs))
    if args.max_pairs is not None:
        if args.max_pairs < 2:
            raise ValueError(f"--max-pairs must be at least 2, got {args.max_pairs}")
        pairs = pairs[: args.max_pairs]
    best = args.out / "best.safetensors"
    if best.exists() and not args.overwrite:
        raise FileExistsError(f"output exists: {best} (pass --overwrite to replace it)")

    def progress(ev: dict) -> None:
        if args.quiet:
            return
        if ev["stage"] == "features":
            print(f"animecolor: {ev['train']} training pairs, {ev['val']} held out; features cached in "
                  f"{ev['seconds']:.0f} s", file=sys.stderr)
        elif ev["epoch"] % 10 == 0:
            val = "" if ev["val_iou"] is None else f", val IoU {ev['val_iou']:.3f}"
            print(f"animecolor: epoch {ev['epoch']}: loss {ev['loss']:.3f}{val}", file=sys.stderr)

    rec = train_keepcolor(pairs, args.out, base=args.base, config=default_config(args.features, args.tune_from, True if args.ab_input else None),
                          epochs=args.epochs, patience=args.patience, augment=args.augment,
                          val_fraction=0.2 if args.early_stop else 0.0,
                          augment_light=args.augment_light, paste=args.paste, bw_views=args.bw_views,
                          decoys=args.decoys,
                          hard_negatives=args.hard_negatives, seed=args.seed, progress=progress)
    print(json.dumps({k: rec[k] for k in ("best", "pairs", "train_pairs", "best_epoch", "epochs_run", "val_iou",
                                          "seconds")}))
    return 0
