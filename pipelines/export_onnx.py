"""Export weights to ONNX beside them (``X.safetensors`` -> ``X.onnx``) for the ONNX Runtime path.

    python pipelines/export_onnx.py weights/default.safetensors

The export records the SHA-256 of the safetensors file; ``load_colorizer`` only
uses an export whose record matches.  Prints the largest a/b difference against
PyTorch on a few real-sized random batches.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights")
    args = ap.parse_args()
    from pathlib import Path

    from animecolor.colorize import load_colorizer
    from animecolor.model import file_sha256
    from animecolor.runtime import OnnxColorizer, export_onnx

    path = Path(args.weights)
    col = load_colorizer(path, "cpu", runtime="torch")
    from animecolor.reference import REFERENCE_PARAMS, _Features

    dst = export_onnx(col.model, path.with_suffix(".onnx"), file_sha256(path), features=REFERENCE_PARAMS.features)
    onnx_col = OnnxColorizer(col, dst)
    torch_feats = _Features(col, REFERENCE_PARAMS.features)
    rng = np.random.default_rng(0)
    worst = worst_f = 0.0
    for h, w in ((256, 320), (192, 320), (320, 224)):
        gray = rng.integers(0, 256, (4, h, w), dtype=np.uint8)
        worst = max(worst, float(np.abs(col(gray) - onnx_col(gray)).max()))
        f, _ = onnx_col.features_and_ab(gray)
        worst_f = max(worst_f, float(np.abs(torch_feats(gray)[0].numpy() - f).max()))
    print(f"wrote {dst} ({dst.stat().st_size / 2**20:.1f} MiB); max difference vs PyTorch on random input: "
          f"a/b {worst:.2e}, matcher features {worst_f:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
