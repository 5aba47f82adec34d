"""MaskSem messages without ROS: load `msg/*.msg`, register them in a rosbags type store, convert to numpy.

The converters use plain attribute access and build messages through a `MsgKit` (the message classes
plus two array helpers), so the same code serves rosbags objects here and rclpy objects on a robot:
`rosbags_kit()` for bags and tests, `masksem_ros.ros_kit.rclpy_kit()` inside the nodes.
"""

from __future__ import annotations

import array
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

PACKAGE = "masksem_ros"
MSG_NAMES = ("Skeleton3D", "Skeleton3DArray", "RecognizedAction", "RecognizedActionArray")
SKELETON_ARRAY_TYPE = f"{PACKAGE}/msg/Skeleton3DArray"
ACTION_ARRAY_TYPE = f"{PACKAGE}/msg/RecognizedActionArray"
POINTCLOUD2_TYPE = "sensor_msgs/msg/PointCloud2"
# RecognizedActionArray.status (the constants of msg/RecognizedActionArray.msg) and their names.
STATUS_UNKNOWN, STATUS_OK, STATUS_INVALID_INPUT, STATUS_ERROR = 0, 1, 2, 3
STATUS_NAMES = {
    STATUS_UNKNOWN: "unknown", STATUS_OK: "ok", STATUS_INVALID_INPUT: "invalid_input", STATUS_ERROR: "error"
}

Person = tuple[np.ndarray, np.ndarray]  # joints (V, 3) float32, confidence (V,) float32


def msg_dir() -> Path:
    """Directory holding the `.msg` files, wherever this package was installed from.

    Looked up in order: `masksem_core/rosmsg/msg_defs/` (non-editable pip install and colcon install),
    the repository's `msg/` (source checkout, editable install), `share/masksem_ros/msg` of an ament prefix.
    """
    here = Path(__file__).resolve().parent
    candidates = [here / "msg_defs", here.parent.parent / "msg"]
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        candidates.append(Path(prefix) / "share" / PACKAGE / "msg")
    for cand in candidates:
        if all((cand / f"{name}.msg").is_file() for name in MSG_NAMES):
            return cand
    raise FileNotFoundError(
        f"MaskSem .msg files ({', '.join(MSG_NAMES)}) not found in any of: "
        + ", ".join(str(c) for c in candidates)
    )


def msg_definitions() -> dict[str, str]:
    """Full type name ('masksem_ros/msg/Skeleton3D') -> .msg text."""
    d = msg_dir()
    return {f"{PACKAGE}/msg/{name}": (d / f"{name}.msg").read_text(encoding="utf-8") for name in MSG_NAMES}


def register_types(typestore: Any) -> Any:
    """Register the MaskSem messages in a rosbags type store (idempotent) and return it."""
    from rosbags.typesys import get_types_from_msg

    types: dict[str, Any] = {}
    for name, text in msg_definitions().items():
        types.update(get_types_from_msg(text, name))
    typestore.register(types)
    return typestore


@lru_cache(maxsize=1)
def get_typestore() -> Any:
    """A ROS 2 Humble rosbags type store with the MaskSem messages registered (shared, cached)."""
    from rosbags.typesys import Stores
    from rosbags.typesys import get_typestore as _get

    return register_types(_get(Stores.ROS2_HUMBLE))


@dataclass(frozen=True)
class MsgKit:
    """Message classes and array helpers of one message implementation (rosbags or rclpy)."""

    Time: Any
    Header: Any
    Point: Any
    PointField: Any
    PointCloud2: Any
    Skeleton3D: Any
    Skeleton3DArray: Any
    RecognizedAction: Any
    RecognizedActionArray: Any
    float_array: Callable[[np.ndarray], Any]  # float32[] field value
    byte_array: Callable[[bytes], Any]  # uint8[] field value


