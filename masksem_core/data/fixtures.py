"""Writers of small, deterministic raw files in the documented formats, for tests and demos.

No PKU-MMD data is available here, so `write_pku_fixture` produces a miniature phase I/II release
(skeleton, label and split files laid out as the official archives) with synthetic but plausible
motion; the returned description says which clips preparation must produce.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from masksem_core.layouts import NTU25


@dataclass
class PkuFixture:
    """What was written: root, videos, and the expected clips (name -> (label 0-based, frames))."""

    root: Path
    train_videos: list[str]
    test_videos: list[str]
    clips: dict[str, tuple[int, int]] = field(default_factory=dict)
    skeleton_files: dict[str, Path] = field(default_factory=dict)
    label_files: dict[str, Path] = field(default_factory=dict)


# A standing adult in NTU 25 joints (metres, x towards the person's left, y up, spine base at the origin):
# plausible bone lengths, so fixtures pass the joint-order check (masksem_core.data.joint_check).
_LEFT = {
    "shoulder": (0.18, 0.44, 0.0), "elbow": (0.22, 0.17, 0.0), "wrist": (0.24, -0.07, 0.0),
    "hand": (0.25, -0.14, 0.0), "hand_tip": (0.26, -0.21, 0.0), "thumb": (0.21, -0.12, 0.03),
    "hip": (0.08, -0.02, 0.0), "knee": (0.09, -0.43, 0.02), "ankle": (0.09, -0.82, 0.0),
    "foot": (0.09, -0.86, 0.1),
}  # fmt: skip
STANDING_NTU25 = np.zeros((NTU25.num_joints, 3))
for _name, _xyz in {
    "spine_base": (0, 0, 0), "spine_mid": (0, 0.27, 0), "spine_shoulder": (0, 0.47, 0),
    "neck": (0, 0.52, 0), "head": (0, 0.66, 0),
}.items():  # fmt: skip
    STANDING_NTU25[NTU25.index(_name)] = _xyz
for _stem, (_x, _y, _z) in _LEFT.items():
    STANDING_NTU25[NTU25.index(f"{_stem}_left")] = (_x, _y, _z)
    STANDING_NTU25[NTU25.index(f"{_stem}_right")] = (-_x, _y, _z)


def synthetic_person(num_frames: int, rng: np.random.Generator, offset: float = 0.0) -> np.ndarray:
    """A standing NTU-25 skeleton swaying and waving: `(T, 25, 3)` float32 metres, camera space."""
    base = STANDING_NTU25 + rng.normal(0, 0.01, (NTU25.num_joints, 3))
    base[:, 0] += offset
    base[:, 2] += 3.0
    t = np.arange(num_frames)[:, None, None] / 30.0
    phase = rng.uniform(0, 2 * np.pi, (1, NTU25.num_joints, 3))
    wave = np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * t + phase)  # (T, V, 3)
    motion = 0.04 * wave[:, :1] + 0.01 * wave  # the body sways as one, joints wiggle a little
    return (base[None] + motion).astype(np.float32)


def plausible_clip(layout: str, num_frames: int, rng: np.random.Generator, offset: float = 0.0) -> np.ndarray:
    """A standing person in any known layout `(T, V, 3)`: `synthetic_person` carried back through the
    layout's adapter to NTU 25 (least squares; joints the adapter does not use stay zero = unseen)."""
    from masksem_core.runtime.adapters import get_adapter

    ntu = synthetic_person(num_frames, rng, offset).astype(np.float64)
    if layout == NTU25.name:
        return ntu.astype(np.float32)
    ad = get_adapter(layout, NTU25.name)
    back = np.linalg.pinv(ad.matrix)
    back[np.abs(back) < 1e-6] = 0.0  # joints no NTU joint is made of: exactly zero, i.e. unseen
    return np.einsum("sd,tdc->tsc", back, ntu * ad.signs).astype(np.float32)


