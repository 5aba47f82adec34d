"""A deliberately naive MaskSem pre-trainer, the way the reference code computes it, for ratios.

Same model, same parameter names (so `load_state_dict(ours.state_dict())` works) and same results
for present persons, but computed the slow way on purpose:
- explicit `softmax(q k^T / sqrt(d)) v` attention with separate q, k, v tensors;
- every person slot of a clip is encoded, also the all-zero (absent) ones (~40% of NTU sequences);
- the Grad-CAM comes from autograd: a full teacher forward with gradients, then `backward()` through
  the whole teacher, the gradient of the target w.r.t. the final features read from `retain_grad`;
- fp32 everywhere, per-part Python loops for the body-part average.
Absent slots are encoded but kept out of the loss and of the pooled features, as in `masksem_core`,
so both give the same loss for the same weights, inputs and mask (`test/test_perf_numerics.py`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from masksem_core.layouts import get_layout
from masksem_core.model.config import MaskingConfig, ModelConfig, TargetConfig
from masksem_core.model.masking import TokenMask, gumbel_topk_mask, weights_to_logits


class NaiveAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h = self.heads
        q, k, v = self.qkv(x).reshape(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4).contiguous()
        attn = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // h))
        attn = attn.softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, d))


class NaiveMlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class NaiveBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = NaiveAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = NaiveMlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class NaivePos(nn.Module):
    def __init__(self, segments: int, joints: int, dim: int) -> None:
        super().__init__()
        self.temporal = nn.Parameter(torch.zeros(1, segments, 1, dim))
        self.spatial = nn.Parameter(torch.zeros(1, 1, joints, dim))

    def table(self) -> torch.Tensor:
        s, v = self.temporal.shape[1], self.spatial.shape[2]
        return (self.temporal + self.spatial).reshape(1, s * v, -1)


class NaiveEmbed(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.proj = nn.Conv2d(cfg.in_channels, cfg.dim, (cfg.patch_len, 1), (cfg.patch_len, 1))
        self.pos = NaivePos(cfg.num_segments, cfg.num_joints, cfg.dim)


class NaiveEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.embed = NaiveEmbed(cfg)
        self.blocks = nn.ModuleList(NaiveBlock(cfg.dim, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)

    def forward(self, seqs: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """(P, C, T, V) -> (P, L or K, D)."""
        tokens = self.embed.proj(seqs).flatten(2).transpose(1, 2) + self.embed.pos.table()
        if keep is not None:
            tokens = torch.stack([tokens[i, keep[i]] for i in range(len(tokens))])
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)


class NaiveDecoder(nn.Module):
    def __init__(self, cfg: ModelConfig, outputs_per_value: int) -> None:
        super().__init__()
        self.embed = nn.Linear(cfg.dim, cfg.decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, cfg.decoder_dim))
        self.pos = NaivePos(cfg.num_segments, cfg.num_joints, cfg.decoder_dim)
        self.blocks = nn.ModuleList(
            NaiveBlock(cfg.decoder_dim, cfg.decoder_heads, cfg.mlp_ratio) for _ in range(cfg.decoder_depth)
        )
        self.norm = nn.LayerNorm(cfg.decoder_dim)
        self.head = nn.Linear(cfg.decoder_dim, cfg.patch_len * cfg.in_channels * outputs_per_value)

    def forward(self, visible: torch.Tensor, keep: torch.Tensor, length: int) -> torch.Tensor:
        p = visible.shape[0]
        x = self.mask_token.expand(p, length, -1).clone()
        emb = self.embed(visible)
        for i in range(p):
            x[i, keep[i]] = emb[i]
        x = x + self.pos.table()
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


def naive_patchify(seqs: torch.Tensor, patch_len: int) -> torch.Tensor:
    """(P, C, T, V) -> (P, S*V, patch*C), token s*V+v = frames of segment s of joint v, frame-major."""
    p, c, t, v = seqs.shape
    return (
        seqs.permute(0, 2, 3, 1)
        .reshape(p, t // patch_len, patch_len, v, c)
        .transpose(2, 3)
        .reshape(p, (t // patch_len) * v, patch_len * c)
    )


def naive_velocity(seqs: torch.Tensor) -> torch.Tensor:
    return torch.cat([seqs[:, :, 1:] - seqs[:, :, :-1], torch.zeros_like(seqs[:, :, :1])], dim=2)


def naive_token_norm(t: torch.Tensor, eps: float) -> torch.Tensor:
    mean = t.mean(dim=-1, keepdim=True)
    return (t - mean) / torch.sqrt(((t - mean) ** 2).mean(dim=-1, keepdim=True) + eps)


class NaivePretrainer(nn.Module):
    """The reference-style pre-training step; see the module docstring."""

    def __init__(self, model_cfg: ModelConfig, masking: MaskingConfig, target: TargetConfig) -> None:
        super().__init__()
        self.model_cfg, self.masking, self.target = model_cfg, masking, target
        self.encoder = NaiveEncoder(model_cfg)
        self.decoder = NaiveDecoder(model_cfg, 2 if target.separate_heads else 1)
        self.teacher = NaiveEncoder(model_cfg) if masking.strategy == "semantic" else None
        self.parts = get_layout(model_cfg.layout).parts

    def _pool(self, feats: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """(N*M, L, D) features -> (N, D): mean over tokens, then over present persons."""
        n, m = present.shape
        per_seq = feats.mean(dim=1).view(n, m, -1)
        w = present.float().unsqueeze(-1)
        return (per_seq * w).sum(dim=1) / w.sum(dim=1).clamp_min(1)

    def semantic_cam(self, x: torch.Tensor) -> torch.Tensor:
        """Raw Grad-CAM (N*M, L) by autograd through a full teacher forward/backward with gradients."""
        assert self.teacher is not None
        n, c, t, v, m = x.shape
        present = _present(x)
        with torch.enable_grad():
            self.teacher.requires_grad_(True)
            y = self.teacher(x.permute(0, 4, 1, 2, 3).reshape(n * m, c, t, v))
            y.retain_grad()
            mean_clip = x.mean(dim=0, keepdim=True)
            ref_y = self.teacher(mean_clip.permute(0, 4, 1, 2, 3).reshape(m, c, t, v))
            ref = self._pool(ref_y, _present(mean_clip))[0].detach()
            z = self._pool(y, present)
            target = 1 - F.cosine_similarity(z, ref.unsqueeze(0), dim=1).mean()
            target.backward()
            weights = y.grad.mean(dim=1, keepdim=True)  # token-mean of the gradient: (N*M, 1, D)
            self.teacher.zero_grad(set_to_none=True)
            self.teacher.requires_grad_(False)
        return torch.relu((weights * y.detach()).mean(dim=-1))

    def semantic_weights(self, x: torch.Tensor) -> torch.Tensor:
        """The authors' normalisation: x1e8, body-part average one part at a time, then clip."""
        cam = self.semantic_cam(x) * 1e8
        m = self.masking
        if m.cam_norm != "authors" or m.cam_scale != 1e8 or not m.part_average:
            raise NotImplementedError("the naive reference implements cam_norm=authors, scale 1e8, parts")
        v = x.shape[3]
        grid = cam.view(cam.shape[0], -1, v).clone()
        for part in self.parts:
            grid[:, :, part] = grid[:, :, part].mean(dim=2, keepdim=True)
        return grid.reshape(cam.shape).clamp(0.0, 1.0)

    def forward(
        self, x: torch.Tensor, mask: TokenMask | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """x (N, C, T, V, M) -> loss. `mask` covers the present sequences in `masksem_core`'s order."""
        cfg = self.model_cfg
        n, c, t, v, m = x.shape
        seqs = x.permute(0, 4, 1, 2, 3).reshape(n * m, c, t, v)
        present = _present(x).reshape(-1)
        tokens = naive_patchify(seqs, cfg.patch_len)
        length = tokens.shape[1]
        if mask is None:
            mask = self._sample(x, tokens, present, generator)
        keep_present = mask.keep
        # absent slots get a random mask of their own (the reference masks and encodes them too)
        k = keep_present.shape[1]
        keep = torch.empty(n * m, k, dtype=torch.long, device=x.device)
        masked = torch.zeros(n * m, length, dtype=torch.bool, device=x.device)
        keep[present] = keep_present
        masked[present] = mask.masked
        absent = (~present).nonzero(as_tuple=True)[0]
        for i in absent.tolist():
            keep[i] = torch.randperm(length, generator=generator)[:k].sort().values.to(x.device)
        visible = self.encoder(seqs, keep)
        pred = self.decoder(visible, keep, length)
        vel = naive_velocity(seqs)
        acc = naive_velocity(vel)
        vel_t = naive_token_norm(naive_patchify(vel, cfg.patch_len), self.target.norm_eps)
        acc_t = naive_token_norm(naive_patchify(acc, cfg.patch_len), self.target.norm_eps)
        weight = (masked & present.unsqueeze(1)).float()
        width = vel_t.shape[-1]
        pred_vel = pred[..., :width]
        pred_acc = pred[..., width:] if self.target.separate_heads else pred_vel
        loss_vel = (((pred_vel - vel_t) ** 2).mean(-1) * weight).sum() / weight.sum().clamp_min(1)
        loss_acc = (((pred_acc - acc_t) ** 2).mean(-1) * weight).sum() / weight.sum().clamp_min(1)
        if self.target.kind == "velocity":
            return loss_vel
        if self.target.kind == "acceleration":
            return loss_acc
        return (1 - self.target.alpha) * loss_vel + self.target.alpha * loss_acc

    def _sample(
        self, x: torch.Tensor, tokens: torch.Tensor, present: torch.Tensor, generator: torch.Generator | None
    ) -> TokenMask:
        v = x.shape[3]
        strategy = self.masking.strategy
        if strategy == "random":
            weights = tokens.new_zeros(tokens.shape[:2])
        elif strategy == "motion":
            grid = tokens.view(tokens.shape[0], -1, v, tokens.shape[-1])
            diff = (grid[:, 1:] - grid[:, :-1]).abs().mean(-1)
            weights = torch.cat([diff[:, :1], diff], dim=1).reshape(tokens.shape[:2])
        else:
            weights = self.semantic_weights(x)
        logits = weights_to_logits(weights[present], self.masking.tau)
        return gumbel_topk_mask(logits, self.masking.ratio, generator)

    def update_teacher(self) -> None:
        if self.teacher is not None:
            with torch.no_grad():
                for tp, sp in zip(self.teacher.parameters(), self.encoder.parameters()):
                    tp.mul_(self.masking.momentum).add_(sp, alpha=1 - self.masking.momentum)


def _present(x: torch.Tensor) -> torch.Tensor:
    """(N, M) bool, same rule as masksem_core: non-zero slots; a clip with none keeps slot 0."""
    present = x.abs().amax(dim=(1, 2, 3)) > 0
    present[~present.any(dim=1), 0] = True
    return present


def naive_features(encoder: NaiveEncoder, x: torch.Tensor) -> torch.Tensor:
    """Inference the reference way: every slot encoded, then pooled over present persons -> (N, D)."""
    n, c, t, v, m = x.shape
    feats = encoder(x.permute(0, 4, 1, 2, 3).reshape(n * m, c, t, v))
    per_seq = feats.mean(dim=1).view(n, m, -1)
    w = _present(x).float().unsqueeze(-1)
    return (per_seq * w).sum(dim=1) / w.sum(dim=1).clamp_min(1)
