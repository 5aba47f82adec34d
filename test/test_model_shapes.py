"""Shapes and sizes: any clip length divisible by the patch (temporal embedding interpolation), the
classifier heads, and config validation errors that name the field."""

from __future__ import annotations

import pytest
import torch

from masksem_core.config import ConfigError, from_dict
from masksem_core.model import (
    ActionClassifier,
    FineTuneHead,
    LinearProbeHead,
    MaskingConfig,
    MaskSemPretrainer,
    ModelConfig,
    SkeletonEncoder,
    TargetConfig,
)
from masksem_core.model.embedding import PositionEmbedding, patchify


def tiny_cfg(**kw) -> ModelConfig:
    base = dict(num_frames=32, num_joints=20, num_persons=2, dim=32, depth=2, heads=4, decoder_dim=16)
    base.update(decoder_depth=1, decoder_heads=2, layout="kinect_v1_20")
    base.update(kw)
    return ModelConfig(**base)


def test_default_config_is_the_ntu_reference() -> None:
    cfg = ModelConfig()
    cfg.validate()
    assert (cfg.num_frames, cfg.num_joints, cfg.num_persons, cfg.patch_len) == (120, 25, 2, 4)
    assert (cfg.dim, cfg.depth, cfg.heads, cfg.decoder_depth) == (256, 8, 8, 3)
    assert (cfg.num_segments, cfg.num_tokens) == (30, 750)
    m = MaskingConfig()
    assert (m.ratio, m.tau, m.momentum) == (0.9, 0.8, 0.99)
    assert (TargetConfig().kind, TargetConfig().alpha, TargetConfig().separate_heads) == (
        "hybrid",
        0.2,
        False,
    )


def test_patchify_order() -> None:
    seqs = torch.arange(2 * 3 * 8 * 5, dtype=torch.float32).view(2, 3, 8, 5)
    tokens = patchify(seqs, 4)
    assert tokens.shape == (2, 10, 12)
    # token s * V + v = frames 4s..4s+3 of joint v, values frame-major then xyz
    for s in range(2):
        for v in range(5):
            expected = seqs[1, :, 4 * s : 4 * s + 4, v].T.reshape(-1)
            assert torch.equal(tokens[1, s * 5 + v], expected)


