"""`masksem prepare pku1|pku2`: PKU-MMD phase I/II skeleton + label files -> labelled clips, 51 classes.

Raw layout (the official archives unpacked into one directory; names are matched loosely):
- skeleton files `<video>.txt` in a folder whose name contains "skeleton": one line per frame, 150
  numbers (2 persons x 25 Kinect v2 joints x xyz), the second person zero when absent;
- label files `<video>.txt` in a folder whose name contains "label": one line per action instance,
  `action,start_frame,end_frame,confidence` (action 1..51); the clip is frames `[start, end)`;
- split files `cross-subject*.txt` / `cross-view*.txt`: a "Training videos:" line, then a
  comma-separated list, a "Validation videos:" (the official files spell it "Validataion") line,
  then its list.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from masksem_core.data.centre import centre_clip
from masksem_core.data.errors import DataFormatError
from masksem_core.data.prepare import Clip, ClipStore, PrepareReport, collect, write_splits
from masksem_core.layouts import NTU25

NUM_CLASSES = 51
VALUES_PER_FRAME = 150
FPS = 30.0  # "captured via the Kinect v2 sensor" (github.com/ECHO960/PKU-MMD README), which streams 30 Hz
SPLIT_FILES = {"CS": re.compile(r"cross[-_ ]?sub", re.I), "CV": re.compile(r"cross[-_ ]?view", re.I)}


def _tokens_per_line(data: bytes) -> np.ndarray:
    """Whitespace-separated tokens on each non-blank line (lines end at \\n or \\r, as in splitlines).

    The total alone is not enough: a 149-number line followed by a 151-number one adds up to two
    frames and would silently shift every joint of the second frame.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    newline = (buf == 10) | (buf == 13)
    sep = newline | (buf == 32) | (buf == 9) | (buf == 11) | (buf == 12)
    starts = ~sep & np.concatenate(([True], sep[:-1]))
    counts = np.bincount(np.cumsum(newline)[starts], minlength=1)
    return counts[counts > 0]