def rosbags_kit(typestore: Any | None = None) -> MsgKit:
    """Kit building rosbags message objects (serialisable with `typestore.serialize_cdr`)."""
    t = (typestore or get_typestore()).types
    return MsgKit(
        Time=t["builtin_interfaces/msg/Time"],
        Header=t["std_msgs/msg/Header"],
        Point=t["geometry_msgs/msg/Point"],
        PointField=t["sensor_msgs/msg/PointField"],
        PointCloud2=t[POINTCLOUD2_TYPE],
        Skeleton3D=t[f"{PACKAGE}/msg/Skeleton3D"],
        Skeleton3DArray=t[SKELETON_ARRAY_TYPE],
        RecognizedAction=t[f"{PACKAGE}/msg/RecognizedAction"],
        RecognizedActionArray=t[ACTION_ARRAY_TYPE],
        float_array=lambda a: np.ascontiguousarray(a, dtype=np.float32).reshape(-1),
        byte_array=lambda b: np.frombuffer(bytes(b), dtype=np.uint8).copy(),
    )


def float_array_rclpy(a: np.ndarray) -> array.array:
    """rclpy float32[] fields take array.array('f'), not numpy arrays."""
    return array.array("f", np.ascontiguousarray(a, dtype=np.float32).reshape(-1).tobytes())


# --- stamps -------------------------------------------------------------------------------------------


def stamp_to_sec(stamp: Any) -> float:
    """builtin_interfaces/Time -> float seconds."""
    return int(stamp.sec) + int(stamp.nanosec) * 1e-9


def stamp_to_ns(stamp: Any) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def sec_to_stamp(kit: MsgKit, t: float) -> Any:
    """Float seconds -> builtin_interfaces/Time (rounded to the nanosecond, nanosec always in range)."""
    if not math.isfinite(t):
        raise ValueError(f"stamp must be finite, got {t!r}")
    ns = round(t * 1e9)
    return kit.Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def make_header(kit: MsgKit, stamp_s: float, frame_id: str) -> Any:
    return kit.Header(stamp=sec_to_stamp(kit, stamp_s), frame_id=str(frame_id))


# --- skeletons ----------------------------------------------------------------------------------------


def skeleton_to_numpy(msg: Any) -> tuple[str, np.ndarray, np.ndarray, str]:
    """Skeleton3D -> (person_id, joints (V,3) float32, confidence (V,) float32, layout).

    An empty confidence means "unknown" and reads as all ones; a length mismatch is an error that
    names the person, since silently padding would misattribute confidences to joints.
    """
    joints = np.array([(p.x, p.y, p.z) for p in msg.joints], dtype=np.float32).reshape(-1, 3)
    conf = np.asarray(msg.confidence, dtype=np.float32).reshape(-1)
    if conf.size == 0:
        conf = np.ones(len(joints), dtype=np.float32)
    elif conf.size != len(joints):
        raise ValueError(
            f"Skeleton3D person_id={msg.person_id!r}: {conf.size} confidences for {len(joints)} joints"
        )
    return str(msg.person_id), joints, conf, str(msg.layout)


def numpy_to_skeleton(
    kit: MsgKit,
    person_id: str,
    joints: np.ndarray,
    confidence: np.ndarray | None,
    layout: str,
    header: Any,
) -> Any:
    """(joints (V,3), confidence (V,) or None) -> Skeleton3D with the given header."""
    j = np.asarray(joints, dtype=np.float64)
    if j.ndim != 2 or j.shape[1] != 3:
        raise ValueError(f"person {person_id!r}: joints must have shape (V, 3), got {j.shape}")
    conf = np.zeros(0, np.float32) if confidence is None else np.asarray(confidence, np.float32).reshape(-1)
    if conf.size not in (0, len(j)):
        raise ValueError(f"person {person_id!r}: {conf.size} confidences for {len(j)} joints")
    points = [kit.Point(x=float(x), y=float(y), z=float(z)) for x, y, z in j]
    return kit.Skeleton3D(
        header=header,
        person_id=str(person_id),
        layout=str(layout),
        joints=points,
        confidence=kit.float_array(conf),
    )


