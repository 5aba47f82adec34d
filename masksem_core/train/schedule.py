"""Per-iteration learning-rate schedule: linear warm-up, then half-cycle cosine to min_lr."""

from __future__ import annotations

import math

import torch


def cosine_lr(iteration: float, total: float, warmup: float, lr: float, min_lr: float) -> float:
    """Learning rate at a (fractional) iteration."""
    if warmup > 0 and iteration < warmup:
        return lr * iteration / warmup
    progress = (iteration - warmup) / max(1e-12, total - warmup)
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Apply lr, honouring each group's layer-wise `lr_scale`."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
