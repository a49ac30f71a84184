"""Reference stills and colored keyframes (animecolor.reference): method, plumbing, errors."""
from __future__ import annotations

import json
import os
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from animecolor import frames as fr
from animecolor import metrics
from animecolor import reference as R
from animecolor.cli import main
from animecolor.colorize import apply_colorizer, load_colorizer

from conftest import ConstColorizer, clip_frame, decode_planes, make_clip, write_rgb_clip


@pytest.fixture(scope="module")
def base():
    """The shipped weights (the method matches their backbone features)."""
    return load_colorizer(None, "cpu")


def _colorize(col, rgbs, times=None):
    """Colorize the luma of color frames with ``col``; the merged RGB frames."""
    H, W = rgbs[0].shape[:2]
    ys = [fr.rgb_to_y(r) for r in rgbs]
    gray = np.stack([fr.model_input(y, col.working_size(W, H)) for y in ys])
    ab = apply_colorizer(col, gray, times)
    out = []
    for y, a in zip(ys, ab):
        u, v = fr.chroma_for(y, a, "444")
        out.append(fr.yuv_to_rgb(y, u, v))
    return out


def _de(outs, gts):
    return float(np.mean([metrics.ciede2000(o, g) for o, g in zip(outs, gts)]))


def test_keyframe_colors_carry_to_moving_frames(base):
    # Frames 1..9 of the synthetic cartoon (the disk moves) from frame 0 as the colored keyframe:
    # far closer to the truth than gray, than the model alone, and than copying the keyframe's chroma
    W, H = 192, 128
    gts = [clip_frame(i, W, H, gray=False) for i in range(10)]
    kf = R.KeyframeColorizer(base, [R.Keyframe(gts[0], 0.0)])
    times = [i / 12 for i in range(1, 10)]
    de_kf = _de(_colorize(kf, gts[1:], times), gts[1:])
    de_gray = _de([np.repeat(cv2.cvtColor(g, cv2.COLOR_RGB2GRAY)[..., None], 3, 2) for g in gts[1:]], gts[1:])
    de_model = _de(_colorize(base, gts[1:]), gts[1:])
    copy = R.KeyframeColorizer(base, [R.Keyframe(gts[0], 0.0)], method="copy")
    de_copy = _de(_colorize(copy, gts[1:], times), gts[1:])
    assert de_kf < 0.35 * de_gray
    assert de_kf < 0.5 * de_model
    assert de_kf < de_copy


def test_reference_stills_give_their_palette(base):
    # A reference of the same cartoon, another moment: its colors, where the model guesses
    W, H = 192, 128
    refs = [clip_frame(3, W, H, gray=False)]
    gts = [clip_frame(i, W, H, gray=False) for i in (6, 8)]
    ref = R.ReferenceColorizer.from_images(base, refs)
    assert _de(_colorize(ref, gts), gts) < 0.5 * _de(_colorize(base, gts), gts)
    lut = ref.bank.lut()
    assert lut.shape == (256, 2) and np.isfinite(lut).all()


def test_keyframe_stays_in_its_shot(base):
    # shot 1 = [0, 2) s holds the keyframe; frames of shot 2 get the fallback's colors exactly
    W, H = 128, 96
    fallback = ConstColorizer(7.0, -9.0)
    kf = R.KeyframeColorizer(base, [R.Keyframe(clip_frame(0, W, H, gray=False), 0.5)], cuts=[2.0], fallback=fallback)
    assert kf.shot_of(1.99) == 0 and kf.shot_of(2.0) == 1
    gray = np.zeros((3,) + base.working_size(W, H)[::-1], np.uint8) + 100
    ab = apply_colorizer(kf, gray, [1.0, 2.5, 3.0])
    assert np.allclose(ab[1:], [7.0, -9.0])
    assert not np.allclose(ab[0], [7.0, -9.0])
    with pytest.raises(ValueError, match="time"):
        apply_colorizer(kf, gray, None)


