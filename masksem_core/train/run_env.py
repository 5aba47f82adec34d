"""What every protocol shares: device/torchrun set-up, the run folder, step context, resume, DDP."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from masksem_core.config import to_dict
from masksem_core.train import checkpoint as ckpt
from masksem_core.train.config import ExperimentConfig
from masksem_core.train.distributed import DistInfo, init_distributed, resolve_device
from masksem_core.train.engine import StepContext
from masksem_core.train.loaders import epoch_seed, seed_everything
from masksem_core.train.results import RunLogger, write_json


@dataclasses.dataclass
class RunEnv:
    cfg: ExperimentConfig
    device: torch.device
    info: DistInfo
    out: Path
    logger: RunLogger


def setup_run(cfg: ExperimentConfig) -> RunEnv:
    if cfg.run.threads:
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
    return RunEnv(cfg, device, info, out, RunLogger(out, enabled=info.is_main))


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
    if env.info.is_main:
        print(text, flush=True)
