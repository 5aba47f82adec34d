"""NW-UCLA preparation on the real 1484 JSON clips: counts, labels, split, centring, bad files."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from masksem_core.data.errors import DataFormatError
from masksem_core.data.nwucla import nwucla_clip, prepare_nwucla

UCLA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nw-ucla"
pytestmark = pytest.mark.skipif(not (UCLA / "all_sqe").is_dir(), reason=f"NW-UCLA not found at {UCLA}")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ucla")
    report = prepare_nwucla(UCLA, out, workers=2, progress=False)
    assert report.errors == [] and report.clips == 1484
    return out


def test_cross_view_counts_and_shapes(prepared):
    z = np.load(prepared / "NW-UCLA.npz")
    assert z["x_train"].shape == (1020, 300, 60) and z["x_test"].shape == (464, 300, 60)
    assert z["y_train"].shape == (1020, 10) and z["y_test"].shape == (464, 10)
    side = json.loads((prepared / "NW-UCLA.json").read_text())
    assert side["layout"] == "kinect_v1_20" and side["num_persons"] == 1
    assert all(n.endswith(("v01", "v02")) for n in side["train"]["names"])
    assert all(n.endswith("v03") for n in side["test"]["names"])


def test_labels_match_files_and_official_test_list(prepared):
    z = np.load(prepared / "NW-UCLA.npz")
    side = json.loads((prepared / "NW-UCLA.json").read_text())
    with open(UCLA / "val_label.pkl", "rb") as fh:
        official = {d["file_name"]: d for d in pickle.load(fh)}
    assert set(side["test"]["names"]) == set(official)
    labels = z["y_test"].argmax(1)
    lengths = side["test"]["valid_lengths"]
    for name, label, length in zip(side["test"]["names"], labels, lengths):
        assert label == official[name]["label"] - 1 and length == official[name]["length"]
    for name, label in zip(side["train"]["names"][:50], z["y_train"].argmax(1)):
        assert label == json.loads((UCLA / "all_sqe" / f"{name}.json").read_text())["label"] - 1
    assert np.bincount(z["y_train"].argmax(1), minlength=10).min() > 0


def test_centred_on_spine_and_one_frame_clips(prepared):
    z = np.load(prepared / "NW-UCLA.npz")
    side = json.loads((prepared / "NW-UCLA.json").read_text())
    x = z["x_train"].reshape(1020, 300, 20, 3)
    np.testing.assert_array_equal(x[:, 0, 1], 0.0)  # joint 1 (spine) of the first frame is the origin
    names = side["train"]["names"] + side["test"]["names"]
    lengths = side["train"]["valid_lengths"] + side["test"]["valid_lengths"]
    one = [n for n, t in zip(names, lengths) if t == 1]
    assert sorted(one) == ["a02_s09_e04_v02", "a02_s09_e04_v03"]
    raw = json.loads((UCLA / "all_sqe" / "a01_s01_e00_v01.json").read_text())["skeletons"]
    i = side["train"]["names"].index("a01_s01_e00_v01")
    t = len(raw)
    expected = np.asarray(raw, dtype=np.float32) - np.asarray(raw, dtype=np.float32)[0, 1]
    np.testing.assert_allclose(x[i, :t], expected, atol=1e-6)
    assert not x[i, t:].any()


def test_bad_json_files_are_reported(tmp_path):
    good = UCLA / "all_sqe" / "a01_s01_e00_v01.json"
    shutil.copy(good, tmp_path)
    (tmp_path / "a01_s01_e01_v01.json").write_text('{"label": 1, "skeletons": [[[0, 1, 2]]]')
    doc = json.loads(good.read_text())
    doc["skeletons"][3][4] = [0.1, "x", 0.3]
    (tmp_path / "a01_s01_e02_v01.json").write_text(json.dumps(doc))
    doc["skeletons"] = doc["skeletons"][:3] + [[[0, 0, 0]] * 19]
    (tmp_path / "a01_s01_e03_v03.json").write_text(json.dumps(doc))
    (tmp_path / "a01_s01_e04_v03.json").write_text(json.dumps({"label": 11, "skeletons": [[[0, 0, 0]] * 20]}))
    with pytest.raises(DataFormatError, match=r"a01_s01_e01_v01.json:1: invalid JSON"):
        nwucla_clip(str(tmp_path / "a01_s01_e01_v01.json"))
    with pytest.raises(DataFormatError, match=r"\[skeletons\]"):
        nwucla_clip(str(tmp_path / "a01_s01_e02_v01.json"))
    with pytest.raises(DataFormatError, match=r"\[label\].*label 11"):
        nwucla_clip(str(tmp_path / "a01_s01_e04_v03.json"))
    out = tmp_path / "out"
    out.mkdir()
    report = prepare_nwucla(tmp_path, out, progress=False)
    assert report.clips == 1 and len(report.errors) == 4
