"""Throughput of the episode pipeline vs its parts, on the same clip (not a test).

For each size it reports, in one run:

* transcode: plain PyAV decode + encode (same codec settings, no model), fps;
* model: the colorizer alone on pre-resized gray batches, fps;
* end-to-end: ``animecolor episode`` (``colorize_video``) fps, run in a child
  process so its peak RSS is its own;

(transcode and model are measured before and after the end-to-end run and
averaged, to bracket it in time on a shared machine), where the end-to-end run's
time went (``EpisodeResult.stages``: ms per frame per stage and thread), and the ratio
``end-to-end / min(model, transcode)`` (goal >= 0.8: decode,
inference and encode overlap instead of adding up).  Writes a markdown table::

    python pipelines/benchmark.py --frames 96 --out runs/benchmark.md

``--runtime torch|onnx`` picks the model's runtime (default auto: ONNX Runtime
on CPU for the shipped weights).  The source clip is the first frames of a real cartoon clip made gray and
scaled to each size.  Speed does not depend on the weights' values, so a
randomly initialised model of the real architecture is used when no trained
checkpoint exists (the table says which).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = Path("/work/shared/data/general/bbb_480p_30s.mp4")


def make_source(src: Path, dst: Path, width: int, height: int, frames: int) -> Path:
    """Gray ``width x height`` H.264 clip of the first ``frames`` frames of ``src`` (near-lossless)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"
        vs = out.add_stream("libx264", rate=vin.average_rate or 24)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = {"crf": "12", "preset": "veryfast"}
        n = 0
        for f in inp.decode(vin):
            g = f.reformat(width=width, height=height, format="yuv420p")
            for p in g.planes[1:]:
                np.frombuffer(memoryview(p), np.uint8)[:] = 128
            g.pts = n
            g.time_base = 1 / Fraction(vin.average_rate or 24)  # frame n at n / rate seconds
            for pk in vs.encode(g):
                out.mux(pk)
            n += 1
            if n >= frames:
                break
        for pk in vs.encode(None):
            out.mux(pk)
    return dst


def transcode_fps(src: Path, dst: Path, crf: int, preset: str) -> float:
    """Decode + encode with PyAV, nothing else (the I/O ceiling)."""
    t0 = time.perf_counter()
    n = 0
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"
        vs = out.add_stream("libx264", rate=vin.average_rate)
        vs.width, vs.height, vs.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        vs.thread_type = "AUTO"
        vs.options = {"crf": str(crf), "preset": preset}
        for f in inp.decode(vin):
            f.pict_type = 0
            for pk in vs.encode(f):
                out.mux(pk)
            n += 1
        for pk in vs.encode(None):
            out.mux(pk)
    return n / (time.perf_counter() - t0)


def model_fps(colorizer, src: Path, batch: int) -> float:
    """The colorizer alone on gray frames already at its working size."""
    from animecolor import frames as F
    from animecolor.io import luma_plane

    with av.open(str(src)) as inp:
        ys = [luma_plane(f)[0] for f in inp.decode(video=0)]
    size = colorizer.working_size(ys[0].shape[1], ys[0].shape[0])
    grays = np.stack([F.model_input(y, size) for y in ys])
    from animecolor.colorize import apply_colorizer

    times = [i / 24 for i in range(len(grays))]
    for _ in range(2):  # warm-up (oneDNN builds its kernels for the shape on the first calls)
        apply_colorizer(colorizer, grays[:batch], times[:batch])
    t0 = time.perf_counter()
    for i in range(0, len(grays), batch):
        apply_colorizer(colorizer, grays[i : i + batch], times[i : i + batch])
    return len(grays) / (time.perf_counter() - t0)


def guided(col, mode: str, src: Path, reference: str | None, keyframe: str | None, keep_color: str | None = None):
    """The colorizer of ``episode --reference`` / ``--keyframe`` / ``--keep-color`` for ``mode`` (plain: ``col``),
    and its set-up seconds."""
    from animecolor.reference import guided_colorizer

    t0 = time.perf_counter()
    if mode.startswith("keepcolor"):  # its own network (base + mask head) from the checkpoint: ONNX Runtime, or PyTorch
        from animecolor.keepcolor import load_keepcolor

        col = load_keepcolor(keep_color, "cpu", runtime="torch" if mode == "keepcolor-torch" else "auto",
                             refine="none" if mode == "keepcolor-norefine" else "grabcut")
    elif mode == "reference":
        col = guided_colorizer(col, src, references=[reference])
    elif mode == "keyframe":
        col = guided_colorizer(col, src, keyframes=[keyframe])
    return col, time.perf_counter() - t0


def write_keyframe(src: Path, dst: Path, width: int, height: int, frames: int) -> str:
    """``IMAGE@TIME``: the color original of the benchmark clip's first colored frame (the source
    fades in from black) at ``width x height``, its keyframe."""
    import cv2

    from animecolor.reference import ReferenceError, check_color

    with av.open(str(src)) as inp:
        rate = float(inp.streams.video[0].average_rate or 24)
        for i, f in enumerate(inp.decode(video=0)):
            rgb = f.to_ndarray(width=width, height=height, format="rgb24")
            try:
                check_color(rgb, "frame")
                break
            except ReferenceError:
                if i + 1 >= frames:
                    raise SystemExit(f"no colored frame in the first {frames} frames of {src}") from None
    cv2.imwrite(str(dst), rgb[..., ::-1])
    return f"{dst}@{i / rate:.3f}"


