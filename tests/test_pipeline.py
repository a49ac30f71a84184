"""End-to-end episode pipeline on tiny synthetic clips (animecolor.pipeline.colorize_video)."""
from __future__ import annotations

import shutil
import threading

import av
import numpy as np
import pytest
from conftest import ConstColorizer, decode_planes, side_packets

import animecolor
from animecolor.pipeline import colorize_video, luma_psnr
from animecolor.temporal import TemporalSmoother


def frame_times(path) -> list[float]:
    with av.open(str(path)) as c:
        return [float(f.pts * f.time_base) for f in c.decode(video=0)]


def assert_same_packets(a, b):
    """Same streams, bit-exact payloads, same times (to the millisecond a Matroska file keeps)."""
    assert sorted(a) == sorted(b)
    for k in a:
        assert [p for p, _ in a[k]] == [p for p, _ in b[k]]
        assert [t for _, t in b[k]] == pytest.approx([t for _, t in a[k]], abs=1e-3)


def test_api_is_exported_lazily():
    assert animecolor.colorize_video is colorize_video


def test_luma_is_kept_and_color_added_with_audio_copied(clip, tmp_path):
    src = clip("in.mp4", n=10, w=96, h=64, audio_tracks=1)
    dst = tmp_path / "out.mp4"
    seen = []
    res = colorize_video(src, dst, ConstColorizer(), crf=0, batch_size=4, progress=lambda d, t: seen.append((d, t)))
    assert res.frames == 10 and seen[-1] == (10, 10)
    assert res.luma_psnr_db >= 45.0  # measured on the planes handed to the encoder
    a, b = decode_planes(src), decode_planes(dst)
    assert len(b) == 10
    for (ys, _, _), (yd, ud, vd) in zip(a, b):
        assert luma_psnr(ys, yd) >= 45.0  # crf 0 is lossless: the encoded luma is the source's
        # the constant prediction (a=40, b=30: orange-red) lands everywhere: Cr well above neutral
        assert vd.mean() > 140 and abs(float(ud.mean()) - 128) > 3
    assert side_packets(src) == side_packets(dst)
    assert frame_times(src) == pytest.approx(frame_times(dst), abs=1e-3)
    assert not list(tmp_path.glob(".*partial*"))


def test_two_audio_tracks_and_subtitles_copied_bit_exact(clip, tmp_path):
    src = clip("in.mkv", n=12, audio_tracks=2, subtitle=True)
    dst = tmp_path / "out.mkv"
    colorize_video(src, dst, ConstColorizer(), batch_size=5)
    a, b = side_packets(src), side_packets(dst)
    assert sorted(a) == [0, 1, 2] and a == b
    with av.open(str(dst)) as c:
        assert [s.type for s in c.streams] == ["video", "audio", "audio", "subtitle"]
        assert c.duration == pytest.approx(av.open(str(src)).duration, rel=0.05)


def test_variable_frame_rate_timestamps_preserved(clip, tmp_path):
    src = clip("vfr.mkv", n=12, vfr=True, audio_tracks=1)
    dst = tmp_path / "vfr_out.mp4"
    colorize_video(src, dst, ConstColorizer(), batch_size=4)
    ts, td = frame_times(src), frame_times(dst)
    assert len(set(np.round(np.diff(ts), 3))) > 1  # really VFR
    assert td == pytest.approx(ts, abs=1e-3)


def test_rotation_and_sample_aspect_ratio_kept(clip, tmp_path):
    from fractions import Fraction

    src = clip("rot.mp4", n=4, rotation=90, sar=Fraction(4, 3))
    dst = tmp_path / "rot_out.mp4"
    colorize_video(src, dst, ConstColorizer())
    with av.open(str(src)) as a, av.open(str(dst)) as b:
        fa, fb = next(a.decode(video=0)), next(b.decode(video=0))
        assert fa.rotation == 90 and fb.rotation == 90
        assert b.streams.video[0].sample_aspect_ratio == Fraction(4, 3)


def test_odd_size_gif_becomes_444(clip, tmp_path):
    src = clip("in.gif", n=6, w=63, h=47)
    dst = tmp_path / "gif.mp4"
    res = colorize_video(src, dst, ConstColorizer(), batch_size=4)
    planes = decode_planes(dst)
    assert res.frames == 6 and len(planes) == 6
    y, u, v = planes[0]
    assert y.shape == (47, 63) and u.shape == (47, 63)
    assert v.mean() > 140


def test_residual_input_chroma_is_discarded(clip, tmp_path):
    src = clip("noisy.mp4", n=4, chroma_noise=25)
    dst = tmp_path / "gray.mp4"
    colorize_video(src, dst, ConstColorizer(0.0, 0.0), crf=0, temporal="none")
    for _, u, v in decode_planes(dst):
        # neutral prediction -> neutral output: the noise in the input chroma is gone
        assert np.abs(u.astype(int) - 128).max() <= 2 and np.abs(v.astype(int) - 128).max() <= 2


