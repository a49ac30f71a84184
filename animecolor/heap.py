"""Keep the process's memory flat over long episodes (glibc malloc).

glibc serves an allocation above its mmap threshold with its own mapping, given
back to the system when freed, and the rest from heaps it keeps.  The threshold
starts at 128 KiB and *rises* each time such a block is freed (up to 32 MiB), so
after a few batches the model's activation buffers (one to tens of MiB each, a
new set per batch, from several threads) come from the heaps, and the heaps keep
what is freed between batches: measured with the PyTorch runtime at 1080p
(``pipelines/memory.py --runtime torch``), memory in use stays at ~720 MiB while
the free memory glibc holds grows from 140 to 415 MiB in 400 frames, and RSS with it.
A fixed 1 MiB threshold keeps the free memory held at ~11 MiB (RSS flat, no
speed cost measured).  :func:`fix_mmap_threshold` sets it once per process.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["fix_mmap_threshold", "malloc_stats", "MMAP_THRESHOLD"]

MMAP_THRESHOLD = 1 << 20
_M_MMAP_THRESHOLD = -3  # malloc.h
_done = False


def _libc_function(name: str):
    """A function of the C library, or None (not Linux, or a libc without it: musl has no mallopt)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), name)
    except (OSError, AttributeError):
        return None


def fix_mmap_threshold(nbytes: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold (no-op elsewhere, and after the first call); True when it was set."""
    global _done
    if _done:
        return False
    _done = True
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_THRESHOLD, nbytes))


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def malloc_stats() -> tuple[int, int] | None:
    """glibc's (bytes in use, free bytes it holds) over all its heaps and mappings (``mallinfo2``); None elsewhere."""
    mallinfo2 = _libc_function("mallinfo2")
    if mallinfo2 is None:
        return None
    mallinfo2.restype = _MallInfo2
    m = mallinfo2()
    return m.uordblks + m.hblkhd, m.fordblks
