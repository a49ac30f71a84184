"""Self-describing, safe checkpoints: safetensors tensors + JSON config in the header.

A checkpoint rebuilds its own model: ``load_model(path)`` needs nothing else.
No pickle is ever executed (safetensors holds raw tensors only).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from .net import ModelConfig, ResidualColorizer

__all__ = ["save_model", "load_model", "read_metadata", "file_sha256", "WeightsError", "FORMAT"]


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

FORMAT = "animecolor/1"


class WeightsError(ValueError):
    """A weights file is missing, unreadable, or not an animecolor checkpoint."""


def save_model(model: ResidualColorizer, path: str | os.PathLike, info: dict[str, Any] | None = None, fmt: str = FORMAT) -> None:
    """Write ``model`` to ``path`` (safetensors) atomically, with its config (``model.cfg.to_json()``) and ``info``.

    ``fmt`` names the kind of model in the header (other small networks, e.g. the refiner, use this too)."""
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    meta = {"format": fmt, "config": model.cfg.to_json(), "info": json.dumps(info or {}, sort_keys=True)}
    tmp = path.with_name(path.name + ".partial")
    save_file(state, str(tmp), metadata=meta)
    os.replace(tmp, path)


def read_metadata(path: str | os.PathLike, fmt: str = FORMAT, config_cls: Any = ModelConfig, hint: str = "") -> dict[str, Any]:
    """Header of a checkpoint: ``{"config": ModelConfig, "info": dict, "header": the raw metadata}`` (another
    ``fmt``: its ``config_cls``; ``hint`` ends the wrong-format error, e.g. how to make the right file)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # safetensors raises several types for garbage
        raise WeightsError(f"not a safetensors weights file: {path} ({e})") from None
    if meta.get("format") != fmt:
        raise WeightsError(f"not an {fmt.split('/')[0]} checkpoint (format={meta.get('format')!r}): {path}" + (f"; {hint}" if hint else ""))
    try:
        cfg = config_cls.from_json(meta["config"])
        info = json.loads(meta.get("info", "{}"))
    except (KeyError, ValueError, TypeError) as e:
        raise WeightsError(f"corrupt checkpoint header in {path}: {e}") from None
    return {"config": cfg, "info": info, "header": meta}


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> ResidualColorizer:
    """Rebuild the model a checkpoint describes and load its weights (strict), in eval mode."""
    from safetensors.torch import load_file

    meta = read_metadata(path)
    model = ResidualColorizer(meta["config"])
    try:
        state = load_file(str(path), device="cpu")
    except Exception as e:
        raise WeightsError(f"cannot read tensors from {path}: {e}") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise WeightsError(f"weights in {path} do not fit the model they describe: {first}") from None
    model.info = meta["info"]  # type: ignore[attr-defined]
    return model.to(device).eval()
