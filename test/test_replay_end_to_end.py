"""`masksem replay` end to end on real rosbag2 bags (mcap and sqlite3) written here from NW-UCLA clips.

The bundle is a tiny untrained model (dim 32, depth 1, T=16): these tests check the mechanics (bag time,
output bag, ground truth from CSV and from a label topic, damaged bags), not accuracy. Exact metric
values are checked with an oracle recogniser, whose answers are known.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import make_tiny_bundle

from masksem_core.cli import main
from masksem_core.replay import engine, ground_truth, metrics

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nw-ucla" / "all_sqe"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"NW-UCLA clips not found at {DATA}")
LABELS = [
    "pick_up_one_hand",
    "pick_up_two_hands",
    "drop_trash",
    "walk_around",
    "sit_down",
    "stand_up",
    "donning",
    "doffing",
    "throw",
    "carry",
]  # NW-UCLA label 1..10
FPS = 30.0
T0 = 1_700_000_000.0  # bag time far from the replay's wall clock: stamps must come from the bag
GAP = 12  # frames of standing still (background) after each clip


def _clip(name: str) -> tuple[str, np.ndarray]:
    d = json.loads((DATA / f"{name}.json").read_text())
    return LABELS[int(d["label"]) - 1], np.asarray(d["skeletons"], dtype=np.float32)


def _sequence(names: list[str], person: str = "3", bystander: str | None = None):
    """Clips back to back, each followed by GAP frames of the person standing still (background).

    A `bystander` stands 1.5 m aside in every frame, never acting; the truth then names `person`.
    Returns frames [(stamp, {person: (joints, conf)})], intervals, and label-topic events.
    """
    frames, intervals, events = [], [], []
    still = _clip("a06_s02_e00_v01")[1][0] + np.array([1.5, 0.0, 0.0], np.float32)
    who = person if bystander else None
    prefix = f"{person}:" if bystander else ""
    k = 0
    for name in names:
        label, sk = _clip(name)
        start = T0 + k / FPS
        for j, f in enumerate(list(sk) + [sk[-1]] * GAP):
            persons = {person: (f, np.ones(len(f), np.float32) if j < len(sk) else None)}
            if bystander:
                persons[bystander] = (still, None)
            frames.append((T0 + k / FPS, persons))
            k += 1
        end = start + len(sk) / FPS
        intervals.append(ground_truth.Interval(start, end, label, who))
        events += [(start, prefix + label), (end, prefix + "background")]
    return frames, intervals, events


def _write_csv(path: Path, intervals: list[ground_truth.Interval]) -> Path:
    rows = "".join(f"{i.start!r},{i.end!r},{i.label},{i.person_id or ''}\n" for i in intervals)
    path.write_text("start,end,label,person_id\n" + rows)
    return path


def _label_topic(events):
    from masksem_core.rosmsg.messages import get_typestore

    string = get_typestore().types["std_msgs/msg/String"]
    return {"/labels": ("std_msgs/msg/String", [(t, string(data=d)) for t, d in events])}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return make_tiny_bundle(tmp_path_factory.mktemp("bundle"), LABELS, fps=FPS, heads=4)


def _replay(bag: Path, bundle: Path, out: Path, *extra: str) -> tuple[int, dict]:
    rc = main(["replay", str(bag), "--bundle", str(bundle), "--out", str(out), "--stride", "4", *extra])
    return rc, json.loads((out / "report.json").read_text())


def _check_output_bag(out_bag: Path, in_bag: Path, report: dict) -> list:
    """Input copied unchanged, actions present, every action stamped with an input stamp of its person."""
    from masksem_core.rosmsg import bag_io

    topics = bag_io.bag_topics(out_bag)
    assert topics[report["topic"]] == bag_io.bag_topics(in_bag)[report["topic"]]
    assert topics[bag_io.ACTION_TOPIC] == "masksem_ros/msg/RecognizedActionArray"
    frames_in = list(bag_io.iter_skeleton_frames(in_bag, report["topic"]))
    frames_out = list(bag_io.iter_skeleton_frames(out_bag, report["topic"]))
    assert [f.stamp for f in frames_out] == [f.stamp for f in frames_in]
    stamps = {round(f.stamp, 6) for f in frames_in if f.persons}
    actions = [a for stamp, acts in bag_io.iter_action_frames(out_bag) for a in acts]
    assert len(actions) == report["recognitions"] > 0
    for a in actions:
        assert round(a.stamp, 6) in stamps
        assert a.window_start <= a.window_end <= a.stamp + 1e-6
        assert a.label in LABELS + ["unknown"] and a.topk_labels[0] == a.label
    return actions


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_replay_single_clips(tmp_path: Path, bundle: Path, storage: str):
    from masksem_core.rosmsg import bag_io

    for name in ("a01_s01_e00_v01", "a08_s02_e01_v02"):
        label, sk = _clip(name)
        frames = [(T0 + k / FPS, {"1": (f, None)}) for k, f in enumerate(sk)]
        bag = bag_io.write_skeleton_bag(tmp_path / name, frames, "kinect_v1_20", storage=storage)
        csv = _write_csv(tmp_path / f"{name}.csv", [ground_truth.Interval(T0, T0 + len(sk) / FPS, label)])
        rc, rep = _replay(bag, bundle, tmp_path / f"{name}.out", "--labels", str(csv), "--storage", storage)
        assert rc == 0 and rep["read_error"] is None
        assert rep["frames_read"] == rep["messages"] == len(sk) and rep["persons"] == 1
        assert rep["bag_time_s"] == pytest.approx([T0, T0 + (len(sk) - 1) / FPS])
        m = rep["metrics"]
        assert m["frames"] == len(sk) and m["per_class_frame_accuracy"][label]["frames"] == len(sk)
        assert m["segments"]["tp"] + m["segments"]["fn"] == 1
        actions = _check_output_bag(Path(rep["outputs"]["bag"]), bag, rep)
        # the report's numbers are the metrics of the actions as written into the output bag
        rec = (
            np.array([a.stamp for a in actions]),
            np.array([a.person_id for a in actions], object),
            np.array([a.label for a in actions], object),
            np.array([a.latency_ms for a in actions]),
        )
        again, _ = metrics.evaluate(
            np.array([f[0] for f in frames]),
            np.array(["1"] * len(sk), object),
            ground_truth.as_arrays(ground_truth.read_intervals_csv(csv)),
            rec,
            max_age_s=16 / FPS,
            grace_s=16 / FPS,
        )
        assert again["frame_accuracy"] == pytest.approx(m["frame_accuracy"])
        assert again["segments"] == m["segments"]
        assert Path(rep["outputs"]["timeline"]).stat().st_size > 1000


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_replay_continuous_sequence_csv_and_label_topic(tmp_path: Path, bundle: Path, storage: str):
    from masksem_core.rosmsg import bag_io

    names = ["a01_s01_e00_v01", "a05_s01_e00_v01", "a12_s01_e00_v01"]
    frames, intervals, events = _sequence(names, person="3", bystander="9")
    bag = bag_io.write_skeleton_bag(
        tmp_path / "seq", frames, "kinect_v1_20", storage=storage, extra_topics=_label_topic(events)
    )
    csv = _write_csv(tmp_path / "seq.csv", intervals)
    rc, by_csv = _replay(bag, bundle, tmp_path / "csv", "--labels", str(csv))
    assert rc == 0
    rc, by_topic = _replay(
        bag, bundle, tmp_path / "topic", "--label-topic", "/labels", "--no-bag", "--no-plots"
    )
    assert rc == 0 and "bag" not in by_topic["outputs"]
    assert by_topic["ground_truth"]["intervals"] == by_csv["ground_truth"]["intervals"] == 3
    # same truth either way; only the wall-clock latency differs between two runs
    assert {k: v for k, v in by_topic["metrics"].items() if k != "latency_ms"} == {
        k: v for k, v in by_csv["metrics"].items() if k != "latency_ms"
    }
    m = by_csv["metrics"]
    lengths = [len(_clip(n)[1]) for n in names]
    n = sum(lengths) + GAP * len(names)  # frames per person
    assert m["frames"] == 2 * n == by_csv["frames_read"] and by_csv["persons"] == 2
    # the bystander is background throughout, the actor between clips
    assert m["per_class_frame_accuracy"]["background"]["frames"] == n + GAP * len(names)
    for n, length in zip(names, lengths):
        assert m["per_class_frame_accuracy"][_clip(n)[0]]["frames"] == length
    assert m["detection_delay_s"]["actions"] == 3
    assert m["segments"]["tp"] + m["segments"]["fn"] == 3
    assert 0.0 <= m["frame_accuracy"] <= 1.0
    _check_output_bag(Path(by_csv["outputs"]["bag"]), bag, by_csv)


def test_pointcloud_input_gives_the_same_recognitions(tmp_path: Path, bundle: Path):
    from masksem_core.rosmsg import bag_io

    frames, intervals, _ = _sequence(["a02_s03_e00_v01", "a09_s03_e00_v01"])
    a = bag_io.write_skeleton_bag(tmp_path / "sk", frames, "kinect_v1_20")
    b = bag_io.write_skeleton_bag(tmp_path / "pc", frames, "kinect_v1_20", as_pointcloud=True)
    _, ra = _replay(a, bundle, tmp_path / "a", "--no-plots")
    _, rb = _replay(b, bundle, tmp_path / "b", "--no-plots")
    assert rb["topic"] == "/masksem/skeletons" and rb["frames_read"] == ra["frames_read"]
    acts_a = [
        (x.stamp, x.label, x.score)
        for _, xs in bag_io.iter_action_frames(Path(ra["outputs"]["bag"]))
        for x in xs
    ]
    acts_b = [
        (x.stamp, x.label, x.score)
        for _, xs in bag_io.iter_action_frames(Path(rb["outputs"]["bag"]))
        for x in xs
    ]
    assert acts_a == acts_b and len(acts_a) == ra["recognitions"] > 0


class OracleRecognizer:
    """Answers every pushed frame at once with the true label of its stamp: a perfect recogniser."""

    def __init__(self, intervals: list[ground_truth.Interval]) -> None:
        self.intervals, self.pending = intervals, []

    def push(self, person_id, stamp_s, joints, confidence=None, layout=None) -> bool:
        label = next((i.label for i in self.intervals if i.start <= stamp_s < i.end), "unknown")
        self.pending.append(SimpleNamespace(person_id=person_id, label=label, stamp=stamp_s, latency_ms=1.0))
        return True

    def poll(self) -> list:
        out, self.pending = self.pending, []
        return out


def test_oracle_on_bag_time_scores_perfectly(tmp_path: Path):
    from masksem_core.rosmsg import bag_io

    frames, intervals, _ = _sequence(["a03_s01_e00_v01", "a06_s01_e00_v01"], person="7")
    bag = bag_io.write_skeleton_bag(tmp_path / "seq", frames, "kinect_v1_20", storage="sqlite3")
    result = engine.replay_bag(bag, OracleRecognizer(intervals))
    assert result.read_error is None and result.frame_stamps.size == len(frames)
    assert result.frame_stamps.tolist() == pytest.approx([f[0] for f in frames], abs=1e-6)
    summary, _ = metrics.evaluate(
        result.frame_stamps,
        result.frame_persons,
        ground_truth.as_arrays(intervals),
        result.recognition_arrays(),
        max_age_s=0.5,
    )
    assert summary["frame_accuracy"] == 1.0
    assert (summary["segments"]["tp"], summary["segments"]["fp"], summary["segments"]["fn"]) == (2, 0, 0)
    assert summary["detection_delay_s"]["max"] == pytest.approx(0.0, abs=1e-6)
    assert summary["latency_ms"]["p50"] == 1.0


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_damaged_bag_reports_what_was_read(tmp_path: Path, bundle: Path, storage: str, capsys):
    from masksem_core.rosmsg import bag_io

    label, sk = _clip("a12_s01_e00_v01")
    # mcap: 2 min, 2.2 MB, as rosbags writes 1 MiB chunks and 60% of the file must hold a whole one
    n = 3600 if storage == "mcap" else 600
    frames = [(T0 + k / FPS, {"1": (sk[k % len(sk)], None)}) for k in range(n)]
    bag = bag_io.write_skeleton_bag(tmp_path / "cut", frames, "kinect_v1_20", storage=storage)
    data = next(p for p in bag.iterdir() if p.suffix in (".mcap", ".db3"))
    size = data.stat().st_size
    if storage == "mcap":
        os.truncate(data, int(size * 0.6))  # recording cut off: no summary, no footer
    else:
        with data.open("r+b") as fh:  # a damaged page in the middle of the database
            fh.seek(int(size * 0.6))
            fh.write(b"\xff" * 8192)
    csv = _write_csv(tmp_path / "l.csv", [ground_truth.Interval(T0, T0 + n / FPS, label)])
    rc, rep = _replay(bag, bundle, tmp_path / "out", "--labels", str(csv), "--stride", "16")
    assert rc == 3
    assert "cannot open bag" in rep["read_error"] and "recovered" in rep["read_error"]
    assert n * 0.2 < rep["frames_read"] < n * 0.8 and rep["metrics"]["frames"] == rep["frames_read"]
    assert rep["recognitions"] > 0
    assert "bag damaged, report covers what was read" in capsys.readouterr().err
    # the output bag holds what was salvaged plus the actions
    out_frames = list(bag_io.iter_skeleton_frames(Path(rep["outputs"]["bag"]), rep["topic"]))
    assert len(out_frames) == rep["messages"]
    assert (
        sum(len(a) for _, a in bag_io.iter_action_frames(Path(rep["outputs"]["bag"]))) == rep["recognitions"]
    )


def test_clear_errors(tmp_path: Path, bundle: Path, capsys):
    from masksem_core.rosmsg import bag_io

    frames, _, events = _sequence(["a01_s01_e00_v01"])
    bag = bag_io.write_skeleton_bag(tmp_path / "b", frames, "kinect_v1_20", extra_topics=_label_topic(events))
    assert main(["replay", str(bag), "--bundle", str(tmp_path / "nope")]) == 2
    assert str(tmp_path / "nope") in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("0,1,wave\n1,oops,sit\n")
    assert main(["replay", str(bag), "--bundle", str(bundle), "--labels", str(bad)]) == 2
    assert f"{bad}:2: field 'end' is not a number: 'oops'" in capsys.readouterr().err
    assert main(["replay", str(bag), "--bundle", str(bundle), "--topic", "/labels"]) == 2
    assert "topic '/labels' is std_msgs/msg/String, expected one of" in capsys.readouterr().err
    assert main(["replay", str(bag), "--bundle", str(bundle), "--label-topic", "/nope"]) == 2
    assert "no label topic '/nope'" in capsys.readouterr().err
