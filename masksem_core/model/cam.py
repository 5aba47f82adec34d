"""Label-free Grad-CAM for semantic-guided masking, in closed form, and its normalisations.

The target is `1 - mean_n cos(z_n, ref)` with z_n the pooled teacher feature of clip n (mean over
tokens, then over present persons). Its gradient w.r.t. a token feature y[p, l] only passes through
the pooling, so it is the same for every token of a sequence:
    dT/dy[p, l] = g_n / (M_n * L),  g_n = -(1/N) (ref / (|z_n||ref|) - cos_n * z_n / |z_n|^2)
and the Grad-CAM channel weights (token-mean of the gradient) equal it. So
    cam[p, l] = ReLU(mean_d w[p, d] * y[p, l, d])
with no backward pass through the teacher. `test_cam.py` checks this against autograd.
"""

from __future__ import annotations

import torch

from masksem_core.layouts import SkeletonLayout
from masksem_core.model.persons import PresentSequences


def cam_channel_weights(feats: torch.Tensor, ref: torch.Tensor, sel: PresentSequences) -> torch.Tensor:
    """Grad-CAM channel weights (P, D) for features (P, L, D) and reference (D,)."""
    feats = feats.float()
    ref = ref.float()
    z = sel.pool(feats.mean(dim=1))  # (N, D)
    n = z.shape[0]
    z_norm = z.norm(dim=1, keepdim=True).clamp_min(1e-8)
    r_norm = ref.norm().clamp_min(1e-8)
    cos = (z @ ref).unsqueeze(1) / (z_norm * r_norm)
    grad_z = -(ref.unsqueeze(0) / (z_norm * r_norm) - cos * z / z_norm**2) / n  # (N, D)
    scale = 1.0 / (sel.persons_per_clip * feats.shape[1])  # (N,)
    return (grad_z * scale.unsqueeze(1))[sel.clip_index]


def grad_cam(feats: torch.Tensor, ref: torch.Tensor, sel: PresentSequences) -> torch.Tensor:
    """Closed-form CAM (P, L) >= 0."""
    weights = cam_channel_weights(feats, ref, sel)
    return torch.relu((feats.float() * weights.unsqueeze(1)).mean(dim=-1))


def relative_motion_target(feats: torch.Tensor, ref: torch.Tensor, sel: PresentSequences) -> torch.Tensor:
    """The scalar Grad-CAM target, 1 - mean_n cos(z_n, ref) (used by the autograd oracle)."""
    z = sel.pool(feats.mean(dim=1))
    return 1 - torch.nn.functional.cosine_similarity(z, ref.unsqueeze(0), dim=1).mean()


def part_average_matrix(layout_or_parts: SkeletonLayout | list[list[int]], num_joints: int) -> torch.Tensor:
    """(V, V) matrix A with cam @ A = each joint's value replaced by its body part's mean."""
    parts = layout_or_parts.parts if isinstance(layout_or_parts, SkeletonLayout) else layout_or_parts
    a = torch.zeros(num_joints, num_joints)
    for part in parts:
        idx = torch.tensor(part)
        a[idx.unsqueeze(1), idx.unsqueeze(0)] = 1.0 / len(part)
    return a


def part_average(cam: torch.Tensor, matrix: torch.Tensor, joints: int) -> torch.Tensor:
    """(P, S*V) -> (P, S*V) with the values of each body part (per segment) averaged."""
    p, length = cam.shape
    return (cam.view(p, length // joints, joints) @ matrix.to(cam)).reshape(p, length)


# The geometry at which the authors' 1e8 was set: NTU-60, batch 32 per GPU, 2 person slots, 30 x 25
# tokens, width 256. `cam_scale: auto` multiplies by the CAM's own 1/(N*M*L*D) factor relative to it.
NTU_CAM_GEOMETRY = 32 * 2 * 750 * 256
AUTHORS_CAM_SCALE = 1e8


def auto_cam_scale(
    sel: PresentSequences, num_tokens: int, dim: int, base: float = AUTHORS_CAM_SCALE
) -> torch.Tensor:
    """Per-sequence multiplier (P, 1) = base * N * M_n * L * D / NTU geometry.

    The closed-form CAM is proportional to 1/(N * M_n * L) through the pooling and to 1/D through the
    channel mean (see `cam_channel_weights`); this multiplier cancels both, so the scaled map saturates as
    `base` did for the authors at NTU scale, whatever the batch, persons, clip length and width.
    """
    n = sel.persons_per_clip.shape[0]
    persons = sel.persons_per_clip[sel.clip_index].float()
    return (base * n * num_tokens * dim / NTU_CAM_GEOMETRY * persons).unsqueeze(1)


def normalise_cam(
    cam: torch.Tensor,
    mode: str,
    temperature: float = 1.0,
    quantile: float = 0.5,
    eps: float = 1e-12,
    scale: float | torch.Tensor = AUTHORS_CAM_SCALE,
) -> torch.Tensor:
    """Turn a raw CAM (P, L) into weights in [0, 1], token by token (no body parts: see `cam_weights`)."""
    if mode in ("authors", "clip_then_average"):  # x scale, clip: near-binary
        return (torch.relu(cam) * scale).clamp(0.0, 1.0)
    if mode == "minmax":
        lo = cam.amin(dim=1, keepdim=True)
        hi = cam.amax(dim=1, keepdim=True)
        return (cam - lo) / (hi - lo).clamp_min(eps)
    if mode == "standard":
        mean = cam.mean(dim=1, keepdim=True)
        std = cam.std(dim=1, keepdim=True).clamp_min(eps)
        return torch.sigmoid((cam - mean) / std / temperature)
    if mode == "raw":
        return cam / cam.amax(dim=1, keepdim=True).clamp_min(eps)
    if mode == "quantile":
        threshold = torch.quantile(cam, quantile, dim=1, keepdim=True)
        return (cam > threshold).to(cam.dtype)
    raise ValueError(f"unknown masking.cam_norm {mode!r}")


def cam_weights(
    cam: torch.Tensor,
    mode: str,
    part_matrix: torch.Tensor | None,
    joints: int,
    scale: float | torch.Tensor = AUTHORS_CAM_SCALE,
    temperature: float = 1.0,
    quantile: float = 0.5,
) -> torch.Tensor:
    """Raw CAM (P, L) -> sampling weights, with body-part averaging (`part_matrix`, None = off) in the
    place each mode puts it:

    - authors:           clip(part_avg(ReLU(cam) * scale), 0, 1)   (the authors' `_generate_mask`)
    - clip_then_average: part_avg(clip(ReLU(cam) * scale, 0, 1))
    - quantile:          1[part_avg(cam) > its per-clip quantile]
    - minmax / standard / raw: part_avg(norm(cam))
    """
    average = (lambda c: part_average(c, part_matrix, joints)) if part_matrix is not None else (lambda c: c)
    if mode == "authors":
        return average(torch.relu(cam) * scale).clamp(0.0, 1.0)
    if mode == "quantile":
        return normalise_cam(average(cam), "quantile", quantile=quantile)
    return average(normalise_cam(cam, mode, temperature=temperature, scale=scale))
