"""Issue 21, val only: mask IoU of keep-color checkpoints alone, with test-time flip (the mirror image's mask averaged in),
and of their mean mask (a seed ensemble).  docs/keepcolor.md, session 18.

    python pipelines/select_tta.py runs/cam_pairs/val runs/cam_x/paste4s0/best.safetensors runs/cam_x/paste4s1/best.safetensors ...
"""
import sys

import cv2
import numpy as np

from animecolor import keepcolor as K
from animecolor.color import rgb_to_lab
pairs_dir, ckpts = sys.argv[1], sys.argv[2:]
pairs = K.find_pairs([pairs_dir])
cols = [K.load_keepcolor(c, runtime="torch", refine="none") for c in ckpts]  # the head's own masks (before GrabCut)
data = []
for _, ip, tp in pairs:
    inp, tgt = K.load_pair(ip, tp); mask, known = K.derive_mask(inp, tgt)
    w, h = cols[0].working_size(inp.shape[1], inp.shape[0]); g = K._gray_of(inp)
    gs = cv2.resize(g, (w, h), interpolation=cv2.INTER_AREA)
    src = cv2.resize(rgb_to_lab(inp)[..., 1:], (w // 4, h // 4), interpolation=cv2.INTER_AREA)
    ms = []
    for c in cols:
        _, m0 = c.predict(gs[None], src[None]); _, m1 = c.predict(gs[None, :, ::-1].copy(), src[None, :, ::-1].copy())
        ms.append((m0[0], m1[0][:, ::-1]))
    data.append((g, mask, known, ms))
def iou(sel, flip):
    I = U = 0.0
    for g, mask, known, ms in data:
        p = [ms[i][0] for i in sel] + ([ms[i][1] for i in sel] if flip else [])
        pm = cols[0].full_mask(np.mean(p, 0).astype(np.float32), g)
        i, u = K.mask_iou(pm, mask, known); I += i; U += u
    return I / U
n = len(cols)
for i in range(n):
    print(f"model {i}: {iou([i], False):.3f}  +flip {iou([i], True):.3f}")
if n > 1:
    print(f"ensemble of {n}: {iou(list(range(n)), False):.3f}  +flip {iou(list(range(n)), True):.3f}")