def test_tiny_random_model_plumbing(clip, tmp_path, tiny_random_model):
    src = clip("in.avi", n=5, codec="mpeg4", w=66, h=50)
    res = colorize_video(src, tmp_path / "o.mkv", tiny_random_model, device="cpu", batch_size=2)
    assert res.frames == 5 and res.colorizer == tiny_random_model.name


class HoldBack(TemporalSmoother):
    """Smoother with look-ahead: returns frames ``delay`` late, in order."""

    name = "holdback"
    delay = 3

    def reset(self):
        self.buf = []

    def process(self, gray, ab):
        self.buf.extend(ab)
        n = max(0, len(self.buf) - self.delay)
        out, self.buf = self.buf[:n], self.buf[n:]
        return np.array(out, np.float32).reshape((n,) + ab.shape[1:])

    def flush(self):
        out, self.buf = self.buf, []
        return np.array(out, np.float32)


def test_smoother_delay_keeps_every_frame_in_order(clip, tmp_path):
    src = clip("in.mp4", n=9, audio_tracks=1)
    dst = tmp_path / "o.mp4"
    res = colorize_video(src, dst, ConstColorizer(), temporal=HoldBack(), batch_size=2, crf=0)
    assert res.frames == 9
    assert frame_times(dst) == pytest.approx(frame_times(src), abs=1e-3)
    for (ys, _, _), (yd, _, _) in zip(decode_planes(src), decode_planes(dst)):
        assert np.array_equal(ys, yd)  # frames paired with their own luma, not shifted


def _corrupt(path, indices, out):
    with av.open(str(path)) as c:
        pk = [(p.pos, p.size) for p in c.demux(video=0) if p.size]
    data = bytearray(path.read_bytes())
    for i in indices:
        pos, size = pk[i]
        data[pos : pos + size] = b"\x00" * size
    out.write_bytes(bytes(data))
    return out


def test_corrupt_packets_are_skipped_and_audio_stays(clip, tmp_path):
    src = clip("c.avi", n=16, codec="mjpeg", audio_tracks=1)
    bad = _corrupt(src, [5, 9], tmp_path / "bad.avi")
    warnings = []
    res = colorize_video(bad, tmp_path / "o.mkv", ConstColorizer(), on_warning=warnings.append)
    assert res.frames == 14 and res.bad_packets == 2 and len(warnings) == 2
    assert "corrupt" in warnings[0]
    # surviving frames keep their own times, so audio stays in sync
    kept = [t for i, t in enumerate(frame_times(src)) if i not in (5, 9)]
    assert frame_times(tmp_path / "o.mkv") == pytest.approx(kept, abs=1e-3)
    assert_same_packets(side_packets(bad), side_packets(tmp_path / "o.mkv"))


def test_too_many_corrupt_packets_stop_without_output(clip, tmp_path):
    src = clip("c.avi", n=12, codec="mjpeg")
    bad = _corrupt(src, range(1, 12), tmp_path / "bad.avi")
    dst = tmp_path / "o.mp4"
    with pytest.raises(RuntimeError, match="too many corrupt packets"):
        colorize_video(bad, dst, ConstColorizer(), max_bad_packets=5)
    assert not dst.exists() and not list(tmp_path.glob(".*partial*"))


