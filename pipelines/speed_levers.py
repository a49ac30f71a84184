"""End-to-end speed of ``colorize_video`` under different settings, in one run (not a test).

Each variant is one end-to-end episode in a child process (``benchmark.py``'s),
on the same gray clip; the variants run in turn, ``--rounds`` times, interleaved,
so a drift in the machine's load hits them alike; the table gives the median fps,
its ratio to the first variant, the output size and the output's luma PSNR
against the source (what the encoder preset changes)::

    python pipelines/speed_levers.py --size 640x480 --frames 240 --rounds 2 \\
        --variant "torch: --runtime torch" --variant "onnx: --runtime onnx" \\
        --variant "onnx, veryfast: --runtime onnx --preset veryfast"

A variant is ``NAME: benchmark child options`` (--runtime, --threads, --preset,
--batch, --crf, --working-size).
"""
from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark import DEFAULT_SOURCE, breakdown_table, make_source, write_table  # noqa: E402


def luma_psnr(a: Path, b: Path) -> float:
    """Mean PSNR (dB) of the luma planes of two videos, frame by frame."""
    from animecolor.io import luma_plane

    with av.open(str(a)) as ca, av.open(str(b)) as cb:
        mses = [np.mean((luma_plane(fa)[0].astype(np.float32) - luma_plane(fb)[0].astype(np.float32)) ** 2)
                for fa, fb in zip(ca.decode(video=0), cb.decode(video=0))]
    mse = float(np.mean(mses))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--frames", type=int, default=240)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--variant", action="append", required=True, metavar="NAME: OPTIONS")
    ap.add_argument("--out", type=Path, default=None, help="also write the table here (markdown)")
    args = ap.parse_args()
    variants = []
    for v in args.variant:
        name, _, opts = v.partition(":")
        variants.append((name.strip(), shlex.split(opts)))
    w, h = map(int, args.size.split("x"))
    runs: dict[str, list[dict]] = {n: [] for n, _ in variants}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = make_source(args.source, tmp / "src.mp4", w, h, args.frames)
        for r in range(args.rounds):
            for name, opts in variants:
                dst = tmp / f"out_{len(runs[name])}_{abs(hash(name))}.mp4"
                cmd = [sys.executable, str(Path(__file__).with_name("benchmark.py")), "--_child", "--src", str(src),
                       "--dst", str(dst), "--device", "cpu", "--mode", "plain"]
                defaults = {"--batch": "8", "--crf": "18", "--preset": "medium", "--threads": "0", "--runtime": "auto"}
                for k, val in defaults.items():
                    if k not in opts:
                        cmd += [k, val]
                run = subprocess.run(cmd + opts, capture_output=True, text=True)
                if run.returncode:
                    sys.exit(f"{name} failed:\n{run.stderr[-3000:]}")
                res = json.loads(run.stdout.strip().splitlines()[-1])
                res["bytes"] = dst.stat().st_size
                if r == 0:
                    res["psnr"] = luma_psnr(src, dst)
                runs[name].append(res)
                print(f"round {r + 1} {name}: {res['fps']:.1f} fps", file=sys.stderr, flush=True)
    base = statistics.median(x["fps"] for x in runs[variants[0][0]])
    lines = [f"{args.size}, {args.frames} frames, median of {args.rounds} interleaved rounds:", "",
             "| variant | end-to-end fps | vs first | output KiB | luma PSNR vs source (dB) | peak RSS (MiB) |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, _ in variants:
        fps = statistics.median(x["fps"] for x in runs[name])
        first = runs[name][0]
        lines.append(f"| {name} | {fps:.1f} | {fps / base:.2f} | {first['bytes'] / 1024:.0f} | {first['psnr']:.2f} | "
                     f"{max(x['rss_mib'] for x in runs[name]):.0f} |")
    lines += breakdown_table([(n, runs[n][0]["stages_ms"]) for n, _ in variants], "first round's")
    return write_table(lines, args.out)


if __name__ == "__main__":
    sys.exit(main())
