"""The ``Colorizer`` interface: gray frames in, Lab a/b chroma out.

Everything downstream (temporal smoothing, merging with the source luma,
preview, evaluation) works on what a Colorizer returns, so baselines (gray,
luma lookup table) and the CNN plug in the same way::

    col = load_colorizer("weights/default.safetensors")
    w, h = col.working_size(width, height)          # model input size
    gray_w = resize(gray_full, (w, h))               # uint8 (N, h, w)
    ab = col(gray_w)                                 # float32 (N, h/s, w/s, 2), s = col.output_stride

The caller resizes frames to ``working_size`` (cheap on CPU, and it runs in the
decode thread so it overlaps inference).
"""
from __future__ import annotations

import contextlib
import copy
import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from .color import gray_to_L

__all__ = [
    "Colorizer",
    "apply_colorizer",
    "ModelColorizer",
    "GrayColorizer",
    "LutColorizer",
    "working_size",
    "resolve_device",
    "default_batch_size",
    "load_colorizer",
    "DEFAULT_WEIGHTS",
]

DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "default.safetensors"


def working_size(width: int, height: int, long_side: int = 256, multiple: int = 32) -> tuple[int, int]:
    """Model input size for a ``width x height`` frame: long side ~``long_side``, both multiples of ``multiple``."""
    if width <= 0 or height <= 0:
        raise ValueError(f"bad frame size {width}x{height}")
    scale = long_side / max(width, height)
    w = max(multiple, int(round(width * scale / multiple)) * multiple)
    h = max(multiple, int(round(height * scale / multiple)) * multiple)
    return w, h


@runtime_checkable
class Colorizer(Protocol):
    """Predicts chroma for a batch of gray frames at working size.

    Optional capabilities, declared by attributes and honoured by every caller:

    * ``uses_time = True``: called ``col(gray, times)`` (see :func:`apply_colorizer`;
      the keyframe colorizer);
    * ``needs_source_chroma = True``: the pipeline reads the source's own chroma
      planes too and hands them over before each batch (``take_source(ys, uvs,
      full_range)``), keeps ``frame_extras(n)`` beside each frame, and lets the
      colorizer make the output planes (``merge(y, (ab, extra), subsampling,
      full_range, matrix)``) (the keep-color colorizer, :mod:`animecolor.keepcolor`).
    """

    output_stride: int
    name: str

    def working_size(self, width: int, height: int) -> tuple[int, int]:
        """Input size (w, h) this colorizer wants for a ``width x height`` frame."""
        ...

    def __call__(self, gray: np.ndarray) -> np.ndarray:
        """uint8 ``(N, h, w)`` full-range gray -> float32 ``(N, h/s, w/s, 2)`` Lab a/b."""
        ...


def apply_colorizer(col: Colorizer, gray: np.ndarray, times=None) -> np.ndarray:
    """``col(gray)``; a colorizer that sets ``uses_time = True`` is called ``col(gray, times)``.

    ``times``: each frame's presentation time in seconds (a sequence of floats).
    Colorizers whose colors depend on where a frame is in the video (colored
    keyframes carried through their shot) declare ``uses_time``; every caller
    (episode, preview, evaluate) goes through here, so none needs to know which.
    """
    if getattr(col, "uses_time", False):
        if times is None:
            raise ValueError(f"colorizer {getattr(col, 'name', type(col).__name__)!r} needs the frames' times")
        return col(gray, times)  # type: ignore[call-arg]
    return col(gray)


