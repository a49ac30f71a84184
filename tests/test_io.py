"""Decode thread, plane handling and probing (animecolor.io)."""
from __future__ import annotations

import av
import numpy as np
import pytest

from animecolor.io import BatchReader, choose_pix_fmt, luma_plane, make_yuv_frame, plane_array, probe


def test_probe_reports_size_rate_and_side_streams(clip):
    path = clip("two.mkv", n=6, w=80, h=48, fps=12, audio_tracks=2, subtitle=True)
    info = probe(path)
    assert (info.width, info.height) == (80, 48)
    assert info.rate == 12
    assert info.n_audio == 2 and info.n_subtitle == 1
    assert info.duration == pytest.approx(0.5, abs=0.1)


def test_probe_errors_are_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="input not found"):
        probe(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 10)
    with pytest.raises(ValueError, match="cannot read"):
        probe(junk)


def test_probe_audio_only_has_no_video_stream(tmp_path):
    path = tmp_path / "audio.m4a"
    with av.open(str(path), "w") as out:
        a = out.add_stream("aac", rate=48000)
        a.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 48000, 0
        for p in list(a.encode(frame)) + list(a.encode(None)):
            out.mux(p)
    with pytest.raises(ValueError, match="no video stream"):
        probe(path)


def test_batches_have_fixed_size_and_short_tail(clip):
    path = clip("b.mp4", n=11, w=64, h=48)
    with av.open(str(path)) as c:
        reader = BatchReader(c, 4, prepare=lambda y, full: y[::2, ::2].copy())
        batches = list(reader)
    assert [len(b) for b in batches] == [4, 4, 3]
    assert [b.start for b in batches] == [0, 4, 8]
    assert batches[0].gray.shape == (4, 24, 32)
    pts = [p for b in batches for p in b.pts]
    assert pts == sorted(pts) and len(set(pts)) == 11


def test_side_packets_ride_along_with_batches(clip):
    path = clip("a.mkv", n=12, audio_tracks=1)
    with av.open(str(path)) as c:
        aidx = c.streams.audio[0].index
        reader = BatchReader(c, 5, side_streams=[aidx])
        got = [bytes(p) for b in reader for p in b.packets]
    with av.open(str(path)) as c:
        want = [bytes(p) for p in c.demux(audio=0) if p.size and p.dts is not None]
    assert got == want and len(want) > 10


def test_luma_plane_honours_line_size_for_odd_widths():
    w, h = 37, 21  # line_size is padded beyond the width
    y = (np.arange(w * h, dtype=np.uint32) % 219 + 16).astype(np.uint8).reshape(h, w)
    u = np.full((h, w), 100, np.uint8)
    frame = make_yuv_frame(y, u, u, "yuv444p")
    assert frame.planes[0].line_size > w
    got, full = luma_plane(frame)
    assert np.array_equal(got, y) and not full


def test_rgb_frames_convert_to_limited_range_luma():
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[:, 8:] = 255
    y, full = luma_plane(av.VideoFrame.from_ndarray(rgb, format="rgb24"))
    assert not full
    assert y[:, :8].max() <= 17 and y[:, 8:].min() >= 233


def test_make_yuv_frame_rejects_wrong_chroma_shape():
    y = np.zeros((10, 12), np.uint8)
    with pytest.raises(ValueError, match="plane shape"):
        make_yuv_frame(y, np.zeros((10, 12), np.uint8), np.zeros((10, 12), np.uint8), "yuv420p")
    f = make_yuv_frame(y, np.full((5, 6), 90, np.uint8), np.full((5, 6), 200, np.uint8), "yuv420p")
    assert plane_array(f.planes[2]).min() == 200


def test_odd_sizes_need_444():
    assert choose_pix_fmt("libx264", 64, 48) == "yuv420p"
    assert choose_pix_fmt("libx264", 63, 48) == "yuv444p"
    with pytest.raises(ValueError, match="odd"):
        choose_pix_fmt("libsvtav1", 63, 47)
