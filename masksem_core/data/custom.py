"""`masksem prepare custom`: a user's own recordings, one `.npy` per clip plus `labels.csv`.

Directory format (docs/data.md):
- `labels.csv` with a header; columns `file` (the .npy path relative to the directory), `label` (an
  integer class index or a class name) and optionally `split` (`train` or `test`; default `train`);
- optionally `classes.txt` (or `--classes FILE`): one class name a line, line k naming class k, so
  integer labels get names and named labels a fixed order;
- each `.npy` is float `(T, V, 3)` (one person) or `(T, M, V, 3)`, in metres, in the joint order of the
  layout (`--layout`, or inferred from V when exactly one known layout has V joints), or in the order of
  a `--joint-order` file. All-zero frames mean "not seen"; NaN/inf joints become unseen joints (counted).
Clips are centred on the layout's `centre_joint` of the first person's first non-zero frame.
"""

from __future__ import annotations

import csv
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from masksem_core.data.centre import centre_clip_keep_unseen
from masksem_core.data.errors import DataFormatError
from masksem_core.data.joint_order import JointOrder, layout_order, read_joint_order
from masksem_core.data.prepare import (
    Clip,
    ClipStore,
    EmptyCorpusError,
    PrepareReport,
    collect,
    write_splits,
)
from masksem_core.layouts import LAYOUTS, get_layout

MAX_BAD_FRACTION = 0.5  # more bad files than this: the folder is malformed, nothing is written
CLASSES_FILE = "classes.txt"


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


