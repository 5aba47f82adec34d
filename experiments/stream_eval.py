"""Stream metrics of a bundle on recordings stitched from a prepared data set (issue 17).

For every seed and gap model: `masksem stitch` a recording from the split's clips, `masksem replay` it
through the bundle with the bundle's own settings (what the robot runs; extra replay flags after `--`),
and collect the report. One table: causal and retrospective segment F1@0.5 and frame accuracy, causal
detection delay p50 and missed actions, the background-only floor and the offline accuracy of the same
clips (the oracle: the bundle on each clip cut exactly), mean ± sd over seeds per gap model, and every
recording's row. Every step is a plain `masksem` command (printed and logged), so any row can be rerun.

    python experiments/stream_eval.py --bundle models/nwucla_xview --data data/nw-ucla/NW-UCLA.npz \
        --out runs/stream_eval --seeds 0 1 2 --gap-models hold smooth [-- --stride 5]

Writes OUT/<gap>_s<seed>/{bag,labels.csv,stitch.json,replay/report.json,...}, OUT/table.md and
OUT/table.json. Choose settings on validation streams (`--split train` of a prepared file whose train
split is your validation view), never on the test split.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

COLUMNS = (  # (key, header, format)
    ("retro_f1", "retro F1@0.5", "{:.3f}"),
    ("retro_frame_acc", "retro frame acc", "{:.3f}"),
    ("causal_f1", "causal F1@0.5", "{:.3f}"),
    ("causal_frame_acc", "causal frame acc", "{:.3f}"),
    ("delay_p50_s", "delay p50 [s]", "{:.2f}"),
    ("missed_frac", "missed", "{:.1%}"),
    ("background_frame_acc", "background-only", "{:.3f}"),
    ("oracle_clip_acc", "offline acc (same clips)", "{:.3f}"),
    ("segment_oracle_clip_acc", "segment classifier offline acc (same clips)", "{:.3f}"),
)


def masksem(args: list[str], log: Path) -> None:
    """Run one masksem command (printed), output to `log`; a failure stops the experiment with its log."""
    cmd = [sys.executable, "-m", "masksem_core.cli", *args]
    print("$ masksem " + " ".join(shlex.quote(a) for a in args), flush=True)
    with log.open("w") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, text=True).returncode
    if rc != 0:
        sys.exit(f"masksem {args[0]} failed (exit {rc}); see {log}:\n{log.read_text()[-2000:]}")


def row_of(report: dict, stitch: dict) -> dict:
    """The table's numbers from one replay report.json and its stitch.json."""
    m, base = report["metrics"], report.get("baselines") or {}
    delay = m["detection_delay_s"]
    retro = m.get("retrospective") or {}
    return {
        "retro_f1": (retro.get("segments") or {}).get("f1"),
        "retro_frame_acc": retro.get("frame_accuracy"),
        "causal_f1": m["segments"]["f1"],
        "causal_frame_acc": m["frame_accuracy"],
        "delay_p50_s": delay["p50"],
        "missed": delay["missed"],
        "actions": delay["actions"],
        "missed_frac": delay["missed"] / delay["actions"] if delay["actions"] else None,
        "background_frame_acc": base.get("background_frame_accuracy"),
        "oracle_clip_acc": base.get("oracle_clip_accuracy"),
        "segment_oracle_clip_acc": base.get("segment_oracle_clip_accuracy"),
        "duration_s": stitch["duration_s"],
        "clips": len(stitch["clips"]),
        "settings": report["settings"],
        "window_frames": (report.get("settings_source") or {}).get("window_frames"),
        "fps": (report.get("settings_source") or {}).get("fps"),
    }


def _cell(value, fmt: str) -> str:
    return "-" if value is None or not np.isfinite(value) else fmt.format(value)


def _mean_sd(values: list, fmt: str) -> str:
    v = np.array([x for x in values if x is not None], dtype=np.float64)
    if v.size == 0:
        return "-"
    return fmt.format(v.mean()) + (f" ± {fmt.format(v.std(ddof=1))}" if v.size > 1 else "")


def table(rows: dict[str, dict], gap_models: list[str]) -> str:
    """Markdown: one summary line per gap model (mean ± sd over seeds), then one line per recording."""
    head = "| recordings | " + " | ".join(h for _, h, _ in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    for gap in gap_models:
        sel = [r for name, r in rows.items() if name.startswith(f"{gap}_")]
        cells = [_mean_sd([r[k] for r in sel], fmt) for k, _, fmt in COLUMNS]
        lines.append(f"| **{gap}**, {len(sel)} seeds | " + " | ".join(cells) + " |")
    for name, r in rows.items():
        cells = [_cell(r[k], fmt) for k, _, fmt in COLUMNS]
        lines.append(f"| {name} ({r['clips']} clips, {r['duration_s']:.0f} s) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True, help="prepared data set (.npz + sidecar)")
    p.add_argument("--split", choices=("train", "test"), default="test")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--gap-models", nargs="+", default=["hold", "smooth"])
    p.add_argument("--clips", type=int, default=50)
    p.add_argument("--min-frames", type=int, default=10)
    p.add_argument("--gap-s", type=float, nargs=2, default=[1.0, 3.0])
    p.add_argument("--fps", type=float, default=None, help="only for a sidecar without fps")
    p.add_argument("--threads", type=int, default=1, help="torch threads of each replay")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict] = {}
    t0 = time.time()
    for gap in args.gap_models:
        for seed in args.seeds:
            name = f"{gap}_s{seed}"
            rec = args.out / name
            stitch = ["stitch", str(args.data), "--split", args.split, "--out", str(rec), "--seed", str(seed)]
            stitch += ["--clips", str(args.clips), "--min-frames", str(args.min_frames), "--gap-model", gap]
            stitch += ["--gap-s", *(str(g) for g in args.gap_s), "--overwrite"]
            stitch += ["--fps", str(args.fps)] if args.fps else []
            masksem(stitch, args.out / f"{name}.stitch.log")
            replay = [
                "replay",
                str(rec / "bag"),
                "--bundle",
                str(args.bundle),
                "--labels",
                str(rec / "labels.csv"),
            ]
            replay += ["--out", str(rec / "replay"), "--overwrite", "--threads", str(args.threads), *extra]
            masksem(replay, args.out / f"{name}.replay.log")
            report = json.loads((rec / "replay" / "report.json").read_text())
            rows[name] = row_of(report, json.loads((rec / "stitch.json").read_text()))
    text = table(rows, args.gap_models)
    first = next(iter(rows.values())) if rows else {"settings": {}}
    settings = {**first["settings"], "window_frames": first.get("window_frames")}
    header = (
        f"bundle {args.bundle}, data {args.data} ({args.split} split), {args.clips} clips of >= "
        f"{args.min_frames} frames per recording, gaps {args.gap_s[0]:g}-{args.gap_s[1]:g} s, "
        f"seeds {args.seeds}, replay flags {extra or 'none (the bundle settings)'}; "
        f"window {settings.get('window_frames')} frames at {first.get('fps')} fps, stride "
        f"{settings.get('stride_frames')}, threshold {settings.get('score_threshold')}, "
        f"smoothing {settings.get('smoothing')}"
    )
    (args.out / "table.md").write_text(header + "\n\n" + text + "\n")
    (args.out / "table.json").write_text(json.dumps({"header": header, "rows": rows}, indent=1))
    print(header + "\n\n" + text)
    print(f"\n{len(rows)} recordings in {time.time() - t0:.0f} s; wrote {args.out / 'table.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
