"""Analytic FLOP count of a pre-training step and of inference, from the model config.

Counts matrix products only (a multiply-add is 2 FLOPs): patch embedding, QKV, attention scores and
values, output projection, MLP, decoder embedding and head. LayerNorm, softmax, GELU and the loss are
a few percent and left out, so achieved FLOP/s is a slight underestimate. Backward = 2 x forward.
These are the *useful* FLOPs (present persons only): the naive reference, which also encodes empty
slots and back-propagates through the teacher, does more work for the same result.
"""

from __future__ import annotations

from masksem_core.model.config import MaskingConfig, ModelConfig
from masksem_core.model.masking import num_visible


def block_flops(tokens: int, dim: int, mlp_ratio: float) -> int:
    """One pre-norm transformer block on `tokens` tokens of width `dim`."""
    hidden = int(dim * mlp_ratio)
    qkv = 2 * tokens * dim * 3 * dim
    attention = 2 * 2 * tokens * tokens * dim  # q k^T and softmax(.) v, all heads together
    proj = 2 * tokens * dim * dim
    mlp = 2 * 2 * tokens * dim * hidden
    return qkv + attention + proj + mlp


def encoder_forward_flops(cfg: ModelConfig, tokens: int | None = None) -> int:
    """Patch embedding of all L tokens, then `depth` blocks on `tokens` (default: all L) tokens."""
    length = cfg.num_tokens
    tokens = length if tokens is None else tokens
    embed = 2 * length * cfg.patch_len * cfg.in_channels * cfg.dim
    return embed + cfg.depth * block_flops(tokens, cfg.dim, cfg.mlp_ratio)


def pretrain_step_flops(
    cfg: ModelConfig,
    masking: MaskingConfig,
    sequences: float,
    outputs_per_value: int = 1,
    reference_sequences: float | None = None,
) -> dict[str, float]:
    """FLOPs of one pre-training step on `sequences` present person sequences.

    Student: encoder on the K visible tokens + decoder on all L tokens, forward and backward (x3).
    Semantic masking adds a teacher forward on every sequence (no backward: closed-form CAM) and one
    on the batch-mean clip's persons (`reference_sequences`, default num_persons).
    """
    length = cfg.num_tokens
    k = num_visible(length, masking.ratio)
    head_out = cfg.patch_len * cfg.in_channels * outputs_per_value
    decoder = (
        2 * k * cfg.dim * cfg.decoder_dim
        + cfg.decoder_depth * block_flops(length, cfg.decoder_dim, cfg.mlp_ratio)
        + 2 * length * cfg.decoder_dim * head_out
    )
    student = encoder_forward_flops(cfg, k) + decoder
    teacher = 0
    if masking.strategy == "semantic":
        teacher = encoder_forward_flops(cfg)
    ref_seqs = cfg.num_persons if reference_sequences is None else reference_sequences
    total = sequences * (3 * student + teacher) + (ref_seqs * teacher)
    return {
        "student_forward": student,
        "teacher_forward": teacher,
        "per_sequence": 3 * student + teacher,
        "total": total,
    }


def inference_flops(cfg: ModelConfig, sequences: int = 1) -> int:
    """Encoder forward on all tokens of `sequences` present persons (the head is negligible)."""
    return sequences * encoder_forward_flops(cfg)