def test_shots_without_a_keyframe_take_the_keyframes_palette(base):
    # no fallback given: a shot without a keyframe is colored with the keyframes as reference stills,
    # far closer to the truth there than the base model (the synthetic cartoon, a later moment, after a cut)
    W, H = 192, 128
    gts = [clip_frame(i, W, H, gray=False) for i in range(12)]
    kf = R.KeyframeColorizer(base, [R.Keyframe(gts[0], 0.0)], cuts=[0.2])
    assert isinstance(kf.fallback, R.ReferenceColorizer)
    times = [0.25 + i / 12 for i in range(6)]
    de_kf = _de(_colorize(kf, gts[6:], times), gts[6:])
    de_model = _de(_colorize(base, gts[6:]), gts[6:])
    assert de_kf < 0.5 * de_model


def test_flow_propagation_follows_frames_in_order_only(base):
    # frames given out of order (preview, a segment's start) are followed from the keyframe itself:
    # a frame after unrelated later frames gets what it gets alone
    W, H = 192, 128
    size = base.working_size(W, H)
    gray = np.stack([fr.model_input(fr.rgb_to_y(clip_frame(i, W, H, gray=False)), size) for i in range(6)])

    def kf_col(propagate=R.PROPAGATE_PARAMS):
        return R.KeyframeColorizer(base, [R.Keyframe(clip_frame(0, W, H, gray=False), 0.0)], propagate=propagate)

    alone = apply_colorizer(kf_col(), gray[2:3], [2 / 12])
    col = kf_col()
    apply_colorizer(col, gray[3:6], [3 / 12, 4 / 12, 5 / 12])
    assert np.allclose(apply_colorizer(col, gray[2:3], [2 / 12]), alone, atol=1e-4)
    assert not np.allclose(alone, apply_colorizer(kf_col(None), gray[2:3], [2 / 12]), atol=0.5)  # propagation did something


def test_plain_colorizers_are_called_without_times():
    col = ConstColorizer()
    out = apply_colorizer(col, np.zeros((2, 32, 32), np.uint8), [0.0, 0.1])
    assert out.shape == (2, 16, 16, 2) and col.calls == 1


