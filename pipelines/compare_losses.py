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
from animecolor.frames import chroma_for, model_input, rgb_to_y, yuv_to_rgb
from animecolor.metrics import ciede2000, colorfulness


def score(col, frames: np.ndarray, batch: int = 16) -> dict:
    d, cf_o, cf_t = [], [], []
    H, W = frames.shape[1:3]
    size = col.working_size(W, H)
    for i in range(0, len(frames), batch):
        rgb = frames[i : i + batch]
        ys = [rgb_to_y(f) for f in rgb]
        ab = col(np.stack([model_input(y, size) for y in ys]))
        for y, a, t in zip(ys, ab, rgb):
            u, v = chroma_for(y, a, "444")
            out = yuv_to_rgb(y, u, v)
            d.append(ciede2000(out, t))
            cf_o.append(colorfulness(out))
            cf_t.append(colorfulness(t))
    return {"ciede2000": float(np.mean(d)), "colorfulness_ratio": float(np.mean(cf_o) / max(np.mean(cf_t), 1e-6))}


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
