"""NTU preparation: parity with the standard pipeline on the real samples, denoising rules, bad input."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from masksem_core.data.arrays import open_npz_member
from masksem_core.data.centre import centre_clip
from masksem_core.data.errors import DataFormatError
from masksem_core.data.fixtures import synthetic_person, write_ntu_skeleton
from masksem_core.data.ntu import parse_skeleton_bytes, parse_skeleton_file, skeleton_to_actors
from masksem_core.data.ntu_prepare import missing_skeleton_names, prepare_ntu
from masksem_core.data.prepare import EmptyCorpusError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SAMPLES = SHARED / "ntu-samples"
EXPECTED = SAMPLES / "expected"
TWO_PERSON = "S001C003P008R002A058"

needs_samples = pytest.mark.skipif(not EXPECTED.is_dir(), reason=f"NTU samples not found at {SAMPLES}")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ntu60")
    report = prepare_ntu(SAMPLES, out, "ntu60", workers=1, progress=False)
    assert report.errors == [] and report.clips == 5
    return out


@needs_samples
@pytest.mark.parametrize("name", sorted(p.stem for p in SAMPLES.glob("*.skeleton")))
def test_parse_is_bit_identical_to_standard_stage1(name):
    raw = parse_skeleton_file(SAMPLES / f"{name}.skeleton")
    ref = np.load(EXPECTED / f"{name}.raw_bodies.npz")
    assert [b.body_id for b in raw.bodies] == list(ref["body_ids"])
    assert raw.num_frames == int(ref["num_frames"])
    np.testing.assert_array_equal(raw.bodies_per_frame, ref["bodies_per_frame"])
    for k, body in enumerate(raw.bodies):
        np.testing.assert_array_equal(body.joints, ref[f"body{k}_joints"])
        np.testing.assert_array_equal(body.frames, ref[f"body{k}_interval"])


@needs_samples
@pytest.mark.parametrize("name", sorted(p.stem for p in SAMPLES.glob("*.skeleton")))
def test_sample_matches_standard_final_array(name):
    actors = skeleton_to_actors(parse_skeleton_file(SAMPLES / f"{name}.skeleton"))
    final = centre_clip(actors, 1).reshape(len(actors), 150)
    expected = np.load(EXPECTED / f"{name}.final.npy")
    t = len(final)
    assert t == json.loads((EXPECTED / "index.json").read_text())["samples"][name]["valid_frames"]
    assert np.abs(final - expected[:t]).max() < 1e-4
    np.testing.assert_array_equal(final, expected[:t])  # in fact bit-identical
    assert not expected[t:].any()
    np.testing.assert_array_equal(final[0, 3:6], 0.0)


@needs_samples
def test_two_person_sample_actor_order_and_motion():
    raw = parse_skeleton_file(SAMPLES / f"{TWO_PERSON}.skeleton")
    ref = np.load(EXPECTED / f"{TWO_PERSON}.raw_bodies.npz")
    actors = skeleton_to_actors(raw)
    assert actors.shape == (70, 2, 25, 3)
    # actor 1 is the body with the larger motion (0.237 > 0.198): listed second in the file
    assert raw.bodies[1].motion == pytest.approx(0.237029, abs=1e-6)
    np.testing.assert_array_equal(actors[:, 0], ref["body1_joints"])
    np.testing.assert_array_equal(actors[:, 1], ref["body0_joints"])
    assert np.all(np.any(actors[:, 1] != 0, axis=(1, 2)))


@needs_samples
@pytest.mark.parametrize(("ours", "theirs"), [("NTU60_CS", "NTU60_XSub"), ("NTU60_CV", "NTU60_XView")])
def test_split_files_match_standard(prepared, ours, theirs):
    got, ref = np.load(prepared / f"{ours}.npz"), np.load(EXPECTED / f"{theirs}.npz")
    for part in ("train", "test"):
        x, rx = got[f"x_{part}"], ref[f"x_{part}"]
        assert x.shape == (len(rx), 300, 150) and x.dtype == np.float32
        np.testing.assert_array_equal(x[:, : rx.shape[1]], rx)
        assert not x[:, rx.shape[1] :].any()
        assert got[f"y_{part}"].dtype == np.float64
        np.testing.assert_array_equal(got[f"y_{part}"], ref[f"y_{part}"])
    side = json.loads((prepared / f"{ours}.json").read_text())
    index = json.loads((EXPECTED / "index.json").read_text())
    ref_split = index["splits"][theirs.split("_")[1]]
    assert side["train"]["names"] == ref_split["train"] and side["test"]["names"] == ref_split["test"]
    assert side["layout"] == "ntu25" and side["num_persons"] == 2 and len(side["labels"]) == 60
    assert side["train"]["valid_lengths"] == [
        index["samples"][n]["valid_frames"] for n in side["train"]["names"]
    ]


@needs_samples
def test_split_row_order_is_the_standard_grouping(prepared):
    side = json.loads((prepared / "NTU60_CS.json").read_text())
    assert side["train"]["names"] == ["S001C001P001R001A011", "S001C003P008R002A058", "S003C001P015R001A034"]
    assert side["test"]["names"] == ["S002C001P003R001A003", "S004C002P003R001A017"]
    side = json.loads((prepared / "NTU60_CV.json").read_text())
    assert side["train"]["names"] == ["S004C002P003R001A017", "S001C003P008R002A058"]


@needs_samples
def test_written_npz_is_memory_mappable(prepared):
    x = open_npz_member(prepared / "NTU60_CS.npz", "x_train")
    assert isinstance(x, np.memmap)
    np.testing.assert_array_equal(x, np.load(prepared / "NTU60_CS.npz")["x_train"])


@needs_samples
def test_ntu120_splits(tmp_path):
    report = prepare_ntu(SAMPLES, tmp_path, "ntu120", progress=False)
    assert report.clips == 5
    cset = np.load(tmp_path / "NTU120_CSet.npz")
    side = json.loads((tmp_path / "NTU120_CSet.json").read_text())
    assert cset["y_train"].shape[1] == 120
    assert all(int(n[1:4]) % 2 == 0 for n in side["train"]["names"])
    assert all(int(n[1:4]) % 2 == 1 for n in side["test"]["names"])
    assert len(side["train"]["names"]) == 2 and len(side["test"]["names"]) == 3
    csub = json.loads((tmp_path / "NTU120_CSub.json").read_text())
    assert [n[8:12] for n in csub["test"]["names"]] == ["P003", "P003"]


@needs_samples
def test_missing_skeleton_list_is_skipped(tmp_path):
    listed = sorted(missing_skeleton_names("ntu60"))[0]
    assert len(missing_skeleton_names("ntu60")) == 302 and len(missing_skeleton_names("ntu120")) == 535
    shutil.copy(SAMPLES / "S001C001P001R001A011.skeleton", tmp_path / f"{listed}.skeleton")
    shutil.copy(SAMPLES / "S002C001P003R001A003.skeleton", tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    report = prepare_ntu(tmp_path, out, "ntu60", progress=False)
    assert report.clips == 1 and len(report.skipped) == 1 and listed in report.skipped[0]


# ---- denoising rules and the two deliberate fixes, on synthetic files -------------------------------


def _person(n, seed, offset=0.0):
    return synthetic_person(n, np.random.default_rng(seed), offset)


def test_fix_reappearing_body_keeps_its_real_frames(tmp_path):
    """Standard bug: a body that vanishes and returns is shifted earlier; we keep its real frames."""
    a, b = _person(30, 1), _person(30, 2, offset=1.0)
    b[:, :, 0] *= 0.2  # narrow in x so the spread rule keeps it
    frames = [[("A", a[t])] + ([("B", b[t])] if not 15 <= t < 20 else []) for t in range(30)]
    raw = parse_skeleton_file(write_ntu_skeleton(tmp_path / "S001C001P001R001A050.skeleton", frames))
    np.testing.assert_array_equal(raw.bodies[1].frames, [*range(15), *range(20, 30)])
    actors = skeleton_to_actors(raw)
    slot = 0 if np.array_equal(actors[0, 0], b[0]) else 1
    np.testing.assert_array_equal(actors[20:, slot], b[20:])  # standard would put these at 15..24
    assert not actors[15:20, slot].any()
    centred = centre_clip(actors, 1)
    assert not centred[15:20, slot].any()  # a lost actor's frames stay empty after centring


def test_fix_all_bodies_too_short_does_not_crash(tmp_path):
    a, b = _person(8, 1), _person(8, 2, 1.0)
    frames = [[("A", a[t]), ("B", b[t])] for t in range(8)]
    raw = parse_skeleton_file(write_ntu_skeleton(tmp_path / "S001C001P001R001A001.skeleton", frames))
    assert skeleton_to_actors(raw).shape == (8, 2, 25, 3)


def test_short_noise_body_is_dropped_and_most_motion_is_actor1(tmp_path):
    still, moving = _person(40, 1), _person(40, 2, 1.0)
    moving[:, :, 1] += np.linspace(0, 0.5, 40)[:, None]  # walks: more motion
    ghost = _person(5, 3, -1.0)
    frames = [[("S", still[t]), ("M", moving[t])] + ([("G", ghost[t])] if t < 5 else []) for t in range(40)]
    actors = skeleton_to_actors(parse_skeleton_file(write_ntu_skeleton(tmp_path / "x.skeleton", frames)))
    np.testing.assert_array_equal(actors[:, 0], moving)
    np.testing.assert_array_equal(actors[:, 1], still)


def test_furniture_body_is_dropped_by_spread(tmp_path):
    person, table = _person(30, 1), _person(30, 2, 1.0)
    table[:, :, 0] = np.linspace(-1.5, 1.5, 25)  # 3 m wide, ~1.4 m tall: x spread > 0.8 y spread
    frames = [[("P", person[t]), ("T", table[t])] for t in range(30)]
    actors = skeleton_to_actors(parse_skeleton_file(write_ntu_skeleton(tmp_path / "x.skeleton", frames)))
    np.testing.assert_array_equal(actors[:, 0], person)
    assert not actors[:, 1].any()


def test_zero_body_frames_are_dropped(tmp_path):
    p = _person(20, 1)
    frames = [[("A", p[t])] if t % 5 else [] for t in range(20)]
    actors = skeleton_to_actors(parse_skeleton_file(write_ntu_skeleton(tmp_path / "x.skeleton", frames)))
    np.testing.assert_array_equal(actors[:, 0], p[[t for t in range(20) if t % 5]])


# ---- bad input ------------------------------------------------------------------------------------


@needs_samples
def test_truncated_file_names_file_and_line():
    data = (SAMPLES / "S001C001P001R001A011.skeleton").read_bytes()
    cut = data[: len(data) // 2]
    cut = cut[: cut.rfind(b"\n") + 1]
    with pytest.raises(DataFormatError, match=r"trunc\.skeleton:\d+") as exc:
        parse_skeleton_bytes(cut, "trunc.skeleton")
    assert exc.value.line is not None


@needs_samples
def test_malformed_joint_field_names_the_line():
    lines = (SAMPLES / "S001C001P001R001A011.skeleton").read_bytes().split(b"\r\n")
    lines[100] = lines[100].replace(b" ", b" x", 1)
    with pytest.raises(DataFormatError, match="bad.skeleton:101") as exc:
        parse_skeleton_bytes(b"\r\n".join(lines), "bad.skeleton")
    assert exc.value.field == "joint"
    lines = (SAMPLES / "S001C001P001R001A011.skeleton").read_bytes().split(b"\r\n")
    lines[50] = lines[50].rsplit(b" ", 1)[0]  # 11 fields
    with pytest.raises(DataFormatError, match="bad.skeleton:51.*expected 12 fields"):
        parse_skeleton_bytes(b"\r\n".join(lines), "bad.skeleton")


def test_absurd_frame_count_is_rejected_before_allocation():
    t0 = time.perf_counter()
    with pytest.raises(DataFormatError, match="claims 1000000000 frames") as exc:
        parse_skeleton_bytes(b"1000000000\r\n1\r\n", "huge.skeleton")
    assert exc.value.line == 1 and time.perf_counter() - t0 < 0.5
    with pytest.raises(DataFormatError, match="claims 99999999 bodies"):
        parse_skeleton_bytes(b"2\r\n99999999\r\n0\r\n", "bodies.skeleton")
    with pytest.raises(DataFormatError, match="joint count is 7"):
        parse_skeleton_bytes(
            b"1\r\n1\r\n" + b"1 0 1 1 1 1 0 0 0 2\r\n7\r\n" + b"0 " * 11 + b"0\r\n" * 25, "j.skeleton"
        )


@needs_samples
def test_bad_files_are_counted_and_the_rest_is_prepared(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for p in SAMPLES.glob("*.skeleton"):
        shutil.copy(p, raw)
    joint = b"0.1 0.2 3 1 1 1 1 0 0 0 0 2\r\n"
    (raw / "S001C002P001R001A001.skeleton").write_bytes(b"1\r\n1\r\nnot a body\r\n25\r\n" + joint * 25)
    (raw / "S001C002P002R001A001.skeleton").write_bytes(b"")
    out = tmp_path / "out"
    out.mkdir()
    report = prepare_ntu(raw, out, "ntu60", workers=2, progress=False)
    assert report.clips == 5 and report.files == 7 and len(report.errors) == 2
    assert any("S001C002P001R001A001.skeleton:3 [body info]" in e for e in report.errors), report.errors
    assert any("S001C002P002R001A001.skeleton:1" in e for e in report.errors), report.errors
    assert "2 bad files" in report.summary()
    assert np.load(out / "NTU60_CS.npz")["x_train"].shape == (3, 300, 150)


def test_all_invalid_corpus_is_an_error_and_writes_nothing(tmp_path):
    (tmp_path / "S001C001P001R001A001.skeleton").write_bytes(b"garbage")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(EmptyCorpusError, match="all 1 files were bad"):
        prepare_ntu(tmp_path, out, "ntu60", progress=False)
    assert list(out.iterdir()) == []


@needs_samples
def test_benchmark_baseline_is_the_standard_parse():
    """The benchmark baseline must reproduce the standard stage 1, or its speed-up means nothing."""
    from conftest import load_script

    bench = load_script("bench/bench_prepare.py")
    out = bench.standard_parse(str(SAMPLES / f"{TWO_PERSON}.skeleton"))
    ref = np.load(EXPECTED / f"{TWO_PERSON}.raw_bodies.npz")
    assert list(out["data"]) == list(ref["body_ids"]) and out["num_frames"] == 70
    for k, body in enumerate(out["data"].values()):
        np.testing.assert_array_equal(body["joints"].reshape(-1, 25, 3), ref[f"body{k}_joints"])
        assert body["motion"] == ref[f"body{k}_motion"]


@pytest.mark.parametrize("fast", [True, False])
def test_coordinates_beyond_float32_are_an_error_naming_the_line(tmp_path, fast):
    """A value strtod reads but float32 cannot hold would become inf in the arrays: it is rejected."""
    joints = np.full((25, 3), 0.5, dtype=np.float32)
    path = write_ntu_skeleton(tmp_path / "S001C001P001R001A001.skeleton", [[("72057594037931101", joints)]])
    data = path.read_bytes()
    assert parse_skeleton_bytes(data, "big.skeleton", fast=fast).bodies[0].joints.max() == 0.5
    lines = data.split(b"\r\n")
    lines[5] = b"1e39" + lines[5][lines[5].index(b" ") :]  # line 6 = the second joint's x
    with pytest.raises(DataFormatError, match=r"big\.skeleton:6 \[joint\].*float32"):
        parse_skeleton_bytes(b"\r\n".join(lines), "big.skeleton", fast=fast)