def write_pku_fixture(
    root: str | Path,
    phase: int = 1,
    num_subjects: int = 3,
    actions_per_video: int = 3,
    frames_per_video: int = 240,
    seed: int = 0,
) -> PkuFixture:
    """Write a miniature PKU-MMD release under `root`; views L/M/R, the last subject is the test subject.

    Layout: `skeleton/<video>.txt` (150 numbers a line), `label/<video>.txt` (`action,start,end,conf`),
    `split/cross-subject.txt` and `split/cross-view.txt` (official wording, "Validataion" included).
    Cross-view: views M and R train, L tests. Every other video of subject 1 is two-person.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    for sub in ("skeleton", "label", "split"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    views = ("L", "M", "R")
    videos = [
        f"{s + 2:04d}-{v}" if phase == 1 else f"A{s + 1:02d}N01-{v}"
        for s in range(num_subjects)
        for v in views
    ]
    fx = PkuFixture(root, [], [])
    for vi, video in enumerate(videos):
        people = np.zeros((frames_per_video, 2, NTU25.num_joints, 3), dtype=np.float32)
        people[:, 0] = synthetic_person(frames_per_video, rng)
        if vi % 2 == 0 and vi < len(views):
            people[:, 1] = synthetic_person(frames_per_video, rng, offset=0.8)
        path = root / "skeleton" / f"{video}.txt"
        np.savetxt(path, people.reshape(frames_per_video, -1), fmt="%.6f", delimiter=" ")
        fx.skeleton_files[video] = path
        cuts = np.sort(rng.choice(np.arange(10, frames_per_video - 10), 2 * actions_per_video, replace=False))
        lines = []
        for k in range(actions_per_video):
            action = int(rng.integers(1, 52))
            start, end = int(cuts[2 * k]), int(cuts[2 * k + 1])
            lines.append(f"{action},{start},{end},{int(rng.integers(1, 3))}")
            fx.clips[f"{video}_{k:03d}"] = (action - 1, end - start)
        label = root / "label" / f"{video}.txt"
        label.write_text("\n".join(lines) + "\n")
        fx.label_files[video] = label
    subjects = sorted({v.split("-")[0] for v in videos})
    test_subject = subjects[-1]
    cs_train = [v for v in videos if not v.startswith(test_subject)]
    cs_test = [v for v in videos if v.startswith(test_subject)]
    cv_train = [v for v in videos if not v.endswith("-L")]
    cv_test = [v for v in videos if v.endswith("-L")]
    for name, (tr, te) in {
        "cross-subject.txt": (cs_train, cs_test),
        "cross-view.txt": (cv_train, cv_test),
    }.items():
        (root / "split" / name).write_text(
            "Training videos: \n" + ", ".join(tr) + ",\nValidataion videos: \n" + ", ".join(te) + "\n"
        )
    fx.train_videos, fx.test_videos = cs_train, cs_test
    return fx


def write_ntu_skeleton(path: str | Path, frames: list[list[tuple[str, np.ndarray]]]) -> Path:
    """Write an NTU `.skeleton` file (CRLF): `frames[t]` lists `(body_id, joints (25, 3))` for frame t.

    The other per-joint fields (depth/colour pixels, orientation, tracking state) are filled with
    plausible constants; only x, y, z matter to the pipeline.
    """
    path = Path(path)
    out = [str(len(frames))]
    for bodies in frames:
        out.append(str(len(bodies)))
        for body_id, joints in bodies:
            out.append(f"{body_id} 0 1 1 1 1 0 0.01 -0.25 2")
            out.append(str(NTU25.num_joints))
            for x, y, z in np.asarray(joints, dtype=np.float32).tolist():  # %.9g round-trips float32
                out.append(f"{x:.9g} {y:.9g} {z:.9g} 250.5 190.25 1100.5 480.75 0.5 0.1 0.8 -0.1 2")
    path.write_bytes(("\r\n".join(out) + "\r\n").encode())
    return path
