"""PKU-MMD preparation against the fixture writer: clip cutting, labels, official splits, bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from masksem_core.data.errors import DataFormatError
from masksem_core.data.fixtures import write_pku_fixture
from masksem_core.data.pku import parse_pku_labels, parse_pku_skeleton, parse_split_file, prepare_pku


@pytest.fixture(params=[1, 2])
def fixture_and_out(request, tmp_path):
    fx = write_pku_fixture(tmp_path / "raw", phase=request.param)
    out = tmp_path / "out"
    out.mkdir()
    return request.param, fx, out


def test_clips_cut_labelled_and_split(fixture_and_out):
    phase, fx, out = fixture_and_out
    report = prepare_pku(fx.root, out, phase, progress=False)
    assert report.errors == [] and report.clips == len(fx.clips) == 27
    cs = np.load(out / f"PKUMMD{phase}_CS.npz")
    side = json.loads((out / f"PKUMMD{phase}_CS.json").read_text())
    assert cs["y_train"].shape[1] == 51 and cs["x_train"].shape[1:] == (300, 150)
    for part in ("train", "test"):
        for name, y, t in zip(side[part]["names"], cs[f"y_{part}"].argmax(1), side[part]["valid_lengths"]):
            assert (int(y), t) == fx.clips[name]
    assert {n.rsplit("_", 1)[0] for n in side["test"]["names"]} == set(fx.test_videos)
    cv = json.loads((out / f"PKUMMD{phase}_CV.json").read_text())
    assert all(n.rsplit("_", 1)[0].endswith("-L") for n in cv["test"]["names"])
    assert len(cv["train"]["names"]) == 18 and len(cv["test"]["names"]) == 9


def test_clip_values_are_the_cut_frames_centred(tmp_path):
    fx = write_pku_fixture(tmp_path / "raw", phase=1)
    out = tmp_path / "out"
    out.mkdir()
    prepare_pku(fx.root, out, 1, progress=False)
    side = json.loads((out / "PKUMMD1_CV.json").read_text())
    x = np.load(out / "PKUMMD1_CV.npz")["x_test"]
    name = side["test"]["names"][0]  # 0002-L_000: a two-person video
    video = name.rsplit("_", 1)[0]
    frames = np.loadtxt(fx.skeleton_files[video]).reshape(-1, 2, 25, 3).astype(np.float32)
    action, start, end = parse_pku_labels(str(fx.label_files[video]))[0]
    clip = frames[start:end]
    expected = clip - clip[0, 0, 1]
    got = x[0, : end - start].reshape(-1, 2, 25, 3)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert got[:, 1].any() and not x[0, end - start :].any()


def test_split_file_official_wording(tmp_path):
    p = tmp_path / "cross-view.txt"
    p.write_text("Training videos: \n0002-M, 0002-R,\nValidataion videos: \n0002-L\n")
    assert parse_split_file(p) == (["0002-M", "0002-R"], ["0002-L"])
    p.write_text("0002-M\n")
    with pytest.raises(DataFormatError, match="Training videos"):
        parse_split_file(p)


def test_malformed_files_name_file_line_and_field(tmp_path):
    fx = write_pku_fixture(tmp_path / "raw", phase=1)
    skel = fx.skeleton_files["0003-M"]
    lines = skel.read_text().splitlines()
    lines[7] = " ".join(lines[7].split()[:149])
    skel.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"0003-M.txt:8 \[frame\]: expected 150 numbers, got 149"):
        parse_pku_skeleton(str(skel))
    label = fx.label_files["0004-R"]
    label.write_text("3,10,40,1\n99,50,60,1\n")
    with pytest.raises(DataFormatError, match=r"0004-R.txt:2 \[action\]: action 99"):
        parse_pku_labels(str(label))
    label2 = fx.label_files["0002-R"]
    label2.write_text("3,10,4000,1\n")
    label3 = fx.label_files["0003-R"]
    label3.write_text("3,x,40,1\n")
    out = tmp_path / "out"
    out.mkdir()
    report = prepare_pku(fx.root, out, 1, workers=2, progress=False)
    assert len(report.errors) == 4 and report.clips == 27 - 4 * 3
    joined = "\n".join(report.errors)
    assert "0003-M.txt:8" in joined and "0004-R.txt:2" in joined and "0003-R.txt:1" in joined
    assert "0002-R.txt:1 [end_frame]" in joined


def test_missing_split_files_is_an_error(tmp_path):
    fx = write_pku_fixture(tmp_path / "raw", phase=1, num_subjects=1)
    for p in (fx.root / "split").iterdir():
        p.unlink()
    with pytest.raises(FileNotFoundError, match="split file"):
        prepare_pku(fx.root, tmp_path, 1, progress=False)
