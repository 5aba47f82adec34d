"""DataLoaders for every protocol: seeded per epoch, DistributedSampler-aware, optional workers."""

from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from masksem_core.train.config import ExperimentConfig
from masksem_core.train.distributed import DistInfo


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch. Called at every epoch start with (run seed, epoch, rank), so an
    epoch's masks, augmentations and data order do not depend on history and --resume is exact."""
    random.seed(seed)
    np.random.seed(seed % (2**32))  # noqa: NPY002 - the global state third-party code draws from
    torch.manual_seed(seed)


def epoch_seed(run_seed: int, epoch: int, rank: int = 0) -> int:
    return (run_seed * 1_000_003 + epoch * 7_919 + rank * 104_729) % (2**31)


def _worker_init(worker_id: int) -> None:
    """Workers get distinct torch seeds from the loader; derive Python/NumPy's from them too."""
    seed_everything(torch.initial_seed() % (2**31))


def make_dataset(
    cfg: ExperimentConfig,
    split: str,
    train: bool,
    label_fraction: float | None = None,
    rotate: bool | None = None,
) -> Dataset:
    from masksem_core.data.feeder import SkeletonClips

    d = cfg.data
    if not d.path:
        raise ValueError("data.path is empty: point it at a prepared .npz (see `masksem prepare`)")
    return SkeletonClips(
        d.path,
        split=split,
        num_frames=cfg.model.num_frames,
        train=train,
        rotate=(d.rotate and train) if rotate is None else rotate,
        rotate_theta=d.rotate_theta,
        min_crop_frames=d.min_crop_frames,
        min_crop_fraction=d.min_crop_fraction,
        span_jitter=d.span_jitter,
        label_fraction=label_fraction,
        label_seed=d.label_seed,
        stream=d.stream,
    )


class EpochLoader:
    """A DataLoader whose order and worker seeds are a function of (seed, epoch) only."""

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        shuffle: bool,
        drop_last: bool,
        cfg: ExperimentConfig,
        info: DistInfo,
        device: torch.device,
    ) -> None:
        self.dataset = dataset
        self.seed = cfg.run.seed
        self.sampler = DistributedSampler(
            dataset,
            num_replicas=info.world_size,
            rank=info.rank,
            shuffle=shuffle,
            seed=cfg.run.seed,
            drop_last=False,
        )
        self.generator = torch.Generator()
        per_rank = max(1, batch_size // info.world_size) if info.enabled else batch_size
        drop = drop_last and len(self.sampler) > per_rank
        self.loader = DataLoader(
            dataset,
            batch_size=per_rank,
            sampler=self.sampler,
            drop_last=drop,
            num_workers=cfg.data.workers,
            pin_memory=cfg.data.pin_memory and device.type == "cuda",
            worker_init_fn=_worker_init,
            generator=self.generator,
            persistent_workers=False,
        )

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)
        self.generator.manual_seed(epoch_seed(self.seed, epoch))

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        return iter(self.loader)
