"""Person slots: an all-zero slot is absent — not encoded, not in the loss, not in pooled features."""

from __future__ import annotations

import pytest
import torch

from masksem_core.model import (
    ActionClassifier,
    MaskingConfig,
    MaskSemPretrainer,
    ModelConfig,
    SkeletonEncoder,
    TargetConfig,
)
from masksem_core.model.persons import person_present, select_present

V = 20


def tiny_cfg(m: int = 2) -> ModelConfig:
    return ModelConfig(
        num_frames=16, num_joints=V, num_persons=m, dim=32, depth=2, heads=2, decoder_dim=32,
        decoder_depth=1, decoder_heads=2, layout="kinect_v1_20",
    )  # fmt: skip


def person(seed: int) -> torch.Tensor:
    return torch.randn(3, 16, V, generator=torch.Generator().manual_seed(seed))


def test_person_present_and_selection() -> None:
    x = torch.zeros(3, 3, 16, V, 2)
    x[0, ..., 0] = person(0)
    x[0, ..., 1] = person(1)
    x[1, ..., 1] = person(2)  # only the second slot
    # clip 2 has nobody: slot 0 is kept (all zeros) so the clip still has a feature
    present = person_present(x)
    assert present.tolist() == [[True, True], [False, True], [True, False]]
    sel = select_present(x)
    assert sel.flat_index.tolist() == [0, 1, 3, 4]
    assert sel.clip_index.tolist() == [0, 0, 1, 2]
    assert sel.persons_per_clip.tolist() == [2.0, 1.0, 1.0]
    assert torch.equal(sel.seqs[2], person(2)) and not sel.seqs[3].any()
    # a slot with a single non-zero value is present
    y = torch.zeros(1, 3, 16, V, 2)
    y[0, 1, 5, 7, 1] = 1e-3
    assert person_present(y).tolist() == [[False, True]]


def test_encoder_skips_empty_slots_and_matches_the_person_alone() -> None:
    torch.manual_seed(0)
    enc = SkeletonEncoder(tiny_cfg()).eval()
    x = torch.zeros(2, 3, 16, V, 2)
    x[0, ..., 0] = person(0)
    x[0, ..., 1] = person(1)
    x[1, ..., 1] = person(2)
    with torch.no_grad():
        feats, present = enc(x)
        alone = {s: enc.encode(person(s).unsqueeze(0))[0] for s in (0, 1, 2)}
    s = 16 // 4
    assert feats.shape == (2, 2, s, V, 32)
    assert present.tolist() == [[True, True], [False, True]]
    assert torch.allclose(feats[0, 0].reshape(s * V, -1), alone[0], atol=1e-5)
    assert torch.allclose(feats[0, 1].reshape(s * V, -1), alone[1], atol=1e-5)
    assert torch.allclose(feats[1, 1].reshape(s * V, -1), alone[2], atol=1e-5)
    assert not feats[1, 0].any()  # the absent slot is zeros, never encoded


@pytest.mark.parametrize("strategy", ["random", "motion", "semantic"])
def test_empty_slot_changes_neither_loss_nor_mask(strategy: str) -> None:
    """One person in a 2-slot clip (slot 1 empty) gives exactly the loss of that person in a 1-slot clip."""
    torch.manual_seed(0)
    model = MaskSemPretrainer(tiny_cfg(2), MaskingConfig(strategy=strategy, ratio=0.75), TargetConfig())
    padded = torch.zeros(2, 3, 16, V, 2)
    padded[0, ..., 0] = person(0)
    padded[1, ..., 0] = person(1)
    alone = padded[..., :1].clone()
    out_pad = model(padded, generator=torch.Generator().manual_seed(9))
    out_alone = model(alone, generator=torch.Generator().manual_seed(9))
    assert out_pad.mask.masked.shape[0] == 2  # the empty slots were not encoded
    assert torch.equal(out_pad.mask.keep, out_alone.mask.keep)
    assert torch.allclose(out_pad.loss, out_alone.loss, rtol=1e-6, atol=1e-7)
    if strategy == "semantic":
        assert torch.allclose(out_pad.cam, out_alone.cam, atol=1e-6)


