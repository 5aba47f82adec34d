"""`masksem prepare bag`: a robot's own labelled recording -> training clips.

The recording is a rosbag2 bag of the package's skeleton messages (`Skeleton3DArray`, or PointCloud2
skeletons), the labels the truth CSV that `masksem replay` reads (`start,end,label[,person_id]`, bag-clock
seconds; `masksem_core.replay.ground_truth`). Every labelled interval becomes one clip per person it
covers (an empty person id: every person seen in it), over the bag's frames in `[start, end)`; frames
where that person is not seen stay zero (unseen), NaN joints become unseen joints; `to_layout` converts
the joints with the runtime's layout adapter (for an encoder trained on another layout). With `background`,
stretches of a person that no interval covers become `no_action` clips (HELPERS interface 1), the last
class. Train/test: by time (`time:0.8`: intervals starting in the first 80 % of the recording train) or
by a `split` column of the CSV (`column`: `start,end,label,person_id,split`, split = train|test).
The output is the same npz + sidecar as every other data set, with `fps` measured from the stamps.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from masksem_core.data.centre import centre_clip_keep_unseen
from masksem_core.data.prepare import Clip, ClipStore, EmptyCorpusError, PrepareReport, write_splits
from masksem_core.layouts import get_layout

BACKGROUND_LABEL = "no_action"
MIN_FRAMES = 4  # shorter pieces (an interval the tracker barely saw) are skipped with a warning


@dataclass
class _Track:
    """One person over the whole recording: joints `(F, V, 3)` on the bag's frame timeline (zeros: unseen)."""

    joints: np.ndarray
    seen: np.ndarray  # (F,) bool


def _read_truth(labels: Path, split: str) -> tuple[list, list[str] | None]:
    """Intervals (the replay's reader) and, with `split == "column"`, each interval's split."""
    from masksem_core.replay.ground_truth import GroundTruthError, read_intervals_csv

    if split != "column":
        return read_intervals_csv(labels), None
    try:
        text = Path(labels).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GroundTruthError(f"cannot read labels file {labels}: {exc}") from None
    rows = list(csv.reader(text.splitlines()))
    header = [c.strip().lower() for c in rows[0]] if rows else []
    if "split" not in header:
        raise GroundTruthError(f"{labels}:1: --split column needs a header row with a 'split' column")
    col = header.index("split")
    splits: list[str] = []
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for line_no, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row]
        data_row = line_no > 1 and cells and any(cells) and not cells[0].startswith("#")
        if data_row:
            value = cells[col].lower() if col < len(cells) else ""
            if value not in ("train", "test"):
                raise GroundTruthError(f"{labels}:{line_no}: field 'split' is {value!r}, not train/test")
            splits.append(value)
        writer.writerow([c for i, c in enumerate(row) if i != col])
    with tempfile.TemporaryDirectory() as tmp:  # the replay's reader, on the CSV without the split column
        stripped = Path(tmp) / Path(labels).name
        stripped.write_text(buf.getvalue(), encoding="utf-8")
        try:
            intervals = read_intervals_csv(stripped)
        except GroundTruthError as exc:
            raise GroundTruthError(str(exc).replace(str(stripped), str(labels))) from None
    return intervals, splits


