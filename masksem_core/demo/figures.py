"""The demo report's pictures: loss curves, masks on skeletons, mask statistics, confusion matrix,
recording timeline and latency histogram. Matplotlib's object API only (no pyplot state, no display),
every file written atomically. The timeline is rebuilt from the replay's bags with the replay's own
metric code, so it shows exactly what report.json scored.
"""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from masksem_core.layouts import PART_NAMES, SkeletonLayout

if TYPE_CHECKING:
    from masksem_core.demo.masks import ClipMasks
    from masksem_core.demo.pipeline import DemoPaths

REPORT_FILES = (
    "loss_curves.png",
    "masks.png",
    "mask_stats.png",
    "confusion.png",
    "timeline.png",
    "latency.png",
)
STRATEGY_TITLES = {
    "semantic": "semantic-guided (MaskSem)",
    "motion": "motion-aware (MAMP)",
    "random": "random (MAE)",
}
COLOURS = {"masksem": "C3", "mamp": "C0", "random": "C7", "semantic": "C3", "motion": "C0"}


def save_figure(fig: Any, path: str | Path, dpi: int = 110) -> Path:
    """Render to a temp file in the same folder, then rename: a report never holds half a PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a report is for sharing
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_log(path: str | Path) -> dict[str, np.ndarray]:
    """A training log.csv as columns of floats (empty cells are NaN)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise ValueError(f"{path}: no epochs logged")
    return {k: np.array([float(r[k]) if r[k] not in ("", None) else np.nan for r in rows]) for k in rows[0]}


# ------------------------------------------------------------------------------------------ training
def plot_loss_curves(path: str | Path, logs: dict[str, dict[str, np.ndarray]]) -> Path:
    """Pre-training loss per epoch of every variant (velocity and acceleration parts dashed/dotted)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    for name, log in logs.items():
        c = COLOURS.get(name, None)
        ax.plot(log["epoch"], log["loss"], "-o", color=c, ms=3, label=f"{name} (hybrid loss)")
        if "loss_vel" in log and len(logs) == 1:
            ax.plot(log["epoch"], log["loss_vel"], "--", color=c, alpha=0.6, label=f"{name} velocity")
            ax.plot(log["epoch"], log["loss_acc"], ":", color=c, alpha=0.6, label=f"{name} acceleration")
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("masked-token MSE (normalised targets)")
    ax.set_title("pre-training: masked motion prediction loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return save_figure(fig, path)


def plot_mask_stats(path: str | Path, logs: dict[str, dict[str, np.ndarray]], stats: dict[str, Any]) -> Path:
    """Left: MaskSem's CAM of masked vs kept tokens per epoch. Middle: mean CAM and motion of masked vs
    kept tokens per strategy on test clips. Right: share of the visible tokens per body part."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 4.2), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3)
    sem = logs.get("masksem")
    if sem is not None and "cam_masked" in sem:
        ax1.plot(sem["epoch"], sem["cam_masked"], "-o", color="C3", ms=3, label="masked tokens")
        ax1.plot(sem["epoch"], sem["cam_kept"], "-o", color="C2", ms=3, label="kept (visible) tokens")
        ax1.set_ylim(0, max(1e-3, float(np.nanmax([sem["cam_masked"], sem["cam_kept"]]))) * 1.15)
    ax1.set_xlabel("epoch")
    ax1.xaxis.get_major_locator().set_params(integer=True)
    ax1.set_ylabel("mean CAM weight")
    ax1.set_title("MaskSem during pre-training: CAM under the mask")
    ax1.legend(fontsize="small")
    ax1.grid(alpha=0.3)

    names = [s for s in STRATEGY_TITLES if s in stats]
    x = np.arange(len(names))
    for k, (key, label) in enumerate((("cam", "CAM"), ("motion", "motion"))):
        ratio = [stats[s][f"{key}_masked"] / max(stats[s][f"{key}_kept"], 1e-12) for s in names]
        ax2.bar(x + (k - 0.5) * 0.4, ratio, 0.38, color=("C3", "C0")[k], label=f"{label}: masked / kept")
        for xi, r in zip(x, ratio):
            ax2.text(xi + (k - 0.5) * 0.4, r, f"{r:.2f}", ha="center", va="bottom", fontsize=8)
    ax2.axhline(1.0, color="k", lw=0.8, ls="--")
    ax2.set_xticks(x, [STRATEGY_TITLES[s] for s in names], fontsize=8)
    ax2.set_ylabel("mean over masked / mean over kept tokens")
    ax2.set_title("what each strategy hides (test clips, MaskSem teacher)")
    ax2.legend(fontsize="small")

    share = stats.get("token_share_by_part", {})
    width = 0.8 / (len(names) + 1)
    parts = list(PART_NAMES)
    px = np.arange(len(parts))
    ax3.bar(px - 0.4 + width / 2, [share.get(p, 0) for p in parts], width, color="0.8", label="all tokens")
    for k, s in enumerate(names):
        vals = [stats[s]["kept_share_by_part"][p] for p in parts]
        ax3.bar(px - 0.4 + (k + 1.5) * width, vals, width, color=COLOURS[s], label=f"kept: {s}")
    ax3.set_xticks(px, [p.replace("_", " ") for p in parts], fontsize=8)
    ax3.set_ylabel("share of the visible tokens")
    ax3.set_title("where the 10% visible tokens are")
    ax3.legend(fontsize="small")
    return save_figure(fig, path)


