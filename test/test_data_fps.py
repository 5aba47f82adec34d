"""Every prepared data set records its frame rate in the sidecar; the feeder and training carry it on."""

from __future__ import annotations

import json

import numpy as np
import pytest

from masksem_core.data.custom import prepare_custom
from masksem_core.data.feeder import SkeletonClips
from masksem_core.data.fixtures import plausible_clip, write_pku_fixture
from masksem_core.data.pku import prepare_pku
from masksem_core.layouts import NTU25


def test_nwucla_sidecar_and_feeder_carry_15_fps(nwucla_npz):
    side = json.loads(nwucla_npz.with_suffix(".json").read_text())
    assert side["fps"] == 15.0
    assert SkeletonClips(nwucla_npz, "test", num_frames=16, train=False).fps == 15.0


def test_pku_sidecars_say_30_fps(tmp_path):
    fx = write_pku_fixture(tmp_path / "raw", phase=1)
    out = tmp_path / "out"
    out.mkdir()
    prepare_pku(fx.root, out, 1, progress=False)
    for stem in ("PKUMMD1_CS", "PKUMMD1_CV"):
        assert json.loads((out / f"{stem}.json").read_text())["fps"] == 30.0


def _custom(root):
    root.mkdir()
    for i in range(3):  # human bodies: prepare's joint-order check refuses noise
        np.save(root / f"c{i}.npy", plausible_clip(NTU25.name, 12, np.random.default_rng(i)))
    (root / "labels.csv").write_text("file,label,split\nc0.npy,a,train\nc1.npy,b,train\nc2.npy,a,test\n")
    return root


def test_custom_fps_from_the_flag_or_null_with_a_warning(tmp_path, capsys):
    from masksem_core.cli import main

    raw = _custom(tmp_path / "raw")
    argv = ["prepare", "custom", "--raw", str(raw), "--layout", NTU25.name, "--no-progress", "--name", "lab"]
    assert main([*argv, "--out", str(tmp_path / "a"), "--fps", "25"]) == 0
    assert json.loads((tmp_path / "a" / "lab.json").read_text())["fps"] == 25.0
    assert SkeletonClips(tmp_path / "a" / "lab.npz", "train", num_frames=8).fps == 25.0
    assert main([*argv, "--out", str(tmp_path / "b")]) == 0
    assert json.loads((tmp_path / "b" / "lab.json").read_text())["fps"] is None
    assert "frame rate unknown" in capsys.readouterr().err
    assert SkeletonClips(tmp_path / "b" / "lab.npz", "train", num_frames=8).fps is None
    with pytest.raises(ValueError, match="fps"):
        prepare_custom(raw, tmp_path / "b", NTU25.name, name="lab", progress=False, fps=0.0)