def load(weights: str | None, device: str, working_size: int | None = None, runtime: str = "auto"):
    from animecolor.colorize import ModelColorizer, load_colorizer

    if weights:
        return load_colorizer(weights, device, working_long_side=working_size, runtime=runtime), weights
    for cand in (ROOT / "weights/default.safetensors", ROOT / "runs/default/last.safetensors"):
        if cand.is_file():
            col = load_colorizer(cand, device, working_long_side=working_size, runtime=runtime)
            return col, str(cand.relative_to(ROOT))
    import torch

    from animecolor.model import ModelConfig, ResidualColorizer

    torch.manual_seed(0)
    return ModelColorizer(ResidualColorizer(ModelConfig()), device), "random init, default architecture"


def child_e2e(args) -> None:
    """Run in a child process: one end-to-end episode, print fps and peak RSS as JSON."""
    import torch

    from animecolor.pipeline import colorize_video

    torch.set_num_threads(args.threads or torch.get_num_threads())
    col, _ = load(args.weights, args.device, args.working_size, args.runtime)
    if args.ort_spin:
        from animecolor.runtime import OnnxColorizer

        col = OnnxColorizer(col.base, col.path, spinning=True)
    if args.x264_params:
        from animecolor import writers

        base_options = writers.EncodeSettings.options
        writers.EncodeSettings.options = lambda self: {**base_options(self), "x264-params": args.x264_params}
    col, setup = guided(col, args.mode, Path(args.src), args.reference, args.keyframe, args.keep_color)
    res = colorize_video(args.src, args.dst, col, overwrite=True, crf=args.crf, preset=args.preset, batch_size=args.batch)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    stages = {k: 1000 * v / res.frames for k, v in res.stages.items()}  # ms per frame
    print(json.dumps({"fps": res.fps, "rss_mib": rss, "frames": res.frames, "setup_s": setup, "stages_ms": stages,
                      "runtime": getattr(col, "runtime", "?")}))


def write_table(lines: list[str], out: Path | None) -> int:
    """Print the markdown lines, and write them to ``out`` too when given."""
    table = "\n".join(lines)
    print(table)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(table + "\n")
    return 0


