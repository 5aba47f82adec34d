"""`masksem pretrain | linprobe | finetune | evaluate --config FILE.yaml [key=value ...]`.

--config takes a path or the name of a shipped config (`masksem_core/configs/`, e.g. `nwucla_pretrain`).
A YAML file may start from another with `base: other.yaml` (resolved next to it or among the shipped
configs). Unknown keys and wrong types are errors that name the key.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from masksem_core.config import ConfigError, apply_overrides, deep_merge, from_dict, load_yaml
from masksem_core.data.sidecar_config import fill_from_sidecar
from masksem_core.train.checkpoint import CheckpointError
from masksem_core.train.config import ExperimentConfig

SHIPPED = resources.files("masksem_core") / "configs"


def resolve_config_path(name: str, relative_to: Path | None = None) -> Path:
    """A config path, a file next to `relative_to`, or a shipped config name (with or without .yaml)."""
    candidates = [Path(name)]
    if relative_to is not None:
        candidates.append(relative_to / name)
    stem = name if name.endswith(".yaml") else f"{name}.yaml"
    candidates.append(Path(str(SHIPPED / stem)))
    for c in candidates:
        if c.is_file():
            return c
    shipped = sorted(p.name.removesuffix(".yaml") for p in Path(str(SHIPPED)).glob("*.yaml"))
    raise ConfigError(f"config {name!r} not found (shipped configs: {', '.join(shipped)})")


def load_raw(name: str, relative_to: Path | None = None, depth: int = 0) -> dict[str, Any]:
    """YAML with `base:` inheritance resolved."""
    if depth > 8:
        raise ConfigError(f"config {name}: `base:` chain is too deep (a cycle?)")
    path = resolve_config_path(name, relative_to)
    data = load_yaml(path)
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"{path}: base must be a config name, got {base!r}")
    return deep_merge(load_raw(base, path.parent, depth + 1), data)


def load_experiment(config: str | None, overrides: list[str]) -> ExperimentConfig:
    data = load_raw(config) if config else {}
    data = apply_overrides(data, overrides)
    try:
        data = fill_from_sidecar(data)  # joints, layout, persons, clip length from the prepared data
        return from_dict(ExperimentConfig, data)
    except ConfigError as exc:
        raise ConfigError(f"{config}: {exc}" if config else str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", help="YAML config path or shipped config name")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. optim.epochs=20 run.seed=1")
    parser.add_argument("--resume", action="store_true", help="continue from run.out_dir/last.pt")
    parser.add_argument(
        "--init-from", help="pretrain: start from this checkpoint's weights (e.g. a MAMP run)"
    )
    parser.add_argument("--pretrained", help="linprobe/finetune: encoder weights to start from")
    parser.add_argument("--checkpoint", help="evaluate: classifier checkpoint")
    parser.add_argument("--out", help="shortcut for run.out_dir=...")


def run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.out:
        overrides.append(f"run.out_dir={args.out}")
    if args.init_from:
        overrides.append(f"run.init_from={args.init_from}")
    if args.pretrained:
        overrides.append(f"run.pretrained={args.pretrained}")
    try:
        cfg = load_experiment(args.config, overrides)
    except ConfigError as exc:
        print(f"masksem {args.command}: config error: {exc}", file=sys.stderr)
        return 2
    try:
        return _dispatch(args, cfg)
    except (CheckpointError, ConfigError, FileNotFoundError, ValueError) as exc:
        # a user mistake or a damaged input: one clear line, not a traceback
        print(f"masksem {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace, cfg: ExperimentConfig) -> int:
    if args.command == "pretrain":
        from masksem_core.train.pretrain import pretrain

        pretrain(cfg, resume=args.resume)
    elif args.command == "linprobe":
        from masksem_core.train.classify import linprobe

        linprobe(cfg)
    elif args.command == "finetune":
        from masksem_core.train.classify import finetune

        finetune(cfg, resume=args.resume)
    elif args.command == "evaluate":
        if not args.checkpoint:
            print("masksem evaluate: --checkpoint is required", file=sys.stderr)
            return 2
        from masksem_core.train.classify import evaluate

        evaluate(cfg, args.checkpoint)
    return 0
