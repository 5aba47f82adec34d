"""Reconstruction targets: velocity / acceleration on analytic trajectories, per-token normalisation,
masked MSE (visible tokens get no gradient) and the hybrid loss arithmetic."""

from __future__ import annotations

import pytest
import torch

from masksem_core.model import MaskingConfig, MaskSemPretrainer, ModelConfig, TargetConfig
from masksem_core.model.embedding import patchify
from masksem_core.model.targets import acceleration, masked_mse, motion_loss, token_targets, velocity

T = 12


def trajectory(fn) -> torch.Tensor:
    """(1, 3, T, 2): joint 0 follows fn(t) on x, 2*fn(t) on y, -fn(t) on z; joint 1 is still at 1."""
    t = torch.arange(T, dtype=torch.float64)
    seqs = torch.ones(1, 3, T, 2, dtype=torch.float64)
    seqs[0, 0, :, 0] = fn(t)
    seqs[0, 1, :, 0] = 2 * fn(t)
    seqs[0, 2, :, 0] = -fn(t)
    return seqs


def test_velocity_and_acceleration_of_t_squared() -> None:
    seqs = trajectory(lambda t: t**2)
    v = velocity(seqs)[0, 0, :, 0]
    a = acceleration(seqs)[0, 0, :, 0]
    t = torch.arange(T, dtype=torch.float64)
    # v[t] = (t+1)^2 - t^2 = 2t + 1, last frame 0
    assert v[:-1].tolist() == (2 * t[:-1] + 1).tolist() and v[-1] == 0
    # constant acceleration 2, except the padded tail: a[T-2] = 0 - v[T-2], a[T-1] = 0
    assert a[: T - 2].tolist() == [2.0] * (T - 2)
    assert a[T - 2] == -(2 * (T - 2) + 1) and a[T - 1] == 0
    # each axis scales with its trajectory; the still joint has no motion at all
    assert torch.equal(velocity(seqs)[0, 1, :, 0], 2 * v)
    assert torch.equal(acceleration(seqs)[0, 2, :, 0], -a)
    assert not velocity(seqs)[..., 1].any() and not acceleration(seqs)[..., 1].any()


def test_linear_trajectory_has_zero_acceleration() -> None:
    seqs = trajectory(lambda t: 3 * t + 1)
    assert velocity(seqs)[0, 0, :-1, 0].tolist() == [3.0] * (T - 1)
    a = acceleration(seqs)[0, 0, :, 0]
    assert a[: T - 2].tolist() == [0.0] * (T - 2) and a[T - 2] == -3


def test_token_targets_layout_and_per_token_normalisation() -> None:
    gen = torch.Generator().manual_seed(0)
    seqs = torch.randn(2, 3, 8, 5, generator=gen).cumsum(dim=2)
    vel, acc = token_targets(seqs, patch_len=4)
    assert vel.shape == acc.shape == (2, 2 * 5, 12)
    # every token: mean 0, (biased) variance 1 over its 12 values, up to the eps in the denominator
    for tgt in (vel, acc):
        assert torch.allclose(tgt.mean(-1), torch.zeros(2, 10), atol=1e-5)
        assert torch.allclose(tgt.var(-1, unbiased=False), torch.ones(2, 10), atol=1e-4)
    # token (s, v) of the raw velocity holds frames 4s..4s+3 of joint v, frame-major then xyz
    raw = patchify(velocity(seqs), 4)
    s, v = 1, 3
    expected = velocity(seqs)[1, :, 4 * s : 4 * s + 4, v].T.reshape(-1)  # (4 frames, 3) -> 12
    assert torch.equal(raw[1, s * 5 + v], expected)
    manual = (expected - expected.mean()) / torch.sqrt(expected.var(unbiased=False) + 1e-6)
    assert torch.allclose(vel[1, s * 5 + v], manual, atol=1e-6)


def test_constant_token_normalises_to_zero_not_nan() -> None:
    seqs = trajectory(lambda t: t**2).float()
    _, acc = token_targets(seqs, patch_len=4)
    # the still joint 1 (odd tokens: token = s * V + v) has all-zero targets -> exact zeros, no NaN
    assert torch.isfinite(acc).all()
    assert not acc[0, 1::2].any()


