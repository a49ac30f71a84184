"""Training and fine-tuning of the residual-encoder colorizer.

Small and readable in the nanoGPT manner: a dataclass config saved in every
checkpoint, one loop, ``autocast`` chosen once.  Any ``torch.utils.data.Dataset``
yielding ``{"L": (1,H,W) in [-1,1], "ab": (2,H,W) Lab}`` trains it; the
project's own is :class:`animecolor.dataset.FrameDataset`.

Losses (``TrainConfig.loss``):
* ``l2`` / ``l1``: regression head on a/b.  L2 is known to average plausible
  colors into sepia; L1 (median) less so.
* ``ce``: classification over quantized a and b (22 bins each) with soft
  targets and class rebalancing (Zhang et al. 2016), decoded by annealed mean.
* ``ce+l1``: ``ce`` plus ``L1_WEIGHT`` x the L1 error of the head's plain mean
  (T = 1) decoded color, so the distribution stays informative while its mean
  is pulled onto the true color.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from .model import EfficientNetLite0, ModelConfig, ResidualColorizer, load_model, save_model

__all__ = ["TrainConfig", "train", "rebalance_weights", "ce_loss", "evaluate_batches", "LOSSES", "HEAD_LOSSES",
           "head_for_loss", "check_ema_decay", "ema_update"]

LOSSES = ("ce", "l1", "l2", "ce+l1")
# The losses each model head trains with (the first is the head's default); together, LOSSES.
HEAD_LOSSES = {"ce": ("ce", "ce+l1"), "reg": ("l1", "l2")}
L1_WEIGHT = 10.0  # ce+l1: weight of the L1 term (a/b in units of 100, so ~0.15 x 10 vs a CE of ~2-3)


@dataclass
class TrainConfig:
    loss: str = "ce"  # ce | l1 | l2 | ce+l1
    steps: int = 2000
    batch_size: int = 16
    lr: float = 1e-3
    backbone_lr_mult: float = 0.3
    weight_decay: float = 1e-4
    warmup: int = 100
    freeze_early: bool = True  # keep stem + stride<=4 blocks frozen (speed, generic edges)
    rebalance_lambda: float = 0.5
    val_every: int = 250
    time_budget_s: float | None = None  # stop (and save) when exceeded
    patience: int | None = None  # early stop: val a/b MAE not improved for this many validations (None = off)
    seed: int = 0
    num_workers: int = 0
    ema_decay: float | None = None  # validate and save an exponential moving average of the weights (e.g. 0.999)
    l1_weight: float = L1_WEIGHT  # ce+l1: weight of the L1 term
    model: dict = field(default_factory=dict)  # ModelConfig overrides for a fresh model

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


def rebalance_weights(ab_samples: np.ndarray, cfg: ModelConfig, lam: float = 0.5, sigma: float = 1.0) -> torch.Tensor:
    """Per-axis class weights ``(2, Q)`` from a/b samples ``(M, 2)``: w ~ 1/((1-lam) p + lam/Q), E_p[w] = 1."""
    Q = cfg.n_bins
    out = []
    for c in range(2):
        idx = np.clip(((ab_samples[:, c] + cfg.ab_max) / cfg.ab_bin).astype(int), 0, Q - 1)
        p = np.bincount(idx, minlength=Q).astype(np.float64)
        k = np.exp(-0.5 * (np.arange(-3, 4) / sigma) ** 2)
        p = np.convolve(p, k / k.sum(), mode="same")
        p /= p.sum()
        w = 1.0 / ((1 - lam) * p + lam / Q)
        w /= (p * w).sum()
        out.append(w)
    return torch.tensor(np.stack(out), dtype=torch.float32)


def ce_loss(out: torch.Tensor, ab: torch.Tensor, cfg: ModelConfig, weights: torch.Tensor | None) -> torch.Tensor:
    """Soft-target cross entropy on the a and b marginals.  out ``(N,2Q,h,w)``, ab ``(N,2,h,w)``."""
    n, _, h, w = out.shape
    Q = cfg.n_bins
    logp = F.log_softmax(out.float().reshape(n, 2, Q, h, w), dim=2)
    t = ((ab + cfg.ab_max) / cfg.ab_bin - 0.5).clamp(0, Q - 1 - 1e-4)
    lo = t.floor().long()
    frac = (t - lo.float()).unsqueeze(2)
    hi = (lo + 1).clamp(max=Q - 1)
    nll = -(torch.gather(logp, 2, lo.unsqueeze(2)) * (1 - frac) + torch.gather(logp, 2, hi.unsqueeze(2)) * frac)
    nll = nll.squeeze(2)  # (n, 2, h, w)
    if weights is not None:
        wt = torch.stack([weights[c][lo[:, c]] for c in range(2)], dim=1)
        nll = nll * wt
    return nll.mean()


def _loss_fn(model: ResidualColorizer, loss: str, weights: torch.Tensor | None, l1_weight: float = L1_WEIGHT) -> Callable:
    def fn(out: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        if loss == "ce":
            return ce_loss(out, ab, model.cfg, weights)
        if loss == "ce+l1":
            mean = model.decode(out, temperature=1.0)
            return ce_loss(out, ab, model.cfg, weights) + l1_weight * F.l1_loss(mean / 100.0, ab / 100.0)
        pred = out.float()
        target = ab / 100.0
        if loss == "l1":
            return F.l1_loss(pred, target)
        if loss == "l2":
            return F.mse_loss(pred, target)
        raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")

    return fn


def _target_ab(ab: torch.Tensor, stride: int) -> torch.Tensor:
    return F.avg_pool2d(ab, stride) if stride > 1 else ab


@torch.no_grad()
def evaluate_batches(model: ResidualColorizer, loader, device: torch.device, max_batches: int | None = None) -> dict:
    """Validation: a/b MAE and chroma-magnitude ratio (prediction / truth) at the output size."""
    model.eval()
    err = mag_p = mag_t = 0.0
    n = 0
    for i, batch in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        x = batch["L"].to(device).contiguous(memory_format=torch.channels_last)
        ab = _target_ab(batch["ab"].to(device), model.output_stride)
        pred = model.predict_ab(x)
        err += (pred - ab).abs().mean().item() * len(x)
        mag_p += pred.norm(dim=1).mean().item() * len(x)
        mag_t += ab.norm(dim=1).mean().item() * len(x)
        n += len(x)
    model.train()
    return {"ab_mae": err / max(n, 1), "chroma_ratio": mag_p / max(mag_t, 1e-6), "n": n}


def _freeze_early(model: ResidualColorizer) -> list[torch.nn.Module]:
    bb = model.backbone
    frozen: list[torch.nn.Module] = []
    if isinstance(bb, EfficientNetLite0):
        frozen = [bb._conv_stem, bb._bn0] + [bb._blocks[i] for i in range(3)]
    for m in frozen:
        for p in m.parameters():
            p.requires_grad_(False)
    return frozen


def head_for_loss(loss: str) -> str:
    """The model head a loss trains: ``ce`` or ``reg`` (:data:`HEAD_LOSSES`)."""
    for head, losses in HEAD_LOSSES.items():
        if loss in losses:
            return head
    raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")


def check_ema_decay(decay: float | None, what: str = "ema_decay") -> None:
    """``None`` (off) or a decay strictly between 0 and 1."""
    if decay is not None and not 0.0 < decay < 1.0:
        raise ValueError(f"{what} must be between 0 and 1 (e.g. 0.999), got {decay}")


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float, step: int) -> None:
    """``ema <- d * ema + (1 - d) * model`` for parameters (buffers copied), with ``d = min(decay, (1+step)/(10+step))``.

    The warm-up of ``d`` keeps the average from remembering the first, random-decoder steps.
    """
    d = min(decay, (1.0 + step) / (10.0 + step))
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.lerp_(pm.detach(), 1.0 - d)
    for be, bm in zip(ema.buffers(), model.buffers()):
        be.copy_(bm)


def build_model(cfg: TrainConfig, init: str | None) -> ResidualColorizer:
    """``init``: a checkpoint path to fine-tune/resume, or None for ImageNet backbone + fresh decoder."""
    if init:
        return load_model(init).train()
    mcfg = ModelConfig(**{**dataclasses.asdict(ModelConfig()), "head": head_for_loss(cfg.loss), **cfg.model})
    model = ResidualColorizer(mcfg)
    if isinstance(model.backbone, EfficientNetLite0):
        model.backbone.load_imagenet(EfficientNetLite0.default_weights_path())
    return model


def train(
    cfg: TrainConfig,
    train_set: Dataset,
    val_set: Dataset | None,
    out_dir: str | Path,
    *,
    init: str | None = None,
    resume: bool = True,
    device: str | torch.device = "cpu",
    ab_samples: np.ndarray | None = None,
    info: dict | None = None,
    callback: Callable[[dict], None] | None = None,
) -> dict:
    """Train, writing ``last.safetensors`` (every validation) and ``best.safetensors`` (lowest val a/b MAE).

    With ``resume`` and an existing ``last.safetensors`` in ``out_dir``, training
    continues from it (step count and best score are read from its header).
    ``callback`` receives progress dicts (``step``, ``loss``, ``val`` ...); the
    function never prints.  Returns the final summary.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    last = out / "last.safetensors"
    start_step, best, since_best = 0, math.inf, 0
    if resume and last.is_file():
        model = load_model(last).train()
        state = getattr(model, "info", {})
        start_step = int(state.get("step", 0))
        best = float(state.get("best_val", math.inf))
        since_best = int(state.get("since_best", 0))
    else:
        model = build_model(cfg, init)
    base_info = dict(info or {})
    if init and not (resume and last.is_file()):
        base_info.setdefault("base_model", str(init))
    model.to(device).to(memory_format=torch.channels_last).train()
    frozen = _freeze_early(model) if cfg.freeze_early else []
    check_ema_decay(cfg.ema_decay)
    # With ema_decay, the average is what gets validated and saved (best and last); a resumed
    # run restarts from that average (the raw weights are not kept).
    ema = copy.deepcopy(model).eval() if cfg.ema_decay else None
    kept = ema if ema is not None else model

    weights = None
    if head_for_loss(cfg.loss) == "ce":
        if ab_samples is None:
            ab_samples = _sample_ab(train_set, cfg.seed)
        weights = rebalance_weights(ab_samples, model.cfg, cfg.rebalance_lambda).to(device)
    loss_fn = _loss_fn(model, cfg.loss, weights, cfg.l1_weight)

    bb_params = [p for p in model.backbone.parameters() if p.requires_grad]
    other = [p for n, p in model.named_parameters() if not n.startswith("backbone.") and p.requires_grad]
    opt = torch.optim.AdamW(
        [{"params": bb_params, "lr": cfg.lr * cfg.backbone_lr_mult}, {"params": other, "lr": cfg.lr}],
        weight_decay=cfg.weight_decay,
    )
    base_lrs = [g["lr"] for g in opt.param_groups]
    g = torch.Generator().manual_seed(cfg.seed + start_step)
    loader = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True, drop_last=True,
                        num_workers=cfg.num_workers, generator=g)
    val_loader = DataLoader(val_set, batch_size=cfg.batch_size, shuffle=False) if val_set is not None else None
    if len(loader) == 0:
        raise ValueError(f"the training set has {len(train_set)} items, fewer than one batch of {cfg.batch_size}")
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()

    def lr_at(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        prog = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        if cfg.time_budget_s:  # anneal by whichever runs out first: steps or time
            prog = max(prog, (time.time() - t0) / cfg.time_budget_s)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, prog)))

    def save(path: Path, step: int, val: dict | None) -> None:
        meta = {**base_info, "step": step, "best_val": best, "since_best": since_best, "train": json.loads(cfg.to_json())}
        if val is not None:
            meta["val"] = val
        save_model(kept, path, meta)

    t0 = time.time()
    step = start_step
    run_loss = None
    history: list[dict] = []
    stopped_early = cfg.patience is not None and since_best >= cfg.patience
    stop = stopped_early
    while step < cfg.steps and not stop:
        for batch in loader:
            for m in frozen:
                m.eval()
            for gi, group in enumerate(opt.param_groups):
                group["lr"] = base_lrs[gi] * lr_at(step)
            x = batch["L"].to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            ab = _target_ab(batch["ab"].to(device, non_blocking=True), model.output_stride)
            with ctx:
                pred = model(x)
            loss = loss_fn(pred, ab)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            if ema is not None:
                ema_update(ema, model, cfg.ema_decay, step - start_step)
            step += 1
            lv = loss.item()
            run_loss = lv if run_loss is None else 0.95 * run_loss + 0.05 * lv
            elapsed = time.time() - t0
            over = cfg.time_budget_s is not None and elapsed > cfg.time_budget_s
            if callback:
                callback({"step": step, "steps": cfg.steps, "loss": run_loss, "elapsed": elapsed})
            if step % cfg.val_every == 0 or step >= cfg.steps or over:
                val = evaluate_batches(kept, val_loader, device) if val_loader is not None else None
                score = val["ab_mae"] if val else -step
                since_best = 0 if score < best else since_best + 1
                if score < best:
                    best = score
                    save(out / "best.safetensors", step, val)
                stopped_early = cfg.patience is not None and since_best >= cfg.patience
                save(last, step, val)
                rec = {"step": step, "loss": run_loss, "elapsed": elapsed, "val": val, "best": best}
                history.append(rec)
                if callback:
                    callback({**rec, "event": "val"})
                with open(out / "history.jsonl", "a") as f:
                    f.write(json.dumps(rec) + "\n")
            if step >= cfg.steps or over or stopped_early:
                stop = True
                break
    return {"step": step, "best_val": best, "history": history, "elapsed": time.time() - t0, "stopped_early": stopped_early}


def _sample_ab(ds: Dataset, seed: int, n_items: int = 256, per_item: int = 512) -> np.ndarray:
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(ds), size=min(n_items, len(ds)), replace=False)
    out = []
    for i in idx:
        ab = ds[int(i)]["ab"]
        ab = ab.numpy() if torch.is_tensor(ab) else ab
        flat = ab.reshape(2, -1).T
        out.append(flat[rng.choice(len(flat), size=min(per_item, len(flat)), replace=False)])
    return np.concatenate(out)
