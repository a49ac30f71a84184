"""Try int8 for the CPU model (issue 19): ONNX Runtime static quantization of the shipped export.

    python pipelines/quantize_int8.py [--out runs/int8]

Calibrates on frames of training clips of the default model (never val or test),
quantizes the convolutions (QDQ, per-channel weights; the a/b decoding stays
float), then, in one run: model-only fps of the float and int8 graphs at the
working size of 640x480 (batch 8, interleaved rounds, median), the largest a/b
difference, and CIEDE2000 / colorfulness on the two validation clips (every 4th
frame, as docs/runtime.md).  Nothing here changes the shipped model.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared/data"
CALIB = ["penny_and_chip_basketball", "penny_and_chip_bedtime", "penny_and_chip_carnival", "penny_and_chip_cycling",
         "penny_and_chip_easter", "penny_and_chip_football", "penny_and_chip_halloween", "penny_and_chip_locomotive"]
VAL = ["penny_and_chip_beach_surfing", "penny_and_chip_rpi"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "runs/int8")
    ap.add_argument("--calib-frames", type=int, default=8, help="frames per calibration clip")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--per-channel", type=int, default=1)
    ap.add_argument("--calibrate", default="MinMax", choices=["MinMax", "Entropy", "Percentile"])
    ap.add_argument("--keep-float", default="", help="comma list of node-name parts whose convolutions stay float "
                    "(e.g. 'fuse,reduce,head' = the decoder, '_depthwise' = depthwise convolutions)")
    args = ap.parse_args()
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from animecolor import frames as fr
    from animecolor import metrics
    from animecolor.colorize import load_colorizer
    from animecolor.evaluate import iter_color_frames
    from animecolor.runtime import OnnxColorizer, _session

    col = load_colorizer(runtime="onnx")
    assert isinstance(col, OnnxColorizer)
    args.out.mkdir(parents=True, exist_ok=True)
    pre = args.out / "pre.onnx"
    quant_pre_process(str(col.path), str(pre), skip_symbolic_shape=True)

    def gray_batch(paths, per, max_side=320):
        gts = list(iter_color_frames(paths, max_side=max_side, stride=1, max_frames=None))
        idx = np.linspace(0, len(gts) - 1, per * len(paths)).astype(int) if per else range(len(gts))
        out = []
        for i in idx:
            y = fr.rgb_to_y(gts[i])
            out.append(fr.model_input(y, col.working_size(y.shape[1], y.shape[0])))
        return out

    calib = [g for c in CALIB for g in gray_batch([DATA / f"general/toasttv_veo/{c}.mp4"], args.calib_frames)]
    inv_t = np.array([1.0 / col.cfg.temperature], np.float32)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(calib)

        def get_next(self):
            g = next(self.it, None)
            return None if g is None else {"x": col._lut_np[g][None, None], "inv_t": inv_t}

    import onnx
    parts = [p for p in args.keep_float.split(",") if p]
    exclude = [n.name for n in onnx.load(str(pre)).graph.node if n.op_type == "Conv" and any(p in n.name for p in parts)]
    print(f"{len(exclude)} convolutions kept float ({args.keep_float or 'none'})", flush=True)
    q = args.out / f"int8_pc{args.per_channel}_{args.keep_float.replace(',', '-') or 'all'}_{args.calibrate}.onnx"
    t0 = time.perf_counter()
    quantize_static(str(pre), str(q), Reader(), quant_format=QuantFormat.QDQ, op_types_to_quantize=["Conv"],
                    per_channel=bool(args.per_channel), nodes_to_exclude=exclude,
                    calibrate_method=getattr(CalibrationMethod, args.calibrate), activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    print(f"quantized {len(calib)} calibration frames in {time.perf_counter() - t0:.0f} s -> {q} "
          f"({q.stat().st_size / 2**20:.1f} MiB, float {col.path.stat().st_size / 2**20:.1f} MiB)", flush=True)
    sess = {"float": col.session, "int8": _session(q)}
    cols = {k: OnnxColorizer(col.base, q if k == "int8" else col.path, session=s) for k, s in sess.items()}

    # speed: batch 8 at 640x480's working size, interleaved rounds
    w, h = col.working_size(640, 480)
    rng = np.random.default_rng(0)
    batch = np.stack(calib[:8]) if calib[0].shape == (h, w) else rng.integers(0, 256, (8, h, w), dtype=np.uint8)
    times = {k: [] for k in cols}
    for c in cols.values():
        c(batch)
    for _ in range(args.rounds):
        for k, c in cols.items():
            t0 = time.perf_counter()
            for _ in range(3):
                c(batch)
            times[k].append(3 * len(batch) / (time.perf_counter() - t0))
    fps = {k: float(np.median(v)) for k, v in times.items()}
    print(f"model-only fps at {w}x{h}, batch 8, median of {args.rounds}: " +
          ", ".join(f"{k} {v:.1f}" for k, v in fps.items()) + f"; int8 / float {fps['int8'] / fps['float']:.2f}", flush=True)
    print(f"max a/b difference on the speed batch: {np.abs(cols['int8'](batch) - cols['float'](batch)).max():.2f}", flush=True)

    # quality: the two validation clips, every 4th frame at 320 px
    for k, c in cols.items():
        de = cf = gc = 0.0
        n = 0
        for gt in iter_color_frames([DATA / f"general/toasttv_veo/{v}.mp4" for v in VAL], max_side=320, stride=4, max_frames=None):
            y = fr.rgb_to_y(gt)
            ab = c(fr.model_input(y, c.working_size(y.shape[1], y.shape[0]))[None])[0]
            u, v = fr.chroma_for(y, ab, "444")
            o = fr.yuv_to_rgb(y, u, v)
            de += metrics.ciede2000(o, gt)
            cf += metrics.colorfulness(o)
            gc += metrics.colorfulness(gt)
            n += 1
        print(f"{k}: val clips CIEDE2000 {de / n:.4f}, colorfulness {cf / gc:.4f} ({n} frames)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
