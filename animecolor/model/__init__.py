"""The residual-encoder colorizer network, its backbones and checkpoints."""
from .backbone import BACKBONES, EfficientNetLite0, VGG16, build_backbone
from .checkpoint import WeightsError, file_sha256, load_model, read_metadata, save_model
from .net import ModelConfig, ResidualColorizer, ab_grid, fuse_conv_bn

__all__ = [
    "file_sha256",
    "BACKBONES",
    "EfficientNetLite0",
    "VGG16",
    "build_backbone",
    "ModelConfig",
    "ResidualColorizer",
    "ab_grid",
    "fuse_conv_bn",
    "WeightsError",
    "load_model",
    "read_metadata",
    "save_model",
]
