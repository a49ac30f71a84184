"""Selective color (animecolor.keepcolor): pairs, mask derivation, training, the pipeline's keep-color mode.

Synthetic pairs only (CI has no openclipart): a red disk (the subject to keep) on a
striped blue/green/yellow background; the backbone is a tiny *random* model
(``tiny_random_base``), so these check the plumbing and that the head learns
from the pairs, not the shipped model's quality (docs/keepcolor.md has those figures).
"""
from __future__ import annotations

import json

import av
import cv2
import numpy as np
import pytest

from animecolor import keepcolor as K
from animecolor import keepcolor_train as KT
from animecolor.cli import main
from animecolor.model import ModelConfig, ResidualColorizer, WeightsError
from conftest import write_rgb_clip


def scene(seed: int, w: int = 64, h: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """(RGB frame, true mask): a red disk at a random place on colored stripes."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.uint8)
    cols = [(60, 90, 200), (60, 170, 80), (220, 200, 60)]
    for i, x in enumerate(range(0, w, 10)):
        img[:, x:x + 10] = cols[(i + seed) % 3]
    yy, xx = np.mgrid[0:h, 0:w]
    r = rng.integers(8, 14)
    cx, cy = rng.integers(r, w - r), rng.integers(r, h - r)
    mask = np.hypot(xx - cx, yy - cy) < r
    img[mask] = (220, 40, 40)
    return img, mask.astype(np.float32)


def write_pair(d, name: str, seed: int) -> None:
    img, mask = scene(seed)
    tgt = K.apply_mask_rgb(img, mask)
    cv2.imwrite(str(d / f"{name}_input.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(d / f"{name}_target.png"), cv2.cvtColor(tgt, cv2.COLOR_RGB2BGR))


def tiny_random_base() -> ResidualColorizer:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    return ResidualColorizer(ModelConfig(working_long_side=64)).eval()


def random_rgb_backbone():
    """A 3-channel EfficientNet-Lite0 with *random* weights, in place of the ImageNet ones (rgb features)."""
    torch = pytest.importorskip("torch")
    from animecolor.model.backbone import EfficientNetLite0

    torch.manual_seed(1)
    return EfficientNetLite0(in_channels=3).eval()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A keep-color run trained on 10 synthetic pairs with select train's defaults (rgb features, on a random
    backbone; the tiny random colorizer; decoy views), and held-out pairs.  The head also reads the frame's a/b
    (``--ab-input``): a random backbone passes on too little of the colors for the red disk to be learned."""
    root = tmp_path_factory.mktemp("keep")
    (root / "train").mkdir()
    (root / "test").mkdir()
    for i in range(10):
        write_pair(root / "train", f"p{i:02d}", i)
    for i in range(6):
        write_pair(root / "test", f"t{i:02d}", 100 + i)
    rec = KT.train_keepcolor(K.find_pairs([root / "train"]), root / "run", base_model=tiny_random_base(),
                            epochs=25, patience=25, val_fraction=0.2, rgb_backbone=random_rgb_backbone(),
                            config=KT.default_config(ab_input=True))
    return root, rec


def test_select_trains_default_head():
    """select train's head: rgb features without the a/b input, fine-tuned from stride 16; colorizer features
    keep the a/b (without it they see no color); ``--ab-input`` asks for it."""
    cfg = KT.default_config()
    assert (cfg.features, cfg.chroma, cfg.tune_from) == ("rgb", False, 16) and KT.DECOYS == 2
    assert KT.default_config("colorizer").chroma and KT.default_config(ab_input=True).chroma
    assert K.HeadConfig().chroma  # what a checkpoint without the key means


def test_derive_mask_from_a_pair():
    img, mask = scene(3)
    tgt = K.apply_mask_rgb(img, mask)
    got, known = K.derive_mask(img, tgt)
    assert known.mean() > 0.99  # every pixel of this scene has color
    assert np.mean(got == mask) > 0.995
    # a gray input pixel is unknown: it looks the same kept or grayed
    img[:5, :5] = 128
    _, known = K.derive_mask(img, K.apply_mask_rgb(img, mask))
    assert known[:5, :5].sum() == 0


def test_find_pairs_layouts_and_errors(tmp_path):
    (tmp_path / "a").mkdir()
    write_pair(tmp_path / "a", "x", 0)
    assert [p[0] for p in K.find_pairs([tmp_path / "a"])] == ["x"]
    ins, outs = tmp_path / "in", tmp_path / "out"
    ins.mkdir(), outs.mkdir()
    img, mask = scene(1)
    cv2.imwrite(str(ins / "f1.png"), img)
    cv2.imwrite(str(outs / "f1.png"), K.apply_mask_rgb(img, mask))
    assert [p[0] for p in K.find_pairs([ins, outs])] == ["f1"]
    with pytest.raises(ValueError, match="no pairs"):
        K.find_pairs([ins])
    with pytest.raises(FileNotFoundError):
        K.find_pairs([tmp_path / "missing"])


def test_guided_upsample_follows_the_guide_edge():
    guide = np.zeros((64, 64), np.uint8)
    guide[:, 35:] = 200  # the subject's edge (in the luma) at x = 35
    coarse = np.zeros((8, 8), np.float32)
    coarse[:, 4:] = 1.0  # a coarse mask whose edge bleeds 3 px outside it (x = 32), blurred by upsampling
    plain = K.guided_upsample(coarse, guide, 0, 1e-3)
    guided = K.guided_upsample(coarse, guide, 4, 1e-3)
    assert guided[:, 29:35].mean() < 0.85 * plain[:, 29:35].mean()  # less color spilled outside the edge
    assert guided[:, 35:40].mean() > 0.95  # and the subject's side stays kept


def test_grabcut_refine_moves_the_edge_to_the_subjects_colors():
    yy, xx = np.mgrid[:60, :80]
    rgb = np.full((60, 80, 3), 120, np.uint8)
    disk = (yy - 30) ** 2 + (xx - 40) ** 2 < 15 ** 2
    rgb[disk] = (220, 40, 30)
    off = ((yy - 30) ** 2 + (xx - 46) ** 2 < 15 ** 2).astype(np.float32)  # the head's mask, 6 px to the right
    prob = cv2.GaussianBlur(off, (0, 0), 2.0)
    iou = lambda m: (m & disk).sum() / (m | disk).sum()  # noqa: E731
    refined = K.grabcut_refine(rgb, prob)
    before, after = iou(prob > 0.5), iou(refined > 0.5)
    assert before < 0.7 and after > 0.95
    cv2.randu(np.zeros((64, 64)), 0, 1)  # OpenCV's random generator moved on: the same frame, the same mask
    assert np.array_equal(K.grabcut_refine(rgb, prob), refined)
    assert not K.grabcut_refine(rgb, np.zeros_like(prob)).any()  # no subject: nothing to grow


def test_mask_smoother_damps_blinking_and_restarts_at_cuts():
    gray = np.tile(np.linspace(0, 255, 128, dtype=np.uint8), (72, 1))
    on, off = np.ones((8, 8), np.float32), np.zeros((8, 8), np.float32)
    sm = K.MaskSmoother(0.3)
    raw = [on if i % 4 else off for i in range(12)]  # the subject drops out every 4th frame
    out = [sm(gray, m) for m in raw]
    assert K.mask_flicker(out[1:]) < K.mask_flicker(raw[1:])
    other = 255 - np.tile(np.linspace(0, 255, 72, dtype=np.uint8)[:, None], (1, 128))
    assert np.array_equal(sm(other, off), off)  # a cut: the new shot's mask at once, no carry-over


def test_histogram_similarity():
    img, mask = scene(0)
    assert K.hist_similarity(img, img) == pytest.approx(1.0)
    assert K.hist_similarity(img, K.apply_mask_rgb(img, mask)) < 0.9


def test_training_learns_the_mask_and_the_checkpoint_rebuilds_itself(trained):
    root, rec = trained
    assert rec["train_pairs"] == 8 and len(rec["val_pairs"]) == 2
    col = K.load_keepcolor(root / "run" / "best.safetensors")
    assert col.info["pairs"] == 10
    scores = K.pair_scores(col, K.find_pairs([root / "test"]))
    assert scores["model"]["iou"] > 0.8  # held-out pairs
    assert scores["model"]["ciede2000"] < scores["gray"]["ciede2000"]
    assert scores["model"]["ciede2000"] < scores["input"]["ciede2000"]


def test_episode_keep_color_on_a_color_video(trained, tmp_path):
    root, _ = trained
    frames = [scene(100 + (i // 4))[0] for i in range(12)]
    src = write_rgb_clip(tmp_path / "color.mkv", frames, pix_fmt="yuv444p")
    out = tmp_path / "keep.mkv"
    rc = main(["episode", str(src), str(out), "--keep-color", str(root / "run" / "best.safetensors"), "-q",
               "--crf", "0"])
    assert rc == 0
    with av.open(str(src)) as a, av.open(str(out)) as b:
        pairs = list(zip(a.decode(video=0), b.decode(video=0)))
    assert len(pairs) == 12
    kept = gray = 0.0
    for i, (fa, fb) in enumerate(pairs):
        ya, ua = fa.to_ndarray(format="yuv444p")[0], fa.to_ndarray(format="yuv444p")[1].astype(int)
        yb, ub = fb.to_ndarray(format="yuv444p")[0], fb.to_ndarray(format="yuv444p")[1].astype(int)
        assert np.array_equal(ya, yb)  # the source luma, untouched (lossless encode)
        mask = scene(100 + i // 4)[1] > 0
        inner = cv2.erode(mask.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        outer = cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8)) == 0
        kept += np.abs(ub[inner] - ua[inner]).mean()  # the subject keeps its own chroma
        gray += np.abs(ub[outer] - 128).mean()  # the rest is gray
    assert kept / 12 < 12 and gray / 12 < 8


def test_episode_keep_color_errors_leave_nothing(trained, tmp_path, capsys):
    root, _ = trained
    src = write_rgb_clip(tmp_path / "c.mkv", [scene(1)[0]] * 3)
    out = tmp_path / "o.mkv"
    rc = main(["episode", str(src), str(out), "--keep-color", str(root / "run" / "best.safetensors"),
               "--weights", "weights/default.safetensors", "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "cannot be combined with --weights" in err[0]
    bogus = tmp_path / "bogus.safetensors"
    bogus.write_bytes(b"not a checkpoint")
    rc = main(["episode", str(src), str(out), "--keep-color", str(bogus), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "bogus.safetensors" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bogus.safetensors", "c.mkv"]


def test_select_train_cli(tmp_path, capsys):
    rc = main(["select", "train", str(tmp_path / "nothing"), "-o", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "pairs folder not found" in err[0]


def test_keep_color_refine_none_hands_on_the_heads_grid(trained):
    root, _ = trained
    weights = root / "run" / "best.safetensors"
    gray = K._gray_of(scene(100)[0])[None]
    plain, refined = K.load_keepcolor(weights, refine="none"), K.load_keepcolor(weights)
    (m0,), (m1,) = plain.masks(gray)[1], refined.masks(gray)[1]
    assert m0.shape == (12, 16) and m1.shape == (48, 64)  # 1/4 of the working size; the working size
    assert plain.full_mask(m0, gray[0]).shape == refined.full_mask(m1, gray[0]).shape == (48, 64)
    with pytest.raises(ValueError, match="refine"):
        K.load_keepcolor(weights, refine="snake")


def test_keep_color_on_a_bw_video_and_in_preview(trained, tmp_path):
    from animecolor.preview import preview_frames

    root, _ = trained
    weights = root / "run" / "best.safetensors"
    gray = [np.repeat(K._gray_of(scene(100)[0])[..., None], 3, axis=2)] * 4
    src = write_rgb_clip(tmp_path / "bw.mkv", gray, pix_fmt="yuv444p")
    out = tmp_path / "bw_keep.mkv"
    assert main(["episode", str(src), str(out), "--keep-color", str(weights), "-q", "--crf", "0"]) == 0
    col = K.load_keepcolor(weights)
    col.take_source([g[..., 0] for g in gray], [(np.full((48, 64), 128, np.uint8),) * 2] * 4)
    assert col.source == "model"  # a gray source: the colorizer's chroma is kept under the mask
    color = write_rgb_clip(tmp_path / "c.mkv", [scene(101)[0]] * 3, pix_fmt="yuv444p")
    (p,) = preview_frames(color, [0.0], K.load_keepcolor(weights))
    assert p.mask is not None and p.mask.shape == p.colorized.shape
    png = tmp_path / "prev.png"
    assert main(["preview", str(color), "--at", "0", "-o", str(png), "--keep-color", str(weights)]) == 0
    assert png.is_file()


def test_caminandes_pairs_grabcut_follows_the_box_and_strokes():
    """pipelines/make_caminandes_pairs.py: GrabCut seeded by a box finds the subject; a bg stroke drops a look-alike."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "pipelines"))
    from make_caminandes_pairs import grabcut, gray_outside

    img, mask = scene(3, 96, 72)
    ys, xs = np.nonzero(mask)
    box = [int(xs.min()) - 4, int(ys.min()) - 4, int(xs.max()) + 5, int(ys.max()) + 5]
    got = grabcut(img, {"box": box}) > 127
    t = mask > 0.5
    assert (got & t).sum() / (got | t).sum() > 0.9
    # a second red disk inside a wider box: kept by the box alone, dropped with a bg stroke on it
    two = img.copy()
    x0 = box[2] + 6 if box[2] + 20 < 96 else box[0] - 18
    cv2.circle(two, (x0 + 6, (box[1] + box[3]) // 2), 6, (220, 40, 40), -1)
    other = np.zeros(mask.shape, np.uint8)
    cv2.circle(other, (x0 + 6, (box[1] + box[3]) // 2), 6, 1, -1)
    wide = [min(box[0], x0 - 2), box[1], max(box[2], x0 + 14), box[3]]
    assert (grabcut(two, {"box": wide}) > 127)[other > 0].mean() > 0.5
    cut = grabcut(two, {"box": wide, "bg": [[x0 + 6, (box[1] + box[3]) // 2]]}) > 127
    assert cut[other > 0].mean() < 0.2 and (cut & t).sum() / (cut | t).sum() > 0.85
    assert not grabcut(img, {"box": None}).any()
    # the target keeps L and grays the outside only
    tgt = gray_outside(img, got.astype(np.uint8) * 255)
    lab_i, lab_t = K.rgb_to_lab(img), K.rgb_to_lab(tgt)
    assert np.abs(lab_i[..., 0] - lab_t[..., 0]).max() < 1.5
    assert np.abs(lab_t[~got][:, 1:]).max() < 1.5 and np.abs(lab_t[got][:, 1:] - lab_i[got][:, 1:]).max() < 2.5


def test_training_views_and_hard_negatives():
    """A jittered view keeps the mask on the subject; a background pixel colored like the subject weighs more."""
    img, mask = scene(4, 96, 72)
    rng = np.random.default_rng(0)
    for _ in range(4):
        v, m, k = KT._jitter(img, mask, np.ones_like(mask), rng)
        a = K.rgb_to_lab(v)[..., 1]
        assert v.shape == img.shape and m.shape == mask.shape
        assert a[m > 0.9].mean() > a[m < 0.1].mean() + 20  # the red disk is still where the mask says
    v, m, _ = KT._jitter(img, mask, np.ones_like(mask), rng, light=False)  # crops and mirrors only
    assert set(map(tuple, v[m > 0.99].reshape(-1, 3))) == {(220, 40, 40)}  # the subject's own color, untouched
    torch = pytest.importorskip("torch")
    ab = torch.zeros(2, 4, 4)
    ab[0] = 0.5  # a/b of the subject ...
    ab[0, 0, 3] = -0.3  # ... and of one plain background pixel
    msk = torch.zeros(4, 4)
    msk[:2, :2] = 1
    ab[0, 3, 3] = 0.5  # a look-alike in the background
    s = {"ab": ab, "mask": msk, "known": torch.ones(4, 4)}
    KT._hard_negatives([s], 4.0)
    assert s["weight"][3, 3] == pytest.approx(5.0) and s["weight"][0, 3] == 1 and s["weight"][0, 0] == 1


def test_copy_paste_view_pastes_the_donors_subject_as_subject():
    """A copy-paste view carries the donor's red disk (its colors, its mask) onto another frame, whose own
    subject stays subject where the paste does not cover it."""
    img, mask = scene(4, 96, 72)
    d_img, d_mask = scene(7, 96, 72)
    rng = np.random.default_rng(0)
    for own in (np.zeros_like(mask), mask):  # a frame without its own subject, then with it
        for _ in range(6):
            v, m, k = KT._paste(img, own, np.ones_like(own), KT._subject(d_img, d_mask, np.ones_like(d_mask)), rng)
            assert v.shape == img.shape and m.shape == mask.shape and k.min() >= 0.99
            assert (m >= own - 1e-6).all()  # nothing of the frame's own subject is lost
            off = m < 0.01
            assert (v[off] == img[off]).all()  # the background is untouched
            new = (m > 0.99) & (own < 0.01)  # pasted subject pixels
            assert np.abs(v[new].astype(int) - (220, 40, 40)).max() <= 4  # in the donor's colors
            if not own.any():
                assert new.sum() > 0.2 * (d_mask > 0).sum()  # the disk, scaled 0.5-1.1x, is there


def test_decoy_view_recolors_a_piece_of_background_as_background():
    """A decoy view recolors one piece of the background (a stripe, here) in the donor subject's red, keeps its
    lightness and leaves it background; the subject and the rest of the frame are untouched."""
    img, mask = scene(4, 96, 72)
    d_img, d_mask = scene(7, 96, 72)
    donor = KT._subject(d_img, d_mask, np.ones_like(d_mask))
    rng = np.random.default_rng(0)
    for _ in range(4):
        v, m, k = KT._decoy(img, mask, np.ones_like(mask), donor, rng)
        changed = (v != img).any(-1)
        assert changed.sum() > 0.005 * mask.size and not (changed & (mask > 0)).any()
        assert (m == mask).all()  # the recolored piece stays background
        lab_v, lab_i = K.rgb_to_lab(v), K.rgb_to_lab(img)
        assert lab_v[..., 1][changed].mean() > lab_i[..., 1][changed].mean() + 15  # redder (the donor's a, within gamut)
        assert np.abs(lab_v[..., 0][changed] - lab_i[..., 0][changed]).mean() < 12  # lightness kept but for gamut clipping
        assert k[changed].min() == 1


def test_fine_tuned_blocks_travel_in_the_checkpoint(trained, tmp_path):
    """tune_from=16: the head's copy of the backbone's last blocks is trained and saved; a checkpoint from
    before the option loads as frozen, and one claiming tuned blocks it lacks is refused in one line."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    root, _ = trained
    rec = KT.train_keepcolor(K.find_pairs([root / "train"]), tmp_path / "t", base_model=tiny_random_base(),
                            config=K.HeadConfig(tune_from=16), epochs=3, augment=1, hard_negatives=2.0)
    # the default: no pair held out, every epoch run, the last one kept
    assert (rec["train_pairs"], rec["val_pairs"], rec["val_iou"], rec["epochs_run"], rec["best_epoch"]) == (10, [], None, 3, 3)
    history = [json.loads(line) for line in (tmp_path / "t" / "history.jsonl").read_text().splitlines()]
    assert [h["val_iou"] for h in history] == [None] * 3  # strict JSON: no NaN
    path = tmp_path / "t" / "best.safetensors"
    col = K.load_keepcolor(path)
    assert col.cfg.tune_from == 16 and col.head.tuned is not None and col.info["augment"] == 1
    state = load_file(str(path))
    moved = state["head.tuned.0._project_conv.weight"] - state["base.backbone._blocks.5._project_conv.weight"]
    assert float(moved.abs().max()) > 0  # trained, not the backbone's block as it was
    assert K.pair_scores(col, K.find_pairs([root / "test"]))["n"] == 6
    # a checkpoint written before tune_from existed (no such key, no tuned blocks): loads, backbone frozen
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    cfg = json.loads(meta["config"])
    del cfg["tune_from"]
    frozen = {k: v for k, v in state.items() if not k.startswith("head.tuned.")}
    save_file(frozen, str(tmp_path / "old.safetensors"), metadata={**meta, "config": json.dumps(cfg)})
    assert K.load_keepcolor(tmp_path / "old.safetensors").head.tuned is None
    save_file(frozen, str(tmp_path / "bad.safetensors"), metadata={**meta, "config": json.dumps({**cfg, "tune_from": 16})})
    with pytest.raises(WeightsError, match="corrupt keep-color checkpoint .*tuned"):
        K.load_keepcolor(tmp_path / "bad.safetensors")


def test_onnx_runtime_gives_pytorchs_mask_and_colors(trained, tmp_path):
    """load_keepcolor exports base + head to ONNX (tiny random base, fine-tuned blocks too, a head without the
    a/b input) and the session's a/b and mask match PyTorch's, with the source's a/b and without; the export is cached and reused."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    root, _ = trained
    for name, cfg in (("frozen", K.HeadConfig()), ("tuned", K.HeadConfig(tune_from=16)),  # colorizer features
                      ("noab", K.HeadConfig(features="rgb", chroma=False))):  # an export without the a/b input
        KT.train_keepcolor(K.find_pairs([root / "train"]), tmp_path / name, base_model=tiny_random_base(),
                          config=cfg, epochs=2, rgb_backbone=random_rgb_backbone())
    # the fixture's run: select train's default, rgb features (two graphs: the colorizer's, the head's)
    for path in (tmp_path / "frozen" / "best.safetensors", tmp_path / "tuned" / "best.safetensors",
                 tmp_path / "noab" / "best.safetensors", root / "run" / "best.safetensors"):
        ref = K.load_keepcolor(path, runtime="torch")
        col = K.load_keepcolor(path)  # auto: ONNX Runtime on the CPU
        assert ref.runtime == "torch" and col.runtime == "onnx"
        assert (col.head_session is not None) == (col.cfg.features == "rgb")
        rng = np.random.default_rng(0)
        gray = rng.integers(0, 256, (3, 64, 96), dtype=np.uint8)
        rgb = [rng.integers(0, 256, (64, 96, 3), dtype=np.uint8), None, rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)]
        src = np.stack([np.full((16, 24, 2), np.nan, np.float32) if c is None else
                        cv2.resize(K.rgb_to_lab(c)[..., 1:], (24, 16), interpolation=cv2.INTER_AREA) for c in rgb])
        for s, c in ((None, None), (src, rgb)):  # frame 1 without its own chroma
            (ab0, m0), (ab1, m1) = ref.predict(gray, s, c), col.predict(gray, s, c)
            assert ab1.shape == ab0.shape and m1.shape == m0.shape
            assert np.abs(ab1 - ab0).max() < 1e-2 and np.abs(m1 - m0).max() < 1e-3
    from animecolor.runtime import cache_dir

    exports = sorted(cache_dir().glob("keep-*.onnx"))
    assert len(exports) >= 2
    before = [p.stat().st_mtime_ns for p in exports]
    assert K.load_keepcolor(tmp_path / "frozen" / "best.safetensors").runtime == "onnx"
    assert [p.stat().st_mtime_ns for p in exports] == before  # reused, not exported again


def test_rgb_features_travel_in_the_checkpoint(trained):
    """select train's default, features="rgb": the head holds its own frozen copy of a 3-channel
    EfficientNet-Lite0's first blocks (in the fixture random, not ImageNet's) and reads them on the frame's
    colors; the colorizer runs them on the source's colors or, on B&W, the colorizer's."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    from animecolor.model.backbone import EfficientNetLite0

    root, rec = trained
    assert rec["features"] == "rgb" == KT.FEATURE_SOURCE and rec["rgb_weights"]["path"] == "(in memory)"
    with pytest.raises(ValueError, match="3-channel"):
        K.MaskHead(K.HeadConfig(features="rgb"), EfficientNetLite0.channels, EfficientNetLite0(in_channels=1))
    with pytest.raises(ValueError, match="features must be one of"):
        K.MaskHead(K.HeadConfig(features="hsv"), EfficientNetLite0.channels)
    path = root / "run" / "best.safetensors"
    state = load_file(str(path))
    assert torch.equal(state["head.rgb._conv_stem.weight"], random_rgb_backbone()._conv_stem.weight)  # frozen
    assert "head.rgb._blocks.4._project_conv.weight" in state and "head.rgb._blocks.5._project_conv.weight" not in state
    col = K.load_keepcolor(path, runtime="torch")
    assert col.cfg.features == "rgb"
    img, _ = scene(7)
    assert col.image_mask(img, bw=True).shape == img.shape[:2]  # B&W: the head sees the colorizer's colors


def test_bw_views_show_the_pair_in_the_colorizers_colors(tmp_path):
    """bw=2: the pair and its mirror image come again, encoded and with a/b from ``colorize(gray)``, same mask."""
    write_pair(tmp_path, "p", 3)
    seen = []
    blue = lambda gray: np.dstack([np.full_like(gray, 40), np.full_like(gray, 60), np.full_like(gray, 200)])  # noqa: E731
    out = KT._prepare(lambda rgb, gray: seen.append(rgb.copy()) or [], K.find_pairs([tmp_path]), 64, bw=2,
                      colorize=blue)
    assert [s["view"] for s in out] == [0, 1, 2, 3] and len(seen) == 4
    assert (seen[2] == blue(seen[0][..., 0])).all() and not (seen[0] == seen[2]).all()
    torch = pytest.importorskip("torch")
    assert torch.equal(out[2]["mask"], out[0]["mask"]) and torch.equal(out[3]["mask"], out[1]["mask"])
    assert float(out[2]["ab"][1].mean()) < -0.3 < float(out[0]["ab"][1].max())  # b of the blue, not of the red disk
