"""The seeded synthetic collaboration action set: clips in the NTU 25-joint layout, split by subject.

Pipeline per action class (vectorised over its clips): sample performers and timing -> run the motion
program -> forward kinematics -> feet on the ground -> place the second person -> camera view ->
sensor corruption -> NTU centring. The output has the on-disk form of the prepared data sets
(`x (N, T_pad, 2*25*3)` float32, one-hot `y`), so every consumer treats it like NTU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from masksem_core.data.arrays import write_split_npz
from masksem_core.data.centre import centre_clip
from masksem_core.layouts import NTU25
from masksem_core.synthetic.actions import ACTION_NAMES, ACTIONS, ActionSpec, Context
from masksem_core.synthetic.corruption import NoiseSettings, corrupt
from masksem_core.synthetic.kinematics import Subjects, forward_kinematics, rot_x, rot_y, sample_subjects
from masksem_core.synthetic.pose import Motion, rest_channels, to_rotations

FPS = 30.0
NUM_PERSONS = 2
DATASET_NAME = "synthetic_hrc"
_FEET = [NTU25.index(n) for n in ("ankle_left", "foot_left", "ankle_right", "foot_right")]
_ANKLES = [NTU25.index("ankle_left"), NTU25.index("ankle_right")]
_HAND = {False: NTU25.index("hand_left"), True: NTU25.index("hand_right")}


def seat_angle(subject_ids: np.ndarray) -> np.ndarray:
    """A performer's seated thigh angle (rad): fixed per subject, so a sit_down and the following
    stand_up of one recording meet in the same pose."""
    return np.array([np.random.default_rng([int(s), 7919]).uniform(1.4, 1.65) for s in subject_ids])


@dataclass
class ClipBatch:
    """Clips of one action, in the scene frame (metres, y up, ground at y = 0, person 1 facing +z)."""

    bodies: np.ndarray  # (B, M, T, 25, 3); frames >= num_frames and absent persons are zero
    num_frames: np.ndarray  # (B,)
    onset: np.ndarray  # (B,) first frame of the action
    duration: np.ndarray  # (B,) frames the action lasts


def simulate(
    spec: ActionSpec,
    subjects: Subjects,
    who: np.ndarray,
    rng: np.random.Generator,
    num_frames_range: tuple[int, int] = (60, 120),
    jitter: float = 1.0,
    margins: tuple[float, float] = (0.12, 0.1),
) -> ClipBatch:
    """Run `spec` for performers `who` (`(B, persons)` row indices into `subjects`), noise-free.

    The clip is the action plus short still margins (up to `margins` of the clip before and after);
    the action's duration comes from its natural range and the performer's tempo, and the clip length
    is then kept inside `num_frames_range`.
    """
    b, lo, hi = who.shape[0], num_frames_range[0], num_frames_range[1]
    if not 1 <= lo <= hi:
        raise ValueError(f"num_frames_range must satisfy 1 <= lo <= hi, got {num_frames_range}")
    main = who[:, 0]
    speed = subjects.tempo[main] * rng.uniform(0.9, 1.1, b)
    act_s = rng.uniform(*spec.duration_s, b) / speed
    pre, post = rng.uniform(0, margins[0], b), rng.uniform(0, margins[1], b)
    n = np.clip(np.round(act_s * FPS / (1 - pre - post)), lo, hi).astype(np.int64)
    onset = np.floor(pre * n).astype(np.int64)
    dur = np.maximum(n - onset - np.floor(post * n).astype(np.int64), 2)
    frames = np.arange(hi)[None, :]
    lin = np.clip((frames - onset[:, None]) / (dur[:, None] - 1), 0.0, 1.0)
    warp = rng.uniform(-0.4, 0.4, (b, 1))  # uneven pace within the action, still monotonic
    ctx = Context(
        t=(frames - onset[:, None]) / FPS,
        phase=lin + warp * np.sin(2 * np.pi * lin) / (2 * np.pi),
        amp=(subjects.vigour[main] * rng.uniform(0.85, 1.15, b))[:, None],
        speed=speed[:, None],
        seat=seat_angle(subjects.ids[main])[:, None],
        lengths=subjects.lengths[who],
        rng=rng,
    )
    motions = []
    for k in range(spec.persons):
        s = who[:, k]
        rest = rest_channels(rng, subjects.arm_hang[s], subjects.elbow_rest[s], subjects.stance[s], jitter)
        motions.append(Motion(rest, hi, subjects.right_handed[s]))
    spec.program(ctx, motions)

    bodies = np.zeros((b, NUM_PERSONS, hi, 25, 3))
    for k, m in enumerate(motions):
        joints = forward_kinematics(subjects.lengths[who[:, k]], to_rotations(m.ch), m.root)
        joints[..., 1] -= joints[..., _FEET, 1].min(axis=-1, keepdims=True)  # lowest foot on the ground
        if spec.planted:  # feet stay where they stood in the first frame, which is the origin
            mid = joints[:, :, _ANKLES][..., [0, 2]].mean(axis=2)  # (B, T, 2)
            joints[..., [0, 2]] -= mid[:, :, None, :]
        bodies[:, k] = joints
    if spec.persons == 2:
        _face_partner(bodies, motions, ctx, onset, dur, rng)
    bodies[(frames >= n[:, None])[:, None].repeat(NUM_PERSONS, axis=1)] = 0.0
    return ClipBatch(bodies=bodies, num_frames=n, onset=onset, duration=dur)


def _face_partner(
    bodies: np.ndarray,
    motions: list[Motion],
    ctx: Context,
    onset: np.ndarray,
    dur: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Turn person 2 to face person 1, placed so that their working hands meet at `ctx.meet`."""
    b = bodies.shape[0]
    rows = np.arange(b)
    meet = ctx.meet if ctx.meet is not None else np.full(b, 0.5)
    f = np.clip(onset + np.round(meet * (dur - 1)).astype(np.int64), 0, bodies.shape[2] - 1)
    h1 = bodies[rows, 0, f][rows, np.where(motions[0].right, _HAND[True], _HAND[False])]
    h2 = bodies[rows, 1, f][rows, np.where(motions[1].right, _HAND[True], _HAND[False])]
    gap = rng.uniform(0.02, 0.08, b)
    dx, dz = h1[:, 0] + h2[:, 0], np.maximum(h1[:, 2] + h2[:, 2] + gap, 0.55)
    turned = bodies[:, 1] @ rot_y(np.full(b, np.pi)).transpose(0, 2, 1)[:, None, :, :]
    turned[..., 0] += dx[:, None, None]
    turned[..., 2] += dz[:, None, None]
    bodies[:, 1] = turned


