"""Grad-CAM for semantic masking: the closed form against an independent autograd oracle, body-part
averaging on hand-made maps, and the properties of each normalisation option."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from masksem_core.layouts import LAYOUTS
from masksem_core.model import MaskingConfig, MaskSemPretrainer, ModelConfig, TargetConfig
from masksem_core.model.cam import cam_weights, grad_cam, normalise_cam, part_average, part_average_matrix
from masksem_core.model.persons import select_present


def oracle_cam(feats: torch.Tensor, ref: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Grad-CAM by autograd, written independently of the model code.

    feats (P, L, D) are the present sequences in clip-major order; present (N, M) says which slots
    they are. z_n = mean over n's present persons of the token-mean; target = 1 - mean_n cos(z_n, ref);
    channel weights = token-mean of d target / d feats; cam = ReLU(channel-mean of weights * feats).
    """
    y = feats.detach().double().requires_grad_(True)
    counts = present.sum(dim=1).tolist()
    z, start = [], 0
    for c in counts:
        z.append(y[start : start + c].mean(dim=1).mean(dim=0))
        start += c
    target = 1 - F.cosine_similarity(torch.stack(z), ref.double().unsqueeze(0), dim=1).mean()
    (grad,) = torch.autograd.grad(target, y)
    weights = grad.mean(dim=1, keepdim=True)  # (P, 1, D)
    return torch.relu((weights * y).mean(dim=-1)).detach()


