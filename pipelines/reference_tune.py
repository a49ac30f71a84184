"""Pick the reference/keyframe settings on VALIDATION material only (docs/reference.md records the runs).

Reference stills (series palette), references -> scored clips:
    Popeye: 16 frames sampled from segment 1 -> segment 2 (every 12th frame); segment 3 is the test.
    Caminandes 3: sequence SE01 -> SE03 (every 6th frame); SE02 is the test.
Keyframes: shots of the Sintel trailer and Big Buck Bunny 0-30 s (cuts by temporal.is_cut; each
shot's first fully faded-in frame as keyframe, every 3rd frame after it scored) and the two
val clips of the model card (Penny & Chip beach_surfing, rpi: an intro, then a dissolve to
another scene).  Caminandes 3 and the held-out clips are the keyframe test.

    python pipelines/reference_tune.py reference --frames 16 --grid '[{}, {"tau": 0.02}]'
    python pipelines/reference_tune.py reference --adapt 0 400 --grid '[{}, {"model_mix": 0.6}]'
    python pipelines/reference_tune.py keyframe --grid '[{}, {"gate": null}]'
    python pipelines/reference_tune.py keyframe --refiner none runs/refine/refiner.safetensors
    python pipelines/reference_tune.py keyframe --popeye --adapt 0 150
    python pipelines/reference_tune.py shots --drift 0 0.3 0.5 0.7 --drift-every 0 --every 4.4   # frames to paint (shots --drift)
    python pipelines/reference_tune.py shots --drift 0.5 --drift-every 8 --every 3.9

Scores: mean CIEDE2000 and colorfulness ratio at 320 px, no temporal smoother (keyframe: ``--temporal`` adds one).
"""
from __future__ import annotations

import argparse
import glob
import json
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from animecolor import frames as fr  # noqa: E402
from animecolor import metrics  # noqa: E402
from animecolor import reference as R  # noqa: E402
from animecolor.color import rgb_to_lab  # noqa: E402
from animecolor.colorize import LutColorizer, load_colorizer  # noqa: E402
from animecolor.evaluate import iter_color_frames  # noqa: E402
from animecolor.propagate import PropagateParams  # noqa: E402
from animecolor.refine import load_refiner  # noqa: E402


def load_frames(paths, stride, max_side=320):
    """(luma, color frame) of every ``stride``-th frame, long side ``max_side``."""
    return [(fr.rgb_to_y(gt), gt) for gt in iter_color_frames(paths, max_side=max_side, stride=stride, max_frames=None)]


def score(frames, abs_):
    de = cf = gc = 0.0
    for (y, gt), ab in zip(frames, abs_):
        u, v = fr.chroma_for(y, ab, "444")
        o = fr.yuv_to_rgb(y, u, v)
        de += metrics.ciede2000(o, gt)
        cf += metrics.colorfulness(o)
        gc += metrics.colorfulness(gt)
    return round(de / len(frames), 3), round(cf / gc, 3)


def params_of(kw, default):
    kw = dict(kw)
    if "gate" in kw and kw["gate"] is not None:
        kw["gate"] = tuple(kw["gate"])
    return R.MatchParams(**{**default.__dict__, **kw})


def run_reference(base, data, n, grid, refiners=(), adapt=(0,)):
    sets = {
        "popeye": ([data / "series/popeye/pgs_T00-1.mkv"], [data / "series/popeye/pgs_T01-2.mkv"], 12),
        "caminandes": (sorted(glob.glob(str(data / "series/caminandes3/*SE01*"))),
                       sorted(glob.glob(str(data / "series/caminandes3/*SE03*"))), 6),
    }
    for name, (ref_paths, test_paths, stride) in sets.items():
        refs = [r for r, _ in R.sample_references(ref_paths, n)]
        frames = load_frames(test_paths, stride)
        size = base.working_size(frames[0][0].shape[1], frames[0][0].shape[0])
        gray = np.stack([fr.model_input(y, size) for y, _ in frames])
        lut = LutColorizer.fit(refs)
        print(name, len(frames), "frames; lookup table on the same references", score(frames, [lut(g[None])[0] for g in gray]), flush=True)
        for steps in adapt:
            for kw in grid:
                for rpath in refiners or [None]:
                    p = params_of(kw, R.ADAPTED_REFERENCE_PARAMS if steps else R.REFERENCE_PARAMS)
                    t0 = time.perf_counter()
                    if steps:  # the base fine-tuned on the references (cached after the first setting)
                        col = R.reference_colorizer(base, refs, adapt_steps=steps, params=p)
                    else:
                        col = R.ReferenceColorizer.from_images(base, refs, p, refiner=None if rpath is None else load_refiner(rpath))
                    ab = np.concatenate([col(gray[i : i + 16]) for i in range(0, len(gray), 16)])
                    ms = (time.perf_counter() - t0) / len(gray) * 1000
                    print(name, n, "adapt", steps, kw, "refiner", rpath, score(frames, ab), f"{ms:.1f} ms/frame", flush=True)


