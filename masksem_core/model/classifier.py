"""Downstream heads on the pre-trained encoder: linear probe and the fine-tune MLP of METHOD.md."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from masksem_core.model.config import ModelConfig
from masksem_core.model.encoder import SkeletonEncoder
from masksem_core.model.persons import PresentSequences


class LinearProbeHead(nn.Module):
    """Pooled feature -> BatchNorm1d(affine=False) -> Linear (MAE/MAMP linear evaluation)."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(dim, affine=False, eps=1e-6)
        self.fc = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    def forward(self, pooled: torch.Tensor, per_joint: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(pooled))


class FineTuneHead(nn.Module):
    """Temporal mean -> concat joints -> fc 2048 -> BN -> ReLU -> dropout -> fc."""

    def __init__(
        self, dim: int, joints: int, num_classes: int, dropout: float = 0.0, hidden: int = 2048
    ) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim * joints, hidden)
        self.norm = nn.BatchNorm1d(hidden)
        self.act = nn.ReLU()
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, pooled: torch.Tensor, per_joint: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.act(self.norm(self.fc1(per_joint.flatten(1))))))


class ActionClassifier(nn.Module):
    """Encoder + head. Absent person slots are skipped; features are averaged over present persons."""

    def __init__(
        self,
        cfg: ModelConfig,
        num_classes: int,
        head: Literal["linear", "finetune"] = "linear",
        head_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_classes = num_classes
        self.head_kind = head
        self.encoder = SkeletonEncoder(cfg)
        if head == "linear":
            self.head: nn.Module = LinearProbeHead(cfg.dim, num_classes)
        elif head == "finetune":
            self.head = FineTuneHead(cfg.dim, cfg.num_joints, num_classes, head_dropout)
        else:
            raise ValueError(f"unknown head {head!r}; use 'linear' or 'finetune'")

    def pooled_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, C, T, V, M) -> pooled (N, D) and per-joint (N, V, D) features (means over time, persons)."""
        feats, sel = self.encoder.forward_sequences(x)
        p, length, d = feats.shape
        joints = x.shape[3]
        per_joint = sel.pool(feats.view(p, length // joints, joints, d).mean(dim=1))  # (N, V, D)
        return per_joint.mean(dim=1), per_joint

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled (N, D) feature used by linear probes and kNN."""
        return self.pooled_features(x)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled, per_joint = self.pooled_features(x)
        return self.head(pooled, per_joint)


__all__ = ["ActionClassifier", "FineTuneHead", "LinearProbeHead", "PresentSequences"]
