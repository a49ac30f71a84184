"""Fit the luma-to-chroma lookup-table baseline on the same training frames as the model.

    python pipelines/fit_lut.py data/default runs/default/lut.npy
"""
import sys
from pathlib import Path

import numpy as np

from animecolor.colorize import LutColorizer

root, out = Path(sys.argv[1]), Path(sys.argv[2])
frames = np.concatenate([np.load(f)["rgb"] for f in sorted(root.glob("train-*.npz"))])
lut = LutColorizer.fit(frames[::2])
out.parent.mkdir(parents=True, exist_ok=True)
lut.save(out)
print(f"fitted on {len(frames[::2])} frames -> {out}")
