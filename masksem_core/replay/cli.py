"""`masksem replay BAG --bundle DIR [--labels FILE | --label-topic TOPIC]`: score a model on a recording.

Exit status: 0 when the bag read cleanly, 3 when it was damaged (the report covers what was read),
2 when nothing could be done (no bundle, no skeleton topic, bad labels file).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

import numpy as np

EXIT_OK, EXIT_USAGE, EXIT_DAMAGED = 0, 2, 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `masksem replay`."""
    parser.add_argument("bag", type=Path, help="rosbag2 directory (mcap or sqlite3) or a single .mcap file")
    parser.add_argument("--bundle", type=Path, required=True, help="model bundle directory or archive")
    truth = parser.add_mutually_exclusive_group()
    truth.add_argument("--labels", type=Path, help="CSV of labelled intervals start,end,label[,person_id]")
    truth.add_argument(
        "--label-topic", help="std_msgs/msg/String label topic in the bag (see docs/replay.md)"
    )
    parser.add_argument(
        "--topic", help="skeleton topic (default: the bag's Skeleton3DArray/PointCloud2 topic)"
    )
    parser.add_argument("--layout", help="joint layout of PointCloud2 input when not inferable")
    parser.add_argument("--out", type=Path, help="output directory (default: BAG.replay next to the bag)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the replay already in --out (else refused)"
    )
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="output bag storage")
    parser.add_argument("--no-bag", action="store_true", help="do not write the output bag")
    parser.add_argument("--no-plots", action="store_true", help="do not draw the timeline/latency plots")
    rec = parser.add_argument_group(
        "recogniser (default: the settings stored in the bundle, i.e. what the robot runs; these override)"
    )
    rec.add_argument("--window", type=int, default=None, help="frames per window at the bundle's fps")
    rec.add_argument("--stride", type=int, default=None, help="frames between windows")
    rec.add_argument(
        "--threshold",
        "--score-threshold",
        dest="threshold",
        type=float,
        default=None,
        help="score below which a window is reported as unknown",
    )
    rec.add_argument(
        "--segment-weight",
        type=float,
        default=None,
        help="share of the bundle's segment classifier in a running segment's label (0: the dense model's)",
    )
    rec.add_argument(
        "--latency-frames",
        type=int,
        default=None,
        help="dense bundles: the settled record labels frame t with the answer for frame t + this (<= lag)",
    )
    rec.add_argument(
        "--edge-background",
        type=float,
        default=None,
        help="dense bundles, segments: action frames with no_action above this neither start nor end a "
        "segment (1: off)",
    )
    rec.add_argument(
        "--background-bias",
        type=float,
        default=None,
        help="dense bundles: added to no_action's log-probability (> 0: more no_action, < 0: fewer)",
    )
    rec.add_argument("--smoothing", choices=("none", "ema", "majority"), default=None)
    rec.add_argument("--smoothing-alpha", type=float, default=None, help="ema weight of the newest window")
    rec.add_argument("--smoothing-window", type=int, default=None, help="windows a majority vote spans")
    rec.add_argument("--max-persons", type=int, default=None)
    rec.add_argument("--track-timeout", type=float, default=None, help="seconds")
    rec.add_argument("--device", default=None, help="torch device (default cpu)")
    rec.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default=None)
    rec.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for torch (default: torch's; 1 is fastest on a busy machine)",
    )
    ev = parser.add_argument_group("evaluation")
    ev.add_argument(
        "--max-age",
        type=float,
        default=None,
        help="seconds a recognition labels later frames (default: the bundle's window length)",
    )
    ev.add_argument("--iou", type=float, default=0.5, help="segment IoU threshold")
    ev.add_argument(
        "--no-oracle",
        action="store_true",
        help="skip the oracle baseline (the bundle classifying each truth interval cut exactly)",
    )
    ev.add_argument("--progress", action="store_true", help="show a progress bar")


OVERRIDES = (  # flag -> RecognizerSettings field
    ("window", "window_frames"),
    ("stride", "stride_frames"),
    ("threshold", "score_threshold"),
    ("segment_weight", "segment_weight"),
    ("latency_frames", "latency_frames"),
    ("background_bias", "background_bias"),
    ("edge_background", "edge_background"),
    ("smoothing", "smoothing"),
    ("smoothing_alpha", "smoothing_alpha"),
    ("smoothing_window", "smoothing_window"),
    ("max_persons", "max_persons"),
    ("track_timeout", "track_timeout_s"),
    ("device", "device"),
    ("precision", "precision"),
)
OUTPUTS = ("report.json", "bag", "timeline.png", "latency.png")