def shots_of(path, stride=3, max_side=320, feed=0):
    """[(keyframe rgb, [(y, gt), ...])]: each shot's first fully faded-in colored frame, then every 3rd frame
    (every ``feed``-th with ``feed``: the colorizers then see those frames and every ``stride // feed``-th is scored)."""
    cuts = R.scan_shots(path).cuts
    shots: list[list] = []
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        start, cur, j = None, -1, 0
        for f in c.decode(s):
            t = float(f.time)
            start = t if start is None else start
            k = sum(1 for x in cuts if x <= t - start + 1e-6)
            if k != cur:
                cur, j = k, 0
                shots.append([])
            gt = fr.fit_long_side(f.to_ndarray(format="rgb24"), max_side)
            shots[-1].append((fr.rgb_to_y(gt), gt))
            j += 1
    out = []
    for sh in shots:
        cfs = [metrics.colorfulness(gt) for _, gt in sh]
        med = np.median(cfs)
        ok = [i for i, (_, gt) in enumerate(sh) if gt.std() > 8 and cfs[i] >= 0.5 * med
              and np.percentile(np.sqrt((rgb_to_lab(gt)[..., 1:] ** 2).sum(-1)), 90) > 5]
        if ok and len(sh) - ok[0] - 1 >= 4 * stride:
            out.append((sh[ok[0]][1], sh[ok[0] + 1 :: feed] if feed else sh[ok[0] + 1 :: stride]))
    return out


def keyframe_val_paths(data: Path, include_bbb: bool = True, popeye: bool = True) -> list[Path]:
    """The keyframe validation clips: Sintel trailer, Big Buck Bunny 0-30 s, the two Penny & Chip val clips and,
    with ``popeye``, Popeye segments 1 and 2."""
    paths = [data / "general/sintel_trailer_480p.mp4", data / "general/bbb_480p_30s.mp4",
             data / "general/toasttv_veo/penny_and_chip_beach_surfing.mp4", data / "general/toasttv_veo/penny_and_chip_rpi.mp4"]
    if not include_bbb:  # the base model trained on Big Buck Bunny 0-25 s: its fallback is in-sample there
        paths = [p for p in paths if "bbb" not in p.name]
    if popeye:  # 1936 film, unlike the base model's training material (segment 3 is the reference test, not used here)
        paths += [data / "series/popeye/pgs_T00-1.mkv", data / "series/popeye/pgs_T01-2.mkv"]
    return paths


def smoothed(ab: np.ndarray, gray: np.ndarray, name: str | None) -> np.ndarray:
    """One shot's a/b after the temporal smoother ``name`` (as ``episode --temporal``; None: as it is)."""
    if not name:
        return ab
    from animecolor.temporal import make_smoother
    from eval_temporal import run_smoother

    g_ab = np.stack([fr.ab_gray_size(g, ab.shape[1:3]) for g in gray])
    return run_smoother(make_smoother(name), g_ab, ab, 16)[0]


