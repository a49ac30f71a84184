"""``animecolor dataset build``/``info`` and the FrameDataset loader, on tiny synthetic clips.

The clip has known structure (24 fps, 160x96 with 12 px letterbox bars):

====== ======= ==============================================
frames segment content
====== ======= ==============================================
0-15   A       orange scene, red disc moving, each drawing held 2 frames
16-27  gray    textured gray insert (R=G=B)
28-37  black   black frames
38-53  B       green scene, blue square moving, held 2 frames
54-69  A'      exact re-use of scene A (a reused shot)
70-85  D       purple scene, yellow bar moving, held 2 frames
====== ======= ==============================================
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import write_rgb_clip

from animecolor.cli import main
from animecolor.color import gray_to_L, rgb_to_lab, y_to_gray
from animecolor.data import build as build_mod
from animecolor.dataset import FrameDataset, build_dataset, bw_film_augment, dataset_info, read_manifest
from animecolor.frames import rgb_to_y

W, H, BAR, FPS = 160, 96, 12, 24
CUT_FRAMES = {"A": 0, "B": 38, "A2": 54, "D": 70}


def _scene_frame(kind: str, i: int) -> np.ndarray:
    """Drawing ``i`` of a colored scene (picture area only, H - 2*BAR rows)."""
    h = H - 2 * BAR
    yy, xx = np.mgrid[0:h, 0:W]
    img = np.empty((h, W, 3), np.uint8)
    shade = (yy * 60 // h).astype(np.uint8)[..., None]  # vertical gradient: luma texture
    if kind == "A":
        img[...] = (230, 150, 60)
        img -= shade // 2
        m = np.hypot(xx - (20 + 14 * i), yy - h // 2) < 14
        img[m] = (210, 30, 30)
    elif kind == "B":
        img[...] = (60, 190, 80)
        img -= shade // 2
        x0 = 10 + 15 * i
        img[20:50, x0 : x0 + 30] = (30, 60, 220)
    else:  # D
        img[...] = (150, 60, 170)
        img -= shade // 2
        y0 = 4 + 6 * i
        img[y0 : y0 + 12, :] = (240, 220, 40)
        img[:, 70:80] = (20, 20, 20)
    return img


def clip_frames() -> list[np.ndarray]:
    frames: list[np.ndarray] = []

    def put(pic: np.ndarray) -> None:
        f = np.zeros((H, W, 3), np.uint8)
        f[BAR : H - BAR] = pic
        frames.append(f)

    def scene(kind: str) -> None:
        for d in range(8):
            pic = _scene_frame(kind, d)
            put(pic)
            put(pic)  # held on twos

    scene("A")
    rng = np.random.default_rng(1)
    for i in range(12):  # gray insert: textured, no chroma
        g = rng.integers(40, 220, size=(H - 2 * BAR, W // 8), dtype=np.uint8).repeat(8, axis=1)
        put(np.repeat(g[..., None], 3, axis=2))
    for _ in range(10):
        frames.append(np.zeros((H, W, 3), np.uint8))
    scene("B")
    scene("A")
    scene("D")
    return frames


def write_clip(path: Path, frames: list[np.ndarray]) -> Path:
    return write_rgb_clip(path, frames, fps=FPS)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("clips")
    frames = clip_frames()
    write_clip(d / "ep1.mkv", frames)
    write_clip(d / "ep2.mkv", [np.ascontiguousarray(f[..., ::-1]) for f in frames[38:54] + frames[70:86]])  # B, D recolored
    (d / "notes.txt").write_text("not a video")  # ignored: unknown extension
    return d


@pytest.fixture(scope="module")
def built(clips, tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("ds") / "set"
    rep = build_dataset([clips / "ep1.mkv"], out, size=64, max_per_scene=8, val_fraction=0.3, seed=3)
    return out, rep


def _chroma90(rgb: np.ndarray) -> float:
    ab = rgb_to_lab(rgb)[..., 1:]
    return float(np.percentile(np.hypot(ab[..., 0], ab[..., 1]), 90))


def test_cuts_found_and_frames_accounted(built):
    out, rep = built
    m = read_manifest(out)
    assert m["frames_in"] == 86
    assert m["frames_kept"] + sum(m["drops"].values()) == m["frames_in"]
    # Every colored segment starts a scene where it was cut (gray and black inserts keep no frames).
    starts = sorted(round(s["start_s"] * FPS) for s in m["scenes"])
    assert starts[:2] == [CUT_FRAMES["A"], CUT_FRAMES["B"]]
    assert CUT_FRAMES["D"] in starts
    assert m["sources"][0]["scenes_detected"] == 6  # A, gray, black, B, A', D


def test_gray_and_black_inserts_dropped(built):
    out, _ = built
    m = read_manifest(out)
    assert m["drops"]["low_color"] == 12
    assert m["drops"]["blank"] == 10
    ds = FrameDataset(out, "train", crop=64, augment=False)
    val = FrameDataset(out, "val", crop=64, augment=False)
    frames = list(ds.rgb_frames()) + list(val.rgb_frames())
    assert frames and all(_chroma90(f) > 10 for f in frames)
    # Letterbox bars are cropped away: no black rows at the top or bottom of stored frames.
    for f in frames:
        assert f[0].mean() > 40 and f[-1].mean() > 40


def test_holds_and_reused_shot_dropped(built):
    out, _ = built
    m = read_manifest(out)
    assert m["drops"]["hold"] >= 4 * 8 - 4  # every second frame of the 4 held scenes (minus cuts)
    assert m["drops"]["duplicate"] >= 1  # the reused shot A'
    sums = [f["checksum"] for f in m["frames"]]
    assert len(sums) == len(set(sums))
    a2_start, a2_end = CUT_FRAMES["A2"] / FPS, CUT_FRAMES["D"] / FPS
    a2 = [f for f in m["frames"] if a2_start <= f["timestamp_s"] < a2_end]
    a1 = [f for f in m["frames"] if f["timestamp_s"] < 16 / FPS]
    assert len(a2) < len(a1)


def test_split_never_leaks_a_scene(built):
    out, _ = built
    m = read_manifest(out)
    train = {f["scene"] for f in m["frames"] if f["split"] == "train"}
    val = {f["scene"] for f in m["frames"] if f["split"] == "val"}
    assert train and val and not (train & val)
    assert m["params"]["split_by"] == "scene"
    for s in m["scenes"]:
        assert {f["split"] for f in m["frames"] if f["scene"] == s["id"]} == {s["split"]}


def test_split_by_source_keeps_files_apart(clips, tmp_path):
    rep = build_dataset([clips], tmp_path / "s", size=48, val_fraction=0.4, split_by="source", seed=1)
    m = read_manifest(tmp_path / "s")
    by_src: dict[str, set] = {}
    for f in m["frames"]:
        by_src.setdefault(f["source"], set()).add(f["split"])
    assert len(by_src) == 2 and all(len(v) == 1 for v in by_src.values())
    assert rep.splits["train"] > 0 and rep.splits["val"] > 0


def test_manifest_round_trips(built):
    out, rep = built
    m = read_manifest(out)
    assert m["version"] and m["params"]["seed"] == 3 and m["params"]["size"] == 64
    assert m["splits"] == rep.splits and m["bytes"] == rep.bytes == sum((out / s["file"]).stat().st_size for s in m["shards"])
    info = dataset_info(out, verify=True)
    assert info["problems"] == [] and info["frames_kept"] == rep.frames_kept
    for sh in m["shards"]:
        with np.load(out / sh["file"]) as z:
            rgb, index = z["rgb"], z["index"]
        assert rgb.dtype == np.uint8 and rgb.shape[1:] == (64, 64, 3) and index.dtype == np.int64
        for row, fi in enumerate(index):
            rec = m["frames"][fi]
            assert rec["shard"] == sh["file"] and rec["split"] == sh["split"]
            assert hashlib.sha256(rgb[row].tobytes()).hexdigest() == rec["checksum"]
    # A tampered frame list is caught.
    bad = json.loads((out / "manifest.json").read_text())
    bad["frames"][0]["timestamp_s"] += 1
    tampered = out.parent / "tampered"
    tampered.mkdir()
    (tampered / "manifest.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="manifest_checksum"):
        read_manifest(tampered)


def _files(d: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir()) if p.is_file()}


def test_same_seed_gives_identical_shards_and_resume_continues(clips, tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    build_dataset([clips], a, size=48, seed=7)
    # Interrupt the second source, then rerun: the first source is resumed from staging.
    real = build_mod._stage_source
    calls = []

    def flaky(src, *args, **kw):
        calls.append(src.path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(src, *args, **kw)

    monkeypatch.setattr(build_mod, "_stage_source", flaky)
    with pytest.raises(KeyboardInterrupt):
        build_dataset([clips], b, size=48, seed=7)
    assert not (b / "manifest.json").exists()
    monkeypatch.setattr(build_mod, "_stage_source", real)
    rep = build_dataset([clips], b, size=48, seed=7)
    assert rep.resumed == 1
    assert _files(a) == _files(b)
    # Same inputs, different seed: same frames, the split may differ, frames are never lost.
    c = build_dataset([clips], tmp_path / "c", size=48, seed=8)
    assert c.frames_kept == rep.frames_kept
    with pytest.raises(FileExistsError, match="--overwrite"):
        build_dataset([clips], a, size=48, seed=7)


def test_max_frames_and_max_per_scene(clips, tmp_path):
    rep = build_dataset([clips / "ep1.mkv"], tmp_path / "m", size=48, max_per_scene=2, max_frames=4, val_fraction=0)
    m = read_manifest(tmp_path / "m")
    assert rep.frames_kept == 4 and m["drops"]["max_frames"] > 0 and m["drops"]["scene_cap"] > 0
    per_scene: dict[int, int] = {}
    for f in m["frames"]:
        per_scene[f["scene"]] = per_scene.get(f["scene"], 0) + 1
    assert max(per_scene.values()) <= 2 and len(per_scene) >= 2  # spread over scenes


def test_bad_inputs_skipped_and_empty_result_is_error(clips, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00not a video" * 100)
    rep = build_dataset([bad, clips / "ep2.mkv", tmp_path / "missing.mkv"], tmp_path / "ok", size=48)
    assert rep.frames_kept > 0
    assert {Path(p).name for p, _ in rep.skipped} == {"broken.mp4", "missing.mkv"}
    gray = tmp_path / "gray.mkv"
    write_clip(gray, [np.repeat(f.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2) for f in clip_frames()[:20]])
    with pytest.raises(RuntimeError, match="no frames kept"):
        build_dataset([gray, bad], tmp_path / "empty" / "deep", size=48)
    assert not (tmp_path / "empty").exists()  # nothing to resume from: no half-built folder left
    kept = tmp_path / "existing"
    kept.mkdir()
    with pytest.raises(RuntimeError, match="no frames kept") as err:
        build_dataset([bad], kept, size=48)
    assert "[Errno" not in str(err.value)  # FFmpeg's message, not its error number
    assert kept.is_dir() and not any(kept.iterdir())  # the user's own folder stays, emptied of staging
    with pytest.raises(FileNotFoundError, match="no video or image"):
        build_dataset([tmp_path / "missing.mkv"], tmp_path / "never", size=48)
    assert not (tmp_path / "never").exists()


def test_image_folder_alpha_composited(tmp_path):
    import cv2

    folder = tmp_path / "imgs"
    folder.mkdir()
    for k in range(3):
        img = np.zeros((80, 120, 4), np.uint8)  # BGRA, transparent background
        cv2.circle(img, (60, 40), 25, (40 + 80 * k, 200, 30, 255), -1)
        cv2.rectangle(img, (0, 0), (119, 10), (200, 40, 40 + 90 * k, 255), -1)
        cv2.imwrite(str(folder / f"art{k}.png"), img)
    (folder / "broken.png").write_bytes(b"nope")
    rep = build_dataset([folder], tmp_path / "ds", size=64, val_fraction=0)
    assert rep.frames_kept == 3 and rep.scenes == 3
    assert [Path(p).name for p, _ in rep.skipped] == ["broken.png"]
    ds = FrameDataset(tmp_path / "ds", "train", crop=64, augment=False)
    for f in ds.rgb_frames():
        assert (f[-1, 0] > 245).all()  # transparent corner became white background


def test_loader_contract(built):
    out, _ = built
    clean = FrameDataset(out, "train", crop=48, augment=False)
    aug = FrameDataset(out, "train", crop=48, augment=True, seed=0)
    assert len(clean) == len(aug) > 0
    item = clean[0]
    assert item["L"].shape == (1, 48, 48) and item["ab"].shape == (2, 48, 48)
    assert item["L"].dtype == item["ab"].dtype == __import__("torch").float32
    rgb = next(iter(clean.rgb_frames()))[8:56, 8:56]
    L_ref = gray_to_L(y_to_gray(rgb_to_y(rgb))) / 50 - 1
    np.testing.assert_allclose(item["L"][0].numpy(), L_ref, atol=1e-6)
    np.testing.assert_allclose(item["ab"].numpy(), rgb_to_lab(rgb)[..., 1:].transpose(2, 0, 1), atol=1e-4)
    # Augmented: L stays in range and differs from the clean gray; ab is the clean color of a
    # random crop, possibly flipped (same window as L).
    it = aug[0]
    L, ab = it["L"].numpy(), it["ab"].numpy()
    assert L.min() >= -1 and L.max() <= 1
    full = next(iter(aug.rgb_frames()))
    lab = rgb_to_lab(full)[..., 1:].transpose(2, 0, 1)
    matches = [
        (y, x, fl)
        for y in range(64 - 48 + 1)
        for x in range(64 - 48 + 1)
        for fl in (False, True)
        if np.allclose((lab[:, y : y + 48, x : x + 48][:, :, ::-1] if fl else lab[:, y : y + 48, x : x + 48]), ab, atol=1e-4)
    ]
    assert matches
    y, x, fl = matches[0]
    window = full[y : y + 48, x : x + 48][:, ::-1] if fl else full[y : y + 48, x : x + 48]
    clean_L = gray_to_L(y_to_gray(rgb_to_y(np.ascontiguousarray(window)))) / 50 - 1
    assert np.abs(L[0] - clean_L).mean() > 0.005  # degraded like film
    assert np.abs(L[0] - clean_L).mean() < 0.3  # ... but the same picture
    # On a textured picture the film look keeps the content (correlation) while changing pixels.
    yy, xx = np.mgrid[0:96, 0:96]
    pic = (128 + 60 * np.sin(xx / 7.0) * np.cos(yy / 11.0)).astype(np.uint8)
    rng = np.random.default_rng(0)
    outs = [bw_film_augment(pic, rng) for _ in range(10)]
    assert all(o.dtype == np.uint8 and o.shape == pic.shape for o in outs)
    assert np.median([np.corrcoef(o.ravel(), pic.ravel())[0, 1] for o in outs]) > 0.8
    assert np.mean([np.abs(o.astype(int) - pic).mean() for o in outs]) > 3
    with pytest.raises(ValueError, match="crop"):
        FrameDataset(out, "train", crop=128)


def test_cli_build_and_info(clips, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["dataset", "build", str(clips / "ep1.mkv"), "-o", str(out), "--size", "48", "--seed", "2"]) == 0
    assert main(["dataset", "info", str(out), "--verify"]) == 0
    assert "manifest_checksum" in capsys.readouterr().out
    assert main(["dataset", "build", str(clips / "ep1.mkv"), "-o", str(out), "--size", "48"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["dataset", "info", str(tmp_path / "nothing")]) == 1
