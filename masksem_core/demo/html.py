"""One self-contained HTML page for the demo report: pictures inlined as base64, numbers in tables.

Self-contained so it can be mailed or attached to an issue as a single file and still show everything.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from masksem_core.data.arrays import atomic_write_bytes

FIGURES = (
    (
        "loss_curves.png",
        "Pre-training loss",
        "Masked motion prediction loss per epoch (hybrid of "
        "velocity and acceleration targets, masked tokens only).",
    ),
    (
        "masks.png",
        "Masks on a skeleton",
        "The same test clip masked by the three strategies. Left: the "
        "sampling weights; middle: how often each token is masked over 200 draws; right: one drawn mask on "
        "the frames with the most motion (red masked, green visible).",
    ),
    (
        "mask_stats.png",
        "Mask statistics",
        "Whether masks fall on the tokens that matter: CAM and motion "
        "of masked vs kept tokens, and where the visible tokens are.",
    ),
    (
        "confusion.png",
        "Linear probe confusion matrix",
        "Frozen encoder + linear layer, test clips of performers never seen in training (rows: truth).",
    ),
    (
        "timeline.png",
        "Continuous recording",
        "Ground truth (top bar), the streaming recogniser's labels from their stamps (causal) and on the "
        "spans they reported (retrospective), per tracked person, on the recording's clock; idle, "
        "no_action and background left blank.",
    ),
    ("latency.png", "Recogniser latency", "Time from a window being due to its recognition, per window."),
)


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(path.name)}">'


def _num(value: Any, fmt: str = "{:.3f}") -> str:
    return "-" if value is None else fmt.format(value)


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render(summary: dict[str, Any], report_dir: Path) -> str:
    """The page as a string (figures read from `report_dir`)."""
    s = summary
    variants = _table(
        [
            "variant",
            "masking",
            "probe top-1",
            "probe top-5",
            "kNN top-1",
            "random-init encoder, same probe",
            "final loss",
            "pre-train s",
        ],
        [
            [
                name + (" (bundle)" if name == s["best"] else ""),
                v["strategy"],
                _num(v["probe_top1"], "{:.1f}%"),
                _num(v["probe_top5"], "{:.1f}%"),
                _num(v["knn_top1"], "{:.1f}%"),
                _num(v.get("random_init_probe_top1"), "{:.1f}%"),
                _num(v["final_loss"]),
                _num(v["pretrain_wall_s"], "{:.0f}"),
            ]
            for name, v in s["variants"].items()
        ],
    )
    r, floors, rec = s["replay"], s.get("baselines") or {}, s["recognizer"]
    seg, lat, delay = r["segments"], r["latency_ms"], r["detection_delay_s"]
    retro = r.get("retrospective_segments") or {}

    def segments(x: dict[str, Any]) -> str:
        if not x:
            return "-"
        return (
            f"{_num(x.get('precision'))} / {_num(x.get('recall'))} / {_num(x.get('f1'))} "
            f"(tp {x.get('tp')}, fp {x.get('fp')}, fn {x.get('fn')})"
        )

    replay = _table(
        ["scoring", f"segment P / R / F1 @IoU {seg['iou']}", "frame accuracy", "detection delay p50"],
        [
            [
                "causal (a label counts from its stamp: what the robot knew when)",
                segments(seg),
                _num(r["frame_accuracy"]),
                f"{_num(delay['p50'], '{:.2f} s')} (missed {delay['missed']} of {delay['actions']})",
            ],
            [
                "retrospective (a label counts on the span its recognition reported)",
                segments(retro),
                _num(r.get("retrospective_frame_accuracy")),
                "-",
            ],
            [
                "background-only (no action on every frame)",
                "0",
                _num(floors.get("background_frame_accuracy")),
                "-",
            ],
            [
                "oracle (the bundle on each truth interval cut exactly)",
                _num(floors.get("oracle_segments_f1")),
                "-",
                f"clip accuracy {_num(floors.get('oracle_clip_accuracy'))}",
            ],
        ],
    )
    stream = _table(
        [
            "offline clip top-1 (test performers, same classes)",
            "stream fine-tune epochs",
            "window",
            "stride / lag",
            "threshold",
            "smoothing",
            "chosen on",
            "latency p50 / p99",
            "recognitions",
            "real-time factor",
        ],
        [
            [
                _num(floors.get("offline_top1"), "{:.1f}%"),
                str(s["stream_model"]["epochs"]),
                f"{(r.get('settings') or {}).get('window_frames', '-')} frames",
                f"{rec['stride_frames']} / {rec['lag_frames']} frames",
                str(rec["score_threshold"]),
                str(rec["smoothing"]),
                rec["chosen_on"],
                f"{_num(lat['p50'], '{:.1f}')} / {_num(lat['p99'], '{:.1f}')} ms",
                str(r["recognitions"]),
                _num(r["realtime_factor"], "{:.1f}x"),
            ]
        ],
    )
    masks = s["masks"]
    mask_rows = [
        [
            name,
            _num(m["mask_ratio"]),
            _num(m["cam_masked"]),
            _num(m["cam_kept"]),
            _num(m["motion_masked"], "{:.4f}"),
            _num(m["motion_kept"], "{:.4f}"),
        ]
        for name, m in masks.items()
        if isinstance(m, dict) and "cam_masked" in m
    ]
    mask_table = _table(
        ["strategy", "mask ratio", "CAM masked", "CAM kept", "motion masked", "motion kept"], mask_rows
    )
    d, b = s["data"], s["settings"]["budget"]
    timings = _table(["step", "seconds"], [[k, f"{v:.1f}"] for k, v in s["timings_s"].items()])
    figures = "".join(
        f"<section><h2>{html.escape(title)}</h2><p>{html.escape(text)}</p>{_img(report_dir / name)}</section>"
        for name, title, text in FIGURES
        if (report_dir / name).exists()
    )
    best = s["variants"][s["best"]]
    headline = (
        f"stream segment F1@{seg['iou']} {_num(retro.get('f1'))} retrospective / {seg['f1']:.3f} causal, "
        f"frame accuracy {_num(r.get('retrospective_frame_accuracy'))} / {r['frame_accuracy']:.3f} "
        f"(background-only {_num(floors.get('background_frame_accuracy'))}; offline clip top-1 of the same "
        f"classes {_num(floors.get('offline_top1'), '{:.1f}%')}); {s['best']} linear probe top-1 "
        f"{best['probe_top1']:.1f}% (random-init encoder, same probe: "
        f"{_num(floors.get('random_init_probe_top1'), '{:.1f}%')}; chance {s['chance_top1']:.1f}%)"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>MaskSem demo report</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1500px; margin: 2em auto; padding: 0 1em; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 4px 10px; text-align: left; }}
th {{ background: #f3f3f3; }}
img {{ max-width: 100%; border: 1px solid #eee; }}
.headline {{ font-size: 1.2em; background: #eef6ee; padding: 0.6em 1em; border-left: 4px solid #2ca02c; }}
</style></head><body>
<h1>MaskSem demo: human-robot collaboration actions from 3D skeletons</h1>
<p class="headline">{html.escape(headline)}</p>
<p>Built-in synthetic set: {len(d["classes"])} actions ({html.escape(", ".join(d["classes"]))}),
{d["train_clips"]} training and {d["test_clips"]} test clips (test performers unseen), NTU 25-joint layout,
2 person slots. Self-supervised pre-training for {b["epochs"]} epochs per variant, then a linear probe on
the frozen encoder. The best variant's encoder was fine-tuned for {b["stream_epochs"]} epochs on stream-like
windows with a no-action class and a label per temporal token; the recogniser settings were chosen on
validation streams stitched from held-out training performers; the bundle carrying them replayed a
{d["recording_s"]:.0f} s recording with {d["recording_actions"]} actions (new performers) from a rosbag2
(mcap) bag, with the bundle's own settings.
Seed {s["settings"]["seed"]}, device {html.escape(s["settings"]["device"])}
{"(quick run)" if s["settings"]["quick"] else ""}.</p>
<h2>Recognition of clips (linear probe)</h2>{variants}
<h2>Recognition of the continuous recording (bundle's settings)</h2>{replay}
<h2>Stream model and recogniser settings</h2>{stream}
<h2>Where the masks fall (test clips, CAM from the MaskSem teacher)</h2>{mask_table}
{figures}
<h2>Time per step</h2>{timings}
</body></html>
"""


def write_page(path: str | Path, summary: dict[str, Any]) -> Path:
    """Write index.html next to the figures, atomically."""
    path = Path(path)
    atomic_write_bytes(path, render(summary, path.parent).encode("utf-8"))
    return path
