"""MaskSem pre-training: masked motion prediction with random, motion-aware or semantic-guided masks."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
from torch import nn

from masksem_core.layouts import get_layout
from masksem_core.model.cam import auto_cam_scale, cam_weights, grad_cam, part_average_matrix
from masksem_core.model.config import MaskingConfig, ModelConfig, TargetConfig
from masksem_core.model.decoder import MotionDecoder
from masksem_core.model.embedding import patchify
from masksem_core.model.encoder import SkeletonEncoder
from masksem_core.model.masking import TokenMask, gumbel_topk_mask, token_motion, weights_to_logits
from masksem_core.model.persons import PresentSequences, select_present
from masksem_core.model.targets import motion_loss, token_targets
from masksem_core.model.teacher import ema_update, make_teacher


@dataclass
class PretrainOutput:
    loss: torch.Tensor
    stats: dict[str, torch.Tensor] = field(default_factory=dict)
    mask: TokenMask | None = None
    cam: torch.Tensor | None = None  # (P, L) sampling weights, semantic strategy only
    sequences: PresentSequences | None = None


class MaskSemPretrainer(nn.Module):
    """Student encoder + decoder (+ EMA teacher for semantic masking); `forward(x)` gives the loss."""

    def __init__(self, model_cfg: ModelConfig, masking: MaskingConfig, target: TargetConfig) -> None:
        super().__init__()
        for cfg in (model_cfg, masking, target):
            cfg.validate()  # also when built in code rather than loaded from YAML
        self.model_cfg = model_cfg
        self.masking = masking
        self.target = target
        self.encoder = SkeletonEncoder(model_cfg)
        self.decoder = MotionDecoder(model_cfg, outputs_per_value=2 if target.separate_heads else 1)
        self.teacher = make_teacher(self.encoder) if masking.strategy == "semantic" else None
        layout = get_layout(model_cfg.layout)
        if layout.num_joints != model_cfg.num_joints:
            raise ValueError(
                f"layout {layout.name} has {layout.num_joints} joints, "
                f"model.num_joints={model_cfg.num_joints}"
            )
        self.register_buffer(
            "part_matrix", part_average_matrix(layout, model_cfg.num_joints), persistent=False
        )

    def train(self, mode: bool = True) -> MaskSemPretrainer:
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()  # the teacher never uses dropout / drop path
        return self

    def reset_teacher(self) -> None:
        """Start the teacher again as a copy of the student (after loading --init-from weights)."""
        if self.teacher is not None:
            self.teacher.load_state_dict(self.encoder.state_dict())

    def update_teacher(self) -> None:
        """EMA step; call after every optimiser step."""
        if self.teacher is not None:
            ema_update(self.teacher, self.encoder, self.masking.momentum)

    def _teacher_context(self) -> contextlib.AbstractContextManager:
        if self.masking.teacher_bf16:
            device_type = "cuda" if self.part_matrix.is_cuda else "cpu"
            return torch.autocast(device_type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @torch.no_grad()
    def teacher_cam(self, x: torch.Tensor, sel: PresentSequences) -> torch.Tensor:
        """The teacher's label-free Grad-CAM of every present sequence, before normalisation (P, L)."""
        assert self.teacher is not None
        with self._teacher_context():
            feats = self.teacher.encode(sel.seqs).float()
            if self.masking.cam_reference == "batch_mean_clip":
                ref_feats, ref_sel = self.teacher.forward_sequences(x.mean(dim=0, keepdim=True))
                ref = ref_sel.pool(ref_feats.float().mean(dim=1))[0]
            else:
                ref = sel.pool(feats.mean(dim=1)).mean(dim=0)
        return grad_cam(feats, ref, sel)

    def cam_scale(self, sel: PresentSequences, num_tokens: int) -> float | torch.Tensor:
        """The multiplier of the scaled CAM norms: fixed, or `auto` (per sequence, see cam.auto_cam_scale)."""
        if self.masking.cam_scale == "auto":
            return auto_cam_scale(sel, num_tokens, self.model_cfg.dim)
        return float(self.masking.cam_scale)

    @torch.no_grad()
    def semantic_weights(self, x: torch.Tensor, sel: PresentSequences) -> torch.Tensor:
        """Teacher Grad-CAM -> normalised, body-part averaged sampling weights (P, L)."""
        cam = self.teacher_cam(x, sel)
        m = self.masking
        return cam_weights(
            cam,
            m.cam_norm,
            self.part_matrix if m.part_average else None,
            sel.seqs.shape[-1],
            scale=self.cam_scale(sel, cam.shape[1]),
            temperature=m.cam_temperature,
            quantile=m.cam_quantile,
        )

    def masking_weights(
        self, x: torch.Tensor, sel: PresentSequences, tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Per-token sampling weights, each token's motion (for statistics), the CAM weights (semantic)."""
        motion = token_motion(tokens, sel.seqs.shape[-1])
        if self.masking.strategy == "random":
            return torch.zeros_like(motion), motion, None
        if self.masking.strategy == "motion":
            return motion, motion, None
        cam = self.semantic_weights(x, sel)
        return (cam * motion if self.masking.cam_times_motion else cam), motion, cam

    def sample_mask(
        self,
        x: torch.Tensor,
        sel: PresentSequences,
        tokens: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[TokenMask, torch.Tensor, torch.Tensor | None]:
        """Returns the mask, each token's motion (for statistics) and the CAM weights (semantic only)."""
        weights, motion, cam = self.masking_weights(x, sel, tokens)
        mask = gumbel_topk_mask(weights_to_logits(weights, self.masking.tau), self.masking.ratio, generator)
        return mask, motion, cam

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> PretrainOutput:
        """x (N, C, T, V, M) -> loss over masked tokens of present persons."""
        cfg = self.model_cfg
        sel = select_present(x)
        seqs = sel.seqs
        segments, joints = seqs.shape[2] // cfg.patch_len, seqs.shape[3]
        tokens = patchify(seqs, cfg.patch_len)
        mask, motion, cam = self.sample_mask(x, sel, tokens, generator)
        visible = self.encoder.encode(seqs, keep=mask.keep)
        pred = self.decoder(visible, mask.keep, segments, joints)
        vel, acc = token_targets(seqs, cfg.patch_len, self.target.norm_eps)
        w_loss = self.target.cam_loss_weight
        token_weight = 1.0 + w_loss * cam if cam is not None and w_loss > 0 else None
        # a clip with no person at all keeps an all-zero slot 0 (see persons.py): nothing to learn from it
        has_motion = (seqs.abs().amax(dim=(1, 2, 3)) > 0).unsqueeze(1)
        loss, stats = motion_loss(
            pred,
            vel,
            acc,
            mask.masked & has_motion,
            self.target.kind,
            self.target.alpha,
            self.target.separate_heads,
            token_weight,
        )
        stats.update(mask_statistics(mask, motion, cam))
        return PretrainOutput(loss=loss, stats=stats, mask=mask, cam=cam, sequences=sel)


@torch.no_grad()
def mask_statistics(
    mask: TokenMask, motion: torch.Tensor, cam: torch.Tensor | None
) -> dict[str, torch.Tensor]:
    """What the mask selected: realised ratio, motion (and CAM) of masked vs kept tokens.

    Values stay tensors (no host sync per step); the trainer averages them per epoch.
    """
    masked = mask.masked.float()
    kept = 1.0 - masked
    stats = {
        "mask_ratio": masked.mean(),
        "motion_masked": (motion * masked).sum() / masked.sum().clamp_min(1),
        "motion_kept": (motion * kept).sum() / kept.sum().clamp_min(1),
    }
    if cam is not None:
        positive = (cam > 0).float()
        stats.update(
            {
                "cam_masked": (cam * masked).sum() / masked.sum().clamp_min(1),
                "cam_kept": (cam * kept).sum() / kept.sum().clamp_min(1),
                "cam_positive_tokens": positive.mean(),
                "cam_all_positive_clips": (positive.amin(dim=1) > 0).float().mean(),
                "cam_all_zero_clips": (positive.amax(dim=1) == 0).float().mean(),
                "cam_all_ones_clips": (cam.amin(dim=1) >= 1.0 - 1e-6).float().mean(),
            }
        )
    return stats
