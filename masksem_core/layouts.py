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
    source: str = ""  # where the joint order comes from (vendor documentation), shown by `masksem layouts`
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
    source="Kinect for Windows SDK 2.0 JointType enum (SpineBase = 0 ... ThumbRight = 24); NTU RGB+D readme",
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
    source="Kinect for Windows SDK 1.x NUI_SKELETON_POSITION_INDEX (HIP_CENTER = 0 ... FOOT_RIGHT = 19)",
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
    source="MediaPipe Pose landmark model (PoseLandmark enum, NOSE = 0 ... RIGHT_FOOT_INDEX = 32)",
)

def _by_name(
    name: str, joints: tuple[str, ...], bones: list[tuple[str, str]], parts: list[list[str]], **kw
) -> SkeletonLayout:
    """A layout written with joint names instead of indices (bones as (child, parent) names)."""
    idx = {n: i for i, n in enumerate(joints)}
    try:
        return SkeletonLayout(
            name=name,
            joint_names=joints,
            bones=tuple((idx[c], idx[p]) for c, p in bones),
            parts=tuple(tuple(idx[j] for j in part) for part in parts),
            **kw,
        )
    except KeyError as exc:
        raise ValueError(f"layout {name}: unknown joint {exc.args[0]!r}") from None


def _sided(template: list[str], side: str) -> list[str]:
    return [t.format(s=side) for t in template]


def _mirror_bones(template: list[tuple[str, str]], sides: tuple[str, str] = ("left", "right")):
    return [(c.format(s=s), p.format(s=s)) for s in sides for c, p in template]


# Azure Kinect / Orbbec Femto Body Tracking SDK: k4abt_joint_id_t (k4abttypes.h) and the joint hierarchy
# table of https://learn.microsoft.com/previous-versions/azure/kinect-dk/body-joints (index, name, parent).
# Positions are in MILLIMETRES in the depth camera's frame (x right, y down, z forward): divide by 1000.
_AZURE_ARM = ["clavicle_{s}", "shoulder_{s}", "elbow_{s}", "wrist_{s}", "hand_{s}", "handtip_{s}", "thumb_{s}"]  # noqa: E501
_AZURE_LEG = ["hip_{s}", "knee_{s}", "ankle_{s}", "foot_{s}"]
AZURE_KINECT_32 = _by_name(
    "azure_kinect_32",
    (
        "pelvis", "spine_navel", "spine_chest", "neck",
        *_sided(_AZURE_ARM, "left"), *_sided(_AZURE_ARM, "right"),
        *_sided(_AZURE_LEG, "left"), *_sided(_AZURE_LEG, "right"),
        "head", "nose", "eye_left", "ear_left", "eye_right", "ear_right",
    ),  # fmt: skip
    [
        ("spine_navel", "pelvis"), ("spine_chest", "spine_navel"), ("neck", "spine_chest"), ("head", "neck"),
        ("nose", "head"), ("eye_left", "head"), ("ear_left", "head"), ("eye_right", "head"),
        ("ear_right", "head"),
        *_mirror_bones([
            ("clavicle_{s}", "spine_chest"), ("shoulder_{s}", "clavicle_{s}"), ("elbow_{s}", "shoulder_{s}"),
            ("wrist_{s}", "elbow_{s}"), ("hand_{s}", "wrist_{s}"), ("handtip_{s}", "hand_{s}"),
            ("thumb_{s}", "wrist_{s}"), ("hip_{s}", "pelvis"), ("knee_{s}", "hip_{s}"),
            ("ankle_{s}", "knee_{s}"), ("foot_{s}", "ankle_{s}"),
        ]),
    ],  # fmt: skip
    [
        ["pelvis", "spine_navel", "spine_chest", "neck", "clavicle_left", "clavicle_right", "head", "nose",
         "eye_left", "ear_left", "eye_right", "ear_right"],
        _sided(_AZURE_ARM[1:], "left"), _sided(_AZURE_ARM[1:], "right"),
        _sided(_AZURE_LEG, "left"), _sided(_AZURE_LEG, "right"),
    ],  # fmt: skip
    centre_joint=0,
    up=(1, -1),
    description="Azure Kinect / Orbbec Femto Body Tracking, 32 joints; SDK gives millimetres, "
    "depth-camera axes x right, y DOWN, z forward (convert to metres)",
    source="Azure Kinect Body Tracking SDK k4abt_joint_id_t (K4ABT_JOINT_PELVIS = 0 ... "
    "K4ABT_JOINT_EAR_RIGHT = 31) and its joint hierarchy table "
    "(learn.microsoft.com azure/kinect-dk/body-joints)",
)

