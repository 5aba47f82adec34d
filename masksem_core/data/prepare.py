"""The preparation engine shared by every data set: parallel parsing, streaming, error collection.

A data-set module supplies a list of tasks (usually files) and a picklable function that turns one task
into prepared clips. The engine runs it over a process pool with a progress bar, appends each clip,
padded, to a scratch file on disk as it arrives (so NTU-120 never sits in memory), counts and keeps
every bad file's error instead of stopping, and finally writes the split files atomically.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from masksem_core.data.arrays import write_split_npz
from masksem_core.data.errors import DataFormatError


@dataclass
class Clip:
    """One prepared clip: centred `(T, M, V, 3)` float32 (unpadded), label and split metadata."""

    name: str
    data: np.ndarray
    label: int
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class PrepareReport:
    """What happened: counts, and one line per bad file (file, line/field and reason)."""

    files: int = 0
    clips: int = 0
    errors: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    def summary(self, max_lines: int = 20) -> str:
        lines = [
            f"{self.files} files -> {self.clips} clips; {len(self.errors)} bad files, "
            f"{len(self.skipped)} skipped, {len(self.warnings)} warnings"
        ]
        for title, items in (("bad file", self.errors), ("warning", self.warnings)):
            lines += [f"  {title}: {e}" for e in items[:max_lines]]
            if len(items) > max_lines:
                lines.append(f"  ... and {len(items) - max_lines} more {title}s")
        lines += [f"  wrote {p}" for p in self.outputs]
        return "\n".join(lines)


class EmptyCorpusError(RuntimeError):
    """No usable clip at all: nothing is written."""


def _safe_call(fn: Callable[[Any], list[Clip]], task: Any) -> tuple[list[Clip], str | None]:
    """Run one task; any error becomes a message naming the task (a bad file never stops the run)."""
    try:
        return fn(task), None
    except DataFormatError as exc:
        return [], str(exc)
    except Exception as exc:  # an unexpected bug on one file is still reported, not fatal
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        return [], f"{task}: {type(exc).__name__}: {exc} (at {Path(tb.filename).name}:{tb.lineno})"


class _Call:
    """Picklable wrapper so pool workers can run `_safe_call(fn, task)`."""

    def __init__(self, fn: Callable[[Any], list[Clip]]):
        self.fn = fn

    def __call__(self, task: Any) -> tuple[list[Clip], str | None]:
        return _safe_call(self.fn, task)


def run_tasks(
    tasks: Sequence[Any],
    fn: Callable[[Any], list[Clip]],
    workers: int = 1,
    desc: str = "prepare",
    progress: bool | None = None,
) -> Iterator[tuple[list[Clip], str | None]]:
    """Yield `(clips, error)` per task, in task order; `workers > 1` uses a process pool."""
    disable = None if progress is None else not progress  # None: tqdm shows a bar only on a terminal
    bar = tqdm(total=len(tasks), desc=desc, unit="file", disable=disable, file=sys.stderr)
    call = _Call(fn)
    try:
        if workers <= 1:
            for task in tasks:
                yield call(task)
                bar.update()
            return
        chunksize = max(1, min(64, len(tasks) // (workers * 8) or 1))
        with mp.get_context("fork" if sys.platform.startswith("linux") else "spawn").Pool(workers) as pool:
            for result in pool.imap(call, tasks, chunksize=chunksize):
                yield result
                bar.update()
    finally:
        bar.close()


class ClipStore:
    """Padded clips appended to a scratch file in the output directory, readable as a memmap."""

    def __init__(self, out_dir: Path, max_frames: int, num_persons: int, num_joints: int):
        self.max_frames, self.num_persons, self.num_joints = max_frames, num_persons, num_joints
        fd, name = tempfile.mkstemp(prefix=".clips.", suffix=".tmp", dir=out_dir)
        self.path = Path(name)
        self._fh = os.fdopen(fd, "wb")
        self.names: list[str] = []
        self.labels: list[int] = []
        self.lengths: list[int] = []
        self.meta: list[dict[str, Any]] = []

    @property
    def row_width(self) -> int:
        return self.num_persons * self.num_joints * 3

    def add(self, clip: Clip, report: PrepareReport) -> None:
        data = np.asarray(clip.data, dtype=np.float32)
        t, m, v, c = data.shape
        if v != self.num_joints or c != 3 or m > self.num_persons:
            raise ValueError(
                f"{clip.name}: clip shape {data.shape} does not fit "
                f"(T, <= {self.num_persons}, {self.num_joints}, 3)"
            )
        if t > self.max_frames:
            report.warnings.append(f"{clip.name}: {t} frames, kept the first {self.max_frames}")
            t = self.max_frames
        row = np.zeros((self.max_frames, self.num_persons, v, 3), dtype=np.float32)
        row[:t, :m] = data[:t]
        self._fh.write(row.tobytes())
        self.names.append(clip.name)
        self.labels.append(int(clip.label))
        self.lengths.append(int(t))
        self.meta.append(clip.meta)

    def array(self) -> np.ndarray:
        """All clips as a read-only memmap `(N, max_frames, M*V*3)`."""
        self._fh.flush()
        n = len(self.names)
        if n == 0:
            return np.zeros((0, self.max_frames, self.row_width), dtype=np.float32)
        return np.memmap(self.path, dtype=np.float32, mode="r", shape=(n, self.max_frames, self.row_width))

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        self.path.unlink(missing_ok=True)


def collect(
    tasks: Sequence[Any],
    fn: Callable[[Any], list[Clip]],
    store: ClipStore,
    report: PrepareReport,
    workers: int = 1,
    desc: str = "prepare",
    progress: bool | None = None,
) -> None:
    """Run every task and append its clips to `store`; errors go to `report.errors`."""
    for clips, error in run_tasks(tasks, fn, workers=workers, desc=desc, progress=progress):
        report.files += 1
        if error is not None:
            report.errors.append(error)
            continue
        for clip in clips:
            store.add(clip, report)
            report.clips += 1


def write_splits(
    out_dir: Path,
    store: ClipStore,
    splits: dict[str, tuple[Iterable[int], Iterable[int]]],
    num_classes: int,
    common: dict[str, Any],
    report: PrepareReport,
    joint_check: bool = True,
) -> None:
    """Write `<stem>.npz` + `<stem>.json` for every split `stem -> (train rows, test rows)`.

    Before anything is written, the clips go through the joint-order check for `common["layout"]`
    (`masksem_core.data.joint_check`): a set that does not look like that layout raises
    `JointOrderError`; clips that fail alone are listed as warnings. `joint_check=False` skips it.
    """
    if not store.names:
        raise EmptyCorpusError(
            "no usable clip: "
            + (f"all {report.files} files were bad" if report.files else "no input files found")
        )
    x = store.array()
    if joint_check and common.get("layout"):
        from masksem_core.data.joint_check import check_store

        check_store(x, store.lengths, store.names, store.num_persons, str(common["layout"]), report)
    labels = np.asarray(store.labels, dtype=np.int64)
    for stem, (train, test) in splits.items():
        train, test = np.asarray(list(train), dtype=np.int64), np.asarray(list(test), dtype=np.int64)
        if len(train) + len(test) == 0:
            report.warnings.append(f"{stem}: no clip falls in this split; not written")
            continue
        side = dict(common)
        side.update(
            {
                "split": stem,
                "num_classes": num_classes,
                "max_frames": store.max_frames,
                "num_persons": store.num_persons,
                "num_joints": store.num_joints,
                "train": _split_meta(store, train),
                "test": _split_meta(store, test),
            }
        )
        path = out_dir / f"{stem}.npz"
        write_split_npz(path, x, train, test, labels, num_classes, side)
        report.outputs.append(str(path))
    del x


def _split_meta(store: ClipStore, rows: np.ndarray) -> dict[str, list]:
    return {
        "names": [store.names[i] for i in rows],
        "valid_lengths": [store.lengths[i] for i in rows],
        "labels": [store.labels[i] for i in rows],
    }
