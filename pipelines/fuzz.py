"""Damaged-input fuzzing at scale: ``episode``, ``preview`` and ``dataset build`` on N seeded cases each.

    .venv/bin/python pipelines/fuzz.py --cases 1000            # all three commands, 1000 cases each
    .venv/bin/python pipelines/fuzz.py --cases 200 --commands episode --seed 7 --keep fuzz-fails

The cases, the damage and the rules are those of the test suite (``tests/damage.py``): a
case passes when the command succeeds with a good output (episode: playable, the input's
stream kinds, every decodable frame) or exits 1 with exactly one ``animecolor: error:``
line and nothing left in its output folder.  Anything else is a failure: a traceback, a
second error line, a leftover file, a bad output, or no answer within ``--timeout``
seconds (the worker process is killed and replaced).  Cases run in-process in
``--workers`` long-lived worker processes (one PyTorch thread each).  Exit status 1 when
any case failed; ``--keep DIR`` copies the failing inputs there to reproduce them.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from multiprocessing.connection import wait
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import damage as D  # noqa: E402

COMMANDS = ("episode", "preview", "dataset")
SEEDS = {"episode": 0, "preview": 1, "dataset": 2}  # as in tests/test_fuzz.py: its cases are the first ones here


def _worker(conn, work: str, weights: str, seed_offset: int) -> None:
    import torch

    torch.set_num_threads(1)
    work_dir = Path(work)
    sources = {fmt: (work_dir / "src" / f"clip.{fmt}").read_bytes() for fmt in D.FORMATS}
    good = [work_dir / "good" / "ep1.mp4", work_dir / "good" / "ep2.mkv"]
    me = Path(tempfile.mkdtemp(dir=work_dir))
    while True:
        job = conn.recv()
        if job is None:
            return
        command, index = job
        c = D.case(SEEDS[command] + seed_offset, index)
        src = D.write_case(c, sources, me)
        out_dir = me / "out"
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir()
        extra = ""
        if command == "episode":
            res = D.run_episode(src, out_dir, Path(weights))
            if res.status == "ok":  # how often a single-threaded decoder would have given another count
                one, auto = D.decodable(src, "NONE"), D.decodable(src)
                if one and auto and one[0] != auto[0]:
                    extra = "threads-differ"
        elif command == "preview":
            res = D.run_preview(src, out_dir, Path(weights))
        else:
            res = D.run_dataset(src, good, out_dir)
        conn.send((command, index, c.name, res.status, res.detail, extra))
        src.unlink()


def _start(ctx, work: Path, weights: Path, seed_offset: int):
    parent, child = ctx.Pipe()
    p = ctx.Process(target=_worker, args=(child, str(work), str(weights), seed_offset), daemon=True)
    p.start()
    child.close()
    return p, parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1000, help="cases per command (default %(default)s)")
    ap.add_argument("--commands", nargs="+", choices=COMMANDS, default=list(COMMANDS))
    ap.add_argument("--seed", type=int, default=0, help="added to each command's seed (default 0: the test suite's cases first)")
    ap.add_argument("--workers", type=int, default=max(1, mp.cpu_count()))
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per case before it counts as a hang")
    ap.add_argument("--keep", type=Path, default=None, help="copy failing inputs into this folder")
    args = ap.parse_args(argv)

    import torch

    from animecolor.model import ModelConfig, ResidualColorizer, save_model

    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="animecolor-fuzz-"))
    try:
        D.make_sources(work / "src")
        (work / "good").mkdir()
        D.make_clip(work / "good" / "ep1.mp4", color=True)
        D.make_clip(work / "good" / "ep2.mkv", color=True, n=16)
        torch.manual_seed(0)
        weights = work / "tiny_random_model.safetensors"
        save_model(ResidualColorizer(ModelConfig(decoder_widths=[8] * 5, working_long_side=64)), weights,
                   info={"note": "tiny random model for fuzzing"})

        jobs = [(cmd, i) for i in range(args.cases) for cmd in args.commands]
        jobs.reverse()
        ctx = mp.get_context("spawn")
        workers = [_start(ctx, work, weights, args.seed) for _ in range(max(1, args.workers))]
        busy: dict[int, tuple] = {}  # worker slot -> (job, deadline)
        results: list[tuple] = []
        while jobs or busy:
            for k, (proc, conn) in enumerate(workers):
                if k not in busy and jobs:
                    job = jobs.pop()
                    conn.send(job)
                    busy[k] = (job, time.monotonic() + args.timeout)
            ready = wait([workers[k][1] for k in busy], timeout=1.0)
            for k in list(busy):
                proc, conn = workers[k]
                job, deadline = busy[k]
                if conn in ready:
                    try:
                        results.append(conn.recv())
                    except EOFError:  # the worker died (a crash in native code)
                        name = D.case(SEEDS[job[0]] + args.seed, job[1]).name
                        results.append((*job, name, "fail", f"worker died (exit {proc.exitcode})", ""))
                        workers[k] = _start(ctx, work, weights, args.seed)
                    del busy[k]
                elif time.monotonic() > deadline:
                    proc.kill()
                    proc.join()
                    name = D.case(SEEDS[job[0]] + args.seed, job[1]).name
                    results.append((*job, name, "fail", f"no answer after {args.timeout:.0f} s (hang)", ""))
                    workers[k] = _start(ctx, work, weights, args.seed)
                    del busy[k]
                    print(f"timeout: {job}", file=sys.stderr, flush=True)
            done = len(results)
            if done and done % 500 == 0:
                print(f"{done}/{args.cases * len(args.commands)} cases, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        for proc, conn in workers:
            conn.send(None)
            proc.join(timeout=10)
        wall = time.perf_counter() - t0

        print(f"fuzz: {args.cases} cases per command, seed offset {args.seed}, {args.workers} workers, "
              f"timeout {args.timeout:.0f} s, wall {wall:.0f} s")
        failed = []
        for cmd in args.commands:
            mine = [r for r in results if r[0] == cmd]
            counts = Counter(r[3] for r in mine)
            notes = Counter(r[4] for r in mine if r[3] == "ok" and r[4])
            line = f"  {cmd:8s} ok {counts['ok']:5d}  clean error {counts['error']:5d}  FAIL {counts['fail']:3d}"
            if notes:
                line += "  (" + ", ".join(f"{k} {v}" for k, v in sorted(notes.items())) + ")"
            differ = sum(1 for r in mine if r[5] == "threads-differ")
            if cmd == "episode":
                line += f"  [ok cases where a single-threaded decoder gets another frame count: {differ}]"
            print(line)
            by_kind = Counter(r[2].split("-", 1)[1].split(".")[0] for r in mine)
            ok_kind = Counter(r[2].split("-", 1)[1].split(".")[0] for r in mine if r[3] == "ok")
            print("           ok by damage: " + ", ".join(f"{k} {ok_kind[k]}/{by_kind[k]}" for k in D.KINDS))
            failed += [r for r in mine if r[3] == "fail"]
        errors = Counter(re.sub(r"\S*/\S*/\S+", "PATH", r[4].split(": ", 2)[-1])[:90] for r in results if r[3] == "error")
        print("  most common error lines:")
        for msg, n in errors.most_common(8):
            print(f"    {n:5d}  {msg}")
        for r in failed[:50]:
            print(f"  FAIL {r[0]} {r[2]}: {r[4]}")
        if failed and args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            sources = {fmt: (work / "src" / f"clip.{fmt}").read_bytes() for fmt in D.FORMATS}
            for r in failed:
                D.write_case(D.case(SEEDS[r[0]] + args.seed, r[1]), sources, args.keep)
            print(f"  failing inputs copied to {args.keep}")
        return 1 if failed else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
