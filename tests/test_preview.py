"""animecolor preview: seeking, panels, still images, contact sheets, errors."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from animecolor import preview as P
from animecolor.cli import main
from animecolor.colorize import working_size
from animecolor.preview import parse_time, pick_times, preview_frames, render_sheet, sheet_layout
from animecolor.temporal import TemporalSmoother

W, H, FPS = 128, 96, 25
BITS = 8  # frame number drawn as 8 black/white 16x16 blocks along the top


class ConstAB:
    """Predicts one a/b everywhere, or one derived from the frame's mean (``varying``)."""

    output_stride = 2
    name = "const"

    def __init__(self, ab=(30.0, 20.0), varying: bool = False):
        self.ab = np.array(ab, np.float32)
        self.varying = varying

    def working_size(self, width, height):
        return working_size(width, height, 64)

    def __call__(self, gray):
        n, h, w = gray.shape
        out = np.empty((n, h // 2, w // 2, 2), np.float32)
        for i in range(n):
            out[i] = (float(gray[i].mean()) - 100.0, 0.0) if self.varying else self.ab
        return out


def frame_image(i: int, color: bool = False, level: int = 90) -> np.ndarray:
    img = np.full((H, W, 3), level, np.uint8)
    for b in range(BITS):
        img[0:16, b * 16 : (b + 1) * 16] = 255 if (i >> b) & 1 else 0
    cv2.putText(img, str(i), (30, 70), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (230, 230, 230), 2)
    if color:
        img[76:, :64] = (200, 40, 40)
        img[76:, 64:] = (40, 60, 200)
    return img


def read_number(gray_rgb: np.ndarray) -> int:
    g = gray_rgb[..., 0] if gray_rgb.ndim == 3 else gray_rgb
    blocks = [b for b in range(BITS) if (b + 1) * 16 <= g.shape[1]]
    return sum(1 << b for b in blocks if g[2:14, b * 16 + 2 : b * 16 + 14].mean() > 128)


def make_clip(path: Path, n: int = 60, color: bool = False, scenes: int = 1, gop: int = 10) -> Path:
    """H.264 clip whose frame ``i`` shows ``i`` (digits and bit blocks); ``scenes`` background levels."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        vs.codec_context.gop_size = gop
        vs.options = {"preset": "ultrafast", "crf": "12", "keyint": str(gop), "scenecut": "0"}
        vs.codec_context.time_base = Fraction(1, FPS)
        for i in range(n):
            level = 40 + 160 * ((i * scenes) // n) // max(1, scenes - 1) if scenes > 1 else 90
            frame = av.VideoFrame.from_ndarray(frame_image(i, color, level), format="rgb24").reformat(format="yuv420p")
            frame.pts = i
            frame.time_base = Fraction(1, FPS)
            for pkt in vs.encode(frame):
                out.mux(pkt)
        for pkt in vs.encode(None):
            out.mux(pkt)
    return path


@pytest.fixture(scope="module")
def gray_clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clips") / "gray.mp4")


@pytest.fixture(scope="module")
def color_clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clips") / "color.mp4", n=30, color=True)


# ---------------------------------------------------------------- times
@pytest.mark.parametrize(
    "text, seconds, frame",
    [("00:03:12.5", 192.5, None), ("3:12", 192.0, None), ("192.5", 192.5, None), ("0", 0.0, None), ("#123", None, 123), ("1:00:00", 3600.0, None)],
)
def test_parse_time(text, seconds, frame):
    at = parse_time(text)
    assert (at.seconds, at.frame) == (seconds, frame)


@pytest.mark.parametrize("text", ["", "abc", "1:2:3:4", "#", "#12a", "-5", "00:61", "1:75:00", "nan", "12s"])
def test_parse_time_rejects_bad_syntax(text):
    with pytest.raises(ValueError, match="HH:MM:SS"):
        parse_time(text)


# ---------------------------------------------------------------- seeking
@pytest.mark.parametrize(
    "at, expected", [("0", 0), ("1.0", 25), ("#37", 37), ("00:00:01.52", 38), ("0:02.36", 59), ("1.99", 50), ("0.41", 10)]
)
def test_seek_lands_on_the_right_frame(gray_clip, at, expected):
    (p,) = preview_frames(gray_clip, [at], ConstAB(), temporal="none")
    assert read_number(p.gray) == expected
    assert p.frame_index == expected
    assert p.time == pytest.approx(expected / FPS, abs=1e-6)


def test_seek_does_not_decode_from_the_start(gray_clip, monkeypatch):
    decoded = []
    orig = P._Video._frames

    def counting(self):
        for f in orig(self):
            decoded.append(f.pts)
            yield f

    monkeypatch.setattr(P._Video, "_frames", counting)
    (p,) = preview_frames(gray_clip, ["#55"], ConstAB(), temporal="none")
    assert read_number(p.gray) == 55
    assert len(decoded) <= 12 and min(decoded) >= 40  # from the keyframe at 50, not from 0


def test_several_times_keep_their_order(gray_clip):
    ps = preview_frames(gray_clip, ["#40", "0.2", "#12"], ConstAB(), temporal="none")
    assert [read_number(p.gray) for p in ps] == [40, 5, 12]


@pytest.mark.parametrize("at", ["3.0", "#500", "00:10:00"])
def test_time_past_the_end_is_a_clear_error(gray_clip, at):
    with pytest.raises(ValueError, match="past the end of gray.mp4"):
        preview_frames(gray_clip, [at], ConstAB(), temporal="none")


# ---------------------------------------------------------------- panels
def crop(sheet: np.ndarray, box) -> np.ndarray:
    x, y, w, h = box
    return sheet[y : y + h, x : x + w]


def test_gray_footage_gives_two_panels_in_order(gray_clip):
    (p,) = preview_frames(gray_clip, ["#7"], ConstAB(), temporal="none")
    assert not p.is_color and p.ciede2000 is None
    sheet = render_sheet([p])
    (boxes,) = sheet_layout([p]).boxes
    assert len(boxes) == 2
    assert [b[2:] for b in boxes] == [(W, H), (W, H)]
    assert boxes[0][0] < boxes[1][0]
    assert np.array_equal(crop(sheet, boxes[0]), p.gray)
    assert np.array_equal(crop(sheet, boxes[1]), p.colorized)
    g = p.gray.astype(int)
    assert np.all(g[..., 0] == g[..., 1]) and np.all(g[..., 1] == g[..., 2])
    c = p.colorized.astype(int)
    assert np.abs(c[..., 0] - c[..., 2]).mean() > 10  # a=30, b=20: reddish


def test_color_footage_adds_the_original_with_ciede2000(color_clip):
    (p,) = preview_frames(color_clip, ["#3"], ConstAB(), temporal="none")
    assert p.is_color and p.ciede2000 is not None and p.ciede2000 > 1.0
    sheet = render_sheet([p])
    (boxes,) = sheet_layout([p]).boxes
    assert len(boxes) == 3 and boxes[0][0] < boxes[1][0] < boxes[2][0]
    assert np.array_equal(crop(sheet, boxes[2]), p.original)
    assert p.original[85, 20, 0] > 150 and p.original[85, 100, 2] > 150  # red | blue bars
    assert read_number(p.gray) == 3
    assert sheet.shape == (2 * P.GAP + P.LABEL_HEIGHT + H, 4 * P.GAP + 3 * W, 3)
    # a perfect colorization would score ~0: the figure measures the colorizer
    (q,) = preview_frames(color_clip, ["#3"], ConstAB((0.0, 0.0)), temporal="none")
    assert q.ciede2000 != pytest.approx(p.ciede2000)


def test_contact_sheet_rows_and_panel_height(gray_clip):
    ps = preview_frames(gray_clip, ["#1", "#2", "#3"], ConstAB(), temporal="none")
    layout = sheet_layout(ps, panel_height=48)
    assert len(layout.boxes) == 3
    assert all(b[2:] == (64, 48) for row in layout.boxes for b in row)
    assert layout.boxes[0][0][1] < layout.boxes[1][0][1] < layout.boxes[2][0][1]
    assert render_sheet(ps, panel_height=48).shape[:2] == layout.size


def test_colorized_only_single_frame_is_the_plain_frame(gray_clip):
    (p,) = preview_frames(gray_clip, ["#9"], ConstAB(), temporal="none")
    out = render_sheet([p], colorized_only=True)
    assert np.array_equal(out, p.colorized)


# ---------------------------------------------------------------- contact sheets
@pytest.mark.parametrize("gop", [10, 250])  # keyframe scan | one keyframe: full decode
def test_pick_times_one_frame_per_scene(tmp_path, gop, monkeypatch):
    clip = make_clip(tmp_path / "scenes.mp4", n=60, scenes=3, gop=gop)
    calls = []
    orig = P._scenes_sequential
    monkeypatch.setattr(P, "_scenes_sequential", lambda v: calls.append(1) or orig(v))
    times = pick_times(clip, 3)
    assert len(times) == 3
    frames = sorted(round(t * FPS) for t in times)
    assert [f // 20 for f in frames] == [0, 1, 2]
    more = sorted(round(t * FPS) // 20 for t in pick_times(clip, 5))
    assert set(more) == {0, 1, 2} and len(more) == 5
    assert bool(calls) == (gop > 60)


def test_pick_times_on_one_scene_spreads_evenly(gray_clip):
    frames = [round(t * FPS) for t in pick_times(gray_clip, 4)]
    assert frames == sorted(frames) and len(set(frames)) == 4
    assert frames[0] < 15 and frames[-1] > 45


# ---------------------------------------------------------------- temporal context
def test_context_runs_the_smoother_over_earlier_frames(tmp_path):
    clip = make_clip(tmp_path / "scenes.mp4", n=60, scenes=3)  # brightness jumps 40 -> 120 at frame 20
    col = ConstAB(varying=True)
    (plain,) = preview_frames(clip, ["#22"], col, temporal="ema")
    (ctx,) = preview_frames(clip, ["#22"], col, temporal="ema", context=4)
    (early,) = preview_frames(clip, ["#2"], col, temporal="ema", context=4)
    assert (plain.context, ctx.context, early.context) == (0, 4, 2)
    assert read_number(ctx.gray) == 22
    assert np.array_equal(plain.gray, ctx.gray)
    (ctx_none,) = preview_frames(clip, ["#22"], col, temporal="none", context=4)
    assert np.array_equal(ctx_none.colorized, plain.colorized)  # no smoother: context changes nothing


def test_context_changes_a_smoothed_frame(gray_clip):
    col = ConstAB(varying=True)
    (plain,) = preview_frames(gray_clip, ["#31"], col, temporal="ema")
    (ctx,) = preview_frames(gray_clip, ["#31"], col, temporal="ema", context=3)
    assert not np.array_equal(plain.colorized, ctx.colorized)


# ---------------------------------------------------------------- still images
def test_still_images(tmp_path):
    gray = np.repeat(frame_image(5)[..., :1], 3, axis=2)[:47, :65]  # odd size
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    cv2.imwrite(str(tmp_path / "c.jpg"), frame_image(5, color=True)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    (g,) = preview_frames(tmp_path / "g.png", [], ConstAB())
    assert g.time is None and not g.is_color and g.colorized.shape == (47, 65, 3)
    assert read_number(g.gray) == 5 & 0b1111  # the crop keeps 4 of the 8 bit blocks
    (c,) = preview_frames(tmp_path / "c.jpg", [], ConstAB())
    assert c.is_color and c.ciede2000 > 1.0 and c.colorized.shape == (H, W, 3)
    with pytest.raises(ValueError, match="still image"):
        preview_frames(tmp_path / "g.png", ["1.0"], ConstAB())


# ---------------------------------------------------------------- CLI
def test_cli_at_writes_png_with_the_model(gray_clip, tiny_random_model, tmp_path, capsys):
    out = tmp_path / "p.png"
    rc = main(["preview", str(gray_clip), "--at", "1.0", "--at", "#3", "-o", str(out), "--weights", str(tiny_random_model), "--device", "cpu"])
    assert rc == 0
    img = cv2.imread(str(out))[..., ::-1]
    assert img.shape == (3 * P.GAP + 2 * (P.LABEL_HEIGHT + H), 3 * P.GAP + 2 * W, 3)
    assert "wrote" in capsys.readouterr().out
    # refuses to overwrite
    rc = main(["preview", str(gray_clip), "--at", "1.0", "-o", str(out), "--weights", str(tiny_random_model)])
    assert rc == 1 and "--overwrite" in capsys.readouterr().err
    rc = main(["preview", str(gray_clip), "--at", "1.0", "-o", str(out), "--weights", str(tiny_random_model), "--overwrite", "--colorized-only"])
    assert rc == 0 and cv2.imread(str(out)).shape == (H, W, 3)


def test_cli_contact_sheet_and_still_image(gray_clip, tiny_random_model, tmp_path):
    out = tmp_path / "sheet.png"
    assert main(["preview", str(gray_clip), "--frames", "3", "--panel-height", "48", "-o", str(out), "--weights", str(tiny_random_model)]) == 0
    assert cv2.imread(str(out)).shape[0] == 4 * P.GAP + 3 * (P.LABEL_HEIGHT + 48)
    still = tmp_path / "s.png"
    cv2.imwrite(str(still), frame_image(1, color=True))
    out2 = tmp_path / "s_out.png"
    assert main(["preview", str(still), "--colorized-only", "-o", str(out2), "--weights", str(tiny_random_model)]) == 0
    assert cv2.imread(str(out2)).shape == (H, W, 3)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("animecolor: error: ") and err.count("\n") == 1
    return err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--at", "1:2:3:4"], "bad time"),
        (["--at", "9.0"], "past the end"),
        (["--at", "1", "--frames", "2"], "not both"),
        (["--frames", "0"], "--frames must be >= 1"),
    ],
)
def test_cli_errors_are_one_line(gray_clip, tiny_random_model, tmp_path, capsys, args, message):
    rc = main(["preview", str(gray_clip), *args, "-o", str(tmp_path / "x.png"), "--weights", str(tiny_random_model)])
    assert rc == 1
    assert message in one_line_error(capsys)
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("name", ["junk.mp4", "junk.png", "missing.mkv"])
def test_cli_unreadable_input(tmp_path, tiny_random_model, capsys, name):
    src = tmp_path / name
    if not name.startswith("missing"):
        src.write_bytes(b"this is not a video" * 50)
    rc = main(["preview", str(src), "--at", "0", "-o", str(tmp_path / "x.png"), "--weights", str(tiny_random_model)] if name.endswith(".mp4") else ["preview", str(src), "-o", str(tmp_path / "x.png"), "--weights", str(tiny_random_model)])
    assert rc == 1
    err = one_line_error(capsys)
    assert ("cannot read" in err) or ("not found" in err)


class DelayTwo(TemporalSmoother):
    """Passes chroma through unchanged but holds back two frames (like a look-ahead smoother)."""

    name = "delay2"
    delay = 2

    def __init__(self):
        self.reset()

    def reset(self):
        self.held = []
        self.seen = 0

    def process(self, gray, ab):
        self.seen += len(ab)
        self.held.extend(ab)
        out, self.held = self.held[: max(0, len(self.held) - 2)], self.held[max(0, len(self.held) - 2) :]
        return np.array(out, np.float32).reshape((-1,) + ab.shape[1:])

    def flush(self):
        out, self.held = self.held, []
        return np.array(out, np.float32)


@pytest.mark.parametrize("at, seen", [("#30", 3 + 1 + 2), ("#59", 3 + 1)])
def test_look_ahead_smoother_gets_the_frame_it_was_asked_for(gray_clip, at, seen):
    col = ConstAB(varying=True)
    (plain,) = preview_frames(gray_clip, [at], col, temporal="none")
    sm = DelayTwo()
    (delayed,) = preview_frames(gray_clip, [at], col, temporal=sm, context=3)
    assert sm.seen == seen  # the look-ahead frames were decoded after the target (none past the end)
    assert np.array_equal(delayed.colorized, plain.colorized)
