"""Replay a rosbag2 recording through the streaming recogniser on bag time, and write the result as a bag.

Every skeleton message is pushed with its own header stamp (bag receive time when the stamp is zero),
and the recogniser is polled after each message, exactly as the recogniser node does live; so
recognitions, windows and detection delays are on the recording's clock, whatever the replay speed.
A message that cannot be converted is counted and skipped; a bag that cannot be read to the end stops
the replay with `read_error` set, and everything read before the damage is kept and reported.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from masksem_core.replay.salvage import read_messages
from masksem_core.rosmsg import bag_io
from masksem_core.rosmsg.messages import POINTCLOUD2_TYPE, SKELETON_ARRAY_TYPE, skeleton_array_to_numpy
from masksem_core.rosmsg.pointcloud import pointcloud_to_numpy

SKELETON_TYPES = (SKELETON_ARRAY_TYPE, POINTCLOUD2_TYPE)


@dataclass
class ReplayResult:
    """What one replay saw and produced; arrays are per input frame and person, in bag order."""

    bag: Path
    topic: str
    frame_stamps: np.ndarray  # (F,) float64 seconds, one entry per person per message
    frame_persons: np.ndarray  # (F,) object: person id strings
    messages: int = 0  # skeleton messages read (empty frames included)
    bad_messages: list[str] = field(default_factory=list)  # first few conversion errors
    bad_message_count: int = 0
    updates: list[tuple[float, list[Any]]] = field(default_factory=list)  # (stamp, [Recognition])
    read_error: str | None = None
    recognizer_stats: dict = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def recognitions(self) -> list[Any]:
        return [r for _, recs in self.updates for r in recs]

    def recognition_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(stamps, persons, labels, latencies_ms) of every recognition, the form `metrics.evaluate` takes."""
        recs = self.recognitions
        persons = np.empty(len(recs), dtype=object)
        labels = np.empty(len(recs), dtype=object)
        for k, r in enumerate(recs):
            persons[k], labels[k] = str(r.person_id), str(r.label)
        stamps = np.array([float(r.stamp) for r in recs], dtype=np.float64)
        latency = np.array([_float_or_nan(getattr(r, "latency_ms", None)) for r in recs], dtype=np.float64)
        return stamps, persons, labels, latency

    def recognition_spans(self) -> tuple[np.ndarray, np.ndarray]:
        """(window_start, window_end) of every recognition, in `recognition_arrays` order (NaN: none)."""
        recs = self.recognitions
        starts = np.array([_float_or_nan(getattr(r, "window_start", None)) for r in recs], dtype=np.float64)
        ends = np.array([_float_or_nan(getattr(r, "window_end", None)) for r in recs], dtype=np.float64)
        return starts, ends


def _float_or_nan(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _frames(
    bag: Path, topic: str | None, layout: str | None, result: ReplayResult
) -> Iterator[tuple[float, dict, str]]:
    """(stamp, persons, layout) per message; conversion errors are counted, read errors end the stream."""
    try:
        if topic is None:
            topic = bag_io.find_skeleton_topic(bag)
        elif (msgtype := bag_io.bag_topics(bag).get(topic, SKELETON_ARRAY_TYPE)) not in SKELETON_TYPES:
            raise ValueError(
                f"bag {bag}: topic {topic!r} is {msgtype}, expected one of {', '.join(SKELETON_TYPES)}"
            )
    except bag_io.BagReadError:
        pass  # unreadable bag: without a topic, the salvage scan takes the first skeleton topic it meets
    result.topic = topic or ""
    for tp, t_bag, msg in read_messages(bag, [topic] if topic else None, SKELETON_TYPES):
        result.topic = tp
        result.messages += 1
        try:
            if hasattr(msg, "skeletons"):
                stamp, persons, lay = skeleton_array_to_numpy(msg)
            else:
                stamp, persons, lay = pointcloud_to_numpy(msg, layout)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            result.bad_message_count += 1
            if len(result.bad_messages) < 5:
                result.bad_messages.append(f"{tp} message {result.messages} (bag time {t_bag:.3f} s): {exc}")
            continue
        yield (stamp if stamp > 0 else t_bag), persons, (lay or layout or "")


def replay_bag(
    bag: str | Path,
    recognizer: Any,
    topic: str | None = None,
    layout: str | None = None,
    progress: bool = False,
) -> ReplayResult:
    """Feed every skeleton of `bag` to `recognizer` (a StreamingRecognizer) on bag time and collect results.

    `topic` None picks the bag's only Skeleton3DArray (else PointCloud2) topic; `layout` names the joint
    layout of PointCloud2 input when it cannot be inferred. Raises only when the bag cannot be opened
    or has no skeleton topic; damage further in sets `read_error` instead.
    """
    from tqdm import tqdm

    bag = Path(bag)
    if not bag.exists():
        raise FileNotFoundError(f"bag {bag} does not exist")
    t_start = time.perf_counter()
    stamps: list[float] = []
    persons_seen: list[str] = []
    result = ReplayResult(bag, "", np.zeros(0), np.zeros(0, dtype=object))
    try:
        for stamp, persons, lay in tqdm(
            _frames(bag, topic, layout, result),
            desc="replay",
            unit="msg",
            disable=not progress,
            leave=False,
        ):
            for pid, (joints, conf) in persons.items():
                recognizer.push(pid, stamp, joints, conf, lay or None)
                stamps.append(stamp)
                persons_seen.append(pid)
            recs = recognizer.poll()
            if recs:
                result.updates.append((max(float(r.stamp) for r in recs), list(recs)))
    except bag_io.BagReadError as exc:
        result.read_error = str(exc)
    result.frame_stamps = np.asarray(stamps, dtype=np.float64)
    result.frame_persons = np.asarray(persons_seen, dtype=object)
    result.recognizer_stats = dict(getattr(recognizer, "stats", {}) or {})
    result.wall_s = time.perf_counter() - t_start
    return result


def _salvaged(bag: Path, topic: str) -> Iterator[tuple[float, Any]]:
    try:
        for _, t_bag, msg in read_messages(bag, [topic]):
            yield t_bag, msg
    except bag_io.BagReadError:
        return


def write_output_bag(
    result: ReplayResult, out: str | Path, storage: str = "mcap", topic: str = bag_io.ACTION_TOPIC
) -> Path:
    """A new bag with every message of the input (as far as it reads) plus the recognised actions on
    `topic` as RecognizedActionArray, stamped with the newest input each update used.

    An input that rosbags cannot open at all contributes the skeleton messages the salvage scan found.
    """
    extra = None
    try:
        bag_io.bag_topics(result.bag)
    except bag_io.BagReadError:
        if result.topic and result.messages:
            first = next(_salvaged(result.bag, result.topic), None)
            if first is not None:
                extra = {result.topic: (type(first[1]).__msgtype__, _salvaged(result.bag, result.topic))}
        return bag_io.write_action_bag(out, result.updates, topic=topic, storage=storage, extra_topics=extra)
    return bag_io.write_action_bag(out, result.updates, topic=topic, storage=storage, copy_from=result.bag)
