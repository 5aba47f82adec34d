"""How saturated is the authors' scaled CAM at NTU scale and at the NW-UCLA CPU scale (issue 19)?

The closed-form CAM carries 1/(N * M_n * L) from the pooling and 1/D from the channel mean, so the
authors' fixed x1e8 (set at NTU: N=32, M=2, L=750, D=256) saturates differently elsewhere;
`masking.cam_scale=auto` cancels those factors. For each setting this prints, over real person tokens,
s = ReLU(cam) x scale: the share of tokens with s > 0, the median of s over those, the share with
s >= 1 (clipped), and the authors' weights (part average, then clip): share exactly 1, mean weight.

    python experiments/cam_scale.py --data data/nw-ucla/NW-UCLA.npz \\
        --checkpoint runs/mamp100_s0/pretrain/last.pt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from masksem_core.data.augment import crop_and_resize, random_rotation
from masksem_core.data.centre import centre_clip
from masksem_core.data.ntu import parse_skeleton_file, skeleton_to_actors
from masksem_core.model import MaskingConfig, MaskSemPretrainer, ModelConfig, TargetConfig
from masksem_core.model.cam import auto_cam_scale, cam_weights
from masksem_core.model.persons import select_present
from masksem_core.train.cli import load_experiment
from masksem_core.train.init_from import load_init
from masksem_core.train.loaders import make_dataset


def ntu_batch(folder: Path, n: int, frames: int, seed: int = 0) -> torch.Tensor:
    """n clips (3, frames, 25, 2) from the NTU sample files: random crops and rotations of each."""
    rng = np.random.default_rng(seed)
    clips = []
    for path in sorted(folder.glob("*.skeleton")):
        actors = skeleton_to_actors(parse_skeleton_file(path), str(path))  # (T, 2, 25, 3)
        clips.append(centre_clip(actors, 1).transpose(3, 0, 2, 1))  # (3, T, 25, 2)
    out = []
    for i in range(n):
        c = clips[i % len(clips)]
        out.append(random_rotation(crop_and_resize(c, c.shape[1], frames, rng=rng), 0.3, rng))
    return torch.from_numpy(np.stack(out))


def nwucla_batch(data: str, n: int, frames: int) -> torch.Tensor:
    exp = load_experiment("nwucla_pretrain", [f"data.path={data}", f"model.num_frames={frames}"])
    ds = make_dataset(exp, "train", train=False)
    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))[:n].tolist()
    return torch.stack([ds[i][0] for i in idx])


@torch.no_grad()
def saturation(model: MaskSemPretrainer, x: torch.Tensor) -> dict[str, dict[str, float]]:
    sel = select_present(x)
    raw = model.teacher_cam(x, sel)
    out = {}
    for name, scale in (("x1e8", 1e8), ("auto", auto_cam_scale(sel, raw.shape[1], model.model_cfg.dim))):
        s = torch.relu(raw) * scale
        pos = s > 0
        w = cam_weights(raw, "authors", model.part_matrix, x.shape[3], scale=scale)
        out[name] = {
            "tokens > 0": pos.float().mean().item(),
            "median of s > 0": s[pos].median().item() if pos.any() else float("nan"),
            "tokens s >= 1": (s >= 1).float().mean().item(),
            "authors weight == 1": (w >= 1 - 1e-6).float().mean().item(),
            "authors mean weight": w.mean().item(),
        }
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="data/nw-ucla/NW-UCLA.npz")
    p.add_argument("--ntu", default=str(Path(__file__).resolve().parents[2] / "shared/data/ntu-samples"))
    p.add_argument("--checkpoint", help="an NW-UCLA pre-training checkpoint whose encoder is the teacher")
    a = p.parse_args()
    torch.manual_seed(0)
    semantic = MaskingConfig(strategy="semantic", cam_norm="authors", cam_scale="auto")
    settings = []
    if Path(a.ntu).is_dir():
        settings.append(("NTU scale (N=32, M<=2, L=750, D=256), random init", ModelConfig(), None, "ntu", 32))
    else:
        print(f"no NTU samples at {a.ntu}: NTU row skipped")
    ucla = load_experiment("nwucla_pretrain", [f"data.path={a.data}"]).model
    settings.append(("NW-UCLA CPU scale (N=32, M=1, L=160, D=128), random init", ucla, None, "ucla", 32))
    if a.checkpoint:
        for n in (32, 8):
            settings.append(
                (
                    f"NW-UCLA, teacher = {Path(a.checkpoint).parent.parent.name}, N={n}",
                    ucla,
                    a.checkpoint,
                    "ucla",
                    n,
                )
            )
    for title, cfg, ckpt, data, n in settings:
        torch.manual_seed(0)
        model = MaskSemPretrainer(cfg, semantic, TargetConfig()).eval()
        if ckpt:
            load_init(model, ckpt)
        x = (
            ntu_batch(Path(a.ntu), n, cfg.num_frames)
            if data == "ntu"
            else nwucla_batch(a.data, n, cfg.num_frames)
        )
        print(title)
        for scale, stats in saturation(model, x).items():
            print(f"  {scale:5s} " + "  ".join(f"{k} {v:.3f}" for k, v in stats.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
