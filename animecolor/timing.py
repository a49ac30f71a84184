"""Where an episode's time goes: wall seconds per pipeline stage, per thread.

Each thread of the pipeline (decode, main, encode) adds the time it spends in
each of its stages, including the time it waits on a neighbour's queue, so
``EpisodeResult.stages`` tells which stage the others wait for.  On a machine
with fewer cores than busy threads, a stage's wall time includes the time its
thread was waiting for a core.
"""
from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Iterator

__all__ = ["StageTimes"]


class StageTimes:
    """``with times("model"): ...`` adds the block's wall seconds to ``times.seconds["model"]``."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - t0

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] += seconds
