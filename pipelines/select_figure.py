"""The README's selective-color figure: input | target | output (| mask) rows for some held-out pairs.

    python pipelines/select_figure.py runs/select/n30/best.safetensors runs/select_pairs/test \\
        --pairs 3 12 40 -o docs/img/keepcolor_pairs.png
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from animecolor.keepcolor import apply_mask_rgb, find_pairs, load_keepcolor, load_pair


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", type=Path)
    ap.add_argument("pairs", type=Path)
    ap.add_argument("--pairs", dest="index", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--height", type=int, default=120)
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    col = load_keepcolor(args.weights)
    pairs = sorted(find_pairs([args.pairs]))
    rows = []
    for i in args.index:
        name, ip, tp = pairs[i]
        inp, tgt = load_pair(ip, tp)
        H = inp.shape[0]
        out = apply_mask_rgb(inp, col.image_mask(inp))
        row = np.hstack([inp, np.full((H, 4, 3), 255, np.uint8), tgt, np.full((H, 4, 3), 255, np.uint8), out])
        s = args.height / H
        rows.append(cv2.resize(row, (round(row.shape[1] * s), args.height), interpolation=cv2.INTER_AREA))
        print(name)
    width = min(r.shape[1] for r in rows)
    sheet = np.vstack([np.vstack([r[:, :width], np.full((4, width, 3), 255, np.uint8)]) for r in rows])
    cv2.imwrite(str(args.out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return 0


if __name__ == "__main__":
    sys.exit(main())
