"""The experiment config: one YAML per run (model, masking, target, data, optimisation, run)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from masksem_core.config import ConfigError
from masksem_core.data.stream import StreamingConfig
from masksem_core.model.config import MaskingConfig, ModelConfig, TargetConfig


@dataclass
class DataConfig:
    """Where the prepared arrays are and how clips are augmented (see masksem_core.data.feeder)."""

    path: str = ""
    train_split: str = "train"
    test_split: str = "test"
    rotate: bool = True
    rotate_theta: float = 0.3  # training rotation: each Euler angle ~ U(-theta, theta), radians
    min_crop_frames: int = 64
    min_crop_fraction: float | None = None
    stream: Literal["joint", "bone", "velocity"] = "joint"
    label_fraction: float | None = None
    label_seed: int = 0
    # Fine-tuning recipe choice without the test split: hold out this seeded (run.seed), class-balanced
    # fraction of the training clips, or the training clips whose name matches the regular expression
    # val_names (a view or subject, to mimic a cross-view / cross-subject test: '_v02$' is NW-UCLA's view
    # 2, 'C002' an NTU camera); periodic evaluation and best_classifier.pt then use them, and the test
    # split is scored once, at the end.
    val_fraction: float | None = None
    val_names: str | None = None
    workers: int = 0
    pin_memory: bool = False

    def validate(self) -> None:
        if self.rotate_theta < 0:
            raise ConfigError(f"data.rotate_theta must be >= 0 radians, got {self.rotate_theta}")
        if self.val_fraction is not None and not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"data.val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.val_names is not None:
            if self.val_fraction is not None:
                raise ConfigError("data.val_fraction and data.val_names both hold out clips: set one")
            try:
                re.compile(self.val_names)
            except re.error as exc:
                msg = f"data.val_names {self.val_names!r} is not a regular expression: {exc}"
                raise ConfigError(msg) from None


@dataclass
class OptimConfig:
    """Optimiser and per-iteration cosine schedule with linear warm-up."""

    optimizer: Literal["adamw", "sgd"] = "adamw"
    epochs: int = 400
    warmup_epochs: float = 20
    batch_size: int = 32
    lr: float = 1e-3
    min_lr: float = 5e-4
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    momentum: float = 0.9
    layer_decay: float = 1.0
    label_smoothing: float = 0.0
    grad_clip: float | None = None
    # Supervised runs: evaluate and save an exponential moving average of the weights, updated every step
    # (decay per step; 0.998 averages over ~500 steps). Smooths the epoch-to-epoch swings of small data sets.
    ema_decay: float | None = None

    def validate(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("optim.epochs and optim.batch_size must be >= 1")
        if self.lr <= 0 or self.min_lr < 0:
            raise ConfigError("optim.lr must be > 0 and optim.min_lr >= 0")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ConfigError(f"optim.ema_decay must be in (0, 1), got {self.ema_decay}")


@dataclass
class ProbeConfig:
    """Linear-probe specifics. cache_features trains the head on features extracted once (test-time
    crop, plus `train_views` augmented views), which is exact for a frozen encoder up to augmentation
    and makes 100 probe epochs take seconds on a CPU."""

    cache_features: bool = True
    train_views: int = 1
    knn_k: int = 20
    # Choose the head's learning rate on held-out training clips (never on the test split): each lr of
    # the grid trains on (1 - val_fraction) of the training clips and is scored on the rest (seeded,
    # class-balanced); the best one is then trained on all of them. Empty grid: optim.lr as given.
    lr_grid: list[float] = field(default_factory=list)
    val_fraction: float = 0.2

    def validate(self) -> None:
        if any(lr <= 0 for lr in self.lr_grid):
            raise ConfigError(f"probe.lr_grid must hold learning rates > 0, got {self.lr_grid}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"probe.val_fraction must be in (0, 1), got {self.val_fraction}")


@dataclass
class RunConfig:
    out_dir: str = "runs/default"
    seed: int = 0
    device: str = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    threads: int | None = None  # torch intra-op threads; 1 is much faster on a CPU shared with other jobs
    deterministic: bool = False
    save_every: int = 10  # epochs between last.pt writes (and always the last epoch)
    keep_every: int | None = None  # also keep epoch_NNN.pt every this many epochs (None: off)
    keep_last: int | None = None  # of those, keep only the newest this many (None: all)
    eval_every: int = 10
    log_every: int = 20
    init_from: str | None = None
    pretrained: str | None = None
    head: Literal["linear", "finetune"] = "finetune"
    head_dropout: float = 0.0
    head_hidden: int = 2048  # width of the fine-tune head's hidden layer (METHOD.md: 2048)
    # where the fine-tune head's dropout acts: after fc->BN->ReLU (hidden) or on the encoder's token
    # features before the temporal mean (tokens: MAMP's/the authors' ActionHeadFinetune)
    head_dropout_on: Literal["hidden", "tokens"] = "hidden"
    semi_draws: int = 1
    max_steps_per_epoch: int | None = None
    stop_after_epochs: int | None = (
        None  # leave early (checkpoint kept): for time-limited jobs; --resume goes on
    )
    progress: bool = True

    def validate(self) -> None:
        for name in ("threads", "keep_every", "keep_last", "save_every"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"run.{name} must be >= 1 (or unset), got {value}")


@dataclass
class ExperimentConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    target: TargetConfig = field(default_factory=TargetConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    run: RunConfig = field(default_factory=RunConfig)
    streaming: StreamingConfig = field(default_factory=StreamingConfig)  # stream-window fine-tuning
