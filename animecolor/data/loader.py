"""Training loader: :class:`FrameDataset` over a built dataset, with B&W-film augmentations.

The model input is computed exactly the way inference sees a B&W frame
(RGB -> video luma -> full-range gray -> Lab L), then degraded like old film
(``augment=True``): gamma/contrast, exposure flicker, slight blur, film grain,
dust specks and vertical scratches.  The target a/b comes from the clean color
frame.  Random crop and horizontal flip are shared by input and target.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..color import gray_to_L, rgb_to_lab, y_to_gray
from ..frames import rgb_to_y
from .build import read_manifest

__all__ = ["FrameDataset", "bw_film_augment", "training_item"]


def training_item(rgb: np.ndarray, crop: int, rng: np.random.Generator | None) -> dict[str, torch.Tensor]:
    """One training item from a uint8 RGB frame: ``{"L": (1, crop, crop) in [-1, 1], "ab": (2, crop, crop)}``.

    With ``rng``: a random crop, a mirror half the time and the B&W-film
    augmentation of the input; without: the center crop, clean."""
    S0, S1 = rgb.shape[:2]
    c = crop
    if rng is not None:
        y, x = int(rng.integers(0, S0 - c + 1)), int(rng.integers(0, S1 - c + 1))
        rgb = rgb[y : y + c, x : x + c]
        if rng.random() < 0.5:
            rgb = rgb[:, ::-1]
    else:
        y, x = (S0 - c) // 2, (S1 - c) // 2
        rgb = rgb[y : y + c, x : x + c]
    rgb = np.ascontiguousarray(rgb)
    gray = y_to_gray(rgb_to_y(rgb))
    if rng is not None:
        gray = bw_film_augment(gray, rng)
    L = gray_to_L(gray) / 50.0 - 1.0
    ab = rgb_to_lab(rgb)[..., 1:]
    return {
        "L": torch.from_numpy(np.ascontiguousarray(L[None], dtype=np.float32)),
        "ab": torch.from_numpy(np.ascontiguousarray(ab.transpose(2, 0, 1), dtype=np.float32)),
    }


def bw_film_augment(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Make a clean uint8 gray frame look like real B&W footage (returns uint8, same shape)."""
    g = gray.astype(np.float32) / 255.0
    h, w = g.shape
    # Tone curve: gamma, contrast around mid-gray, brightness flicker (whole-frame exposure).
    g = np.power(np.clip(g, 0, 1), rng.uniform(0.7, 1.4))
    g = (g - 0.5) * rng.uniform(0.75, 1.25) + 0.5
    g = g * rng.uniform(0.85, 1.12) + rng.uniform(-0.06, 0.06)
    # Slight blur (soft prints, telecine).
    if rng.random() < 0.5:
        g = cv2.GaussianBlur(g, (0, 0), sigmaX=rng.uniform(0.3, 1.2))
    # Film grain: gaussian noise, sometimes clumped (low-pass filtered).
    if rng.random() < 0.8:
        noise = rng.normal(0.0, rng.uniform(0.005, 0.04), size=(h, w)).astype(np.float32)
        if rng.random() < 0.5:
            noise = cv2.GaussianBlur(noise, (0, 0), sigmaX=0.8) * 2.0
        g = g + noise
    # Dust specks: small dark or bright blobs.
    if rng.random() < 0.6:
        for _ in range(int(rng.integers(1, 12))):
            c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            axes = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
            val = float(rng.uniform(0.0, 0.15) if rng.random() < 0.6 else rng.uniform(0.85, 1.0))
            cv2.ellipse(g, c, axes, float(rng.uniform(0, 180)), 0, 360, val, -1)
    # Vertical scratches: thin, long, slightly slanted lines.
    if rng.random() < 0.3:
        for _ in range(int(rng.integers(1, 3))):
            x = int(rng.integers(0, w))
            y0, y1 = int(rng.integers(0, h // 2)), int(rng.integers(h // 2, h))
            val = float(rng.uniform(0.7, 1.0) if rng.random() < 0.5 else rng.uniform(0.0, 0.3))
            cv2.line(g, (x, y0), (x + int(rng.integers(-3, 4)), y1), val, 1)
    return np.clip(np.rint(g * 255.0), 0, 255).astype(np.uint8)


class FrameDataset(Dataset):
    """Frames of one split of a dataset built by ``animecolor dataset build``.

    Items are ``{"L": float32 (1, crop, crop) in [-1, 1], "ab": float32 (2, crop, crop)}``.
    All shards of the split are decompressed into one uint8 array at
    construction (N x S x S x 3 bytes, e.g. 1,000 frames at 256 px = 197 MB);
    DataLoader workers forked afterwards share it copy-on-write.
    """

    def __init__(
        self, root: str | os.PathLike, split: str = "train", crop: int = 224, augment: bool = True, seed: int = 0
    ) -> None:
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        self.split, self.crop, self.augment, self.seed = split, int(crop), bool(augment), int(seed)
        size = self.manifest["frame_layout"]["size"]
        if self.crop > min(size):
            raise ValueError(f"crop {crop} is larger than the stored frames ({size[0]}x{size[1]}); use --crop <= {min(size)}")
        shards = [s for s in self.manifest["shards"] if s["split"] == split]
        n = sum(s["frames"] for s in shards)
        self._rgb = np.empty((n, size[1], size[0], 3), np.uint8)
        self.index = np.empty(n, np.int64)
        i = 0
        for s in shards:
            path = self.root / s["file"]
            if not path.exists():
                raise FileNotFoundError(f"{path} missing: the dataset is incomplete, rebuild it or copy the whole folder")
            with np.load(path) as z:
                rgb, idx = z["rgb"], z["index"]
            self._rgb[i : i + len(rgb)] = rgb
            self.index[i : i + len(rgb)] = idx
            i += len(rgb)
        self._draws = 0

    def __len__(self) -> int:
        return len(self._rgb)

    def rgb_frames(self) -> Iterator[np.ndarray]:
        """The split's stored frames, uint8 RGB ``(S, S, 3)``, in shard order (no augmentation)."""
        yield from self._rgb

    def record(self, i: int) -> dict:
        """The manifest record (source, timestamp_s, scene, ...) of item ``i``."""
        return self.manifest["frames"][int(self.index[i])]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rng = None
        if self.augment:
            self._draws += 1
            rng = np.random.default_rng([self.seed, int(i), self._draws, torch.initial_seed() & 0xFFFFFFFF])
        return training_item(self._rgb[i], self.crop, rng)