def run_keyframe(base, data, grid, include_bbb=True, refiners=(), baselines=True, props=({},), feed=0, popeye=False, adapt=(0,),
                 temporal=(None,)):
    paths = keyframe_val_paths(data, include_bbb, popeye)
    shots = [(p.name[:12].replace("pgs_T0", "popeye"), kf, fs) for p in paths for kf, fs in shots_of(p, feed=feed)]
    every = 3 // feed if feed else 1  # every-th colorizer output is scored (the same frames as without feed)
    per: dict = {}
    for src, _, f in shots:
        per[src] = per.get(src, 0) + len(f[::every])
    print(len(shots), "shots,", sum(per.values()), "scored frames", per, flush=True)

    def total(fn):
        res: dict = {}
        for src, kf, fs_all in shots:
            ab = fn(kf, fs_all)
            fs = fs_all[::every]
            d, c = score(fs, ab[::every])
            r = res.setdefault(src, [0.0, 0.0, 0])
            r[0] += d * len(fs)
            r[1] += c * len(fs)
            r[2] += len(fs)
        al = [sum(r[k] for r in res.values()) for k in range(3)]
        out = {k: (round(r[0] / r[2], 2), round(r[1] / r[2], 2)) for k, r in list(res.items()) + [("all", al)]}
        rest = [sum(r[k] for s_, r in res.items() if not s_.startswith("bbb")) for k in range(3)]  # BBB: in the base model training data
        out["all but bbb"] = (round(rest[0] / rest[2], 2), round(rest[1] / rest[2], 2))
        return out

    def gray_of(fs):
        size = base.working_size(fs[0][0].shape[1], fs[0][0].shape[0])
        return size, np.stack([fr.model_input(y, size) for y, _ in fs])

    def model(kf, fs):
        _, g = gray_of(fs)
        return np.concatenate([base(g[i : i + 8]) for i in range(0, len(g), 8)])

    if baselines:
        for name in temporal:
            print("default model", "temporal", name, total(lambda kf, fs: smoothed(model(kf, fs), gray_of(fs)[1], name)), flush=True)
        print("copy keyframe", total(lambda kf, fs: np.stack([R.copy_keyframe_chroma(kf, gray_of(fs)[0], 2)] * len(fs))), flush=True)
    for steps in adapt:
        for kw in grid:
            p = params_of(kw, R.KEYFRAME_PARAMS)
            for rpath in refiners or [None]:
                refiner = None if rpath is None else load_refiner(rpath)
                for prop, name in [(a, b) for a in props for b in temporal]:
                    pp = None if prop is None else PropagateParams(**prop)

                    def run(kf, fs):
                        size, g = gray_of(fs)
                        col = R.KeyframeColorizer(base, [R.Keyframe(cv2.resize(kf, size, interpolation=cv2.INTER_AREA), 0.0)], params=p,
                                                  refiner=refiner, propagate=pp, adapt_steps=steps)
                        times = np.arange(1, len(g) + 1) / 30.0  # the keyframe is at 0, then the frames in order
                        return smoothed(np.concatenate([col(g[i : i + 16], times[i : i + 16]) for i in range(0, len(g), 16)]), g, name)

                    t0 = time.perf_counter()
                    res = total(run)
                    print("keyframe adapt", steps, kw, "refiner", rpath, "propagate", prop, "temporal", name, res,
                          f"{time.perf_counter() - t0:.0f} s", flush=True)


