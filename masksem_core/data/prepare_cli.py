"""`masksem prepare <dataset> --raw DIR --out DIR [--workers N]`: raw data set -> training arrays."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from masksem_core.data.arrays import atomic_write_bytes
from masksem_core.data.errors import DataFormatError
from masksem_core.data.prepare import EmptyCorpusError, PrepareReport

DATASETS = ("ntu60", "ntu120", "pku1", "pku2", "nw-ucla", "custom")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=DATASETS, help="which data set the raw files are")
    parser.add_argument(
        "--raw", required=True, type=Path, help="directory with the raw files (searched recursively)"
    )
    parser.add_argument("--out", required=True, type=Path, help="output directory (created)")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="parallel processes")
    parser.add_argument("--max-frames", type=int, default=300, help="frames per padded clip (longer are cut)")
    parser.add_argument("--layout", default="ntu25", help="custom: joint layout of the .npy clips")
    parser.add_argument("--name", default="custom", help="custom: output file stem")
    parser.add_argument("--num-persons", type=int, default=2, help="custom: person slots")
    parser.add_argument(
        "--num-classes", type=int, default=None, help="custom: classes when labels are integers"
    )
    parser.add_argument(
        "--fps", type=float, default=None, help="custom: frame rate of the recordings (stored in the sidecar)"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when any file was bad")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _prepare(args: argparse.Namespace) -> PrepareReport:
    common = {
        "workers": args.workers,
        "max_frames": args.max_frames,
        "progress": False if args.no_progress else None,
    }
    if args.dataset in ("ntu60", "ntu120"):
        from masksem_core.data.ntu_prepare import prepare_ntu

        return prepare_ntu(args.raw, args.out, args.dataset, **common)
    if args.dataset in ("pku1", "pku2"):
        from masksem_core.data.pku import prepare_pku

        return prepare_pku(args.raw, args.out, int(args.dataset[-1]), **common)
    if args.dataset == "nw-ucla":
        from masksem_core.data.nwucla import prepare_nwucla

        return prepare_nwucla(args.raw, args.out, **common)
    from masksem_core.data.custom import prepare_custom

    return prepare_custom(
        args.raw,
        args.out,
        args.layout,
        name=args.name,
        max_persons=args.num_persons,
        num_classes=args.num_classes,
        fps=args.fps,
        **common,
    )


def run(args: argparse.Namespace) -> int:
    if not args.raw.is_dir():
        print(f"masksem prepare: --raw {args.raw} is not a directory", file=sys.stderr)
        return 2
    if args.max_frames < 1 or args.workers < 1:
        print("masksem prepare: --max-frames and --workers must be >= 1", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        report = _prepare(args)
    except (EmptyCorpusError, DataFormatError, FileNotFoundError, ValueError, KeyError) as exc:
        print(f"masksem prepare {args.dataset}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("masksem prepare: interrupted; no output file was left half-written", file=sys.stderr)
        return 130
    text = report.summary(max_lines=len(report.errors) + len(report.warnings))
    text += f"\n{time.perf_counter() - t0:.1f} s\n"
    atomic_write_bytes(args.out / f"prepare_{args.dataset}_report.txt", text.encode())
    print(report.summary(), file=sys.stderr)
    return 1 if args.strict and report.errors else 0