@dataclass(frozen=True)
class View:
    """Camera placement per clip (NTU-like: 2-4 m away, 0.6-1.3 m high, slight tilt)."""

    yaw: np.ndarray  # rotation of the scene about the vertical axis (rad); 0: person 1 faces the camera
    pitch: np.ndarray
    height: np.ndarray
    distance: np.ndarray
    lateral: np.ndarray


def sample_views(rng: np.random.Generator, b: int, two_person: bool = False) -> View:
    """Random viewpoints; two-person scenes are seen from the side (both faces partly visible)."""
    yaw = rng.uniform(-0.8, 0.8, b)
    if two_person:
        yaw = np.where(rng.random(b) < 0.5, 1.0, -1.0) * rng.uniform(0.9, 1.5, b)
    return View(
        yaw=yaw,
        pitch=rng.uniform(-0.12, 0.12, b),
        height=rng.uniform(0.6, 1.3, b),
        distance=rng.uniform(2.3, 3.8, b),
        lateral=rng.uniform(-0.4, 0.4, b),
    )


def to_camera(bodies: np.ndarray, view: View, centre: np.ndarray | None = None) -> np.ndarray:
    """Scene frame `(B, M, T, V, 3)` -> camera frame (NTU: x to the camera's left, y up, z away).

    The scene is centred on the middle of the persons present, turned by `view.yaw` (plus a half turn,
    so that yaw 0 shows person 1's front), pushed `distance` away, lowered by the camera height and
    tilted by `pitch`. Absent (all-zero) person-frames stay zero. `centre` `(B, 3)` overrides the
    point of the scene that ends up in front of the camera.
    """
    present = np.any(bodies != 0, axis=(-1, -2))  # (B, M, T)
    if centre is None:
        w = present[..., None, None]
        centre = (bodies * w).sum(axis=(1, 2, 3)) / np.maximum(w.sum(axis=(1, 2, 3)) * bodies.shape[3], 1)
    centre = np.array(centre, dtype=np.float64)
    centre[:, 1] = 0.0  # keep the ground at y = 0 before lowering it
    rot = rot_x(view.pitch) @ rot_y(np.pi + view.yaw)  # (B, 3, 3)
    shift = np.stack([view.lateral, -view.height, view.distance], axis=1)
    out = (bodies - centre[:, None, None, None, :]) @ rot.transpose(0, 2, 1)[:, None, None]
    out += np.einsum("bij,bj->bi", rot_x(view.pitch), shift)[:, None, None, None, :]
    out[~present] = 0.0
    return out


