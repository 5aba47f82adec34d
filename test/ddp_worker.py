"""Run by test_train_ddp.py under torchrun: one DDP pre-training step per rank, then a digest per rank."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import torch
from conftest import TINY_MODEL_OVERRIDES  # this script's folder is on sys.path

from masksem_core.model import MaskSemPretrainer
from masksem_core.train.cli import load_experiment
from masksem_core.train.distributed import cleanup, init_distributed
from masksem_core.train.engine import pretrain_epoch
from masksem_core.train.loaders import EpochLoader, make_dataset, seed_everything
from masksem_core.train.optim import build_optimizer
from masksem_core.train.results import RunLogger
from masksem_core.train.run_env import RunEnv, step_context, wrap_ddp


def digest(tensors) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


def main(npz: str, out: str) -> None:
    overrides = [
        f"data.path={npz}",
        *TINY_MODEL_OVERRIDES,
        "optim.batch_size=16",
        "optim.epochs=1",
        "optim.warmup_epochs=0",
        "run.max_steps_per_epoch=1",
    ]
    cfg = load_experiment("nwucla_pretrain", overrides)
    device = torch.device("cpu")
    info = init_distributed(device)
    torch.manual_seed(0)  # same initial weights on every rank; DDP also broadcasts rank 0's
    model = MaskSemPretrainer(cfg.model, cfg.masking, cfg.target)
    before = digest(model.parameters())
    env = RunEnv(cfg, device, info, Path(out), RunLogger(Path(out), enabled=False))
    optimizer = build_optimizer(model, cfg.optim, cfg.model.depth)
    ddp = wrap_ddp(model, env)
    loader = EpochLoader(make_dataset(cfg, "train", train=True), 16, True, True, cfg, info, device)
    loader.set_epoch(0)
    seed_everything(1234 + info.rank)  # different masks per rank, as in real runs
    first_batch = next(iter(loader))[0]
    stats = pretrain_epoch(ddp, loader, step_context(env, optimizer), 0)
    after = digest(model.state_dict().values())
    Path(out, f"rank{info.rank}.txt").write_text(
        f"{info.world_size} {before} {after} {digest([first_batch])} {stats['loss']}\n"
    )
    del ddp, loader  # the reducer holds the process group; cleanup must be the last reference
    cleanup(info)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
