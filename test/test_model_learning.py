"""Learning on real data: a few hundred pre-training steps on NW-UCLA clips lower the loss clearly,
for each masking strategy (tiny model, so each strategy takes seconds on two CPU cores)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from masksem_core.data.augment import crop_and_resize
from masksem_core.data.nwucla import nwucla_clip
from masksem_core.model import MaskingConfig, MaskSemPretrainer, ModelConfig, TargetConfig
from masksem_core.model.targets import token_targets

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nw-ucla" / "all_sqe"
T, CLIPS, BATCH, STEPS, WINDOW = 32, 256, 16, 300, 20

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clips() -> torch.Tensor:
    """(CLIPS, 3, T, 20, 1): every k-th training-view clip, centred, centre-cropped and resized to T."""
    if not DATA.is_dir():
        pytest.skip(f"NW-UCLA clips not found at {DATA} (CI needs shared/data next to the repo)")
    files = sorted(p for p in DATA.glob("*.json") if not p.stem.endswith("_v03"))  # views 1 + 2 train
    if len(files) < CLIPS:
        pytest.skip(f"only {len(files)} NW-UCLA training clips under {DATA}, need {CLIPS}")
    picked = files[:: len(files) // CLIPS][:CLIPS]
    out = []
    for path in picked:
        (clip,) = nwucla_clip(str(path))
        data = clip.data.transpose(3, 0, 2, 1)  # (T, M, V, 3) -> (C, T, V, M)
        out.append(crop_and_resize(data, data.shape[1], T, p_range=None))
    return torch.from_numpy(np.stack(out))


def pretrain_losses(clips: torch.Tensor, strategy: str) -> list[float]:
    torch.manual_seed(0)
    cfg = ModelConfig(
        num_frames=T, num_joints=20, num_persons=1, dim=64, depth=2, heads=4, decoder_dim=64,
        decoder_depth=1, decoder_heads=4, layout="kinect_v1_20",
    )  # fmt: skip
    model = MaskSemPretrainer(cfg, MaskingConfig(strategy=strategy), TargetConfig()).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05)
    gen = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(STEPS):
        idx = torch.randint(len(clips), (BATCH,), generator=gen)
        out = model(clips[idx], generator=gen)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        model.update_teacher()
        losses.append(out.loss.item())
    return losses


def zero_prediction_loss(clips: torch.Tensor, alpha: float = 0.2) -> float:
    """The hybrid loss of always predicting 0 (the per-token mean): what a model that learnt nothing gets."""
    vel, acc = token_targets(clips[..., 0], patch_len=4)
    return (1 - alpha) * vel.pow(2).mean().item() + alpha * acc.pow(2).mean().item()


def test_clips_are_real_and_centred(clips: torch.Tensor) -> None:
    assert clips.shape == (CLIPS, 3, T, 20, 1)
    assert torch.isfinite(clips).all()
    # centred on the spine of the first frame: people stay within a few metres of the origin
    assert clips.abs().amax() < 5 and clips.std() > 0.05


@pytest.mark.parametrize("strategy", ["random", "motion", "semantic"])
def test_pretraining_lowers_the_loss(clips: torch.Tensor, strategy: str) -> None:
    start = time.perf_counter()
    losses = pretrain_losses(clips, strategy)
    elapsed = time.perf_counter() - start
    first, last = np.mean(losses[:WINDOW]), np.mean(losses[-WINDOW:])
    assert np.isfinite(losses).all()
    trivial = zero_prediction_loss(clips)
    msg = f"{strategy}: first {first:.3f} -> last {last:.3f} (zero predictor {trivial:.3f}) in {elapsed:.1f}s"
    assert last < 0.9 * first, msg
    # better than predicting the per-token mean: the model has learnt something about motion
    assert last < trivial - 0.05, msg
