"""A kinematic NTU-25 skeleton: per-subject bone lengths and forward kinematics from joint rotations.

Motion comes from rotating bones about their parent joints, never from moving joints independently,
so every bone keeps its length in every frame (the property real skeletons have and that noise-driven
toy data lacks). The body frame is right-handed: x = the person's left, y = up, z = forward.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from masksem_core.layouts import NTU25

NUM_JOINTS = NTU25.num_joints
PARENTS = np.array(NTU25.parent_of_joint(), dtype=np.int64)
ROOT = int(np.flatnonzero(PARENTS < 0)[0])

# Median bone lengths (metres) of the bodies in the five real NTU RGB+D samples in shared/data,
# left/right averaged; keyed by child joint name (the bone from its parent to it).
NTU_BONE_LENGTHS: dict[str, float] = {
    "spine_mid": 0.277,
    "spine_shoulder": 0.205,
    "neck": 0.068,
    "head": 0.127,
    "shoulder_left": 0.148,
    "elbow_left": 0.229,
    "wrist_left": 0.229,
    "hand_left": 0.062,
    "hand_tip_left": 0.055,
    "thumb_left": 0.078,
    "shoulder_right": 0.148,
    "elbow_right": 0.229,
    "wrist_right": 0.229,
    "hand_right": 0.062,
    "hand_tip_right": 0.055,
    "thumb_right": 0.078,
    "hip_left": 0.070,
    "knee_left": 0.329,
    "ankle_left": 0.339,
    "foot_left": 0.110,
    "hip_right": 0.070,
    "knee_right": 0.329,
    "ankle_right": 0.339,
    "foot_right": 0.110,
}

# Direction of each bone (parent -> joint) in the rest pose, body frame: standing upright, arms hanging
# with palms facing the thighs, thumbs forward, feet pointing forward.
_REST_DIRECTION: dict[str, tuple[float, float, float]] = {
    "spine_mid": (0, 1, 0),
    "spine_shoulder": (0, 1, 0),
    "neck": (0, 1, 0),
    "head": (0, 1, 0.08),
    "shoulder_left": (1, -0.12, 0),
    "elbow_left": (0, -1, 0),
    "wrist_left": (0, -1, 0),
    "hand_left": (0, -1, 0),
    "hand_tip_left": (0, -1, 0),
    "thumb_left": (-0.1, -0.55, 0.8),
    "hip_left": (0.8, -0.6, 0),
    "knee_left": (0, -1, 0),
    "ankle_left": (0, -1, 0),
    "foot_left": (0, -0.35, 1),
}


def _rest_directions() -> np.ndarray:
    out = np.zeros((NUM_JOINTS, 3))
    for name, d in _REST_DIRECTION.items():
        out[NTU25.index(name)] = d
        if name.endswith("_left"):  # the right side is the mirror image across the x = 0 plane
            out[NTU25.index(name[:-5] + "_right")] = (-d[0], d[1], d[2])
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)


REST_DIRECTIONS = _rest_directions()
BASE_LENGTHS = np.array([NTU_BONE_LENGTHS.get(n, 0.0) for n in NTU25.joint_names])


def _topological_order() -> list[int]:
    order, frontier = [], [ROOT]
    while frontier:
        j = frontier.pop(0)
        order.append(j)
        frontier.extend(int(c) for c in np.flatnonzero(PARENTS == j))
    return order


FK_ORDER = _topological_order()
HAS_CHILDREN = np.isin(np.arange(NUM_JOINTS), PARENTS)

# Joints whose bones scale together when a subject's proportions vary.
_GROUPS = {
    "torso": ("spine_mid", "spine_shoulder", "neck"),
    "head": ("head",),
    "shoulders": ("shoulder_left", "shoulder_right"),
    "arms": ("elbow_left", "wrist_left", "elbow_right", "wrist_right"),
    "hands": ("hand_left", "hand_tip_left", "thumb_left", "hand_right", "hand_tip_right", "thumb_right"),
    "hips": ("hip_left", "hip_right"),
    "legs": ("knee_left", "ankle_left", "knee_right", "ankle_right"),
    "feet": ("foot_left", "foot_right"),
}
_GROUP_SPREAD = {
    "torso": 0.04,
    "head": 0.05,
    "shoulders": 0.08,
    "arms": 0.05,
    "hands": 0.08,
    "hips": 0.10,
    "legs": 0.05,
    "feet": 0.07,
}


def sample_bone_lengths(rng: np.random.Generator, n: int) -> np.ndarray:
    """`(n, 25)` bone lengths (bone ending at each joint; 0 for the root) for `n` distinct bodies.

    Overall stature varies by about +-7% and each body segment group by a further few percent, so
    subjects differ in proportions, not only in size, as the NTU performers do.
    """
    stature = np.clip(rng.normal(1.0, 0.07, size=(n, 1)), 0.82, 1.2)
    scale = np.ones((n, NUM_JOINTS))
    for group, names in _GROUPS.items():
        factor = np.clip(rng.normal(1.0, _GROUP_SPREAD[group], size=n), 0.75, 1.3)
        scale[:, [NTU25.index(nm) for nm in names]] *= factor[:, None]
    return BASE_LENGTHS[None] * stature * scale


def rot_x(a: np.ndarray) -> np.ndarray:
    """Rotation matrices `(..., 3, 3)` about x; positive tips an upright bone forward (+z)."""
    c, s, o, z = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    return np.stack([o, z, z, z, c, -s, z, s, c], axis=-1).reshape(*np.shape(a), 3, 3)


def rot_y(a: np.ndarray) -> np.ndarray:
    """Rotation matrices `(..., 3, 3)` about the vertical axis; positive turns +z towards +x."""
    c, s, o, z = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    return np.stack([c, z, s, z, o, z, -s, z, c], axis=-1).reshape(*np.shape(a), 3, 3)


def rot_z(a: np.ndarray) -> np.ndarray:
    """Rotation matrices `(..., 3, 3)` about z; positive turns +x towards +y."""
    c, s, o, z = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    return np.stack([c, -s, z, s, c, z, z, z, o], axis=-1).reshape(*np.shape(a), 3, 3)


def forward_kinematics(lengths: np.ndarray, local_rot: np.ndarray, root_pos: np.ndarray) -> np.ndarray:
    """Joint positions `(B, T, 25, 3)` from bone lengths `(B, 25)`, local rotations `(B, T, 25, 3, 3)`
    and root positions `(B, T, 3)`.

    Joint j's local rotation turns every bone that leaves j (relative to j's parent frame); the root's
    is the whole body's orientation. Rotations are orthonormal, so bone lengths are exact.
    """
    b, t = local_rot.shape[:2]
    if lengths.shape != (b, NUM_JOINTS) or root_pos.shape != (b, t, 3):
        raise ValueError(
            f"forward_kinematics: lengths {lengths.shape} / root_pos {root_pos.shape} do not "
            f"match rotations {local_rot.shape}"
        )
    pos = np.zeros((b, t, NUM_JOINTS, 3))
    glob = np.zeros((b, t, NUM_JOINTS, 3, 3))
    offsets = lengths[:, :, None] * REST_DIRECTIONS[None]  # (B, 25, 3)
    for j in FK_ORDER:
        p = PARENTS[j]
        if p < 0:
            pos[:, :, j] = root_pos
            glob[:, :, j] = local_rot[:, :, j]
            continue
        pos[:, :, j] = pos[:, :, p] + np.einsum("btij,bj->bti", glob[:, :, p], offsets[:, j])
        if HAS_CHILDREN[j]:
            glob[:, :, j] = glob[:, :, p] @ local_rot[:, :, j]
    return pos


def measured_bone_lengths(joints: np.ndarray) -> np.ndarray:
    """Length of every NTU bone `(..., 24)` measured from joint positions `(..., 25, 3)`."""
    child = np.array([c for c, _ in NTU25.bones])
    parent = np.array([p for _, p in NTU25.bones])
    return np.linalg.norm(joints[..., child, :] - joints[..., parent, :], axis=-1)


@dataclass(frozen=True)
class Subjects:
    """A table of synthetic performers: the per-person traits that stay fixed across their clips."""

    ids: np.ndarray  # (S,) 1-based subject ids
    lengths: np.ndarray  # (S, 25) bone lengths
    right_handed: np.ndarray  # (S,) bool
    tempo: np.ndarray  # (S,) personal speed factor, ~1
    vigour: np.ndarray  # (S,) personal movement amplitude factor, ~1
    arm_hang: np.ndarray  # (S,) how far the arms hang away from the body at rest (rad)
    elbow_rest: np.ndarray  # (S,) rest elbow bend (rad)
    stance: np.ndarray  # (S,) leg abduction at rest (rad): stance width

    def __len__(self) -> int:
        return len(self.ids)


def sample_subjects(rng: np.random.Generator, n: int) -> Subjects:
    """`n` performers with their own body, handedness (about 1 in 8 left-handed) and style."""
    return Subjects(
        ids=np.arange(1, n + 1),
        lengths=sample_bone_lengths(rng, n),
        right_handed=rng.random(n) > 0.125,
        tempo=np.clip(rng.normal(1.0, 0.12, n), 0.75, 1.3),
        vigour=np.clip(rng.normal(1.0, 0.1, n), 0.75, 1.3),
        arm_hang=rng.uniform(0.03, 0.22, n),
        elbow_rest=rng.uniform(0.05, 0.45, n),
        stance=rng.uniform(0.02, 0.11, n),
    )
