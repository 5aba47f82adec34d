"""What every protocol shares: device/torchrun set-up, the run folder, step context, resume, DDP."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from masksem_core.cli import version
from masksem_core.config import to_dict
from masksem_core.threads import load_average, usable_cores
from masksem_core.train import checkpoint as ckpt
from masksem_core.train.config import ExperimentConfig
from masksem_core.train.distributed import DistInfo, init_distributed, resolve_device
from masksem_core.train.engine import StepContext
from masksem_core.train.loaders import epoch_seed, seed_everything
from masksem_core.train.results import RunLogger, run_log, write_json


@dataclasses.dataclass
class RunEnv:
    cfg: ExperimentConfig
    device: torch.device
    info: DistInfo
    out: Path
    logger: RunLogger


def setup_run(cfg: ExperimentConfig) -> RunEnv:
    if cfg.run.threads:  # masksem_core/threads.py applied --threads already; run.threads is the same value
        torch.set_num_threads(cfg.run.threads)
    device = resolve_device(cfg.run.device)
    info = init_distributed(device)
    if cfg.run.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    seed_everything(epoch_seed(cfg.run.seed, -1, info.rank))
    out = Path(cfg.run.out_dir)
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "config.json", to_dict(cfg))
        import yaml

        ckpt.atomic_write_bytes(out / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False).encode())
    env = RunEnv(cfg, device, info, out, RunLogger(out, enabled=info.is_main))
    if info.is_main:
        load = load_average()
        run_log(
            f"masksem {version()} | {' '.join(sys.argv)} | torch {torch.__version__} on {device}, "
            f"{torch.get_num_threads()} thread(s), {usable_cores()} usable cores, load average "
            + (f"{load:.2f}" if load is not None else "unknown")
        )
    return env


def step_context(
    env: RunEnv, optimizer: torch.optim.Optimizer, lr: float | None = None, min_lr: float | None = None
) -> StepContext:
    o = env.cfg.optim
    scaler = torch.amp.GradScaler(env.device.type) if env.cfg.run.precision == "fp16" else None
    return StepContext(
        optimizer=optimizer,
        device=env.device,
        epochs=o.epochs,
        warmup_epochs=o.warmup_epochs,
        lr=o.lr if lr is None else lr,
        min_lr=o.min_lr if min_lr is None else min_lr,
        precision=env.cfg.run.precision,
        grad_clip=o.grad_clip,
        scaler=scaler,
        dist=env.info,
        progress=env.cfg.run.progress,
        max_steps=env.cfg.run.max_steps_per_epoch,
    )


def wrap_ddp(model: nn.Module, env: RunEnv) -> nn.Module:
    if env.info.enabled:
        ids = [env.device.index] if env.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)
    return model


def resume_from(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scaler, ema: nn.Module | None = None
) -> tuple[int, dict]:
    """Restore model/optimiser/scaler (and weight average) from `path`; returns (next epoch, extra state)."""
    payload = ckpt.load_checkpoint(path)
    ckpt.load_state_strict(model, payload["model"], str(path))
    if ema is not None:
        if not payload.get("ema"):
            raise ckpt.CheckpointError(f"{path} has no weight average (optim.ema_decay was not set there)")
        ckpt.load_state_strict(ema, payload["ema"], f"{path} (weight average)")
    optimizer.load_state_dict(payload["optimizer"])
    if scaler is not None and payload.get("scaler"):
        scaler.load_state_dict(payload["scaler"])
    return int(payload["epoch"]) + 1, payload.get("extra", {})


def resume_run(
    env: RunEnv, path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scaler, ema=None
) -> tuple[int, dict]:
    """resume_from + the announcement + log.csv without the rows of epochs that will be redone."""
    start, extra = resume_from(path, model, optimizer, scaler, ema)
    announce(env, f"resumed from {path} at epoch {start + 1}")
    env.logger.forget_after(start)
    return start, extra


def train_state(
    kind: str,
    model: nn.Module,
    optimizer,
    scaler,
    epoch: int,
    cfg: ExperimentConfig,
    extra: dict | None = None,
    ema: nn.Module | None = None,
) -> dict[str, Any]:
    return {
        "ema": ema.state_dict() if ema is not None else {},
        "kind": kind,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else {},
        "epoch": epoch,
        "config": to_dict(cfg),
        "model_config": to_dict(cfg.model),
        "extra": extra or {},
    }


def announce(env: RunEnv, text: str) -> None:
    """Print a run message (main rank) and add it to the run's train.log."""
    if env.info.is_main:
        run_log(text)
        print(text, flush=True)


def periodic_path(out: Path, epoch: int) -> Path:
    """epoch_NNN.pt: the state at the end of epoch NNN (0-based, as log.csv and the `epoch` field)."""
    return out / f"epoch_{epoch:03d}.pt"


def save_periodic(env: RunEnv, state: Callable[[], dict[str, Any]], epoch: int) -> Path | None:
    """Every run.keep_every epochs keep epoch_NNN.pt (the newest run.keep_last of them, when set)."""
    every, keep = env.cfg.run.keep_every, env.cfg.run.keep_last
    if not env.info.is_main or not every or (epoch + 1) % every:
        return None
    path = periodic_path(env.out, epoch)
    ckpt.save_checkpoint(state(), path)
    if keep:
        for old in sorted(env.out.glob("epoch_[0-9][0-9][0-9]*.pt"))[:-keep]:
            old.unlink(missing_ok=True)
    return path
