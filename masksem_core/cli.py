"""The `masksem` command: one sub-command per job, each implemented in its own module.

Each module named in COMMANDS provides `add_arguments(parser)` and `run(args) -> int`; modules are
imported lazily so `masksem --help` stays fast and a missing optional dependency only affects its
own sub-command.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "prepare": (
        "masksem_core.data.prepare_cli",
        "turn raw NTU/PKU/NW-UCLA/custom files into training arrays",
    ),
    "pretrain": ("masksem_core.train.cli", "self-supervised pre-training (masked motion prediction)"),
    "linprobe": ("masksem_core.train.cli", "linear probe on a frozen pre-trained encoder"),
    "finetune": ("masksem_core.train.cli", "fine-tune (also semi-supervised and transfer)"),
    "evaluate": ("masksem_core.train.cli", "evaluate a trained classifier checkpoint"),
    "export": ("masksem_core.runtime.export_cli", "write a model bundle / TorchScript / ONNX"),
    "replay": ("masksem_core.replay.cli", "replay a rosbag2 recording through the recogniser"),
    "stitch": ("masksem_core.replay.stitch_cli", "a continuous recording (bag + truth) from prepared clips"),
    "demo": ("masksem_core.demo.cli", "the whole product on built-in data, with a report"),
    "layouts": ("masksem_core.layouts_cli", "list the known joint layouts (sensors) and their joints"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full parser; only `command`'s module is imported (all of them when None)."""
    parser = argparse.ArgumentParser(
        prog="masksem",
        description="MaskSem: self-supervised skeleton action recognition for collaborative robots.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module_name)
        if command is not None and name != command:
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:  # optional dependency missing: keep the other commands usable
            p.set_defaults(_import_error=exc)
            p.add_argument(
                "_rest", nargs=argparse.REMAINDER
            )  # parse anything; run() reports the import error
            continue
        add = getattr(module, f"add_{name}_arguments", None) or module.add_arguments
        add(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if a in COMMANDS), None)
    args = build_parser(command or "").parse_args(argv)
    if getattr(args, "_import_error", None) is not None:
        print(f"masksem {args.command}: cannot import {args._module}: {args._import_error}", file=sys.stderr)
        return 2
    module = importlib.import_module(args._module)
    runner = getattr(module, f"run_{args.command}", None) or module.run
    return int(runner(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
