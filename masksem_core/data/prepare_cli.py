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

DATASETS = ("ntu60", "ntu120", "pku1", "pku2", "nw-ucla", "custom", "bag")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=DATASETS, help="which data set the raw files are")
    parser.add_argument(
        "--raw",
        required=True,
        type=Path,
        help="directory with the raw files (searched recursively); bag: the rosbag2 recording",
    )
    parser.add_argument("--out", required=True, type=Path, help="output directory (created)")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="parallel processes")
    parser.add_argument("--max-frames", type=int, default=300, help="frames per padded clip (longer are cut)")
    parser.add_argument(
        "--layout",
        default=None,
        help="custom/bag: joint layout (`masksem layouts`); custom: inferred from the joint count if unique",
    )
    parser.add_argument(
        "--joint-order",
        default=None,
        help="custom: file with one joint name a line in the files' column order (or a shipped order)",
    )
    parser.add_argument("--name", default=None, help="custom/bag: output file stem (custom / robot)")
    parser.add_argument("--num-persons", type=int, default=None, help="custom/bag: person slots (2 / 1)")
    parser.add_argument(
        "--num-classes", type=int, default=None, help="custom: classes when labels are integers"
    )
    parser.add_argument(
        "--fps", type=float, default=None, help="custom: frame rate of the recordings (stored in the sidecar)"
    )
    parser.add_argument(
        "--classes",
        type=Path,
        default=None,
        help="custom/bag: class names, one a line (default: classes.txt)",
    )
    parser.add_argument(
        "--no-joint-check", action="store_true", help="skip the joint-order check of the prepared clips"
    )
    parser.add_argument(
        "--labels", type=Path, default=None, help="bag: truth CSV start,end,label[,person_id]"
    )
    parser.add_argument("--topic", default=None, help="bag: skeleton topic (default: the only one)")
    parser.add_argument(
        "--split", default="time:0.8", help="bag: time:FRACTION (first part trains) or column (CSV 'split')"
    )
    parser.add_argument(
        "--background", action="store_true", help="bag: add no_action clips from unlabelled time"
    )
    parser.add_argument(
        "--to-layout", default=None, help="bag: convert the joints to this layout (the encoder's) on the way"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when any file was bad")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _prepare(args: argparse.Namespace) -> PrepareReport:
    common = {
        "workers": args.workers,
        "max_frames": args.max_frames,
        "progress": False if args.no_progress else None,
        "joint_check": not args.no_joint_check,
    }
    if args.dataset == "bag":
        return _prepare_bag(args)
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
        name=args.name or "custom",
        max_persons=args.num_persons or 2,
        num_classes=args.num_classes,
        fps=args.fps,
        joint_order=args.joint_order,
        classes=args.classes,
        **common,
    )


def _prepare_bag(args: argparse.Namespace) -> PrepareReport:
    from masksem_core.data.bag_prepare import prepare_bag
    from masksem_core.data.custom import read_classes

    if args.labels is None:
        raise ValueError("bag: --labels truth.csv is required (start,end,label[,person_id])")
    return prepare_bag(
        args.raw,
        args.labels,
        args.out,
        name=args.name or "robot",
        topic=args.topic,
        layout=args.layout,
        max_frames=args.max_frames,
        num_persons=args.num_persons or 1,
        split=args.split,
        background=args.background,
        classes=read_classes(args.classes) if args.classes else None,
        joint_check=not args.no_joint_check,
        to_layout=args.to_layout,
    )


def run(args: argparse.Namespace) -> int:
    if not args.raw.is_dir():  # a rosbag2 bag is a directory too
        print(f"masksem prepare: --raw {args.raw} is not a directory", file=sys.stderr)
        return 2
    if args.max_frames < 1 or args.workers < 1:
        print("masksem prepare: --max-frames and --workers must be >= 1", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    from masksem_core.rosmsg.bag_io import BagReadError  # no ROS needed (rosbags is imported lazily)

    try:
        report = _prepare(args)
    except (EmptyCorpusError, DataFormatError, FileNotFoundError, ValueError, KeyError, BagReadError) as exc:
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
