"""Joint-layout adapters: every known layout -> NTU 25 (and NTU 25 back to Kinect v1 20).

A model trained on NTU expects Kinect v2's 25 joints in Kinect camera axes (metres, x towards the
sensor's left, y up, z away from the sensor). Other sensors give other joints and axes, so every
target joint is written as a weighted sum of source joints (weights sum to 1, so adapting commutes
with translation and scale), followed by an axis flip. The tables below are plain data; docs/runtime.md
explains each row. The derivation constants were fitted on real recordings (the five NTU samples and
NW-UCLA in shared/data) and are checked against them in test/test_runtime_adapters.py. The Azure Kinect,
ZED, Human3.6M and OpenNI tables map joints by their anatomical names and reuse those constants where a
joint has to be derived; no recordings of those sensors were at hand to fit them on.

A model trained on another layout is fed that layout directly: `get_adapter(src, src)` is the identity,
and adapters compose through NTU 25 (e.g. MediaPipe -> NTU 25 -> Kinect v1 20).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np

from masksem_core.layouts import KINECT_V1_20, NTU25, SkeletonLayout, get_layout

Weights = dict[str, float]

# --- Constants fitted on real Kinect v2 / v1 skeletons (median over frames; see docs/runtime.md) ---
SPINE_MID_T = 0.574  # NTU spine_mid along spine_base -> spine_shoulder (std 0.001 over 517 frames)
NECK_T = 0.348  # NTU neck along spine_shoulder -> head
SPINE_SHOULDER_T = 0.19  # NTU spine_shoulder along mid-shoulders -> head (it sits ~4 cm above them)
HAND_TIP_A = 0.8  # NTU hand_tip = hand + a * (hand - wrist)
THUMB_C = 1.1  # NTU thumb ~ wrist + c * (hand - wrist) when the sensor has no thumb (4 cm median error)
MP_HAND_T = 0.7  # Kinect "hand" (palm) along MediaPipe wrist -> mid(index, pinky knuckles)
HAND_FROM_FOREARM = 0.3  # no hand joint (Human3.6M, NiTE's "hand" is the wrist): hand = wrist + 0.3 forearm

# Axis conventions, as the sign of (x, y, z) that maps a layout's axes onto Kinect camera axes.
# MediaPipe world landmarks: x image-right, y down, z away from the camera -> flip x and y (a rotation of
# 180 degrees about z, so left/right handedness is kept).
AXIS_SIGNS: dict[str, tuple[float, float, float]] = {
    "ntu25": (1.0, 1.0, 1.0),
    "kinect_v1_20": (1.0, 1.0, 1.0),
    "mediapipe33": (-1.0, -1.0, 1.0),
    # Depth-camera / image axes (x right, y down, z forward), the same 180-degree turn about z:
    "azure_kinect_32": (-1.0, -1.0, 1.0),
    "zed_body_34": (-1.0, -1.0, 1.0),
    "zed_body_38": (-1.0, -1.0, 1.0),
    "h36m_17": (-1.0, -1.0, 1.0),
    "openni_15": (1.0, 1.0, 1.0),  # real-world axes, y up, mirrored like Kinect's camera space
}


def _mix(*terms: tuple[float, str | Weights]) -> Weights:
    """Weighted sum of joints or of other weight tables: _mix((0.5, 'a'), (0.5, {'b': 1.0}))."""
    out: Weights = {}
    for w, term in terms:
        for name, v in ({term: 1.0} if isinstance(term, str) else term).items():
            out[name] = out.get(name, 0.0) + w * v
    return {k: v for k, v in out.items() if abs(v) > 1e-12}


def _lerp(a: str | Weights, b: str | Weights, t: float) -> Weights:
    return _mix((1.0 - t, a), (t, b))


def _mediapipe_table() -> dict[str, Weights]:
    mid_hips = _lerp("left_hip", "right_hip", 0.5)
    mid_shoulders = _lerp("left_shoulder", "right_shoulder", 0.5)
    head = _lerp("left_ear", "right_ear", 0.5)  # Kinect's head joint is the centre of the head
    spine_shoulder = _lerp(mid_shoulders, head, SPINE_SHOULDER_T)
    table: dict[str, Weights] = {
        "spine_base": mid_hips,
        "spine_mid": _lerp(mid_hips, spine_shoulder, SPINE_MID_T),
        "neck": _lerp(spine_shoulder, head, NECK_T),
        "head": head,
        "spine_shoulder": spine_shoulder,
    }
    for side in ("left", "right"):
        wrist = f"{side}_wrist"
        knuckles = _lerp(f"{side}_index", f"{side}_pinky", 0.5)  # MediaPipe index/pinky = knuckles
        hand = _lerp(wrist, knuckles, MP_HAND_T)
        table.update(
            {
                f"shoulder_{side}": {f"{side}_shoulder": 1.0},
                f"elbow_{side}": {f"{side}_elbow": 1.0},
                f"wrist_{side}": {wrist: 1.0},
                f"hand_{side}": hand,
                f"hand_tip_{side}": _mix((1.0 + HAND_TIP_A, hand), (-HAND_TIP_A, wrist)),
                f"thumb_{side}": {f"{side}_thumb": 1.0},
                f"hip_{side}": {f"{side}_hip": 1.0},
                f"knee_{side}": {f"{side}_knee": 1.0},
                f"ankle_{side}": {f"{side}_ankle": 1.0},
                f"foot_{side}": {f"{side}_foot_index": 1.0},
            }
        )
    return table


def _kinect_v1_table() -> dict[str, Weights]:
    # Kinect v1's "spine" sits low (17% up the trunk, NW-UCLA), so spine_mid is placed by NTU's ratio.
    table: dict[str, Weights] = {
        "spine_base": {"hip_center": 1.0},
        "spine_mid": _lerp("hip_center", "shoulder_center", SPINE_MID_T),
        "neck": _lerp("shoulder_center", "head", NECK_T),
        "head": {"head": 1.0},
        "spine_shoulder": {"shoulder_center": 1.0},
    }
    for side in ("left", "right"):
        wrist, hand = f"wrist_{side}", f"hand_{side}"
        table.update(
            {
                n: {n: 1.0}
                for n in (
                    f"shoulder_{side}",
                    f"elbow_{side}",
                    wrist,
                    hand,
                    f"hip_{side}",
                    f"knee_{side}",
                    f"ankle_{side}",
                    f"foot_{side}",
                )
            }
        )
        table[f"hand_tip_{side}"] = _mix((1.0 + HAND_TIP_A, hand), (-HAND_TIP_A, wrist))
        table[f"thumb_{side}"] = _lerp(wrist, hand, THUMB_C)
    return table


def _ntu_to_kinect_v1_table() -> dict[str, Weights]:
    table = {n: {n: 1.0} for n in KINECT_V1_20.joint_names if n in NTU25.joint_names}
    table["hip_center"] = {"spine_base": 1.0}
    table["shoulder_center"] = {"spine_shoulder": 1.0}
    table["spine"] = _lerp("spine_base", "spine_shoulder", 0.17)  # where Kinect v1 puts it (NW-UCLA)
    return table


def _as_weights(joint: str | Weights) -> Weights:
    """A source joint's name as weights ({name: 1}); weights pass through."""
    return {joint: 1.0} if isinstance(joint, str) else joint