def test_truncated_files(clip, tmp_path):
    ts = clip("t.ts", n=24)  # an interrupted recording
    cut = tmp_path / "cut.ts"
    cut.write_bytes(ts.read_bytes()[: ts.stat().st_size * 2 // 3])
    res = colorize_video(cut, tmp_path / "o.mp4", ConstColorizer())
    assert 0 < res.frames < 24  # what is there gets colorized
    mp4 = clip("t.mp4", n=24)  # index (moov) at the end: nothing can be read
    cut4 = tmp_path / "cut.mp4"
    cut4.write_bytes(mp4.read_bytes()[: mp4.stat().st_size // 2])
    with pytest.raises(ValueError, match="cannot read"):
        colorize_video(cut4, tmp_path / "o4.mp4", ConstColorizer())
    assert not (tmp_path / "o4.mp4").exists()


def test_path_errors(clip, tmp_path):
    src = clip("in.mp4", n=3)
    with pytest.raises(FileNotFoundError, match="input not found"):
        colorize_video(tmp_path / "nope.mp4", tmp_path / "o.mp4", ConstColorizer())
    with pytest.raises(ValueError, match="same file"):
        colorize_video(src, src, ConstColorizer(), overwrite=True)
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="--overwrite"):
        colorize_video(src, existing, ConstColorizer())
    assert existing.read_bytes() == b"keep me"
    with pytest.raises(FileNotFoundError, match="output folder"):
        colorize_video(src, tmp_path / "no" / "dir" / "o.mp4", ConstColorizer())
    colorize_video(src, existing, ConstColorizer(), overwrite=True)
    assert len(decode_planes(existing)) == 3


def test_interrupt_leaves_no_partial_file(clip, tmp_path):
    src = clip("in.mp4", n=20)

    class Boom(ConstColorizer):
        def __call__(self, gray):
            if self.calls == 2:
                raise KeyboardInterrupt
            return super().__call__(gray)

    before = threading.active_count()
    with pytest.raises(KeyboardInterrupt):
        colorize_video(src, tmp_path / "o.mp4", Boom(), batch_size=3)
    assert list(p.name for p in tmp_path.iterdir()) == ["in.mp4"]
    assert threading.active_count() <= before + 1  # decode/encode threads are gone


needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg program")


@needs_ffmpeg
def test_external_ffmpeg_encoder(clip, tmp_path):
    src = clip("in.mkv", n=8, audio_tracks=2, subtitle=True)
    dst = tmp_path / "ff.mkv"
    res = colorize_video(src, dst, ConstColorizer(), encoder="ffmpeg", crf=0)
    assert res.frames == 8
    a, b = side_packets(src), side_packets(dst)
    assert sorted(b) == [0, 1, 2]
    for k in a:  # payloads bit-exact; ffmpeg may shift all timestamps by one constant
        assert [p for p, _ in a[k]] == [p for p, _ in b[k]]
    shift = frame_times(dst)[0] - frame_times(src)[0]
    assert b[0][0][1] - a[0][0][1] == pytest.approx(shift, abs=2e-3)
    for (ys, _, _), (yd, _, vd) in zip(decode_planes(src), decode_planes(dst)):
        assert luma_psnr(ys, yd) >= 45.0 and vd.mean() > 140
    assert not list(tmp_path.glob("*.log"))


def _tags(path) -> tuple[int, int, int]:
    with av.open(str(path)) as c:
        cc = c.streams.video[0].codec_context
        return int(cc.colorspace), int(cc.color_primaries), int(cc.color_trc)


@pytest.mark.parametrize("encoder", ["pyav", pytest.param("ffmpeg", marks=needs_ffmpeg)])
def test_chroma_made_with_the_sources_matrix_and_tagged_so(clip, tmp_path, encoder):
    # A BT.709-tagged source (HD video usually is) gets BT.709 chroma, tagged BT.709, so a
    # player converts it back with the matrix it was made with; untagged video gets BT.601,
    # tagged smpte170m instead of leaving players to guess (many guess BT.709 for HD).
    from animecolor import frames as F

    for tag, matrix, want in [(1, "bt709", (1, 1, 1)), (None, "bt601", (6, 2, 2))]:
        src = clip(f"in{tag}.mkv", n=4, color_tag=tag)
        dst = tmp_path / f"out{tag}_{encoder}.mkv"
        col = ConstColorizer()
        colorize_video(src, dst, col, encoder=encoder, crf=0)
        assert _tags(dst) == want
        for (ys, _, _), (_, ud, vd) in zip(decode_planes(src), decode_planes(dst)):
            h, w = col.working_size(ys.shape[1], ys.shape[0])[::-1]
            ab = col(np.zeros((1, h, w), np.uint8))[0]
            u, v = F.chroma_for(ys, ab, "420", matrix=matrix)
            u_other, _ = F.chroma_for(ys, ab, "420", matrix="bt601" if matrix == "bt709" else "bt709")
            assert np.abs(ud.astype(int) - u.astype(int)).max() <= 1
            assert np.abs(vd.astype(int) - v.astype(int)).max() <= 1
            assert np.abs(u_other.astype(int) - u.astype(int)).mean() > 2  # the matrices do differ here


def test_stage_times_account_for_each_thread(clip, tmp_path):
    """EpisodeResult.stages: each thread's stages add up to about the run's wall time, and a slow stage shows."""
    import time

    class SlowColorizer(ConstColorizer):
        def __call__(self, gray):
            time.sleep(0.05)
            return super().__call__(gray)

    src = clip("in.mp4", n=16, w=96, h=64)
    res = colorize_video(src, tmp_path / "out.mp4", SlowColorizer(), batch_size=4)
    st = res.stages
    assert st["main: model"] >= 4 * 0.05  # 4 batches
    assert st["main: model"] > st["main: temporal smoother"] and st["main: model"] > st["encode: merge"]
    for thread in ("decode", "main", "encode"):  # the decode thread may finish early (the queue holds the rest)
        total = sum(v for k, v in st.items() if k.startswith(thread + ":"))
        assert (0.0 if thread == "decode" else 0.5 * res.seconds) < total <= res.seconds * 1.05, (thread, total)
    assert st["encode: wait for model"] > 0.1  # the encoder waits for the slow model


def test_luma_psnr():
    a = np.full((8, 8), 100, np.uint8)
    assert luma_psnr(a, a.copy()) == float("inf")
    b = a.copy()
    b[0, 0] = 110  # MSE 100/64
    assert luma_psnr(a, b) == pytest.approx(10 * np.log10(255**2 / (100 / 64)))
