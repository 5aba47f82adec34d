"""Replay report: a printed table, an atomic `report.json`, a truth-vs-recognised timeline and a latency
histogram. Plots use matplotlib's object API (no pyplot, no display), so they work on headless robots.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from masksem_core.fileio import file_mode
from masksem_core.replay.metrics import FrameLabels, is_background, runs


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """Write JSON through a temp file in the same directory + os.replace: never a half-written report."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=2, sort_keys=False, allow_nan=False, default=_json_default)
            fh.write("\n")
        os.chmod(tmp, file_mode())  # mkstemp makes it private; a report is for sharing
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_safe(obj: Any) -> Any:
    """Replace NaN/inf by None recursively (JSON has no NaN; a reader should see 'no value')."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _fmt(value: Any, unit: str = "", digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def format_table(report: dict) -> str:
    """Human-readable summary of a report dict (as written to report.json)."""
    rows: list[tuple[str, str]] = [
        ("bag", str(report.get("bag", "-"))),
        ("frames read / persons", f"{report.get('frames_read', '-')} / {report.get('persons', '-')}"),
        ("recognitions", _fmt(report.get("recognitions"))),
    ]
    src = report.get("settings_source") or {}
    if report.get("input_fps") and src.get("fps"):
        rows.append(("input / bundle fps", f"{report['input_fps']:.1f} / {src['fps']:g}"))
    if report.get("read_error"):
        rows.append(("READ ERROR", str(report["read_error"])))
    m = report.get("metrics")
    if m:
        seg, delay, lat = m["segments"], m["detection_delay_s"], m["latency_ms"]
        rows += [
            ("causal frame accuracy", _fmt(m["frame_accuracy"])),
            _segment_row("causal", seg),
        ]
        retro = m.get("retrospective")
        if retro:
            rows += [
                ("retrospective frame accuracy", _fmt(retro["frame_accuracy"])),
                _segment_row("retrospective", retro["segments"]),
            ]
        base = report.get("baselines") or {}
        if "background_frame_accuracy" in base:
            rows.append(("background-only frame accuracy", _fmt(base["background_frame_accuracy"])))
        if "oracle_clip_accuracy" in base:
            rows.append(
                (
                    "oracle (intervals cut exactly)",
                    f"clip accuracy {_fmt(base['oracle_clip_accuracy'])} of {base['oracle_clips']}, "
                    f"frame accuracy {_fmt(base['oracle_frame_accuracy'])}, "
                    f"F1 {_fmt(base['oracle_segments_f1'])}",
                )
            )
        elif "oracle_error" in base:
            rows.append(("oracle", f"not computed: {base['oracle_error']}"))
        if "segment_oracle_clip_accuracy" in base:
            rows.append(
                (
                    "oracle, segment classifier",
                    f"clip accuracy {_fmt(base['segment_oracle_clip_accuracy'])}, "
                    f"F1 {_fmt(base['segment_oracle_segments_f1'])}",
                )
            )
        rows += [
            (
                "detection delay mean / p50 / p90",
                f"{_fmt(delay['mean'], ' s')} / {_fmt(delay['p50'], ' s')} / {_fmt(delay['p90'], ' s')}"
                f"  (missed {delay['missed']} of {delay['actions']})",
            ),
            (
                "latency p50 / p99 / max",
                f"{_fmt(lat['p50'], ' ms', 1)} / {_fmt(lat['p99'], ' ms', 1)} / {_fmt(lat['max'], ' ms', 1)}",
            ),
        ]
        for label, pc in m["per_class_frame_accuracy"].items():
            rows.append((f"  accuracy {label}", f"{_fmt(pc['accuracy'])}  ({pc['frames']} frames)"))
    else:
        lat = report.get("latency_ms") or {}
        rows.append(
            ("latency p50 / p99", f"{_fmt(lat.get('p50'), ' ms', 1)} / {_fmt(lat.get('p99'), ' ms', 1)}")
        )
        rows.append(("metrics", "no ground truth given"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def _segment_row(kind: str, seg: dict) -> tuple[str, str]:
    return (
        f"{kind} segments @IoU {seg['iou']:.2f} P / R / F1",
        f"{_fmt(seg['precision'])} / {_fmt(seg['recall'])} / {_fmt(seg['f1'])}"
        f"  (tp {seg['tp']}, fp {seg['fp']}, fn {seg['fn']})",
    )


def label_colours(labels: list[str]) -> dict[str, Any]:
    """A distinct colour per label: tab10, then tab20's lighter shades (20), then evenly spaced hues."""
    from matplotlib import colormaps

    if len(labels) <= 10:
        colours = [colormaps["tab10"](k) for k in range(len(labels))]
    elif len(labels) <= 20:
        tab20 = colormaps["tab20"]
        colours = [tab20(2 * k) for k in range(10)] + [tab20(2 * k + 1) for k in range(10)]
    else:
        hsv = colormaps["hsv"]
        colours = [hsv(k / len(labels)) for k in range(len(labels))]
    return dict(zip(labels, colours, strict=False))


