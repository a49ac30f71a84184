"""Make selective-color pairs (input | target | true mask) reproducibly from the shared data.

Each pair is a background frame from ``../shared/data/general/`` or a Caminandes 3
shot with one public-domain clip-art object from Debian's ``openclipart-png``
composited onto it.  The target keeps the object's colors and grays out the rest
(Lab a = b = 0, same L); the object's alpha is the true mask::

    OUT/train/NAME_input.png  NAME_target.png  NAME_mask.png
    OUT/test/...

Split by source: test backgrounds come from other files (Sintel trailer, the last
8 toasttv_veo clips, Caminandes sequence SE03) than training backgrounds (Big Buck
Bunny, the first 18 toasttv_veo clips, Caminandes SE01/SE02), and test clip-art
files are disjoint from training ones (chosen by a hash of their path).  With
--one-subject every pair shows the same object (the use case: one subject of one
film), at random sizes, places and flips; backgrounds are split as above.  Training
pairs are numbered in a fixed order, so "the first 10 / 30 / 100" are nested.

The clip art is not on PyPI: install it with ``apt-get install openclipart-png``
(Debian/Ubuntu; files in /usr/share/openclipart/png) or pass --clipart DIR.

    python pipelines/make_select_pairs.py -o runs/select_pairs           # ~1 min
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
CLIPART = Path("/usr/share/openclipart/png")
LONG_SIDE = 384


def sources(data: Path) -> dict[str, list[Path]]:
    toast = sorted((data / "general" / "toasttv_veo").glob("*.mp4"))
    cam = sorted((data / "series" / "caminandes3").glob("*.mp4"))
    return {
        "train": [data / "general" / "bbb_480p_30s.mp4", *toast[:18], *[p for p in cam if "_SE03_" not in p.name]],
        "test": [data / "general" / "sintel_trailer_480p.mp4", *toast[18:], *[p for p in cam if "_SE03_" in p.name]],
    }


def grab_frames(path: Path, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``n`` RGB frames at random times of ``path`` (seek + first decoded frame), long side LONG_SIDE."""
    out = []
    with av.open(str(path)) as c:
        st = c.streams.video[0]
        dur = float(st.duration * st.time_base) if st.duration else float(c.duration or 0) / 1e6
        for t in sorted(rng.uniform(0.1, 0.9, n) * max(dur, 0.1)):
            c.seek(int(t / st.time_base), stream=st)
            for fr in c.decode(st):
                img = fr.to_ndarray(format="rgb24")
                s = LONG_SIDE / max(img.shape[:2])
                out.append(cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)), interpolation=cv2.INTER_AREA))
                break
    return out


def clipart_ok(path: Path) -> np.ndarray | None:
    """RGBA clip art that is a colorful object with a real outline, else None."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.ndim != 3 or img.shape[2] != 4 or min(img.shape[:2]) < 128:
        return None
    rgba = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    a = rgba[..., 3]
    fill = (a > 127).mean()
    if not 0.15 < fill < 0.85:
        return None
    lab = cv2.cvtColor(rgba[..., :3], cv2.COLOR_RGB2Lab).astype(np.float32)
    chroma = np.hypot(lab[..., 1] - 128, lab[..., 2] - 128)[a > 127]
    if np.mean(chroma > 15) < 0.4:  # mostly gray clip art: keeping its color would show nothing
        return None
    return rgba


def characters(clipart: Path, split: str, n: int, rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    files = sorted(clipart.rglob("*.png"))
    files = [f for f in files if (int(hashlib.sha1(str(f.relative_to(clipart)).encode()).hexdigest(), 16) % 4 == 0) == (split == "test")]
    rng.shuffle(files)
    out = []
    for f in files:
        rgba = clipart_ok(f)
        if rgba is not None:
            out.append((f.stem, rgba))
            if len(out) == n:
                break
    return out


def composite(bg: np.ndarray, rgba: np.ndarray, rng: np.random.Generator):
    """(input RGB, target RGB, mask uint8) with the clip art at a random place, size and flip."""
    H, W = bg.shape[:2]
    h = int(H * rng.uniform(0.35, 0.8))
    w = int(rgba.shape[1] * h / rgba.shape[0])
    if w > 0.8 * W:
        w = int(0.8 * W)
        h = int(rgba.shape[0] * w / rgba.shape[1])
    obj = cv2.resize(rgba, (w, h), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        obj = obj[:, ::-1]
    y0, x0 = rng.integers(0, H - h + 1), rng.integers(0, W - w + 1)
    alpha = np.zeros((H, W), np.float32)
    alpha[y0:y0 + h, x0:x0 + w] = obj[..., 3] / 255.0
    layer = bg.astype(np.float32).copy()
    layer[y0:y0 + h, x0:x0 + w] = obj[..., :3]
    inp = np.clip(bg * (1 - alpha[..., None]) + layer * alpha[..., None] + 0.5, 0, 255).astype(np.uint8)
    lab = cv2.cvtColor(inp.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    lab[..., 1:] *= alpha[..., None]
    tgt = np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return inp, tgt, (alpha * 255 + 0.5).astype(np.uint8)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--clipart", type=Path, default=CLIPART,
                    help="folder of openclipart PNGs (default %(default)s, from `apt-get install openclipart-png`)")
    ap.add_argument("--train", type=int, default=100)
    ap.add_argument("--test", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--one-subject", action="store_true",
                    help="the same clip-art object in every pair (one subject in one film); backgrounds still split")
    args = ap.parse_args(argv)
    if not args.clipart.is_dir() or not any(args.clipart.rglob("*.png")):
        print(f"make_select_pairs: error: no clip art in {args.clipart}; install it with "
              "`apt-get install openclipart-png` (Debian/Ubuntu) or pass --clipart DIR", file=sys.stderr)
        return 1
    srcs = sources(args.data)
    missing = [p for ps in srcs.values() for p in ps if not p.is_file()]
    if missing:
        print(f"make_select_pairs: error: missing source video {missing[0]}", file=sys.stderr)
        return 1
    for split, n in (("train", args.train), ("test", args.test)):
        rng = np.random.default_rng([args.seed, split == "test"])
        per = -(-n // len(srcs[split]))
        bgs = [(p.stem, i, f) for p in srcs[split] for i, f in enumerate(grab_frames(p, per, rng))]
        order = rng.permutation(len(bgs))[:n]
        if args.one_subject:  # the first usable object of the held-out half, in every pair of both splits
            chars = characters(args.clipart, "test", 1, np.random.default_rng(args.seed)) * n
        else:
            chars = characters(args.clipart, split, n, rng)
        if len(chars) < n or len(order) < n:
            print(f"make_select_pairs: error: only {len(chars)} clip-art objects / {len(order)} frames for {n} {split} pairs",
                  file=sys.stderr)
            return 1
        d = args.out / split
        d.mkdir(parents=True, exist_ok=True)
        for k, (j, (cname, rgba)) in enumerate(zip(order, chars)):
            src, i, bg = bgs[j]
            inp, tgt, mask = composite(bg, rgba, rng)
            name = f"{k:03d}_{src.replace('caminandes_llamigos_', 'cam_')}_{i}_{cname}"[:80]
            cv2.imwrite(str(d / f"{name}_input.png"), cv2.cvtColor(inp, cv2.COLOR_RGB2BGR))
            cv2.imwrite(str(d / f"{name}_target.png"), cv2.cvtColor(tgt, cv2.COLOR_RGB2BGR))
            cv2.imwrite(str(d / f"{name}_mask.png"), mask)
        print(f"{split}: {n} pairs in {d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