def _trunk(pelvis: str | Weights, spine_shoulder: str | Weights, head: str | Weights) -> dict[str, Weights]:
    """NTU's five trunk joints from a pelvis, a base-of-neck point and a head centre."""
    as_w = _as_weights
    return {
        "spine_base": as_w(pelvis),
        "spine_mid": _lerp(pelvis, spine_shoulder, SPINE_MID_T),
        "spine_shoulder": as_w(spine_shoulder),
        "neck": _lerp(spine_shoulder, head, NECK_T),
        "head": as_w(head),
    }


def _limbs(names: dict[str, str | Weights], side: str) -> dict[str, Weights]:
    """NTU's arm and leg joints of one side from `names[ntu_stem] -> source joint or weights`; a missing
    hand is placed past the wrist, a missing tip/thumb derived from wrist and hand (Kinect v1's rules)."""
    as_w = _as_weights
    wrist = as_w(names["wrist"])
    hand = as_w(names["hand"]) if "hand" in names else _lerp(names["elbow"], wrist, 1.0 + HAND_FROM_FOREARM)
    stems = ("shoulder", "elbow", "hip", "knee", "ankle", "foot")
    out = {f"{stem}_{side}": as_w(names[stem]) for stem in stems}
    out[f"wrist_{side}"] = wrist
    out[f"hand_{side}"] = hand
    out[f"hand_tip_{side}"] = as_w(names["hand_tip"]) if "hand_tip" in names else _mix(
        (1.0 + HAND_TIP_A, hand), (-HAND_TIP_A, wrist)
    )
    out[f"thumb_{side}"] = as_w(names["thumb"]) if "thumb" in names else _lerp(wrist, hand, THUMB_C)
    return out


