"""Damaged input files (tests/damage.py): every command either works or fails with one clean line.

``episode`` on 100 seeded cases (8 kinds of damage x 5 containers), ``preview`` on 40 and
``dataset build`` on 40 (a damaged file among good episodes); each case runs in-process
under a timeout.  ``pipelines/fuzz.py`` runs the same checks on 1,000+ cases.
"""
from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

import damage as D

CASE_TIMEOUT_S = 30.0


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """The tiny model on one thread: on 2 cores PyTorch's own threads, next to the decoder's,
    make each case ~7x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, bytes]:
    return D.make_sources(tmp_path_factory.mktemp("fuzz-sources"))


def _timed(fn, *args) -> D.Outcome:
    """``fn(*args)`` in a thread; a fail outcome when it has not returned after CASE_TIMEOUT_S."""
    box: list = []
    t = threading.Thread(target=lambda: box.append(fn(*args)), daemon=True)
    t.start()
    t.join(CASE_TIMEOUT_S)
    if t.is_alive():
        return D.Outcome("fail", f"no answer after {CASE_TIMEOUT_S:.0f} s (hang)")
    return box[0] if box else D.Outcome("fail", "the runner itself raised")


def _run_cases(tmp_path: Path, sources, seed: int, n: int, run) -> dict[str, list]:
    seen: dict[str, list] = {"ok": [], "error": [], "fail": []}
    for i in range(n):
        c = D.case(seed, i)
        src = D.write_case(c, sources, tmp_path)
        out_dir = tmp_path / "out"
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir()
        res = _timed(run, src, out_dir)
        seen[res.status].append((c.name, res.detail))
        src.unlink()
    return seen


def test_the_generator_is_seeded_and_covers_every_kind_and_container(sources):
    cases = [D.case(0, i) for i in range(40)]
    assert {(c.kind, c.fmt) for c in cases} == {(k, f) for k in D.KINDS for f in D.FORMATS}
    a = [D.damage(sources[c.fmt], c.kind, c.rng) for c in cases]
    b = [D.damage(sources[c.fmt], c.kind, c.rng) for c in (D.case(0, i) for i in range(40))]
    assert a == b
    assert all(x != sources[c.fmt] for x, c in zip(a, cases))
    assert a != [D.damage(sources[c.fmt], c.kind, c.rng) for c in (D.case(1, i) for i in range(40))]


def test_sources_decode_fully_with_their_streams(tmp_path, sources):
    for fmt, data in sources.items():
        p = tmp_path / f"whole.{fmt}"
        p.write_bytes(data)
        frames, kinds = D.decodable(p)
        assert frames == 12, fmt
        assert kinds == {"mp4": ["video", "audio"], "mkv": ["video", "audio", "subtitle"], "gif": ["video"]}.get(
            fmt, ["video", "audio"]
        )


def test_episode_on_100_damaged_files(tmp_path, sources, tiny_random_model):
    """Success = a playable output with the input's stream kinds and every decodable frame;
    else exit 1 with exactly one 'animecolor: error:' line and nothing in the output folder."""
    seen = _run_cases(tmp_path, sources, 0, 100, lambda s, o: D.run_episode(s, o, tiny_random_model))
    assert not seen["fail"], seen["fail"]
    assert len(seen["ok"]) >= 20 and len(seen["error"]) >= 20, {k: len(v) for k, v in seen.items()}
    # empty, random and text files never pass for video
    assert not [n for n, _ in seen["ok"] if any(k in n for k in ("-empty.", "-random.", "-text."))]


def test_preview_on_40_damaged_files(tmp_path, sources, tiny_random_model):
    seen = _run_cases(tmp_path, sources, 1, 40, lambda s, o: D.run_preview(s, o, tiny_random_model))
    assert not seen["fail"], seen["fail"]
    assert seen["ok"] and seen["error"]


def test_dataset_build_skips_a_damaged_episode_and_builds_the_others(tmp_path, sources):
    good_dir = tmp_path / "good"
    good_dir.mkdir()
    good = [D.make_clip(good_dir / "ep1.mp4", color=True), D.make_clip(good_dir / "ep2.mkv", color=True, n=16)]
    seen = _run_cases(tmp_path, sources, 2, 40, lambda s, o: D.run_dataset(s, good, o))
    assert not seen["fail"], seen["fail"]
    how = dict(seen["ok"])
    for name, what in how.items():
        if any(k in name for k in ("-empty.", "-random.", "-text.")):
            assert what == "skipped", name
    assert "used" in how.values()  # lightly damaged files still give frames


def _mkv_with(tmp_path: Path, old: bytes, new: bytes) -> Path:
    """The test mkv (H.264 + AAC + SubRip) with one Matroska CodecID renamed to one no decoder knows."""
    data = D.make_clip(tmp_path / "whole.mkv").read_bytes()
    assert data.count(old) == 1 and len(old) == len(new)
    p = tmp_path / f"unknown-{new.decode().replace('/', '_')}.mkv"
    p.write_bytes(data.replace(old, new))
    return p


def test_unknown_codec_ids_are_one_line_errors(tmp_path, tiny_random_model):
    """A flipped bit in a codec id leaves a stream without a decoder (PyAV: codec_context None),
    which used to end in AttributeError tracebacks."""
    video = _mkv_with(tmp_path, b"V_MPEG4/ISO/AVC", b"V_MPEG4/ISO/AVX")
    audio = _mkv_with(tmp_path, b"A_AAC", b"A_AAX")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    res = D.run_episode(video, out_dir, tiny_random_model)
    assert res.status == "error" and "unknown codec" in res.detail, res
    res = D.run_episode(audio, out_dir, tiny_random_model)
    assert res.status == "error" and "audio stream #1" in res.detail and "unknown" in res.detail, res
    assert D.run_preview(video, out_dir, tiny_random_model).status == "error"
    good = [D.make_clip(tmp_path / "good.mp4", color=True)]
    assert D.run_dataset(video, good, out_dir) == D.Outcome("ok", "skipped")


def test_judge_catches_what_the_rules_forbid(tmp_path):
    """The checker itself: a traceback, two error lines or a leftover file are failures."""
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    src = tmp_path / "x.mp4"
    assert D.judge(None, "", "Traceback ...\nAttributeError: x", out_dir, None, src).status == "fail"
    two = "animecolor: error: a\nanimecolor: error: b\n"
    assert D.judge(1, two, "", out_dir, None, src).status == "fail"
    assert D.judge(1, "animecolor: error: a\n", "", out_dir, None, src).status == "error"
    (out_dir / ".out.partial-1.mkv").write_bytes(b"x")
    assert D.judge(1, "animecolor: error: a\n", "", out_dir, None, src).status == "fail"


def test_a_copied_stream_the_muxer_refuses_is_named(tmp_path, sources, tiny_random_model):
    """Seed 0, case 1: bit flips in the mp4's AAC parameters, which the Matroska muxer refuses;
    the error names the stream (it used to name the hidden temporary file: 'cannot write
    .out.partial-PID.mkv: Invalid argument')."""
    c = D.case(0, 1)
    src = D.write_case(c, sources, tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    res = D.run_episode(src, out_dir, tiny_random_model)
    assert res.status == "error", res
    assert "cannot copy audio stream #1 into .mkv" in res.detail and "partial" not in res.detail, res
