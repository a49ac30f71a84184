"""animecolor.heap: with the fixed mmap threshold, freed big buffers do not stay in glibc's heaps."""
from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = r"""
import sys
import numpy as np
from animecolor.heap import fix_mmap_threshold, malloc_stats

if sys.argv[1] == "fixed":
    assert fix_mmap_threshold()
kept = []
for _ in range(5):  # big buffers freed between small long-lived ones (a batch's activations vs. state)
    big = [np.ones(3 << 20, np.uint8) for _ in range(8)]
    for b in big:
        kept.append(np.ones(4096, np.uint8))
    del big
print(malloc_stats()[1] >> 20)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_fixed_threshold_keeps_freed_buffers_out_of_the_heap():
    def held_free_mib(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
        return int(out.stdout.strip())

    default, fixed = held_free_mib("default"), held_free_mib("fixed")
    assert fixed < 4, fixed
    assert default > fixed + 10, (default, fixed)  # glibc's rising threshold keeps them (the growth it fixes)
