"""Public entry point for training sets: ``from animecolor.dataset import FrameDataset``.

The implementation lives in :mod:`animecolor.data` (sources, frame selection,
shard building, loader); this module re-exports it.
"""
from .data import (
    DROP_REASONS,
    BuildEvent,
    BuildReport,
    FrameDataset,
    SelectParams,
    build_dataset,
    bw_film_augment,
    dataset_info,
    read_manifest,
)

__all__ = [
    "DROP_REASONS", "BuildEvent", "BuildReport", "FrameDataset", "SelectParams",
    "build_dataset", "bw_film_augment", "dataset_info", "read_manifest",
]