# ------------------------------------------------------------------------------------------ masks
def _skeleton(ax: Any, joints: np.ndarray, layout: SkeletonLayout, masked: np.ndarray, title: str) -> None:
    """Front view (x right, y up) of one frame; masked joints red, visible joints green."""
    for child, parent in layout.bones:
        ax.plot(joints[[child, parent], 0], joints[[child, parent], 1], color="0.55", lw=1.6, zorder=1)
    colour = np.where(masked, "#d62728", "#2ca02c")
    ax.scatter(
        joints[:, 0],
        joints[:, 1],
        c=colour,
        s=np.where(masked, 22, 55),
        zorder=2,
        edgecolors="k",
        linewidths=0.4,
    )
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=8)


def _joint_order(layout: SkeletonLayout) -> tuple[list[int], list[tuple[float, str]]]:
    """Joints grouped by body part (rows of the token grids) and the group label positions."""
    order, ticks = [], []
    for name, part in zip(PART_NAMES, layout.parts):
        ticks.append((len(order) + (len(part) - 1) / 2, name.replace("_", " ")))
        order.extend(part)
    return order, ticks


def _part_lines(ax: Any, layout: SkeletonLayout) -> None:
    edges = np.cumsum([len(p) for p in layout.parts])[:-1] - 0.5
    for e in edges:
        ax.axhline(e, color="w", lw=1.2)


