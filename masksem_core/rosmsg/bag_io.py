"""Skeleton and action streams to and from rosbag2 bags (mcap or sqlite3) with `rosbags`, no ROS needed.

Used by `masksem replay`, the demo and the tests: bags written here are real rosbag2 bags that
`ros2 bag play` and Foxglove open (Humble may need `ros2 bag reindex` for metadata version 9).
Storage errors while reading raise `BagReadError`, which says how many messages were read before it,
so a caller can keep and report what it already has.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from masksem_core.rosmsg.messages import (
    ACTION_ARRAY_TYPE,
    POINTCLOUD2_TYPE,
    SKELETON_ARRAY_TYPE,
    ActionRecord,
    Person,
    actions_to_array_msg,
    array_msg_to_actions,
    get_typestore,
    numpy_to_skeleton_array,
    rosbags_kit,
    skeleton_array_to_numpy,
)
from masksem_core.rosmsg.pointcloud import numpy_to_pointcloud, pointcloud_to_numpy

log = logging.getLogger(__name__)

SKELETON_TOPIC = "/masksem/skeletons"
ACTION_TOPIC = "/masksem/actions"
STORAGES = ("mcap", "sqlite3")

# topic -> (message type, iterable of (stamp_s, message object))
ExtraTopics = Mapping[str, tuple[str, Iterable[tuple[float, Any]]]]


class BagReadError(RuntimeError):
    """A bag could not be read to the end; `messages_read` messages were delivered before the failure."""

    def __init__(self, message: str, messages_read: int = 0) -> None:
        super().__init__(message)
        self.messages_read = messages_read


class SkeletonFrame(NamedTuple):
    stamp: float  # header stamp in seconds (bag receive time when the header stamp is zero)
    persons: dict[str, Person]  # person_id -> (joints (V,3) float32, confidence (V,) float32)
    layout: str


def _storage_plugin(storage: str) -> Any:
    from rosbags.rosbag2 import StoragePlugin

    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {STORAGES}, got {storage!r}")
    return StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3


def _ns(stamp_s: float) -> int:
    return round(stamp_s * 1e9)


class _AtomicBag:
    """Write a bag into a hidden sibling directory and move it into place only when complete."""

    def __init__(self, path: str | os.PathLike, storage: str) -> None:
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"bag output {self.path} already exists")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.plugin = _storage_plugin(storage)

    def __enter__(self) -> Any:
        from rosbags.rosbag2 import Writer

        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.path.parent))
        self.writer = Writer(self.tmp / self.path.name, version=9, storage_plugin=self.plugin)
        self.writer.open()
        return self.writer

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self.writer.close()
            if exc_type is None:
                os.replace(self.tmp / self.path.name, self.path)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _write_extra(writer: Any, extra_topics: ExtraTopics | None, typestore: Any) -> None:
    for topic, (msgtype, items) in (extra_topics or {}).items():
        conn = writer.add_connection(topic, msgtype, typestore=typestore)
        for stamp_s, msg in items:
            writer.write(conn, _ns(stamp_s), typestore.serialize_cdr(msg, msgtype))


def write_skeleton_bag(
    path: str | os.PathLike,
    frames: Iterable[tuple[float, Mapping[str, tuple[Any, Any]]]],
    layout: str,
    topic: str = SKELETON_TOPIC,
    storage: str = "mcap",
    as_pointcloud: bool = False,
    frame_id: str = "camera",
    extra_topics: ExtraTopics | None = None,
) -> Path:
    """Write frames `(stamp_s, {person_id: (joints (V,3), confidence (V,) | None)})` as Skeleton3DArray
    (or PointCloud2 with x, y, z, confidence, person_id) messages; bag time = header stamp.

    `extra_topics` adds other streams (for example a `std_msgs/msg/String` ground-truth label topic).
    """
    ts = get_typestore()
    kit = rosbags_kit(ts)
    msgtype = POINTCLOUD2_TYPE if as_pointcloud else SKELETON_ARRAY_TYPE
    with _AtomicBag(path, storage) as writer:
        conn = writer.add_connection(topic, msgtype, typestore=ts)
        for stamp_s, persons in frames:
            if as_pointcloud:
                msg = numpy_to_pointcloud(kit, stamp_s, persons, frame_id)
            else:
                msg = numpy_to_skeleton_array(kit, stamp_s, persons, layout, frame_id)
            writer.write(conn, _ns(stamp_s), ts.serialize_cdr(msg, msgtype))
        _write_extra(writer, extra_topics, ts)
    return Path(path)


def write_action_bag(
    path: str | os.PathLike,
    actions: Iterable[tuple[float, Iterable[Any]]],
    topic: str = ACTION_TOPIC,
    storage: str = "mcap",
    frame_id: str = "camera",
    copy_from: str | os.PathLike | None = None,
    extra_topics: ExtraTopics | None = None,
) -> Path:
    """Write `(stamp_s, [Recognition-like])` updates as RecognizedActionArray messages.

    With `copy_from`, every message of that bag is copied first (raw CDR bytes, original definitions),
    so the actions can be viewed alongside the recording; a read failure in the source stops the copy
    with a warning and the bag is still written.
    """
    ts = get_typestore()
    kit = rosbags_kit(ts)
    with _AtomicBag(path, storage) as writer:
        if copy_from is not None:
            _copy_messages(Path(copy_from), writer)
        conn = writer.add_connection(topic, ACTION_ARRAY_TYPE, typestore=ts)
        for stamp_s, recs in actions:
            msg = actions_to_array_msg(kit, list(recs), stamp_s, frame_id)
            writer.write(conn, _ns(stamp_s), ts.serialize_cdr(msg, ACTION_ARRAY_TYPE))
        _write_extra(writer, extra_topics, ts)
    return Path(path)


def _copy_messages(src: Path, writer: Any) -> int:
    from rosbags.rosbag2 import Reader

    count = 0
    try:
        with Reader(src) as reader:
            out = {
                c.id: writer.add_connection(
                    c.topic,
                    c.msgtype,
                    msgdef=c.msgdef.data,
                    rihs01=c.digest,
                    serialization_format=c.ext.serialization_format,
                    offered_qos_profiles=c.ext.offered_qos_profiles,
                )
                for c in reader.connections
            }
            for conn, t_ns, raw in reader.messages():
                writer.write(out[conn.id], t_ns, raw)
                count += 1
    except Exception as exc:  # a truncated source still yields a usable output bag
        log.warning("copying %s stopped after %d messages: %s", src, count, exc)
    return count


def _open_reader(path: Path) -> Any:
    from rosbags.rosbag2 import Reader

    if not path.exists():
        raise FileNotFoundError(f"bag {path} does not exist")
    try:
        reader = Reader(path)
        reader.open()
    except Exception as exc:
        raise BagReadError(f"cannot open bag {path}: {exc}", 0) from exc
    return reader


def bag_topics(path: str | os.PathLike) -> dict[str, str]:
    """topic -> message type of every connection in the bag."""
    reader = _open_reader(Path(path))
    try:
        return {c.topic: c.msgtype for c in reader.connections}
    finally:
        reader.close()


def iter_messages(path: str | os.PathLike, topics: Iterable[str]) -> Iterator[tuple[str, float, Any]]:
    """Yield `(topic, bag_time_s, message)` for the given topics, deserialised with the MaskSem type store
    (types unknown to it are registered from the bag's own definitions)."""
    from rosbags.typesys import get_types_from_msg

    path = Path(path)
    ts = get_typestore()
    reader = _open_reader(path)
    wanted = set(topics)
    count = 0
    try:
        conns = [c for c in reader.connections if c.topic in wanted]
        missing = wanted - {c.topic for c in conns}
        if missing:
            raise KeyError(
                f"bag {path} has no topic(s) {sorted(missing)}; it has "
                f"{sorted(c.topic for c in reader.connections)}"
            )
        for c in conns:
            if c.msgtype not in ts.types and c.msgdef.data:
                ts.register(get_types_from_msg(c.msgdef.data, c.msgtype))
        messages = reader.messages(connections=conns)
        while True:
            try:
                conn, t_ns, raw = next(messages)
                msg = ts.deserialize_cdr(raw, conn.msgtype)
            except StopIteration:
                return
            except Exception as exc:
                raise BagReadError(f"bag {path}: read failed after {count} messages: {exc}", count) from exc
            count += 1
            yield conn.topic, t_ns * 1e-9, msg
    finally:
        reader.close()


def find_skeleton_topic(path: str | os.PathLike) -> str:
    """The bag's skeleton topic: the only Skeleton3DArray topic, else the only PointCloud2 topic."""
    topics = bag_topics(path)
    for msgtype in (SKELETON_ARRAY_TYPE, POINTCLOUD2_TYPE):
        found = sorted(t for t, ty in topics.items() if ty == msgtype)
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ValueError(f"bag {path} has several {msgtype} topics {found}: choose one")
    raise ValueError(f"bag {path} has no {SKELETON_ARRAY_TYPE} or {POINTCLOUD2_TYPE} topic; topics: {topics}")


def iter_skeleton_frames(
    path: str | os.PathLike, topic: str | None = None, layout: str | None = None
) -> Iterator[SkeletonFrame]:
    """Yield one `SkeletonFrame(stamp, persons, layout)` per Skeleton3DArray or PointCloud2 message.

    `layout` is needed for PointCloud2 only when it cannot be inferred from the points per person.
    """
    topic = topic or find_skeleton_topic(path)
    for _, t_bag, msg in iter_messages(path, [topic]):
        if hasattr(msg, "skeletons"):
            stamp, persons, lay = skeleton_array_to_numpy(msg)
        else:
            stamp, persons, lay = pointcloud_to_numpy(msg, layout)
        yield SkeletonFrame(stamp if stamp > 0 else t_bag, persons, lay or (layout or ""))


def iter_action_frames(
    path: str | os.PathLike, topic: str = ACTION_TOPIC
) -> Iterator[tuple[float, list[ActionRecord]]]:
    """Yield `(stamp_s, [ActionRecord])` per RecognizedActionArray message of `topic`."""
    for _, _, msg in iter_messages(path, [topic]):
        yield array_msg_to_actions(msg)
