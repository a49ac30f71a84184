"""Selective color, training: the mask head learned from a few edited frames (``animecolor select train``).

The backbone's maps up to the tuned stride are computed once per pair view and
cached, so training never runs the full backbone; the views are each pair, its
mirror image, copy-paste views (another pair's subject pasted onto it) and decoy
views (a piece of its background recolored in a subject's colors).  The
result is one self-describing safetensors checkpoint that
:func:`animecolor.keepcolor.load_keepcolor` rebuilds (see docs/keepcolor.md).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as TF

from .color import lab_to_rgb, rgb_to_lab
from .keepcolor import FORMAT, MIN_CHROMA, HeadConfig, KeepColorizer, MaskHead, _gray_of, _lut, derive_mask, load_pair, rgb_input

__all__ = ["TUNE_FROM", "FEATURE_SOURCE", "PASTE", "DECOYS", "HEAD_AB", "default_config", "EPOCHS", "EARLY_STOP_EPOCHS", "train_keepcolor"]

#: ``select train``'s fine-tuning default (HeadConfig.tune_from): chosen on the Koro val shots, docs/keepcolor.md.
#: HeadConfig's own default stays 0, what a checkpoint written before the option means.
TUNE_FROM = 16
#: ``select train``'s feature source (HeadConfig.features): "rgb", chosen across Caminandes sequences
#: (pipelines/select_features.py), on the Koro val shots and on held-out clip-art training pairs, docs/keepcolor.md.
#: HeadConfig's own default stays "colorizer", what a checkpoint written before the option means.
FEATURE_SOURCE = "rgb"
#: copy-paste views per training pair (another pair's subject pasted onto it): chosen on the Koro val shots and
#: held-out clip-art training pairs, docs/keepcolor.md.
PASTE = 4
#: decoy views per training pair (a piece of its background recolored in a subject's colors, as background) and
#: whether a head on rgb features also reads the frame's a/b (HeadConfig.chroma): chosen together across Caminandes
#: sequences (pipelines/select_features.py), on the Koro val shots and held-out clip-art training pairs,
#: docs/keepcolor.md.  Colorizer features always read the a/b (without it they see no color).
DECOYS = 2
HEAD_AB = False
#: epochs on all the pairs (no pair held out for early stopping; ``select train --early-stop`` holds every 5th
#: out): chosen on the Koro val shots and held-out clip-art training pairs, docs/keepcolor.md.
EPOCHS = 30
#: with early stopping: epochs at most
EARLY_STOP_EPOCHS = 80


def _save(path: Path, base, head: MaskHead, info: dict) -> None:
    from safetensors.torch import save_file

    state = {f"base.{k}": v.detach().cpu().contiguous() for k, v in base.state_dict().items()}
    state.update({f"head.{k}": v.detach().cpu().contiguous() for k, v in head.state_dict().items()})
    meta = {"format": FORMAT, "config": head.cfg.to_json(), "base_config": base.cfg.to_json(),
            "info": json.dumps(info, sort_keys=True)}
    tmp = path.with_name(path.name + ".partial")
    save_file(state, str(tmp), metadata=meta)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- training

def _maps(feats: Sequence[torch.Tensor], keep: set[int]) -> list[torch.Tensor | None]:
    """One frame's maps (batch of one) as cached: only those in ``keep``, the others ``None``."""
    return [f[0].clone() if i in keep else None for i, f in enumerate(feats)]


