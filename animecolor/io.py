"""Streaming video I/O: the public names of :mod:`animecolor.reader` and :mod:`animecolor.writers`."""
from .reader import BatchReader, FrameBatch, VideoInfo, check_input_path, luma_plane, open_video, plane_array, probe
from .writers import (
    CODEC_DEFAULT_PRESET,
    EncodeItem,
    EncodeSettings,
    FfmpegWriter,
    PyAVWriter,
    check_output_folder,
    choose_pix_fmt,
    make_yuv_frame,
)

__all__ = [
    "VideoInfo",
    "FrameBatch",
    "BatchReader",
    "probe",
    "open_video",
    "check_input_path",
    "luma_plane",
    "plane_array",
    "PyAVWriter",
    "FfmpegWriter",
    "EncodeSettings",
    "EncodeItem",
    "CODEC_DEFAULT_PRESET",
    "choose_pix_fmt",
    "check_output_folder",
    "make_yuv_frame",
]
