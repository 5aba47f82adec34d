"""`masksem prepare bag`: the demo's recording and truth CSV become labelled clips; bad input is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from masksem_core.cli import main as masksem
from masksem_core.demo.pipeline import DemoPaths, DemoSettings, make_data
from masksem_core.replay.ground_truth import read_intervals_csv

pytest.importorskip("rosbags")


@pytest.fixture(scope="module")
def demo_recording(tmp_path_factory) -> DemoPaths:
    """The recording bag and truth CSV exactly as `masksem demo` writes them."""
    out = tmp_path_factory.mktemp("demo")
    paths = DemoPaths(out)
    make_data(DemoSettings(out=out, quick=True), paths)
    return paths


def _prepare(paths: DemoPaths, out: Path, *extra: str) -> int:
    argv = ["prepare", "bag", "--raw", str(paths.bag), "--labels", str(paths.truth_csv), "--out", str(out)]
    return masksem([*argv, "--name", "robot", "--no-progress", *extra])


def test_demo_recording_gives_a_clip_per_labelled_interval(demo_recording: DemoPaths, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _prepare(demo_recording, out) == 0
    side = json.loads((out / "robot.json").read_text())
    intervals = read_intervals_csv(demo_recording.truth_csv)
    names = side["train"]["names"] + side["test"]["names"]
    labels = side["train"]["labels"] + side["test"]["labels"]
    for k, iv in enumerate(intervals, start=1):  # one clip per interval and person
        mine = [i for i, n in enumerate(names) if n.startswith(f"{k:04d}_p{iv.person_id}_")]
        assert len(mine) == 1, (k, iv)
        assert side["labels"][labels[mine[0]]] == iv.label
    assert (
        side["fps"] == pytest.approx(30.0, abs=0.1) and side["layout"] == "ntu25" and side["num_persons"] == 1
    )
    x = np.load(out / "robot.npz")["x_train"]
    length = side["train"]["valid_lengths"][0]
    iv = intervals[0]
    assert (
        abs(length - round((iv.end - iv.start) * 30)) <= 1 and x[0, :length].any() and not x[0, length:].any()
    )
    # time split: later intervals test
    starts = {f"{k:04d}": iv.start for k, iv in enumerate(intervals, start=1)}
    assert max(starts[n[:4]] for n in side["train"]["names"]) < min(
        starts[n[:4]] for n in side["test"]["names"]
    )


def test_background_clips_and_split_column(demo_recording: DemoPaths, tmp_path: Path) -> None:
    rows = demo_recording.truth_csv.read_text().splitlines()
    labelled = tmp_path / "truth_split.csv"
    labelled.write_text(
        "\n".join(
            [rows[0] + ",split"]
            + [r + ("," + ("test" if i % 3 == 0 else "train")) for i, r in enumerate(rows[1:])]
        )
        + "\n"
    )
    out = tmp_path / "out"
    argv = ["prepare", "bag", "--raw", str(demo_recording.bag), "--labels", str(labelled), "--out", str(out)]
    assert masksem([*argv, "--split", "column", "--background", "--no-progress", "--num-persons", "2"]) == 0
    side = json.loads((out / "robot.json").read_text())
    assert side["labels"][-1] == "no_action" and side["background_label"] == "no_action"
    test_names = [n for n in side["test"]["names"] if not n.startswith("bg_")]
    assert sorted({int(n[:4]) for n in test_names}) == [i + 1 for i in range(len(rows) - 1) if i % 3 == 0]
    assert any(n.startswith("bg_") for n in side["train"]["names"]) and side["num_persons"] == 2


def test_refused_inputs_name_the_problem(demo_recording: DemoPaths, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    bag = ["prepare", "bag", "--raw", str(demo_recording.bag), "--out", str(out), "--no-progress"]
    assert masksem(bag) == 2
    assert "--labels truth.csv is required" in capsys.readouterr().err
    assert _prepare(demo_recording, out, "--split", "half") == 2
    assert "--split 'half'" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("start,end,label\n1.0,0.5,wave\n")
    assert masksem([*bag, "--labels", str(bad)]) == 2
    assert f"{bad}:2: end 0.5 is not after start 1.0" in capsys.readouterr().err
    nosplit = tmp_path / "nosplit.csv"
    nosplit.write_text("start,end,label\n1.0,2.0,wave\n")
    assert masksem([*bag, "--labels", str(nosplit), "--split", "column"]) == 2
    assert "needs a header row with a 'split' column" in capsys.readouterr().err
    classes = tmp_path / "classes.txt"
    classes.write_text("wave\n")
    assert _prepare(demo_recording, out, "--classes", str(classes)) == 2
    assert "is not among the classes ['wave']" in capsys.readouterr().err
    assert masksem([*bag, "--labels", str(nosplit), "--raw", str(tmp_path)]) == 2  # not a bag
    assert not (out / "robot.npz").exists()
