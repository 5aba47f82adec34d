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
    # Random-crop floor: unset (default) follows the data (64 frames, at most half a clip's valid length);
    # min_crop_frames fixes it (the NTU/PKU reference recipes set 64), min_crop_fraction makes it a share.
    min_crop_frames: int | None = None
    min_crop_fraction: float | None = None
    # training clips' ends each move by up to this share of their length before the crop (inward: cut,
    # outward: the edge pose held), as a stream recogniser's spans do (issue 17); None: off
    span_jitter: float | None = None
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
        if self.span_jitter is not None and not 0.0 <= self.span_jitter <= 0.5:
            raise ConfigError(f"data.span_jitter must be in [0, 0.5], got {self.span_jitter}")
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
    # Supervised runs: a moving average of the weights, with its horizon in epochs (average_epochs) or as a
    # fraction of the run (average_fraction), so it means the same on 300 clips and on 40k: decay per step
    # 1 - 1/horizon_steps, warmed up as a plain running mean over the first horizon_steps (no bias towards
    # the starting weights). The raw and the averaged weights are both scored at the end and the one kept
    # is chosen on validation data (data.val_fraction / data.val_names), never on the test split.
    average_epochs: float | None = None
    average_fraction: float | None = None
    # Legacy (recipes before issue 18): a fixed decay per step, no warm-up; 0.998 averages over ~500 steps,
    # which on a few hundred clips is most of the run. Raw vs averaged is chosen as above.
    ema_decay: float | None = None

    def validate(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("optim.epochs and optim.batch_size must be >= 1")
        if self.lr <= 0 or self.min_lr < 0:
            raise ConfigError("optim.lr must be > 0 and optim.min_lr >= 0")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ConfigError(f"optim.ema_decay must be in (0, 1), got {self.ema_decay}")
        if self.average_epochs is not None and self.average_epochs <= 0:
            raise ConfigError(f"optim.average_epochs must be > 0, got {self.average_epochs}")
        if self.average_fraction is not None and not 0.0 < self.average_fraction <= 1.0:
            raise ConfigError(f"optim.average_fraction must be in (0, 1], got {self.average_fraction}")
        kinds = ("average_epochs", "average_fraction", "ema_decay")
        averages = [k for k in kinds if getattr(self, k) is not None]
        if len(averages) > 1:
            a, b = averages[:2]
            raise ConfigError(f"optim.{a} and optim.{b} both set the weight average: set one of them")


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
    # When the best lr is the grid's largest or smallest, extend the grid on that side (by the grid's
    # own end step, at most x3) until the best is interior, at most this many times.
    lr_widen: int = 4
    # Probe a random-init encoder of the same architecture the same way, beside the result (the floor).
    random_init_baseline: bool = True

    def validate(self) -> None:
        if any(lr <= 0 for lr in self.lr_grid):
            raise ConfigError(f"probe.lr_grid must hold learning rates > 0, got {self.lr_grid}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"probe.val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.lr_widen < 0:
            raise ConfigError(f"probe.lr_widen must be >= 0, got {self.lr_widen}")


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
    # Where from-scratch runs record their top-1 as the floor of later runs of the same protocol
    # (train/baselines.py); default: `baselines/` beside run.out_dir.
    baselines_dir: str | None = None


# Settings of which a run takes one. A later layer (a child YAML over its `base:`, a key=value override
# over the YAML) that sets one of them to a value clears the others it inherits, so
# `--config nwucla_finetune data.val_names=_v02$` holds out view 2 instead of the recipe's fraction;
# both set in one layer stay an error (validate).
ALTERNATIVES = {
    "optim": ("average_epochs", "average_fraction", "ema_decay"),
    "data": ("val_fraction", "val_names"),
}


def clear_alternatives(lower: dict, upper: dict) -> dict:
    """`lower` (a raw config mapping) without the alternatives of what `upper` sets (not to null)."""
    out = dict(lower)
    for section, names in ALTERNATIVES.items():
        chosen = {n for n in names if (upper.get(section) or {}).get(n) is not None}
        if chosen and isinstance(out.get(section), dict):
            out[section] = {k: v for k, v in out[section].items() if k not in set(names) - chosen}
    return out

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
