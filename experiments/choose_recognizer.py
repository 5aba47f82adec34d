"""Choose a dense bundle's recogniser settings on validation streams of TRAINING clips, and write them
into bundles (`bundle.yaml` `recognizer:`), so replay and the robot run them by default.

The model that is scored must not have been fitted on the validation clips: for NW-UCLA, a model
fine-tuned on view 1 (`data.val_names=_v02$`) is scored on streams stitched from view-2 training clips;
the chosen settings are then written into that bundle and into the shipped one (same recipe, fitted on
both training views). Never the test view.

    python experiments/choose_recognizer.py --bundle runs/s17b/streamA/bundle \
        --data data/nw-ucla/NW-UCLA.npz --names '_v02$' --fps 15 \
        --write runs/s17b/streamA/bundle models/nwucla_xview --out runs/s17b/choice.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from masksem_core.replay.stitch import DEFAULT_GAP_S, load_split_clips
from masksem_core.runtime import tuning
from masksem_core.runtime.bundle import load_bundle, set_recognizer_settings

GRID = {
    "stride_frames": [2],
    "lag_frames": [0, 4, 8, 12],
    "segments": [False, True],
    "provisional": [False, True],
    "min_segment_frames": [8],
    "merge_gap_frames": [8],
    "smoothing": ["none"],
    "score_threshold": [0.0, 0.4],
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", required=True, help="bundle of a model NOT fitted on the validation clips")
    ap.add_argument("--data", required=True, help="prepared npz; its TRAINING split gives the clips")
    ap.add_argument("--names", required=True, help="regular expression of the validation clips' names")
    ap.add_argument("--fps", type=float, default=None, help="the data's frame rate if the sidecar lacks it")
    ap.add_argument("--clips", type=int, default=60, help="clips per validation stream")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--gap-models", nargs="+", default=["hold", "smooth"])
    ap.add_argument("--gap-s", type=float, nargs=2, default=list(DEFAULT_GAP_S), help="gap lengths, seconds")
    ap.add_argument("--max-delay", type=float, default=1.0, help="seconds, causal detection delay p50")
    ap.add_argument("--max-missed", type=float, default=0.1, help="share of actions never detected")
    ap.add_argument("--grid", default=None, help="JSON mapping setting -> candidates (default: GRID)")
    ap.add_argument("--write", nargs="*", default=[], help="bundle directories to write the choice into")
    ap.add_argument("--out", default=None, help="JSON file for every row and the choice")
    args = ap.parse_args(argv)

    split = load_split_clips(args.data, "train")
    fps = args.fps or split.fps
    if not fps:
        print(f"{args.data}: the sidecar has no fps; pass --fps", file=sys.stderr)
        return 2
    pattern = re.compile(args.names)
    picked = [i for i, n in enumerate(split.names) if pattern.search(n)]
    if not picked:
        print(f"--names {args.names!r} matches no training clip", file=sys.stderr)
        return 2
    streams = tuning.validation_streams(
        [split.clips[i] for i in picked], [int(split.labels[i]) for i in picked], fps, split.label_names,
        gap_models=args.gap_models, seeds=args.seeds, clips_per_stream=args.clips, gap_s=tuple(args.gap_s),
    )  # fmt: skip
    bundle = load_bundle(args.bundle)
    grid = json.loads(args.grid) if args.grid else GRID
    share = np.mean([s.background_fraction for s in streams])
    print(f"{len(streams)} validation streams of {len(picked)} clips matching {args.names!r}, "
          f"background share {share:.3f}", flush=True)  # fmt: skip
    chosen, rows = tuning.choose(bundle, streams, grid, args.max_delay, args.max_missed,
                                 log=lambda line: print(line, flush=True))  # fmt: skip
    settings = {"window_frames": bundle.window_frames, **chosen}
    print(f"chosen: {settings}", flush=True)
    for path in args.write:
        set_recognizer_settings(path, settings)
        print(f"wrote recognizer settings into {path}/bundle.yaml")
    if args.out:
        report = {"chosen": settings, "rows": rows, "grid": grid, "names": args.names, "clips": len(picked),
                  "gap_s": args.gap_s}  # fmt: skip
        Path(args.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
