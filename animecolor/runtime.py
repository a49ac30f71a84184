"""Run the colorizer with ONNX Runtime on CPU (PyTorch stays for training and CUDA).

The network (batch norm folded into the convs) and its a/b decoding are exported
once to an ONNX file whose metadata records the SHA-256 of the safetensors file
it came from, so a stale export is never used.  The shipped weights have their
export beside them (``weights/default.onnx``, made by ``pipelines/export_onnx.py``).
For other weights ``runtime="onnx"`` and ``"auto"`` export on first use into the user
cache (``$XDG_CACHE_HOME/animecolor``, ``~/.cache/animecolor``); ``"auto"`` falls back to
PyTorch where that cannot be done (no ``onnx`` package, no writable cache).

The decoding temperature is an input of the graph, so ``--temperature`` works
the same on both runtimes.  Outputs match PyTorch's to about 1e-3 a/b units
(tests/test_runtime.py; the Lab a/b range is about +-110).
"""
from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

RUNTIMES = ("auto", "torch", "onnx")

__all__ = ["RUNTIMES", "OnnxColorizer", "export_onnx", "export_keepcolor_onnx", "find_export", "onnx_available"]


def onnx_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def can_export() -> bool:
    """Whether models can be exported to ONNX here (torch's exporter needs the ``onnx`` package)."""
    try:
        import onnx
    except ImportError:
        return False
    return onnx is not None


def runtime_like(col) -> str:
    """The runtime a model derived from ``col`` (adapted to references or keyframes) should run on: ``col``'s,
    or PyTorch when that is ONNX Runtime but the derived model cannot be exported here."""
    runtime = getattr(col, "runtime", "torch")
    return "torch" if runtime == "onnx" and not can_export() else runtime


