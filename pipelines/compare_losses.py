"""Compare checkpoints (e.g. the L1 / L2 / CE loss runs) on the validation shards.

    python pipelines/compare_losses.py --data data/default runs/loss_ce/last.safetensors runs/loss_l1/last.safetensors ...

Every frame goes the way `episode` treats it (video luma -> colorizer -> chroma
planes beside the source luma -> RGB) and is scored against the color frame:
mean CIEDE2000 and colorfulness ratio (output / ground truth).  Gray and a
luma-to-chroma lookup table fitted on the training shards are printed beside.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from animecolor.colorize import GrayColorizer, LutColorizer, load_colorizer
from animecolor.evaluate import score_frames as score


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/default")
    ap.add_argument("--max-frames", type=int, default=400)
    ap.add_argument("checkpoints", nargs="*")
    args = ap.parse_args()
    data = Path(args.data)
    val = np.load(data / "val-00000.npz")["rgb"]
    rng = np.random.default_rng(0)
    if len(val) > args.max_frames:
        val = val[np.sort(rng.choice(len(val), args.max_frames, replace=False))]
    train = np.load(data / "train-00000.npz")["rgb"]
    lut = LutColorizer.fit(train[::4])
    rows = {"gray": score(GrayColorizer(), val), "lut": score(lut, val)}
    for ck in args.checkpoints:
        rows[ck] = score(load_colorizer(ck), val)
    print(f"validation frames: {len(val)} ({val.shape[1]}x{val.shape[2]})\n")
    print("| colorizer | CIEDE2000 (lower is better) | colorfulness / GT |")
    print("|---|---|---|")
    for k, r in rows.items():
        print(f"| {k} | {r['ciede2000']:.2f} | {r['colorfulness_ratio']:.2f} |")


if __name__ == "__main__":
    main()
