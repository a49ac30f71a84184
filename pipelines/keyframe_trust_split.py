"""Where keyframe mode's error lives: split each validation shot's output by the flow track's trust.

For every 3rd frame of each keyframe validation shot (as reference_tune.py keyframe --popeye, the
colorizer fed every frame): CIEDE2000 of the output, of the truth's own chroma at the a/b size
(the floor), of the output with the truth put where the track is NOT trusted (trust < 0.5: a
perfect fallback) and where it IS trusted (perfect propagation), of gray, and the trusted share.

    python pipelines/keyframe_trust_split.py > runs/trust_split.txt
"""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "pipelines"))
sys.path.insert(0, str(ROOT))
import reference_tune as T  # noqa: E402
from animecolor import frames as fr  # noqa: E402
from animecolor import metrics  # noqa: E402
from animecolor import reference as R  # noqa: E402
from animecolor.color import rgb_to_lab  # noqa: E402
from animecolor.colorize import load_colorizer  # noqa: E402
from animecolor.propagate import KeyframeTrack  # noqa: E402


def main() -> int:
    base = load_colorizer()
    data = ROOT.parent / "shared/data"
    paths = T.keyframe_val_paths(data)

    def de(y, gt, ab):
        u, v = fr.chroma_for(y, ab, "444")
        return metrics.ciede2000(fr.yuv_to_rgb(y, u, v), gt)

    for p in paths:
        for si, (kf, fs) in enumerate(T.shots_of(p, feed=1)):
            size = base.working_size(fs[0][0].shape[1], fs[0][0].shape[0])
            g = np.stack([fr.model_input(y, size) for y, _ in fs])
            kfw = cv2.resize(kf, size, interpolation=cv2.INTER_AREA)
            col = R.KeyframeColorizer(base, [R.Keyframe(kfw, 0.0)])
            times = np.arange(1, len(g) + 1) / 30.0
            ab = np.concatenate([col(g[i : i + 16], times[i : i + 16]) for i in range(0, len(g), 16)])
            track = KeyframeTrack(R.gray_of_rgb(kfw), rgb_to_lab(kfw)[..., 1:])  # the same track the colorizer follows
            res: dict = {}
            for i, (y, gt) in enumerate(fs):
                _, trust = track.step(g[i])
                if i % 3:
                    continue
                hs, ws = ab.shape[1:3]
                true_ab = cv2.resize(rgb_to_lab(cv2.resize(gt, size, interpolation=cv2.INTER_AREA))[..., 1:], (ws, hs),
                                     interpolation=cv2.INTER_AREA)
                held = cv2.resize(trust, (ws, hs), interpolation=cv2.INTER_AREA)[..., None] >= 0.5
                for k, a in (("output", ab[i]), ("floor", true_ab), ("perfect_fallback", np.where(held, ab[i], true_ab)),
                             ("perfect_track", np.where(held, true_ab, ab[i])), ("gray", np.zeros_like(true_ab))):
                    res.setdefault(k, []).append(de(y, gt, a))
                res.setdefault("trusted", []).append(float(held.mean()))
            print(p.name, "shot", si, len(fs), "frames", {k: round(float(np.mean(v)), 2) for k, v in res.items()}, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