@dataclass
class SyntheticDataset:
    """All clips of the set (`x` rows) with labels, performers and the cross-subject split."""

    x: np.ndarray  # (N, T_pad, M*V*3) float32
    labels: np.ndarray  # (N,) class index into `label_names`
    subjects: np.ndarray  # (N,) performer id of person 1
    num_frames: np.ndarray  # (N,) valid frames of each clip
    is_test: np.ndarray  # (N,) bool
    label_names: tuple[str, ...] = ACTION_NAMES
    meta: dict[str, Any] = field(default_factory=dict)

    def _onehot(self, rows: np.ndarray) -> np.ndarray:
        return np.eye(len(self.label_names))[self.labels[rows]]

    @property
    def x_train(self) -> np.ndarray:
        return self.x[~self.is_test]

    @property
    def x_test(self) -> np.ndarray:
        return self.x[self.is_test]

    @property
    def y_train(self) -> np.ndarray:
        return self._onehot(~self.is_test)

    @property
    def y_test(self) -> np.ndarray:
        return self._onehot(self.is_test)


def generate_dataset(
    num_per_class: int = 60,
    seed: int = 0,
    num_frames_range: tuple[int, int] = (60, 120),
    num_subjects: int = 20,
    test_fraction: float = 0.3,
    noise: NoiseSettings | None = None,
    centre: bool = True,
    classes: tuple[str, ...] | None = None,
) -> SyntheticDataset:
    """Generate `num_per_class` clips of every action (deterministic for a seed).

    Every performer does every action about equally often; `test_fraction` of the performers are
    held out (cross-subject split), so per-class counts are balanced in both splits. `noise=None`
    uses the default sensor corruption; `NoiseSettings.off()` gives exact kinematic skeletons.
    `centre` applies the NTU centring (actor 1's spine_mid in its first frame at the origin).
    `classes` restricts the set; labels then index the kept classes in `ACTION_NAMES` order.
    """
    if not 8 <= num_frames_range[0] <= num_frames_range[1]:
        raise ValueError(
            f"num_frames_range must satisfy 8 <= lo <= hi (an action needs frames), got {num_frames_range}"
        )
    if num_per_class < 1 or num_subjects < 2:
        raise ValueError(
            f"need num_per_class >= 1 and num_subjects >= 2, got {num_per_class}, {num_subjects}"
        )
    noise = NoiseSettings() if noise is None else noise
    specs = [a for a in ACTIONS if classes is None or a.name in classes]
    if classes is not None and len(specs) != len(set(classes)):
        unknown = sorted(set(classes) - {a.name for a in ACTIONS})
        raise KeyError(f"unknown synthetic action(s) {unknown}; known: {', '.join(ACTION_NAMES)}")
    rng = np.random.default_rng([seed, 0])
    subjects = sample_subjects(rng, num_subjects)
    n_test = min(max(1, round(test_fraction * num_subjects)), num_subjects - 1)
    test_rows = np.sort(rng.choice(num_subjects, n_test, replace=False))
    is_test_subject = np.isin(np.arange(num_subjects), test_rows)
    t_pad = num_frames_range[1]
    xs, labels, subj, nfr = [], [], [], []
    for spec in specs:
        k = ACTION_NAMES.index(spec.name)
        crng = np.random.default_rng([seed, 1, k])
        main = (np.arange(num_per_class) + 7 * k) % num_subjects
        who = main[:, None]
        if spec.persons == 2:  # partner from the same side of the split, never the performer
            same = [
                np.flatnonzero((is_test_subject == is_test_subject[s]) & (np.arange(num_subjects) != s))
                for s in main
            ]
            partner = np.array(
                [c[crng.integers(len(c))] if len(c) else (s + 1) % num_subjects for c, s in zip(same, main)]
            )
            who = np.stack([main, partner], axis=1)
        batch = simulate(spec, subjects, who, crng, num_frames_range)
        cam = to_camera(batch.bodies, sample_views(crng, num_per_class, spec.persons == 2))
        cam, _ = corrupt(cam, batch.num_frames, crng, noise)
        if centre:
            cam = np.stack([centre_clip(c.transpose(1, 0, 2, 3), 1).transpose(1, 0, 2, 3) for c in cam])
        xs.append(cam.transpose(0, 2, 1, 3, 4).reshape(num_per_class, t_pad, -1).astype(np.float32))
        labels.append(np.full(num_per_class, len(labels)))
        subj.append(subjects.ids[main])
        nfr.append(batch.num_frames)
    subj_all = np.concatenate(subj)
    test_ids = subjects.ids[test_rows]
    meta = {
        "dataset": DATASET_NAME,
        "layout": NTU25.name,
        "fps": FPS,
        "num_persons": NUM_PERSONS,
        "num_joints": NTU25.num_joints,
        "max_frames": t_pad,
        "centre": "spine_mid of person 1 in its first non-zero frame" if centre else None,
        "protocol": "cross_subject",
        "train_subjects": sorted(int(s) for s in set(subjects.ids) - set(test_ids)),
        "test_subjects": [int(s) for s in test_ids],
        "generator": {
            "seed": seed,
            "num_per_class": num_per_class,
            "num_frames_range": list(num_frames_range),
            "num_subjects": num_subjects,
            "noise": noise.to_dict(),
        },
    }
    return SyntheticDataset(
        x=np.concatenate(xs),
        labels=np.concatenate(labels),
        subjects=subj_all,
        num_frames=np.concatenate(nfr),
        is_test=np.isin(subj_all, test_ids),
        label_names=tuple(s.name for s in specs),
        meta=meta,
    )


