"""Skeletons as `sensor_msgs/PointCloud2`: one point per joint, fields x, y, z[, confidence][, person_id].

Several skeleton trackers publish clouds rather than a skeleton message. Parsing goes through a numpy
structured dtype built from the message's own field table (the approach of `sensor_msgs_py.point_cloud2`),
so any field order, extra fields, padding, row padding and either byte order are read correctly, from
rosbags and rclpy messages alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from masksem_core.layouts import LAYOUTS, get_layout
from masksem_core.rosmsg.messages import MsgKit, Person, make_header, stamp_to_sec

# sensor_msgs/PointField datatype constants -> numpy type
_DATATYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 8: "f8"}
FLOAT32, UINT32 = 7, 6


def _cloud_array(msg: Any, names: list[str]) -> np.ndarray:
    """The requested fields of every point, as a structured array of length width * height."""
    fields = {f.name: f for f in msg.fields}
    order = ">" if msg.is_bigendian else "<"
    for name in names:
        f = fields[name]
        if int(f.datatype) not in _DATATYPES:
            raise ValueError(f"PointCloud2 field {name!r}: unsupported datatype {f.datatype}")
        size = np.dtype(_DATATYPES[int(f.datatype)]).itemsize
        if int(f.offset) + size > int(msg.point_step):
            raise ValueError(
                f"PointCloud2 field {name!r}: offset {f.offset} + {size} bytes "
                f"exceeds point_step {msg.point_step}"
            )
    dtype = np.dtype(
        {
            "names": names,
            "formats": [order + _DATATYPES[int(fields[n].datatype)] for n in names],
            "offsets": [int(fields[n].offset) for n in names],
            "itemsize": int(msg.point_step),
        }
    )
    width, height, step, row = int(msg.width), int(msg.height), int(msg.point_step), int(msg.row_step)
    raw = np.frombuffer(msg.data, dtype=np.uint8)
    row = row or width * step
    if width == 0 or height == 0:
        return np.zeros(0, dtype=dtype)
    if row < width * step or raw.size < (height - 1) * row + width * step:
        raise ValueError(
            f"PointCloud2 data too short: {raw.size} bytes for {height}x{width} points "
            f"(point_step {step}, row_step {row})"
        )
    rows = [raw[r * row : r * row + width * step] for r in range(height)]
    return np.frombuffer(np.concatenate(rows).tobytes(), dtype=dtype)


def _infer_layout(points_per_person: int) -> str:
    """The one known layout with this many joints; none or several is an error naming the candidates
    (a wrong guess would feed the model joints in the wrong order)."""
    names = [n for n, lay in LAYOUTS.items() if lay.num_joints == points_per_person]
    if len(names) != 1:
        v = points_per_person
        which = f"several layouts have {v} joints ({', '.join(names)})" if names else f"no layout has {v}"
        raise ValueError(
            f"PointCloud2 with {v} points per person: cannot infer the joint layout, {which}; "
            f"set it explicitly (known: {', '.join(f'{n}={lay.num_joints}' for n, lay in LAYOUTS.items())})"
        )
    return names[0]


def pointcloud_to_numpy(msg: Any, layout: str | None = None) -> tuple[float, dict[str, Person], str]:
    """PointCloud2 -> (stamp_s, {person_id: (joints (V,3), confidence (V,))}, layout).

    Points are grouped by the `person_id` field (in order of first appearance) when present; without it
    the cloud holds consecutive V-point skeletons numbered "0", "1", ... `layout` None infers it from
    the number of points per person when that is unambiguous. Missing confidence reads as ones.
    """
    names = {f.name for f in msg.fields}
    missing = {"x", "y", "z"} - names
    if missing:
        raise ValueError(f"PointCloud2 lacks field(s) {sorted(missing)}; has {sorted(names)}")
    wanted = ["x", "y", "z"] + [n for n in ("confidence", "person_id") if n in names]
    pts = _cloud_array(msg, wanted)
    stamp = stamp_to_sec(msg.header.stamp)
    if pts.size == 0:
        return stamp, {}, layout or ""
    xyz = np.stack([pts["x"], pts["y"], pts["z"]], axis=1).astype(np.float32)
    conf = pts["confidence"].astype(np.float32) if "confidence" in names else np.ones(len(pts), np.float32)

    if "person_id" in names:
        ids = pts["person_id"]
        _, first = np.unique(ids, return_index=True)
        groups = [(ids[i], np.flatnonzero(ids == ids[i])) for i in np.sort(first)]
        counts = {len(idx) for _, idx in groups}
        if len(counts) != 1:
            raise ValueError(f"PointCloud2: persons have different numbers of points {sorted(counts)}")
        v = counts.pop()
        lay = layout or _infer_layout(v)
        if get_layout(lay).num_joints != v:
            raise ValueError(
                f"PointCloud2: {v} points per person but layout {lay!r} has "
                f"{get_layout(lay).num_joints} joints"
            )
        persons = {_pid(pid): (xyz[idx], conf[idx]) for pid, idx in groups}
    else:
        lay = layout or _infer_layout(len(pts))
        v = get_layout(lay).num_joints
        if len(pts) % v:
            raise ValueError(f"PointCloud2: {len(pts)} points is not a whole number of {lay} skeletons ({v})")
        persons = {
            str(k): (xyz[k * v : (k + 1) * v], conf[k * v : (k + 1) * v]) for k in range(len(pts) // v)
        }
    return stamp, persons, lay


def _pid(value: Any) -> str:
    f = float(value)
    return str(int(f)) if f.is_integer() else str(f)


def numpy_to_pointcloud(
    kit: MsgKit,
    stamp_s: float,
    persons: Mapping[str, tuple[np.ndarray, np.ndarray | None]],
    frame_id: str = "camera",
    with_confidence: bool = True,
    with_person_id: bool = True,
) -> Any:
    """{person_id: (joints, confidence)} -> PointCloud2 (x, y, z float32 [, confidence float32][, person_id
    uint32]); person ids must be non-negative integers (as strings) when `with_person_id`."""
    names = (
        ["x", "y", "z"]
        + (["confidence"] if with_confidence else [])
        + (["person_id"] if with_person_id else [])
    )
    dtype = np.dtype([(n, "<u4" if n == "person_id" else "<f4") for n in names])
    chunks = []
    for pid, (joints, conf) in persons.items():
        j = np.asarray(joints, dtype=np.float32).reshape(-1, 3)
        rec = np.zeros(len(j), dtype=dtype)
        rec["x"], rec["y"], rec["z"] = j[:, 0], j[:, 1], j[:, 2]
        if with_confidence:
            rec["confidence"] = 1.0 if conf is None else np.asarray(conf, np.float32).reshape(-1)
        if with_person_id:
            if not str(pid).isdigit():
                raise ValueError(f"PointCloud2 person_id must be a non-negative integer, got {pid!r}")
            rec["person_id"] = int(pid)
        chunks.append(rec)
    pts = np.concatenate(chunks) if chunks else np.zeros(0, dtype=dtype)
    fields = [
        kit.PointField(
            name=n, offset=int(dtype.fields[n][1]), datatype=UINT32 if n == "person_id" else FLOAT32, count=1
        )
        for n in names
    ]
    return kit.PointCloud2(
        header=make_header(kit, stamp_s, frame_id),
        height=1,
        width=len(pts),
        fields=fields,
        is_bigendian=False,
        point_step=dtype.itemsize,
        row_step=dtype.itemsize * len(pts),
        data=kit.byte_array(pts.tobytes()),
        is_dense=bool(np.isfinite(pts["x"]).all()) if len(pts) else True,
    )