def breakdown_table(breakdowns: list[tuple[str, dict]], mode: str) -> list[str]:
    """Markdown: where the end-to-end run's time went, ms per frame per stage and thread."""
    stages = sorted({k for _, b in breakdowns for k in b})
    lines = ["", f"Where the time goes ({mode} end-to-end run; wall ms per frame spent by each thread in each stage, "
             "waits included, so each thread's column adds up to about the run's ms per frame):", "",
             "| stage | " + " | ".join(s for s, _ in breakdowns) + " |", "|---|" + "---:|" * len(breakdowns)]
    lines += [f"| {k} | " + " | ".join(f"{b.get(k, 0.0):.1f}" for _, b in breakdowns) + " |" for k in stages]
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    ap.add_argument("--frames", type=int, default=96)
    ap.add_argument("--sizes", default="640x480,1280x720")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--crf", type=int, default=18)
    ap.add_argument("--preset", default="medium")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--working-size", type=int, default=None, help="model input long side (default: the checkpoint's)")
    ap.add_argument("--runtime", default="auto", choices=("auto", "torch", "onnx"), help="model runtime (episode --runtime)")
    ap.add_argument("--out", type=Path, default=None, help="also write the table here")
    ap.add_argument("--modes", default="plain",
                    help="comma list of plain, reference (16 frames sampled from --source, color), keyframe "
                         "(the source's first colored frame, in color), keepcolor (needs --keep-color; keepcolor-torch: the same on PyTorch; keepcolor-norefine: without the GrabCut post-step); "
                         "the guided modes get a second table")
    ap.add_argument("--mode", default="plain", help=argparse.SUPPRESS)
    ap.add_argument("--reference", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--keyframe", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--keep-color", default=None, metavar="RUN/best.safetensors",
                    help="a keep-color checkpoint (animecolor select train): adds mode keepcolor (end to end only)")
    ap.add_argument("--ort-spin", action="store_true", help="experiment: ONNX Runtime's idle threads spin (its own default)")
    ap.add_argument("--x264-params", default=None, metavar="K=V:K=V",
                    help="experiment (speed_levers.py variants): extra x264 options for the end-to-end run, e.g. threads=1")
    ap.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--src", help=argparse.SUPPRESS)
    ap.add_argument("--dst", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        child_e2e(args)
        return 0

    import torch

    from animecolor.colorize import default_batch_size

    torch.set_num_threads(args.threads or torch.get_num_threads())
    col, wname = load(args.weights, args.device, args.working_size, args.runtime)
    batch = args.batch or default_batch_size(col.device)
    rows = []
    modes = [m for m in args.modes.split(",") if m]
    for m in modes:
        if m not in ("plain", "reference", "keyframe", "keepcolor", "keepcolor-torch", "keepcolor-norefine"):
            ap.error(f"unknown mode {m!r}")
        if m.startswith("keepcolor") and not args.keep_color:
            ap.error("mode keepcolor needs --keep-color RUN/best.safetensors")
    guide_rows = []
    breakdowns = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for size in args.sizes.split(","):
            w, h = map(int, size.split("x"))
            src = make_source(args.source, tmp / f"src_{w}x{h}.mp4", w, h, args.frames)
            t_fps = transcode_fps(src, tmp / "transcode.mp4", args.crf, args.preset)
            m_fps = model_fps(col, src, batch)
            cmd = [sys.executable, __file__, "--_child", "--src", str(src), "--dst", str(tmp / "e2e.mp4"),
                   "--device", args.device, "--batch", str(batch), "--crf", str(args.crf), "--preset", args.preset,
                   "--threads", str(args.threads), "--runtime", args.runtime]
            if args.weights:
                cmd += ["--weights", args.weights]
            if args.working_size:
                cmd += ["--working-size", str(args.working_size)]
            kf = write_keyframe(args.source, tmp / f"kf_{w}x{h}.png", w, h, args.frames)
            per_mode = {}
            for mode in modes:  # guided modes run right after the plain one, so their ratios share a moment
                c = cmd + ["--mode", mode, "--reference", str(args.source), "--keyframe", str(kf)]
                if args.keep_color:
                    c += ["--keep-color", args.keep_color]
                run = subprocess.run(c, capture_output=True, text=True)
                if run.returncode:
                    sys.exit(f"{mode} run failed:\n{run.stderr[-3000:]}")
                out = run.stdout
                res = json.loads(out.strip().splitlines()[-1])
                if mode.startswith("keepcolor"):  # it hands masks to the merger: no colorizer-only figure
                    res["model_fps"] = float("nan")
                else:
                    gcol, _ = guided(col, mode, src, str(args.source), str(kf))
                    res["model_fps"] = model_fps(gcol, src, batch)
                per_mode[mode] = res
            e2e = per_mode.get("plain") or next(iter(per_mode.values()))
            for mode, res in per_mode.items():
                guide_rows.append((f"{w}x{h}", mode, res["model_fps"], res["fps"], res["fps"] / e2e["fps"],
                                   res["model_fps"] / per_mode[next(iter(per_mode))]["model_fps"], res["setup_s"], res["rss_mib"]))
            # measure the parts again after the end-to-end run and average: on a shared
            # machine the load drifts, and this brackets the end-to-end run in time
            t_fps = (t_fps + transcode_fps(src, tmp / "transcode.mp4", args.crf, args.preset)) / 2
            m_fps = (m_fps + model_fps(col, src, batch)) / 2
            ratio = e2e["fps"] / min(t_fps, m_fps)
            rows.append((f"{w}x{h}", t_fps, m_fps, e2e["fps"], ratio, e2e["rss_mib"]))
            breakdowns.append((f"{w}x{h}", e2e["stages_ms"]))
            print(f"{w}x{h}: transcode {t_fps:.1f} fps, model {m_fps:.1f} fps, end-to-end {e2e['fps']:.1f} fps "
                  f"({ratio:.2f}x of min), peak RSS {e2e['rss_mib']:.0f} MiB", file=sys.stderr)
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    dev = str(col.device)
    if col.device.type == "cuda":
        dev += f" ({torch.cuda.get_device_name(col.device)})"
    lines = [
        f"Machine: {cpu}, {os.cpu_count()} CPU threads, device {dev}, torch {torch.__version__}; "
        f"weights: {wname}, working size {col.cfg.working_long_side} px, runtime {col.runtime}, {torch.get_num_threads()} model threads; "
        f"{args.frames} frames per clip, libx264 crf {args.crf} preset {args.preset}, batch {batch}.",
        "",
        "| size | PyAV transcode fps | model-only fps | end-to-end fps | e2e / min(model, transcode) | peak RSS (MiB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {s} | {t:.1f} | {m:.1f} | {e:.1f} | {r:.2f} | {rss:.0f} |" for s, t, m, e, r, rss in rows]
    lines += breakdown_table(breakdowns, modes[0])
    if len(modes) > 1:
        first = modes[0]
        lines += [
            "",
            f"Guided modes (each run right after the {first} one, same clip; set-up = sampling/encoding the references, "
            "or the keyframe's scan of the video, before the first frame):",
            "",
            f"| size | mode | colorizer-only fps | end-to-end fps | e2e / {first} e2e | colorizer / {first} model | set-up (s) | peak RSS (MiB) |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [f"| {s_} | {m} | {mf:.1f} | {e:.1f} | {r:.2f} | {mr:.2f} | {su:.1f} | {rss:.0f} |"
                  for s_, m, mf, e, r, mr, su, rss in guide_rows]
    return write_table(lines, args.out)


if __name__ == "__main__":
    sys.exit(main())
