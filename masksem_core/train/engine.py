"""Training and evaluation loops (one epoch at a time), shared by every protocol."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from masksem_core.train.distributed import DistInfo, all_gather_cat, all_reduce_mean
from masksem_core.train.schedule import cosine_lr, set_lr


@dataclass
class StepContext:
    """What a loop needs besides the model and data."""

    optimizer: torch.optim.Optimizer
    device: torch.device
    epochs: int
    warmup_epochs: float
    lr: float
    min_lr: float
    precision: str = "fp32"
    grad_clip: float | None = None
    scaler: torch.amp.GradScaler | None = None
    dist: DistInfo = field(default_factory=DistInfo)
    progress: bool = True
    max_steps: int | None = None


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def _steps(loader: Iterable, ctx: StepContext, desc: str):
    total = len(loader) if hasattr(loader, "__len__") else None
    if ctx.max_steps is not None and total is not None:
        total = min(total, ctx.max_steps)
    bar = tqdm(
        loader,
        total=total,
        desc=desc,
        leave=False,
        dynamic_ncols=True,
        disable=not (ctx.progress and ctx.dist.is_main),
    )
    for i, batch in enumerate(bar):
        if ctx.max_steps is not None and i >= ctx.max_steps:
            break
        yield i, batch, bar


def _optimise(loss: torch.Tensor, model: nn.Module, ctx: StepContext) -> None:
    ctx.optimizer.zero_grad(set_to_none=True)
    if ctx.scaler is not None:
        ctx.scaler.scale(loss).backward()
        if ctx.grad_clip:
            ctx.scaler.unscale_(ctx.optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), ctx.grad_clip)
        ctx.scaler.step(ctx.optimizer)
        ctx.scaler.update()
    else:
        loss.backward()
        if ctx.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), ctx.grad_clip)
        ctx.optimizer.step()


def _set_schedule(ctx: StepContext, epoch: int, i: int, steps_per_epoch: int) -> float:
    lr = cosine_lr(epoch + i / steps_per_epoch, ctx.epochs, ctx.warmup_epochs, ctx.lr, ctx.min_lr)
    set_lr(ctx.optimizer, lr)
    return lr


def pretrain_epoch(model: nn.Module, loader: Iterable, ctx: StepContext, epoch: int) -> dict[str, float]:
    """One epoch of masked motion prediction; returns the epoch means of loss and mask statistics."""
    core = model.module if hasattr(model, "module") else model
    model.train()
    sums: dict[str, torch.Tensor] = {}
    count = 0
    steps = len(loader) if ctx.max_steps is None else min(len(loader), ctx.max_steps)
    lr = ctx.lr
    all_finite: torch.Tensor | None = None
    for i, (clips, _), bar in _steps(loader, ctx, f"pretrain {epoch + 1}/{ctx.epochs}"):
        lr = _set_schedule(ctx, epoch, i, steps)
        clips = clips.to(ctx.device, non_blocking=True)
        with autocast(ctx.device, ctx.precision):
            out = model(clips)
        finite = torch.isfinite(out.loss.detach())
        all_finite = finite if all_finite is None else all_finite & finite
        # bool() waits for the device: on a GPU check every 10th step (and the last), so the host can
        # queue the backward while the forward runs; a bad step is caught within 10 steps.
        if (ctx.device.type != "cuda" or i % 10 == 0 or i == steps - 1) and not bool(all_finite):
            where = f"step {i}" if ctx.device.type != "cuda" else f"one of the steps up to {i}"
            now = float(out.loss.detach())
            raise FloatingPointError(f"pre-training loss is {now} (not finite) at epoch {epoch + 1}, {where}")
        _optimise(out.loss, model, ctx)
        core.update_teacher()
        for k, v in {"loss": out.loss.detach(), **out.stats}.items():
            sums[k] = sums.get(k, 0.0) + v.float()
        count += 1
        if i % 10 == 0:
            bar.set_postfix(loss=f"{float(out.loss.detach()):.4f}", lr=f"{lr:.2e}")
    if all_finite is not None and not bool(all_finite):
        raise FloatingPointError(f"pre-training loss was not finite in epoch {epoch + 1}")
    means = {k: float(all_reduce_mean(v / max(count, 1), ctx.dist)) for k, v in sums.items()}
    means["lr"] = lr
    return means


def classify_epoch(
    model: nn.Module,
    loader: Iterable,
    ctx: StepContext,
    epoch: int,
    label_smoothing: float = 0.0,
    ema: torch.optim.swa_utils.AveragedModel | None = None,
) -> dict[str, float]:
    """One supervised epoch (linear probe or fine-tune); `ema` averages the weights after every step."""
    core = model.module if hasattr(model, "module") else model
    model.train()
    total_loss = torch.zeros((), device=ctx.device)
    correct = torch.zeros((), device=ctx.device)
    seen = 0
    steps = len(loader) if ctx.max_steps is None else min(len(loader), ctx.max_steps)
    lr = ctx.lr
    for i, (clips, labels), bar in _steps(loader, ctx, f"train {epoch + 1}/{ctx.epochs}"):
        lr = _set_schedule(ctx, epoch, i, steps)
        clips = clips.to(ctx.device, non_blocking=True)
        labels = labels.to(ctx.device, non_blocking=True)
        with autocast(ctx.device, ctx.precision):
            logits = model(clips)
            if logits.dim() == 3 and logits.shape[1] == 2 * labels.shape[1]:
                labels = labels.repeat(1, 2)  # a dual model trains both passes: (N, 2 L_t, K)
            # a dense model's (N, L_t, K) logits with per-token labels (N, L_t): one loss per token
            scores = logits.float().transpose(1, 2) if logits.dim() == 3 else logits.float()
            loss = F.cross_entropy(scores, labels, label_smoothing=label_smoothing)
        _optimise(loss, model, ctx)
        if ema is not None:
            ema.update_parameters(core)
        total_loss += loss.detach() * labels.numel()
        correct += (scores.argmax(1) == labels).sum()
        seen += labels.numel()
        if i % 10 == 0:
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
    seen_t = torch.tensor(float(max(seen, 1)), device=ctx.device)
    return {
        "loss": float(all_reduce_mean(total_loss / seen_t, ctx.dist)),
        "train_top1": float(all_reduce_mean(correct / seen_t * 100, ctx.dist)),
        "lr": lr,
    }


@torch.no_grad()
def predict(
    model: nn.Module,
    loader: Iterable,
    device: torch.device,
    precision: str = "fp32",
    info: DistInfo | None = None,
    features: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Logits (or pooled features) and labels for a whole loader, gathered from every rank."""
    info = info or DistInfo()
    core = model.module if hasattr(model, "module") else model
    model.eval()
    outs, labels_all = [], []
    for clips, labels in loader:
        clips = clips.to(device, non_blocking=True)
        with autocast(device, precision):
            if features:
                out = core.features(clips)
            else:  # a dense model answers per token: the clip's action is the mean over them
                out = core.clip_logits(clips) if getattr(core, "dense", False) else model(clips)
        outs.append(out.float())
        labels_all.append(labels.to(device))
    out_t = torch.cat(outs) if outs else torch.zeros(0, 1, device=device)
    lab_t = torch.cat(labels_all) if labels_all else torch.zeros(0, dtype=torch.long, device=device)
    return all_gather_cat(out_t, info).cpu().numpy(), all_gather_cat(lab_t, info).cpu().numpy()


def knn_top1(
    train_feats: np.ndarray,
    train_labels: np.ndarray,
    test_feats: np.ndarray,
    test_labels: np.ndarray,
    k: int = 20,
    temperature: float = 0.07,
) -> float:
    """Weighted cosine kNN accuracy (InstDisc/DINO style), a probe with no training at all."""
    tr = torch.nn.functional.normalize(torch.from_numpy(train_feats).float(), dim=1)
    te = torch.nn.functional.normalize(torch.from_numpy(test_feats).float(), dim=1)
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    sim = te @ tr.T
    k = min(k, tr.shape[0])
    top_sim, top_idx = sim.topk(k, dim=1)
    votes = torch.zeros(te.shape[0], num_classes)
    votes.scatter_add_(1, torch.from_numpy(train_labels)[top_idx], (top_sim / temperature).exp())
    return float((votes.argmax(1).numpy() == test_labels).mean() * 100)