def test_transfer_memory_is_chunked(base):
    # a chunk smaller than the target grid gives the same answer as one block
    W, H = 192, 128
    gts = [clip_frame(i, W, H, gray=False) for i in (1, 4)]
    bank = R.encode_references(base, [clip_frame(0, W, H, gray=False)])
    gray = np.stack([fr.model_input(fr.rgb_to_y(g), base.working_size(W, H)) for g in gts])
    feats, _ = R._Features(base)(gray)
    import torch

    g_ab = torch.from_numpy(np.stack([fr.ab_gray_size(g, (gray.shape[1] // 2, gray.shape[2] // 2)) for g in gray]))
    a, _ = R.transfer(bank, feats, g_ab, R.MatchParams(chunk=7))
    b, _ = R.transfer(bank, feats, g_ab, R.MatchParams(chunk=100000))
    assert torch.allclose(a, b, atol=1e-4)


def test_bank_is_capped(base):
    rng = np.random.default_rng(0)
    refs = [rng.integers(0, 255, (128, 192, 3), dtype=np.uint8) for _ in range(3)]
    bank = R.encode_references(base, refs, R.MatchParams(max_positions=100))
    assert bank.positions == 100


def test_sample_references_spreads_and_checks(tmp_path):
    folder = tmp_path / "refs"
    folder.mkdir()
    for i in range(5):
        cv2.imwrite(str(folder / f"r{i}.png"), clip_frame(2 * i, 160, 120, gray=False)[..., ::-1])
    got = R.sample_references([folder], 3)
    assert len(got) == 3 and all(r.dtype == np.uint8 and r.shape[2] == 3 for r, _ in got)
    assert len({n for _, n in got}) == 3
    assert len(R.sample_references([folder], 50)) == 5
    vid = write_rgb_clip(tmp_path / "ref.mkv", [clip_frame(i, 160, 120, gray=False) for i in range(24)])
    assert 1 <= len(R.sample_references([vid], 4)) <= 4
    gray_png = tmp_path / "gray.png"
    cv2.imwrite(str(gray_png), clip_frame(0, 160, 120, gray=True))
    with pytest.raises(R.ReferenceError, match="gray"):
        R.sample_references([gray_png], 4)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(R.ReferenceError, match="not an image or video"):
        R.sample_references([text], 4)
    with pytest.raises(R.ReferenceError, match="not found"):
        R.sample_references([tmp_path / "missing.png"], 4)


def _two_shot_clip(path, n=12, w=128, h=96):
    """``n`` frames of the cartoon, then ``n`` frames of a different picture (a hard cut at n/12 s)."""
    other = [np.roll(clip_frame(i, w, h, gray=False)[::-1], w // 3, axis=1)[..., ::-1] // 2 + 60 for i in range(n)]
    return write_rgb_clip(path, [clip_frame(i, w, h, gray=False) for i in range(n)] + other)


def test_scan_finds_cut_and_keyframe_frames(tmp_path):
    src = _two_shot_clip(tmp_path / "two.mkv")
    scan = R.scan_shots(src, [0.0, 1.5, 5.0])
    assert [round(c, 2) for c in scan.cuts] == [1.0]
    assert scan.frames == 24 and set(scan.keyframe_luma) == {0, 1}
    kf = clip_frame(0, 128, 96, gray=False)
    assert R.luma_match(kf, scan.keyframe_luma[0]) > 0.95
    assert R.luma_match(kf, scan.keyframe_luma[1]) < R.MIN_KEYFRAME_MATCH


def test_parse_keyframe():
    assert R.parse_keyframe("a@b.png@00:01:02.5") == (R.Path("a@b.png"), "00:01:02.5")
    assert R.parse_keyframe("k.png@3")[1] == "3"
    for bad in ("k.png", "@3", "k.png@", "k.png@#12", "k.png@soon"):
        with pytest.raises(R.ReferenceError):
            R.parse_keyframe(bad)


def _episode(args, capsys):
    rc = main(["episode", *map(str, args), "-q", "--device", "cpu"])
    return rc, capsys.readouterr().err


def test_cli_episode_with_keyframe_and_reference(tmp_path, capsys):
    src = _two_shot_clip(tmp_path / "two.mkv")
    kf = tmp_path / "kf.png"
    cv2.imwrite(str(kf), cv2.resize(clip_frame(0, 128, 96, gray=False), (256, 192))[..., ::-1])  # other size: scaled
    out = tmp_path / "out.mkv"
    rc, err = _episode([src, out, "--keyframe", f"{kf}@0.5", "--reference", kf, "--reference-adapt", "3"], capsys)
    assert rc == 0 and out.is_file(), err
    assert len(list(Path(os.environ["XDG_CACHE_HOME"], "animecolor", "adapted").glob("*.safetensors"))) >= 1
    planes = decode_planes(out)
    assert len(planes) == 24
    # a keyframe at the wrong time is reported, and still used
    out2 = tmp_path / "out2.mkv"
    rc = main(["episode", str(src), str(out2), "--keyframe", f"{kf}@1.5", "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 0 and "does not look like the frame at 1.5" in err


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda d: ["--keyframe", f"{d / 'kf.png'}@9"], "past the end"),
        (lambda d: ["--keyframe", f"{d / 'gray.png'}@0"], "gray"),
        (lambda d: ["--keyframe", f"{d / 'missing.png'}@0"], "not found"),
        (lambda d: ["--keyframe", f"{d / 'notes.png'}@0"], "cannot read keyframe"),
        (lambda d: ["--keyframe", f"{d / 'kf.png'}"], "IMAGE@TIME"),
        (lambda d: ["--reference", d / "gray.png"], "gray"),
        (lambda d: ["--reference", d / "notes.mp4"], "not an image or video"),
        (lambda d: ["--reference", d / "kf.png", "--reference-frames", "0"], "--reference-frames"),
        (lambda d: ["--reference", d / "kf.png", "--reference-adapt", "-1"], "--reference-adapt"),
    ],
)
def test_cli_guide_errors_are_one_line(tmp_path, capsys, make_args, message):
    src = make_clip(tmp_path / "in.mp4", n=6)
    cv2.imwrite(str(tmp_path / "kf.png"), clip_frame(0, 96, 64, gray=False)[..., ::-1])
    cv2.imwrite(str(tmp_path / "gray.png"), clip_frame(0, 96, 64, gray=True))
    (tmp_path / "notes.png").write_text("text")
    (tmp_path / "notes.mp4").write_text("text")
    out = tmp_path / "out.mp4"
    rc, err = _episode([src, out, *make_args(tmp_path)], capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 1 and len(lines) == 1 and lines[0].startswith("animecolor: error:") and message in lines[0], err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_cli_evaluate_keyframe_first_and_reference(tmp_path):
    src = write_rgb_clip(tmp_path / "color.mkv", [clip_frame(i, 128, 96, gray=False) for i in range(8)])
    ref = tmp_path / "ref.png"
    cv2.imwrite(str(ref), clip_frame(5, 128, 96, gray=False)[..., ::-1])
    rep = tmp_path / "r.json"
    rc = main(["evaluate", str(src), "--keyframe-first", "--reference", str(ref), "--reference-frames", "1", "2",
               "--reference-adapt", "0", "2", "--quiet", "--json", str(rep), "--device", "cpu"])
    assert rc == 0
    ov = json.loads(rep.read_text())["overall"]
    cols = ov["colorizers"]
    assert {"keyframe", "copy-keyframe", "reference-1-adapt0", "reference-2-adapt2", "lut-references-1", "default",
            "gray"} <= set(cols)
    assert ov["frames"] == 7  # the keyframe itself is not scored
    assert cols["keyframe"]["ciede2000"] < cols["gray"]["ciede2000"] / 3


def test_cli_preview_with_keyframe(tmp_path, capsys):
    src = _two_shot_clip(tmp_path / "two.mkv")
    kf = tmp_path / "kf.png"
    cv2.imwrite(str(kf), clip_frame(0, 128, 96, gray=False)[..., ::-1])
    out = tmp_path / "p.png"
    rc = main(["preview", str(src), "--at", "0.5", "--keyframe", f"{kf}@0", "-o", str(out), "--device", "cpu"])
    assert rc == 0 and out.is_file()
    assert "CIEDE2000" in capsys.readouterr().out
    rc = main(["preview", str(kf), "--keyframe", f"{kf}@0", "-o", str(tmp_path / "q.png"), "--device", "cpu"])
    assert rc == 1 and "needs a video" in capsys.readouterr().err


def test_keyframe_memory_option_carries_colors(base):
    # memory: the previous colored frame joins the bank (off by default; docs/reference.md)
    W, H = 192, 128
    gts = [clip_frame(i, W, H, gray=False) for i in range(8)]
    params = R.MatchParams(prior=0.01, gate=(0.4, 0.7), memory=0.05)
    kf = R.KeyframeColorizer(base, [R.Keyframe(gts[0], 0.0)], params=params)
    times = [i / 12 for i in range(1, 8)]
    outs = _colorize(kf, gts[1:4], times[:3]) + _colorize(kf, gts[4:], times[3:])  # two batches: memory carries over
    gray = [np.repeat(cv2.cvtColor(g, cv2.COLOR_RGB2GRAY)[..., None], 3, 2) for g in gts[1:]]
    assert _de(outs, gts[1:]) < 0.35 * _de(gray, gts[1:])
    assert kf._memory is not None and kf._memory[1][0].positions > 0
    with pytest.raises(ValueError, match="fallback"):
        R.MatchParams(fallback="blue")


def test_adaptation_learns_the_references_palette(base):
    # Fine-tuning the shipped model on one color frame of the cartoon brings its own colors on
    # other frames of it much closer to the truth (the adaptation behind --reference)
    from animecolor.adapt import adapt_to_references
    from animecolor.colorize import DEFAULT_WEIGHTS

    W, H = 192, 128
    gts = [clip_frame(i, W, H, gray=False) for i in (6, 8)]
    seen = []
    path = adapt_to_references(DEFAULT_WEIGHTS, [clip_frame(3, W, H, gray=False)], 40, progress=lambda i, n: seen.append((i, n)))
    assert seen[0] == (1, 40) and seen[-1] == (40, 40)
    adapted = load_colorizer(path, "cpu", runtime="torch")
    assert adapted.cfg.temperature == 1.0
    assert _de(_colorize(adapted, gts), gts) < 0.6 * _de(_colorize(base, gts), gts)
    seen.clear()  # the same frames and settings again: the cached result, no training
    assert adapt_to_references(DEFAULT_WEIGHTS, [clip_frame(3, W, H, gray=False)], 40, progress=lambda i, n: seen.append(i)) == path
    assert seen == []


def test_adapted_reference_mixes_model_and_transfer(tiny_random_model):
    tiny = load_colorizer(tiny_random_model, "cpu", runtime="torch")
    refs = [clip_frame(3, 128, 96, gray=False)]
    col = R.reference_colorizer(tiny, refs, adapt_steps=2, weights=tiny_random_model)
    assert col.params.model_mix == R.ADAPTED_REFERENCE_PARAMS.model_mix > 0 and "adapted" in col.name
    gray = np.stack([fr.model_input(fr.rgb_to_y(clip_frame(i, 128, 96, gray=False)), col.working_size(128, 96)) for i in (5, 7)])
    alone = R.ReferenceColorizer(col.base, col.bank, R.REFERENCE_PARAMS)  # the same adapted model, transfer only
    m = col.params.model_mix
    np.testing.assert_allclose(col(gray), (1 - m) * alone(gray) + m * col.base(gray), atol=1e-3)
    assert R.reference_colorizer(tiny, refs, adapt_steps=0).params.model_mix == 0
    with pytest.raises(ValueError, match="too small"):
        R.reference_colorizer(tiny, [clip_frame(3, 40, 20, gray=False)], adapt_steps=1, weights=tiny_random_model)


def test_keyframes_with_an_adapted_model(tiny_random_model):
    """KeyframeColorizer(adapt_steps=N) (tried on validation, off by default): the model is fine-tuned once on
    all the keyframes, on first use, and that model (not the base) gives the matching and the weak-match colors."""
    tiny = load_colorizer(tiny_random_model, "cpu", runtime="torch")
    kfs = [R.Keyframe(clip_frame(0, 128, 96, gray=False), 0.0), R.Keyframe(clip_frame(9, 128, 96, gray=False), 1.0)]
    gray = np.stack([fr.model_input(fr.rgb_to_y(clip_frame(i, 128, 96, gray=False)), tiny.working_size(128, 96)) for i in (1, 2)])
    plain = R.KeyframeColorizer(tiny, kfs, cuts=[0.5])
    col = R.KeyframeColorizer(tiny, kfs, cuts=[0.5], adapt_steps=2, weights=tiny_random_model)
    out = col(gray, [0.05, 0.1])
    from animecolor.adapt import adapted_path

    assert col._ref.base is not tiny and col._ref.base.name == adapted_path(tiny_random_model, [k.rgb for k in kfs], 2).name
    assert out.shape == plain(gray, [0.05, 0.1]).shape and np.abs(out - plain(gray, [0.05, 0.1])).max() > 0
    adapted = col._ref.base
    col(gray, [1.05, 1.1])  # the second shot reuses the one adapted model
    assert col._ref.base is adapted
    with pytest.raises(ValueError, match=">= 0"):
        R.KeyframeColorizer(tiny, kfs, adapt_steps=-1)


def test_cli_shots_then_a_folder_of_painted_keyframes(tmp_path, capsys):
    # `animecolor shots` writes each shot's first frame; painting one and passing the folder as --keyframe
    # gives the same video as naming that keyframe explicitly, and the unpainted (gray) frame is skipped
    color = _two_shot_clip(tmp_path / "color.mkv")
    with av.open(str(color)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    gray = write_rgb_clip(tmp_path / "gray.mkv", [np.repeat(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)[..., None], 3, 2) for f in frames])
    shots = tmp_path / "shots"
    assert main(["shots", str(gray), "-o", str(shots), "-q"]) == 0
    names = sorted(p.name for p in shots.iterdir())
    assert names == ["shot_0001@0.000.png", "shot_0002@1.000.png"]
    rc = main(["shots", str(gray), "-o", str(shots), "-q"])  # never overwritten silently
    err = capsys.readouterr().err
    assert rc == 1 and "already holds shot frames" in err and len(err.strip().splitlines()) == 1
    everything_gray = main(["episode", str(gray), str(tmp_path / "none.mkv"), "--keyframe", str(shots), "-q", "--device", "cpu"])
    err = capsys.readouterr().err
    assert everything_gray == 1 and "every image in the keyframe folder is gray" in err and not (tmp_path / "none.mkv").exists()
    cv2.imwrite(str(shots / names[0]), frames[0][..., ::-1])  # "paint" the first shot (its color original)
    rc = main(["episode", str(gray), str(tmp_path / "folder.mkv"), "--keyframe", str(shots), "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 0 and "1 gray image(s) in the keyframe folder skipped" in err, err
    rc, _ = _episode([gray, tmp_path / "explicit.mkv", "--keyframe", f"{shots / names[0]}@0"], capsys)
    assert rc == 0
    for (y1, u1, v1), (y2, u2, v2) in zip(decode_planes(tmp_path / "folder.mkv"), decode_planes(tmp_path / "explicit.mkv")):
        assert np.array_equal(u1, u2) and np.array_equal(v1, v2)
    (tmp_path / "empty").mkdir()
    rc, err = _episode([gray, tmp_path / "e.mkv", "--keyframe", tmp_path / "empty"], capsys)
    assert rc == 1 and "holds no images named NAME@TIME" in err


def test_keyframe_time_snaps_to_the_frame_it_shows(base, tmp_path):
    # 12 fps: 0.05 s falls inside frame 0 (0-0.083 s); the keyframe starts where that frame starts, so the
    # flow propagation follows it from that frame on, and a time just after the cut belongs to the new shot
    src = _two_shot_clip(tmp_path / "two.mkv")
    kf = tmp_path / "kf.png"
    cv2.imwrite(str(kf), clip_frame(0, 128, 96, gray=False)[..., ::-1])
    col = R.guided_colorizer(base, src, keyframes=[f"{kf}@0.05", f"{kf}@1.001"])
    assert [k.time for k in col.keyframes] == [0.0, 1.0]
    assert [col.shot_of(k.time) for k in col.keyframes] == [0, 1]


def test_cli_shots_errors_leave_nothing(tmp_path, capsys):
    (tmp_path / "notes.mp4").write_text("not a video")
    for src, message in ((tmp_path / "notes.mp4", "cannot open video"), (tmp_path / "missing.mp4", "input not found")):
        rc = main(["shots", str(src), "-o", str(tmp_path / "out"), "-q"])
        err = capsys.readouterr().err
        assert rc == 1 and message in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "out").exists()
    (tmp_path / "file").write_text("")
    rc = main(["shots", str(_two_shot_clip(tmp_path / "two.mkv")), "-o", str(tmp_path / "file" / "sub"), "-q"])
    err = capsys.readouterr().err
    assert rc == 1 and "cannot create the folder" in err and len(err.strip().splitlines()) == 1, err
    rc = main(["shots", str(tmp_path / "two.mkv"), "-o", str(tmp_path / "out"), "--drift", "1.5", "-q"])
    err = capsys.readouterr().err
    assert rc == 1 and "--drift must be" in err and len(err.strip().splitlines()) == 1, err
    rc = main(["shots", str(tmp_path / "two.mkv"), "-o", str(tmp_path / "out"), "--every", "-1", "-q"])
    err = capsys.readouterr().err
    assert rc == 1 and "--every must be" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_cli_evaluate_keyframe_shots(tmp_path):
    # every shot's first frame as keyframe: the second shot gets its own, so it beats the first frame alone;
    # both keyframe frames are left out of every colorizer's score
    src = _two_shot_clip(tmp_path / "two.mkv")
    rep = tmp_path / "r.json"
    rc = main(["evaluate", str(src), "--keyframe-first", "--keyframe-shots", "--quiet", "--json", str(rep), "--device", "cpu"])
    assert rc == 0
    ov = json.loads(rep.read_text())["overall"]
    cols = ov["colorizers"]
    assert ov["frames"] == 22
    assert {"keyframe", "copy-keyframe", "lut-keyframe", "keyframe-shots", "copy-keyframe-shots",
            "lut-keyframe-shots"} <= set(cols)
    assert cols["keyframe-shots"]["ciede2000"] < 0.7 * cols["keyframe"]["ciede2000"]
    assert cols["lut-keyframe-shots"]["ciede2000"] < 0.5 * cols["gray"]["ciede2000"]  # a table fitted on the frames
    assert cols["keyframe-shots"]["ciede2000"] < cols["copy-keyframe-shots"]["ciede2000"]


def test_adapted_references_without_the_onnx_package(base, monkeypatch):
    # a plain install may lack the `onnx` package torch's exporter needs: the model adapted to the
    # references then runs on PyTorch instead of failing after its training
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)
    assert base.runtime == "onnx"
    ref = clip_frame(0, 128, 96, gray=False)
    col = R.reference_colorizer(base, [ref], adapt_steps=2)
    assert col.base.runtime == "torch"
    gray = np.stack([fr.model_input(fr.rgb_to_y(ref), base.working_size(128, 96))])
    assert apply_colorizer(col, gray).shape[0] == 1


def test_shots_skips_a_fade_in_from_black(monkeypatch):
    # the frame to paint: a shot's first frame that is not blank (a fade-in from black has nothing to paint
    # on), or its first frame when the shot is blank throughout; the scan itself is faked here
    class Frame:
        def __init__(self, value):
            self.value = value

        def to_ndarray(self, format):
            return np.full((4, 4, 3), self.value, np.uint8)

    flat, picture = np.zeros((8, 8), np.uint8), np.tile(np.array([0, 255], np.uint8), (8, 4))
    seq = [(0, flat), (0, flat), (0, picture), (0, picture), (1, flat), (1, flat), (2, picture)]

    def fake_scan(video, on_frame=None, **_):
        for i, (shot, small) in enumerate(seq):
            on_frame(shot, i / 10, Frame(i), small)
        return R.ShotScan([0.4, 0.6], len(seq), 0.6, {})

    monkeypatch.setattr(R, "scan_shots", fake_scan)
    picked = []
    R.pick_shot_frames("any.mp4", lambda shot, t, rgb: picked.append((shot, t, int(rgb[0, 0, 0]))))
    assert picked == [(0, 0.2, 2), (1, 0.4, 4), (2, 0.6, 6)]

def test_shot_frames_pick_the_new_picture_after_a_dissolve(tmp_path):
    # one picture dissolves (over 1 s, no cut for the cut test) into another that then holds: with --drift the
    # shot gets a second frame to paint, of the new picture once it has settled; without, only its first frame
    w, h = 128, 96
    a = clip_frame(0, w, h, gray=False)
    b = np.roll(a[::-1], w // 3, axis=1)[..., ::-1] // 2 + 60
    mix = [np.round(a * (1 - k / 12) + b * (k / 12)).astype(np.uint8) for k in range(1, 12)]
    src = write_rgb_clip(tmp_path / "dissolve.mkv", [a] * 12 + mix + [b] * 12)  # 12 fps: the dissolve is 1-2 s
    picked: list = []
    scan = R.pick_shot_frames(src, lambda shot, t, rgb: picked.append((shot, round(t, 3), rgb)))
    assert scan.cuts == []
    assert [p[:2] for p in picked][:1] == [(0, 0.0)] and len(picked) == 2
    shot, t, rgb = picked[1]
    assert shot == 0 and 1.5 <= t <= 2.0  # late in the dissolve or after it, and 0.5 s before the end
    assert np.abs(rgb.astype(int) - b).mean() < 0.25 * np.abs(a.astype(int) - b).mean()
    picked.clear()
    R.pick_shot_frames(src, lambda shot, t, rgb: picked.append((shot, t)), drift=None)
    assert picked == [(0, 0.0)]
    assert (R.SHOT_DRIFT, R.SHOT_EVERY) == (0.5, 8.0)  # the defaults `shots --help` names


def test_shot_frames_every_picks_a_long_still_shot_again(tmp_path):
    a = clip_frame(0, 128, 96, gray=False)
    src = write_rgb_clip(tmp_path / "still.mkv", [a] * 40, fps=4)  # 10 s of one picture
    picked: list = []
    R.pick_shot_frames(src, lambda shot, t, rgb: picked.append((shot, round(t, 2))), every=4.0)
    assert picked == [(0, 0.0), (0, 4.0), (0, 8.0)]
    picked.clear()
    R.pick_shot_frames(src, lambda shot, t, rgb: picked.append((shot, round(t, 2))))  # default: every 8 s
    assert picked == [(0, 0.0), (0, 8.0)]
