"""Train the learned refinement of keyframe/reference transfer (animecolor/refine.py) on TRAINING clips only.

Pairs of frames of the same shot: the reference is one frame of the shot (its
first colorful frame, and one random other), the targets are every 2nd frame
of the shot.  The frozen parts (the base model's matching features, its own
a/b, the training-free transfer and its confidence with the keyframe
settings) are computed once and cached; only the small refiner trains.

Training clips: the 21 Penny & Chip clips the base model trained on
(general/toasttv_veo/ minus the 2 val clips beach_surfing/rpi and the 3
held-out clips autumn/retro_gaming/xmas).  Never Sintel, Big Buck Bunny
(keyframe validation), Caminandes 3, Popeye or eval/ (test).

    python pipelines/refine_train.py prepare --out runs/refine        # cache (~3 min on 2 cores)
    python pipelines/refine_train.py train --out runs/refine --steps 1500 [--no-base] [--tag NAME]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from animecolor import frames as fr  # noqa: E402
from animecolor import metrics  # noqa: E402
from animecolor import reference as R  # noqa: E402
from animecolor.color import rgb_to_lab  # noqa: E402
from animecolor.colorize import load_colorizer  # noqa: E402
from animecolor.refine import Refiner, RefinerConfig, save_refiner  # noqa: E402

#: Not training material: keyframe validation (val clips) and test (held-out clips).
EXCLUDED = ("beach_surfing", "rpi", "autumn", "retro_gaming", "xmas")


def training_clips(data: Path) -> list[Path]:
    clips = sorted(p for p in (data / "general/toasttv_veo").glob("*.mp4") if not any(x in p.name for x in EXCLUDED))
    assert len(clips) == 21, clips
    return clips


def decode(path: Path, max_side: int = 320) -> tuple[list[np.ndarray], list[float]]:
    rgbs, times = [], []
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        start = None
        for f in c.decode(s):
            t = float(f.time)
            start = t if start is None else start
            rgbs.append(fr.fit_long_side(f.to_ndarray(format="rgb24"), max_side))
            times.append(t - start)
    return rgbs, times


def prepare(args) -> None:
    base = load_colorizer()
    feat = R._Features(base, R.KEYFRAME_PARAMS.features)
    params = R.KEYFRAME_PARAMS
    rng = random.Random(0)
    frames = {"feats": [], "base": [], "gray": [], "gt": []}
    samples = {"frame": [], "ab": [], "conf": []}
    t0 = time.perf_counter()
    for clip in training_clips(args.data):
        rgbs, times = decode(clip)
        cuts = R.scan_shots(clip).cuts
        shot = np.array([sum(1 for c in cuts if c <= t + 1e-6) for t in times])
        H, W = rgbs[0].shape[:2]
        size = base.working_size(W, H)
        abs_ = (size[1] // 2, size[0] // 2)
        n_clip = 0
        for k in np.unique(shot):
            idx = np.flatnonzero(shot == k)
            if len(idx) < 12:
                continue
            cfs = np.array([metrics.colorfulness(rgbs[i]) for i in idx])
            ok = [i for j, i in enumerate(idx) if rgbs[i].std() > 8 and cfs[j] >= 0.5 * np.median(cfs)]
            if not ok:
                continue
            refs = [ok[0], rng.choice(ok)]
            targets = [i for i in idx[1::2] if i not in refs]
            gray = np.stack([fr.model_input(fr.rgb_to_y(rgbs[i]), size) for i in targets])
            fs, bs = [], []
            for j in range(0, len(gray), 16):
                f_, b_ = feat(gray[j : j + 16], with_prediction=True)
                fs.append(f_)
                bs.append(b_)
            fts, bab = torch.cat(fs), torch.cat(bs)
            g_ab = np.stack([fr.ab_gray_size(g, abs_) for g in gray])
            gt = np.stack([rgb_to_lab(cv2.resize(rgbs[i], (abs_[1], abs_[0]), interpolation=cv2.INTER_AREA))[..., 1:] for i in targets])
            off = sum(len(x) for x in frames["gray"])
            frames["feats"].append(fts.half())
            frames["base"].append(bab.half())
            frames["gray"].append(torch.from_numpy(g_ab))
            frames["gt"].append(torch.from_numpy(gt).permute(0, 3, 1, 2).half())
            for r in refs:
                bank = R.encode_references(base, [rgbs[r]], params)
                ab, conf = R.transfer(bank, fts, torch.from_numpy(g_ab), params)
                samples["frame"].append(torch.arange(off, off + len(targets)))
                samples["ab"].append(ab.half())
                samples["conf"].append(conf.half())
            n_clip += len(targets)
        print(f"{clip.name}: {len(np.unique(shot))} shots, {n_clip} target frames ({time.perf_counter() - t0:.0f} s)", flush=True)
    cache = {k: torch.cat(v) for k, v in frames.items()} | {k: torch.cat(v) for k, v in samples.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(cache, args.out / "cache.pt")
    print(f"{len(cache['gray'])} frames, {len(cache['frame'])} pairs -> {args.out / 'cache.pt'} ({time.perf_counter() - t0:.0f} s)")


def train(args) -> None:
    torch.manual_seed(args.seed)
    c = torch.load(args.out / "cache.pt", weights_only=True)
    n = len(c["frame"])
    cfg = RefinerConfig(use_base=not args.no_base, width=args.width, blocks=args.blocks, feat_proj=0 if args.no_feats else 24)
    net = Refiner(cfg)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(args.seed)
    t0 = time.perf_counter()
    run = 0.0
    base_l1 = 0.0
    for step in range(1, args.steps + 1):
        i = torch.randint(0, n, (args.batch,), generator=gen)
        fi = c["frame"][i]
        # a random crop aligned to the cell grid (4 a/b pixels per cell): the same crop for the whole batch
        hc, wc = c["conf"].shape[-2:]
        ch, cw = min(args.crop[0], hc), min(args.crop[1], wc)
        y0 = int(torch.randint(0, hc - ch + 1, (1,), generator=gen))
        x0 = int(torch.randint(0, wc - cw + 1, (1,), generator=gen))
        cell = (slice(None), slice(None), slice(y0, y0 + ch), slice(x0, x0 + cw))
        pix = (slice(None), slice(None), slice(4 * y0, 4 * (y0 + ch)), slice(4 * x0, 4 * (x0 + cw)))
        gt = c["gt"][fi][pix].float()
        tr = c["ab"][i][pix].float()
        out = net(c["gray"][fi].unsqueeze(1)[pix].float(), tr, c["conf"][i].unsqueeze(1)[cell].float(),
                  c["base"][fi][pix].float(), c["feats"][fi][cell].float())
        loss = F.l1_loss(out, gt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        run += loss.item()
        base_l1 += F.l1_loss(tr, gt).item()
        if step % 100 == 0:
            print(f"step {step}: L1 {run / 100:.3f} (transfer alone {base_l1 / 100:.3f}) {time.perf_counter() - t0:.0f} s", flush=True)
            run = base_l1 = 0.0
        if step in args.save_at:
            save_refiner(net, args.out / f"{args.tag}_step{step}.safetensors", {"steps": step, "use_base": cfg.use_base})
    info = {"steps": args.steps, "batch": args.batch, "crop_cells": args.crop, "use_base": cfg.use_base, "lr": args.lr, "pairs": n, "seed": args.seed,
            "data": "21 Penny & Chip training clips (toasttv_veo minus val/held-out)", "train_s": round(time.perf_counter() - t0)}
    path = args.out / f"{args.tag}.safetensors"
    save_refiner(net, path, info)
    print(json.dumps(info), "->", path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stage", choices=["prepare", "train"])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data")
    ap.add_argument("--out", type=Path, default=ROOT / "runs/refine")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--blocks", type=int, default=2)
    ap.add_argument("--no-base", action="store_true", help="no base-model input (fall back toward gray)")
    ap.add_argument("--no-feats", action="store_true", help="no backbone-feature input (transfer, confidence and gray only)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-at", type=int, nargs="*", default=[], metavar="STEP", help="also save these intermediate steps")
    ap.add_argument("--crop", type=int, nargs=2, default=[12, 16], metavar=("HC", "WC"), help="training crop in cells (8 px)")
    ap.add_argument("--tag", default="refiner")
    args = ap.parse_args()
    torch.set_num_threads(2)
    prepare(args) if args.stage == "prepare" else train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