def test_masked_mse_ignores_visible_tokens() -> None:
    gen = torch.Generator().manual_seed(1)
    pred = torch.randn(3, 10, 12, generator=gen, requires_grad=True)
    target = torch.randn(3, 10, 12, generator=gen)
    masked = torch.rand(3, 10, generator=gen) < 0.6
    loss = masked_mse(pred, target, masked)
    manual = ((pred - target) ** 2).mean(-1)[masked].mean()
    assert torch.allclose(loss, manual)
    (grad,) = torch.autograd.grad(loss, pred)
    assert not grad[~masked].any()  # exactly zero on visible tokens
    assert (grad[masked].abs().sum(-1) > 0).all()
    # changing visible predictions arbitrarily does not change the loss
    wild = pred.detach().clone()
    wild[~masked] = 1e6
    assert torch.equal(masked_mse(wild, target, masked), loss.detach())


def test_masked_mse_with_nothing_masked_is_zero() -> None:
    pred = torch.ones(1, 4, 12)
    assert masked_mse(pred, torch.zeros(1, 4, 12), torch.zeros(1, 4, dtype=torch.bool)).item() == 0.0


def _loss_inputs(width_factor: int):
    gen = torch.Generator().manual_seed(2)
    pred = torch.randn(2, 6, 12 * width_factor, generator=gen, requires_grad=True)
    vel = torch.randn(2, 6, 12, generator=gen)
    acc = torch.randn(2, 6, 12, generator=gen)
    masked = torch.tensor([[1, 0, 1, 1, 0, 1], [0, 1, 1, 0, 1, 1]], dtype=torch.bool)
    return pred, vel, acc, masked


def test_hybrid_loss_arithmetic_one_head() -> None:
    pred, vel, acc, masked = _loss_inputs(1)
    loss, stats = motion_loss(pred, vel, acc, masked, "hybrid", alpha=0.2, separate_heads=False)
    lv = masked_mse(pred, vel, masked)
    la = masked_mse(pred, acc, masked)  # the same prediction regresses both targets
    assert torch.allclose(loss, 0.8 * lv + 0.2 * la)
    assert stats["loss_vel"].item() == pytest.approx(lv.item())
    assert stats["loss_acc"].item() == pytest.approx(la.item())
    v_only, _ = motion_loss(pred, vel, acc, masked, "velocity", 0.2, False)
    a_only, _ = motion_loss(pred, vel, acc, masked, "acceleration", 0.2, False)
    assert torch.allclose(v_only, lv) and torch.allclose(a_only, la)
    # alpha = 0 and 1 reduce the hybrid to each target
    assert torch.allclose(motion_loss(pred, vel, acc, masked, "hybrid", 0.0, False)[0], lv)
    assert torch.allclose(motion_loss(pred, vel, acc, masked, "hybrid", 1.0, False)[0], la)


def test_hybrid_loss_separate_heads() -> None:
    pred, vel, acc, masked = _loss_inputs(2)
    loss, _ = motion_loss(pred, vel, acc, masked, "hybrid", alpha=0.2, separate_heads=True)
    expected = 0.8 * masked_mse(pred[..., :12], vel, masked) + 0.2 * masked_mse(pred[..., 12:], acc, masked)
    assert torch.allclose(loss, expected)
    v_only, _ = motion_loss(pred, vel, acc, masked, "velocity", 0.2, True)
    (grad,) = torch.autograd.grad(v_only, pred)
    assert not grad[..., 12:].any()  # the acceleration head gets nothing from a velocity-only loss


@pytest.mark.parametrize("strategy", ["random", "motion", "semantic"])
def test_pretrainer_gives_visible_predictions_zero_gradient(strategy: str) -> None:
    torch.manual_seed(0)
    cfg = ModelConfig(
        num_frames=16, num_joints=20, num_persons=2, dim=32, depth=1, heads=2, decoder_dim=32,
        decoder_depth=1, decoder_heads=2, layout="kinect_v1_20",
    )  # fmt: skip
    model = MaskSemPretrainer(cfg, MaskingConfig(strategy=strategy, ratio=0.75), TargetConfig())
    captured = {}

    def keep_pred(module, inputs, output):
        output.retain_grad()
        captured["pred"] = output

    model.decoder.register_forward_hook(keep_pred)
    x = torch.randn(3, 3, 16, 20, 2)
    x[0, ..., 1] = 0
    out = model(x, generator=torch.Generator().manual_seed(4))
    out.loss.backward()
    grad = captured["pred"].grad
    masked = out.mask.masked
    assert grad.shape[:2] == masked.shape
    assert not grad[~masked].any()
    assert (grad[masked].abs().sum(-1) > 0).all()
    assert set(out.stats) >= {"loss_vel", "loss_acc", "mask_ratio", "motion_masked", "motion_kept"}
