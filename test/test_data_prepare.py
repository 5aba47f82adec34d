"""The preparation engine and CLI: custom format, atomic writes, error reporting, exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from masksem_core.cli import main as masksem_main
from masksem_core.data.arrays import open_npz_member, write_split_npz
from masksem_core.data.custom import prepare_custom
from masksem_core.data.feeder import SkeletonClips
from masksem_core.data.fixtures import plausible_clip
from masksem_core.layouts import MEDIAPIPE33

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ntu-samples"


def _custom_dir(root: Path) -> Path:
    root.mkdir()
    rng = np.random.default_rng(0)
    rows = ["file,label,split"]
    for i in range(6):
        t = 20 + 5 * i
        clip = plausible_clip(MEDIAPIPE33.name, t, rng)  # a body: passes the joint-order check
        if i == 5:
            clip = np.stack([clip, plausible_clip(MEDIAPIPE33.name, t, rng, offset=1.0)], axis=1)
        np.save(root / f"clip{i}.npy", clip)
        rows.append(f"clip{i}.npy,{['wave', 'point', 'stop'][i % 3]},{'test' if i >= 4 else 'train'}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def test_custom_format_round_trip(tmp_path):
    raw = _custom_dir(tmp_path / "raw")
    out = tmp_path / "out"
    out.mkdir()
    report = prepare_custom(raw, out, "mediapipe33", name="robotlab", progress=False)
    assert report.errors == [] and report.clips == 6
    side = json.loads((out / "robotlab.json").read_text())
    assert side["labels"] == ["point", "stop", "wave"] and side["layout"] == "mediapipe33"
    assert side["train"]["valid_lengths"] == [20, 25, 30, 35] and side["test"]["names"] == ["clip4", "clip5"]
    ds = SkeletonClips(out / "robotlab.npz", "test", num_frames=16, train=False)
    assert ds.layout is MEDIAPIPE33 and ds[1][0].shape == (3, 16, 33, 2) and ds[1][1] == 1
    x = np.load(out / "robotlab.npz")["x_train"].reshape(4, 300, 2, 33, 3)
    src = np.load(raw / "clip0.npy")
    unseen = ~src.any(axis=-1, keepdims=True)  # joints the fixture leaves zero stay unseen after centring
    expected = np.where(unseen, 0.0, src - src[0, MEDIAPIPE33.centre_joint])
    np.testing.assert_allclose(x[0, :20, 0], expected, atol=1e-6)


def test_custom_bad_clip_is_reported(tmp_path):
    raw = _custom_dir(tmp_path / "raw")
    np.save(raw / "clip1.npy", np.zeros((10, 25, 3), dtype=np.float32))  # wrong layout
    (raw / "clip2.npy").write_bytes(b"not npy")
    out = tmp_path / "out"
    out.mkdir()
    report = prepare_custom(raw, out, "mediapipe33", progress=False)
    assert report.clips == 4 and len(report.errors) == 2
    assert any("clip1.npy [shape]" in e for e in report.errors)


def test_npz_write_is_atomic(tmp_path):
    path = tmp_path / "A.npz"
    good = np.ones((4, 10, 6), dtype=np.float32)
    write_split_npz(path, good, [0, 1], [2, 3], np.array([0, 1, 0, 1]), 2, {"layout": "x"})
    before = path.read_bytes()

    class Exploding(np.ndarray):
        def __getitem__(self, idx):
            raise KeyboardInterrupt  # as if Ctrl-C arrived mid-write

    bad = np.zeros((4, 10, 6), dtype=np.float32).view(Exploding)
    with pytest.raises(KeyboardInterrupt):
        write_split_npz(path, bad, [0, 1], [2, 3], np.array([0, 1, 0, 1]), 2, {"layout": "y"})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["A.json", "A.npz"]
    assert json.loads((tmp_path / "A.json").read_text())["layout"] == "x"
    np.testing.assert_array_equal(open_npz_member(path, "x_test"), good[2:])


@pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"NTU samples not found at {SAMPLES}")
def test_cli_prepare_and_exit_codes(tmp_path, capsys):
    out = tmp_path / "out"
    assert masksem_main(["prepare", "ntu60", "--raw", str(SAMPLES), "--out", str(out), "--workers", "1"]) == 0
    assert (out / "NTU60_CS.npz").exists() and (out / "NTU60_CV.json").exists()
    assert "5 files -> 5 clips" in (out / "prepare_ntu60_report.txt").read_text()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert masksem_main(["prepare", "ntu120", "--raw", str(empty), "--out", str(tmp_path / "o2")]) == 2
    assert "no usable clip" in capsys.readouterr().err
    (empty / "S001C001P001R001A001.skeleton").write_text("3\n")
    assert masksem_main(["prepare", "ntu60", "--raw", str(empty), "--out", str(tmp_path / "o3")]) == 2
    assert "all 1 files were bad" in capsys.readouterr().err


@pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"NTU samples not found at {SAMPLES}")
def test_ctrl_c_leaves_no_partial_output(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    src = sorted(SAMPLES.glob("*.skeleton"))
    local = []
    for s in src:  # hard links need the same file system: one copy of each sample in tmp
        local.append(tmp_path / s.name)
        local[-1].write_bytes(s.read_bytes())
    for i in range(3000):  # seconds of parsing at no disk cost; the signal comes within 50 ms
        os.link(local[i % 5], raw / f"S001C001P{i // 100 + 1:03d}R{i % 100:03d}A001.skeleton")
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "masksem_core.cli",
            "prepare",
            "ntu60",
            "--raw",
            str(raw),
            "--out",
            str(out),
            "--workers",
            "1",
            "--no-progress",
        ],
        stderr=subprocess.PIPE,
        text=True,
        # a runner that starts us in the background has SIGINT ignored, which the child would inherit
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 20
    while not any(out.glob(".clips.*")) and time.time() < deadline:  # wait until it is mid-run
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    leftovers = sorted(p.name for p in out.iterdir()) if out.exists() else []
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert leftovers == [], leftovers  # neither the scratch file nor a half-written npz