def _settings(args: argparse.Namespace, bundle):
    """What the robot runs (the bundle's settings, interface 3), then the flags given; and the flags."""
    from masksem_core.runtime.recognizer import RecognizerSettings

    overrides = {name: getattr(args, arg) for arg, name in OVERRIDES if getattr(args, arg) is not None}
    return RecognizerSettings.from_bundle(bundle, **overrides), overrides


def _input_fps(stamps: np.ndarray, persons: np.ndarray) -> float | None:
    """The recording's frame rate: 1 / the median interval between one person's consecutive frames."""
    steps = [np.diff(np.sort(stamps[persons == p])) for p in np.unique(persons)]
    steps = np.concatenate(steps) if steps else np.zeros(0)
    steps = steps[steps > 0]
    return float(1.0 / np.median(steps)) if steps.size else None


def _existing_outputs(out: Path) -> list[str]:
    return [name for name in OUTPUTS if (out / name).exists()]


def _oracle(bundle, result, intervals, args: argparse.Namespace, frames) -> dict:
    """baselines.oracle_*: the bundle on every truth interval cut exactly (see replay/oracle.py); with a
    segment classifier also baselines.segment_oracle_* (that classifier on the same intervals)."""
    from masksem_core.replay import ground_truth, metrics, oracle

    try:
        tracks = oracle.read_tracks(result.bag, result.topic or None, args.layout, bundle.layout.name)
        _, t_idx = metrics.truth_frames(frames.stamps, frames.persons, *ground_truth.as_arrays(intervals))
        out = {}
        for segment in (False, True) if bundle.segment_model is not None else (False,):
            answers = np.empty(len(intervals), dtype=object)
            answers[:] = oracle.classify_intervals(bundle, tracks, intervals, segment=segment)
            scores = metrics.oracle_scores(frames.persons, frames.truth, t_idx, answers, args.iou)
            out.update({f"segment_{k}" if segment else k: v for k, v in scores.items()})
        return out
    except Exception as exc:  # a baseline must not cost the replay its report
        return {"oracle_error": f"{type(exc).__name__}: {exc}"}


