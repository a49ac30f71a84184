"""Cut the held-out 25-30 s segment of general/bbb_480p_30s.mp4 (never trained on) for evaluation.

    python pipelines/heldout_segment.py ../shared/data/general/bbb_480p_30s.mp4 data/heldout/bbb_25_30s.mp4

Re-encoded near-losslessly (libx264 crf 10); the ground truth is the re-encoded file.
"""
import sys
from fractions import Fraction
from pathlib import Path

import av

src, dst = sys.argv[1], Path(sys.argv[2])
start, end = float(sys.argv[3]) if len(sys.argv) > 3 else 25.0, float(sys.argv[4]) if len(sys.argv) > 4 else 30.0
dst.parent.mkdir(parents=True, exist_ok=True)
with av.open(src) as inp, av.open(str(dst), "w") as out:
    vs = inp.streams.video[0]
    rate = vs.average_rate or Fraction(24)
    os_ = out.add_stream("libx264", rate=rate, options={"crf": "10", "preset": "fast"})
    os_.width, os_.height, os_.pix_fmt = vs.codec_context.width, vs.codec_context.height, "yuv420p"
    n = 0
    for f in inp.decode(vs):
        t = float(f.time)
        if t < start:
            continue
        if t >= end:
            break
        nf = av.VideoFrame.from_ndarray(f.to_ndarray(format="rgb24"), format="rgb24")
        nf.pts = n
        nf.time_base = 1 / rate
        n += 1
        for p in os_.encode(nf.reformat(format="yuv420p")):
            out.mux(p)
    for p in os_.encode(None):
        out.mux(p)
print(f"wrote {n} frames to {dst}")
