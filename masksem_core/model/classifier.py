"""Downstream heads on the pre-trained encoder: linear probe and the fine-tune MLP of METHOD.md.

`dense=True` applies the same head to every temporal token (features pooled over joints/persons per
token, not over time): the model then returns per-token logits `(N, L_t, K)` so a streaming recogniser
can say which frames of a window show which action. `background=True` marks the last class as
"no action" (learned from background windows); `clip_logits` excludes it when asked which action a
whole clip shows (mean of token logits, docs/INTERFACES.md interface 2).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from masksem_core.model.config import ModelConfig
from masksem_core.model.encoder import SkeletonEncoder
from masksem_core.model.persons import PresentSequences, select_present


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
        dense: bool = False,
        background: bool = False,
        head_hidden: int = 2048,
        head_dropout_on: Literal["hidden", "tokens"] = "hidden",
        causal: bool = False,
        dual: bool = False,
    ) -> None:
        """`head_dropout_on="tokens"` moves the fine-tune head's dropout onto the encoder's token features
        before the temporal mean (MAMP's ActionHeadFinetune); "hidden" keeps it after fc -> BN -> ReLU.
        `causal` (dense models): each temporal token attends only to its own and earlier segments, so
        every token is trained as the newest token of a stream is used (no future context).
        `dual` (dense models): one encoder trained both ways, every training clip through both attentions
        (in training, `forward` returns the bidirectional tokens then the causal ones, (N, 2 L_t, K));
        it answers bidirectionally (whole clips, a stream's settled frames) unless asked `causal=True` (a
        stream's newest frames): meant not to trade offline accuracy for early answers, it did worse than
        a causal model on NW-UCLA's validation streams (docs/results.md, session 7)."""
        super().__init__()
        if (causal or dual) and not dense:
            raise ValueError("causal or dual attention needs a dense (per-token) model")
        if causal and dual:
            raise ValueError("choose causal or dual attention, not both")
        self.causal = bool(causal)
        self.dual = bool(dual)
        if head_dropout_on not in ("hidden", "tokens"):
            raise ValueError(f"unknown head_dropout_on {head_dropout_on!r}; use 'hidden' or 'tokens'")
        on_tokens = head == "finetune" and head_dropout_on == "tokens"
        self.token_dropout = nn.Dropout(head_dropout) if on_tokens else nn.Identity()
        if on_tokens:
            head_dropout = 0.0
        self.cfg = cfg
        self.num_classes = num_classes
        self.head_kind = head
        self.dense = bool(dense)
        self.head_hidden = int(head_hidden)
        self.background = bool(background)
        if self.background and num_classes < 2:
            raise ValueError("a model with a background class needs an action class besides it")
        self.encoder = SkeletonEncoder(cfg)
        if head == "linear":
            self.head: nn.Module = LinearProbeHead(cfg.dim, num_classes)
        elif head == "finetune":
            self.head = FineTuneHead(cfg.dim, cfg.num_joints, num_classes, head_dropout, head_hidden)
        else:
            raise ValueError(f"unknown head {head!r}; use 'linear' or 'finetune'")

    def pooled_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, C, T, V, M) -> pooled (N, D) and per-joint (N, V, D) features (means over time, persons)."""
        feats, sel = self.encoder.forward_sequences(x)
        feats = self.token_dropout(feats)  # identity unless head_dropout_on="tokens" (and training)
        p, length, d = feats.shape
        joints = x.shape[3]
        per_joint = sel.pool(feats.view(p, length // joints, joints, d).mean(dim=1))  # (N, V, D)
        return per_joint.mean(dim=1), per_joint

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled (N, D) feature used by linear probes and kNN."""
        return self.pooled_features(x)[0]

    def token_features(self, x: torch.Tensor, causal: bool | None = None) -> torch.Tensor:
        """(N, C, T, V, M) -> per-token, per-joint features (N, L_t, V, D) (mean over present persons).
        `causal` None: the model's own attention; a dual model in training runs every sequence both ways
        in one batched pass and returns (N, 2 L_t, V, D), the bidirectional tokens first."""
        sel = select_present(x)
        seqs, mode = sel.seqs, self.causal if causal is None else bool(causal)
        both = self.dual and self.training and causal is None
        if both:
            p = seqs.shape[0]
            seqs = torch.cat([seqs, seqs])
            mode = torch.arange(2 * p, device=seqs.device) >= p  # (2P,): the second copy causal
        # token dropout: identity unless head_dropout_on="tokens" (and training)
        feats = self.token_dropout(self.encoder.encode(seqs, causal=mode))
        joints = x.shape[3]
        feats = feats.view(feats.shape[0], feats.shape[1] // joints, joints, feats.shape[-1])
        if both:
            bi, past = feats.chunk(2)
            return torch.cat([sel.pool(bi), sel.pool(past)], dim=1)
        return sel.pool(feats)

    def forward(self, x: torch.Tensor, causal: bool | None = None) -> torch.Tensor:
        """Clip logits (N, K), or per-token logits (N, L_t, K) for a dense model (`causal=True`: a dual
        model's causal answer; None: the model's own attention)."""
        if not self.dense:
            pooled, per_joint = self.pooled_features(x)
            return self.head(pooled, per_joint)
        tokens = self.token_features(x, causal)  # (N, S, V, D)
        n, s, v, d = tokens.shape
        flat = tokens.reshape(n * s, v, d)
        return self.head(flat.mean(dim=1), flat).view(n, s, -1)

    def clip_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Which action each clip shows: (N, K) logits, or (N, K-1) without the background column."""
        return clip_scores(self(x), self.dense, self.background)


def output_kind(meta: dict) -> dict[str, bool | int]:
    """`dense` / `background` / `head_hidden` / `causal` / `dual` constructor arguments from checkpoint or
    bundle metadata (absent: a clip-level, bidirectional model without background and the METHOD.md head
    width)."""
    return {
        "dense": bool(meta.get("dense")),
        "causal": bool(meta.get("causal")),
        "dual": bool(meta.get("dual")),
        "background": bool(meta.get("background_label")),
        "head_hidden": int(meta.get("head_hidden") or 2048),
    }


def clip_scores(logits: torch.Tensor, dense: bool, background: bool) -> torch.Tensor:
    """Model output -> clip-level action logits: mean over tokens (dense), background column dropped."""
    if dense:
        logits = logits.mean(dim=1)
    return logits[:, :-1] if background else logits


__all__ = [
    "ActionClassifier", "FineTuneHead", "LinearProbeHead", "PresentSequences", "clip_scores", "output_kind",
]  # fmt: skip