def _read_tracks(
    bag: Path, topic: str | None, layout: str | None, report: PrepareReport
) -> tuple[np.ndarray, dict[str, _Track], str]:
    """Frame stamps `(F,)`, every person's track, and the layout of the recording."""
    from masksem_core.rosmsg.bag_io import BagReadError, iter_skeleton_frames

    stamps: list[float] = []
    frames: list[dict] = []
    layouts: Counter = Counter()
    try:
        for frame in iter_skeleton_frames(bag, topic, layout):
            stamps.append(frame.stamp)
            frames.append(frame.persons)
            if frame.persons:
                layouts[frame.layout] += 1
    except BagReadError as exc:  # keep what was read, say so
        report.warnings.append(f"{bag}: {exc}; using the {len(frames)} frames read before it")
    if not frames:
        raise EmptyCorpusError(f"bag {bag}: no skeleton frames")
    if len(layouts) > 1:
        raise ValueError(f"bag {bag}: frames in several joint layouts {dict(layouts)}; one layout a bag")
    name = layout or (next(iter(layouts)) if layouts else "")
    if not name:
        raise ValueError(f"bag {bag}: the skeleton messages name no joint layout; give --layout")
    lay = get_layout(name)
    order = np.argsort(np.asarray(stamps), kind="stable")
    t = np.asarray(stamps, dtype=np.float64)[order]
    tracks: dict[str, _Track] = {}
    nonfinite = 0
    for row, k in enumerate(order):
        for pid, (joints, _conf) in frames[k].items():
            j = np.asarray(joints, dtype=np.float32)
            if j.shape != (lay.num_joints, 3):
                report.warnings.append(
                    f"frame at {t[row]:.3f} s: person {pid} has {j.shape}, not ({lay.num_joints}, 3)"
                )
                continue
            bad = ~np.isfinite(j).all(axis=1)
            nonfinite += int(bad.sum())
            j = np.where(bad[:, None], 0.0, j)
            if pid not in tracks:
                tracks[pid] = _Track(
                    np.zeros((len(t), lay.num_joints, 3), np.float32), np.zeros(len(t), bool)
                )
            tracks[pid].joints[row] = j
            tracks[pid].seen[row] = bool(np.any(j != 0))
    if nonfinite:
        report.warnings.append(f"{nonfinite} NaN/inf joints made unseen")
    return t, tracks, lay.name


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(text))[:40] or "_"


def _split_by_time(starts: list[float], t0: float, t1: float, fraction: float) -> list[str]:
    cut = t0 + fraction * (t1 - t0)
    return ["train" if s < cut else "test" for s in starts]


