"""Pick the inference settings of a ``ce`` checkpoint (working size, temperature) on validation clips.

    python pipelines/tune_inference.py runs/default/best.safetensors --data data/default \
        --sizes 256,320 --temps 0.38,0.55,0.7,0.85,1.0 --write weights/default.safetensors

Two decoding settings are stored in the checkpoint's config and are not learned:

* ``working_long_side``: the long side (px) of the gray frame the model sees.  The
  training frames are 176 px high, so the scale of the objects at inference matters.
  The cost grows with its square: 384 px (2.25x the cost of 256) would drop the model
  below the 25 fps target at 640x480 on 2 CPU cores, so the default tries 256 and 320;
* ``temperature``: the classification head predicts a distribution over a/b bins; the
  decoded color is its annealed mean (Zhang et al. 2016): low T = vivid (mode-like),
  T = 1 = the plain mean (safe but washed out).

They are chosen on whole *validation* clips of the training data (the sources the
dataset manifest put entirely in the val split, e.g. two Penny & Chip episodes), never on
the evaluation clips, scored like ``animecolor evaluate`` (mean CIEDE2000 at 320 px
and the colorfulness ratio): the lowest CIEDE2000 whose colorfulness ratio is at least
``--min-colorfulness`` (0.7 by default: a margin over the 0.6 "no sepia" bar).
"""
from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

import torch

from animecolor.colorize import ModelColorizer
from animecolor.evaluate import VIDEO_EXTENSIONS, evaluate_paths
from animecolor.finetune import MIN_COLORFULNESS, pick_setting
from animecolor.model import load_model, read_metadata, save_model


def val_clips(data: Path, root: Path) -> list[Path]:
    """Video sources whose frames the dataset manifest put only in the val split."""
    m = json.loads((data / "manifest.json").read_text())
    splits = collections.defaultdict(set)
    for f in m["frames"]:
        splits[f["source"]].add(f["split"])
    vids = [s for s, sp in splits.items() if sp == {"val"} and Path(s).suffix.lower() in VIDEO_EXTENSIONS]
    return [root / s for s in sorted(vids)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--data", default="data/default", help="dataset whose manifest names the val clips")
    ap.add_argument("--root", default="../shared/data", help="where the manifest's source paths live")
    ap.add_argument("--sizes", default="256,320")
    ap.add_argument("--temps", default="0.38,0.55,0.7,0.85,1.0")
    ap.add_argument("--stride", type=int, default=4)
    ap.add_argument("--min-colorfulness", type=float, default=MIN_COLORFULNESS,
                    help=f"only pick settings at or above this ratio (default {MIN_COLORFULNESS})")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--write", help="save the checkpoint with the picked settings here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    clips = val_clips(Path(args.data), Path(args.root))
    if not clips:
        raise SystemExit(f"no val-only video sources in {args.data}/manifest.json")
    model = load_model(args.checkpoint)
    cols = {}
    for ws in [int(x) for x in args.sizes.split(",")]:
        for t in [float(x) for x in args.temps.split(",")]:
            col = cols[(ws, t)] = ModelColorizer(model, "cpu", name=f"{ws}px T={t}")  # a private copy each
            col.cfg.working_long_side, col.cfg.temperature = ws, t
    rep = evaluate_paths(clips, {str(k): c for k, c in cols.items()}, stride=args.stride, max_side=320)
    rows = {k: rep["overall"]["colorizers"][str(k)] for k in cols}
    print(f"validation clips: {', '.join(c.name for c in clips)} ({rep['overall']['frames']} frames, stride {args.stride})\n")
    print("| working long side | temperature | CIEDE2000 | colorfulness / GT |\n|---|---|---|---|")
    for (ws, t), r in rows.items():
        print(f"| {ws} | {t:.2f} | {r['ciede2000']:.2f} | {r['colorfulness_ratio']:.2f} |")
    ws, t = pick_setting(rows, args.min_colorfulness)
    met = rows[(ws, t)]["colorfulness_ratio"] >= args.min_colorfulness  # pick_setting falls back to all rows
    why = (f"lowest CIEDE2000 with colorfulness ratio >= {args.min_colorfulness}" if met else
           f"no setting keeps a colorfulness ratio of {args.min_colorfulness}: lowest CIEDE2000 of all")
    print(f"\npicked working_long_side = {ws}, temperature = {t} ({why})")
    if args.write:
        model.cfg.working_long_side, model.cfg.temperature = ws, t
        info = dict(read_metadata(args.checkpoint)["info"])
        info.pop("temperature_tuning", None)
        info["inference_tuning"] = {
            "picked": {"working_long_side": ws, "temperature": t},
            "clips": [c.name for c in clips],
            "rows": {f"{k[0]}px T={k[1]}": {"ciede2000": r["ciede2000"], "colorfulness_ratio": r["colorfulness_ratio"]}
                     for k, r in rows.items()},
        }
        save_model(model, args.write, info=info)
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
