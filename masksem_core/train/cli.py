"""`masksem pretrain | linprobe | finetune | evaluate --config FILE.yaml [key=value ...]`.

Each command has its own parser (`masksem pretrain --help` lists pretrain's flags only);
`masksem evaluate --bundle DIR --data NPZ` scores an exported bundle (train/bundle_eval.py).

--config takes a path or the name of a shipped config (`masksem_core/configs/`, e.g. `nwucla_pretrain`).
A YAML file may start from another with `base: other.yaml` (resolved next to it or among the shipped
configs). Unknown keys and wrong types are errors that name the key.
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from masksem_core.cli import EXIT_INTERRUPTED
from masksem_core.config import ConfigError, apply_overrides, deep_merge, from_dict, load_yaml
from masksem_core.data.sidecar_config import fill_from_sidecar
from masksem_core.fileio import check_writable
from masksem_core.runtime.bundle import BundleError
from masksem_core.threads import apply_threads
from masksem_core.train.checkpoint import CheckpointError
from masksem_core.train.config import ExperimentConfig, clear_alternatives
from masksem_core.train.results import close_text_logs, run_log

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
    return deep_merge(clear_alternatives(load_raw(base, path.parent, depth + 1), data), data)


def load_experiment(config: str | None, overrides: list[str]) -> ExperimentConfig:
    data = load_raw(config) if config else {}
    data = apply_overrides(clear_alternatives(data, apply_overrides({}, overrides)), overrides)
    try:
        data = fill_from_sidecar(data)  # joints, layout, persons, clip length from the prepared data
        return from_dict(ExperimentConfig, data)
    except ConfigError as exc:
        raise ConfigError(f"{config}: {exc}" if config else str(exc)) from None


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", help="YAML config path or shipped config name")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. optim.epochs=20 run.seed=1")
    parser.add_argument("--out", help="run folder (shortcut for run.out_dir=...)")


def add_pretrain_arguments(parser: argparse.ArgumentParser) -> None:
    """`masksem pretrain`: its flags only (each sub-command has its own parser)."""
    _add_config_arguments(parser)
    parser.add_argument("--resume", action="store_true", help="continue from run.out_dir/last.pt")
    parser.add_argument("--init-from", help="start from this checkpoint's weights (e.g. a MAMP run)")


def add_linprobe_arguments(parser: argparse.ArgumentParser) -> None:
    _add_config_arguments(parser)
    parser.add_argument("--pretrained", help="encoder weights to probe (a pre-training checkpoint)")


def add_finetune_arguments(parser: argparse.ArgumentParser) -> None:
    _add_config_arguments(parser)
    parser.add_argument("--resume", action="store_true", help="continue from run.out_dir/last.pt")
    parser.add_argument("--pretrained", help="encoder weights to start from (a pre-training checkpoint)")


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    _add_config_arguments(parser)
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--checkpoint", help="a classifier checkpoint (classifier.pt)")
    what.add_argument("--bundle", help="an exported model bundle (directory or archive)")
    parser.add_argument("--data", help="prepared .npz to score on (shortcut for data.path=...)")
    parser.add_argument(
        "--backend",
        choices=("torch", "onnxruntime"),
        default="torch",
        help="--bundle: run it on torch or ONNX Runtime (the bundle's exported ONNX model when it has one)",
    )
    parser.add_argument(
        "--precision",
        choices=("fp32", "int8"),
        default="fp32",
        help="--bundle: int8 = ONNX Runtime's dynamic quantisation (needs --backend onnxruntime)",
    )
    parser.add_argument(
        "--bundle-model",
        choices=("auto", "main", "segment"),
        default="auto",
        help="--bundle: which model answers for whole clips: its segment classifier (auto, when it carries "
        "one; runs on torch) or its main model's token mean",
    )


def run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    for flag, key in (("out", "out_dir"), ("init_from", "init_from"), ("pretrained", "pretrained")):
        if getattr(args, flag, None):
            overrides.append(f"run.{key}={getattr(args, flag)}")
    if getattr(args, "data", None):
        overrides.append(f"data.path={args.data}")
    threads = getattr(args, "threads", None)
    if threads is not None:  # --threads wins over run.threads (and is recorded in config.yaml)
        overrides.append(f"run.threads={threads}")
    try:
        cfg = _resolve(args, overrides)
    except ConfigError as exc:
        print(f"masksem {args.command}: config error: {exc}", file=sys.stderr)
        return 2
    except CheckpointError as exc:
        print(f"masksem {args.command}: error: {exc}", file=sys.stderr)
        return 2
    try:
        check_writable(cfg.run.out_dir, "run.out_dir")
        if threads is None and cfg.run.threads:  # the config's value, applied like --threads
            apply_threads(cfg.run.threads)
            print(f"masksem {args.command}: {cfg.run.threads} threads (run.threads)", file=sys.stderr)
        return _dispatch(args, cfg)
    except (CheckpointError, ConfigError, BundleError, OSError, ValueError) as exc:
        # a user mistake, a damaged input or a full/unwritable disk: one clear line, not a traceback
        _say(f"masksem {args.command}: error: {exc}", logging.ERROR)
        return 2
    except KeyboardInterrupt:
        last = Path(cfg.run.out_dir) / "last.pt"
        where = (
            f"; last checkpoint {last} is complete, continue with --resume"
            if getattr(args, "resume", None) is not None and last.exists()
            else ""
        )
        _say(f"masksem {args.command}: interrupted (Ctrl-C){where}", logging.WARNING)
        return EXIT_INTERRUPTED
    finally:
        close_text_logs()


def _say(text: str, level: int) -> None:
    """An error or interruption line: on stderr and in the run's train.log (when one is open)."""
    run_log(text, level)
    print(text, file=sys.stderr, flush=True)


def _resolve(args: argparse.Namespace, overrides: list[str]) -> ExperimentConfig:
    """Explicit settings over the checkpoint's (evaluate --checkpoint, --pretrained): train/resolve.py."""
    from masksem_core.train.resolve import resolve_experiment

    given = load_raw(args.config) if args.config else {}
    try:
        return resolve_experiment(args.command, given, overrides, getattr(args, "checkpoint", None))
    except ConfigError as exc:
        raise ConfigError(f"{args.config}: {exc}" if args.config else str(exc)) from None


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
        if args.bundle:
            if args.precision == "int8" and args.backend != "onnxruntime":
                print("masksem evaluate: --precision int8 needs --backend onnxruntime", file=sys.stderr)
                return 2
            from masksem_core.train.bundle_eval import evaluate_bundle

            evaluate_bundle(cfg, args.bundle, args.backend, args.precision, args.bundle_model)
            return 0
        if not args.checkpoint:
            print("masksem evaluate: --checkpoint or --bundle is required", file=sys.stderr)
            return 2
        from masksem_core.train.classify import evaluate

        evaluate(cfg, args.checkpoint)
    return 0
