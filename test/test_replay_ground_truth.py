"""Ground truth for replay: CSV intervals (and their errors), a std_msgs/String label topic in real bags."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from masksem_core.replay.ground_truth import (
    GroundTruthError,
    Interval,
    as_arrays,
    intervals_from_events,
    read_intervals_csv,
    read_label_topic,
)


def test_csv_with_header_comments_and_person(tmp_path: Path):
    p = tmp_path / "labels.csv"
    p.write_text("start,end,label,person_id\n# a comment\n0.5, 2.0, wave\n\n2.0,3.25,sit down,7\n")
    got = read_intervals_csv(p)
    assert got == [Interval(0.5, 2.0, "wave", None), Interval(2.0, 3.25, "sit down", "7")]
    starts, ends, labels, persons = as_arrays(got)
    assert starts.tolist() == [0.5, 2.0] and ends.tolist() == [2.0, 3.25]
    assert labels.tolist() == ["wave", "sit down"] and persons.tolist() == [None, "7"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("0,1,wave\n1,x,sit\n", ":2: field 'end' is not a number: 'x'"),
        ("0,1,wave\n3,2,sit\n", ":2: end 2.0 is not after start 3.0"),
        ("0,1\n", ":1: expected start,end,label[,person_id], got 2 fields"),
        ("0,nan,wave\n", ":1: field 'end' is not finite"),
        ("0,1,\n", ":1: empty label"),
        ("# only a comment\n", "no labelled intervals"),
    ],
)
def test_csv_errors_name_file_line_field_value(tmp_path: Path, text: str, needle: str):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(GroundTruthError) as err:
        read_intervals_csv(p)
    assert str(p) in str(err.value) and needle in str(err.value)


def test_csv_missing_file(tmp_path: Path):
    with pytest.raises(GroundTruthError, match="cannot read labels file"):
        read_intervals_csv(tmp_path / "nope.csv")


def test_events_to_intervals():
    events = [(0.0, "wave"), (2.0, "background"), (3.0, "1:sit"), (4.0, "sit"), (5.0, "1:"), (2.5, "idle")]
    got = intervals_from_events(events, end_s=6.0)
    assert got == [
        Interval(0.0, 2.0, "wave", None),  # ended by "background"
        Interval(3.0, 5.0, "sit", "1"),  # person 1, ended by an empty label
        Interval(4.0, 6.0, "sit", None),  # runs to the end of the bag
    ]


def _write_label_bag(path: Path, storage: str, events: list[tuple[float, str]]) -> Path:
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_HUMBLE)
    string = ts.types["std_msgs/msg/String"]
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        conn = writer.add_connection("/labels", "std_msgs/msg/String", typestore=ts)
        other = writer.add_connection("/other", "std_msgs/msg/String", typestore=ts)
        for t, data in events:
            writer.write(conn, round(t * 1e9), ts.serialize_cdr(string(data=data), "std_msgs/msg/String"))
        writer.write(other, round(9e9), ts.serialize_cdr(string(data="x"), "std_msgs/msg/String"))
    return path


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_label_topic_in_bag(tmp_path: Path, storage: str):
    bag = _write_label_bag(tmp_path / "bag", storage, [(1.0, "wave"), (2.5, "2:sit"), (4.0, "idle")])
    got, error = read_label_topic(bag, "/labels")
    assert error is None
    # the last label runs to the end of the bag: the /other message at 9 s (+1 ns, rosbags' end_time)
    assert got[0] == Interval(1.0, 4.0, "wave", None)
    assert got[1].label == "sit" and got[1].person_id == "2" and got[1].start == 2.5
    assert got[1].end == pytest.approx(9.0, abs=1e-6)
    with pytest.raises(GroundTruthError, match="no label topic '/nope'.*'/labels', '/other'"):
        read_label_topic(bag, "/nope")


def test_label_topic_in_truncated_bag_keeps_what_was_read(tmp_path: Path):
    # ~2.4 MB of labels: rosbags writes ~1 MB chunks, so cutting the file at 60% leaves whole chunks
    events = [(float(t), f"a{t % 3}-" + "x" * 4000) for t in range(600)]
    bag = _write_label_bag(tmp_path / "bag", "mcap", events)
    full, error = read_label_topic(bag, "/labels")
    assert error is None and len(full) == 600
    mcap = next(bag.glob("*.mcap"))
    os.truncate(mcap, int(mcap.stat().st_size * 0.6))
    got, error = read_label_topic(bag, "/labels")
    assert error is not None and "cannot open bag" in error and "forward scan recovered" in error
    # every label read before the damage is back, unchanged; the last label read has no known end
    # (the bag's end time is lost with its footer), so it is dropped rather than guessed
    assert 100 < len(got) < 600
    assert got[:-1] == full[: len(got) - 1]
    assert got[-1] == full[len(got) - 1]