def _jitter(inp: np.ndarray, mask: np.ndarray, known: np.ndarray, rng: np.random.Generator, light: bool = True):
    """A random view of a pair for training: a crop of 60-100 % of the frame's side scaled back to its
    size, mirrored half the time and, with ``light``, under another light (per-channel gains 0.8-1.2: a
    color cast; brightness 0.35-1.15; gamma 0.7-1.4).  The mask follows the crop; its color does not matter."""
    H, W = mask.shape
    s = rng.uniform(0.6, 1.0)
    ch, cw = max(8, round(H * s)), max(8, round(W * s))
    y0, x0 = rng.integers(0, H - ch + 1), rng.integers(0, W - cw + 1)
    crop = lambda a, interp: cv2.resize(a[y0:y0 + ch, x0:x0 + cw], (W, H), interpolation=interp)  # noqa: E731
    inp, mask, known = crop(inp, cv2.INTER_LINEAR), crop(mask, cv2.INTER_LINEAR), crop(known, cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        inp, mask, known = inp[:, ::-1], mask[:, ::-1], known[:, ::-1]
    if not light:
        return np.ascontiguousarray(inp), np.ascontiguousarray(mask), np.ascontiguousarray(known)
    rgb = np.clip(inp.astype(np.float32) / 255.0 * rng.uniform(0.8, 1.2, 3), 0, 1) ** rng.uniform(0.7, 1.4)
    rgb = np.clip(rgb * rng.uniform(0.35, 1.15) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return rgb, np.ascontiguousarray(mask), np.ascontiguousarray(known)


def _subject(inp: np.ndarray, mask: np.ndarray, known: np.ndarray) -> tuple | None:
    """A pair's subject for copy-paste views (:func:`_paste`): its pixels, its mask as alpha and its known
    map cut to the box of the mask, and the frame's height; None when the subject is under 64 pixels."""
    if (mask > 0.5).sum() < 64:
        return None
    on = mask > 0.02
    ys, xs = np.nonzero(on)
    box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    return inp[box], (mask * on)[box], known[box], mask.shape[0]


def _paste(inp: np.ndarray, mask: np.ndarray, known: np.ndarray, donor: tuple, rng: np.random.Generator):
    """Copy-paste view: the donor pair's subject (:func:`_subject`), mirrored half the time and scaled to
    50-110 % of its size relative to the frame's height, pasted at a random place onto this pair's frame;
    the pasted pixels count as subject."""
    d_inp, d_alpha, d_known, d_height = donor
    H, W = mask.shape
    bh, bw = d_alpha.shape
    f = rng.uniform(0.5, 1.1) * H / d_height
    f = min(f, 0.95 * H / bh, 0.95 * W / bw)
    ph, pw = max(4, round(bh * f)), max(4, round(bw * f))
    flip = rng.random() < 0.5
    def cut(a):  # noqa: E306
        c = cv2.resize(np.ascontiguousarray(a), (pw, ph), interpolation=cv2.INTER_AREA)
        return c[:, ::-1] if flip else c
    p_inp, alpha, p_known = cut(d_inp).astype(np.float32), cut(d_alpha), cut(d_known)
    ty, tx = rng.integers(0, H - ph + 1), rng.integers(0, W - pw + 1)
    inp, mask, known = inp.copy(), mask.copy(), known.copy()
    sl = (slice(ty, ty + ph), slice(tx, tx + pw))
    a3 = alpha[..., None]
    inp[sl] = np.clip(inp[sl] * (1 - a3) + p_inp * a3 + 0.5, 0, 255).astype(np.uint8)
    mask[sl] = mask[sl] * (1 - alpha) + alpha
    known[sl] = known[sl] * (1 - alpha) + p_known * alpha
    return inp, mask, known


def _decoy_region(inp: np.ndarray, mask: np.ndarray, rng: np.random.Generator, side: int = 160) -> np.ndarray | None:
    """A region of the frame's background (bool, the frame's size) to recolor: one connected piece of one of
    6 k-means color clusters of the frame (Lab, at ``side`` px), 0.5-20 % of the frame, off the subject."""
    H, W = mask.shape
    f = side / max(H, W)
    w, h = max(8, round(W * f)), max(8, round(H * f))
    lab = rgb_to_lab(cv2.resize(np.ascontiguousarray(inp), (w, h), interpolation=cv2.INTER_AREA)).reshape(-1, 3)
    subj = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) > 0.05
    cv2.setRNGSeed(int(rng.integers(1 << 30)))
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 10, 1.0)
    _, labels, _ = cv2.kmeans(lab.astype(np.float32), 6, None, crit, 1, cv2.KMEANS_PP_CENTERS)
    labels = labels.reshape(h, w)
    found = []
    for k in range(6):
        n, comp, stats, _ = cv2.connectedComponentsWithStats((labels == k).astype(np.uint8), connectivity=8)
        for c in range(1, n):
            if 0.005 * w * h <= stats[c, cv2.CC_STAT_AREA] <= 0.2 * w * h:
                region = comp == c
                if not (region & subj).any():
                    found.append(region)
    if not found:
        return None
    region = found[rng.integers(len(found))].astype(np.uint8)
    region = cv2.morphologyEx(region, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    return cv2.resize(region.astype(np.float32), (W, H), interpolation=cv2.INTER_LINEAR) > 0.5


def _decoy(inp: np.ndarray, mask: np.ndarray, known: np.ndarray, donor: tuple, rng: np.random.Generator):
    """Decoy view: a piece of the frame's background (:func:`_decoy_region`) recolored in the subject's colors
    (a/b moved to one of a training subject's pixels' a/b, half its own variation kept, lightness kept),
    still counting as background: the head learns that the subject's colors alone do not make the subject."""
    region = _decoy_region(inp, mask, rng)
    if region is None:
        return inp, mask, known
    d_inp, d_alpha, d_known, _ = donor
    d_ab = rgb_to_lab(d_inp)[..., 1:][(d_alpha > 0.5) & (d_known > 0.5)]
    if len(d_ab) == 0:
        return inp, mask, known
    color = d_ab[rng.integers(len(d_ab))]
    ys, xs = np.nonzero(region)
    box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    r = region[box]
    lab = rgb_to_lab(inp[box])
    ab = lab[..., 1:][r]
    lab[..., 1:][r] = color + 0.5 * (ab - ab.mean(0))
    inp, mask, known = inp.copy(), mask.copy(), known.copy()
    inp[box][r] = (lab_to_rgb(lab)[r] * 255.0 + 0.5).astype(np.uint8)
    mask[box][r] = 0.0
    known[box][r] = (np.hypot(*(lab[..., 1:][r].T)) >= MIN_CHROMA).astype(known.dtype)
    return inp, mask, known


def _prepare(encode: Callable[[np.ndarray, np.ndarray], list], pairs, long_side: int, augment: int = 0,
             seed: int = 0, light: bool = True, paste: int = 0, bw: int = 0, decoys: int = 0,
             colorize: Callable[[np.ndarray], np.ndarray] | None = None) -> list[dict]:
    """Cached backbone maps (``encode(rgb, gray)`` of the view at the working size: uint8 RGB and its
    gray) of each pair, its mirror image, ``augment`` random views (:func:`_jitter`)
    ``paste`` copy-paste views (:func:`_paste`: another pair's subject pasted onto it) and ``decoys`` decoy
    views (:func:`_decoy`: a piece of its background recolored in a subject's colors), with the
    frame's a/b and the mask target at the head's stride; and the first ``bw`` of these views again in
    the colorizer's colors (``colorize(gray)``: what the head sees on a B&W video).  With ``paste`` the pairs are read twice (first
    for their subjects' cut-outs), so that no more than one whole pair is held at a time."""
    from .colorize import working_size

    def loaded():
        for name, inp_p, tgt_p in pairs:
            inp, tgt = load_pair(inp_p, tgt_p)
            yield name, inp, *derive_mask(inp, tgt)

    rng = np.random.default_rng(seed)
    donors = [d for _, *pair in loaded() if (d := _subject(*pair)) is not None] if paste or decoys else []
    out = []
    for name, inp0, mask0, known0 in loaded():
        w, h = working_size(inp0.shape[1], inp0.shape[0], long_side)
        views = [(inp0, mask0, known0), (inp0[:, ::-1], mask0[:, ::-1], known0[:, ::-1])]
        views += [_jitter(inp0, mask0, known0, rng, light) for _ in range(augment)]
        if donors:
            views += [_paste(inp0, mask0, known0, donors[rng.integers(len(donors))], rng) for _ in range(paste)]
            views += [_decoy(inp0, mask0, known0, donors[rng.integers(len(donors))], rng) for _ in range(decoys)]
        views = [(view, False) for view in views] + [(view, True) for view in views[:bw]]
        for v, ((inp, mask, known), in_bw) in enumerate(views):
            rgb = cv2.resize(np.ascontiguousarray(inp), (w, h), interpolation=cv2.INTER_AREA)
            gray = cv2.resize(_gray_of(np.ascontiguousarray(inp)), (w, h), interpolation=cv2.INTER_AREA)
            ms = cv2.resize(mask * known, (w // 4, h // 4), interpolation=cv2.INTER_AREA)
            ks = cv2.resize(np.ascontiguousarray(known), (w // 4, h // 4), interpolation=cv2.INTER_AREA)
            if in_bw:
                rgb = colorize(gray)
            ab = cv2.resize(rgb_to_lab(rgb if in_bw else np.ascontiguousarray(inp))[..., 1:], (w // 4, h // 4),
                            interpolation=cv2.INTER_AREA) / 100.0
            out.append({
                "name": name, "view": v, "feats": encode(rgb, gray),
                "ab": torch.from_numpy(ab.transpose(2, 0, 1).copy()).float(),
                "mask": torch.from_numpy(np.where(ks > 0, ms / np.maximum(ks, 1e-6), 0)).float(),
                "known": torch.from_numpy(ks).float(),
            })
    return out


def _hard_negatives(samples: list[dict], weight: float, bins: int = 16, reach: float = 0.64) -> None:
    """Weight each sample's background pixels by how common their a/b is on the subject
    (``known`` becomes ``known x (1 + weight x share)`` there, share in [0, 1] relative to the subject's
    commonest color; a/b binned over +-``reach`` (Lab/100)): the look-alikes cost more when kept."""
    edges = np.linspace(-reach, reach, bins + 1)

    def bin_of(ab: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        a, b = ab.numpy()
        return (np.clip(np.digitize(a, edges) - 1, 0, bins - 1), np.clip(np.digitize(b, edges) - 1, 0, bins - 1))

    hist = np.zeros((bins, bins))
    for s in samples:
        on = ((s["mask"] > 0.5) & (s["known"] > 0.5)).numpy()
        ia, ib = bin_of(s["ab"])
        np.add.at(hist, (ia[on], ib[on]), 1)
    if hist.max() == 0:
        return
    hist /= hist.max()
    for s in samples:
        ia, ib = bin_of(s["ab"])
        share = torch.from_numpy(hist[ia, ib]).float()
        s["weight"] = s["known"] * (1 + weight * share * (s["mask"] < 0.5))


def _stack(samples: list[dict]) -> list[dict]:
    """Samples grouped by size, stacked into batches (one head call per group)."""
    groups: dict[tuple, list[dict]] = {}
    for s in samples:
        groups.setdefault(tuple(s["mask"].shape), []).append(s)
    return [{"feats": [None if g[0]["feats"][i] is None else torch.stack([s["feats"][i] for s in g])
                       for i in range(len(g[0]["feats"]))],
             "ab": torch.stack([s["ab"] for s in g]), "mask": torch.stack([s["mask"] for s in g]),
             "known": torch.stack([s["known"] for s in g]),
             "weight": torch.stack([s.get("weight", s["known"]) for s in g])} for g in groups.values()]


def _loss(head: MaskHead, b: dict) -> torch.Tensor:
    """Summed over the batch's samples: weighted BCE over the known pixels + soft Dice of each."""
    logit, t, k, wt = head(b["feats"], b["ab"]), b["mask"], b["known"], b["weight"]
    bce = (TF.binary_cross_entropy_with_logits(logit, t, reduction="none") * wt).sum((1, 2)) / wt.sum((1, 2)).clamp(min=1)
    p = torch.sigmoid(logit) * k
    dice = 1 - (2 * (p * t).sum((1, 2)) + 1) / (p.sum((1, 2)) + (t * k).sum((1, 2)) + 1)
    return (bce + dice).sum()


def _iou(head: MaskHead, batches: list[dict]) -> float:
    inter = union = 0.0
    with torch.no_grad():
        for b in batches:
            pr = head(b["feats"], b["ab"]) > 0
            t, k = b["mask"] > 0.5, b["known"] > 0.5
            inter += float((pr & t & k).sum())
            union += float(((pr | t) & k).sum())
    return inter / union if union else 1.0


def default_config(features: str = FEATURE_SOURCE, tune_from: int = TUNE_FROM, ab_input: bool | None = None) -> HeadConfig:
    """``select train``'s head: ``ab_input`` None means :data:`HEAD_AB` for rgb features, always for colorizer ones."""
    chroma = (HEAD_AB if features == "rgb" else True) if ab_input is None else ab_input
    return HeadConfig(tune_from=tune_from, features=features, chroma=chroma)


def train_keepcolor(
    pairs: Sequence[tuple[str, Path, Path]],
    run_dir: str | os.PathLike,
    *,
    base: str | os.PathLike | None = None,
    config: HeadConfig | None = None,
    epochs: int | None = None,
    patience: int = 10,
    lr: float = 2e-3,
    tune_lr: float = 1e-4,
    batch_size: int = 8,
    augment: int = 0,
    augment_light: bool = True,
    paste: int = PASTE,
    bw_views: int = 0,
    decoys: int = DECOYS,
    hard_negatives: float = 0.0,
    val_fraction: float = 0.0,
    seed: int = 0,
    progress: Callable[[dict], None] | None = None,
    base_model=None,
    rgb_backbone=None,
) -> dict:
    """Train the mask head on ``pairs`` (backbone of ``base``, default the shipped weights).

    By default every pair trains, for ``epochs`` (default :data:`EPOCHS`) epochs, and
    ``RUN/best.safetensors`` is the last epoch's head.  With ``val_fraction`` every
    ``1/val_fraction``-th pair (at least one) is held out for early stopping on mask IoU
    (``epochs`` at most, default :data:`EARLY_STOP_EPOCHS`), and the checkpoint is the best
    epoch's head.  The checkpoint holds the base's tensors and the record (pairs, epochs, val IoU).  With
    ``config.tune_from`` (default :data:`TUNE_FROM`) the head's copy of the
    backbone's last blocks learns at ``tune_lr``.  ``augment``: random views per
    training pair beside the pair and its mirror image (:func:`_jitter`;
    ``augment_light=False``: crops and mirrors only); ``paste``: copy-paste views per training pair
    (:func:`_paste`; 0: none); ``bw_views``: the first views of each pair (the pair, its mirror image, ...)
    again in the colorizer's colors, as the head sees a B&W video; ``hard_negatives``: extra
    weight of background pixels colored like the subject (:func:`_hard_negatives`).
    ``decoys``: decoy views per training pair (:func:`_decoy`; default :data:`DECOYS`).
    ``config`` default: :func:`default_config`.  ``config.features`` (default :data:`FEATURE_SOURCE`): "rgb" reads an ImageNet EfficientNet-Lite0 on the
    pairs' colors (its weights come from ``animecolor[train]``; ``rgb_backbone`` replaces them for tests).
    ``base_model`` (a ``ResidualColorizer``) replaces ``base`` for tests.  Returns the record.
    """
    from .colorize import DEFAULT_WEIGHTS
    from .finetune import base_model_info
    from .model import WeightsError, load_model

    t0 = time.perf_counter()
    emit = progress or (lambda ev: None)
    if val_fraction > 0 and len(pairs) < 2:
        raise ValueError(f"need at least 2 pairs (one is held out for early stopping), got {len(pairs)}")
    if not pairs:
        raise ValueError("no pairs to train on")
    if epochs is None:
        epochs = EARLY_STOP_EPOCHS if val_fraction > 0 else EPOCHS
    if epochs < 1 or patience < 1 or batch_size < 1 or min(augment, paste, bw_views, decoys, hard_negatives) < 0:
        raise ValueError("--epochs, --patience and --batch-size must be at least 1, --augment, --paste, --bw-views, "
                         "--decoys and --hard-negatives at least 0")
    if base_model is None:
        base_path = Path(base) if base else DEFAULT_WEIGHTS
        if not base_path.is_file():
            raise WeightsError(f"base model not found: {base_path} (pass --base)")
        base_model = load_model(base_path)
        base_rec = base_model_info(base_path)
    else:
        base_rec = {"path": "(in memory)", "sha256": ""}
    base_model.eval()
    cfg = config or default_config()
    source, rgb_rec = base_model.backbone, {}
    if cfg.features == "rgb":
        if rgb_backbone is None:
            from .model.backbone import EfficientNetLite0

            rgb_backbone = EfficientNetLite0(in_channels=3)
            weights = EfficientNetLite0.default_weights_path()
            rgb_backbone.load_imagenet(weights)
            rgb_rec = {"rgb_weights": base_model_info(weights)}
        else:
            rgb_rec = {"rgb_weights": {"path": "(in memory)", "sha256": ""}}
        source = rgb_backbone.eval()
    torch.manual_seed(seed)
    head = MaskHead(cfg, source.channels, source)
    first = head._first if head.tuned is not None else len(source.channels)
    keep = {i for i in cfg.taps if i < first} | ({first - 1} if head.tuned is not None else set())
    lut = _lut("cpu")

    def encode(rgb: np.ndarray, gray: np.ndarray) -> list:
        with torch.no_grad():
            if cfg.features == "rgb":
                return _maps(head.rgb_maps(rgb_input(rgb[None])), keep)
            x = lut[torch.from_numpy(np.ascontiguousarray(gray)).long()][None, None]
            return _maps(base_model.backbone.features_until(x, max(keep) + 1), keep)

    if val_fraction > 0:
        step = max(2, round(1 / val_fraction))
        val_names = {p[0] for i, p in enumerate(pairs) if i % step == step - 1} or {pairs[-1][0]}
    else:  # no held-out pairs: all of them train, for ``epochs`` epochs (the last one is kept)
        val_names = set()
    long_side = base_model.cfg.working_long_side
    def colorize(gray: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            ab = base_model.predict_ab(lut[torch.from_numpy(np.ascontiguousarray(gray)).long()][None, None])
            ab = ab[0].permute(1, 2, 0).numpy()
        return KeepColorizer.colors(gray[None], ab[None])[0]

    train_s = _prepare(encode, [p for p in pairs if p[0] not in val_names], long_side, augment, seed, augment_light,
                       paste, bw_views, decoys, colorize)
    val_s = [s for s in _prepare(encode, [p for p in pairs if p[0] in val_names], long_side)
             if s["view"] == 0]
    if hard_negatives:
        _hard_negatives(train_s, hard_negatives)
    val_b = _stack(val_s) if val_s else []
    n_train = len(pairs) - len(val_names)
    emit({"stage": "features", "train": n_train, "val": len(val_s), "seconds": time.perf_counter() - t0})
    tuned = list(head.tuned.parameters()) if head.tuned is not None else []
    rest = [p for n, p in head.named_parameters() if not n.startswith(("tuned.", "rgb."))]
    opt = torch.optim.AdamW([{"params": rest, "lr": lr}] + ([{"params": tuned, "lr": tune_lr}] if tuned else []),
                            lr=lr, weight_decay=1e-4)
    rng = np.random.default_rng(seed)
    best, best_state, best_epoch, history = -1.0, None, 0, []
    for epoch in range(1, epochs + 1):
        head.train()
        order = rng.permutation(len(train_s))
        total = 0.0
        for i in range(0, len(order), batch_size):
            opt.zero_grad()
            chunk = [train_s[j] for j in order[i:i + batch_size]]
            loss = sum(_loss(head, b) for b in _stack(chunk))
            (loss / len(chunk)).backward()
            opt.step()
            total += float(loss.detach())
        head.eval()
        iou = _iou(head, val_b) if val_b else None
        history.append({"epoch": epoch, "loss": total / len(order), "val_iou": iou})
        emit({"stage": "train", **history[-1]})
        if not val_b or iou > best:
            best, best_epoch = iou, epoch
            best_state = {k: v.clone() for k, v in head.state_dict().items()}
        elif epoch - best_epoch >= patience:
            break
    head.load_state_dict(best_state)
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    record = {
        "command": "select train", "base_model": base_rec, "pairs": len(pairs), "train_pairs": n_train,
        "val_pairs": sorted(val_names), "best_epoch": best_epoch, "epochs_run": len(history), "val_iou": best if val_b else None,
        "stopped_early": len(history) < epochs, "seconds": round(time.perf_counter() - t0, 1),
        "lr": lr, "seed": seed, "augment": augment, "augment_light": augment_light, "paste": paste,
        "hard_negatives": hard_negatives, "features": cfg.features, "bw_views": bw_views, "decoys": decoys, **rgb_rec,
        **({"tune_lr": tune_lr} if tuned else {}),
    }
    _save(run / "best.safetensors", base_model, head, record)
    with open(run / "history.jsonl", "w") as f:
        f.writelines(json.dumps(h) + "\n" for h in history)
    return {**record, "best": str(run / "best.safetensors")}