# Stereolabs ZED SDK BODY_34 (sl::BODY_34_PARTS, SDK 3.x/4.x): the Azure order with heels appended, names as
# the SDK spells them (NAVAL_SPINE sic). Bones: the SDK's BODY_34_BONES. Units and axes follow the
# InitParameters (coordinate_units, coordinate_system); the SDK default is IMAGE (x right, y DOWN, z forward)
# and millimetres; the ROS 2 wrapper publishes metres in a z-up frame: rotate into IMAGE axes first.
_ZED34_ARM = ["{s}_clavicle", "{s}_shoulder", "{s}_elbow", "{s}_wrist", "{s}_hand", "{s}_handtip", "{s}_thumb"]  # noqa: E501
_ZED34_LEG = ["{s}_hip", "{s}_knee", "{s}_ankle", "{s}_foot"]
ZED_BODY_34 = _by_name(
    "zed_body_34",
    (
        "pelvis", "naval_spine", "chest_spine", "neck",
        *_sided(_ZED34_ARM, "left"), *_sided(_ZED34_ARM, "right"),
        *_sided(_ZED34_LEG, "left"), *_sided(_ZED34_LEG, "right"),
        "head", "nose", "left_eye", "left_ear", "right_eye", "right_ear", "left_heel", "right_heel",
    ),  # fmt: skip
    [
        ("naval_spine", "pelvis"), ("chest_spine", "naval_spine"), ("neck", "chest_spine"), ("head", "neck"),
        ("nose", "head"), ("left_eye", "nose"), ("left_ear", "left_eye"), ("right_eye", "nose"),
        ("right_ear", "right_eye"),
        *_mirror_bones([
            ("{s}_clavicle", "chest_spine"), ("{s}_shoulder", "{s}_clavicle"), ("{s}_elbow", "{s}_shoulder"),
            ("{s}_wrist", "{s}_elbow"), ("{s}_hand", "{s}_wrist"), ("{s}_handtip", "{s}_hand"),
            ("{s}_thumb", "{s}_wrist"), ("{s}_hip", "pelvis"), ("{s}_knee", "{s}_hip"),
            ("{s}_ankle", "{s}_knee"), ("{s}_foot", "{s}_ankle"), ("{s}_heel", "{s}_ankle"),
        ]),
    ],  # fmt: skip
    [
        ["pelvis", "naval_spine", "chest_spine", "neck", "left_clavicle", "right_clavicle", "head", "nose",
         "left_eye", "left_ear", "right_eye", "right_ear"],
        _sided(_ZED34_ARM[1:], "left"), _sided(_ZED34_ARM[1:], "right"),
        [*_sided(_ZED34_LEG, "left"), "left_heel"], [*_sided(_ZED34_LEG, "right"), "right_heel"],
    ],  # fmt: skip
    centre_joint=0,
    up=(1, -1),
    description="Stereolabs ZED BODY_34; metres expected (SDK default millimetres), IMAGE axes x right, "
    "y DOWN, z forward",
    source="Stereolabs ZED SDK sl::BODY_34_PARTS (PELVIS = 0 ... RIGHT_HEEL = 33) and BODY_34_BONES",
)

