"""Why the authors' CAM saturates and ours does not: the empty person slot.

Loads a semantic pre-training checkpoint, takes NW-UCLA training clips (one person) and computes the
teacher CAM twice: as this library does (the absent second person is skipped) and as the reference
does (the second slot is padded with zeros and *encoded* — emulated here by a 1e-9 offset, which makes
the slot "present" while its coordinates stay zero to 9 decimals). Prints the statistics of issue 10.

    python experiments/cam_saturation.py runs/main/masksem_semantic_hybrid_s0/pretrain/last.pt
"""

from __future__ import annotations

import argparse
import sys

import torch

from masksem_core.config import from_dict
from masksem_core.model import MaskingConfig, MaskSemPretrainer, ModelConfig, TargetConfig
from masksem_core.model.cam import normalise_cam
from masksem_core.model.persons import select_present
from masksem_core.train.checkpoint import load_checkpoint
from masksem_core.train.cli import load_experiment
from masksem_core.train.loaders import make_dataset


def cam_stats(model: MaskSemPretrainer, x: torch.Tensor) -> dict[str, float]:
    sel = select_present(x)
    raw = model.teacher_cam(x, sel)  # as pre-training computes it (the checkpoint's cam_reference)
    binary = normalise_cam(raw, "clip_then_average")
    real = sel.flat_index % x.shape[-1] == 0  # slot 0: the real person
    b = binary[real]
    return {
        "sequences encoded per clip": float(len(sel.flat_index) / x.shape[0]),
        "real person: tokens with CAM > 0": float((b > 0).float().mean()),
        "real person: clips positive on every token": float((b.amin(dim=1) > 0).float().mean()),
        "padded slot: tokens with CAM > 0": float((binary[~real] > 0).float().mean())
        if (~real).any()
        else float("nan"),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--data", default="data/nw-ucla/NW-UCLA.npz")
    p.add_argument("--clips", type=int, default=256)
    a = p.parse_args()
    payload = load_checkpoint(a.checkpoint)
    cfg = payload["config"]
    model_cfg = from_dict(ModelConfig, payload["model_config"])
    model = MaskSemPretrainer(
        model_cfg, from_dict(MaskingConfig, cfg["masking"]), from_dict(TargetConfig, cfg["target"])
    )
    model.load_state_dict(payload["model"])
    model.eval()
    exp = load_experiment(
        "nwucla_pretrain", [f"data.path={a.data}", f"model.num_frames={model_cfg.num_frames}"]
    )
    ds = make_dataset(exp, "train", train=False)
    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(ds), generator=g)[: a.clips].tolist()
    x = torch.stack([ds[i][0] for i in idx])  # (N, C, T, V, 1)
    padded = torch.cat([x, torch.full_like(x, 1e-9)], dim=-1)  # the reference's zero-padded 2nd person
    for name, clips in (("ours (absent slot skipped)", x), ("reference (zero slot encoded)", padded)):
        print(name)
        for k, v in cam_stats(model, clips).items():
            print(f"  {k:45s} {v:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
