"""The fine-tune head's dropout placement (run.head_dropout_on): hidden layer or tokens before the mean."""

from __future__ import annotations

import pytest
import torch

from masksem_core.model import ActionClassifier, ModelConfig

CFG = ModelConfig(
    num_frames=16, num_joints=20, num_persons=1, dim=32, depth=2, heads=4, layout="kinect_v1_20"
)


def _pair() -> tuple[ActionClassifier, ActionClassifier]:
    torch.manual_seed(0)
    hidden = ActionClassifier(CFG, 5, "finetune", 0.5)
    tokens = ActionClassifier(CFG, 5, "finetune", 0.5, head_dropout_on="tokens")
    tokens.load_state_dict(hidden.state_dict())  # same parameters: checkpoints are interchangeable
    return hidden, tokens


def test_dropout_moves_from_the_hidden_layer_to_the_tokens() -> None:
    hidden, tokens = _pair()
    assert hidden.head.drop.p == 0.5 and isinstance(hidden.token_dropout, torch.nn.Identity)
    assert tokens.head.drop.p == 0.0 and tokens.token_dropout.p == 0.5
    x = torch.randn(3, 3, 16, 20, 1)
    hidden.eval(), tokens.eval()
    assert torch.allclose(hidden(x), tokens(x))  # dropout only differs in training


def test_token_dropout_acts_before_the_temporal_mean() -> None:
    _, tokens = _pair()
    tokens.train()
    seen = []
    tokens.token_dropout.register_forward_hook(lambda m, i, out: seen.append(out))
    x = torch.randn(2, 3, 16, 20, 1)
    _, per_joint = tokens.pooled_features(x)
    assert seen[0].shape == (2, 4 * 20, 32)  # applied to every token of every segment
    # half the token features are dropped, but their mean over 4 segments rarely is zero
    assert 0.4 < (seen[0] == 0).float().mean().item() < 0.6
    assert (per_joint == 0).float().mean().item() < 0.2
    assert not torch.equal(tokens(x), tokens(x))  # stochastic in training


def test_unknown_placement_is_refused() -> None:
    with pytest.raises(ValueError, match="head_dropout_on"):
        ActionClassifier(CFG, 5, "finetune", 0.5, head_dropout_on="logits")  # type: ignore[arg-type]
