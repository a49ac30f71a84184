"""Tried: OpenCV GrabCut seeded from the keep-color model's mask, as a post-step on pairs.

For each pair the model's full-size mask (as ``evaluate --keep-color`` makes it)
seeds ``cv2.grabCut`` (mask mode): probable foreground where the mask is over 0.5,
probable background elsewhere, sure foreground over ``--sure`` and sure
background under ``1 - --sure``; GrabCut's colour models then move the edge.
Prints the pooled mask IoU with and without the post-step and GrabCut's time per
frame (at the pairs' size).  Choose on the val pairs::

    python pipelines/select_grabcut.py runs/cam/n30/best.safetensors runs/cam_pairs/val
"""
from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from animecolor.color import rgb_to_lab
from animecolor.keepcolor import _gray_of, derive_mask, find_pairs, load_keepcolor, load_pair, mask_iou


def grabcut_refine(rgb: np.ndarray, prob: np.ndarray, sure: float, iters: int) -> np.ndarray:
    """The full-size mask ``prob`` (float, [0, 1]) after GrabCut seeded by it; float {0, 1}."""
    gc = np.where(prob > 0.5, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    gc[prob > sure] = cv2.GC_FGD
    gc[prob < 1 - sure] = cv2.GC_BGD
    fg = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
    if fg.sum() < 20 or (~fg).sum() < 20:  # GrabCut needs both models
        return (prob > 0.5).astype(np.float32)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), gc, None, bgd, fgd, iters, cv2.GC_INIT_WITH_MASK)
    return ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("weights")
    ap.add_argument("pairs")
    ap.add_argument("--sure", type=float, nargs="+", default=[0.9, 0.97])
    ap.add_argument("--iters", type=int, default=3)
    args = ap.parse_args()
    col = load_keepcolor(args.weights)
    pairs = sorted(find_pairs([args.pairs]))
    rows = []
    for _, ip, tp in pairs:
        inp, tgt = load_pair(ip, tp)
        mask, known = derive_mask(inp, tgt)
        w, h = col.working_size(inp.shape[1], inp.shape[0])
        g = _gray_of(inp)
        src = cv2.resize(rgb_to_lab(inp)[..., 1:], (w // 4, h // 4), interpolation=cv2.INTER_AREA)
        _, m = col.predict(cv2.resize(g, (w, h), interpolation=cv2.INTER_AREA)[None], src[None])
        rows.append((inp, col.full_mask(m[0], g), mask, known))
    print(f"| post-step | mask IoU | GrabCut ms per frame ({inp.shape[1]}x{inp.shape[0]}) |  ({len(pairs)} pairs)")
    print("|---|---:|---:|")
    iu = np.sum([mask_iou(pm, mk, kn) for _, pm, mk, kn in rows], axis=0)
    print(f"| none | {iu[0] / iu[1]:.3f} | - |")
    for sure in args.sure:
        t0 = time.perf_counter()
        refined = [grabcut_refine(inp, pm, sure, args.iters) for inp, pm, _, _ in rows]
        ms = (time.perf_counter() - t0) / len(rows) * 1000
        iu = np.sum([mask_iou(r, mk, kn) for r, (_, _, mk, kn) in zip(refined, rows)], axis=0)
        print(f"| GrabCut, sure > {sure}, {args.iters} iterations | {iu[0] / iu[1]:.3f} | {ms:.0f} |")


if __name__ == "__main__":
    main()
