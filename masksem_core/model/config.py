"""Model, masking and target settings (the parts of a run's config the model itself reads)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal, get_args, get_origin, get_type_hints

from masksem_core.config import ConfigError


def _check_choices(obj: object, section: str) -> None:
    """Literal fields hold one of their choices, also when the dataclass was built in code, not YAML."""
    hints = get_type_hints(type(obj))
    for f in fields(obj):  # type: ignore[arg-type]
        tp = hints[f.name]
        if get_origin(tp) is Literal and getattr(obj, f.name) not in get_args(tp):
            raise ConfigError(
                f"{section}.{f.name}={getattr(obj, f.name)!r} is not one of {list(get_args(tp))}"
            )


@dataclass
class ModelConfig:
    """Backbone sizes. Defaults are the NTU-60 reference (MAMP): T=120, V=25, M=2, 8+3 layers, 256 wide."""

    num_frames: int = 120
    num_joints: int = 25
    num_persons: int = 2
    in_channels: int = 3
    patch_len: int = 4
    dim: int = 256
    depth: int = 8
    heads: int = 8
    mlp_ratio: float = 4.0
    decoder_dim: int = 256
    decoder_depth: int = 3
    decoder_heads: int = 8
    drop_path: float = 0.0
    layout: str = "ntu25"

    def validate(self) -> None:
        for name in (
            "num_frames",
            "num_joints",
            "num_persons",
            "in_channels",
            "patch_len",
            "dim",
            "depth",
            "heads",
            "decoder_dim",
            "decoder_heads",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_frames % self.patch_len:
            raise ConfigError(
                f"model.num_frames={self.num_frames} must be a multiple of model.patch_len={self.patch_len}"
            )
        if self.dim % self.heads or self.decoder_dim % self.decoder_heads:
            raise ConfigError("model.dim / decoder_dim must be divisible by heads / decoder_heads")
        if self.decoder_depth < 0 or self.mlp_ratio <= 0 or not 0.0 <= self.drop_path < 1.0:
            raise ConfigError(
                "model: need decoder_depth >= 0, mlp_ratio > 0, 0 <= drop_path < 1; got "
                f"{self.decoder_depth}, {self.mlp_ratio}, {self.drop_path}"
            )

    @property
    def num_segments(self) -> int:
        return self.num_frames // self.patch_len

    @property
    def num_tokens(self) -> int:
        return self.num_segments * self.num_joints


@dataclass
class MaskingConfig:
    """Which tokens the student may not see.

    strategy: random (MAE), motion (MAMP, temperature `tau`), semantic (MaskSem: Grad-CAM of an EMA
    teacher; `momentum=1` keeps the teacher frozen at its start, e.g. the --init-from checkpoint).
    `cam_norm` chooses how the raw CAM becomes sampling weights (formulas in docs/model.md):
    `authors` = ReLU -> x `cam_scale` -> body-part average per segment -> clip to [0, 1] (the authors'
    order), `clip_then_average` = x `cam_scale` -> clip -> part average (this library's `reference`
    before issue 19; the old name is refused with a pointer to both), `minmax` per clip, `standard`
    (per-clip z-score / `cam_temperature`, then sigmoid), `quantile` (body-part segments above the clip's
    `cam_quantile` quantile are 1, the rest 0), `raw` (ReLU map / its per-clip max).
    `cam_scale`: the multiplier of the two scaled modes: a number (the authors: 1e8), or `auto` = 1e8 x
    (N*M_n*L*D) / (32*2*750*256), which removes the CAM's 1/(N*M_n*L*D) factor (batch, persons of the
    clip, tokens, width) and so saturates as 1e8 does at NTU scale, at any batch, clip size and width.
    `cam_times_motion` multiplies the semantic weights by MAMP's token motion (semantic x motion).
    `cam_reference` picks the reference feature: `batch_mean_clip` (paper) or `batch_mean_feature`.
    """

    strategy: Literal["random", "motion", "semantic"] = "semantic"
    ratio: float = 0.9
    tau: float = 0.80
    momentum: float = 0.99
    cam_norm: Literal["authors", "clip_then_average", "minmax", "standard", "quantile", "raw"] = "authors"
    cam_scale: float | Literal["auto"] = 1e8
    cam_times_motion: bool = False
    cam_reference: Literal["batch_mean_clip", "batch_mean_feature"] = "batch_mean_clip"
    cam_temperature: float = 1.0
    cam_quantile: float = 0.5
    part_average: bool = True
    teacher_bf16: bool = False

    def validate(self) -> None:
        if self.cam_norm == "reference":
            raise ConfigError(
                "masking.cam_norm=reference was renamed (issue 19): use 'clip_then_average' for what it "
                "did (x 1e8, clip, then part average) or 'authors' for the authors' order "
                "(x 1e8, part average, then clip); see docs/model.md"
            )
        _check_choices(self, "masking")
        if self.cam_scale != "auto" and (
            isinstance(self.cam_scale, (str, bool)) or not self.cam_scale > 0
        ):
            raise ConfigError(f"masking.cam_scale must be a number > 0 or 'auto', got {self.cam_scale!r}")
        if not 0.0 <= self.ratio < 1.0:
            raise ConfigError(f"masking.ratio must be in [0, 1), got {self.ratio}")
        if self.tau <= 0:
            raise ConfigError(f"masking.tau must be > 0, got {self.tau}")
        if not 0.0 <= self.momentum <= 1.0:
            raise ConfigError(f"masking.momentum must be in [0, 1], got {self.momentum}")
        if not 0.0 < self.cam_quantile < 1.0:
            raise ConfigError(f"masking.cam_quantile must be in (0, 1), got {self.cam_quantile}")


@dataclass
class TargetConfig:
    """Reconstruction target: velocity, acceleration or their hybrid (1 - alpha) * vel + alpha * acc.

    `cam_loss_weight` (semantic masking only): each masked token's error is weighted by
    1 + cam_loss_weight * w, w its semantic sampling weight in [0, 1] (a CAM-weighted reconstruction loss,
    as the authors' code carries commented out; 0 = the plain masked MSE).
    """

    kind: Literal["velocity", "acceleration", "hybrid"] = "hybrid"
    alpha: float = 0.2
    separate_heads: bool = False
    norm_eps: float = 1e-6
    cam_loss_weight: float = 0.0

    def validate(self) -> None:
        _check_choices(self, "target")
        if self.cam_loss_weight < 0:
            raise ConfigError(f"target.cam_loss_weight must be >= 0, got {self.cam_loss_weight}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"target.alpha must be in [0, 1], got {self.alpha}")