# Stereolabs ZED SDK BODY_38 (sl::BODY_38_PARTS, SDK 4.x): left/right interleaved, no head joint, four
# points a hand (thumb tip, index knuckle, middle tip, pinky knuckle). Units/axes as BODY_34.
_ZED38_HAND = ["{s}_hand_thumb_4", "{s}_hand_index_1", "{s}_hand_middle_4", "{s}_hand_pinky_1"]
ZED_BODY_38 = _by_name(
    "zed_body_38",
    (
        "pelvis", "spine_1", "spine_2", "spine_3", "neck", "nose", "left_eye", "right_eye", "left_ear",
        "right_ear", "left_clavicle", "right_clavicle", "left_shoulder", "right_shoulder", "left_elbow",
        "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee",
        "left_ankle", "right_ankle", "left_big_toe", "right_big_toe", "left_small_toe", "right_small_toe",
        "left_heel", "right_heel", "left_hand_thumb_4", "right_hand_thumb_4", "left_hand_index_1",
        "right_hand_index_1", "left_hand_middle_4", "right_hand_middle_4", "left_hand_pinky_1",
        "right_hand_pinky_1",
    ),
    [
        ("spine_1", "pelvis"), ("spine_2", "spine_1"), ("spine_3", "spine_2"), ("neck", "spine_3"),
        ("nose", "neck"), ("left_eye", "nose"), ("right_eye", "nose"), ("left_ear", "left_eye"),
        ("right_ear", "right_eye"),
        *_mirror_bones([
            ("{s}_clavicle", "spine_3"), ("{s}_shoulder", "{s}_clavicle"), ("{s}_elbow", "{s}_shoulder"),
            ("{s}_wrist", "{s}_elbow"), ("{s}_hand_thumb_4", "{s}_wrist"), ("{s}_hand_index_1", "{s}_wrist"),
            ("{s}_hand_middle_4", "{s}_wrist"), ("{s}_hand_pinky_1", "{s}_wrist"), ("{s}_hip", "pelvis"),
            ("{s}_knee", "{s}_hip"), ("{s}_ankle", "{s}_knee"), ("{s}_big_toe", "{s}_ankle"),
            ("{s}_small_toe", "{s}_ankle"), ("{s}_heel", "{s}_ankle"),
        ]),
    ],  # fmt: skip
    [
        ["pelvis", "spine_1", "spine_2", "spine_3", "neck", "nose", "left_eye", "right_eye", "left_ear",
         "right_ear", "left_clavicle", "right_clavicle"],
        [*_sided(["{s}_shoulder", "{s}_elbow", "{s}_wrist", *_ZED38_HAND], "left")],
        [*_sided(["{s}_shoulder", "{s}_elbow", "{s}_wrist", *_ZED38_HAND], "right")],
        _sided(["{s}_hip", "{s}_knee", "{s}_ankle", "{s}_big_toe", "{s}_small_toe", "{s}_heel"], "left"),
        _sided(["{s}_hip", "{s}_knee", "{s}_ankle", "{s}_big_toe", "{s}_small_toe", "{s}_heel"], "right"),
    ],  # fmt: skip
    centre_joint=0,
    up=(1, -1),
    description="Stereolabs ZED BODY_38; metres expected (SDK default millimetres), IMAGE axes x right, "
    "y DOWN, z forward",
    source="Stereolabs ZED SDK 4 sl::BODY_38_PARTS (PELVIS = 0 ... RIGHT_HAND_PINKY_1 = 37)",
)

