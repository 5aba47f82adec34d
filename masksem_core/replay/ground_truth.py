"""Ground truth for a replay: labelled time intervals, from a CSV file or from a label topic in the bag.

CSV: one interval a row, `start,end,label[,person_id]`, times in seconds on the bag clock
(header stamps), `start <= t < end`; an optional header row and `#` comments are skipped; an empty
person id means every person.

Label topic: `std_msgs/msg/String` messages whose `data` is the label that starts at the message's
bag time and lasts until the next message (or the end of the bag). `data` may be `person_id:label`
to label one person; an empty label or a background label ("background", "idle", ...) just ends the
running one. That is what an annotator's key presses, or a script, naturally record.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from masksem_core.replay.metrics import is_background

LABEL_MSGTYPE = "std_msgs/msg/String"


class GroundTruthError(ValueError):
    """Ground truth cannot be read; the message names the file, line/topic and value."""


@dataclass(frozen=True)
class Interval:
    """One labelled action: `label` for `person_id` (None: every person) over [start, end) seconds."""

    start: float
    end: float
    label: str
    person_id: str | None = None


def as_arrays(intervals: list[Interval]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(starts, ends, labels, persons) arrays, the form `metrics.evaluate` takes."""
    starts = np.array([i.start for i in intervals], dtype=np.float64)
    ends = np.array([i.end for i in intervals], dtype=np.float64)
    labels = np.empty(len(intervals), dtype=object)
    persons = np.empty(len(intervals), dtype=object)
    for k, i in enumerate(intervals):
        labels[k], persons[k] = i.label, i.person_id
    return starts, ends, labels, persons


def _float(text: str, path: Path, line: int, field: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise GroundTruthError(f"{path}:{line}: field {field!r} is not a number: {text!r}") from None
    if not math.isfinite(value):
        raise GroundTruthError(f"{path}:{line}: field {field!r} is not finite: {text!r}")
    return value


def read_intervals_csv(path: str | Path) -> list[Interval]:
    """Read `start,end,label[,person_id]` rows; a bad row raises naming file, line, field and value."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GroundTruthError(f"cannot read labels file {path}: {exc.strerror or exc}") from None
    out: list[Interval] = []
    for line_no, row in enumerate(csv.reader(text.splitlines()), start=1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if line_no == 1 and cells[0].lower() in ("start", "start_s", "begin"):
            continue
        if len(cells) not in (3, 4):
            raise GroundTruthError(
                f"{path}:{line_no}: expected start,end,label[,person_id], got {len(cells)} fields: {row!r}"
            )
        start = _float(cells[0], path, line_no, "start")
        end = _float(cells[1], path, line_no, "end")
        if end <= start:
            raise GroundTruthError(f"{path}:{line_no}: end {end} is not after start {start}")
        if not cells[2]:
            raise GroundTruthError(f"{path}:{line_no}: empty label")
        person = cells[3] if len(cells) == 4 and cells[3] else None
        out.append(Interval(start, end, cells[2], person))
    if not out:
        raise GroundTruthError(f"{path}: no labelled intervals")
    return out


def intervals_from_events(events: list[tuple[float, str]], end_s: float) -> list[Interval]:
    """Turn label-change events `(stamp_s, data)` into intervals; the last one runs until `end_s`."""
    running: dict[str | None, tuple[float, str]] = {}
    out: list[Interval] = []

    def close(person: str | None, t: float) -> None:
        if person in running:
            start, label = running.pop(person)
            if t > start:
                out.append(Interval(start, t, label, person))

    for stamp, data in sorted(events, key=lambda e: e[0]):
        person, sep, label = data.partition(":")
        if not sep:
            person, label = None, data
        person, label = (person.strip() or None) if person else None, label.strip()
        close(person, stamp)
        if label and not is_background(np.array([label]))[0]:
            running[person] = (stamp, label)
    for person in list(running):
        close(person, end_s)
    return sorted(out, key=lambda i: (i.start, i.person_id or ""))


def read_label_topic(bag: str | Path, topic: str) -> tuple[list[Interval], str | None]:
    """Intervals from a label topic of the bag, and the read error (None if the bag read cleanly).

    A corrupt or truncated bag still yields the intervals of the messages read before the damage.
    """
    from masksem_core.replay.salvage import read_messages
    from masksem_core.rosmsg.bag_io import BagReadError

    events: list[tuple[float, str]] = []
    error: str | None = None
    try:
        for _, t_s, msg in read_messages(bag, [topic]):
            data = getattr(msg, "data", None)
            if not isinstance(data, str):
                raise GroundTruthError(
                    f"bag {bag}: label topic {topic!r} holds {type(msg).__name__}, expected {LABEL_MSGTYPE}"
                )
            events.append((t_s, data))
    except KeyError as exc:
        raise GroundTruthError(f"bag {bag}: no label topic {topic!r} ({exc.args[0]})") from None
    except BagReadError as exc:
        error = str(exc)
    end_s = _bag_end(bag)
    if events:
        end_s = max(end_s, events[-1][0])
    return intervals_from_events(events, end_s), error


def _bag_end(bag: str | Path) -> float:
    """Bag time of its last message (from the metadata), or -inf when it cannot be read."""
    from rosbags.rosbag2 import Reader

    try:
        with Reader(Path(bag)) as reader:
            return reader.end_time * 1e-9
    except Exception:  # damaged bag: the caller falls back to its last label
        return -math.inf
