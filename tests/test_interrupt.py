"""SIGINT and SIGTERM in the middle of ``animecolor episode``: prompt exit, one line, no file left."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import make_clip

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")

EXIT_WITHIN_S = 5.0


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    """Long enough that the episode is still running seconds after it starts writing."""
    return make_clip(tmp_path_factory.mktemp("long") / "long.mp4", n=1500, w=192, h=128, audio_tracks=1)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_episode_exits_promptly_and_leaves_nothing(sig, long_clip, tmp_path, tiny_random_model):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    dst = out_dir / "colored.mkv"
    cmd = [sys.executable, "-m", "animecolor", "episode", str(long_clip), str(dst), "--weights", str(tiny_random_model),
           "--device", "cpu", "--batch-size", "4", "--preset", "medium", "--threads", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # mid-episode: the temporary output has grown past its header, so decode, model and encode all run
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            parts = list(out_dir.glob(".colored.partial-*.mkv"))
            if parts and parts[0].exists() and parts[0].stat().st_size > 4096:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the episode ended before it could be interrupted: make the clip longer"
        assert parts, "no temporary output appeared"
        t0 = time.monotonic()
        proc.send_signal(sig)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"still running 30 s after {sig.name}")
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print(f"{sig.name}: exit {took:.2f} s after the signal")
    assert took < EXIT_WITHIN_S, f"{sig.name}: exit took {took:.1f} s"
    assert proc.returncode == 128 + sig, (proc.returncode, err)
    lines = [ln for ln in err.splitlines() if ln.startswith("animecolor:") and "using" not in ln]
    assert lines == ["animecolor: interrupted"], err
    assert "Traceback" not in err
    assert list(out_dir.iterdir()) == [], "a file was left in the output folder"


def test_abort_drops_queued_work_and_never_finishes_the_file():
    """On an error or interrupt the encode thread stops after the item in hand: the queued
    batches are dropped and the encoder is not flushed nor the trailer written (at 1080p
    with x264's look-ahead that flush alone takes seconds)."""
    import threading

    from animecolor.writers import _ThreadedWriter

    class Slow(_ThreadedWriter):
        def __init__(self):
            super().__init__(queue_size=3)
            self.written, self.finished = [], False
            self.busy = threading.Event()

        def _write_item(self, item):
            self.busy.set()
            time.sleep(0.5)
            self.written.append(item)

        def _finish(self):
            time.sleep(2.0)
            self.finished = True

    w = Slow()
    for i in range(4):  # one in hand, three queued
        w.put(i)
    assert w.busy.wait(5)
    t0 = time.monotonic()
    w.abort()
    took = time.monotonic() - t0
    assert not w.finished and w.written == [0], w.written
    assert took < 1.0, took
