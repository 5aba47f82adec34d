"""`masksem prepare custom`: a user's own recordings, one `.npy` per clip plus `labels.csv`.

Directory format (docs/data.md):
- `labels.csv` with a header; columns `file` (the .npy path relative to the directory), `label` (an
  integer class index or a class name) and optionally `split` (`train` or `test`; default `train`);
- each `.npy` is float `(T, V, 3)` (one person) or `(T, M, V, 3)`, in metres, in the joint order of the
  layout given with `--layout` (ntu25, kinect_v1_20, mediapipe33). All-zero frames mean "not seen".
Clips are centred on the layout's `centre_joint` of the first person's first non-zero frame.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from masksem_core.data.centre import centre_clip
from masksem_core.data.errors import DataFormatError
from masksem_core.data.prepare import Clip, ClipStore, PrepareReport, collect, write_splits
from masksem_core.layouts import get_layout


def read_labels_csv(path: Path) -> tuple[list[tuple[str, str, str]], list[str] | None]:
    """labels.csv -> [(file, label text, split)] and the class names (None when labels are integers)."""
    try:
        return _read_labels_csv(path)
    except UnicodeDecodeError as exc:
        raise DataFormatError(str(path), f"not UTF-8 text (byte {exc.start})") from None
    except csv.Error as exc:  # e.g. a field over the csv module's size limit
        raise DataFormatError(str(path), f"not valid CSV: {exc}") from None


def _read_labels_csv(path: Path) -> tuple[list[tuple[str, str, str]], list[str] | None]:
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"file", "label"} - set(reader.fieldnames or [])
        if missing:
            raise DataFormatError(str(path), f"missing column(s) {sorted(missing)}", line=1, field="header")
        for i, row in enumerate(reader, start=2):
            split = (row.get("split") or "train").strip().lower()
            if split not in ("train", "test"):
                raise DataFormatError(str(path), f"split {split!r} is not train/test", line=i, field="split")
            if not (row["file"] or "").strip() or not (row["label"] or "").strip():
                raise DataFormatError(str(path), "empty file or label", line=i)
            rows.append((row["file"].strip(), row["label"].strip(), split))
    if not rows:
        raise DataFormatError(str(path), "no rows", line=2)
    labels = [r[1] for r in rows]
    if all(lab.lstrip("-").isdigit() for lab in labels):
        return rows, None
    return rows, sorted(set(labels))


class _CustomClip:
    """Picklable worker: one (file, label, split) row -> one centred clip."""

    def __init__(self, root: Path, layout: str, names: list[str] | None, max_persons: int):
        self.root, self.layout, self.names, self.max_persons = root, get_layout(layout), names, max_persons

    def __call__(self, row: tuple[str, str, str]) -> list[Clip]:
        file, label_text, split = row
        path = self.root / file
        try:  # memory-mapped: a header claiming 10^9 frames fails against the file size, allocating nothing
            arr = np.load(path, allow_pickle=False, mmap_mode="r")
        except (OSError, ValueError, TypeError, EOFError, OverflowError) as exc:  # huge shapes overflow
            raise DataFormatError(str(path), f"cannot read as .npy: {exc}") from None
        if not isinstance(arr, np.ndarray):
            raise DataFormatError(str(path), f"not a .npy array but {type(arr).__name__}")
        v = self.layout.num_joints
        if arr.ndim == 3:
            arr = arr[:, None]
        if arr.ndim != 4 or arr.shape[2:] != (v, 3) or len(arr) == 0 or arr.shape[1] > self.max_persons:
            raise DataFormatError(
                str(path),
                f"shape {arr.shape}; expected (T, {v}, 3) or (T, M <= "
                f"{self.max_persons}, {v}, 3) for layout {self.layout.name}",
                field="shape",
            )
        real = np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
        if not real or not np.isfinite(arr).all():
            raise DataFormatError(str(path), "non-numeric or non-finite values", field="values")
        label = self.names.index(label_text) if self.names else int(label_text)
        data = centre_clip(np.array(arr, dtype=np.float32), self.layout.centre_joint)  # a copy, not the map
        return [Clip(Path(file).stem, data, label, {"split": split, "file": file})]


def prepare_custom(
    raw: Path,
    out: Path,
    layout: str,
    name: str = "custom",
    workers: int = 1,
    max_frames: int = 300,
    max_persons: int = 2,
    num_classes: int | None = None,
    progress: bool | None = None,
    fps: float | None = None,
) -> PrepareReport:
    """Prepare a directory in the custom format into `<name>.npz` + sidecar.

    `fps` is the recordings' frame rate, stored in the sidecar; None (unknown) is stored as null with a
    warning, and `masksem export` / `masksem stitch` then ask for `--fps` instead of guessing."""
    if fps is not None and not fps > 0:
        raise ValueError(f"--fps must be > 0, got {fps}")
    raw = Path(raw)
    rows, names = read_labels_csv(raw / "labels.csv")
    lay = get_layout(layout)
    if names is None:
        ints = [int(r[1]) for r in rows]
        if min(ints) < 0:
            raise DataFormatError(str(raw / "labels.csv"), f"negative label {min(ints)}", field="label")
        k = num_classes or max(ints) + 1
        if max(ints) >= k:
            raise ValueError(f"label {max(ints)} does not fit --num-classes {k}")
        names = None
        label_names = [f"class_{i}" for i in range(k)]
    else:
        k = len(names)
        label_names = names
    report = PrepareReport()
    store = ClipStore(Path(out), max_frames, num_persons=max_persons, num_joints=lay.num_joints)
    try:
        collect(
            rows,
            _CustomClip(raw, layout, names, max_persons),
            store,
            report,
            workers=workers,
            desc=name,
            progress=progress,
        )
        splits = [m["split"] for m in store.meta]
        train = [i for i, s in enumerate(splits) if s == "train"]
        test = [i for i, s in enumerate(splits) if s == "test"]
        common = {
            "dataset": name,
            "layout": lay.name,
            "labels": label_names,
            "centre": f"{lay.joint_names[lay.centre_joint]} of person 1 in its first non-zero frame",
            "fps": float(fps) if fps is not None else None,
        }
        if fps is None:
            report.warnings.append(
                f"{name}: frame rate unknown (no --fps): the sidecar's fps is null; export will ask for --fps"
            )
        write_splits(Path(out), store, {name: (train, test)}, k, common, report)
    finally:
        store.close()
    return report
