"""Shots WITHOUT a keyframe: what should color them?  (KeyframeColorizer's fallback; docs/reference.md)

Validation clips only (the keyframe validation of reference_tune.py: Sintel trailer, Big Buck Bunny 0-30 s,
the two Penny & Chip val clips, Popeye segments 1 and 2): the first colored frame of every even shot is a
keyframe, the odd shots are scored (every 3rd frame, 320 px) with the base model, gray, the keyframes as
reference stills (ReferenceColorizer, reference defaults) and a lookup table fitted on the keyframes.

    python pipelines/keyframe_fallback.py
"""
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "pipelines"))
sys.path.insert(0, str(ROOT))
import reference_tune as T  # noqa: E402
from animecolor import frames as fr  # noqa: E402
from animecolor import reference as R  # noqa: E402
from animecolor.colorize import GrayColorizer, LutColorizer, load_colorizer  # noqa: E402


def main() -> int:
    base = load_colorizer()
    data = ROOT.parent / "shared/data"
    paths = T.keyframe_val_paths(data)
    tot: dict = {}
    for p in paths:
        shots = T.shots_of(p)
        kfs = [kf for i, (kf, _) in enumerate(shots) if i % 2 == 0]
        scored = [fs for i, (_, fs) in enumerate(shots) if i % 2 == 1]
        if not scored:
            print(p.name, "one shot only")
            continue
        cols = {"model": base, "gray": GrayColorizer(), "reference": R.ReferenceColorizer.from_images(base, kfs),
                "lut": LutColorizer.fit(kfs)}
        for name, col in cols.items():
            de = cf = n = 0.0
            for fs in scored:
                size = base.working_size(fs[0][0].shape[1], fs[0][0].shape[0])
                g = np.stack([fr.model_input(y, size) for y, _ in fs])
                d, c = T.score(fs, np.concatenate([col(g[i : i + 8]) for i in range(0, len(g), 8)]))
                de += d * len(fs)
                cf += c * len(fs)
                n += len(fs)
            t = tot.setdefault(name, [0.0, 0.0, 0])
            t[0] += de
            t[1] += cf
            t[2] += n
            print(p.name[:14], len(kfs), "keyframes", len(scored), "shots", int(n), "frames", name, round(de / n, 2),
                  round(cf / n, 2), flush=True)
    print({k: (round(v[0] / v[2], 2), round(v[1] / v[2], 2)) for k, v in tot.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
