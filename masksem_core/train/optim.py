"""Parameter groups: no weight decay on biases, norms and embeddings; layer-wise lr decay."""

from __future__ import annotations

import torch
from torch import nn

from masksem_core.train.config import OptimConfig

_NO_DECAY_NAMES = ("pos.temporal", "pos.spatial", "mask_token")


def layer_id(name: str, depth: int) -> int:
    """Layer index for lr decay: embeddings 0, block i -> i + 1, everything after -> depth + 1."""
    name = name.removeprefix("module.")
    if name.startswith("encoder.embed"):
        return 0
    if name.startswith("encoder.blocks."):
        return int(name.split(".")[2]) + 1
    return depth + 1


def param_groups(model: nn.Module, cfg: OptimConfig, depth: int) -> list[dict]:
    """Groups keyed by (decay, layer) so one optimiser carries both rules."""
    groups: dict[tuple[bool, int], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        no_decay = param.ndim <= 1 or name.endswith(".bias") or any(k in name for k in _NO_DECAY_NAMES)
        layer = layer_id(name, depth) if cfg.layer_decay != 1.0 else 0
        key = (not no_decay, layer)
        if key not in groups:
            scale = cfg.layer_decay ** (depth + 1 - layer) if cfg.layer_decay != 1.0 else 1.0
            groups[key] = {
                "params": [],
                "weight_decay": cfg.weight_decay if not no_decay else 0.0,
                "lr_scale": scale,
            }
        groups[key]["params"].append(param)
    return list(groups.values())


def build_optimizer(model: nn.Module, cfg: OptimConfig, depth: int) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg, depth)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas))
