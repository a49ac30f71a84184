"""Pick the keep-color mask's smoothing settings on whole shots with true masks at some frames.

Runs a keep-color model over every frame of the shots the pairs in PAIRS come
from (pairs named ``RANK_SHOT_fFRAME`` by make_caminandes_pairs.py, frames at
the pairs' size), then, for each setting, prints

* **flicker**: the share of pixels whose binary mask (> 0.5) flips from one frame
  to the next, over every frame of the shots (keep_color.mask_flicker);
* **IoU**: the full-size mask against the pairs' masks at the annotated frames,
  pooled over their known pixels, as ``evaluate --keep-color`` does;
* **CIEDE2000** of the output to the targets at those frames.

The masks are predicted in sequence, as in ``episode``, so the IoU sees the lag a
heavy moving average puts on a moving subject, which the flicker alone does not.
First the EMA weight of the new frame (guided filter at the checkpoint's
setting), then the guided filter's radius and eps (EMA at the checkpoint's
setting).  Choose on validation pairs (runs/cam_pairs/val), not on the test pairs::

    python pipelines/select_smoothing.py runs/cam/n30/best.safetensors runs/cam_pairs/val
    python pipelines/select_smoothing.py runs/cam/n30/best.safetensors runs/cam_pairs/test --shot SE02_SH07 \\
        --ema 1 0.5 --radius 4 --eps 1e-3                    # report only: the chosen settings on a test shot
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import av
import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_caminandes_pairs import DATA, shot_path  # noqa: E402

from animecolor.keepcolor import (REFINES, MaskSmoother, _gray_of, apply_mask_rgb, derive_mask, find_pairs,  # noqa: E402
                                  guided_upsample, load_keepcolor, load_pair, mask_flicker, mask_iou)
from animecolor.metrics import ciede2000  # noqa: E402

NAME = re.compile(r"^\d+_(SE\d+_SH\d+)_f(\d+)$")


def shot_frames(path: Path, width: int):
    """Every frame of the shot, RGB at ``width`` (as make_caminandes_pairs.py resizes them)."""
    with av.open(str(path)) as c:
        for fr in c.decode(video=0):
            img = fr.to_ndarray(format="rgb24")
            yield cv2.resize(img, (width, round(img.shape[0] * width / img.shape[1])), interpolation=cv2.INTER_AREA)


def predict_shot(col, frames: list[np.ndarray]) -> tuple[list, list, list]:
    """(working-size gray, the colorizer's masks before smoothing, full-size gray) of each frame, the head
    seeing the frame's a/b (and GrabCut its colors, unless the colorizer's ``refine`` is "none")."""
    H, W = frames[0].shape[:2]
    w, h = col.working_size(W, H)
    gws, raw, full = [], [], []
    for f in frames:
        g = _gray_of(f)
        gw = cv2.resize(g, (w, h), interpolation=cv2.INTER_AREA)
        _, m = col.masks(gw[None], [cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA)])
        gws.append(gw)
        raw.append(m[0])
        full.append(g)
    return gws, raw, full


def score(shots: dict, ema: float, radius: int, eps: float, stride: int) -> tuple[float, float, float]:
    """(flicker over all frames, pooled IoU and mean CIEDE2000 at the annotated frames) for one setting."""
    flick, inter, union, de = [], 0.0, 0.0, []
    for s in shots.values():
        sm = MaskSmoother(ema)
        masks = []
        for gw, m, g in zip(s["gws"], s["raw"], s["full"]):
            mm = sm(gw, m)
            scale = g.shape[1] / (mm.shape[1] * stride)  # the masks are at the working size / stride
            masks.append(guided_upsample(mm, g, max(1, round(radius * scale)) if radius > 0 else 0, eps))
        flick.append(mask_flicker(masks))
        for k, (inp, tgt, mask, known) in s["truth"].items():
            i, u = mask_iou(masks[k], mask, known)
            inter, union = inter + i, union + u
            de.append(ciede2000(apply_mask_rgb(inp, masks[k]), tgt))
    return float(np.mean(flick)), inter / union if union else 1.0, float(np.mean(de))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", type=Path)
    ap.add_argument("pairs", type=Path, help="pairs from make_caminandes_pairs.py (e.g. runs/cam_pairs/val)")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--shot", nargs="+", default=None, help="only these shots of PAIRS (e.g. SE02_SH07)")
    ap.add_argument("--ema", type=float, nargs="+", default=[1.0, 0.7, 0.5, 0.3, 0.2])
    ap.add_argument("--radius", type=int, nargs="+", default=[0, 2, 4, 8])
    ap.add_argument("--eps", type=float, nargs="+", default=[1e-4, 1e-3, 1e-2])
    ap.add_argument("--refine", choices=REFINES, default=REFINES[0], help="the mask's post-step (episode's default first)")
    args = ap.parse_args(argv)
    col = load_keepcolor(args.weights, refine=args.refine)
    cfg = col.cfg
    shots: dict[str, dict] = {}
    for name, ip, tp in find_pairs([args.pairs]):
        m = NAME.match(name)
        if m is None:
            print(f"select_smoothing: error: pair {name} is not named RANK_SHOT_fFRAME", file=sys.stderr)
            return 1
        if args.shot and m.group(1) not in args.shot:
            continue
        shots.setdefault(m.group(1), {"truth": {}})["truth"][int(m.group(2))] = load_pair(ip, tp)
    if not shots:
        print(f"select_smoothing: error: no pairs of {args.shot} in {args.pairs}", file=sys.stderr)
        return 1
    for shot, s in shots.items():
        some = next(iter(s["truth"].values()))[0]
        frames = list(shot_frames(shot_path(args.data, shot), some.shape[1]))
        for k, (inp, tgt) in list(s["truth"].items()):
            if np.abs(frames[k].astype(np.int16) - inp).mean() > 2:
                print(f"select_smoothing: error: frame {k} of {shot} is not the pair's input", file=sys.stderr)
                return 1
            s["truth"][k] = (inp, tgt, *derive_mask(inp, tgt))
        s["gws"], s["raw"], s["full"] = predict_shot(col, frames)
        print(f"{shot}: {len(frames)} frames, {len(s['truth'])} with a true mask")
    print(f"\nEMA weight of the new frame (guided filter radius {cfg.guide_radius}, eps {cfg.guide_eps:g}):\n")
    print("| EMA weight | flicker | IoU | CIEDE2000 |\n|---:|---:|---:|---:|")
    for a in args.ema:
        f, iou, de = score(shots, a, cfg.guide_radius, cfg.guide_eps, col.mask_stride)
        print(f"| {a:g} | {f:.4f} | {iou:.3f} | {de:.2f} |")
    print(f"\nGuided filter (EMA weight {cfg.ema:g}; radius 0 = bilinear upsampling):\n")
    print("| radius | eps | flicker | IoU | CIEDE2000 |\n|---:|---:|---:|---:|---:|")
    for r in args.radius:
        for e in (args.eps if r > 0 else args.eps[:1]):
            f, iou, de = score(shots, cfg.ema, r, e, col.mask_stride)
            print(f"| {r} | {e:g} | {f:.4f} | {iou:.3f} | {de:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
