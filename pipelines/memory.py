"""Peak memory of ``colorize_video`` against the number of frames done, at 1080p (not a test).

Makes a gray 1920x1080 H.264 ``testsrc2`` clip (24 fps, cached under ``--work``),
then colorizes it in a child process that samples its own RSS once a second
together with the frames done so far, and glibc's heap figures (``mallinfo2``:
bytes in use vs. held free by malloc), so growth can be told apart as a leak (in-use
bytes grow) or allocator growth (free bytes held grow).  One CSV per run, and a
markdown summary line per run appended to ``--out``::

    python pipelines/memory.py --frames 10000 --colorizer lut      # cheap stand-in, long run
    python pipelines/memory.py --frames 1000 3000 --colorizer model  # the shipped weights
    python pipelines/memory.py --frames 3000 --colorizer keyframe    # keyframe mode, flow propagation over one shot

``--tracemalloc N`` takes a Python heap snapshot after N frames and at the end and
prints the top growth by allocation site (slow; use on a short run).
"""
from __future__ import annotations

import argparse
import csv
import ctypes
import json
import os
import resource
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
LUT_SOURCE = Path("/work/shared/data/general/bbb_480p_30s.mp4")


def make_source(path: Path, frames: int, width: int = 1920, height: int = 1080, rate: int = 24) -> Path:
    """Gray H.264 ``testsrc2`` clip (chroma planes set to 128), made with PyAV's lavfi input."""
    if path.is_file():
        return path
    tmp = path.with_suffix(".tmp.mp4")
    seconds = frames / rate
    with av.open(f"testsrc2=size={width}x{height}:rate={rate}:duration={seconds}", format="lavfi") as src, \
            av.open(str(tmp), "w") as out:
        vs = out.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = {"crf": "23", "preset": "ultrafast"}
        for n, f in enumerate(src.decode(video=0)):
            g = f.reformat(format="yuv420p")
            for p in g.planes[1:]:
                np.frombuffer(memoryview(p), np.uint8)[:] = 128
            g.pts, g.time_base = n, Fraction(1, rate)
            out.mux(vs.encode(g))
        out.mux(vs.encode(None))
    os.replace(tmp, path)
    return path


def heap_mib() -> tuple[float, float]:
    """glibc's (in use, held free) heap bytes in MiB; (nan, nan) where mallinfo2 is missing."""
    from animecolor.heap import malloc_stats

    stats = malloc_stats()
    return (stats[0] / 2**20, stats[1] / 2**20) if stats else (float("nan"), float("nan"))


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(args) -> None:
    from animecolor.colorize import LutColorizer, load_colorizer
    from animecolor.pipeline import colorize_video

    if args.colorizer == "lut":
        from animecolor.evaluate import iter_color_frames

        col = LutColorizer.fit(iter_color_frames([LUT_SOURCE], stride=15, max_frames=60))
    else:
        col = load_colorizer(None, "cpu", runtime=args.runtime)
        if args.colorizer == "keyframe":  # keyframe mode over one long shot: a false-color version of frame 0
            import av
            import cv2

            from animecolor import reference as R

            with av.open(args.src) as c:
                gray = next(c.decode(video=0)).to_ndarray(format="gray")
            rgb = cv2.cvtColor(cv2.applyColorMap(gray, cv2.COLORMAP_OCEAN), cv2.COLOR_BGR2RGB)
            col = R.KeyframeColorizer(col, [R.Keyframe(rgb, 0.0, "frame 0, false color")])
    done = [0]
    rows: list[tuple] = []
    stop = threading.Event()
    t0 = time.perf_counter()

    def sample() -> None:
        while not stop.wait(1.0):
            rows.append((round(time.perf_counter() - t0, 1), done[0], round(rss_mib(), 1), *map(lambda v: round(v, 1), heap_mib())))

    snaps = []
    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start(12)

    trim = ctypes.CDLL("libc.so.6").malloc_trim if args.trim else None

    def progress(n: int, total) -> None:
        done[0] = n
        if trim is not None:
            trim(0)
        if args.tracemalloc and not snaps and n >= args.tracemalloc:
            snaps.append(tracemalloc.take_snapshot())

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    res = colorize_video(args.src, args.dst, col, overwrite=True, progress=progress, device="cpu")
    stop.set()
    th.join()
    rows.append((round(time.perf_counter() - t0, 1), done[0], round(rss_mib(), 1), *map(lambda v: round(v, 1), heap_mib())))
    with open(args.csv, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["seconds", "frames", "rss_mib", "heap_in_use_mib", "heap_free_mib"])
        w.writerows(rows)
    if snaps:
        end = tracemalloc.take_snapshot()
        for stat in end.compare_to(snaps[0], "traceback")[:8]:
            print(f"{stat.size_diff / 2**20:+.2f} MiB, {stat.count_diff:+d} blocks", file=sys.stderr)
            for line in stat.traceback.format()[-6:]:
                print("    " + line, file=sys.stderr)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"frames": res.frames, "fps": round(res.fps, 2), "peak_rss_mib": round(peak, 1)}))