def _savefig_atomic(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=100)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a report is for sharing
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def plot_timeline(path: str | Path, frames: FrameLabels, t0: float = 0.0) -> Path:
    """Bars per person (truth, causal, and retrospective when known), one colour per label (distinct for
    any number of labels), background blank, legend beside the plot in as many columns as it needs."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    persons = list(dict.fromkeys(frames.persons.tolist()))
    rows = [("truth", frames.truth), ("causal", frames.pred)]
    if frames.retro is not None:
        rows.append(("retrospective", frames.retro))
    every = np.concatenate([lab for _, lab in rows])
    labels = sorted({str(x) for x in every if not is_background([x])[0]})
    cmap = label_colours(labels)
    per_col = 12
    ncol = max(1, -(-len(labels) // per_col))
    height = max(1.0 + 0.3 * len(rows) * max(1, len(persons)), 0.8 + 0.22 * min(len(labels), per_col))
    fig = Figure(figsize=(12 + 2.2 * (ncol - 1), height), layout="constrained")
    ax = fig.add_subplot()
    dt = float(np.median(np.diff(frames.stamps))) if frames.stamps.size > 1 else 0.1
    dt = dt if math.isfinite(dt) and dt > 0 else 0.1
    yticks, ylabels = [], []
    for row, person in enumerate(persons):
        idx = np.flatnonzero(frames.persons == person)
        t = frames.stamps[idx] - t0
        for k, (name, lab_all) in enumerate(rows):
            lab = lab_all[idx]
            y = row * (len(rows) + 1) + (len(rows) - 1 - k)
            yticks.append(y + 0.4)
            ylabels.append(f"{person} {name}")
            bg = is_background(lab)
            for a, b in runs(lab):
                if not bg[a]:
                    ax.broken_barh([(t[a], t[b - 1] - t[a] + dt)], (y, 0.8), color=cmap[str(lab[a])])
    ax.set_yticks(yticks, ylabels)
    ax.set_xlabel("bag time [s]" + (f" from {t0:.3f}" if t0 else ""))
    if frames.stamps.size:
        ax.set_xlim(frames.stamps.min() - t0, frames.stamps.max() - t0 + dt)

    handles = [Patch(color=c, label=lab) for lab, c in cmap.items()]
    if handles:
        ax.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(1.0, 1.0),
            fontsize="small",
            ncol=ncol,
            frameon=False,
            title="action",
            title_fontsize="small",
        )
    ax.set_title("ground truth vs recognised actions")
    return _savefig_atomic(fig, Path(path))


def plot_latency(path: str | Path, latencies_ms: np.ndarray, title: str | None = None) -> Path:
    """Histogram of per-recognition latency with p50/p99 marked."""
    from matplotlib.figure import Figure

    lat = np.asarray(latencies_ms, dtype=np.float64)
    lat = lat[np.isfinite(lat)]
    fig = Figure(figsize=(6, 3.5), layout="constrained")
    ax = fig.add_subplot()
    if lat.size:
        ax.hist(lat, bins=min(50, max(5, lat.size // 4)), color="C0")
        for q, style in ((50, "--"), (99, ":")):
            v = float(np.percentile(lat, q))
            ax.axvline(v, color="k", linestyle=style, label=f"p{q} {v:.1f} ms")
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no recognitions", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("latency [ms]")
    ax.set_ylabel("recognitions")
    if title:
        ax.set_title(title)
    return _savefig_atomic(fig, Path(path))
