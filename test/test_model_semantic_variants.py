"""Issue 19's MaskSem variants: semantic x motion weights and the CAM-weighted reconstruction loss."""

from __future__ import annotations

import pytest
import torch

from masksem_core.model import MaskingConfig, MaskSemPretrainer, ModelConfig, TargetConfig
from masksem_core.model.embedding import patchify
from masksem_core.model.persons import select_present
from masksem_core.model.targets import masked_mse, motion_loss

CFG = ModelConfig(
    num_frames=8,
    num_joints=20,
    num_persons=1,
    dim=32,
    depth=1,
    heads=4,
    decoder_dim=32,
    decoder_depth=1,
    decoder_heads=4,
    layout="kinect_v1_20",
)


def test_semantic_times_motion_weights() -> None:
    torch.manual_seed(0)
    plain = MaskSemPretrainer(CFG, MaskingConfig(cam_scale="auto"), TargetConfig())
    both = MaskSemPretrainer(CFG, MaskingConfig(cam_scale="auto", cam_times_motion=True), TargetConfig())
    both.load_state_dict(plain.state_dict())
    x = torch.randn(3, 3, 8, 20, 1)
    sel = select_present(x)
    tokens = patchify(sel.seqs, CFG.patch_len)
    w_plain, motion, cam = plain.masking_weights(x, sel, tokens)
    w_both, motion2, cam2 = both.masking_weights(x, sel, tokens)
    assert torch.equal(w_plain, cam) and torch.equal(cam, cam2) and torch.equal(motion, motion2)
    assert torch.allclose(w_both, cam * motion)
    assert (cam > 0).any() and not torch.allclose(w_both, w_plain)


def test_weighted_masked_mse_by_hand() -> None:
    pred = torch.zeros(1, 3, 2)
    target = torch.tensor([[[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]])  # per-token errors 1, 4, 9
    masked = torch.tensor([[True, True, False]])
    assert masked_mse(pred, target, masked).item() == pytest.approx(2.5)
    # weights 1 + w with w = (1, 0, 1): (2*1 + 1*4) / (2 + 1); the visible token stays out
    weight = 1.0 + torch.tensor([[1.0, 0.0, 1.0]])
    assert masked_mse(pred, target, masked, weight).item() == pytest.approx(2.0)
    loss, _ = motion_loss(pred, target, target, masked, "hybrid", 0.2, False, weight)
    assert loss.item() == pytest.approx(2.0)


def test_cam_loss_weight_changes_the_semantic_loss_only() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 3, 8, 20, 1)
    losses = {}
    for w in (0.0, 1.0):
        torch.manual_seed(1)
        model = MaskSemPretrainer(CFG, MaskingConfig(cam_scale="auto"), TargetConfig(cam_loss_weight=w))
        losses[w] = model(x, generator=torch.Generator().manual_seed(0)).loss.item()
    assert losses[0.0] != pytest.approx(losses[1.0])
    with pytest.raises(Exception, match="cam_loss_weight"):
        TargetConfig(cam_loss_weight=-1.0).validate()