def run_shots(base, data, drifts, every, drift_every=None) -> None:
    """``evaluate --keyframe-shots`` on the 6 whole validation clips (Popeye 1 and 2 included), every picked frame
    painted from the color original: ``shots --drift`` settings, and (``every`` > 0) the control with the same
    first frames plus a frame every ``every`` seconds within each shot."""
    from animecolor import evaluate as ev
    from animecolor.colorize import GrayColorizer
    from animecolor.commands import evaluate as E

    paths = keyframe_val_paths(data, True, True)
    orig = R.pick_shot_frames

    def uniform(video, on_pick):
        last: dict = {}

        def first(shot, t, rgb):
            last[shot] = t
            on_pick(shot, t, rgb)

        def on_frame(shot, t, frame, small):
            if shot in last and t - last[shot] >= every - 1e-6 and small.std() >= R.BLANK_LUMA_STD:
                last[shot] = t
                on_pick(shot, t, frame.to_ndarray(format="rgb24"))

        orig(video, first, drift=None)  # the shot starts as shipped, then the evenly spaced frames
        return R.scan_shots(video, on_frame=on_frame)

    settings = [(f"drift {d}" + (f" + every {drift_every} s" if drift_every else ""),
                 lambda v, cb, d=d: orig(v, cb, drift=d or None, every=drift_every)) for d in drifts]
    settings += [(f"every {every} s", uniform)] if every > 0 else []
    for name, picker in settings:
        t0 = time.perf_counter()
        painted: list = []
        R.pick_shot_frames = lambda video, on_pick, p=picker: p(video, lambda s, t, rgb: (painted.append(t), on_pick(s, t, rgb)))
        try:
            rep = ev.evaluate_paths(paths, {"gray": GrayColorizer()}, stride=3, max_side=320, batch_size=8,
                                    per_clip=E._guided_keyframes(base, False, True, 320))
        finally:
            R.pick_shot_frames = orig
        ov = rep["overall"]
        rows = {k: (round(v["ciede2000"], 2), round(v["colorfulness_ratio"], 2)) for k, v in ov["colorizers"].items()}
        per = {Path(c["path"]).name[:14]: round(c["colorizers"]["keyframe-shots"]["ciede2000"], 2) for c in rep["clips"]}
        print(f"shots {name}: {len(painted)} frames painted, {ov['frames']} scored", rows, per,
              f"{time.perf_counter() - t0:.0f} s", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["reference", "keyframe", "shots"])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data")
    ap.add_argument("--frames", type=int, default=R.DEFAULT_REFERENCE_FRAMES, help="reference frames sampled")
    ap.add_argument("--no-bbb", action="store_true", help="keyframe: leave out Big Buck Bunny 0-30 s (the base model's training data)")
    ap.add_argument("--refiner", nargs="+", default=[], metavar="PATH",
                    help="learned refiners (animecolor/refine.py) to try, each with every grid setting; 'none' = without")
    ap.add_argument("--feed", type=int, default=0, choices=[0, 1, 3],
                    help="keyframe: colorizers see every N-th frame of the shot (1: all, as in episode), the same every-3rd frames are scored; 0: only the scored frames")
    ap.add_argument("--popeye", action="store_true", help="keyframe: add the shots of Popeye segments 1 and 2 (1936 film)")
    ap.add_argument("--no-baselines", action="store_true", help="keyframe: skip the default-model and copy rows")
    ap.add_argument("--adapt", type=int, nargs="+", default=[0],
                    help="steps of fine-tuning the model on the references (keyframe: on each shot's keyframe) first "
                         "(0: the matching alone; reference mode's default is animecolor.adapt.ADAPT_STEPS)")
    ap.add_argument("--temporal", nargs="+", default=["none"], metavar="NAME",
                    help="keyframe: temporal smoothers to try on each shot's output ('none': as it is, the default; "
                         "flow2 is episode's default; use with --feed 1)")
    ap.add_argument("--grid", default="[{}]", help="JSON list of MatchParams overrides (default settings: {})")
    ap.add_argument("--propagate", default="[{}]",
                    help="keyframe: JSON list of PropagateParams overrides ({} = the shipped defaults, the default; null = no flow propagation)")
    ap.add_argument("--drift", type=float, nargs="+", default=[R.SHOT_DRIFT or 0.0],
                    help="shots: pick_shot_frames drift settings to try (0: shot starts only)")
    ap.add_argument("--every", type=float, default=0.0,
                    help="shots: also the control with a frame every this many seconds within each shot")
    ap.add_argument("--drift-every", type=float, default=R.SHOT_EVERY,
                    help="shots: the drift settings' `every` (a frame still explained is picked once the last is this old)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    base = load_colorizer()
    grid = json.loads(args.grid)
    refs = [None if r == "none" else r for r in args.refiner]
    if args.mode == "reference":
        run_reference(base, args.data, args.frames, grid, refs, args.adapt)
    elif args.mode == "shots":
        run_shots(base, args.data, args.drift, args.every, args.drift_every)
    else:
        run_keyframe(base, args.data, grid, not args.no_bbb, refs, not args.no_baselines, json.loads(args.propagate), args.feed,
                     args.popeye, args.adapt, [None if t == "none" else t for t in args.temporal])
    return 0


if __name__ == "__main__":
    sys.exit(main())
