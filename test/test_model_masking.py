"""Mask sampling: exact visible-token counts, the Gumbel-top-k sampler's distribution, and the three
strategies' statistics (motion-aware and semantic masks follow their weights; random does not)."""

from __future__ import annotations

import math

import pytest
import torch

from masksem_core.model import MaskingConfig, MaskSemPretrainer, ModelConfig, TargetConfig
from masksem_core.model.embedding import patchify
from masksem_core.model.masking import gumbel_topk_mask, num_visible, token_motion, weights_to_logits
from masksem_core.model.persons import select_present

RATIOS = [0.0, 0.05, 0.1, 0.25, 0.5, 0.75, 0.8, 0.9, 0.95, 0.99, 0.999]


def tiny_cfg(**kw) -> ModelConfig:
    base = dict(num_frames=16, num_joints=20, num_persons=1, dim=32, depth=1, heads=2, decoder_dim=32)
    base.update(decoder_depth=1, decoder_heads=2, layout="kinect_v1_20")
    base.update(kw)
    return ModelConfig(**base)


def two_proportion_z(hits_a: int, hits_b: int, n: int) -> float:
    """z statistic of p_a - p_b for two proportions with n trials each (pooled variance)."""
    pa, pb = hits_a / n, hits_b / n
    pooled = (hits_a + hits_b) / (2 * n)
    se = math.sqrt(max(pooled * (1 - pooled) * 2 / n, 1e-12))
    return (pa - pb) / se


@pytest.mark.parametrize("length", [1, 2, 7, 25, 100, 400, 750])
@pytest.mark.parametrize("ratio", RATIOS)
def test_exact_visible_count_at_every_ratio(length: int, ratio: float) -> None:
    k = num_visible(length, ratio)
    # round the masked count; never hide every token
    assert k == max(1, length - round(length * ratio))
    assert 1 <= k <= length
    if k > 1:
        assert abs((length - k) - length * ratio) <= 0.5
    gen = torch.Generator().manual_seed(0)
    mask = gumbel_topk_mask(torch.randn(3, length, generator=gen), ratio, gen)
    assert mask.keep.shape == (3, k)
    assert mask.masked.shape == (3, length)
    assert (mask.masked.sum(dim=1) == length - k).all()
    # keep is sorted, unique and exactly the unmasked positions
    assert (mask.keep.diff(dim=1) > 0).all()
    assert (~mask.masked.gather(1, mask.keep)).all()


def test_reference_token_counts() -> None:
    # NTU grid 30 x 25 = 750 -> 75 visible; NW-UCLA-like 400 tokens -> 40 (the reference's int() gives 39)
    assert num_visible(750, 0.9) == 75
    assert num_visible(400, 0.9) == 40
    assert num_visible(400, 0.0) == 400
    assert num_visible(10, 0.999) == 1


def test_pretrainer_realises_exact_ratio_per_sequence() -> None:
    cfg = tiny_cfg(num_persons=2)
    model = MaskSemPretrainer(cfg, MaskingConfig(strategy="motion", ratio=0.75), TargetConfig())
    x = torch.randn(4, 3, 16, 20, 2)
    x[1, ..., 1] = 0  # 7 present sequences
    out = model(x, generator=torch.Generator().manual_seed(1))
    length = cfg.num_tokens
    assert out.mask.masked.shape == (7, length)
    assert (out.mask.masked.sum(1) == length - num_visible(length, 0.75)).all()
    assert out.stats["mask_ratio"].item() == pytest.approx((length - num_visible(length, 0.75)) / length)


def test_gumbel_topk_masks_a_token_with_softmax_probability() -> None:
    """With one masked token, P(token i is masked) = softmax(logits)_i (Gumbel-max trick)."""
    logits = torch.tensor([0.0, 0.5, 1.0, 1.5, 3.0])
    n = 20000
    gen = torch.Generator().manual_seed(123)
    mask = gumbel_topk_mask(logits.expand(n, -1), ratio=0.2, generator=gen)  # masks exactly 1 of 5
    assert (mask.masked.sum(1) == 1).all()
    freq = mask.masked.float().mean(0)
    p = torch.softmax(logits, 0)
    se = torch.sqrt(p * (1 - p) / n)
    assert ((freq - p).abs() < 5 * se).all(), (freq, p)
    # the highest-logit token is the one most often masked (not kept)
    assert freq.argmax().item() == 4