def prepare_bag(
    bag: Path,
    labels: Path,
    out: Path,
    name: str = "robot",
    topic: str | None = None,
    layout: str | None = None,
    max_frames: int = 300,
    num_persons: int = 1,
    split: str = "time:0.8",
    background: bool = False,
    classes: list[str] | None = None,
    joint_check: bool = True,
    to_layout: str | None = None,
) -> PrepareReport:
    """Cut `bag` into labelled clips per `labels` (module docstring); writes `<name>.npz` + `<name>.json`."""
    report = PrepareReport(files=1)
    intervals, csv_splits = _read_truth(Path(labels), "column" if split == "column" else "time")
    if split != "column":
        kind, _, value = split.partition(":")
        try:
            fraction = float(value)
        except ValueError:
            fraction = -1.0
        if kind != "time" or not 0.0 < fraction <= 1.0:
            raise ValueError(f"--split {split!r}: use time:FRACTION (0 < FRACTION <= 1) or column")
    t, tracks, lay_name = _read_tracks(Path(bag), topic, layout, report)
    if to_layout and to_layout != lay_name:  # e.g. the pose node's MediaPipe joints -> the encoder's layout
        from masksem_core.runtime.adapters import get_adapter

        adapter = get_adapter(lay_name, to_layout)
        for track in tracks.values():
            track.joints = np.where(track.seen[:, None, None], adapter(track.joints), 0.0).astype(np.float32)
        lay_name = to_layout
    lay = get_layout(lay_name)
    fps = float(1.0 / np.median(np.diff(t))) if len(t) > 1 and np.median(np.diff(t)) > 0 else 0.0
    names = sorted({iv.label for iv in intervals}) if classes is None else list(classes)
    unknown = sorted({iv.label for iv in intervals} - set(names))
    if unknown:
        raise ValueError(f"{labels}: label {unknown[0]!r} is not among the classes {names}")
    if background:
        names = [n for n in names if n != BACKGROUND_LABEL] + [BACKGROUND_LABEL]
    index = {n: i for i, n in enumerate(names)}
    splits = csv_splits or _split_by_time([iv.start for iv in intervals], t[0], t[-1], fraction)

    pieces: list[tuple[str, str, str, int, int, str]] = []  # (clip name, person, label, first, stop, split)
    covered = {pid: np.zeros(len(t), bool) for pid in tracks}
    for k, (iv, sp) in enumerate(zip(intervals, splits, strict=True)):
        first, stop = int(np.searchsorted(t, iv.start, "left")), int(np.searchsorted(t, iv.end, "left"))
        persons = [iv.person_id] if iv.person_id is not None else sorted(tracks)
        found = False
        for pid in persons:
            track = tracks.get(pid)
            if track is None or not track.seen[first:stop].any():
                continue
            covered[pid][first:stop] = True
            found = True
            if track.seen[first:stop].sum() < MIN_FRAMES:
                report.warnings.append(
                    f"interval {k + 1} ({iv.label}, {iv.start:.2f}-{iv.end:.2f} s): person {pid} seen in "
                    f"{int(track.seen[first:stop].sum())} frames; skipped"
                )
                continue
            pieces.append((f"{k + 1:04d}_p{_safe(pid)}_{_safe(iv.label)}", pid, iv.label, first, stop, sp))
        if not found:
            who = f"person {iv.person_id}" if iv.person_id is not None else "anybody"
            report.warnings.append(
                f"interval {k + 1} ({iv.label}, {iv.start:.2f}-{iv.end:.2f} s): {who} not seen in the bag"
            )
    if background:
        pieces += _background_pieces(t, tracks, covered, pieces, fraction if split != "column" else None)
    store = ClipStore(Path(out), max_frames, num_persons=num_persons, num_joints=lay.num_joints)
    try:
        for clip_name, pid, label, first, stop, sp in pieces:
            data = np.zeros((stop - first, num_persons, lay.num_joints, 3), np.float32)
            data[:, 0] = tracks[pid].joints[first:stop]
            others = sorted(
                (p for p in tracks if p != pid and tracks[p].seen[first:stop].any()),
                key=lambda p: -int(tracks[p].seen[first:stop].sum()),
            )
            for slot, other in enumerate(others[: num_persons - 1], start=1):
                data[:, slot] = tracks[other].joints[first:stop]
            meta = {"split": sp, "person_id": pid, "start_s": float(t[first]), "end_s": float(t[stop - 1])}
            data = centre_clip_keep_unseen(data, lay.centre_joint)
            store.add(Clip(clip_name, data, index[label], meta), report)
            report.clips += 1
        rows = {s: [i for i, m in enumerate(store.meta) if m["split"] == s] for s in ("train", "test")}
        common = {
            "dataset": name,
            "layout": lay.name,
            "labels": names,
            "centre": f"{lay.joint_names[lay.centre_joint]} of person 1 in its first non-zero frame",
            "fps": round(fps, 3),
            "source": {"bag": str(bag), "labels": str(labels), "split": split},
            "background_label": BACKGROUND_LABEL if background else None,
        }
        write_splits(
            Path(out), store, {name: (rows["train"], rows["test"])}, len(names), common, report, joint_check
        )
    finally:
        store.close()
    return report


def _background_pieces(
    t: np.ndarray,
    tracks: dict[str, _Track],
    covered: dict[str, np.ndarray],
    pieces: list[tuple[str, str, str, int, int, str]],
    fraction: float | None,
) -> list[tuple[str, str, str, int, int, str]]:
    """`no_action` pieces: each person's seen, unlabelled stretches, cut into pieces of half the median
    action length (idle gaps are shorter than actions)."""
    lengths = [stop - first for _, _, _, first, stop, _ in pieces]
    size = max(4 * MIN_FRAMES, int(np.median(lengths)) // 2) if lengths else 30
    cut = t[0] + (fraction if fraction is not None else 0.8) * (t[-1] - t[0])
    out = []
    for pid, track in sorted(tracks.items()):
        free = track.seen & ~covered[pid]
        edges = np.flatnonzero(np.diff(np.concatenate([[0], free.astype(np.int8), [0]])))
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            for first in range(a, b - size + 1, size):
                sp = "train" if t[first] < cut else "test"
                out.append((f"bg_{first:06d}_p{_safe(pid)}", pid, BACKGROUND_LABEL, first, first + size, sp))
    return out