def clip_names(dataset: SyntheticDataset) -> list[str]:
    """NTU-like clip names: performer, action (1-based) and a running number, e.g. `P003A012R007`."""
    counter: dict[tuple[int, int], int] = {}
    names = []
    for subject, label in zip(dataset.subjects.tolist(), dataset.labels.tolist()):
        r = counter[subject, label] = counter.get((subject, label), 0) + 1
        names.append(f"P{subject:03d}A{label + 1:03d}R{r:03d}")
    return names


def _split_meta(dataset: SyntheticDataset, rows: np.ndarray) -> dict[str, list]:
    """The per-split block of the data pipeline's sidecar (`masksem_core.data.prepare`)."""
    names = clip_names(dataset)
    return {
        "names": [names[i] for i in rows],
        "valid_lengths": dataset.num_frames[rows].tolist(),
        "labels": dataset.labels[rows].tolist(),
    }


def write_dataset(out_dir: str | os.PathLike, dataset: SyntheticDataset, name: str = DATASET_NAME) -> Path:
    """Write `<out_dir>/<name>.npz` (x_train, y_train, x_test, y_test) and its JSON sidecar, atomically,
    with the data pipeline's writer, so the file is indistinguishable from a prepared NTU split."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.npz"
    rows = np.arange(len(dataset.labels))
    train, test = rows[~dataset.is_test], rows[dataset.is_test]
    sidecar = {
        **dataset.meta,
        "split": name,
        "labels": list(dataset.label_names),
        "num_classes": len(dataset.label_names),
        "train": _split_meta(dataset, train),
        "test": _split_meta(dataset, test),
    }
    write_split_npz(path, dataset.x, train, test, dataset.labels, len(dataset.label_names), sidecar)
    return path
