"""Held-out Penny & Chip clips, first frame as keyframe (issue 17's protocol): per-frame CIEDE2000 of each
colorizer, and the bound on the keyframe bar if every frame before the dissolve's end scored 0 and every later
frame took the best row (docs/reference.md, 2c).

    python pipelines/keyframe_bound.py [OUT.json]      # about 2 min on 2 CPU cores
"""
import json
import sys
from pathlib import Path
import numpy as np
from animecolor import evaluate as ev, metrics
from animecolor.colorize import GrayColorizer, load_colorizer
from animecolor.commands import evaluate as E
orig_add = ev._Scores.add
def add(self, out, gt):
    self.__dict__.setdefault("per_frame", []).append(metrics.ciede2000(out, gt)); orig_add(self, out, gt)
ev._Scores.add = add
orig_res = ev._Scores.result
ev._Scores.result = lambda self, g: {**orig_res(self, g), "per_frame": self.__dict__.get("per_frame", [])}
G = Path("../shared/data/general/toasttv_veo")
OUT = sys.argv[1] if len(sys.argv) > 1 else "runs/keyframe_bound.json"
ends = {"autumn": 70, "retro_gaming": 28, "xmas": 85}  # first frame with the intro gone (contact sheets, by eye)
base = load_colorizer(None, device="cpu")
res = {}
for clip, end in ends.items():
    rep = ev.evaluate_paths(ev.find_videos([G / f"penny_and_chip_{clip}.mp4"]), {"default": base, "gray": GrayColorizer()},
                            stride=2, max_side=320, batch_size=8, per_clip=E._guided_keyframes(base, True, False, 320))
    c = rep["clips"][0]["colorizers"]
    names = ["default", "gray", "keyframe", "copy-keyframe", "lut-keyframe"]
    pf = np.array([c[n]["per_frame"] for n in names])  # (colorizers, frames); scored frames are 2, 4, ...
    idx = 2 * (np.arange(pf.shape[1]) + 1)
    post = idx >= end
    res[clip] = {"frames": int(pf.shape[1]), "post": int(post.sum()), "mean": dict(zip(names, pf.mean(1).round(2).tolist())),
                 "post_mean": dict(zip(names, pf[:, post].mean(1).round(2).tolist())),
                 "post_best_sum": float(pf[:, post].min(0).sum())}
    print(clip, res[clip], flush=True)
Path(OUT).write_text(json.dumps(res, indent=1))