def plot_masks(path: str | Path, ex: ClipMasks, layout: SkeletonLayout, frames: int = 3) -> Path:
    """One row per strategy for the same clip: its sampling weights and masking frequency as
    joint x segment grids, then one drawn mask on skeleton frames (red: masked, green: visible)."""
    from matplotlib.figure import Figure

    names = list(STRATEGY_TITLES)
    fig = Figure(figsize=(8.5 + 1.9 * frames, 3.2 * len(names)), layout="constrained")
    grid = fig.add_gridspec(len(names), 2 + frames, width_ratios=[1.5, 1.5] + [0.75] * frames)
    order, ticks = _joint_order(layout)
    segments = ex.frequency[names[0]].shape[0]
    motion = np.abs(np.diff(ex.clip, axis=1)).sum(axis=(0, 2))  # (T-1,) whole-body motion
    seg_motion = np.add.reduceat(np.r_[motion, 0], np.arange(0, ex.clip.shape[1], ex.patch_len))
    picks = np.sort(np.argsort(seg_motion)[-frames:]) if frames < segments else np.arange(segments)
    lo = min(float(ex.frequency[n].min()) for n in names)
    for r, name in enumerate(names):
        w = ex.weights[name]
        ax = fig.add_subplot(grid[r, 0])
        ax.imshow(w[:, order].T / max(float(w.max()), 1e-12), aspect="auto", cmap="viridis", vmin=0, vmax=1)
        ax.set_yticks([t for t, _ in ticks], [n for _, n in ticks], fontsize=7)
        ax.set_xlabel("segment (4 frames)", fontsize=7)
        ax.set_title(
            {"semantic": "teacher CAM weights", "motion": "token motion", "random": "uniform"}[name],
            fontsize=8,
        )
        ax.set_ylabel(STRATEGY_TITLES[name], fontsize=9, fontweight="bold")
        _part_lines(ax, layout)
        ax = fig.add_subplot(grid[r, 1])
        im = ax.imshow(ex.frequency[name][:, order].T, aspect="auto", cmap="Reds", vmin=min(lo, 0.9), vmax=1)
        ax.set_yticks([t for t, _ in ticks], [])
        ax.set_xlabel("segment (4 frames)", fontsize=7)
        ax.set_title("P(masked), 200 draws", fontsize=8)
        _part_lines(ax, layout)
        if r == len(names) - 1:
            fig.colorbar(im, ax=ax, fraction=0.05, label="P(masked)")
        for c, s in enumerate(picks):
            t = min(int(s) * ex.patch_len + ex.patch_len // 2, ex.clip.shape[1] - 1)
            ax = fig.add_subplot(grid[r, 2 + c])
            visible = int((~ex.drawn[name][s].astype(bool)).sum())
            _skeleton(
                ax,
                ex.clip[:, t].T,
                layout,
                ex.drawn[name][s].astype(bool),
                f"frame {t}: {visible} of {layout.num_joints} joints visible",
            )
    fig.suptitle(f"the same '{ex.label}' test clip masked three ways (90% of tokens hidden)", fontsize=11)
    return save_figure(fig, path)


# ------------------------------------------------------------------------------------------ recording
def recognitions(actions_bag: Path) -> list[Any]:
    """Every recognised action (ActionRecord) the replay wrote to its output bag."""
    from masksem_core.rosmsg.bag_io import iter_action_frames

    return [r for _, rs in iter_action_frames(actions_bag) for r in rs]


def replay_frames(
    bag: Path, actions_bag: Path, truth_csv: Path, max_age_s: float, iou: float
) -> tuple[dict, Any]:
    """Per-frame truth and recognised labels of a replay, rebuilt from its bags and truth CSV with the
    replay's own metric code (so the picture shows exactly what report.json scored)."""
    from masksem_core.replay import ground_truth, metrics
    from masksem_core.rosmsg.bag_io import iter_skeleton_frames

    stamps, persons = [], []
    for frame in iter_skeleton_frames(bag):
        for pid in frame.persons:
            stamps.append(frame.stamp)
            persons.append(str(pid))
    recs = recognitions(actions_bag)
    rec_arrays = (
        np.array([r.stamp for r in recs], dtype=np.float64),
        np.array([str(r.person_id) for r in recs], dtype=object),
        np.array([r.label for r in recs], dtype=object),
        np.array([r.latency_ms for r in recs], dtype=np.float64),
    )
    spans = (
        np.array([r.window_start for r in recs], dtype=np.float64),
        np.array([r.window_end for r in recs], dtype=np.float64),
    )
    truth = ground_truth.as_arrays(ground_truth.read_intervals_csv(truth_csv))
    # replay's defaults: a label lives (and an action may be detected) up to one window after it
    return metrics.evaluate(
        np.asarray(stamps), np.asarray(persons, dtype=object), truth, rec_arrays, max_age_s, iou,
        grace_s=max_age_s, spans=spans,
    )  # fmt: skip


def plot_timeline(path: str | Path, frames: Any, labels: list[str], title: str) -> Path:
    """Truth above recognised (causal: from each label's stamp; retrospective: on the span each
    recognition reported), per person, one colour per action (23 colours, no greys: the 16 built-in
    actions stay distinguishable); background, idle, no_action and 'unknown' are left blank."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from masksem_core.replay.metrics import is_background, runs

    palette = [colormaps["tab20"](i) for i in range(20) if i not in (14, 15)]  # no greys
    palette += [colormaps["tab20b"](i) for i in (0, 4, 8, 12, 16)]
    colour = {lab: palette[k % len(palette)] for k, lab in enumerate(labels)}
    people = sorted(set(frames.persons.tolist()), key=lambda p: (len(p), p))
    rows = [("truth", frames.truth), ("causal", frames.pred)]
    if frames.retro is not None:
        rows.append(("retrospective", frames.retro))
    fig = Figure(figsize=(14, 1.2 + 0.4 * (len(rows) + 1) * len(people)), layout="constrained")
    ax = fig.add_subplot()
    t0 = float(frames.stamps.min()) if frames.stamps.size else 0.0
    dt = 1.0 / 30.0
    shown: set[str] = set()
    yticks, ylabels = [], []
    for row, person in enumerate(people):
        idx = np.flatnonzero(frames.persons == person)
        t = frames.stamps[idx] - t0
        for k, (name, every) in enumerate(rows):
            lab = every[idx]
            y = (len(people) - 1 - row) * (len(rows) + 1) + (len(rows) - 1 - k)
            yticks.append(y + 0.4)
            ylabels.append(f"person {person} {name}")
            bg = is_background(lab)
            for a, b in runs(lab):
                if bg[a]:
                    continue
                gap = t[a:b]
                # a person who leaves and comes back: split the run at holes in their frames
                cuts = np.flatnonzero(np.diff(gap) > 0.5) + 1
                for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(gap)]):
                    c = colour.get(str(lab[a]), "0.5")
                    ax.broken_barh(
                        [(gap[lo], gap[hi - 1] - gap[lo] + dt)],
                        (y, 0.8),
                        color=c,
                        edgecolor="k" if k == 0 else "none",
                        linewidth=0.4,
                    )
                shown.add(str(lab[a]))
    ax.set_yticks(yticks, ylabels)
    ax.set_xlabel("recording time [s]")
    ax.grid(axis="x", alpha=0.3)
    handles = [Patch(color=colour[lab], label=lab) for lab in labels if lab in shown]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    ax.set_title(title)
    return save_figure(fig, path)


def plot_latency(path: str | Path, latencies_ms: np.ndarray, window_s: float) -> Path:
    """The replay's latency histogram, titled with the window length."""
    from masksem_core.replay.report import plot_latency as replay_latency

    count = int(np.isfinite(np.asarray(latencies_ms, dtype=np.float64)).sum())
    return replay_latency(
        path, latencies_ms, f"streaming recogniser latency ({count} windows of {window_s:.1f} s)"
    )


# ------------------------------------------------------------------------------------------ report
def draw_report(paths: DemoPaths, summary: dict[str, Any]) -> dict[str, Path]:
    """Every picture of the report folder (masks.png is drawn by the mask analysis before)."""
    from masksem_core.train.results import plot_confusion

    out = paths.report
    out.mkdir(parents=True, exist_ok=True)
    logs = {v: read_log(paths.pretrain(v) / "log.csv") for v in summary["variants"]}
    files = {
        "loss_curves": plot_loss_curves(out / "loss_curves.png", logs),
        "mask_stats": plot_mask_stats(out / "mask_stats.png", logs, summary["masks"]),
    }
    best = summary["best"]
    probe = paths.probe(best) / "results.json"
    from masksem_core.demo.pipeline import read_json

    res = read_json(probe)
    plot_confusion(
        res["confusion_matrix"],
        res["labels"],
        out / "confusion.png",
        f"{best} linear probe on unseen performers: top-1 {res['top1']:.1f}%",
    )
    os.chmod(out / "confusion.png", 0o644)  # the training writer leaves it private (mkstemp)
    files["confusion"] = out / "confusion.png"
    replay = read_json(paths.replay / "report.json")
    m = replay["metrics"]
    _, frames = replay_frames(
        paths.bag, paths.replay / "bag", paths.truth_csv, m["max_age_s"], m["segments"]["iou"]
    )
    files["timeline"] = plot_timeline(
        out / "timeline.png",
        frames,
        list(replay["labels"]),
        "continuous recording: truth vs streaming recogniser (segment F1@"
        f"{m['segments']['iou']:.1f} causal {m['segments']['f1']:.2f} / retrospective "
        f"{((m.get('retrospective') or {}).get('segments') or {}).get('f1', float('nan')):.2f}, "
        f"frame accuracy causal {m['frame_accuracy']:.2f})",
    )
    latencies = np.array([r.latency_ms for r in recognitions(paths.replay / "bag")], dtype=np.float64)
    files["latency"] = plot_latency(out / "latency.png", latencies, m["max_age_s"])
    files["masks"] = out / "masks.png"
    return files
