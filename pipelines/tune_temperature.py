"""Pick the annealed-mean temperature of a ``ce`` checkpoint on the validation shards.

    python pipelines/tune_temperature.py runs/default/best.safetensors --data data/default --temps 0.38,0.5,0.7,1.0

The classification head predicts a distribution over a/b bins; the decoded
color is its annealed mean (Zhang et al. 2016): low T = vivid (mode-like),
T = 1 = the plain mean (safe but washed out).  This is a decoding setting, not
training: it is chosen on the val split of the training data (never on the
evaluation clips), scored like ``compare_losses.py`` (mean CIEDE2000 and the
colorfulness ratio), and stored in the checkpoint's config with ``--write``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from compare_losses import score  # noqa: E402

from animecolor.colorize import load_colorizer  # noqa: E402
from animecolor.model import load_model, read_metadata, save_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--data", default="data/default")
    ap.add_argument("--temps", default="0.38,0.5,0.7,1.0")
    ap.add_argument("--max-frames", type=int, default=400)
    ap.add_argument("--min-colorfulness", type=float, default=0.7, help="only pick temperatures at or above this ratio")
    ap.add_argument("--write", help="save the checkpoint with the picked temperature here")
    args = ap.parse_args()
    val = np.load(Path(args.data) / "val-00000.npz")["rgb"]
    rng = np.random.default_rng(0)
    if len(val) > args.max_frames:
        val = val[np.sort(rng.choice(len(val), args.max_frames, replace=False))]
    col = load_colorizer(args.checkpoint, device="cpu")
    rows = {}
    print(f"validation frames: {len(val)} ({val.shape[1]}x{val.shape[2]})\n")
    print("| temperature | CIEDE2000 | colorfulness / GT |\n|---|---|---|")
    for t in [float(x) for x in args.temps.split(",")]:
        col.model.cfg.temperature = t
        rows[t] = r = score(col, val)
        print(f"| {t:.2f} | {r['ciede2000']:.2f} | {r['colorfulness_ratio']:.2f} |", flush=True)
    ok = {t: r for t, r in rows.items() if r["colorfulness_ratio"] >= args.min_colorfulness} or rows
    best = min(ok, key=lambda t: ok[t]["ciede2000"])
    print(f"\npicked T = {best} (lowest CIEDE2000 with colorfulness ratio >= {args.min_colorfulness})")
    if args.write:
        model = load_model(args.checkpoint)
        model.cfg.temperature = best
        info = dict(read_metadata(args.checkpoint)["info"])
        info["temperature_tuning"] = {"picked": best, "rows": {str(t): r for t, r in rows.items()}, "data": args.data}
        save_model(model, args.write, info=info)
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