def _full_body_table(joint: Callable[[str, str], str]) -> dict[str, Weights]:
    """SDKs that name every joint NTU needs (pelvis, neck = base of the neck, head centre, both sides'
    limbs down to hand tip and thumb); `joint(stem, side)` is the SDK's name for a limb joint."""
    table = _trunk("pelvis", "neck", "head")
    for side in ("left", "right"):
        stems = ("shoulder", "elbow", "wrist", "hand", "hip", "knee", "ankle", "foot", "thumb")
        names: dict[str, str | Weights] = {s: joint(s, side) for s in stems}
        names["hand_tip"] = joint("handtip", side)
        table.update(_limbs(names, side))
    return table


def _azure_table() -> dict[str, Weights]:
    # Azure's NECK is the base of the neck (Kinect v2's spine_shoulder), HEAD the centre of the head.
    return _full_body_table(lambda stem, side: f"{stem}_{side}")


def _zed34_table() -> dict[str, Weights]:
    return _full_body_table(lambda stem, side: f"{side}_{stem}")


def _zed38_table() -> dict[str, Weights]:
    table = _trunk("pelvis", "neck", _lerp("left_ear", "right_ear", 0.5))  # no head joint: ears' centre
    for side in ("left", "right"):
        knuckles = _lerp(f"{side}_hand_index_1", f"{side}_hand_pinky_1", 0.5)
        stems = ("shoulder", "elbow", "wrist", "hip", "knee")
        names: dict[str, str | Weights] = {s: f"{side}_{s}" for s in stems}
        names.update(
            {
                "hand": _lerp(f"{side}_wrist", knuckles, MP_HAND_T),
                "hand_tip": f"{side}_hand_middle_4",
                "thumb": f"{side}_hand_thumb_4",
                "ankle": f"{side}_ankle",
                "foot": _lerp(f"{side}_big_toe", f"{side}_small_toe", 0.5),
            }
        )
        table.update(_limbs(names, side))
    return table


def _h36m_table() -> dict[str, Weights]:
    # H36M's Head is the top of the head; Kinect's head joint sits between it and Neck/Nose.
    table = _trunk("hip", "thorax", _lerp("neck_nose", "head", 0.5))
    table["spine_mid"] = {"spine": 1.0}
    for side, s in (("left", "l"), ("right", "r")):
        names: dict[str, str | Weights] = {
            stem: f"{s}_{stem}" for stem in ("shoulder", "elbow", "wrist", "hip", "knee")
        }
        names["ankle"] = names["foot"] = f"{s}_foot"  # H36M's "foot" is the ankle; no toe joint
        table.update(_limbs(names, side))
    return table


def _openni_table() -> dict[str, Weights]:
    mid_hips = _lerp("left_hip", "right_hip", 0.5)
    table = _trunk(mid_hips, "neck", "head")
    table["spine_mid"] = {"torso": 1.0}
    for side in ("left", "right"):
        names: dict[str, str | Weights] = {
            stem: f"{side}_{stem}" for stem in ("shoulder", "elbow", "hip", "knee")
        }
        names["wrist"] = f"{side}_hand"  # NiTE's hand joint is at the wrist
        names["ankle"] = names["foot"] = f"{side}_foot"  # and its foot joint at the ankle
        table.update(_limbs(names, side))
    return table


