"""Which features the keep-color head should read, measured across scenes (a val that sees a scene shift).

The Koro val shots are the training shots' snow; the SE02 test shots are a mine.  This
script trains the head on the pairs of one Caminandes sequence and scores it on the
other sequence's pairs (SE01 -> SE03 and SE03 -> SE01; SE02, the test, is never read),
for two feature sources:

* ``colorizer``: the shipped colorizer's backbone on the frame's lightness (the default);
* ``rgb``: EfficientNet-Lite0 with its ImageNet weights on the frame's RGB
  (color video only; the weights need ``animecolor[train]``).

Both use ``select train``'s defaults (fine-tuned from stride 16, copy-paste views, 30
epochs) and the GrabCut post-step; IoU pooled over pairs as ``evaluate --keep-color``::

    OMP_NUM_THREADS=1 python pipelines/select_features.py runs/cam_pairs --train SE01 --score SE03 \\
        --features rgb --max-pairs 30 -o runs/s20/feat_rgb_SE01
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import torch

import animecolor.keepcolor_train as KT
from animecolor.keepcolor import FEATURES, HeadConfig, find_pairs, load_keepcolor, pair_scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pairs", help="folder with train/ and val/ pairs (make_caminandes_pairs.py)")
    ap.add_argument("--train", required=True, help="sequence whose pairs train, e.g. SE01")
    ap.add_argument("--score", required=True, help="sequence whose pairs are scored, e.g. SE03")
    ap.add_argument("--features", choices=FEATURES, default="colorizer")
    ap.add_argument("--max-pairs", type=int, default=30)
    ap.add_argument("--tune-from", type=int, default=None, help="HeadConfig.tune_from (default: select train's)")
    ap.add_argument("--decoys", type=int, default=0, help="decoy views per pair (select train --decoys)")
    ap.add_argument("--no-chroma", dest="chroma", action="store_false",
                    help="HeadConfig(chroma=False): the head reads the features only, not also the frame's a/b")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    if "SE02" in (args.train, args.score):
        raise SystemExit("SE02 is the test sequence: not read here")
    root = Path(args.pairs)
    pairs = sorted(find_pairs([root / "train", root / "val"]), key=lambda p: p[1].name)
    of = lambda seq: [p for p in pairs if re.search(rf"_{seq}_SH", p[1].name)]  # noqa: E731
    train, score = of(args.train)[:args.max_pairs], of(args.score)
    cfg = HeadConfig(tune_from=KT.TUNE_FROM if args.tune_from is None else args.tune_from,
                     features=args.features, chroma=args.chroma)
    rec = KT.train_keepcolor(train, args.out, config=cfg, seed=args.seed, decoys=args.decoys)
    col = load_keepcolor(Path(args.out) / "best.safetensors")
    with torch.no_grad():
        res = pair_scores(col, score)
    out = {"features": args.features, "train": args.train, "score": args.score, "train_pairs": len(train),
           "score_pairs": len(score), "seed": args.seed, "tune_from": cfg.tune_from, "decoys": args.decoys, "chroma": args.chroma, "seconds": rec["seconds"], **res["model"]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