def test_weights_to_logits() -> None:
    w = torch.tensor([[0.0, 1.0, 2.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    logits = weights_to_logits(w, tau=0.8)
    # max weight maps to 1/tau, zero stays zero; an all-zero row is uniform (finite zeros)
    assert logits[0].tolist() == pytest.approx([0.0, 1.0 / 3.2, 2.0 / 3.2, 1.0 / 0.8], rel=1e-6)
    assert logits[1].tolist() == [0.0] * 4
    # scale invariance: only relative motion matters
    assert torch.allclose(weights_to_logits(w[:1] * 1000, 0.8), logits[:1], rtol=1e-6)


def test_token_motion_on_hand_made_sequence() -> None:
    # one joint moving +1 per frame on x, one joint still; T=8, patch 4 -> 2 segments
    t = torch.arange(8.0)
    seqs = torch.zeros(1, 3, 8, 2)
    seqs[0, 0, :, 0] = t
    tokens = patchify(seqs, 4)  # (1, 4, 12), token = s * V + v
    motion = token_motion(tokens, joints=2)
    # segment 1 - segment 0 = +4 on the 4 x-values, 0 on 8 y/z values -> mean |.| = 16/12
    assert motion[0].tolist() == pytest.approx([4 / 3, 0.0, 4 / 3, 0.0])
    # a single segment has no motion defined: zeros, not an error
    assert token_motion(patchify(seqs[:, :, :4], 4), joints=2).tolist() == [[0.0, 0.0]]


def _moving_and_still(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips whose first 5 joints wave (high motion) and the rest barely move; the high-joint flag."""
    gen = torch.Generator().manual_seed(seed)
    x = 0.01 * torch.randn(n, 3, 16, 20, 1, generator=gen)
    phase = torch.rand(n, 1, 1, generator=gen) * 6.28
    x[:, :, :, :5, 0] += torch.sin(torch.arange(16.0).view(1, 1, 16, 1) + phase.unsqueeze(-1))
    high = torch.zeros(20, dtype=torch.bool)
    high[:5] = True
    return x, high


@pytest.mark.parametrize("ratio", [0.5, 0.9])
def test_motion_aware_masks_high_motion_tokens_more_often_than_random(ratio: float) -> None:
    x, high = _moving_and_still(64, seed=0)
    cfg = tiny_cfg()
    sel = select_present(x)
    tokens = patchify(sel.seqs, cfg.patch_len)
    high_tok = high.repeat(cfg.num_segments)  # token = s * V + v
    counts = {}
    for strategy in ("random", "motion"):
        model = MaskSemPretrainer(cfg, MaskingConfig(strategy=strategy, ratio=ratio), TargetConfig())
        mask, motion, _ = model.sample_mask(x, sel, tokens, torch.Generator().manual_seed(7))
        counts[strategy] = int(mask.masked[:, high_tok].sum())
        if strategy == "motion":
            assert motion[:, high_tok].mean() > 10 * motion[:, ~high_tok].mean()
    trials = x.shape[0] * int(high_tok.sum())
    z = two_proportion_z(counts["motion"], counts["random"], trials)
    assert z > 4.0, (counts, trials, z)
    # random is uniform: its high-motion mask rate is the ratio itself (within 5 binomial sigmas)
    rate = counts["random"] / trials
    assert abs(rate - ratio) < 5 * math.sqrt(ratio * (1 - ratio) / trials) + 1 / trials


def test_random_masking_ignores_motion() -> None:
    x, high = _moving_and_still(64, seed=1)
    cfg = tiny_cfg()
    model = MaskSemPretrainer(cfg, MaskingConfig(strategy="random", ratio=0.5), TargetConfig())
    out = model(x, generator=torch.Generator().manual_seed(3))
    masked = out.mask.masked
    high_tok = high.repeat(cfg.num_segments)
    z = two_proportion_z(
        int(masked[:, high_tok].sum()),
        int(masked[:, ~high_tok][:, : int(high_tok.sum())].sum()),
        masked.shape[0] * int(high_tok.sum()),
    )
    assert abs(z) < 4.0


def test_semantic_masking_follows_the_cam() -> None:
    """For a fixed input the CAM is deterministic; over many draws, high-CAM tokens are masked more."""
    torch.manual_seed(0)
    cfg = tiny_cfg()
    masking = MaskingConfig(strategy="semantic", ratio=0.5, cam_norm="minmax", part_average=True)
    model = MaskSemPretrainer(cfg, masking, TargetConfig()).eval()
    x, _ = _moving_and_still(8, seed=2)
    sel = select_present(x)
    tokens = patchify(sel.seqs, cfg.patch_len)
    gen = torch.Generator().manual_seed(5)
    draws = 300
    freq = torch.zeros(sel.seqs.shape[0], cfg.num_tokens)
    cam = None
    for _ in range(draws):
        mask, _, cam_i = model.sample_mask(x, sel, tokens, gen)
        if cam is not None:
            assert torch.equal(cam_i, cam)  # the teacher is deterministic
        cam = cam_i
        freq += mask.masked.float()
    freq /= draws
    assert cam is not None and cam.min() >= 0 and cam.max() <= 1
    assert torch.equal(cam, model.semantic_weights(x, sel))
    # per clip: tokens in the top third of CAM are masked clearly more often than the bottom third
    for f, c in zip(freq, cam):
        if c.max() - c.min() < 0.5:
            continue
        lo, hi = torch.quantile(c, torch.tensor([1 / 3, 2 / 3]))
        assert f[c >= hi].mean() > f[c <= lo].mean() + 0.1
        # and the mask frequency rises with the CAM (rank correlation)
        rc = torch.argsort(torch.argsort(c)).float()
        rf = torch.argsort(torch.argsort(f)).float()
        assert torch.corrcoef(torch.stack([rc, rf]))[0, 1] > 0.5


def test_masks_are_random_but_reproducible() -> None:
    """Uniform logits: every token is sometimes kept and sometimes masked; a seeded generator repeats."""
    logits = torch.zeros(200, 50)
    a = gumbel_topk_mask(logits, 0.9, torch.Generator().manual_seed(11))
    b = gumbel_topk_mask(logits, 0.9, torch.Generator().manual_seed(11))
    c = gumbel_topk_mask(logits, 0.9, torch.Generator().manual_seed(12))
    assert torch.equal(a.keep, b.keep)
    assert not torch.equal(a.keep, c.keep)
    assert len({tuple(row.tolist()) for row in a.keep}) > 190  # rows differ from each other
    kept_rate = (~a.masked).float().mean(0)
    assert (kept_rate > 0).all() and (kept_rate < 0.3).all()  # expected 0.1 for every token
