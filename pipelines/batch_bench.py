"""Evidence for ``animecolor batch`` (not a test): wall times, Ray's start-up cost, the segment-join check.

Two parts, each printing a markdown table:

``--clips A B C D`` (default: 4 Penny & Chip clips, 1280x720, 192 frames each):
the same batch colorized with the shipped weights

* in this process, 1 worker (no Ray), model threads 2;
* on a local Ray cluster, 1 worker x 2 threads (the cost of Ray alone);
* on a local Ray cluster, 2 workers x 1 thread (two episodes at a time);

each run in a fresh output folder, the cluster started (and stopped) by the run,
so its start-up time is inside the wall time and also given alone (``ray.init``).
The 1-minute load average before and after each run is printed beside it: on a
shared machine more processes get a larger share of the CPU, which is not Ray's doing.

``--join CLIP --segments N``: ``colorize_many(segments=N)`` against one
``colorize_video`` run of the same clip, at ``--crf`` 0 (lossless, so the
decoded planes are the ones the encoder was given) and 18: frame count,
timestamps, luma (equal to each other and to the source at crf 0), and the
chroma difference (U and V, 8-bit levels) at segment boundaries (the 2 frames
each side of a join) and elsewhere.

    python pipelines/batch_bench.py --out runs/batch_bench.md
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import av
import numpy as np

DATA = Path("/work/shared/data")
DEFAULT_CLIPS = [DATA / "general/toasttv_veo" / f"penny_and_chip_{n}.mp4" for n in ("autumn", "basketball", "bedtime", "carnival")]
DEFAULT_JOIN = DATA / "general/bbb_480p_30s.mp4"


def wall_times(clips: list[Path], work: Path) -> list[str]:
    from animecolor.batch import colorize_many

    rows = ["| run | workers x threads | wall (s) | ray.init (s) | frames | fps | vs in-process | load avg before / after |",
            "|---|---|---:|---:|---:|---:|---:|---|"]
    base = None
    for label, workers, threads, use_ray in (("in-process (no Ray)", 1, 2, False), ("Ray, local cluster", 1, 2, True),
                                             ("Ray, local cluster", 2, 1, True)):
        out = work / f"out_{workers}x{threads}_{int(use_ray)}"
        shutil.rmtree(out, ignore_errors=True)
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        res = colorize_many(clips, out, workers=workers, threads=threads, use_ray=use_ray)
        wall = time.perf_counter() - t0
        load1 = os.getloadavg()[0]
        assert not res.failed, [e.error for e in res.failed]
        frames = sum(e.frames for e in res.episodes)
        base = base or wall
        rows.append(f"| {label} | {workers} x {threads} | {wall:.1f} | {res.ray_start_seconds:.1f} | {frames} | "
                    f"{frames / wall:.1f} | {base / wall:.2f}x | {load0:.1f} / {load1:.1f} |")
        print(rows[-1], flush=True)
    return rows


def _planes(path: Path):
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            a = f.to_ndarray(format="yuv420p")
            yield f.pts, a[: f.height], a[f.height:]


def join_check(clip: Path, segments: int, work: Path, crfs=(0, 18)) -> list[str]:
    from animecolor.batch import EpisodeOptions, colorize_many
    from animecolor.pipeline import colorize_video
    from animecolor.segments import plan_segments

    plan = plan_segments(clip, segments)
    rows = [f"Plan for {clip.name}: segments start at packets {[s.first for s in plan]} "
            f"(scene cut: {[s.scene_cut for s in plan]})", "",
            "| crf | frames single / joined | timestamps equal | luma equal (to source) | chroma diff max / mean: within 2 frames of a join | 3-12 frames away | farther | single (s) | segmented, 2 workers (s) |",
            "|---:|---|---|---|---|---|---|---:|---:|"]
    bounds = [s.first for s in plan[1:]]
    for crf in crfs:
        single = work / f"single_crf{crf}{clip.suffix}"
        single.unlink(missing_ok=True)
        t0 = time.perf_counter()
        colorize_video(clip, single, crf=crf, overwrite=True)
        t_single = time.perf_counter() - t0
        out = work / f"seg_crf{crf}"
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        res = colorize_many([clip], out, options=EpisodeOptions(crf=crf), segments=segments, workers=2, threads=1)
        t_seg = time.perf_counter() - t0
        ep = res.episodes[0]
        assert ep.status == "done", ep.error
        n = same_pts = same_y = same_src = 0
        bands: list[list[tuple[int, float]]] = [[], [], []]
        # frames in presentation order; a join's index is its first frame (closed GOPs: the packets before
        # it are shown before it)
        for (pa, ya, ca), (pb, yb, cb), (ps, ys, _) in zip(_planes(single), _planes(out / clip.name), _planes(clip)):
            same_pts += pa == pb
            same_y += np.array_equal(ya, yb)
            same_src += np.array_equal(yb, ys)
            d = np.abs(ca.astype(np.int16) - cb.astype(np.int16))
            dist = min((min(abs(n - b), abs(n - (b - 1))) for b in bounds), default=10**9)
            bands[0 if dist < 2 else 1 if dist <= 12 else 2].append((int(d.max()), float(d.mean())))
            n += 1
        cells = " | ".join(f"{max(m for m, _ in b)} / {np.mean([x for _, x in b]):.3f}" if b else "-" for b in bands)
        rows.append(f"| {crf} | {n} / {ep.frames} | {same_pts}/{n} | {same_y}/{n} ({same_src}/{n}) | {cells} | "
                    f"{t_single:.1f} | {t_seg:.1f} |")
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", nargs="+", type=Path, default=DEFAULT_CLIPS)
    ap.add_argument("--join", type=Path, default=DEFAULT_JOIN)
    ap.add_argument("--segments", type=int, default=3)
    ap.add_argument("--crf", type=int, nargs="+", default=[0, 18], help="crf values of the join check")
    ap.add_argument("--skip", choices=("wall", "join"), action="append", default=[])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    lines = [f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU threads (shared), torch CPU", ""]
    with tempfile.TemporaryDirectory(prefix="batch_bench_") as tmp:
        work = Path(tmp)
        if "wall" not in args.skip:
            lines += [f"Wall time, {len(args.clips)} clips ({', '.join(c.name for c in args.clips)}):", ""]
            lines += wall_times(args.clips, work) + [""]
        if "join" not in args.skip:
            lines += join_check(args.join, args.segments, work, args.crf)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
