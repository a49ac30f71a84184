"""Evidence for ``animecolor batch`` after Ctrl-C (not a test): does anything land after it has returned?

On a Ray cluster that outlives the batch (started here once, as ``--ray-address`` joins one), each trial
colorizes the clips (default: 4 Penny & Chip clips, 1280x720, 192 frames each, shipped weights) with
2 workers x 1 thread and raises KeyboardInterrupt from the progress callback once ``--at`` frames are done
(the library's view of a Ctrl-C).  Printed per trial: how long ``colorize_many`` took to return after the
interrupt, the outputs there at that moment and whether each is complete (its record matches it), whether
anything in the output folder changed in the ``--watch`` seconds after, and what a rerun then does (it must
skip the complete episodes and redo the others, without failures).

    python pipelines/batch_interrupt.py --at 60 200 400 600
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

DATA = Path("/work/shared/data")
DEFAULT_CLIPS = [DATA / "general/toasttv_veo" / f"penny_and_chip_{n}.mp4" for n in ("autumn", "basketball", "bedtime", "carnival")]


def listing(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def trial(clips: list[Path], out: Path, at: int, watch: float) -> str:
    from animecolor.batch import RECORD_SUFFIX, colorize_many

    shutil.rmtree(out, ignore_errors=True)
    raised: list[float] = []

    def stop(p) -> None:
        if p.frames_done >= at:
            raised.append(time.perf_counter())
            raise KeyboardInterrupt

    try:
        colorize_many(clips, out, workers=2, threads=1, progress=stop)
        return f"| {at} | finished before the interrupt | | | | |"
    except KeyboardInterrupt:
        stop_s = time.perf_counter() - raised[0]
    before = listing(out)
    outputs = sorted(n for n in before if not n.endswith(RECORD_SUFFIX) and "/" not in n)
    records = sorted(n[: -len(RECORD_SUFFIX)] for n in before if n.endswith(RECORD_SUFFIX))
    time.sleep(watch)
    after = listing(out)
    changed = sorted(set(before) ^ set(after) | {n for n in before if n in after and before[n] != after[n]})
    res = colorize_many(clips, out, workers=2, threads=1)
    status = {e.input.stem: e.status for e in res.episodes}
    complete = [o for o in outputs if status.get(Path(o).stem) == "skipped"]
    rerun = ", ".join(f"{k} {v}" + (f" ({e.error})" if (e := next(x for x in res.episodes if x.input.stem == k)).error else "")
                      for k, v in status.items())
    return (f"| {at} | {stop_s:.2f} | {', '.join(outputs) or '-'} (records: {', '.join(records) or '-'}) | "
            f"{len(complete)} / {len(outputs)} | {', '.join(changed) or 'nothing'} | {rerun} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", nargs="+", type=Path, default=DEFAULT_CLIPS)
    ap.add_argument("--at", nargs="+", type=int, default=[60, 200, 400, 600], help="interrupt once this many frames are done")
    ap.add_argument("--watch", type=float, default=5.0, help="seconds to watch the output folder after the return")
    args = ap.parse_args()
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR", configure_logging=False)
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    print("| interrupt at frame | return after (s) | outputs at the return | complete (rerun skips) | "
          f"changed in the {args.watch:g} s after | rerun |")
    print("|---:|---:|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="batch_interrupt_") as tmp:
        for at in args.at:
            print(trial(args.clips, Path(tmp) / "out", at, args.watch), flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    ray.shutdown()


if __name__ == "__main__":
    main()
