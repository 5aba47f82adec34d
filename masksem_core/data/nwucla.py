"""`masksem prepare nw-ucla`: the CTR-GCN `all_sqe` JSON clips -> `NW-UCLA.npz` (cross-view split).

Each JSON holds `file_name`, `label` (1..10) and `skeletons` (frames x 20 Kinect v1 joints x xyz, one
person). Clips are centred like NTU (spine of the first frame) and padded; views 1+2 train, view 3 tests.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from masksem_core.data.centre import centre_clip
from masksem_core.data.errors import DataFormatError
from masksem_core.data.prepare import Clip, ClipStore, PrepareReport, collect, write_splits
from masksem_core.layouts import KINECT_V1_20

NAME_RE = re.compile(r"a(\d+)_s(\d+)_e(\d+)_v(\d+)$")
LABELS = (
    "pick up with one hand",
    "pick up with two hands",
    "drop trash",
    "walk around",
    "sit down",
    "stand up",
    "donning",
    "doffing",
    "throw",
    "carry",
)
TRAIN_VIEWS, TEST_VIEWS = (1, 2), (3,)
# Frame rate: no source states it (not the CVPR 2014 paper, Wang et al., "Cross-view action modeling,
# learning and recognition", nor its dataset page or the CTR-GCN copy); Kinect v1 streams up to 30 Hz, but
# the clips' own motion says about half that: "walk around" advances 8-9.5 frames a step with 0.66 m
# steps, i.e. 3.2-3.8 steps/s and 2.1 m/s at 30 fps (a run) but 1.6-1.9 steps/s and 1.06 m/s at 15 fps (a
# normal walk); "stand up" takes a median 21 frames (0.7 s at 30 fps, 1.4 s at 15). Chosen: 15 fps.
# docs/data.md ("Frame rates") has the measurement.
FPS = 15.0


def nwucla_clip(path: str) -> list[Clip]:
    """One JSON file -> one centred clip `(T, 1, 20, 3)` (the worker function)."""
    stem = Path(path).stem
    m = NAME_RE.match(stem)
    if not m:
        raise DataFormatError(path, "file name is not aAA_sSS_eEE_vVV.json", field="file name")
    try:
        with open(path, "rb") as fh:
            doc = json.load(fh)
    except json.JSONDecodeError as exc:
        raise DataFormatError(path, f"invalid JSON: {exc.msg}", line=exc.lineno) from None
    except (UnicodeDecodeError, RecursionError) as exc:  # not text / nested deeper than Python recurses
        raise DataFormatError(path, f"invalid JSON: {type(exc).__name__}: {exc}") from None
    if not isinstance(doc, dict):
        raise DataFormatError(path, "top level is not an object")
    for key in ("label", "skeletons"):
        if key not in doc:
            raise DataFormatError(path, "missing key", field=key)
    label = doc["label"]
    if isinstance(label, bool) or not isinstance(label, int) or not 1 <= label <= len(LABELS):
        raise DataFormatError(path, f"label {label!r} is not an integer in 1..{len(LABELS)}", field="label")
    try:
        joints = np.asarray(doc["skeletons"], dtype=np.float64)
    except (ValueError, TypeError, OverflowError, RecursionError):  # ragged, not numbers, ints past float
        raise DataFormatError(path, "frames are not all 20 x 3 numbers", field="skeletons") from None
    v = KINECT_V1_20.num_joints
    if joints.ndim != 3 or joints.shape[1:] != (v, 3) or len(joints) == 0:
        raise DataFormatError(path, f"shape {joints.shape}, expected (T >= 1, {v}, 3)", field="skeletons")
    bad = np.flatnonzero(~np.isfinite(joints).all(axis=(1, 2)))
    if bad.size:
        raise DataFormatError(path, f"non-finite value in frame {bad[0]}", field=f"skeletons[{bad[0]}]")
    data = centre_clip(joints.astype(np.float32)[:, None], KINECT_V1_20.centre_joint)
    action, subject, execution, view = (int(g) for g in m.groups())
    meta = {"action": action, "subject": subject, "execution": execution, "view": view}
    return [Clip(stem, data, label - 1, meta)]


def prepare_nwucla(
    raw: Path,
    out: Path,
    workers: int = 1,
    max_frames: int = 300,
    progress: bool | None = None,
    joint_check: bool = True,
) -> PrepareReport:
    """Prepare NW-UCLA from a directory of its JSON clips (searched recursively)."""
    report = PrepareReport()
    files = [str(p) for p in sorted(Path(raw).rglob("*.json"), key=lambda p: p.name)]
    store = ClipStore(Path(out), max_frames, num_persons=1, num_joints=KINECT_V1_20.num_joints)
    try:
        collect(files, nwucla_clip, store, report, workers=workers, desc="nw-ucla", progress=progress)
        views = np.asarray([m["view"] for m in store.meta], dtype=np.int64)
        train = np.flatnonzero(np.isin(views, TRAIN_VIEWS))
        test = np.flatnonzero(np.isin(views, TEST_VIEWS))
        common = {
            "dataset": "nw-ucla",
            "layout": KINECT_V1_20.name,
            "labels": list(LABELS),
            "centre": "spine of the person in its first non-zero frame",
            "fps": FPS,
        }
        write_splits(Path(out), store, {"NW-UCLA": (train, test)}, len(LABELS), common, report, joint_check)
    finally:
        store.close()
    return report
