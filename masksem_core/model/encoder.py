"""The MAMP-style skeleton encoder: patch embedding, pre-norm transformer, final LayerNorm."""

from __future__ import annotations

import torch
from torch import nn

from masksem_core.model.blocks import Block, init_weights
from masksem_core.model.config import ModelConfig
from masksem_core.model.embedding import PatchEmbedding
from masksem_core.model.persons import PresentSequences, select_present


class SkeletonEncoder(nn.Module):
    """Encodes person sequences into per-token features.

    `forward` takes whole clips and returns features per person slot; `encode` works on already
    selected sequences and, for masked pre-training, on a subset of tokens (`keep` indices).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.embed = PatchEmbedding(cfg.in_channels, cfg.dim, cfg.patch_len, cfg.num_segments, cfg.num_joints)
        rates = torch.linspace(0, cfg.drop_path, cfg.depth).tolist()
        self.blocks = nn.ModuleList(Block(cfg.dim, cfg.heads, cfg.mlp_ratio, r) for r in rates)
        self.norm = nn.LayerNorm(cfg.dim)
        init_weights(self.blocks)
        init_weights(self.norm)

    def encode(
        self, seqs: torch.Tensor, keep: torch.Tensor | None = None, causal: bool | torch.Tensor = False
    ) -> torch.Tensor:
        """(P, C, T, V) -> (P, L or K, D). `keep` (P, K) selects visible tokens before the blocks.
        `causal`: a token sees only tokens of its own and earlier temporal segments (all joints), so
        each segment's features are what an online recogniser can know at that segment's end; a (P,)
        bool tensor chooses per sequence (training a model that answers both ways)."""
        tokens = self.embed(seqs)
        per_sequence = isinstance(causal, torch.Tensor)
        if keep is not None:
            if per_sequence or causal:
                raise ValueError("causal attention is for whole sequences, not masked pre-training")
            tokens = torch.gather(tokens, 1, keep.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
        mask = None
        if per_sequence:
            past = causal_mask(tokens.shape[1], seqs.shape[-1], tokens.device)
            mask = (past | ~causal.to(tokens.device).view(-1, 1, 1))[:, None]  # (P, 1, L, L)
        elif causal:
            mask = causal_mask(tokens.shape[1], seqs.shape[-1], tokens.device)
        for block in self.blocks:
            tokens = block(tokens, mask)
        return self.norm(tokens)

    def forward_sequences(self, x: torch.Tensor) -> tuple[torch.Tensor, PresentSequences]:
        """Encode only present persons: returns (P, L, D) features and the person bookkeeping."""
        sel = select_present(x)
        return self.encode(sel.seqs), sel

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, C, T, V, M) -> features (N, M, T/patch, V, D) (zeros for absent slots), present (N, M)."""
        n, _, t, v, m = x.shape
        feats, sel = self.forward_sequences(x)
        s = t // self.cfg.patch_len
        out = feats.new_zeros(n * m, s * v, feats.shape[-1])
        out[sel.flat_index] = feats
        return out.view(n, m, s, v, -1), sel.present


def causal_mask(length: int, joints: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(L, L) bool attention mask over segment-major tokens (L = segments x joints): query token i may
    attend to key token j when j's temporal segment is not later than i's."""
    segment = torch.arange(length, device=device) // joints
    return segment[None, :] <= segment[:, None]
