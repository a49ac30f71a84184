"""Selective-color pairs on real frames: Koro the llama kept in color in Caminandes 3 shots.

The masks are made with OpenCV's GrabCut (``cv2.grabCut``, in opencv-python),
seeded by hand annotations in ``pipelines/caminandes_koro.json`` (made by looking
at the frames): per frame a box around Koro (GrabCut: outside is background,
inside is "probably foreground") plus optional strokes, polylines ``[x0, y0, x1,
y1, ...]`` drawn 5 px wide that are surely foreground (``fg``) or background
(``bg``, e.g. an orange fence post inside the box).  Coordinates are at the
frames' working size (``size`` in the JSON, 640 px wide).  The target is the input with
Lab a/b zeroed outside the mask (same L)::

    OUT/{train,val,test}/NAME_input.png  NAME_target.png  NAME_mask.png
    OUT/sheet_{train,val,test}.png       every frame with its mask's outline, to check by eye

Splits by shot, as the JSON says: training shots from sequences SE01 and SE03,
validation shots (SE01_SH06, SE03_SH08 with Koro; SE01_SH05, SE03_SH05 without)
kept apart for choosing settings, test shots all from SE02.  Frames without Koro
(``"box": null``) give an all-gray target: things the mask must leave out, such
as the orange water crane and the wooden sleepers; ``--no-empty-shots`` leaves
out the shots without Koro.  Split ``user`` (not made by default: ``--split user``)
holds four Koro-free frames of the mine shot SE02_SH09, no test shot: the few
frames of a scene a user would add after seeing the mask keep the mine's wood
(docs/keepcolor.md, "Adding frames of the scene").
Within a split the pairs are named ``RANK_SHOT_fFRAME``
with the rank going round the shots, so "the first 10 / 30" pairs (``select
train --max-pairs N``) are nested and span the shots.

    python pipelines/make_caminandes_pairs.py -o runs/cam_pairs          # ~1 min
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "series" / "caminandes3"
ANNOTATIONS = Path(__file__).resolve().parent / "caminandes_koro.json"
STROKE = 5


def shot_path(data: Path, shot: str) -> Path:
    return data / f"caminandes_llamigos_E01_{shot}.mp4"


def read_frames(path: Path, wanted: set[int], width: int) -> dict[int, np.ndarray]:
    """The frames of ``path`` whose index is in ``wanted``, RGB, resized to ``width`` (decodes the shot once)."""
    out = {}
    with av.open(str(path)) as c:
        for i, fr in enumerate(c.decode(video=0)):
            if i in wanted:
                img = fr.to_ndarray(format="rgb24")
                h = round(img.shape[0] * width / img.shape[1])
                out[i] = cv2.resize(img, (width, h), interpolation=cv2.INTER_AREA)
            if len(out) == len(wanted):
                break
    missing = wanted - set(out)
    if missing:
        raise ValueError(f"{path.name}: no frame {min(missing)} (the shot has fewer frames)")
    return out


def grabcut(img: np.ndarray, ann: dict, iters: int = 8) -> np.ndarray:
    """uint8 {0, 255} mask of the annotated subject in RGB ``img`` (all 0 for ``"box": null``: not in the frame)."""
    H, W = img.shape[:2]
    if ann["box"] is None:
        return np.zeros((H, W), np.uint8)
    x0, y0, x1, y1 = (int(v) for v in ann["box"])
    m = np.full((H, W), cv2.GC_BGD, np.uint8)
    m[max(0, y0):min(H, y1), max(0, x0):min(W, x1)] = cv2.GC_PR_FGD
    for key, val in (("bg", cv2.GC_BGD), ("fg", cv2.GC_FGD)):
        for line in ann.get(key, []):
            pts = np.array(line, np.int32).reshape(-1, 2)
            if len(pts) == 1:
                cv2.circle(m, tuple(int(v) for v in pts[0]), STROKE, int(val), -1)
            else:
                cv2.polylines(m, [pts], False, int(val), STROKE)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(cv2.cvtColor(img, cv2.COLOR_RGB2BGR), m, None, bgd, fgd, iters, cv2.GC_INIT_WITH_MASK)
    return np.where((m == cv2.GC_FGD) | (m == cv2.GC_PR_FGD), 255, 0).astype(np.uint8)


def gray_outside(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``img`` with its Lab a/b zeroed where ``mask`` is 0 (L unchanged)."""
    lab = cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    lab[..., 1:] *= (mask > 127)[..., None]
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def sheet(items: list[tuple[str, np.ndarray, np.ndarray]], cols: int = 4, tile: int = 320) -> np.ndarray:
    """Contact sheet: each frame with its mask's outline in magenta and its name."""
    tiles = []
    for name, img, mask in items:
        t = img.copy()
        cs, _ = cv2.findContours((mask > 127).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(t, cs, -1, (255, 0, 255), 2)
        t = cv2.resize(t, (tile, round(t.shape[0] * tile / t.shape[1])), interpolation=cv2.INTER_AREA)
        cv2.putText(t, name, (3, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 0), 1)
        tiles.append(t)
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    return np.vstack([np.hstack(tiles[i:i + cols]) for i in range(0, len(tiles), cols)])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=DATA, help="Caminandes 3 shots (default %(default)s)")
    ap.add_argument("--annotations", type=Path, default=ANNOTATIONS)
    ap.add_argument("--split", nargs="+", default=["train", "val", "test"])
    ap.add_argument("--no-empty-shots", action="store_true",
                    help="leave out the shots without the subject (all their frames \"box\": null)")
    args = ap.parse_args(argv)
    ann = json.loads(args.annotations.read_text())
    width = int(ann["size"])
    for split in args.split:
        shots = {s: a for s, a in ann["shots"].items() if a["split"] == split
                 and not (args.no_empty_shots and all(f["box"] is None for f in a["frames"].values()))}
        if not shots:
            print(f"make_caminandes_pairs: error: no {split} shots in {args.annotations}", file=sys.stderr)
            return 1
        d = args.out / split
        d.mkdir(parents=True, exist_ok=True)
        per_shot = []
        for shot, a in shots.items():
            path = shot_path(args.data, shot)
            if not path.is_file():
                print(f"make_caminandes_pairs: error: missing shot {path}", file=sys.stderr)
                return 1
            frames = read_frames(path, {int(k) for k in a["frames"]}, width)
            per_shot.append([(shot, int(k), frames[int(k)], fa) for k, fa in sorted(a["frames"].items(), key=lambda kv: int(kv[0]))])
        # round-robin over the shots: the first N pairs span them
        order = [x for i in range(max(map(len, per_shot))) for s in per_shot if i < len(s) for x in [s[i]]]
        items = []
        for rank, (shot, k, img, fa) in enumerate(order):
            mask = grabcut(img, fa)
            name = f"{rank:03d}_{shot}_f{k:03d}"
            cv2.imwrite(str(d / f"{name}_input.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            cv2.imwrite(str(d / f"{name}_target.png"), cv2.cvtColor(gray_outside(img, mask), cv2.COLOR_RGB2BGR))
            cv2.imwrite(str(d / f"{name}_mask.png"), mask)
            items.append((name, img, mask))
        cv2.imwrite(str(args.out / f"sheet_{split}.png"), cv2.cvtColor(sheet(items), cv2.COLOR_RGB2BGR))
        print(f"{split}: {len(items)} pairs from {len(shots)} shots in {d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