def run(args: argparse.Namespace) -> int:
    """Replay, score, report; see the module docstring for the exit status."""
    from dataclasses import asdict

    try:
        from masksem_core.replay import engine, ground_truth, metrics, report
        from masksem_core.runtime.bundle import load_bundle
        from masksem_core.runtime.recognizer import StreamingRecognizer
    except ImportError as exc:  # e.g. rosbags missing from a hand-made install
        print(f"masksem replay: cannot import {exc.name or exc}: {exc}", file=sys.stderr)
        return EXIT_USAGE

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    bag = Path(args.bag)
    out = Path(args.out) if args.out else bag.parent / f"{bag.name}.replay"
    existing = _existing_outputs(out)
    if existing and not args.overwrite:
        print(
            f"masksem replay: {out} already holds a replay ({', '.join(existing)}); "
            "pass --overwrite to replace it, or choose another --out",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        if args.threads is not None:
            import torch

            torch.set_num_threads(max(1, args.threads))
        bundle = load_bundle(args.bundle)
        settings, overrides = _settings(args, bundle)
        intervals = ground_truth.read_intervals_csv(args.labels) if args.labels else None
        recognizer = StreamingRecognizer(bundle, settings)
        result = engine.replay_bag(
            bag, recognizer, topic=args.topic, layout=args.layout, progress=args.progress
        )
    except Exception as exc:  # nothing to report yet: say why in one line
        print(f"masksem replay: {exc}", file=sys.stderr)
        return EXIT_USAGE

    truth_error = None
    if args.label_topic:
        try:
            intervals, truth_error = ground_truth.read_label_topic(bag, args.label_topic)
        except ground_truth.GroundTruthError as exc:
            print(f"masksem replay: {exc}", file=sys.stderr)
            return EXIT_USAGE
    window_s = (settings.window_frames or bundle.window_frames) / bundle.fps
    max_age = args.max_age if args.max_age is not None else window_s
    rec_arrays = result.recognition_arrays()
    stamps = result.frame_stamps
    doc: dict = {
        "bag": str(bag),
        "topic": result.topic,
        "bundle": str(args.bundle),
        "labels": bundle.labels,
        "settings": asdict(settings),
        "settings_source": {
            "bundle": dict(bundle.meta.get("recognizer") or {}),
            "overrides": overrides,
            "window_frames": settings.window_frames or bundle.window_frames,
            "fps": bundle.fps,
        },
        "messages": result.messages,
        "frames_read": int(stamps.size),
        "persons": len(set(result.frame_persons.tolist())),
        "bag_time_s": [float(stamps.min()), float(stamps.max())] if stamps.size else None,
        "bad_messages": result.bad_message_count,
        "bad_message_examples": result.bad_messages,
        "read_error": result.read_error,
        "recognitions": len(rec_arrays[0]),
        "recognized_labels": dict(
            zip(*np.unique(rec_arrays[2].astype(str), return_counts=True), strict=True)
        ),
        "latency_ms": metrics.summary_stats(rec_arrays[3]),
        "recognizer_stats": result.recognizer_stats,
        "wall_s": result.wall_s,
        "realtime_factor": (float(np.ptp(stamps)) / result.wall_s)
        if stamps.size and result.wall_s > 0
        else None,
        "input_fps": _input_fps(stamps, result.frame_persons),  # the recogniser resamples to the bundle's
    }
    frames = None
    if intervals is not None:
        doc["ground_truth"] = {
            "source": str(args.labels or f"topic {args.label_topic}"),
            "intervals": len(intervals),
            "read_error": truth_error,
        }
        doc["metrics"], frames = metrics.evaluate(
            stamps,
            result.frame_persons,
            ground_truth.as_arrays(intervals),
            rec_arrays,
            max_age_s=max_age,
            iou_threshold=args.iou,
            grace_s=window_s,
            spans=result.recognition_spans(),
        )
        doc["baselines"] = metrics.background_baseline(frames.truth)
        if not args.no_oracle:
            doc["baselines"].update(_oracle(bundle, result, intervals, args, frames))
    out.mkdir(parents=True, exist_ok=True)
    for name in existing:  # --overwrite: the old replay goes only once the new one is ready
        path = out / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    doc["outputs"] = {}
    if not args.no_bag:
        out_bag = out / "bag"
        try:
            doc["outputs"]["bag"] = str(engine.write_output_bag(result, out_bag, storage=args.storage))
        except Exception as exc:  # the metrics are still worth writing
            doc["outputs"]["bag_error"] = f"{type(exc).__name__}: {exc}"
    if not args.no_plots:
        t0 = float(stamps.min()) if stamps.size else 0.0
        if frames is None:  # no truth: still show what was recognised when
            persons = result.frame_persons
            pred = metrics.predict_frames(stamps, persons, *rec_arrays[:3], max_age_s=max_age)
            retro = metrics.retrospective_frames(
                stamps, persons, *result.recognition_spans(), *rec_arrays[:3]
            )
            frames = metrics.FrameLabels(
                stamps, persons, np.full(stamps.size, "background", object), pred, retro
            )
        doc["outputs"]["timeline"] = str(report.plot_timeline(out / "timeline.png", frames, t0=t0))
        doc["outputs"]["latency"] = str(report.plot_latency(out / "latency.png", rec_arrays[3]))
    doc["outputs"]["report"] = str(out / "report.json")
    doc = report.json_safe(doc)
    report.write_json_atomic(out / "report.json", doc)
    print(report.format_table(doc))
    for key in ("bag", "timeline", "latency", "report"):
        if key in doc["outputs"]:
            print(f"wrote {doc['outputs'][key]}")
    if "bag_error" in doc["outputs"]:
        print(f"masksem replay: output bag not written: {doc['outputs']['bag_error']}", file=sys.stderr)
    if result.read_error or truth_error:
        print(
            f"masksem replay: bag damaged, report covers what was read: {result.read_error or truth_error}",
            file=sys.stderr,
        )
        return EXIT_DAMAGED
    return EXIT_OK
