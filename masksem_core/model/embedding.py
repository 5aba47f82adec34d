"""Temporal patch embedding and separate temporal / spatial position embeddings (MAMP layout)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def patchify(seqs: torch.Tensor, patch_len: int) -> torch.Tensor:
    """(P, C, T, V) -> (P, T/patch_len * V, patch_len * C): token (s, v) holds frames 4s..4s+3 of joint v.

    Tokens are ordered segment-major (token = s * V + v), values frame-major then xyz — the same
    order as the patch embedding's output, the decoder's prediction and the reconstruction target.
    """
    p, c, t, v = seqs.shape
    s = t // patch_len
    x = seqs.reshape(p, c, s, patch_len, v).permute(0, 2, 4, 3, 1)
    return x.reshape(p, s * v, patch_len * c)


class PositionEmbedding(nn.Module):
    """Learned (1, S, 1, D) temporal + (1, 1, V, D) spatial embeddings, summed per token.

    A model built for S segments runs on another number of segments by linear interpolation of the
    temporal table, so a T=120 model also takes T=64 or T=300 windows.
    """

    def __init__(self, segments: int, joints: int, dim: int) -> None:
        super().__init__()
        self.temporal = nn.Parameter(torch.zeros(1, segments, 1, dim))
        self.spatial = nn.Parameter(torch.zeros(1, 1, joints, dim))
        nn.init.trunc_normal_(self.temporal, std=0.02)
        nn.init.trunc_normal_(self.spatial, std=0.02)

    def forward(self, segments: int, joints: int) -> torch.Tensor:
        """(1, segments * joints, D) table for a grid of the given size."""
        temporal = self.temporal
        if segments != temporal.shape[1]:
            temporal = (
                F.interpolate(
                    temporal.squeeze(2).transpose(1, 2), size=segments, mode="linear", align_corners=False
                )
                .transpose(1, 2)
                .unsqueeze(2)
            )
        if joints != self.spatial.shape[2]:
            raise ValueError(f"model was built for {self.spatial.shape[2]} joints, input has {joints}")
        table = temporal + self.spatial
        return table.reshape(1, segments * joints, -1)


class PatchEmbedding(nn.Module):
    """Conv2d with kernel = stride = (patch_len frames, 1 joint): (P, C, T, V) -> (P, S*V, D) + positions."""

    def __init__(self, in_channels: int, dim: int, patch_len: int, segments: int, joints: int) -> None:
        super().__init__()
        self.patch_len = patch_len
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=(patch_len, 1), stride=(patch_len, 1))
        nn.init.xavier_uniform_(self.proj.weight.view(dim, -1))
        nn.init.zeros_(self.proj.bias)
        self.pos = PositionEmbedding(segments, joints, dim)

    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        p, c, t, v = seqs.shape
        if t % self.patch_len:
            raise ValueError(f"clip length {t} is not a multiple of the patch length {self.patch_len}")
        tokens = self.proj(seqs).flatten(2).transpose(1, 2)  # (P, S*V, D), segment-major
        return tokens + self.pos(t // self.patch_len, v)
