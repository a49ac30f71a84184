"""Train the shipped default model (step 2 of pipelines/README.md).

    python pipelines/train_default.py --data data/default --out runs/default --loss ce --steps 3000

Reads the shards written by ``prepare_default.py``; the model input is the Lab
lightness of the frame's *video luma* (what a B&W broadcast carries), with
B&W-film augmentations; the target is the Lab a/b of the color frame.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from animecolor.color import gray_to_L, rgb_to_lab, y_to_gray
from animecolor.frames import rgb_to_y
from animecolor.train import L1_WEIGHT, LOSSES, TrainConfig, train
from prepare_default import SIZE as REFERENCE_SIZE  # the 176 px scale validation is measured at


def film_augment(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Make a clean gray frame look like scanned B&W film: tone, blur, grain, dust, flicker."""
    g = gray.astype(np.float32) / 255.0
    if rng.random() < 0.8:
        g = np.power(np.clip(g, 0, 1), rng.uniform(0.7, 1.4))
        g = (g - 0.5) * rng.uniform(0.75, 1.2) + 0.5 + rng.uniform(-0.08, 0.08)
    if rng.random() < 0.3:
        g = cv2.GaussianBlur(g, (0, 0), rng.uniform(0.4, 1.2))
    if rng.random() < 0.5:
        g = g + rng.normal(0, rng.uniform(0.005, 0.04), g.shape).astype(np.float32)
    if rng.random() < 0.3:
        for _ in range(int(rng.integers(1, 8))):
            y, x = int(rng.integers(g.shape[0])), int(rng.integers(g.shape[1]))
            cv2.circle(g, (x, y), int(rng.integers(1, 3)), float(rng.choice([0.0, 1.0])), -1)
    return np.clip(g * 255.0 + 0.5, 0, 255).astype(np.uint8)


class ShardFrames(Dataset):
    """uint8 RGB shards -> ``{"L": (1,c,c) in [-1,1], "ab": (2,c,c)}`` with random crop/flip.

    ``min_window`` > 0 (training only): the crop is a random square window of
    ``min_window``..S px (S = stored size) resized to ``crop`` px, so objects are
    seen at several scales; 0 = a plain ``crop``-px window.  Validation always
    takes the centred window of ``crop * S / REFERENCE_SIZE`` (176) px resized to ``crop`` (a plain
    centred crop for 176-px shards), so every run sees objects at one scale.
    """

    def __init__(self, root: str | Path, split: str, crop: int = 160, augment: bool = True, seed: int = 0,
                 min_window: int = 0):
        files = sorted(Path(root).glob(f"{split}-*.npz"))
        if not files:
            raise FileNotFoundError(f"no {split}-*.npz shards in {root}")
        self.rgb = np.concatenate([np.load(f)["rgb"] for f in files])
        self.crop, self.augment, self.seed, self.min_window = crop, augment, seed, min_window

    def __len__(self) -> int:
        return len(self.rgb)

    def __getitem__(self, i: int) -> dict:
        rng = np.random.default_rng() if self.augment else np.random.default_rng(self.seed + i)
        rgb = self.rgb[i]
        H, W = rgb.shape[:2]
        if self.augment:
            c = int(rng.integers(self.min_window, min(H, W) + 1)) if self.min_window else self.crop
            y0, x0 = int(rng.integers(0, H - c + 1)), int(rng.integers(0, W - c + 1))
        else:
            c = min(H, W, round(self.crop * min(H, W) / REFERENCE_SIZE))
            y0, x0 = (H - c) // 2, (W - c) // 2
        rgb = rgb[y0 : y0 + c, x0 : x0 + c]
        if c != self.crop:
            rgb = cv2.resize(rgb, (self.crop, self.crop), interpolation=cv2.INTER_AREA)
        if self.augment and rng.random() < 0.5:
            rgb = rgb[:, ::-1]
        rgb = np.ascontiguousarray(rgb)
        gray = y_to_gray(rgb_to_y(rgb))
        if self.augment:
            gray = film_augment(gray, rng)
        L = gray_to_L(gray) / 50.0 - 1.0
        ab = rgb_to_lab(rgb)[..., 1:].transpose(2, 0, 1)
        return {"L": torch.from_numpy(L[None].astype(np.float32)), "ab": torch.from_numpy(np.ascontiguousarray(ab))}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/default")
    ap.add_argument("--out", default="runs/default")
    ap.add_argument("--loss", default="ce", choices=LOSSES)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--crop", type=int, default=160)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--min-window", type=int, default=0,
                    help="scale augmentation: random windows of this many px up to the stored size, resized to --crop")
    ap.add_argument("--val-every", type=int, default=200)
    ap.add_argument("--time-budget", type=float, default=None, help="seconds")
    ap.add_argument("--init", default=None, help="checkpoint to start from")
    ap.add_argument("--ema-decay", type=float, default=None, help="validate/save a moving average of the weights")
    ap.add_argument("--l1-weight", type=float, default=L1_WEIGHT, help="ce+l1: weight of the L1 term")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = TrainConfig(loss=args.loss, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                      val_every=args.val_every, time_budget_s=args.time_budget,
                      ema_decay=args.ema_decay, l1_weight=args.l1_weight)
    tr = ShardFrames(args.data, "train", args.crop, augment=True, min_window=args.min_window)
    va = ShardFrames(args.data, "val", args.crop, augment=False)
    manifest = json.loads((Path(args.data) / "manifest.json").read_text())
    info = {"data": args.data, "manifest_checksum": manifest.get("manifest_checksum"), "recipe": "pipelines/train_default.py",
            "argv": sys.argv[1:], "hardware": f"CPU x{torch.get_num_threads()}" if not torch.cuda.is_available() else torch.cuda.get_device_name()}
    t0 = time.time()

    def cb(ev: dict) -> None:
        if ev.get("event") == "val" or ev["step"] % 50 == 0:
            msg = f"step {ev['step']}/{args.steps} loss {ev['loss']:.4f} {time.time() - t0:.0f}s"
            if ev.get("val"):
                msg += f" val {ev['val']}"
            print(msg, flush=True)

    summary = train(cfg, tr, va, args.out, init=args.init, info=info, callback=cb)
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
