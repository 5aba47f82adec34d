"""Where a run's settings come from: explicit config/overrides > the checkpoint it starts from > defaults.

A checkpoint is self-describing (docs/INTERFACES.md: the resolved config under "config", label names
under "labels"), so `masksem evaluate --checkpoint CKPT` needs nothing else, and `linprobe` / `finetune`
take the encoder's shape from `--pretrained` instead of from whatever `--config` says. The data's sidecar
fills what neither decided (data/sidecar_config.py). An explicit value still wins, except where it
contradicts the weights: an encoder field (sizes, clip length, layout) that
differs from the checkpoint's is an error naming the field, not a shape mismatch three layers down.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

from masksem_core.config import ConfigError, apply_overrides, deep_merge, from_dict
from masksem_core.data.sidecar_config import fill_from_sidecar
from masksem_core.train import checkpoint as ckpt
from masksem_core.train.config import ExperimentConfig, clear_alternatives

# ModelConfig fields the encoder's weights depend on (decoder sizes and drop path do not).
ENCODER_FIELDS = (
    "num_frames",
    "num_joints",
    "num_persons",
    "in_channels",
    "patch_len",
    "dim",
    "depth",
    "heads",
    "mlp_ratio",
    "layout",
)


def checkpoint_config(payload: dict[str, Any]) -> dict[str, Any]:
    """The run config a checkpoint was trained with; old checkpoints without one give just the model."""
    config = payload.get("config")
    if isinstance(config, dict):
        return config
    model = payload.get("model_config")
    return {"model": model} if isinstance(model, dict) else {}


def known_keys(cls: type, data: dict[str, Any], prefix: str = "", dropped: list[str] | None = None) -> dict:
    """`data` without the keys `cls` does not know (a checkpoint of an older or newer version)."""
    dropped = [] if dropped is None else dropped
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            dropped.append(prefix + key)
        elif dataclasses.is_dataclass(hints[key]) and isinstance(value, dict):
            out[key] = known_keys(hints[key], value, f"{prefix}{key}.", dropped)
        else:
            out[key] = value
    return out


def check_encoder_agrees(given: dict[str, Any], trained: dict[str, Any], source: str) -> None:
    """An explicit model setting that contradicts the checkpoint's weights is an error naming it."""
    for name in ENCODER_FIELDS:
        if name in given and name in trained and given[name] != trained[name]:
            raise ConfigError(
                f"model.{name}: {source} was trained with {trained[name]!r} but the config/overrides give "
                f"{given[name]!r} (drop the setting to take the checkpoint's)"
            )


def resolve_experiment(
    command: str,
    given: dict[str, Any],
    overrides: list[str],
    checkpoint: str | None = None,
    announce: typing.Callable[[str], None] = print,
) -> ExperimentConfig:
    """The config of `command` from the explicit settings (`given`: the YAML chain, then `overrides`)
    layered over the checkpoint's: `checkpoint` for evaluate (its whole config), run.pretrained for
    linprobe/finetune (its model section)."""
    given = apply_overrides(clear_alternatives(given, apply_overrides({}, overrides)), overrides)
    source = checkpoint if command == "evaluate" else (given.get("run") or {}).get("pretrained")
    if not source or command not in ("evaluate", "linprobe", "finetune"):
        return from_dict(ExperimentConfig, fill_from_sidecar(given))
    payload = ckpt.load_checkpoint(source)
    trained = checkpoint_config(payload)
    dropped: list[str] = []
    trained = known_keys(ExperimentConfig, trained, dropped=dropped)
    if dropped:
        announce(f"{source}: ignoring settings this version does not know: {', '.join(dropped)}")
    check_encoder_agrees(given.get("model") or {}, trained.get("model") or {}, str(source))
    if command == "evaluate":  # what decides the score: the model, the data and how it is read
        base = {k: trained[k] for k in ("model", "data") if k in trained}
        base["run"] = {
            **(trained.get("run") or {}),
            "out_dir": str(Path(source).parent / "evaluate"),
            "pretrained": None,
            "init_from": None,
        }
        if not (trained.get("data") or {}).get("path"):
            announce(f"{source} does not say where its data is (an old checkpoint): give data.path=...")
    else:
        base = {"model": trained.get("model") or {}}
    # the data's sidecar fills only what neither the config nor the checkpoint decided
    return from_dict(ExperimentConfig, fill_from_sidecar(deep_merge(base, given)))
