"""Bitmap subtitles (PGS, as on Blu-ray rips) and attachments: ``episode --subtitles {copy,drop}``."""
from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import ConstColorizer, side_packets

from animecolor.cli import main
from animecolor.pipeline import colorize_video


def _seg(kind: int, data: bytes) -> bytes:
    return bytes([kind]) + struct.pack(">H", len(data)) + data


def pgs_show(w: int, h: int, bw: int = 8, bh: int = 4, x: int = 4, y: int = 4) -> bytes:
    """One PGS display set (PCS, WDS, PDS, ODS, END): a ``bw`` x ``bh`` white box at (x, y)."""
    pcs = struct.pack(">HHBHBBBB", w, h, 0x10, 0, 0x80, 0, 0, 1) + struct.pack(">HBBHH", 0, 0, 0, x, y)
    wds = struct.pack(">BBHHHH", 1, 0, x, y, bw, bh)
    pds = struct.pack(">BB", 0, 0) + bytes([1, 235, 128, 128, 255])  # palette entry 1: Y, Cr, Cb, alpha
    rle = (b"\x01" * bw + b"\x00\x00") * bh  # one color byte per pixel, 00 00 ends a line
    ods = struct.pack(">HBB", 0, 0, 0xC0) + (len(rle) + 4).to_bytes(3, "big") + struct.pack(">HH", bw, bh) + rle
    return _seg(0x16, pcs) + _seg(0x17, wds) + _seg(0x14, pds) + _seg(0x15, ods) + _seg(0x80, b"")


def pgs_clear(w: int, h: int) -> bytes:
    """A display set with no object: clears the screen."""
    pcs = struct.pack(">HHBHBBBB", w, h, 0x10, 1, 0x00, 0, 0, 0)
    return _seg(0x16, pcs) + _seg(0x17, struct.pack(">BBHHHH", 1, 0, 4, 4, 8, 4)) + _seg(0x80, b"")


def make_pgs_clip(path: Path, n: int = 12, w: int = 64, h: int = 48, attachment: bool = False) -> Path:
    """H.264 + AAC + a PGS (hdmv_pgs_subtitle) stream, in Matroska; optionally a font attachment."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=12)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"preset": "ultrafast"}
        a = out.add_stream("aac", rate=48000)
        a.layout = "mono"
        sub = out.add_mux_stream("hdmv_pgs_subtitle")
        sub.time_base = Fraction(1, 1000)
        if attachment:
            out.add_attachment("font.ttf", "font/ttf", b"\x00\x01\x00\x00" + bytes(60))
        for i in range(n):
            f = av.VideoFrame.from_ndarray(np.full((h, w, 3), 60 + 10 * i, np.uint8), format="rgb24")
            f = f.reformat(format="yuv420p")
            f.pts = i
            out.mux(vs.encode(f))
        out.mux(vs.encode(None))
        fsz = a.codec_context.frame_size
        for pos in range(0, 48000, fsz):
            af = av.AudioFrame.from_ndarray(np.zeros((1, fsz), np.float32), format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = 48000, pos, Fraction(1, 48000)
            out.mux(a.encode(af))
        out.mux(a.encode(None))
        for t, data in ((0, pgs_show(w, h)), (500, pgs_clear(w, h))):
            pkt = av.Packet(data)
            pkt.stream, pkt.time_base = sub, Fraction(1, 1000)
            pkt.pts = pkt.dts = t
            out.mux(pkt)
    return path


@pytest.fixture
def pgs(tmp_path) -> Path:
    return make_pgs_clip(tmp_path / "bluray.mkv")


def test_the_generated_stream_is_a_bitmap_subtitle(pgs):
    with av.open(str(pgs)) as c:
        s = c.streams.subtitles[0]
        assert s.codec_context.name == "pgssub"
        shown = [rect for p in c.demux(s) for rect in s.decode(p)]
    assert shown and type(shown[0]).__name__ == "BitmapSubtitle"
    assert (shown[0].width, shown[0].height, shown[0].x, shown[0].y) == (8, 4, 4, 4)


def test_pgs_into_mp4_is_refused_naming_both_ways_out(pgs, tmp_path, tiny_random_model, capsys):
    rc = main(["episode", str(pgs), str(tmp_path / "out.mp4"), "--weights", str(tiny_random_model), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1, err
    assert err[0].startswith("animecolor: error: cannot copy subtitle stream #2 (pgssub) into .mp4 files")
    assert ".mkv" in err[0] and "--subtitles drop" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bluray.mkv"]


def test_subtitles_drop_writes_mp4_without_them(pgs, tmp_path, tiny_random_model, capsys):
    dst = tmp_path / "out.mp4"
    rc = main(["episode", str(pgs), str(dst), "--weights", str(tiny_random_model), "-q", "--subtitles", "drop",
               "--preset", "ultrafast", "--temporal", "none"])
    assert rc == 0, capsys.readouterr().err
    with av.open(str(dst)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
        assert sum(1 for _ in c.decode(video=0)) == 12
    assert side_packets(dst)[0] == side_packets(pgs)[0]  # the audio is still copied bit-exact


def test_pgs_is_copied_bit_exact_into_mkv(pgs, tmp_path):
    dst = tmp_path / "out.mkv"
    colorize_video(pgs, dst, ConstColorizer(), batch_size=4)
    assert side_packets(dst) == side_packets(pgs)
    with av.open(str(dst)) as c:
        assert [s.type for s in c.streams] == ["video", "audio", "subtitle"]
        assert c.streams.subtitles[0].codec_context.name == "pgssub"


def test_subtitles_drop_also_drops_text_subtitles_and_is_checked(clip, tmp_path):
    src = clip("in.mkv", n=4, subtitle=True, audio_tracks=1)
    dst = tmp_path / "out.mkv"
    colorize_video(src, dst, ConstColorizer(), subtitles="drop")
    with av.open(str(dst)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
    with pytest.raises(ValueError, match="subtitles must be one of copy, drop"):
        colorize_video(src, tmp_path / "x.mkv", ConstColorizer(), subtitles="keep")


def test_attachments_do_not_block(tmp_path):
    """Attachment streams (fonts in Matroska) are not copied, so they never stop an episode,
    into .mp4 (which cannot hold them) as into .mkv."""
    src = make_pgs_clip(tmp_path / "with_font.mkv", attachment=True)
    with av.open(str(src)) as c:
        assert "attachment" in [s.type for s in c.streams]
    for name in ("out.mp4", "out.mkv"):
        dst = tmp_path / name
        colorize_video(src, dst, ConstColorizer(), batch_size=4, subtitles="drop" if name.endswith("mp4") else "copy")
        with av.open(str(dst)) as c:
            assert "attachment" not in [s.type for s in c.streams]
