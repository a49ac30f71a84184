"""Streaming video I/O: the public names of :mod:`animecolor.reader` and :mod:`animecolor.writers`."""
from . import reader, writers
from .reader import *  # noqa: F401,F403
from .writers import *  # noqa: F401,F403

__all__ = reader.__all__ + writers.__all__