# Human3.6M's 17 joints as 3D lifters output them: VideoPose3D keeps these of the 32 mocap joints
# (h36m_dataset.py: remove_joints, parents [-1,0,1,2,0,4,5,0,7,8,9,8,11,12,8,14,15], joints_left
# [4,5,6,11,12,13], joints_right [1,2,3,14,15,16]); names as the H36M 17-joint convention (Hip = pelvis,
# RFoot/LFoot = ankles, Neck/Nose, Head = top of the head). Camera space, x right, y DOWN, z forward;
# lifters give metres relative to the pelvis.
H36M_17 = _by_name(
    "h36m_17",
    (
        "hip", "r_hip", "r_knee", "r_foot", "l_hip", "l_knee", "l_foot", "spine", "thorax", "neck_nose",
        "head", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist",
    ),
    [
        ("r_hip", "hip"), ("r_knee", "r_hip"), ("r_foot", "r_knee"), ("l_hip", "hip"), ("l_knee", "l_hip"),
        ("l_foot", "l_knee"), ("spine", "hip"), ("thorax", "spine"), ("neck_nose", "thorax"),
        ("head", "neck_nose"), ("l_shoulder", "thorax"), ("l_elbow", "l_shoulder"), ("l_wrist", "l_elbow"),
        ("r_shoulder", "thorax"), ("r_elbow", "r_shoulder"), ("r_wrist", "r_elbow"),
    ],  # fmt: skip
    [
        ["hip", "spine", "thorax", "neck_nose", "head"],
        ["l_shoulder", "l_elbow", "l_wrist"], ["r_shoulder", "r_elbow", "r_wrist"],
        ["l_hip", "l_knee", "l_foot"], ["r_hip", "r_knee", "r_foot"],
    ],  # fmt: skip
    centre_joint=0,
    up=(1, -1),
    description="Human3.6M 17 joints (VideoPose3D and other monocular 3D lifters); metres, camera axes "
    "x right, y DOWN, z forward",
    source="Human3.6M 17-joint subset as used by VideoPose3D (common/h36m_dataset.py: parents, "
    "joints_left/right after remove_joints)",
)

# OpenNI 1 / NiTE 1 skeleton (XnSkeletonJoint in XnTypes.h: HEAD = 1, NECK = 2, TORSO = 3, ...,
# RIGHT_FOOT = 24); NiTE tracks these 15 of the 24 enum values, listed here in enum order (the order of the
# ROS openni_tracker frames). NiTE 2 enumerates the same joints in another order (NiteEnums.h:
# HEAD, NECK, LEFT_SHOULDER, RIGHT_SHOULDER, ...): use `--joint-order nite2_15`. Real-world
# coordinates in MILLIMETRES, y up, z away from the sensor; x as Kinect's with the depth generator
# mirrored (the NiTE default).
OPENNI_15 = _by_name(
    "openni_15",
    (
        "head", "neck", "torso", "left_shoulder", "left_elbow", "left_hand", "right_shoulder", "right_elbow",
        "right_hand", "left_hip", "left_knee", "left_foot", "right_hip", "right_knee", "right_foot",
    ),
    [
        ("neck", "torso"), ("head", "neck"),
        *_mirror_bones([
            ("{s}_shoulder", "neck"), ("{s}_elbow", "{s}_shoulder"), ("{s}_hand", "{s}_elbow"),
            ("{s}_hip", "torso"), ("{s}_knee", "{s}_hip"), ("{s}_foot", "{s}_knee"),
        ]),
    ],  # fmt: skip
    [
        ["head", "neck", "torso"],
        ["left_shoulder", "left_elbow", "left_hand"], ["right_shoulder", "right_elbow", "right_hand"],
        ["left_hip", "left_knee", "left_foot"], ["right_hip", "right_knee", "right_foot"],
    ],  # fmt: skip
    centre_joint=2,
    up=(1, 1),
    description="OpenNI / NiTE 1, 15 joints; SDK gives millimetres (convert to metres), y up, z away",
    source="OpenNI 1.x XnTypes.h XnSkeletonJoint (the 15 joints NiTE tracks, in enum order)",
)

LAYOUTS: dict[str, SkeletonLayout] = {
    lay.name: lay
    for lay in (
        NTU25, KINECT_V1_20, MEDIAPIPE33, AZURE_KINECT_32, ZED_BODY_34, ZED_BODY_38, H36M_17, OPENNI_15
    )
}


def get_layout(name: str) -> SkeletonLayout:
    """Look a layout up by name; the error lists the known names."""
    try:
        return LAYOUTS[name]
    except KeyError:
        raise KeyError(f"unknown joint layout {name!r}; known: {', '.join(sorted(LAYOUTS))}") from None