# (source, target) -> {target joint: {source joint: weight}}
MAPPING_TABLES: dict[tuple[str, str], dict[str, Weights]] = {
    ("mediapipe33", "ntu25"): _mediapipe_table(),
    ("kinect_v1_20", "ntu25"): _kinect_v1_table(),
    ("ntu25", "kinect_v1_20"): _ntu_to_kinect_v1_table(),
    ("azure_kinect_32", "ntu25"): _azure_table(),
    ("zed_body_34", "ntu25"): _zed34_table(),
    ("zed_body_38", "ntu25"): _zed38_table(),
    ("h36m_17", "ntu25"): _h36m_table(),
    ("openni_15", "ntu25"): _openni_table(),
}


@dataclass(frozen=True)
class LayoutAdapter:
    """Maps joints (..., V_src, 3) of `source` to (..., V_dst, 3) of `target`; vectorised over frames.

    `matrix[d, s]` is the weight of source joint s in target joint d; `signs` flips the axes into the
    target's convention. A derived joint's confidence is the lowest confidence among its sources.
    """

    source: SkeletonLayout
    target: SkeletonLayout
    matrix: np.ndarray
    signs: np.ndarray

    def __call__(self, joints: np.ndarray) -> np.ndarray:
        joints = np.asarray(joints, dtype=np.float32)
        if joints.shape[-2:] != (self.source.num_joints, 3):
            raise ValueError(
                f"{self.source.name} -> {self.target.name}: joints must be "
                f"(..., {self.source.num_joints}, 3), got {joints.shape}"
            )
        return (np.einsum("ds,...sc->...dc", self.matrix, joints) * self.signs).astype(np.float32)

    def confidence(self, conf: np.ndarray) -> np.ndarray:
        conf = np.asarray(conf, dtype=np.float32)
        support = self.matrix != 0.0  # (D, S)
        picked = np.where(support, conf[..., None, :], np.inf)
        return picked.min(axis=-1).astype(np.float32)


def _table_matrix(table: dict[str, Weights], src: SkeletonLayout, dst: SkeletonLayout) -> np.ndarray:
    missing = [n for n in dst.joint_names if n not in table]
    if missing:
        raise ValueError(f"adapter {src.name} -> {dst.name}: no rule for joints {missing}")
    m = np.zeros((dst.num_joints, src.num_joints), dtype=np.float32)
    for name, weights in table.items():
        for s, w in weights.items():
            m[dst.index(name), src.index(s)] = w
    return m


@cache
def get_adapter(source: str, target: str) -> LayoutAdapter:
    """Adapter between two layouts by name: direct table, identity, or composed through NTU 25."""
    src, dst = get_layout(source), get_layout(target)
    signs_src = np.asarray(AXIS_SIGNS[src.name], dtype=np.float32)
    signs_dst = np.asarray(AXIS_SIGNS[dst.name], dtype=np.float32)
    signs = signs_src * signs_dst  # into Kinect axes, then out into the target's
    if src.name == dst.name:
        return LayoutAdapter(src, dst, np.eye(src.num_joints, dtype=np.float32), np.ones(3, np.float32))
    if (src.name, dst.name) in MAPPING_TABLES:
        return LayoutAdapter(src, dst, _table_matrix(MAPPING_TABLES[src.name, dst.name], src, dst), signs)
    if src.name != NTU25.name and dst.name != NTU25.name:
        first, second = get_adapter(src.name, NTU25.name), get_adapter(NTU25.name, dst.name)
        return LayoutAdapter(src, dst, second.matrix @ first.matrix, signs)
    raise KeyError(
        f"no joint-layout adapter from {source!r} to {target!r}; "
        f"known: {', '.join(f'{a}->{b}' for a, b in MAPPING_TABLES)}"
    )


def adapt(joints: np.ndarray, source: str, target: str) -> np.ndarray:
    """Convenience: `get_adapter(source, target)(joints)`."""
    return get_adapter(source, target)(joints)


__all__ = ["AXIS_SIGNS", "MAPPING_TABLES", "LayoutAdapter", "adapt", "get_adapter"]
