"""Adapt the colorizer to a user's reference stills: a short fine-tune on them, cached.

The reference stills of ``--reference`` are color frames of the series (a later
color episode, posters), i.e. exactly the material fine-tuning wants, only a
few frames of it.  :func:`adapt_to_references` fine-tunes the base model on
random crops of those frames for a few hundred steps (the ``finetune``
recipe: early blocks frozen, backbone at 0.3x the decoder's learning rate,
B&W-film augmentation of the input) and writes the result into the user cache
(``$XDG_CACHE_HOME/animecolor/adapted``), keyed by the base weights, the
frames and the settings, so a ``preview`` followed by ``episode`` with the
same references trains once.  The reference colorizer then mixes this model's
prediction with the correspondence transfer (``MatchParams.model_mix``).
Steps, mix and decoding temperature were picked on validation material
(docs/reference.md, "Session 14").
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["ADAPT_STEPS", "ADAPT_TEMPERATURE", "ReferenceCrops", "adapt_to_references", "adapted_path"]

#: Fine-tuning steps on the reference stills (batch 16, crop 160): picked on validation (docs/reference.md).
ADAPT_STEPS = 400
#: Decoding temperature of the adapted model (the plain mean of its color distribution): picked on validation.
ADAPT_TEMPERATURE = 1.0
_CROP = 160
_BATCH = 16
_LR = 3e-4
_VERSION = 1  # bump when the recipe changes, so old cache entries are not reused


class ReferenceCrops(Dataset):
    """Random ``crop`` x ``crop`` training items from a few color frames: a random frame, place and mirror
    per draw, the gray input with the B&W-film augmentation of the dataset loader.  ``length`` items per epoch."""

    def __init__(self, frames: Sequence[np.ndarray], crop: int = _CROP, length: int = 1024, seed: int = 0) -> None:
        if not frames:
            raise ValueError("no reference frames to adapt to")
        small = [f for f in frames if min(f.shape[:2]) < crop]
        if small:
            raise ValueError(f"reference frames must be at least {crop} px on each side, got {small[0].shape[1]}x{small[0].shape[0]}")
        self.frames, self.crop, self.length, self.seed = list(frames), int(crop), int(length), int(seed)
        self._draws = 0

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        from .data.loader import training_item

        self._draws += 1
        rng = np.random.default_rng([self.seed, int(i), self._draws, torch.initial_seed() & 0xFFFFFFFF])
        return training_item(self.frames[int(rng.integers(len(self.frames)))], self.crop, rng)


def _cache_root() -> Path:
    from .runtime import cache_dir

    return cache_dir() / "adapted"


def adapted_path(weights: str | os.PathLike, frames: Sequence[np.ndarray], steps: int = ADAPT_STEPS, seed: int = 0) -> Path:
    """Where the adaptation of ``weights`` to ``frames`` is cached (it need not exist)."""
    from .model import file_sha256

    h = hashlib.sha256()
    h.update(json.dumps({"v": _VERSION, "weights": file_sha256(weights), "steps": int(steps), "seed": int(seed),
                         "crop": _CROP, "batch": _BATCH, "lr": _LR, "t": ADAPT_TEMPERATURE}).encode())
    for f in frames:
        h.update(str(f.shape).encode())
        h.update(np.ascontiguousarray(f).tobytes())
    return _cache_root() / f"{h.hexdigest()[:32]}.safetensors"


def adapt_to_references(
    weights: str | os.PathLike,
    frames: Sequence[np.ndarray],
    steps: int = ADAPT_STEPS,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Fine-tune ``weights`` on the color ``frames`` (uint8 RGB) for ``steps`` steps; returns the checkpoint.

    The frames are brought to the model's working size (its long side) first, as
    the pipeline sees frames.  A cached result for the same weights, frames and
    settings is returned without training.  ``progress(step, steps)`` is called
    after every step.  The checkpoint decodes at :data:`ADAPT_TEMPERATURE` and
    records where it came from in its header.
    """
    from .frames import fit_long_side
    from .model import file_sha256, load_model, read_metadata, save_model
    from .train import TrainConfig, train

    if steps < 1:
        raise ValueError(f"adaptation steps must be >= 1, got {steps}")
    dst = adapted_path(weights, frames, steps, seed)
    if dst.is_file():
        return dst
    long_side = int(read_metadata(weights)["config"].working_long_side)
    small = [fit_long_side(f, long_side) for f in frames]
    crop = min(_CROP, min(min(f.shape[:2]) for f in small) // 32 * 32)  # small references: smaller crops
    if crop < 32:
        raise ValueError("reference frames are too small to adapt the model to (need at least 32 px on each side)")
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".adapt-", dir=dst.parent))
    except OSError:  # no writable cache: train in a temporary folder and keep the result there
        work = Path(tempfile.mkdtemp(prefix="animecolor-adapt-"))
        dst = work / dst.name
    cfg = TrainConfig(loss="ce+l1", steps=int(steps), batch_size=_BATCH, lr=_LR, val_every=int(steps),
                      warmup=min(50, max(1, steps // 4)), seed=seed)

    def cb(ev: dict) -> None:
        if progress is not None and "event" not in ev:
            progress(int(ev["step"]), int(ev["steps"]))

    try:
        train(cfg, ReferenceCrops(small, crop, seed=seed), None, work, init=str(weights), resume=False, device=device, callback=cb)
        model = load_model(work / "best.safetensors")
        if model.cfg.head == "ce":
            model.cfg.temperature = ADAPT_TEMPERATURE
        save_model(model, dst, {"note": f"adapted to {len(frames)} reference frame(s)",
                                "adapted": {"base_sha256": file_sha256(weights), "frames": len(frames), "steps": int(steps),
                                            "seed": int(seed)}})
    finally:
        if work != dst.parent:
            shutil.rmtree(work, ignore_errors=True)
    return dst
