"""Time of the keep-color head and of its GrabCut post-step per frame, on color and on B&W input (not a test).

Reads every 10th frame of a clip (12 frames), and for each checkpoint runs the head as
``episode`` does at the working size, on the frame's own colors and as on B&W video
(the colorizer's colors), then GrabCut on that; prints ms per frame and the share of
pixels the head leaves uncertain (probability between 0.001 and 0.999, GrabCut's
probable region).  Session 20 (docs/keepcolor.md, speed)::

    OMP_NUM_THREADS=1 python pipelines/select_grabcut_cost.py \\
        ../shared/data/series/caminandes3/caminandes_llamigos_E01_SE02_SH05.mp4 \\
        runs/cam18/n30/best.safetensors runs/s20/cam/n30/best.safetensors
"""
from __future__ import annotations

import argparse
import time

import av
import cv2
import numpy as np

from animecolor.color import rgb_to_lab
from animecolor.keepcolor import _gray_of, grabcut_refine, guided_upsample, load_keepcolor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("clip")
    ap.add_argument("weights", nargs="+")
    args = ap.parse_args()
    frames = []
    with av.open(args.clip) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i % 10 == 0:
                frames.append(f.to_ndarray(format="rgb24"))
            if len(frames) == 12:
                break
    for path in args.weights:
        col = load_keepcolor(path)
        for bw in (False, True):
            t_head = t_cut = 0.0
            uncertain = []
            for rgb in frames:
                w, h = col.working_size(rgb.shape[1], rgb.shape[0])
                g = cv2.resize(_gray_of(rgb), (w, h), interpolation=cv2.INTER_AREA)
                c = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
                src_ab = None if bw else cv2.resize(rgb_to_lab(c)[..., 1:], (w // 4, h // 4), interpolation=cv2.INTER_AREA)[None]
                src = None if bw else [c]
                t0 = time.perf_counter()
                ab, m = col.predict(g[None], src_ab, src)
                t1 = time.perf_counter()
                p = guided_upsample(m[0], g, col.cfg.guide_radius, col.cfg.guide_eps)
                colors = col.colors(g[None], ab, src)[0]
                t2 = time.perf_counter()
                grabcut_refine(colors, p)
                t3 = time.perf_counter()
                t_head, t_cut = t_head + t1 - t0, t_cut + t3 - t2
                uncertain.append(float(((p > 0.001) & (p < 0.999)).mean()))
            n = len(frames)
            print(f"{path} {'B&W' if bw else 'color'}: head {1000 * t_head / n:.0f} ms, GrabCut {1000 * t_cut / n:.0f} ms "
                  f"a frame, uncertain share {np.mean(uncertain):.2f}")


if __name__ == "__main__":
    main()
