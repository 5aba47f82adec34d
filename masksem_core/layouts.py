"""Skeleton joint layouts as data: joint names, bones and the five body parts used by masking.

Every place that needs to know "which joint is the left wrist" or "which joints form the right arm"
reads it from here, so a new sensor layout is one entry, not a hunt through the code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PART_NAMES = ("trunk", "left_arm", "right_arm", "left_leg", "right_leg")


@dataclass(frozen=True)
class SkeletonLayout:
    """A joint layout. Indices are 0-based everywhere in code.

    `bones` are (child, parent) pairs, oriented away from the body centre; `parts` lists the joints of
    the five body parts in `PART_NAMES` order; `up_axis` says which coordinate points up (+1) or
    down (-1) in the sensor's convention.
    """

    name: str
    joint_names: tuple[str, ...]
    bones: tuple[tuple[int, int], ...]
    parts: tuple[tuple[int, ...], ...]
    centre_joint: int
    up: tuple[int, int] = (1, 1)  # (axis, sign)
    description: str = ""
    _index: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {n: i for i, n in enumerate(self.joint_names)})
        v = len(self.joint_names)
        for child, parent in self.bones:
            if not (0 <= child < v and 0 <= parent < v):
                raise ValueError(f"layout {self.name}: bone ({child}, {parent}) outside 0..{v - 1}")
        covered = sorted(j for part in self.parts for j in part)
        if covered != list(range(v)):
            raise ValueError(f"layout {self.name}: body parts must cover every joint exactly once")
        if len(self.parts) != len(PART_NAMES):
            raise ValueError(f"layout {self.name}: needs {len(PART_NAMES)} body parts")

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def index(self, joint_name: str) -> int:
        """0-based index of a joint by name; KeyError names the layout and the joint."""
        try:
            return self._index[joint_name]
        except KeyError:
            raise KeyError(f"layout {self.name} has no joint {joint_name!r}") from None

    def part_of_joint(self) -> list[int]:
        """For every joint, the index of its body part."""
        out = [0] * self.num_joints
        for p, joints in enumerate(self.parts):
            for j in joints:
                out[j] = p
        return out

    def parent_of_joint(self) -> list[int]:
        """Parent joint for each joint (-1 for roots); only meaningful for tree layouts."""
        parents = [-1] * self.num_joints
        for child, parent in self.bones:
            parents[child] = parent
        return parents


def _zero_based(pairs: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    return tuple((a - 1, b - 1) for a, b in pairs)


def _parts(*groups: list[int], one_based: bool = True) -> tuple[tuple[int, ...], ...]:
    off = 1 if one_based else 0
    return tuple(tuple(j - off for j in g) for g in groups)


NTU25 = SkeletonLayout(
    name="ntu25",
    description="Kinect v2, 25 joints (NTU RGB+D 60/120, PKU-MMD); metres, camera space, y up",
    joint_names=(
        "spine_base",
        "spine_mid",
        "neck",
        "head",
        "shoulder_left",
        "elbow_left",
        "wrist_left",
        "hand_left",
        "shoulder_right",
        "elbow_right",
        "wrist_right",
        "hand_right",
        "hip_left",
        "knee_left",
        "ankle_left",
        "foot_left",
        "hip_right",
        "knee_right",
        "ankle_right",
        "foot_right",
        "spine_shoulder",
        "hand_tip_left",
        "thumb_left",
        "hand_tip_right",
        "thumb_right",
    ),
    bones=_zero_based(
        [
            (2, 1),
            (21, 2),
            (3, 21),
            (4, 3),
            (5, 21),
            (6, 5),
            (7, 6),
            (8, 7),
            (22, 8),
            (23, 7),
            (9, 21),
            (10, 9),
            (11, 10),
            (12, 11),
            (24, 12),
            (25, 11),
            (13, 1),
            (14, 13),
            (15, 14),
            (16, 15),
            (17, 1),
            (18, 17),
            (19, 18),
            (20, 19),
        ]
    ),
    # METHOD.md: trunk 1,2,3,4,21; left arm 5-8,22,23; right arm 9-12,24,25; legs 13-16, 17-20.
    parts=_parts(
        [1, 2, 3, 4, 21], [5, 6, 7, 8, 22, 23], [9, 10, 11, 12, 24, 25], [13, 14, 15, 16], [17, 18, 19, 20]
    ),
    centre_joint=1,  # spine_mid, the NTU centring joint
)

KINECT_V1_20 = SkeletonLayout(
    name="kinect_v1_20",
    description="Kinect v1, 20 joints (NW-UCLA, UTD-MHAD, MSR Action3D); metres, camera space, y up",
    joint_names=(
        "hip_center",
        "spine",
        "shoulder_center",
        "head",
        "shoulder_left",
        "elbow_left",
        "wrist_left",
        "hand_left",
        "shoulder_right",
        "elbow_right",
        "wrist_right",
        "hand_right",
        "hip_left",
        "knee_left",
        "ankle_left",
        "foot_left",
        "hip_right",
        "knee_right",
        "ankle_right",
        "foot_right",
    ),
    bones=_zero_based(
        [
            (2, 1),
            (3, 2),
            (4, 3),
            (5, 3),
            (6, 5),
            (7, 6),
            (8, 7),
            (9, 3),
            (10, 9),
            (11, 10),
            (12, 11),
            (13, 1),
            (14, 13),
            (15, 14),
            (16, 15),
            (17, 1),
            (18, 17),
            (19, 18),
            (20, 19),
        ]
    ),
    parts=_parts([1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16], [17, 18, 19, 20]),
    centre_joint=1,  # spine
)

MEDIAPIPE33 = SkeletonLayout(
    name="mediapipe33",
    description="MediaPipe Pose world landmarks, 33 joints; metres, hip-centred, y DOWN",
    joint_names=(
        "nose",
        "left_eye_inner",
        "left_eye",
        "left_eye_outer",
        "right_eye_inner",
        "right_eye",
        "right_eye_outer",
        "left_ear",
        "right_ear",
        "mouth_left",
        "mouth_right",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_pinky",
        "right_pinky",
        "left_index",
        "right_index",
        "left_thumb",
        "right_thumb",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
        "left_heel",
        "right_heel",
        "left_foot_index",
        "right_foot_index",
    ),
    # MediaPipe's POSE_CONNECTIONS, each oriented away from the torso (child, parent).
    bones=(
        (1, 0),
        (2, 1),
        (3, 2),
        (7, 3),
        (4, 0),
        (5, 4),
        (6, 5),
        (8, 6),
        (10, 9),
        (12, 11),
        (13, 11),
        (15, 13),
        (17, 15),
        (19, 15),
        (21, 15),
        (19, 17),
        (14, 12),
        (16, 14),
        (18, 16),
        (20, 16),
        (22, 16),
        (20, 18),
        (23, 11),
        (24, 12),
        (24, 23),
        (25, 23),
        (27, 25),
        (29, 27),
        (31, 27),
        (31, 29),
        (26, 24),
        (28, 26),
        (30, 28),
        (32, 28),
        (32, 30),
    ),
    parts=_parts(
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 23, 24],
        [13, 15, 17, 19, 21],
        [14, 16, 18, 20, 22],
        [25, 27, 29, 31],
        [26, 28, 30, 32],
        one_based=False,
    ),
    centre_joint=23,
    up=(1, -1),
)

LAYOUTS: dict[str, SkeletonLayout] = {lay.name: lay for lay in (NTU25, KINECT_V1_20, MEDIAPIPE33)}


def get_layout(name: str) -> SkeletonLayout:
    """Look a layout up by name; the error lists the known names."""
    try:
        return LAYOUTS[name]
    except KeyError:
        raise KeyError(f"unknown joint layout {name!r}; known: {', '.join(sorted(LAYOUTS))}") from None