def check_gray_batch(gray: np.ndarray, stride: int) -> np.ndarray | None:
    """Refuse anything but a uint8 ``(N, h, w)`` batch; for an empty one, the empty a/b to return."""
    if gray.ndim != 3 or gray.dtype != np.uint8:
        raise ValueError(f"expected uint8 (N, h, w) gray batch, got {gray.dtype} {gray.shape}")
    if gray.shape[0] == 0:
        return np.zeros((0, gray.shape[1] // stride, gray.shape[2] // stride, 2), np.float32)
    return None


def resolve_device(device: str | None = None) -> torch.device:
    """``None``/``"auto"``: CUDA when present, else CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda requested but no CUDA GPU is available")
    return dev


def default_batch_size(device: torch.device) -> int:
    return 32 if device.type == "cuda" else 8


class ModelColorizer:
    """Runs a :class:`~animecolor.model.ResidualColorizer` on CPU or CUDA.

    CUDA: channels_last + bf16 autocast (fp16 where bf16 is unsupported).
    CPU: channels_last, float32.  Always ``torch.inference_mode``.
    """

    def __init__(self, model, device: str | torch.device | None = None, compile: bool = False, name: str = "model"):
        self.device = resolve_device(device) if not isinstance(device, torch.device) else device
        from .model.net import fuse_conv_bn

        # a private copy with batch norm folded into the convs (same outputs, ~1/3 less CPU time)
        self.model = fuse_conv_bn(copy.deepcopy(model).eval()).to(self.device).to(memory_format=torch.channels_last)
        self.cfg = self.model.cfg  # the private copy's: decoding settings changed here take effect
        self.output_stride = model.output_stride
        self.name = name
        self.runtime = "torch"
        if self.device.type == "cuda":
            dt = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            self._ctx = lambda: torch.autocast("cuda", dtype=dt)
        else:
            self._ctx = contextlib.nullcontext
        self._forward = torch.compile(self.model) if compile else self.model
        self._lut = torch.from_numpy(gray_to_L(np.arange(256, dtype=np.uint8)) / 50.0 - 1.0).float().to(self.device)

    def working_size(self, width: int, height: int) -> tuple[int, int]:
        return working_size(width, height, self.cfg.working_long_side)

    def __call__(self, gray: np.ndarray) -> np.ndarray:
        if (empty := check_gray_batch(gray, self.output_stride)) is not None:
            return empty
        with torch.inference_mode():
            g = torch.from_numpy(np.ascontiguousarray(gray)).to(self.device, non_blocking=True)
            x = self._lut[g.long()].unsqueeze(1).contiguous(memory_format=torch.channels_last)
            with self._ctx():
                out = self._forward(x)
            ab = self.model.decode(out)
            return ab.permute(0, 2, 3, 1).float().cpu().numpy()


class GrayColorizer:
    """Baseline: no color at all (a = b = 0)."""

    output_stride = 1
    name = "gray"

    def working_size(self, width: int, height: int) -> tuple[int, int]:
        return working_size(width, height)

    def __call__(self, gray: np.ndarray) -> np.ndarray:
        return np.zeros(gray.shape + (2,), np.float32)


class LutColorizer:
    """Baseline: mean a/b of each gray level, fitted on training frames.

    On flat-colored cartoons brightness alone predicts a lot of the color, so
    a CNN must beat this table to show it learned shapes and context.
    """

    output_stride = 1

    def __init__(self, table: np.ndarray, name: str = "lut"):
        table = np.asarray(table, np.float32)
        if table.shape != (256, 2):
            raise ValueError(f"LUT must be (256, 2), got {table.shape}")
        self.table = table
        self.name = name

    @classmethod
    def fit(cls, rgb_frames, name: str = "lut") -> "LutColorizer":
        """Fit on an iterable of uint8 RGB frames ``(H, W, 3)``."""
        from .color import rgb_to_lab, y_to_gray
        from .frames import rgb_to_y

        sums = np.zeros((256, 2), np.float64)
        counts = np.zeros(256, np.float64)
        for rgb in rgb_frames:
            lab = rgb_to_lab(rgb)
            # brightness as a B&W video carries it (video luma), exactly what inference sees
            g = y_to_gray(rgb_to_y(rgb)).reshape(-1)
            counts += np.bincount(g, minlength=256)
            sums[:, 0] += np.bincount(g, weights=lab[..., 1].reshape(-1), minlength=256)
            sums[:, 1] += np.bincount(g, weights=lab[..., 2].reshape(-1), minlength=256)
        table = np.zeros((256, 2), np.float32)
        seen = counts > 0
        table[seen] = (sums[seen] / counts[seen, None]).astype(np.float32)
        if seen.any():  # fill unseen levels from the nearest seen level
            idx = np.flatnonzero(seen)
            nearest = idx[np.abs(np.arange(256)[:, None] - idx[None, :]).argmin(axis=1)]
            table = table[nearest]
        return cls(table, name)

    def save(self, path: str | os.PathLike) -> None:
        np.save(path, self.table)

    @classmethod
    def load(cls, path: str | os.PathLike, name: str = "lut") -> "LutColorizer":
        return cls(np.load(path, allow_pickle=False), name)

    def working_size(self, width: int, height: int) -> tuple[int, int]:
        return working_size(width, height)

    def __call__(self, gray: np.ndarray) -> np.ndarray:
        return self.table[gray]


def check_working_size(px: int) -> int:
    """Validate a ``--working-size`` (the model input's long side in pixels)."""
    if px < 64 or px > 2048 or px % 32:
        raise ValueError(f"--working-size must be a multiple of 32 between 64 and 2048, got {px}")
    return px


def check_temperature(t: float) -> float:
    """Validate a ``--temperature`` (annealed-mean decoding of a classification-head model)."""
    if not (0.05 <= t <= 10):
        raise ValueError(f"--temperature must be between 0.05 and 10, got {t}")
    return float(t)


def load_colorizer(
    weights: str | os.PathLike | None = None,
    device: str | None = None,
    compile: bool = False,
    working_long_side: int | None = None,
    temperature: float | None = None,
    runtime: str = "auto",
):
    """Load a checkpoint (default: the shipped ``weights/default.safetensors``).

    ``working_long_side`` overrides the checkpoint's model input size (long side,
    px): smaller is faster (cost grows with its square), the checkpoint's own
    value is the one its quality was measured at.  ``temperature`` overrides the
    decoding temperature of a classification-head model: lower is more vivid,
    higher duller and safer; the checkpoint's own value was picked on validation clips.
    ``runtime``: "torch", "onnx" (ONNX Runtime on CPU; exports the weights once into the
    user cache when no export is beside them) or "auto" (on CPU the same, falling back to
    PyTorch where the weights cannot be exported: no ``onnx`` package, no writable cache;
    PyTorch on CUDA): see :mod:`animecolor.runtime`.
    """
    from .model import WeightsError, load_model
    from .runtime import RUNTIMES

    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")

    if working_long_side is not None:
        check_working_size(working_long_side)
    if temperature is not None:
        check_temperature(temperature)
    path = Path(weights) if weights else DEFAULT_WEIGHTS
    if weights is None and not path.is_file():
        raise WeightsError(f"shipped default weights are missing: {path} (pass --weights)")
    dev = resolve_device(device)
    model = load_model(path, device="cpu")
    if working_long_side is not None:
        model.cfg.working_long_side = working_long_side
    if temperature is not None:
        if model.cfg.head != "ce":
            raise ValueError(f"--temperature needs a classification-head model; {path.name} regresses a/b directly")
        model.cfg.temperature = temperature
    col = ModelColorizer(model, dev, compile=compile, name=path.name)
    if runtime == "torch" or (runtime == "auto" and dev.type != "cpu"):
        return col
    return _onnx_colorizer(col, path, runtime)


def _onnx_colorizer(col: ModelColorizer, path: Path, runtime: str):
    """``col`` run by ONNX Runtime (see :func:`load_colorizer`), or ``col`` itself for "auto" when that cannot be."""
    from . import runtime as rt
    from .model import file_sha256

    if col.device.type != "cpu":
        raise ValueError(f"--runtime onnx runs on the CPU only; use --runtime torch on {col.device}")
    if not rt.onnx_available():
        if runtime == "auto":
            return col
        raise RuntimeError("--runtime onnx needs the onnxruntime package (pip install onnxruntime)")
    digest = file_sha256(path)
    found = rt.OnnxColorizer.from_weights(col, path, digest)
    if found is not None:
        return found
    if runtime == "auto" and not rt.can_export():
        return col
    from .reference import REFERENCE_PARAMS

    dst = rt.cache_dir() / f"{digest}.onnx"
    try:
        return rt.OnnxColorizer(col, rt.export_onnx(col.model, dst, digest, features=REFERENCE_PARAMS.features))
    except OSError:
        if runtime == "auto":  # no writable cache: PyTorch, as before
            return col
        raise
