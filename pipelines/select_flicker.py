"""Frame-to-frame flicker of a keep-color mask on a shot, for several smoothing weights.

A clip-art object from the held-out half of openclipart (as make_select_pairs.py
picks them) is pasted at a fixed place on every frame of a Caminandes 3 shot: the
subject does not move, the shot behind it does, so every change of the predicted
mask from one frame to the next is flicker.  For each EMA weight (1 = no
smoothing) it prints the share of pixels whose binary mask flips per frame, and
the mean IoU against the pasted alpha.

    python pipelines/select_flicker.py runs/select/n30/best.safetensors \\
        ../shared/data/series/caminandes3/caminandes_llamigos_E01_SE01_SH03.mp4   # val shot (training source)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import av
import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_select_pairs import CLIPART, LONG_SIDE, characters  # noqa: E402

from animecolor.keepcolor import REFINES, MaskSmoother, _gray_of, load_keepcolor, mask_flicker  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", type=Path)
    ap.add_argument("shot", type=Path)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--ema", type=float, nargs="+", default=[1.0, 0.7, 0.5, 0.3])
    ap.add_argument("--clipart", type=Path, default=CLIPART)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--refine", choices=REFINES, default=REFINES[0], help="the mask's post-step (episode's default first)")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    (_, rgba), = characters(args.clipart, "test", 1, rng)
    col = load_keepcolor(args.weights, refine=args.refine)
    frames = []
    with av.open(str(args.shot)) as c:
        for fr in c.decode(video=0):
            img = fr.to_ndarray(format="rgb24")
            s = LONG_SIDE / max(img.shape[:2])
            frames.append(cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)), interpolation=cv2.INTER_AREA))
            if len(frames) == args.frames:
                break
    H, W = frames[0].shape[:2]
    h = int(H * 0.6)
    w = min(int(rgba.shape[1] * h / rgba.shape[0]), int(0.8 * W))
    obj = cv2.resize(rgba, (w, h), interpolation=cv2.INTER_AREA)
    alpha = np.zeros((H, W), np.float32)
    y0, x0 = (H - h) // 2, (W - w) // 3
    alpha[y0:y0 + h, x0:x0 + w] = obj[..., 3] / 255.0
    raw, grays = [], []
    for f in frames:
        layer = f.astype(np.float32).copy()
        layer[y0:y0 + h, x0:x0 + w] = obj[..., :3]
        inp = np.clip(f * (1 - alpha[..., None]) + layer * alpha[..., None] + 0.5, 0, 255).astype(np.uint8)
        g = _gray_of(inp)
        ww, hh = col.working_size(W, H)
        src = cv2.resize(inp, (ww, hh), interpolation=cv2.INTER_AREA)
        _, m = col.masks(cv2.resize(g, (ww, hh), interpolation=cv2.INTER_AREA)[None], [src])
        raw.append(m[0])
        grays.append(g)
    truth = alpha > 0.5
    print(f"{args.shot.name}: {len(frames)} frames; pasted object covers {truth.mean():.1%} of the frame")
    print("| EMA weight | flicker (pixels flipping per frame) | mean IoU |")
    print("|---:|---:|---:|")
    for a in args.ema:
        sm = MaskSmoother(a)
        full = [col.full_mask(sm(g, m), g) for g, m in zip(grays, raw)]
        ious = [((f > 0.5) & truth).sum() / max(1, ((f > 0.5) | truth).sum()) for f in full]
        print(f"| {a} | {mask_flicker(full):.4f} | {np.mean(ious):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