def clips_with_persons(persons: list[int], m: int, t: int = 8, v: int = 20, seed: int = 0) -> torch.Tensor:
    """(N, 3, T, V, M) random clips; clip n has its first persons[n] slots filled, the rest zero."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.zeros(len(persons), 3, t, v, m)
    for n, k in enumerate(persons):
        x[n, ..., :k] = torch.randn(3, t, v, k, generator=gen)
    return x


def assert_cam_matches(cam: torch.Tensor, oracle: torch.Tensor) -> None:
    diff = (cam.double() - oracle).abs().max().item()
    assert diff < 1e-5
    # CAM values are small (the gradient carries 1/(N*M*L)), so also demand relative agreement
    assert oracle.max() > 0 and (oracle == 0).any()  # ReLU is active on both sides
    assert diff <= 1e-4 * oracle.abs().max().item()


def _tiny_cfg(persons: int) -> ModelConfig:
    """A small Kinect v1 model for end-to-end CAM checks (seconds on a CPU)."""
    return ModelConfig(
        num_frames=8,
        num_joints=20,
        num_persons=persons,
        dim=32,
        depth=2,
        heads=4,
        decoder_dim=32,
        decoder_depth=1,
        decoder_heads=4,
        layout="kinect_v1_20",
    )


@pytest.mark.parametrize(
    "persons,m",
    [([1, 1, 1, 1], 1), ([2, 2, 2], 2), ([1, 2, 1, 2, 2], 2), ([1], 1), ([2], 2)],
    ids=["one-person", "two-persons", "mixed", "single-clip", "single-clip-two"],
)
def test_closed_form_cam_equals_autograd_on_random_features(persons: list[int], m: int) -> None:
    x = clips_with_persons(persons, m)
    sel = select_present(x)
    gen = torch.Generator().manual_seed(len(persons) * 10 + m)
    num_seq, length, dim = sel.seqs.shape[0], 30, 16
    for _ in range(5):
        feats = torch.randn(num_seq, length, dim, generator=gen) + 0.3 * torch.randn(dim, generator=gen)
        ref = torch.randn(dim, generator=gen)
        assert_cam_matches(grad_cam(feats, ref, sel), oracle_cam(feats, ref, sel.present))


@pytest.mark.parametrize("m", [1, 2])
def test_pretrainer_semantic_weights_equal_oracle_through_the_teacher(m: int) -> None:
    """End to end: teacher features, batch-mean-clip reference, CAM, no part averaging ('raw' = CAM/max)."""
    torch.manual_seed(0)
    cfg = _tiny_cfg(m)
    masking = MaskingConfig(strategy="semantic", cam_norm="raw", part_average=False)
    model = MaskSemPretrainer(cfg, masking, TargetConfig())
    x = clips_with_persons([1, m, m, 1, m][: 3 + m], m, seed=m)
    sel = select_present(x)
    weights = model.semantic_weights(x, sel)
    # oracle: teacher tokens of each present person, reference = pooled teacher feature of the mean clip
    teacher = model.teacher
    feats = teacher.encode(sel.seqs).detach()
    mean_clip = x.mean(dim=0, keepdim=True)
    ref_tokens, ref_present = teacher(mean_clip)  # (1, M, S, V, D), (1, M)
    ref = ref_tokens[0][ref_present[0]].flatten(1, 2).mean(dim=1).mean(dim=0).detach()
    oracle = oracle_cam(feats, ref, sel.present)
    expected = oracle / oracle.amax(dim=1, keepdim=True).clamp_min(1e-12)
    assert (weights.double() - expected).abs().max().item() < 1e-4
    assert_cam_matches(grad_cam(feats, ref, sel), oracle)


def test_cam_gradient_sign_increases_distance_from_reference() -> None:
    """Moving the features along the Grad-CAM weights raises 1 - cos (the weights are +d target / dy)."""
    from masksem_core.model.cam import cam_channel_weights, relative_motion_target

    x = clips_with_persons([1, 2, 1], 2)
    sel = select_present(x)
    gen = torch.Generator().manual_seed(3)
    feats = torch.randn(sel.seqs.shape[0], 12, 8, generator=gen)
    ref = torch.randn(8, generator=gen)
    w = cam_channel_weights(feats, ref, sel)  # (P, D)
    before = relative_motion_target(feats, ref, sel)
    after = relative_motion_target(feats + 1e-2 * w.unsqueeze(1) / w.norm(), ref, sel)
    assert after > before


def test_part_average_on_hand_made_map() -> None:
    parts = [[0, 1], [2], [3, 4, 5]]
    a = part_average_matrix(parts, 6)
    cam = torch.tensor([[1.0, 3.0, 5.0, 0.0, 0.0, 6.0, 4.0, 0.0, 1.0, 3.0, 3.0, 3.0]])  # 2 segments x 6
    out = part_average(cam, a, joints=6)
    assert out.tolist() == [[2.0, 2.0, 5.0, 2.0, 2.0, 2.0, 2.0, 2.0, 1.0, 3.0, 3.0, 3.0]]


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_part_average_matrix_properties_for_every_layout(name: str) -> None:
    layout = LAYOUTS[name]
    v = layout.num_joints
    a = part_average_matrix(layout, v)
    assert torch.allclose(a.sum(dim=0), torch.ones(v))  # averages preserve constants
    assert torch.allclose(a @ a, a)  # averaging twice changes nothing
    cam = torch.rand(3, 4 * v, generator=torch.Generator().manual_seed(0))
    out = part_average(cam, a, v).view(3, 4, v)
    grid = cam.view(3, 4, v)
    for part in layout.parts:
        idx = list(part)
        expected = grid[..., idx].mean(dim=-1, keepdim=True).expand(-1, -1, len(idx))
        assert torch.allclose(out[..., idx], expected, atol=1e-6)


CAM = torch.tensor([[0.0, 1e-9, 2e-9, 1e-7, 4e-7], [0.0, 0.0, 0.0, 0.0, 0.0], [3.0, 1.0, 2.0, 5.0, 4.0]])


def test_clip_then_average_token_norm_is_near_binary() -> None:
    out = normalise_cam(CAM, "clip_then_average")
    # x 1e8 then clip to [0, 1]: anything above 1e-8 is 1, zero stays 0, 1e-9 -> 0.1
    assert out[0].tolist() == pytest.approx([0.0, 0.1, 0.2, 1.0, 1.0])
    assert out[1].tolist() == [0.0] * 5
    assert out[2].tolist() == [1.0] * 5


def test_minmax_norm() -> None:
    out = normalise_cam(CAM, "minmax")
    assert out[2].tolist() == pytest.approx([0.5, 0.0, 0.25, 1.0, 0.75])
    assert out[0].min() == 0 and out[0].max() == pytest.approx(1.0)
    assert out[1].tolist() == [0.0] * 5  # constant row: zeros, not NaN


def test_standard_norm() -> None:
    out = normalise_cam(CAM, "standard")
    assert torch.isfinite(out).all() and (out > 0).all() and (out < 1).all()
    assert (torch.argsort(out[2]) == torch.argsort(CAM[2])).all()  # monotone per row
    assert out[1].tolist() == pytest.approx([0.5] * 5)
    # the sigmoid of a z-score: symmetric around 0.5 for a symmetric row
    assert out[2].mean().item() == pytest.approx(0.5, abs=1e-6)
    sharp = normalise_cam(CAM, "standard", temperature=0.1)
    assert sharp[2].max() > out[2].max() and sharp[2].min() < out[2].min()


def test_raw_norm() -> None:
    out = normalise_cam(CAM, "raw")
    assert out[2].tolist() == pytest.approx([0.6, 0.2, 0.4, 1.0, 0.8])
    assert out[0].max() == pytest.approx(1.0)
    assert out[1].tolist() == [0.0] * 5


@pytest.mark.parametrize("q", [0.2, 0.5, 0.8])
def test_quantile_norm(q: float) -> None:
    cam = torch.rand(4, 100, generator=torch.Generator().manual_seed(1))
    out = normalise_cam(cam, "quantile", quantile=q)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert torch.allclose(out.mean(dim=1), torch.full((4,), 1 - q), atol=0.011)
    # the selected tokens are exactly the largest ones
    for row, sel in zip(cam, out):
        assert row[sel == 1].min() > row[sel == 0].max()


def test_unknown_norm_names_the_option() -> None:
    with pytest.raises(ValueError, match="cam_norm"):
        normalise_cam(CAM, "softmax")


# Two segments x 4 joints, body parts {0, 1} and {2, 3}: hand-computed at scale 1e8.
HAND_CAM = torch.tensor([[2e-8, 0.0, 0.0, 0.0, 3e-9, 1e-9, 0.0, 5e-8]])
HAND_PARTS = part_average_matrix([[0, 1], [2, 3]], 4)


def test_authors_norm_scales_averages_then_clips() -> None:
    # x1e8: [2, 0, 0, 0 | 0.3, 0.1, 0, 5]; part means: [1, 1, 0, 0 | 0.2, 0.2, 2.5, 2.5]; clip to [0, 1]
    out = cam_weights(HAND_CAM, "authors", HAND_PARTS, 4, scale=1e8)
    assert out[0].tolist() == pytest.approx([1.0, 1.0, 0.0, 0.0, 0.2, 0.2, 1.0, 1.0])


def test_authors_norm_differs_from_clip_then_average() -> None:
    # clip first: [1, 0, 0, 0 | 0.3, 0.1, 0, 1]; part means: [0.5, 0.5, 0, 0 | 0.2, 0.2, 0.5, 0.5]
    out = cam_weights(HAND_CAM, "clip_then_average", HAND_PARTS, 4, scale=1e8)
    assert out[0].tolist() == pytest.approx([0.5, 0.5, 0.0, 0.0, 0.2, 0.2, 0.5, 0.5])


def test_authors_norm_relu_first_and_without_parts() -> None:
    cam = torch.tensor([[-4e-8, 6e-9, 0.0, 2e-8]])
    # ReLU before the part mean: the negative joint counts as 0, not -4 (which would cancel its part)
    assert cam_weights(cam, "authors", HAND_PARTS, 4, scale=1e8)[0].tolist() == pytest.approx(
        [0.3, 0.3, 1.0, 1.0]
    )
    assert cam_weights(cam, "authors", None, 4, scale=1e8)[0].tolist() == pytest.approx([0.0, 0.6, 0.0, 1.0])


def test_authors_auto_scale_cancels_batch_tokens_and_width() -> None:
    from masksem_core.model.cam import NTU_CAM_GEOMETRY, auto_cam_scale

    x = torch.zeros(4, 3, 8, 5, 2)
    x[:, :, :, :, 0] = 1.0
    x[1, :, :, :, 1] = 1.0  # clip 1 has two persons
    sel = select_present(x)
    scale = auto_cam_scale(sel, num_tokens=10, dim=64)
    per_person = 1e8 * 4 * 10 * 64 / NTU_CAM_GEOMETRY
    assert scale.squeeze(1).tolist() == pytest.approx(
        [per_person, 2 * per_person, 2 * per_person, per_person, per_person]
    )
    # at NTU geometry (N=32, M=2, L=750, D=256) auto is exactly the authors' 1e8
    ntu = torch.zeros(32, 3, 4, 1, 2) + 1.0
    assert auto_cam_scale(select_present(ntu), 750, 256).unique().tolist() == pytest.approx([1e8])


def test_authors_auto_scale_makes_weights_batch_size_free() -> None:
    """The same clips in a batch of 4 or 8 (duplicated) get the same authors weights with scale auto."""
    cfg = _tiny_cfg(1)
    torch.manual_seed(0)
    model = MaskSemPretrainer(
        cfg, MaskingConfig(strategy="semantic", cam_scale="auto"), TargetConfig()
    ).eval()
    fixed = MaskSemPretrainer(cfg, MaskingConfig(strategy="semantic"), TargetConfig()).eval()
    fixed.load_state_dict(model.state_dict())
    x = torch.randn(4, 3, cfg.num_frames, cfg.num_joints, 1)
    x2 = torch.cat([x, x])
    w4 = model.semantic_weights(x, select_present(x))
    w8 = model.semantic_weights(x2, select_present(x2))[:4]
    assert torch.allclose(w4, w8, atol=1e-5)
    # with the fixed 1e8 the raw CAM halves when the batch doubles: the scaled values differ
    raw4 = fixed.teacher_cam(x, select_present(x))
    raw8 = fixed.teacher_cam(x2, select_present(x2))[:4]
    assert torch.allclose(raw8, raw4 / 2, atol=1e-9, rtol=1e-3)