def read_classes(path: Path) -> list[str]:
    """A classes file: one class name a line (blank lines and `#` comments skipped), no repeats."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(str(path), f"cannot read the class names: {exc}") from None
    names = [ln.split("#", 1)[0].strip() for ln in lines]
    names = [n for n in names if n]
    if not names:
        raise DataFormatError(str(path), "no class names (one a line)")
    dup = [n for n, c in Counter(names).items() if c > 1]
    if dup:
        raise DataFormatError(str(path), f"class name {dup[0]!r} appears twice")
    return names


def _class_names(
    csv_path: Path,
    rows: list[tuple[str, str, str]],
    named: list[str] | None,
    classes: list[str] | None,
    num_classes: int | None,
) -> tuple[list[str], dict[str, int]]:
    """(label names, label text -> class index) from the csv labels and an optional classes list."""
    if named is not None:  # labels are names
        names = classes or named
        unknown = sorted(set(named) - set(names))
        if unknown:
            raise DataFormatError(
                str(csv_path), f"label {unknown[0]!r} is not in the classes file", field="label"
            )
        return names, {n: i for i, n in enumerate(names)}
    ints = [int(r[1]) for r in rows]
    if min(ints) < 0:
        raise DataFormatError(str(csv_path), f"negative label {min(ints)}", field="label")
    k = num_classes or (len(classes) if classes else max(ints) + 1)
    if classes and len(classes) != k:
        raise ValueError(f"--num-classes {k} but the classes file names {len(classes)} classes")
    if max(ints) >= k:
        raise ValueError(f"label {max(ints)} does not fit {k} classes")
    names = classes or [f"class_{i}" for i in range(k)]
    return names, {str(i): i for i in range(k)} | {r[1]: int(r[1]) for r in rows}


def _npy_joints(path: Path) -> int | None:
    """Joints a frame of a .npy (second-to-last dimension), from its header only; None if unreadable."""
    try:
        arr = np.load(path, allow_pickle=False, mmap_mode="r")
    except Exception:  # a bad file is reported by the worker with its reason
        return None
    if not isinstance(arr, np.ndarray) or arr.ndim not in (3, 4) or arr.shape[-1] != 3:
        return None
    return int(arr.shape[-2])


def infer_layout(raw: Path, rows: list[tuple[str, str, str]], say: bool = True) -> str:
    """The one known layout whose joint count the files have; the error lists the candidates."""
    counts = Counter(v for v in (_npy_joints(raw / r[0]) for r in rows) if v is not None)
    if not counts:
        raise DataFormatError(
            str(raw), "no file is a (T, V, 3) or (T, M, V, 3) array, so the joint layout cannot be inferred"
        )
    v, n = counts.most_common(1)[0]
    fits = [lay.name for lay in LAYOUTS.values() if lay.num_joints == v]
    known = ", ".join(f"{lay.name} ({lay.num_joints})" for lay in LAYOUTS.values())
    if len(fits) != 1:
        what = "no known layout has" if not fits else f"several layouts ({', '.join(fits)}) have"
        raise ValueError(
            f"{n} of {len(rows)} files have {v} joints a frame and {what} {v} joints; give --layout "
            f"(known: {known}) or --joint-order FILE"
        )
    if say:
        print(f"masksem prepare custom: layout {fits[0]} inferred ({v} joints a frame in {n} files)",
              file=sys.stderr)  # fmt: skip
    return fits[0]


class _CustomClip:
    """Picklable worker: one (file, label, split) row -> one centred clip."""

    def __init__(self, root: Path, order: JointOrder, label_index: dict[str, int], max_persons: int):
        self.root, self.order, self.label_index, self.max_persons = root, order, label_index, max_persons
        self.layout = order.layout

    def __call__(self, row: tuple[str, str, str]) -> list[Clip]:
        file, label_text, split = row
        path = self.root / file
        try:  # memory-mapped: a header claiming 10^9 frames fails against the file size, allocating nothing
            arr = np.load(path, allow_pickle=False, mmap_mode="r")
        except (OSError, ValueError, TypeError, EOFError, OverflowError) as exc:  # huge shapes overflow
            raise DataFormatError(str(path), f"cannot read as .npy: {exc}") from None
        if not isinstance(arr, np.ndarray):
            raise DataFormatError(str(path), f"not a .npy array but {type(arr).__name__}")
        v = self.order.num_columns
        if arr.ndim == 3:
            arr = arr[:, None]
        persons_ok = arr.ndim == 4 and 0 < arr.shape[1] <= self.max_persons  # (T, 0, V, 3): nobody
        if not persons_ok or arr.shape[2:] != (v, 3) or len(arr) == 0:
            order = "" if self.order.name == self.layout.name else f" (joint order {self.order.name})"
            raise DataFormatError(
                str(path),
                f"shape {arr.shape}; expected (T, {v}, 3) or (T, 1 <= M <= {self.max_persons}, {v}, 3) for "
                f"layout {self.layout.name}{order}",
                field="shape",
            )
        real = np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
        if not real:
            raise DataFormatError(str(path), f"values are {arr.dtype}, not numbers", field="values")
        data = np.array(arr, dtype=np.float32)  # a copy, not the map
        bad = ~np.isfinite(data).all(axis=-1)  # (T, M, V) joints with a NaN/inf coordinate
        data[bad] = 0.0  # unseen
        data = self.order.to_layout(data)
        label = self.label_index[label_text]
        meta = {"split": split, "file": file, "nonfinite_joints": int(bad.sum())}
        return [Clip(Path(file).stem, centre_clip_keep_unseen(data, self.layout.centre_joint), label, meta)]


def prepare_custom(
    raw: Path,
    out: Path,
    layout: str | None = None,
    name: str = "custom",
    workers: int = 1,
    max_frames: int = 300,
    max_persons: int = 2,
    num_classes: int | None = None,
    progress: bool | None = None,
    fps: float | None = None,
    joint_order: str | Path | None = None,
    classes: str | Path | None = None,
    joint_check: bool = True,
) -> PrepareReport:
    """Prepare a directory in the custom format into `<name>.npz` + sidecar (see the module docstring).

    `fps` is the recordings' frame rate, stored in the sidecar; None (unknown) is stored as null with a
    warning, and `masksem export` / `masksem stitch` then ask for `--fps` instead of guessing."""
    if fps is not None and not fps > 0:
        raise ValueError(f"--fps must be > 0, got {fps}")
    raw = Path(raw)
    csv_path = raw / "labels.csv"
    rows, named = read_labels_csv(csv_path)
    classes_path = Path(classes) if classes else raw / CLASSES_FILE
    class_list = read_classes(classes_path) if classes or classes_path.is_file() else None
    label_names, label_index = _class_names(csv_path, rows, named, class_list, num_classes)
    if joint_order is not None:
        order = read_joint_order(joint_order, layout)
    else:
        order = layout_order(get_layout(layout or infer_layout(raw, rows)))
    lay = order.layout
    report = PrepareReport()
    store = ClipStore(Path(out), max_frames, num_persons=max_persons, num_joints=lay.num_joints)
    try:
        collect(
            rows,
            _CustomClip(raw, order, label_index, max_persons),
            store,
            report,
            workers=workers,
            desc=name,
            progress=progress,
        )
        if report.errors and len(report.errors) > MAX_BAD_FRACTION * report.files:
            raise EmptyCorpusError(
                f"{len(report.errors)} of {report.files} files are bad, so the folder does not look like "
                f"{lay.name} clips; nothing written. First reasons:\n  " + "\n  ".join(report.errors[:5])
            )
        nonfinite = sum(m["nonfinite_joints"] for m in store.meta)
        for clip_name, m in zip(store.names, store.meta, strict=True):
            if m["nonfinite_joints"]:
                report.warnings.append(f"{clip_name}: {m['nonfinite_joints']} NaN/inf joints made unseen")
        splits = [m["split"] for m in store.meta]
        train = [i for i, s in enumerate(splits) if s == "train"]
        test = [i for i, s in enumerate(splits) if s == "test"]
        common = {
            "dataset": name,
            "layout": lay.name,
            "labels": label_names,
            "centre": f"{lay.joint_names[lay.centre_joint]} of person 1 in its first non-zero frame",
            "fps": float(fps) if fps is not None else None,
            "nonfinite_joints_unseen": int(nonfinite),
        }
        if fps is None:
            report.warnings.append(
                f"{name}: frame rate unknown (no --fps): the sidecar's fps is null; export will ask for --fps"
            )
        if not order.is_identity():
            common["joint_order"] = {"name": order.name, "missing": order.missing}
        write_splits(Path(out), store, {name: (train, test)}, len(label_names), common, report, joint_check)
    finally:
        store.close()
    return report
