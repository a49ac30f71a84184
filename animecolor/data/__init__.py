"""Training data: building frame datasets from color episodes, and the training loader."""
from .build import BuildEvent, BuildReport, build_dataset, dataset_info, read_manifest
from .loader import FrameDataset, bw_film_augment
from .sampling import DROP_REASONS, SelectParams

__all__ = [
    "BuildEvent", "BuildReport", "build_dataset", "dataset_info", "read_manifest",
    "FrameDataset", "bw_film_augment", "DROP_REASONS", "SelectParams",
]