def parse_pku_skeleton(path: str) -> np.ndarray:
    """A PKU-MMD skeleton file -> `(T, 2, 25, 3)` float32; errors name the first bad line."""
    with open(path, "rb") as fh:
        data = fh.read()
    lines = [ln for ln in data.splitlines() if ln.strip()]
    if not lines:
        raise DataFormatError(path, "no frames", line=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        values = np.fromstring(data, dtype=np.float64, sep=" ")
    if (
        values.size != len(lines) * VALUES_PER_FRAME
        or not np.isfinite(values).all()
        or np.any(_tokens_per_line(data) != VALUES_PER_FRAME)
    ):
        for i, ln in enumerate(data.splitlines()):
            toks = ln.split()
            if not toks:
                continue
            if len(toks) != VALUES_PER_FRAME:
                raise DataFormatError(
                    path, f"expected {VALUES_PER_FRAME} numbers, got {len(toks)}", line=i + 1, field="frame"
                )
            try:
                ok = np.isfinite([float(t) for t in toks]).all()
            except ValueError:
                ok = False
            if not ok:
                raise DataFormatError(path, "non-numeric or non-finite value", line=i + 1, field="frame")
        raise DataFormatError(path, "malformed numbers", field="frame")
    return values.reshape(-1, 2, NTU25.num_joints, 3).astype(np.float32)


def parse_pku_labels(path: str) -> list[tuple[int, int, int]]:
    """A label file -> [(action 1..51, start, end)], validated field by field."""
    out = []
    with open(path, "rb") as fh:
        raw = fh.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataFormatError(path, f"not UTF-8 text (byte {exc.start})", line=line) from None
    for i, ln in enumerate(text.splitlines(), start=1):
        if not ln.strip():
            continue
        fields = [f.strip() for f in ln.split(",")]
        if len(fields) not in (3, 4):
            raise DataFormatError(path, f"expected action,start,end,confidence; got {ln.strip()!r}", line=i)
        try:
            action, start, end = (int(f) for f in fields[:3])
        except ValueError:
            raise DataFormatError(path, f"non-integer field in {ln.strip()!r}", line=i) from None
        if not 1 <= action <= NUM_CLASSES:
            raise DataFormatError(path, f"action {action} outside 1..{NUM_CLASSES}", line=i, field="action")
        if not 0 <= start < end:
            raise DataFormatError(
                path, f"start {start} / end {end} is not 0 <= start < end", line=i, field="start_frame"
            )
        out.append((action, start, end))
    return out


def pku_clips(task: tuple[str, str, str]) -> list[Clip]:
    """One video (name, skeleton file, label file) -> its labelled, centred clips (the worker function)."""
    video, skel_path, label_path = task
    frames = parse_pku_skeleton(skel_path)
    labels = parse_pku_labels(label_path)
    clips = []
    for k, (action, start, end) in enumerate(labels):
        if end > len(frames):
            raise DataFormatError(
                label_path,
                f"end {end} is past the last frame ({len(frames)}) of {skel_path}",
                line=k + 1,
                field="end_frame",
            )
        data = frames[start:end]
        present = np.any(data != 0, axis=(2, 3)).any(axis=0)
        if not present[0] and present[1]:  # only the second slot is filled: make it actor 1
            data = data[:, ::-1]
        meta = {"video": video, "view": video.rsplit("-", 1)[-1], "start": start, "end": end}
        clips.append(Clip(f"{video}_{k:03d}", centre_clip(data, NTU25.centre_joint), action - 1, meta))
    return clips


def parse_split_file(path: Path) -> tuple[list[str], list[str]]:
    """The official split file -> (training videos, validation videos)."""
    text = path.read_text()
    parts = re.split(
        r"^\s*(training|validation|validataion|test(?:ing)?)\s+videos\s*:?\s*$", text, flags=re.I | re.M
    )
    lists: dict[str, list[str]] = {}
    for head, body in zip(parts[1::2], parts[2::2]):
        key = "train" if head.lower().startswith("train") else "test"
        lists[key] = [v.strip() for v in body.replace("\n", ",").split(",") if v.strip()]
    if "train" not in lists or "test" not in lists:
        raise DataFormatError(str(path), "needs a 'Training videos:' and a 'Validation videos:' section")
    return lists["train"], lists["test"]


def _find_files(raw: Path) -> tuple[dict[str, Path], dict[str, Path], dict[str, Path]]:
    skel, label, split = {}, {}, {}
    for p in sorted(raw.rglob("*.txt")):
        lower = [part.lower() for part in p.relative_to(raw).parts[:-1]]
        for stem, pattern in SPLIT_FILES.items():
            if pattern.search(p.name):
                split[stem] = p
        if any("label" in d for d in lower):
            label[p.stem] = p
        elif any("skeleton" in d for d in lower):
            skel[p.stem] = p
    return skel, label, split


def prepare_pku(
    raw: Path,
    out: Path,
    phase: int,
    workers: int = 1,
    max_frames: int = 300,
    progress: bool | None = None,
    joint_check: bool = True,
) -> PrepareReport:
    """Prepare PKU-MMD phase 1 or 2: clips cut at the labels, official cross-subject / cross-view splits."""
    if phase not in (1, 2):
        raise ValueError(f"PKU-MMD phase must be 1 or 2, got {phase}")
    report = PrepareReport()
    skel, label, split_files = _find_files(Path(raw))
    if not split_files:
        raise FileNotFoundError(f"{raw}: no cross-subject / cross-view split file found")
    tasks = []
    for video in sorted(skel):
        if video not in label:
            report.skipped.append(f"{skel[video]}: no label file {video}.txt")
            continue
        tasks.append((video, str(skel[video]), str(label[video])))
    store = ClipStore(Path(out), max_frames, num_persons=2, num_joints=NTU25.num_joints)
    try:
        collect(tasks, pku_clips, store, report, workers=workers, desc=f"pku{phase}", progress=progress)
        videos = np.asarray([m["video"] for m in store.meta])
        splits = {}
        for stem, path in sorted(split_files.items()):
            train_v, test_v = parse_split_file(path)
            splits[f"PKUMMD{phase}_{stem}"] = (
                np.flatnonzero(np.isin(videos, train_v)),
                np.flatnonzero(np.isin(videos, test_v)),
            )
            unknown = set(train_v + test_v) - set(videos.tolist())
            if unknown:
                report.warnings.append(f"{path.name}: {len(unknown)} listed videos gave no clip")
        common = {
            "dataset": f"pku{phase}",
            "layout": NTU25.name,
            "labels": [f"pku_action_{i:02d}" for i in range(1, NUM_CLASSES + 1)],
            "centre": "spine_mid of actor 1 in its first non-zero frame (per clip)",
            "fps": FPS,
        }
        write_splits(Path(out), store, splits, NUM_CLASSES, common, report, joint_check)
    finally:
        store.close()
    return report