def skeleton_array_to_numpy(msg: Any) -> tuple[float, dict[str, Person], str]:
    """Skeleton3DArray -> (stamp_s, {person_id: (joints, confidence)}, layout).

    All skeletons of one frame must share one layout ("" when the frame is empty).
    """
    persons: dict[str, Person] = {}
    layouts = set()
    for sk in msg.skeletons:
        pid, joints, conf, layout = skeleton_to_numpy(sk)
        persons[pid] = (joints, conf)
        layouts.add(layout)
    if len(layouts) > 1:
        raise ValueError(f"Skeleton3DArray mixes joint layouts {sorted(layouts)} in one frame")
    return stamp_to_sec(msg.header.stamp), persons, (layouts.pop() if layouts else "")


def numpy_to_skeleton_array(
    kit: MsgKit,
    stamp_s: float,
    persons: Mapping[str, tuple[np.ndarray, np.ndarray | None]],
    layout: str,
    frame_id: str = "camera",
) -> Any:
    """{person_id: (joints, confidence)} -> Skeleton3DArray; every skeleton carries the frame's header."""
    skeletons = [
        numpy_to_skeleton(kit, str(pid), j, c, layout, make_header(kit, stamp_s, frame_id))
        for pid, (j, c) in persons.items()
    ]
    return kit.Skeleton3DArray(header=make_header(kit, stamp_s, frame_id), skeletons=skeletons)


# --- actions ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionRecord:
    """A recognised action as plain Python data (same fields as the runtime's `Recognition`)."""

    person_id: str
    label: str
    class_index: int
    score: float
    topk_labels: tuple[str, ...]
    topk_scores: tuple[float, ...]
    window_start: float
    window_end: float
    stamp: float
    latency_ms: float


def action_to_msg(kit: MsgKit, rec: Any, frame_id: str = "camera") -> Any:
    """Any object with `Recognition`'s attributes (stamps in float seconds) -> RecognizedAction."""
    return kit.RecognizedAction(
        header=make_header(kit, float(rec.stamp), frame_id),
        person_id=str(rec.person_id),
        label=str(rec.label),
        class_index=int(rec.class_index),
        score=float(rec.score),
        topk_labels=[str(s) for s in rec.topk_labels],
        topk_scores=kit.float_array(np.asarray(rec.topk_scores, dtype=np.float32)),
        window_start=sec_to_stamp(kit, float(rec.window_start)),
        window_end=sec_to_stamp(kit, float(rec.window_end)),
        latency_ms=float(getattr(rec, "latency_ms", 0.0) or 0.0),
    )


def msg_to_action(msg: Any) -> ActionRecord:
    """RecognizedAction -> ActionRecord (float seconds, Python scalars)."""
    return ActionRecord(
        person_id=str(msg.person_id),
        label=str(msg.label),
        class_index=int(msg.class_index),
        score=float(msg.score),
        topk_labels=tuple(str(s) for s in msg.topk_labels),
        topk_scores=tuple(float(s) for s in np.asarray(msg.topk_scores, dtype=np.float32)),
        window_start=stamp_to_sec(msg.window_start),
        window_end=stamp_to_sec(msg.window_end),
        stamp=stamp_to_sec(msg.header.stamp),
        latency_ms=float(msg.latency_ms),
    )


def actions_to_array_msg(
    kit: MsgKit,
    recs: Iterable[Any],
    stamp_s: float,
    frame_id: str = "camera",
    status: int = STATUS_OK,
    status_message: str = "",
) -> Any:
    """Recognitions of one update -> RecognizedActionArray stamped `stamp_s` (the newest input used),
    with the recogniser's `status` at that update (STATUS_OK: the input was valid and processed)."""
    return kit.RecognizedActionArray(
        header=make_header(kit, stamp_s, frame_id),
        status=int(status),
        status_message=str(status_message),
        actions=[action_to_msg(kit, r, frame_id) for r in recs],
    )


def array_msg_to_actions(msg: Any) -> tuple[float, list[ActionRecord]]:
    """RecognizedActionArray -> (stamp_s, [ActionRecord])."""
    return stamp_to_sec(msg.header.stamp), [msg_to_action(a) for a in msg.actions]
