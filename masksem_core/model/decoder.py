"""The light pre-training decoder: visible tokens + mask tokens -> per-token motion prediction."""

from __future__ import annotations

import torch
from torch import nn

from masksem_core.model.blocks import Block, init_weights
from masksem_core.model.config import ModelConfig
from masksem_core.model.embedding import PositionEmbedding


class MotionDecoder(nn.Module):
    """Linear -> scatter visible tokens among learned mask tokens -> blocks -> LN -> Linear(patch*C*heads)."""

    def __init__(self, cfg: ModelConfig, outputs_per_value: int = 1) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Linear(cfg.dim, cfg.decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, cfg.decoder_dim))
        nn.init.normal_(self.mask_token, std=0.02)
        self.pos = PositionEmbedding(cfg.num_segments, cfg.num_joints, cfg.decoder_dim)
        self.blocks = nn.ModuleList(
            Block(cfg.decoder_dim, cfg.decoder_heads, cfg.mlp_ratio) for _ in range(cfg.decoder_depth)
        )
        self.norm = nn.LayerNorm(cfg.decoder_dim)
        self.head = nn.Linear(cfg.decoder_dim, cfg.patch_len * cfg.in_channels * outputs_per_value)
        init_weights(self)

    def forward(self, visible: torch.Tensor, keep: torch.Tensor, segments: int, joints: int) -> torch.Tensor:
        """visible (P, K, D) at token positions keep (P, K) -> prediction (P, S*V, out)."""
        p, k, _ = visible.shape
        length = segments * joints
        emb = self.embed(visible).to(visible.dtype)
        # out-of-place scatter into the expanded mask token: one (P, L, D) copy, not clone + scatter
        x = self.mask_token.to(visible.dtype).expand(p, length, -1)
        x = x.scatter(1, keep.unsqueeze(-1).expand(-1, -1, emb.shape[-1]), emb)
        x = x + self.pos(segments, joints)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))
