"""Continuous synthetic recordings: several actions in a row at 30 Hz, with ground-truth intervals.

What a robot's skeleton tracker would stream during a collaboration session: person "1" stands in
front of the camera and performs actions separated by idle gaps, turning between them; a partner
("2") steps in for the two-person interactions; a passer-by ("3") crosses the background for
walk_past. Every gap and scene is produced by the same motion programs and kinematics as the data set,
in one camera view, then corrupted like a depth sensor (persons a tracker loses for a frame are left
out of that frame). Frames outside every interval are idle or turning (background).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from masksem_core.data.arrays import atomic_write_bytes
from masksem_core.layouts import NTU25
from masksem_core.synthetic.actions import ACTION_NAMES, get_action
from masksem_core.synthetic.corruption import NoiseSettings, corrupt
from masksem_core.synthetic.generator import FPS, View, simulate, to_camera
from masksem_core.synthetic.kinematics import rot_y, sample_subjects
from masksem_core.synthetic.pose import smoothstep

MAIN, PARTNER, PASSER_BY = "1", "2", "3"
_PERSONS = (MAIN, PARTNER, PASSER_BY)

Frame = tuple[float, dict[str, tuple[np.ndarray, np.ndarray]]]


class TruthInterval(NamedTuple):
    """`label` performed by `person_id` during [start_s, end_s) (stamps on the recording's clock)."""

    start_s: float
    end_s: float
    label: str
    person_id: str


@dataclass
class Recording:
    """Frames `(stamp_s, {person_id: (joints (25, 3) float32, confidence (25,) float32)})` at `fps`."""

    frames: list[Frame]
    intervals: list[TruthInterval]
    fps: float = FPS
    layout: str = NTU25.name

    @property
    def stamps(self) -> np.ndarray:
        return np.array([s for s, _ in self.frames])

    @property
    def duration_s(self) -> float:
        return len(self.frames) / self.fps


def plan_actions(rng: np.random.Generator, num_actions: int) -> list[str]:
    """`num_actions` actions (one more when it ends in sit_down): every action before any repeats,
    no immediate repeats, every sit_down followed by a stand_up."""

    def shuffled() -> list[str]:
        return [str(a) for a in rng.permutation([a for a in ACTION_NAMES if a != "stand_up"])]

    pool: list[str] = []
    out: list[str] = []
    while len(out) < num_actions:
        pool = pool or shuffled()
        name = pool.pop()
        if out and name == out[-1]:
            pool = [name, *(pool or shuffled())]
            continue
        out += ["sit_down", "stand_up"] if name == "sit_down" else [name]
    return out


def _check_plan(actions: list[str]) -> None:
    for i, name in enumerate(actions):
        get_action(name)  # unknown names raise here, listing the known ones
        if name == "sit_down" and (i + 1 == len(actions) or actions[i + 1] != "stand_up"):
            raise ValueError(f"actions[{i}] is sit_down: it must be followed by stand_up")
        if name == "stand_up" and (i == 0 or actions[i - 1] != "sit_down"):
            raise ValueError(f"actions[{i}] is stand_up: it must follow sit_down")


def _turn(joints: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Rotate `(T, V, 3)` about the vertical axis through the origin by `yaw (T,)`."""
    return np.einsum("tij,tvj->tvi", rot_y(yaw), joints)


def make_recording(
    seed: int = 0,
    num_actions: int = 8,
    actions: list[str] | None = None,
    gap_s: tuple[float, float] = (0.8, 2.0),
    start_s: float = 0.0,
    noise: NoiseSettings | None = None,
) -> Recording:
    """A continuous recording of `actions` (or `num_actions` drawn at random), deterministic by seed."""
    rng = np.random.default_rng([seed, 2])
    plan = list(actions) if actions is not None else plan_actions(rng, num_actions)
    _check_plan(plan)
    subjects = sample_subjects(rng, 3)
    idle = get_action("idle")
    parts: dict[str, list[tuple[int, np.ndarray]]] = {p: [] for p in _PERSONS}
    intervals: list[tuple[int, int, str, str]] = []
    cursor, yaw = 0, 0.0

    def main_segment(joints: np.ndarray, yaw_to: float) -> None:
        nonlocal cursor, yaw
        n = len(joints)
        turn = yaw + (yaw_to - yaw) * smoothstep(np.linspace(-0.2, 1.2, n))
        parts[MAIN].append((cursor, _turn(joints, turn)))
        cursor, yaw = cursor + n, yaw_to

    def gap(n: int, yaw_to: float) -> None:
        cb = simulate(idle, subjects, np.array([[0]]), rng, (n, n), jitter=0.0, margins=(0.0, 0.0))
        main_segment(cb.bodies[0, 0, :n], yaw_to)

    for name in plan:
        spec = get_action(name)
        if name != "stand_up":  # stand_up continues straight from the seated end of sit_down
            target = float(rng.uniform(-0.35, 0.35))
            if spec.persons == 2:
                target = float(rng.choice([-1.0, 1.0]) * rng.uniform(1.2, 1.9))
            gap(max(int(rng.uniform(*gap_s) * FPS), 2), target)  # idle, turning to face the next scene
        who = np.array([[2]]) if name == "walk_past" else np.array([[0, 1][: spec.persons]])
        cb = simulate(spec, subjects, who, rng, (45, 150), jitter=0.0, margins=(0.06, 0.06))
        n = int(cb.num_frames[0])
        start, stop = cursor + int(cb.onset[0]), cursor + int(cb.onset[0] + cb.duration[0])
        if name == "walk_past":  # a colleague crosses behind person 1, who idles meanwhile
            behind = np.array([rng.uniform(-0.3, 0.3), 0.0, -rng.uniform(1.3, 2.2)])
            parts[PASSER_BY].append((cursor, cb.bodies[0, 0, :n] + behind))
            intervals.append((start, stop, name, PASSER_BY))
            gap(n, yaw)
            continue
        turn = np.full(n, yaw)
        if spec.persons == 2:
            parts[PARTNER].append((cursor, _turn(cb.bodies[0, 1, :n], turn)))
            intervals.append((start, stop, name, PARTNER))
        intervals.append((start, stop, name, MAIN))
        main_segment(cb.bodies[0, 0, :n], yaw)
    gap(max(int(rng.uniform(*gap_s) * FPS), 2), yaw)

    world = np.zeros((1, len(_PERSONS), cursor, NTU25.num_joints, 3))
    for k, pid in enumerate(_PERSONS):
        for at, joints in parts[pid]:
            world[0, k, at : at + len(joints)] = joints
    view = View(
        yaw=rng.uniform(-0.35, 0.35, 1),
        pitch=rng.uniform(-0.1, 0.1, 1),
        height=rng.uniform(0.7, 1.2, 1),
        distance=rng.uniform(2.5, 3.5, 1),
        lateral=rng.uniform(-0.3, 0.3, 1),
    )
    cam = to_camera(world, view, centre=np.zeros((1, 3)))
    noise = NoiseSettings() if noise is None else noise
    per_clip = cursor / 90.0  # corruption rates are per ~3 s clip
    noise = dataclasses.replace(
        noise,
        spikes_per_clip=noise.spikes_per_clip * per_clip,
        joint_dropouts_per_clip=noise.joint_dropouts_per_clip * per_clip,
        body_dropout_prob=min(1.0, noise.body_dropout_prob * per_clip),
    )
    cam, conf = corrupt(cam, np.array([cursor]), rng, noise)
    cam, conf = cam[0].astype(np.float32), conf[0].astype(np.float32)
    present = np.any(cam != 0, axis=(-1, -2))  # (P, T)
    frames = [
        (start_s + t / FPS, {pid: (cam[k, t], conf[k, t]) for k, pid in enumerate(_PERSONS) if present[k, t]})
        for t in range(cursor)
    ]
    truth = [TruthInterval(start_s + a / FPS, start_s + b / FPS, lab, pid) for a, b, lab, pid in intervals]
    return Recording(frames=frames, intervals=sorted(truth), fps=FPS)


def write_intervals_csv(path: str | os.PathLike, recording: Recording) -> Path:
    """`start,end,label,person_id` rows (the replay's ground-truth CSV), written atomically."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["start", "end", "label", "person_id"])
    for iv in recording.intervals:
        w.writerow([f"{iv.start_s:.6f}", f"{iv.end_s:.6f}", iv.label, iv.person_id])
    atomic_write_bytes(path, buf.getvalue().encode())
    return Path(path)


GROUND_TRUTH_TOPIC = "/masksem/ground_truth"


def write_recording_bag(
    path: str | os.PathLike,
    recording: Recording,
    storage: str = "mcap",
    label_topic: str | None = GROUND_TRUTH_TOPIC,
) -> Path:
    """Store the recording as a rosbag2 bag of Skeleton3DArray messages (plus, unless `label_topic` is
    None, the ground truth as `std_msgs/String` "person_id:label" events, which `masksem replay` reads)."""
    from masksem_core.rosmsg.bag_io import write_skeleton_bag
    from masksem_core.rosmsg.messages import get_typestore

    extra = None
    if label_topic:
        string = get_typestore().types["std_msgs/msg/String"]
        events = sorted(
            [(iv.end_s, 0, f"{iv.person_id}:") for iv in recording.intervals]
            + [(iv.start_s, 1, f"{iv.person_id}:{iv.label}") for iv in recording.intervals]
        )
        extra = {label_topic: ("std_msgs/msg/String", [(t, string(data=d)) for t, _, d in events])}
    return write_skeleton_bag(path, recording.frames, recording.layout, storage=storage, extra_topics=extra)
