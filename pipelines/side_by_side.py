"""Side-by-side comparison image: gray | colorizer 1 | colorizer 2 ... | original.

Used for the README figures (default vs fine-tuned model on an unseen Popeye
segment).  Every colorizer goes through ``animecolor.preview.preview_frames``,
i.e. the same code path as ``animecolor episode`` (working size, the merger
of ``docs/merge.md``, temporal smoother with ``--context`` frames of history).

    python pipelines/side_by_side.py VIDEO --at 12.0 --at 40.5 \
        --weights weights/default.safetensors --label default \
        --weights runs/popeye/best.safetensors --label fine-tuned \
        --max-side 360 -o docs/img/popeye.png

Colors from the user's own pictures (docs/reference.md) add columns built on
the first ``--weights``: ``--reference REF...`` (the reference-guided
colorizer and a lookup table fitted on the same sampled frames) and
``--keyframe IMAGE@TIME`` (keyframe mode, and the copy-the-keyframe baseline).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from animecolor import reference as R
from animecolor.colorize import LutColorizer, load_colorizer
from animecolor.preview import _shrink, preview_frames


def _label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.rectangle(out, (0, 0), (8 + 9 * len(text), 22), (0, 0, 0), -1)
    cv2.putText(out, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video")
    ap.add_argument("--at", action="append", required=True, help="time (as in animecolor preview); repeat for rows")
    ap.add_argument("--weights", action="append", required=True)
    ap.add_argument("--label", action="append", default=[])
    ap.add_argument("--reference", nargs="+", default=[], help="add reference-guided and lut-on-references columns")
    ap.add_argument("--reference-frames", type=int, default=R.DEFAULT_REFERENCE_FRAMES)
    ap.add_argument("--reference-adapt", type=int, nargs="+", default=[0, R.ADAPT_STEPS],
                    help="a reference column per value: steps of fine-tuning on the references (0: matching alone)")
    ap.add_argument("--keyframe", action="append", default=[], help="IMAGE@TIME: add keyframe and copy-keyframe columns")
    ap.add_argument("--context", type=int, default=8)
    ap.add_argument("--max-side", type=int, default=360, help="each panel's long side")
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    labels = args.label + [Path(w).name for w in args.weights[len(args.label) :]]

    columns = []  # per colorizer: list of PreviewFrame (one per --at)
    bases = [load_colorizer(w, device="cpu") for w in args.weights]
    extra = []
    if args.reference:
        refs = R.sample_references(args.reference, args.reference_frames)
        extra.append((f"lut on {len(refs)} refs", LutColorizer.fit([r for r, _ in refs])))
        for steps in args.reference_adapt:
            lab = f"reference ({len(refs)}{', adapted' if steps else ''})"
            extra.append((lab, R.reference_colorizer(bases[0], [r for r, _ in refs], adapt_steps=steps, weights=args.weights[0])))
    if args.keyframe:
        kf = R.guided_colorizer(bases[0], args.video, keyframes=args.keyframe)
        extra.append(("copy keyframe", R.KeyframeColorizer(bases[0], kf.keyframes, kf.cuts, method="copy")))
        extra.append(("keyframe", kf))
    labels += [lab for lab, _ in extra]
    for col in bases + [c for _, c in extra]:
        columns.append(preview_frames(args.video, args.at, col, context=args.context))
    rows = []
    for i, at in enumerate(args.at):
        first = columns[0][i]
        panels = [_label(_shrink(first.gray, args.max_side), f"gray input  t={at}")]
        for lab, col in zip(labels, columns):
            f = col[i]
            txt = lab if f.ciede2000 is None else f"{lab}  dE00 {f.ciede2000:.1f}"
            panels.append(_label(_shrink(f.colorized, args.max_side), txt))
        if first.original is not None:
            panels.append(_label(_shrink(first.original, args.max_side), "original"))
        rows.append(np.hstack(panels))
    img = np.vstack(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(args.out, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out} ({img.shape[1]}x{img.shape[0]})")


if __name__ == "__main__":
    main()