@pytest.mark.parametrize("t", [4, 16, 32, 64, 120])
def test_encoder_runs_on_any_multiple_of_the_patch(t: int) -> None:
    torch.manual_seed(0)
    enc = SkeletonEncoder(tiny_cfg()).eval()
    x = torch.randn(2, 3, t, 20, 2)
    with torch.no_grad():
        feats, present = enc(x)
    assert feats.shape == (2, 2, t // 4, 20, 32)
    assert present.all() and torch.isfinite(feats).all()


def test_encoder_rejects_bad_lengths_and_joint_counts() -> None:
    enc = SkeletonEncoder(tiny_cfg())
    with pytest.raises(ValueError, match="clip length 30 is not a multiple of the patch length 4"):
        enc(torch.randn(1, 3, 30, 20, 1))
    with pytest.raises(ValueError, match="built for 20 joints, input has 25"):
        enc(torch.randn(1, 3, 32, 25, 1))


def test_temporal_embedding_interpolation() -> None:
    pos = PositionEmbedding(segments=8, joints=3, dim=4)
    with torch.no_grad():
        pos.temporal.copy_(torch.arange(8.0).view(1, 8, 1, 1).expand(1, 8, 1, 4))
        pos.spatial.zero_()
    same = pos(8, 3).view(8, 3, 4)
    assert torch.equal(same[:, 0, 0], torch.arange(8.0))  # the built size uses the table as is
    longer = pos(16, 3).view(16, 3, 4)[:, 0, 0]
    shorter = pos(4, 3).view(4, 3, 4)[:, 0, 0]
    # linear interpolation (align_corners=False) of a ramp: monotone, inside the ramp's range;
    # halving the length averages neighbouring pairs
    assert (longer.diff() >= 0).all() and longer.min() >= 0 and longer.max() <= 7
    assert shorter.tolist() == pytest.approx([0.5, 2.5, 4.5, 6.5])
    # the spatial part is shared by every segment
    with torch.no_grad():
        pos.spatial.copy_(torch.tensor([1.0, 2.0, 3.0]).view(1, 1, 3, 1).expand(1, 1, 3, 4))
    table = pos(5, 3).view(5, 3, 4)
    assert torch.allclose(table[:, 1] - table[:, 0], torch.ones(5, 4))


@pytest.mark.parametrize("t", [16, 64])
def test_pretrainer_runs_on_another_length(t: int) -> None:
    torch.manual_seed(0)
    model = MaskSemPretrainer(tiny_cfg(), MaskingConfig(strategy="semantic"), TargetConfig())
    out = model(torch.randn(2, 3, t, 20, 2), generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out.loss)
    assert out.mask.masked.shape == (4, t // 4 * 20)
    out.loss.backward()
    assert model.encoder.embed.pos.temporal.grad is not None


def test_pretrainer_separate_heads_output_width() -> None:
    model = MaskSemPretrainer(tiny_cfg(), MaskingConfig(strategy="random"), TargetConfig(separate_heads=True))
    assert model.decoder.head.out_features == 24
    out = model(torch.randn(1, 3, 32, 20, 1))
    assert torch.isfinite(out.loss) and set(out.stats) >= {"loss_vel", "loss_acc"}


@pytest.mark.parametrize("head,cls", [("linear", LinearProbeHead), ("finetune", FineTuneHead)])
def test_classifier_heads(head: str, cls: type) -> None:
    torch.manual_seed(0)
    clf = ActionClassifier(tiny_cfg(), num_classes=7, head=head, head_dropout=0.3)
    assert isinstance(clf.head, cls)
    x = torch.randn(4, 3, 32, 20, 2)
    x[1, ..., 1] = 0
    logits = clf(x)
    assert logits.shape == (4, 7)
    logits.sum().backward()
    assert clf.encoder.blocks[0].attn.qkv.weight.grad is not None
    clf.eval()
    with torch.no_grad():
        assert clf.features(x).shape == (4, 32)
        assert torch.equal(clf(x), clf(x))  # eval: dropout and BN running stats, deterministic
        assert clf(torch.randn(1, 3, 64, 20, 1)).shape == (1, 7)  # other T at inference


def test_linear_probe_head_structure() -> None:
    head = LinearProbeHead(32, 5)
    assert not head.norm.affine  # BatchNorm1d(affine=False) -> Linear, as in MAE/MAMP linear probing
    ft = FineTuneHead(32, 20, 5)
    assert ft.fc1.in_features == 32 * 20 and ft.fc1.out_features == 2048


def test_unknown_head() -> None:
    with pytest.raises(ValueError, match="unknown head 'mlp'"):
        ActionClassifier(tiny_cfg(), 3, head="mlp")


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(num_frames=30), "num_frames=30 must be a multiple of model.patch_len=4"),
        (dict(dim=30), "divisible"),
        (dict(decoder_dim=30, decoder_heads=4), "divisible"),
        (dict(patch_len=0), "model.patch_len must be >= 1"),
        (dict(heads=0), "model.heads must be >= 1"),
        (dict(depth=0), "model.depth must be >= 1"),
        (dict(num_joints=0), "model.num_joints must be >= 1"),
        (dict(drop_path=1.0), "drop_path"),
    ],
)
def test_model_config_errors(kw: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        tiny_cfg(**kw).validate()
    with pytest.raises(ConfigError, match=match):
        SkeletonEncoder(tiny_cfg(**kw))


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(ratio=1.0), "masking.ratio"),
        (dict(ratio=-0.1), "masking.ratio"),
        (dict(tau=0.0), "masking.tau"),
        (dict(momentum=1.5), "masking.momentum"),
        (dict(cam_quantile=1.0), "masking.cam_quantile"),
        (dict(strategy="semntic"), "masking.strategy='semntic' is not one of"),
        (dict(cam_norm="binary"), "masking.cam_norm"),
        (dict(cam_norm="reference"), "renamed .*clip_then_average.*authors"),
        (dict(cam_scale=0.0), "masking.cam_scale"),
        (dict(cam_scale="big"), "masking.cam_scale"),
        (dict(cam_reference="mean"), "masking.cam_reference"),
    ],
)
def test_masking_config_errors(kw: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        MaskingConfig(**kw).validate()
    with pytest.raises(ConfigError, match=match):
        MaskSemPretrainer(tiny_cfg(), MaskingConfig(**kw), TargetConfig())


def test_target_config_errors() -> None:
    with pytest.raises(ConfigError, match="target.alpha"):
        TargetConfig(alpha=1.5).validate()
    with pytest.raises(ConfigError, match="target.kind='vel'"):
        MaskSemPretrainer(tiny_cfg(), MaskingConfig(), TargetConfig(kind="vel"))


def test_configs_from_yaml_mappings() -> None:
    cfg = from_dict(ModelConfig, {"num_frames": 64, "depth": 4}, prefix="model.")
    assert cfg.num_segments == 16
    with pytest.raises(ConfigError, match="model.num_frames"):
        from_dict(ModelConfig, {"num_frames": 63}, prefix="model.")
    with pytest.raises(ConfigError, match="unknown config key model.dept"):
        from_dict(ModelConfig, {"dept": 4}, prefix="model.")
    with pytest.raises(ConfigError, match="masking.strategy"):
        from_dict(MaskingConfig, {"strategy": "mae"}, prefix="masking.")


def test_layout_must_match_joint_count() -> None:
    with pytest.raises(ValueError, match="layout kinect_v1_20 has 20 joints, model.num_joints=25"):
        MaskSemPretrainer(tiny_cfg(num_joints=25), MaskingConfig(), TargetConfig())
    with pytest.raises(KeyError, match="unknown joint layout 'kinect'"):
        MaskSemPretrainer(tiny_cfg(layout="kinect"), MaskingConfig(), TargetConfig())


@pytest.mark.parametrize("layout,joints", [("ntu25", 25), ("kinect_v1_20", 20), ("mediapipe33", 33)])
def test_every_layout_pretrains(layout: str, joints: int) -> None:
    torch.manual_seed(0)
    model = MaskSemPretrainer(tiny_cfg(num_joints=joints, layout=layout), MaskingConfig(), TargetConfig())
    out = model(torch.randn(2, 3, 16, joints, 2))
    assert torch.isfinite(out.loss)
