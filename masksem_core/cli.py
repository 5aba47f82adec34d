"""The `masksem` command: one sub-command per job, each implemented in its own module.

Each module named in COMMANDS provides `add_arguments(parser)` (or `add_<command>_arguments`) and
`run(args) -> int` (or `run_<command>`); modules are imported lazily so `masksem --help` stays fast and
a missing optional dependency only affects its own sub-command.

What every command shares is done here, once: `--threads` (see masksem_core/threads.py) with a start
line, an up-front check that `--out` can be written, and Ctrl-C: one line, exit status 130, no
traceback (every writer is atomic, so the files already written are complete).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a Ctrl-C'd program

COMMANDS: dict[str, tuple[str, str]] = {
    "prepare": (
        "masksem_core.data.prepare_cli",
        "turn raw NTU/PKU/NW-UCLA/custom files into training arrays",
    ),
    "pretrain": ("masksem_core.train.cli", "self-supervised pre-training (masked motion prediction)"),
    "linprobe": ("masksem_core.train.cli", "linear probe on a frozen pre-trained encoder"),
    "finetune": ("masksem_core.train.cli", "fine-tune (also semi-supervised and transfer)"),
    "evaluate": (
        "masksem_core.train.cli",
        "score a classifier checkpoint or an exported bundle (torch/ONNX/int8) on a data set",
    ),
    "export": ("masksem_core.runtime.export_cli", "write a model bundle / TorchScript / ONNX"),
    "replay": ("masksem_core.replay.cli", "replay a rosbag2 recording through the recogniser"),
    "stitch": ("masksem_core.replay.stitch_cli", "a continuous recording (bag + truth) from prepared clips"),
    "demo": ("masksem_core.demo.cli", "the whole product on built-in data, with a report"),
    "layouts": ("masksem_core.layouts_cli", "list the known joint layouts (sensors) and their joints"),
}


def version() -> str:
    """The installed distribution's version (setup.py takes it from package.xml)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("masksem")
    except PackageNotFoundError:  # running from a source tree that was never installed
        from masksem_core import __version__

        return __version__


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of every sub-command (added after the command's own; a command may define them itself)."""
    if "--threads" not in parser._option_string_actions:
        parser.add_argument(
            "--threads",
            type=_positive_int,
            default=None,
            metavar="N",
            help="CPU threads (default: OMP_NUM_THREADS, else the cores this process may use; "
            "1 is fastest on a CPU shared with other jobs)",
        )


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full parser; only `command`'s module is imported (all of them when None)."""
    parser = argparse.ArgumentParser(
        prog="masksem",
        description="MaskSem: self-supervised skeleton action recognition for collaborative robots.",
    )
    parser.add_argument("--version", action="version", version=f"masksem {version()}")
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
        add_common_arguments(p)
    return parser


def _check_out(args: argparse.Namespace) -> str | None:
    """An error line when --out cannot be written (nothing is created here), else None."""
    out = getattr(args, "out", None)
    if out is None:
        return None
    from masksem_core.fileio import OutputDirError, check_writable

    try:
        check_writable(out, "--out")
    except OutputDirError as exc:
        return f"masksem {args.command}: error: {exc}"
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if a in COMMANDS), None)
    parser = build_parser(command or "")
    args, extra = parser.parse_known_args(argv)
    if extra:  # key=value overrides after a flag (`--out DIR optim.epochs=3`) are still overrides
        if isinstance(getattr(args, "overrides", None), list) and all(
            "=" in a and not a.startswith("-") for a in extra
        ):
            args.overrides.extend(extra)
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "_import_error", None) is not None:
        print(f"masksem {args.command}: cannot import {args._module}: {args._import_error}", file=sys.stderr)
        return 2
    try:
        error = _check_out(args)
        if error:
            print(error, file=sys.stderr)
            return 2
        from masksem_core.threads import configure

        configure(args.command, getattr(args, "threads", None), quiet=os.environ.get("RANK", "0") != "0")
        module = importlib.import_module(args._module)
        runner = getattr(module, f"run_{args.command}", None) or module.run
        return int(runner(args) or 0)
    except KeyboardInterrupt:
        print(
            f"masksem {args.command}: interrupted (Ctrl-C); the files written so far are complete",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
