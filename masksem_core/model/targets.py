"""Reconstruction targets: velocity, acceleration and their hybrid, per-token normalised, masked MSE."""

from __future__ import annotations

import torch

from masksem_core.model.embedding import patchify


def velocity(seqs: torch.Tensor) -> torch.Tensor:
    """v[t] = x[t+1] - x[t] along time (dim 2 of (P, C, T, V)); the last frame is 0."""
    v = torch.zeros_like(seqs)
    v[:, :, :-1] = seqs[:, :, 1:] - seqs[:, :, :-1]
    return v


def acceleration(seqs: torch.Tensor) -> torch.Tensor:
    """The velocity of the velocity (so the last two frames are not both meaningful)."""
    return velocity(velocity(seqs))


def token_targets(seqs: torch.Tensor, patch_len: int, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token normalised velocity and acceleration targets, each (P, S*V, patch*C)."""

    def norm(t: torch.Tensor) -> torch.Tensor:
        mean = t.mean(dim=-1, keepdim=True)
        var = t.var(dim=-1, keepdim=True, unbiased=False)
        return (t - mean) / torch.sqrt(var + eps)

    return norm(patchify(velocity(seqs), patch_len)), norm(patchify(acceleration(seqs), patch_len))


def masked_mse(
    pred: torch.Tensor, target: torch.Tensor, masked: torch.Tensor, token_weight: torch.Tensor | None = None
) -> torch.Tensor:
    """(Weighted) mean squared error over masked tokens only; visible tokens get exactly zero gradient."""
    per_token = (pred.float() - target).pow(2).mean(dim=-1)
    weight = masked.to(per_token.dtype)
    if token_weight is not None:
        weight = weight * token_weight.to(per_token.dtype)
    return (per_token * weight).sum() / weight.sum().clamp_min(1.0)


def motion_loss(
    pred: torch.Tensor,
    vel: torch.Tensor,
    acc: torch.Tensor,
    masked: torch.Tensor,
    kind: str,
    alpha: float,
    separate_heads: bool,
    token_weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The pre-training loss; with one head the same prediction regresses both targets (reference).

    `token_weight` (P, L), optional: per-token loss weights (the CAM-weighted variant).
    """
    width = vel.shape[-1]
    pred_vel = pred[..., :width]
    pred_acc = pred[..., width:] if separate_heads else pred_vel
    if kind == "velocity":
        loss_vel = masked_mse(pred_vel, vel, masked, token_weight)
        return loss_vel, {"loss_vel": loss_vel.detach()}
    loss_acc = masked_mse(pred_acc, acc, masked, token_weight)
    if kind == "acceleration":
        return loss_acc, {"loss_acc": loss_acc.detach()}
    loss_vel = masked_mse(pred_vel, vel, masked, token_weight)
    loss = (1 - alpha) * loss_vel + alpha * loss_acc
    return loss, {"loss_vel": loss_vel.detach(), "loss_acc": loss_acc.detach()}