def export_onnx(model, dst: str | os.PathLike, source_digest: str, features: str | None = None) -> Path:
    """Write ``model`` (an eval-mode, batch-norm-folded ResidualColorizer) as ONNX to ``dst`` (atomically).

    With ``features`` (a :class:`~animecolor.reference.MatchParams` ``features``
    source, e.g. "bb8+bb16") the graph also outputs the reference matcher's
    stride-8 features from the same pass (``feats``), so the reference and
    keyframe modes run on ONNX Runtime too; the source is recorded in the metadata.
    """
    import torch

    class _Exported(torch.nn.Module):
        """Lightness in [-1, 1] ``(N, 1, H, W)`` and 1/temperature ``(1,)`` -> a/b ``(N, 2, H/2, W/2)``."""

        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor, inv_t: torch.Tensor):
            out, feats, dec = self.model.forward_maps(x)
            cfg = self.model.cfg
            if cfg.head == "reg":
                ab = out * 100.0 + 0.0 * inv_t.sum()  # keeps the input in the graph
            else:
                n, _, h, w = out.shape
                logits = out.reshape(n, 2, cfg.n_bins, h, w)
                p = torch.softmax(logits * inv_t, dim=2)
                ab = (p * self.model.grid.view(1, 1, -1, 1, 1)).sum(dim=2)
            if features is None:
                return ab
            return ab, self.model.match_features(feats, dec, features, (x.shape[2] // 8, x.shape[3] // 8))

    return _export(_Exported(model), (torch.zeros(1, 1, 64, 64), torch.ones(1)), Path(dst),
                   (["x", "inv_t"], ["ab"] + (["feats"] if features else [])),
                   {"x": {0: "n", 2: "h", 3: "w"}, "ab": {0: "n", 2: "h2", 3: "w2"},
                    **({"feats": {0: "n", 2: "h8", 3: "w8"}} if features else {})},
                   {"source_sha256": source_digest, "match_features": features})


def _export(module, args: tuple, dst: Path, names: tuple[list[str], list[str]], axes: dict, meta: dict[str, str | None]) -> Path:
    """``torch.onnx.export`` of ``module`` into ``dst`` (atomically), with ``meta`` as the graph's metadata."""
    try:
        import onnx
    except ImportError:
        raise RuntimeError("exporting to ONNX needs the 'onnx' package (pip install onnx), or use --runtime torch") from None
    import torch

    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=dst.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module.eval(), args, tmp, dynamo=False, opset_version=17,
                              input_names=names[0], output_names=names[1], dynamic_axes=axes)
        proto = onnx.load(tmp)
        for key, value in meta.items():
            if value:
                entry = proto.metadata_props.add()
                entry.key, entry.value = key, value
        onnx.save(proto, tmp)
        os.replace(tmp, dst)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return dst


def export_keepcolor_onnx(model, head, dst: str | os.PathLike, source_digest: str) -> Path:
    """Write a keep-color network (the eval-mode, batch-norm-folded colorizer ``model`` and its mask
    ``head``) as ONNX: lightness ``x`` in [-1, 1] ``(N, 1, H, W)`` and the frames' own a/b ``src``
    ``(N, 2, H/4, W/4)`` (NaN where a frame has none: the colorizer's a/b is used) -> ``ab``
    ``(N, 2, H/2, W/2)`` and the mask's probabilities ``mask`` ``(N, H/4, W/4)``, as
    :meth:`animecolor.keepcolor.KeepColorizer.predict` computes them.

    A head on RGB features (``head.cfg.features == "rgb"``) reads colors that are computed between
    the two networks, so it is written in two graphs: ``dst`` takes ``x`` to ``ab`` only, and
    :func:`keepcolor_head_path` of ``dst`` takes the frames' colors ``rgb`` ``(N, 3, H, W)`` in [-1, 1] and
    the a/b the head sees ``hab`` ``(N, 2, H/4, W/4)`` (Lab) to ``mask``."""
    import torch
    import torch.nn.functional as F

    class _Exported(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model, self.head = model, head

        def forward(self, x: torch.Tensor, src: torch.Tensor):
            out, feats, _ = self.model.forward_maps(x)
            ab = self.model.decode(out)
            size = feats[self.head.cfg.taps[0]].shape[-1]
            hab = F.avg_pool2d(ab, ab.shape[-1] // size) if ab.shape[-1] != size else ab  # = area resize: sizes are multiples of 32
            hab = torch.where(torch.isnan(src), hab, src)
            return ab, torch.sigmoid(self.head(feats, hab / 100.0))

    class _Colors(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor):
            return self.model.predict_ab(x)

    class _Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.head = head

        def forward(self, rgb: torch.Tensor, hab: torch.Tensor):
            return torch.sigmoid(self.head(self.head.rgb_maps(rgb), hab / 100.0))

    meta = {"source_sha256": source_digest, "what": "keep-color"}
    x_axes = {"x": {0: "n", 2: "h", 3: "w"}, "ab": {0: "n", 2: "h2", 3: "w2"}}
    if head.cfg.features == "rgb":
        _export(_Head(), (torch.zeros(1, 3, 64, 64), torch.zeros(1, 2, 16, 16)), keepcolor_head_path(Path(dst)),
                (["rgb", "hab"], ["mask"]), {"rgb": {0: "n", 2: "h", 3: "w"}, "hab": {0: "n", 2: "h4", 3: "w4"},
                                            "mask": {0: "n", 1: "h4", 2: "w4"}}, {**meta, "what": "keep-color head"})
        return _export(_Colors(), (torch.zeros(1, 1, 64, 64),), Path(dst), (["x"], ["ab"]), x_axes,
                       {**meta, "what": "keep-color colors"})
    x = torch.zeros(1, 1, 64, 64)
    src = torch.full((1, 2, 16, 16), float("nan"))
    return _export(_Exported(), (x, src), Path(dst), (["x", "src"], ["ab", "mask"]),
                   {**x_axes, "src": {0: "n", 2: "h4", 3: "w4"}, "mask": {0: "n", 1: "h4", 2: "w4"}}, meta)


def keepcolor_head_path(dst: Path) -> Path:
    """Where :func:`export_keepcolor_onnx` writes the head graph of an RGB-feature head exported to ``dst``."""
    return dst.with_name(dst.stem + "-head" + dst.suffix)


def _session(path: Path, threads: int | None = None, spinning: bool = False):
    """An ONNX Runtime session for the colorizer, with its thread settings."""
    import onnxruntime as ort
    import torch

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or torch.get_num_threads()
    so.inter_op_num_threads = 1
    if not spinning:  # idle worker threads sleep instead of spinning: they share the cores with x264 (+6 % e2e)
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _matching_session(path: Path, digest: str, **opts):
    """The session of the export at ``path`` when it recorded ``digest``, else None (also when unreadable)."""
    if not path.is_file():
        return None
    try:
        session = _session(path, **opts)
    except Exception:
        return None
    return session if session.get_modelmeta().custom_metadata_map.get("source_sha256") == digest else None


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "animecolor"


def _candidates(weights: Path, digest: str) -> tuple[Path, Path]:
    return weights.with_suffix(".onnx"), cache_dir() / f"{digest}.onnx"


def find_export(weights: Path, digest: str) -> Path | None:
    """An existing export of ``weights`` (beside it, or in the cache) whose recorded digest matches."""
    return next((c for c in _candidates(weights, digest) if _matching_session(c, digest) is not None), None)


class OnnxColorizer:
    """The same colorizer as :class:`~animecolor.colorize.ModelColorizer` on CPU, run by ONNX Runtime.

    Wraps a ModelColorizer (kept as ``base``) and replaces only its forward pass;
    ``model``, ``_lut`` and ``_ctx`` stay the PyTorch ones, which the reference and
    keyframe modes use for the network's feature maps.
    """

    def __init__(self, base, onnx_path: str | os.PathLike, threads: int | None = None, spinning: bool = False,
                 session=None):
        self.session = session or _session(Path(onnx_path), threads, spinning)
        self.path = Path(onnx_path)
        self.base = base
        self.model = base.model
        self.cfg = base.cfg
        self.device = base.device
        self.output_stride = base.output_stride
        self.name = base.name
        self.runtime = "onnx"
        self._lut, self._ctx = base._lut, base._ctx
        self._lut_np = base._lut.numpy()
        #: the reference matcher's feature source the graph also outputs (None: an export without them)
        self.features_source = self.session.get_modelmeta().custom_metadata_map.get("match_features")

    @classmethod
    def from_weights(cls, base, weights: Path, digest: str) -> "OnnxColorizer | None":
        """``base`` run from an existing export of ``weights`` (see :func:`find_export`); the session that
        checked the export's digest is the one that runs, so the export is loaded once."""
        for cand in _candidates(weights, digest):
            session = _matching_session(cand, digest)
            if session is not None:
                return cls(base, cand, session=session)
        return None

    def working_size(self, width: int, height: int) -> tuple[int, int]:
        return self.base.working_size(width, height)

    def __call__(self, gray: np.ndarray) -> np.ndarray:
        from .colorize import check_gray_batch

        if (empty := check_gray_batch(gray, self.output_stride)) is not None:
            return empty
        (ab,) = self.session.run(["ab"], self._inputs(gray))
        return np.ascontiguousarray(ab.transpose(0, 2, 3, 1))

    def features_and_ab(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 ``(N, h, w)`` at working size -> the matcher's features ``(N, C, h/8, w/8)`` (source
        :attr:`features_source`) and a/b ``(N, 2, h/s, w/s)``, from one pass."""
        if self.features_source is None:
            raise ValueError(f"{self.path.name} was exported without the matcher's features")
        ab, feats = self.session.run(["ab", "feats"], self._inputs(gray))
        return feats, ab

    def _inputs(self, gray: np.ndarray) -> dict[str, np.ndarray]:
        return {"x": self._lut_np[gray][:, None], "inv_t": np.array([1.0 / self.cfg.temperature], np.float32)}
