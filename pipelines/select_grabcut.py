"""The keep-color GrabCut post-step's settings, on val pairs: image size x sure threshold x iterations.

For each pair the head's raw mask (``refine="none"``) is brought to the GrabCut
image's size by the guided filter, seeds :func:`animecolor.keepcolor.grabcut_refine`
(probable subject above 0.5; sure subject above ``sure``, sure background below
``1 - sure``) on the pair's colors at that size, and the result is scaled back to
the pair's size and scored (pooled mask IoU over known pixels, as ``evaluate
--keep-color``).  Prints one JSON line: IoU per setting and GrabCut's ms per frame
(one core).  Session 19 chose on the val pairs with the session-18 models (docs/keepcolor.md)::

    OMP_NUM_THREADS=1 python pipelines/select_grabcut.py runs/s18/select_all30s0/best.safetensors runs/select_val
    OMP_NUM_THREADS=1 python pipelines/select_grabcut.py runs/s18/cam_all30s0/best.safetensors runs/cam_pairs/val \\
        --sure 0.99 0.995 0.999 0.9999 1
"""
from __future__ import annotations

import argparse
import json
import time

import cv2
import numpy as np

from animecolor.keepcolor import (_gray_of, derive_mask, find_pairs, grabcut_refine, load_keepcolor, load_pair,
                                  mask_iou)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("weights")
    ap.add_argument("pairs")
    ap.add_argument("--sizes", type=int, nargs="+", default=[240, 320, 480], help="GrabCut image long sides (px)")
    ap.add_argument("--sure", type=float, nargs="+", default=[0.9, 0.95, 0.98])
    ap.add_argument("--iters", type=int, nargs="+", default=[1, 3])
    args = ap.parse_args()
    col = load_keepcolor(args.weights, refine="none")
    acc: dict[str, list[float]] = {}
    ms: dict[str, list[float]] = {}

    def add(key, pm, mk, kn):
        i, u = mask_iou(pm, mk, kn)
        a = acc.setdefault(key, [0.0, 0.0])
        a[0], a[1] = a[0] + i, a[1] + u

    for _, ip, tp in sorted(find_pairs([args.pairs])):
        inp, tgt = load_pair(ip, tp)
        mk, kn = derive_mask(inp, tgt)
        H, W = mk.shape
        w, h = col.working_size(W, H)
        g = _gray_of(inp)
        _, (m,) = col.masks(cv2.resize(g, (w, h), interpolation=cv2.INTER_AREA)[None],
                            [cv2.resize(inp, (w, h), interpolation=cv2.INTER_AREA)])
        add("none", col.full_mask(m, g), mk, kn)
        for long in args.sizes:
            s = long / max(W, H)
            size, how = (round(W * s), round(H * s)), (cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
            img = cv2.resize(inp, size, interpolation=how)
            p = col.full_mask(m, cv2.resize(g, size, interpolation=how))
            for sure in args.sure:
                for it in args.iters:
                    t0 = time.perf_counter()
                    r = grabcut_refine(img, p, sure, it)
                    ms.setdefault(f"{long} i{it}", []).append(time.perf_counter() - t0)
                    add(f"{long} s{sure} i{it}", cv2.resize(r, (W, H), interpolation=cv2.INTER_LINEAR), mk, kn)
    out = {k: round(i / u, 4) if u else 1.0 for k, (i, u) in acc.items()}
    out["ms"] = {k: round(1000 * float(np.mean(v)), 1) for k, v in ms.items()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
