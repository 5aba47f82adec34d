"""Where each masking strategy puts its masks, measured with the pre-trained MaskSem teacher.

The three strategies sample from the same Gumbel-top-k sampler with different weights (uniform,
token motion, teacher CAM), so the same test clips can be masked by all three and compared in one
currency: the mean CAM and motion of masked vs kept tokens, and the share of kept tokens per body
part. Semantic masking works when its masked tokens carry clearly more CAM (and motion) than the
tokens it leaves visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from masksem_core.layouts import PART_NAMES, get_layout

STRATEGIES = ("semantic", "motion", "random")
EXAMPLE_CLASS = "wave"  # one person, one arm moving: masks on the moving arm are easy to see


@dataclass
class ClipMasks:
    """One clip (C, T, V) and, per strategy, its sampling weights, one drawn mask and the masking
    frequency over many draws; all (S, V) grids of segments x joints."""

    clip: np.ndarray
    label: str
    patch_len: int
    weights: dict[str, np.ndarray]
    drawn: dict[str, np.ndarray]
    frequency: dict[str, np.ndarray]


def load_pretrainer(checkpoint: str | Path) -> Any:
    """The MaskSem pretrainer (student, decoder, EMA teacher) of a pre-training checkpoint."""
    from masksem_core.config import from_dict
    from masksem_core.model import MaskSemPretrainer
    from masksem_core.train.checkpoint import load_checkpoint
    from masksem_core.train.config import ExperimentConfig

    payload = load_checkpoint(checkpoint)
    cfg = from_dict(ExperimentConfig, payload["config"])
    if cfg.masking.strategy != "semantic":
        raise ValueError(f"{checkpoint}: masking.strategy is {cfg.masking.strategy!r}, need 'semantic'")
    model = MaskSemPretrainer(cfg.model, cfg.masking, cfg.target)
    model.load_state_dict(payload["model"])
    return model.eval()


@torch.no_grad()
def strategy_weights(model: Any, x: torch.Tensor) -> tuple[Any, dict[str, torch.Tensor], torch.Tensor]:
    """(present sequences, {strategy: (P, L) weights}, motion (P, L)) for a batch (N, C, T, V, M)."""
    from masksem_core.model.embedding import patchify
    from masksem_core.model.masking import token_motion
    from masksem_core.model.persons import select_present

    sel = select_present(x)
    tokens = patchify(sel.seqs, model.model_cfg.patch_len)
    motion = token_motion(tokens, sel.seqs.shape[-1])
    cam = model.semantic_weights(x, sel)
    return sel, {"semantic": cam, "motion": motion, "random": torch.zeros_like(motion)}, motion


def draw(model: Any, weights: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(P, L) bool: masked tokens, with the model's ratio and temperature."""
    from masksem_core.model.masking import gumbel_topk_mask, weights_to_logits

    m = model.masking
    return gumbel_topk_mask(weights_to_logits(weights, m.tau), m.ratio, generator).masked


def mask_statistics(
    model: Any, x: torch.Tensor, generator: torch.Generator, draws: int = 4
) -> dict[str, dict[str, Any]]:
    """Per strategy: mask ratio, mean CAM / motion of masked vs kept tokens, kept share per body part."""
    sel, weights, motion = strategy_weights(model, x)
    cam = weights["semantic"]
    joints = sel.seqs.shape[-1]
    part_of = torch.tensor(get_layout(model.model_cfg.layout).part_of_joint())
    token_part = part_of.repeat(cam.shape[1] // joints)  # token = segment * V + joint
    out: dict[str, dict[str, Any]] = {}
    for name in STRATEGIES:
        masked = torch.stack([draw(model, weights[name], generator) for _ in range(draws)]).float()
        kept = 1.0 - masked
        kept_parts = torch.stack([kept[..., token_part == p].sum() for p in range(len(PART_NAMES))])
        out[name] = {
            "mask_ratio": float(masked.mean()),
            "cam_masked": float((cam * masked).sum() / masked.sum()),
            "cam_kept": float((cam * kept).sum() / kept.sum()),
            "motion_masked": float((motion * masked).sum() / masked.sum()),
            "motion_kept": float((motion * kept).sum() / kept.sum()),
            "kept_share_by_part": dict(
                zip(PART_NAMES, (kept_parts / kept_parts.sum()).tolist(), strict=True)
            ),
        }
    out["token_share_by_part"] = dict(
        zip(
            PART_NAMES, [float((token_part == p).float().mean()) for p in range(len(PART_NAMES))], strict=True
        )
    )
    return out


def example_clip(
    model: Any, x: torch.Tensor, index: int, label: str, generator: torch.Generator, draws: int = 200
) -> ClipMasks:
    """Masks of clip `index` of the batch `x` (weights need the batch: the CAM reference is its mean)."""
    sel, weights, _ = strategy_weights(model, x)
    row = int(torch.nonzero(sel.clip_index == index)[0, 0])  # the clip's first person
    joints = sel.seqs.shape[-1]

    def grid(t: torch.Tensor) -> np.ndarray:
        return t.reshape(-1, joints).float().numpy()

    freq, one = {}, {}
    for name in STRATEGIES:
        w = weights[name][row : row + 1].expand(draws, -1)
        masked = draw(model, w, generator).float()
        freq[name], one[name] = grid(masked.mean(0)), grid(masked[0])
    return ClipMasks(
        clip=sel.seqs[row].numpy(),
        label=label,
        patch_len=model.model_cfg.patch_len,
        weights={k: grid(v[row]) for k, v in weights.items()},
        drawn=one,
        frequency=freq,
    )


def held_out_batch(
    npz: str | Path, num_frames: int, per_class: int = 8
) -> tuple[torch.Tensor, list[int], list[str]]:
    """Up to `per_class` test clips of every class, as the feeder gives them at test time."""
    from masksem_core.data.feeder import SkeletonClips

    ds = SkeletonClips(npz, split="test", num_frames=num_frames, train=False)
    labels = np.asarray(ds.targets)
    rows = [int(i) for c in np.unique(labels) for i in np.flatnonzero(labels == c)[:per_class]]
    clips = torch.stack([ds[i][0] for i in rows])
    return clips, [int(labels[i]) for i in rows], list(ds.labels)


def analyse(checkpoint: str | Path, npz: str | Path, report_dir: str | Path, seed: int = 0) -> dict[str, Any]:
    """Mask statistics over test clips, and the mask picture (report_dir/masks.png) of one clip."""
    from masksem_core.demo.figures import plot_masks

    model = load_pretrainer(checkpoint)
    x, y, names = held_out_batch(npz, model.model_cfg.num_frames)
    gen = torch.Generator().manual_seed(seed)
    stats = mask_statistics(model, x, gen)
    cls = names.index(EXAMPLE_CLASS) if EXAMPLE_CLASS in names else 0
    index = y.index(cls)
    example = example_clip(model, x, index, names[cls], gen)
    layout = get_layout(model.model_cfg.layout)
    plot_masks(Path(report_dir) / "masks.png", example, layout)
    stats["example"] = {"label": names[cls], "test_batch_index": index, "clips": len(y)}
    return stats
