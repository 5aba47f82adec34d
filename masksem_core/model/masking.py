"""Mask sampling: one Gumbel-top-k sampler fed by uniform, motion or CAM weights.

All three strategies (MAE random, MAMP motion-aware, MaskSem semantic-guided) differ only in the
per-token weights; the sampler turns weights into logits as MAMP does,
`logits = w / (max_per_sample(w) * tau + 1e-10)`, and masks the tokens with the highest
`log softmax(logits) + Gumbel noise`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def num_visible(num_tokens: int, ratio: float) -> int:
    """Visible tokens at a mask ratio: L - round(L * ratio), at least one.

    (The reference computes int(L * (1 - ratio)), which gives 39 instead of 40 of 400 tokens at 0.9
    through float rounding; we round the masked count instead, so 0.9 of 400 masks exactly 360.)
    """
    return max(1, num_tokens - round(num_tokens * ratio))


@dataclass
class TokenMask:
    """keep (P, K) visible token indices (sorted), masked (P, L) bool."""

    keep: torch.Tensor
    masked: torch.Tensor


def weights_to_logits(weights: torch.Tensor, tau: float) -> torch.Tensor:
    """(P, L) non-negative weights -> MAMP logits; all-zero rows become uniform."""
    peak = weights.amax(dim=1, keepdim=True)
    return weights / (peak * tau + 1e-10)


def gumbel_topk_mask(
    logits: torch.Tensor, ratio: float, generator: torch.Generator | None = None
) -> TokenMask:
    """Mask the num_masked tokens with the highest log-softmax(logits) + Gumbel noise."""
    p, length = logits.shape
    k = num_visible(length, ratio)
    u = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=torch.float32)
    # parenthesised: `-torch.log(u).clamp_min(..)` would clamp the *negative* log and give NaN noise
    gumbel = -torch.log((-torch.log(u.clamp_min(1e-20))).clamp_min(1e-20))
    score = torch.log_softmax(logits.float(), dim=1) + gumbel
    order = torch.argsort(score, dim=1)  # ascending: the lowest scores stay visible
    keep = order[:, :k].sort(dim=1).values
    masked = torch.ones(p, length, dtype=torch.bool, device=logits.device)
    masked.scatter_(1, keep, False)
    return TokenMask(keep=keep, masked=masked)


def token_motion(tokens: torch.Tensor, joints: int) -> torch.Tensor:
    """MAMP motion per token: mean |token(s) - token(s-1)| of the same joint; segment 0 copies segment 1.

    tokens: (P, S*V, patch*C) patchified input -> (P, S*V).
    """
    p, length, _ = tokens.shape
    grid = tokens.view(p, length // joints, joints, -1)
    if grid.shape[1] < 2:
        return tokens.new_zeros(p, length)
    diff = (grid[:, 1:] - grid[:, :-1]).abs().mean(-1)
    motion = torch.cat([diff[:, :1], diff], dim=1)
    return motion.reshape(p, length)
