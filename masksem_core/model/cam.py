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


def normalise_cam(
    cam: torch.Tensor, mode: str, temperature: float = 1.0, quantile: float = 0.5, eps: float = 1e-12
) -> torch.Tensor:
    """Turn a raw CAM (P, L) into sampling weights in [0, 1] (quantile mode is applied after parts)."""
    if mode == "reference":  # the authors' code: x 1e8, clip to [0, 1] -> near-binary
        return (cam * 1e8).clamp(0.0, 1.0)
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
