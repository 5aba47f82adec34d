"""`masksem stitch DATA.npz --split test --out DIR`: a continuous recording from a prepared data set's clips.

Writes `DIR/bag` (Skeleton3DArray messages at the data set's true frame rate, plus the truth on
/masksem/ground_truth), `DIR/labels.csv` (for `masksem replay --labels`) and `DIR/stitch.json` (what
was stitched: source, split, clip indices and names in stream order, gaps, frame rate, background
share). Exit status 0, or 2 with a one-line reason.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from masksem_core.replay.stitch import DEFAULT_GAP_S, DEFAULT_NOISE_M, GAP_MODELS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `masksem stitch`."""
    parser.add_argument("data", type=Path, help="prepared data set (.npz with its .json sidecar)")
    parser.add_argument(
        "--split", choices=("train", "test"), default="test", help="which clips (default test)"
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="output folder (bag/, labels.csv, stitch.json)"
    )
    parser.add_argument("--seed", type=int, default=0, help="clip choice, order, gap lengths and noise")
    parser.add_argument("--clips", type=int, default=50, help="clips to stitch (0: all eligible); default 50")
    parser.add_argument(
        "--min-frames", type=int, default=10, help="skip clips shorter than this (default 10)"
    )
    parser.add_argument(
        "--gap-model", choices=GAP_MODELS, default="hold", help="motion between clips (docs/replay.md)"
    )
    parser.add_argument(
        "--gap-s",
        type=float,
        nargs=2,
        metavar=("MIN", "MAX"),
        default=list(DEFAULT_GAP_S),
        help=f"gap duration range in seconds, uniform (default {DEFAULT_GAP_S[0]:g} {DEFAULT_GAP_S[1]:g})",
    )
    parser.add_argument(
        "--noise-mm",
        type=float,
        default=DEFAULT_NOISE_M * 1e3,
        help="sensor noise sd in gaps, mm (default 1)",
    )
    parser.add_argument(
        "--fps", type=float, default=None, help="frame rate of the clips (default: the sidecar's fps)"
    )
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="bag storage")
    parser.add_argument("--overwrite", action="store_true", help="replace a recording already in --out")


def run(args: argparse.Namespace) -> int:
    """Stitch, write, print a one-paragraph summary."""
    from masksem_core.replay.report import write_json_atomic
    from masksem_core.replay.stitch import choose_clips, load_split_clips, stitch_clips, write_stitched

    try:
        data = load_split_clips(args.data, args.split)
        fps = args.fps or data.fps
        if not fps:
            raise ValueError(
                f"{args.data}: the sidecar has no 'fps' (prepared before frame rates were recorded): "
                "prepare it again or pass --fps"
            )
        if args.noise_mm < 0:
            raise ValueError(f"--noise-mm must be >= 0, got {args.noise_mm}")
        rows = choose_clips(
            data.labels, [len(c) for c in data.clips], args.clips or None, args.min_frames, args.seed
        )
        stitched = stitch_clips(
            [data.clips[i] for i in rows],
            data.labels[rows],
            fps,
            gap_model=args.gap_model,
            gap_s=tuple(args.gap_s),
            seed=args.seed,
            noise_m=args.noise_mm * 1e-3,
            layout=data.layout,
            label_names=data.label_names,
        )
        paths = write_stitched(args.out, stitched, storage=args.storage, overwrite=args.overwrite)
    except (OSError, ValueError, KeyError) as exc:
        print(f"masksem stitch: {exc}", file=sys.stderr)
        return 2
    lengths = [len(data.clips[i]) for i in rows]
    manifest = {
        "data": str(args.data),
        "split": args.split,
        "seed": args.seed,
        "fps": float(fps),
        "fps_source": "--fps" if args.fps else "sidecar",
        "layout": data.layout,
        "gap_model": args.gap_model,
        "gap_s": list(args.gap_s),
        "noise_mm": args.noise_mm,
        "min_frames": args.min_frames,
        "clips": [int(i) for i in rows],  # row indices in the split, in stream order
        "clip_names": [data.names[i] for i in rows],
        "clip_labels": [data.label_names[int(data.labels[i])] for i in rows],
        "clip_frames": lengths,
        "gaps": [{"s": round(s, 6), "model": m} for s, m in stitched.gaps],
        "frames": int(len(stitched.stamps)),
        "duration_s": stitched.duration_s,
        "background_fraction": stitched.background_fraction,
        "bag": str(paths["bag"]),
        "labels": str(paths["labels"]),
    }
    write_json_atomic(Path(args.out) / "stitch.json", manifest)
    print(
        f"stitched {len(rows)} {args.split} clips of {args.data.name} ({min(lengths)}-{max(lengths)} frames, "
        f"median {int(sorted(lengths)[len(lengths) // 2])}) at {fps:g} fps with {args.gap_model} gaps of "
        f"{args.gap_s[0]:g}-{args.gap_s[1]:g} s: {stitched.duration_s:.1f} s, "
        f"{stitched.background_fraction:.1%} of frames are gaps (background)"
    )
    for key in ("bag", "labels"):
        print(f"wrote {paths[key]}")
    print(f"wrote {Path(args.out) / 'stitch.json'}")
    print(f"replay: masksem replay {paths['bag']} --bundle BUNDLE --labels {paths['labels']}")
    return 0
