"""docs/teach.md on a synthetic recording: record -> label -> prepare bag -> fine-tune from a pre-trained
encoder -> export -> replay; the user's class names travel from the truth CSV to the robot's actions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from masksem_core.cli import main as masksem
from masksem_core.synthetic import make_recording, write_recording_bag
from masksem_core.synthetic.recording import write_intervals_csv

pytest.importorskip("rosbags")

TINY = [
    "optim.epochs=1",
    "optim.warmup_epochs=0",
    "optim.batch_size=4",
    "run.max_steps_per_epoch=2",
    "run.device=cpu",
    "run.progress=false",
    "run.eval_every=1",
]


def test_teach_a_new_action_end_to_end(tmp_path: Path, capsys) -> None:
    rec = make_recording(seed=3, num_actions=4)
    bag, truth = tmp_path / "rec" / "bag", tmp_path / "rec" / "truth.csv"
    write_recording_bag(bag, rec, label_topic=None)
    write_intervals_csv(truth, rec)
    data = tmp_path / "data"
    argv = ["prepare", "bag", "--raw", str(bag), "--labels", str(truth), "--out", str(data)]
    assert masksem([*argv, "--name", "lab", "--num-persons", "2", "--background", "--no-progress"]) == 0
    side = json.loads((data / "lab.json").read_text())
    assert side["labels"][-1] == "no_action" and side["fps"] == pytest.approx(30.0, abs=0.1)
    assert set(side["labels"][:-1]) == {iv.label for iv in rec.intervals}

    npz = str(data / "lab.npz")  # the data's sidecar gives joints, layout, persons and clip length
    enc = tmp_path / "enc"
    assert (
        masksem(["pretrain", "--config", "demo_pretrain", f"data.path={npz}", f"run.out_dir={enc}", *TINY])
        == 0
    )
    ft = tmp_path / "ft"
    cfg = ["--config", "demo_pretrain", "--pretrained", str(enc / "last.pt"), f"data.path={npz}"]
    assert masksem(["finetune", *cfg, f"run.out_dir={ft}", "run.head=finetune", *TINY]) == 0
    results = json.loads((ft / "results.json").read_text())
    assert results["labels"] == side["labels"]

    bundle = tmp_path / "bundle"
    assert masksem(["export", "--checkpoint", str(ft / "classifier.pt"), "--out", str(bundle)]) == 0
    from masksem_core.runtime.bundle import load_bundle

    assert load_bundle(bundle).labels == side["labels"]

    # the recogniser's diagnostic: the recording's skeletons look like bodies; with the trunk reversed not
    from masksem_core.runtime.recognizer import StreamingRecognizer

    recog = StreamingRecognizer(bundle)
    for stamp, persons in rec.frames[:90]:
        if "1" in persons:
            joints, conf = persons["1"]
            recog.push("ok", stamp, joints, conf)
            recog.push("swapped", stamp, joints[[3, 2, 1, 0, *range(4, 25)]], conf)
    assert recog.joint_order_problems("ok") == []
    assert any("not above pelvis" in p for p in recog.joint_order_problems("swapped"))
    assert recog.joint_order_problems("nobody") == []

    out = tmp_path / "replay"
    code = masksem(["replay", str(bag), "--bundle", str(bundle), "--labels", str(truth), "--out", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert 0.0 <= report["metrics"]["frame_accuracy"] <= 1.0
    from masksem_core.rosmsg.bag_io import iter_action_frames

    said = {
        a.label for _, acts in iter_action_frames(next(p for p in out.iterdir() if p.is_dir())) for a in acts
    }
    assert said and said <= set(side["labels"])