def test_two_persons_in_one_clip_equal_two_one_person_clips_in_the_loss() -> None:
    torch.manual_seed(0)
    model = MaskSemPretrainer(tiny_cfg(2), MaskingConfig(strategy="motion"), TargetConfig())
    together = torch.stack([person(3), person(4)], dim=-1).unsqueeze(0)  # (1, 3, T, V, 2)
    apart = torch.stack([person(3), person(4)]).unsqueeze(-1)  # (2, 3, T, V, 1)
    a = model(together, generator=torch.Generator().manual_seed(1))
    b = model(apart, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(a.loss, b.loss, rtol=1e-6, atol=1e-7)


def test_loss_with_an_empty_slot_is_not_diluted() -> None:
    """Adding empty slots to a batch leaves the loss equal to the loss of the present persons alone."""
    torch.manual_seed(0)
    model = MaskSemPretrainer(tiny_cfg(2), MaskingConfig(strategy="random"), TargetConfig())
    x = torch.zeros(2, 3, 16, V, 2)
    x[0, ..., 0] = person(5)
    x[0, ..., 1] = person(6)
    x[1, ..., 1] = person(7)  # present only in the second slot
    ref = torch.stack([person(5), person(6), person(7)]).unsqueeze(-1)
    a = model(x, generator=torch.Generator().manual_seed(2))
    b = model(ref, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(a.loss, b.loss, rtol=1e-6, atol=1e-7)
    assert a.stats["mask_ratio"] == b.stats["mask_ratio"]


@pytest.mark.parametrize("head", ["linear", "finetune"])
def test_classifier_features_pool_present_persons_only(head: str) -> None:
    torch.manual_seed(0)
    clf = ActionClassifier(tiny_cfg(2), num_classes=5, head=head).eval()
    one = torch.zeros(1, 3, 16, V, 2)
    one[0, ..., 0] = person(0)
    two = one.clone()
    two[0, ..., 1] = person(1)
    with torch.no_grad():
        f_pad = clf.features(one)
        f_alone = clf.features(one[..., :1])
        f_b = clf.features(person(1).unsqueeze(0).unsqueeze(-1))
        f_two = clf.features(two)
        pooled, per_joint = clf.pooled_features(two)
        logits_pad, logits_alone = clf(one), clf(one[..., :1])
    assert f_pad.shape == (1, 32)
    assert torch.allclose(f_pad, f_alone, atol=1e-6)  # an empty slot does not halve the feature
    assert torch.allclose(f_two, (f_alone + f_b) / 2, atol=1e-6)  # mean over the present persons
    assert per_joint.shape == (1, V, 32) and torch.allclose(pooled, per_joint.mean(1))
    assert torch.allclose(logits_pad, logits_alone, atol=1e-5)


def test_pooled_feature_is_the_mean_over_time_joints_and_persons() -> None:
    torch.manual_seed(0)
    clf = ActionClassifier(tiny_cfg(2), num_classes=3).eval()
    x = torch.stack([person(8), person(9)], dim=-1).unsqueeze(0)
    with torch.no_grad():
        feats, _ = clf.encoder(x)  # (1, M, S, V, D)
        expected = feats.mean(dim=(1, 2, 3))
        assert torch.allclose(clf.features(x), expected, atol=1e-6)


def test_a_clip_with_no_person() -> None:
    """No crash: the all-zero clip is encoded once (slot 0), its feature and the loss are finite."""
    torch.manual_seed(0)
    clf = ActionClassifier(tiny_cfg(2), num_classes=4).eval()
    x = torch.zeros(2, 3, 16, V, 2)
    x[0, ..., 0] = person(0)
    with torch.no_grad():
        feats = clf.features(x)
        logits = clf(x)
        alone = clf.features(x[:1])
    assert torch.isfinite(feats).all() and torch.isfinite(logits).all()
    assert logits.shape == (2, 4)
    assert torch.allclose(feats[:1], alone, atol=1e-6)  # the empty clip does not disturb the other
    for strategy in ("random", "motion", "semantic"):
        model = MaskSemPretrainer(tiny_cfg(2), MaskingConfig(strategy=strategy), TargetConfig())
        out = model(x, generator=torch.Generator().manual_seed(0))
        assert torch.isfinite(out.loss)
        out.loss.backward()


def test_a_clip_without_any_person_adds_nothing_to_the_loss() -> None:
    """The all-zero slot kept for an empty clip has zero targets; it must not dilute the loss."""
    import torch

    from masksem_core.model import MaskingConfig, MaskSemPretrainer, ModelConfig, TargetConfig

    cfg = ModelConfig(
        num_frames=16,
        num_joints=25,
        num_persons=2,
        dim=32,
        depth=1,
        heads=2,
        decoder_dim=32,
        decoder_depth=1,
        decoder_heads=2,
    )
    model = MaskSemPretrainer(cfg, MaskingConfig(strategy="random"), TargetConfig())
    person = torch.randn(1, 3, 16, 25, 2)
    person[..., 1] = 0
    both = torch.cat([person, torch.zeros_like(person)])
    torch.manual_seed(0)
    alone = model(person).loss
    torch.manual_seed(0)
    with_empty = model(both).loss
    assert torch.allclose(alone, with_empty, atol=1e-6)
