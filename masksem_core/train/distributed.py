"""torchrun / DistributedDataParallel plumbing (nccl on GPU, gloo on CPU); a no-op when not launched so."""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Initialise the process group from torchrun's environment variables, if they are set."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return DistInfo(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def resolve_device(name: str) -> torch.device:
    """'auto' -> this process's GPU (LOCAL_RANK) if there is one, else CPU; a missing GPU is an error."""
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if name == "auto":
        name = f"cuda:{local}" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"run.device={name} requested but CUDA is not available on this machine")
        if device.index is None:
            device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    return device


def all_reduce_mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        value = value.clone()
        dist.all_reduce(value)
        value /= info.world_size
    return value


def all_gather_cat(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Concatenate a (variable-length) tensor from every rank along dim 0."""
    if not info.enabled:
        return t
    sizes = [torch.zeros(1, dtype=torch.long, device=t.device) for _ in range(info.world_size)]
    dist.all_gather(sizes, torch.tensor([t.shape[0]], device=t.device))
    biggest = int(max(s.item() for s in sizes))
    padded = t.new_zeros((biggest,) + t.shape[1:])
    padded[: t.shape[0]] = t
    out = [torch.zeros_like(padded) for _ in range(info.world_size)]
    dist.all_gather(out, padded)
    return torch.cat([o[: int(s.item())] for o, s in zip(out, sizes)])


def cleanup(info: DistInfo) -> None:
    """Tear the process group down together: a rank that leaves while another still talks to it
    aborts the other one inside gloo ("terminate called without an active exception").

    Callers drop their DDP wrappers first: a live reducer keeps the group alive past
    `destroy_process_group`, and a group destroyed later, after the peer has exited, aborts the same way.
    """
    if info.enabled and dist.is_initialized():
        gc.collect()  # reference cycles that still hold the group
        dist.barrier()
        dist.destroy_process_group()
