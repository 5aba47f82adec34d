"""`masksem demo [--out DIR] [--quick] [--compare] [--seed N] [--device cpu|cuda]`.

The whole product on the built-in synthetic collaboration set, no downloads: data and a recording
bag, self-supervised pre-training, linear probe, stream fine-tuning with a no-action class, recogniser
settings chosen on validation streams, bundle, streaming replay, and a report folder
(report/index.html). Exit status 0 on success, 2 on bad arguments, 1 when a step failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `masksem demo`."""
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder")
    parser.add_argument(
        "--quick", action="store_true", help="smaller budget: a smoke test (times: docs/demo.md, Budget)"
    )
    parser.add_argument(
        "--compare", action="store_true", help="also pre-train MAMP and random masking on the same budget"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the data, recording and training")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--epochs", type=int, default=None, help="pre-training epochs (overrides the budget)")
    parser.add_argument(
        "--per-class", type=int, default=None, help="synthetic clips per action (overrides the budget)"
    )
    parser.add_argument(
        "--stream-epochs", type=int, default=None, help="stream fine-tuning epochs (overrides the budget)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (e.g. in CI logs)")


def run(args: argparse.Namespace) -> int:
    """Run every step and print the summary table; the last line is the headline."""
    from masksem_core.demo.pipeline import DemoSettings, format_summary, run_demo

    for name in ("epochs", "per_class", "stream_epochs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            print(f"masksem demo: --{name.replace('_', '-')} must be >= 1, got {value}", file=sys.stderr)
            return 2
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("masksem demo: --device cuda, but torch sees no CUDA device", file=sys.stderr)
            return 2
    settings = DemoSettings(
        out=args.out,
        quick=args.quick,
        compare=args.compare,
        seed=args.seed,
        device=args.device,
        per_class=args.per_class,
        epochs=args.epochs,
        stream_epochs=args.stream_epochs,
        progress=not args.no_progress,
    )
    try:
        summary = run_demo(settings)
    except KeyboardInterrupt:
        print("masksem demo: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a failed step: say which, in one line, keep what was written
        print(f"masksem demo: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"report: {Path(args.out) / 'report' / 'index.html'}")
    print(format_summary(summary), flush=True)
    return 0
