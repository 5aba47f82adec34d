"""`masksem prepare ntu60|ntu120`: raw `.skeleton` files -> NTU60_CS/CV or NTU120_CSub/CSet npz files."""

from __future__ import annotations

from pathlib import Path

from masksem_core.data.centre import centre_clip
from masksem_core.data.ntu import parse_name, parse_skeleton_file, skeleton_to_actors
from masksem_core.data.ntu_scan import scan_skeleton
from masksem_core.data.ntu_splits import NTU_PROTOCOLS, ntu_split_rows
from masksem_core.data.prepare import Clip, ClipStore, PrepareReport, collect, write_splits
from masksem_core.layouts import NTU25

RESOURCES = Path(__file__).resolve().parents[1] / "resources" / "ntu"  # package data
MISSING_LISTS = {
    "ntu60": "samples_with_missing_skeletons.txt",
    "ntu120": "NTU_RGBD120_samples_with_missing_skeletons.txt",
}
MAX_ACTION = {"ntu60": 60, "ntu120": 120}
MAX_SETUP = {"ntu60": 17, "ntu120": 32}


def _resource_lines(name: str) -> list[str]:
    text = (RESOURCES / name).read_text()
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def missing_skeleton_names(version: str) -> set[str]:
    """The published list of samples without usable skeletons (shipped as package data)."""
    return set(_resource_lines(MISSING_LISTS[version]))


def action_names() -> list[str]:
    """The 120 NTU RGB+D action names, index = action - 1."""
    return _resource_lines("actions.txt")


def ntu_clip(path: str) -> list[Clip]:
    """One `.skeleton` file -> one centred two-actor clip `(T, 2, 25, 3)` (the worker function)."""
    name = Path(path).name.split(".")[0]
    info = parse_name(name)
    actors = skeleton_to_actors(parse_skeleton_file(path), path)
    return [Clip(name, centre_clip(actors, NTU25.centre_joint), info["action"] - 1, info)]


def list_ntu_files(raw: Path, version: str, report: PrepareReport) -> list[str]:
    """`version`'s `.skeleton` files under `raw` (recursive), sorted by name, minus the missing list."""
    missing = missing_skeleton_names(version)
    out = []
    for p in sorted(raw.rglob("*.skeleton"), key=lambda p: p.name):
        name = p.name.split(".")[0]
        try:
            info = parse_name(name)
        except ValueError as exc:
            report.skipped.append(f"{p}: {exc}")
            continue
        if info["action"] > MAX_ACTION[version] or info["setup"] > MAX_SETUP[version]:
            continue  # an NTU-120-only sample while preparing NTU-60
        if name in missing:
            report.skipped.append(f"{p}: in the published missing-skeleton list")
            continue
        out.append(str(p))
    return out


# Kinect v2, "about 30 frames per second" (the data set's authors: github.com/shahroudy/NTURGB-D issue #59).
FPS = 30.0


def prepare_ntu(
    raw: Path,
    out: Path,
    version: str,
    workers: int = 1,
    max_frames: int = 300,
    progress: bool | None = None,
    joint_check: bool = True,
) -> PrepareReport:
    """Prepare NTU-60 or NTU-120 from the raw `.skeleton` files; returns the report."""
    if version not in MAX_ACTION:
        raise ValueError(f"unknown NTU version {version!r}; use ntu60 or ntu120")
    report = PrepareReport()
    files = list_ntu_files(Path(raw), version, report)
    scan_skeleton(b"")  # compile (or load the cached) scanner once, before the pool forks its workers
    store = ClipStore(Path(out), max_frames, num_persons=2, num_joints=NTU25.num_joints)
    try:
        collect(files, ntu_clip, store, report, workers=workers, desc=version, progress=progress)
        num_classes = MAX_ACTION[version]
        splits = {
            stem: ntu_split_rows(store.meta, field, tr, te)
            for stem, (field, tr, te) in NTU_PROTOCOLS[version].items()
        }
        centre = NTU25.joint_names[NTU25.centre_joint]
        common = {
            "dataset": version,
            "layout": NTU25.name,
            "labels": action_names()[:num_classes],
            "centre": f"{centre} of actor 1 in its first non-zero frame",
            "fps": FPS,
        }
        write_splits(Path(out), store, splits, num_classes, common, report, joint_check)
    finally:
        store.close()
    return report