def summarize(csv_path: Path, marks: list[int]) -> dict:
    """Highest RSS seen by the time each of ``marks`` frames were done."""
    rows = list(csv.DictReader(open(csv_path)))
    out = {}
    for m in marks:
        seen = [float(r["rss_mib"]) for r in rows if int(r["frames"]) <= m]
        out[m] = max(seen) if seen else float("nan")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, nargs="+", default=[1000])
    ap.add_argument("--colorizer", choices=("lut", "model", "keyframe"), default="model",
                    help="keyframe: the shipped model in keyframe mode, frame 0 in false color as the keyframe")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "memory")
    ap.add_argument("--out", type=Path, default=None, help="append the summary lines here (markdown)")
    ap.add_argument("--tracemalloc", type=int, default=0, metavar="N")
    ap.add_argument("--runtime", default="auto", choices=("auto", "torch", "onnx"), help="the model's (episode --runtime)")
    ap.add_argument("--trim", action="store_true", help="experiment: glibc malloc_trim(0) after every batch")
    ap.add_argument("--tag", default="", help="added to the CSV's name")
    ap.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--src", help=argparse.SUPPRESS)
    ap.add_argument("--dst", help=argparse.SUPPRESS)
    ap.add_argument("--csv", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        child(args)
        return 0
    args.work.mkdir(parents=True, exist_ok=True)
    lines = []
    for n in args.frames:
        src = make_source(args.work / f"testsrc2_1080p_{n}.mp4", n)
        csv_path = args.work / f"{args.colorizer}{args.tag}_{n}.csv"
        cmd = [sys.executable, __file__, "--_child", "--colorizer", args.colorizer, "--runtime", args.runtime, "--src", str(src),
               "--dst", str(args.work / f"out_{args.colorizer}{args.tag}_{n}.mp4"), "--csv", str(csv_path)]
        if args.tracemalloc:
            cmd += ["--tracemalloc", str(args.tracemalloc)]
        if args.trim:
            cmd += ["--trim"]
        r = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
        if r.returncode:
            print(r.stderr, file=sys.stderr)
            return r.returncode
        if r.stderr.strip():
            print(r.stderr, file=sys.stderr)
        res = json.loads(r.stdout.strip().splitlines()[-1])
        marks = [m for m in (500, 1000, 2000, 5000, 10000, 20000) if m <= n]
        at = summarize(csv_path, marks)
        cells = ", ".join(f"{m}: {v:.0f}" for m, v in at.items())
        line = (f"| {args.colorizer}{args.tag} | {res['frames']} | {res['fps']} | {res['peak_rss_mib']:.0f} | {cells} |")
        print(line, flush=True)
        lines.append(line)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
