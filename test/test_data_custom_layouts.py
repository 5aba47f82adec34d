"""Your own sensor: layouts, the joint-order check, `prepare custom` inference and refusals, on real files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from masksem_core.cli import main as masksem
from masksem_core.data.fixtures import plausible_clip
from masksem_core.data.joint_check import check_clips, joint_order_diagnostic
from masksem_core.data.sidecar_config import fill_from_sidecar
from masksem_core.layouts import KINECT_V1_20, LAYOUTS, NTU25, get_layout

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NW_UCLA = DATA / "nw-ucla" / "all_sqe"
NTU_EXPECTED = DATA / "ntu-samples" / "expected"
TRUNK_SWAP = [3, 2, 1, 0, *range(4, 20)]  # head <-> hip centre, shoulder centre <-> spine


def nw_ucla_clips(view: int | None = None, limit: int | None = None) -> list[tuple[str, np.ndarray]]:
    files = sorted(NW_UCLA.glob("*.json")) if NW_UCLA.is_dir() else []
    if view is not None:
        files = [f for f in files if f.stem.endswith(f"_v{view:02d}")]
    if not files:
        pytest.skip(f"NW-UCLA not found under {NW_UCLA}")
    if limit is not None:  # spread over the actions
        files = [files[i] for i in np.linspace(0, len(files) - 1, limit).round().astype(int)]
    return [(f.stem, np.asarray(json.loads(f.read_text())["skeletons"], np.float32)) for f in files]


def write_custom(root: Path, clips: list[tuple[str, np.ndarray]], order: list[int] | None = None) -> Path:
    root.mkdir(parents=True)
    rows = ["file,label,split"]
    for i, (name, sk) in enumerate(clips):
        np.save(root / f"{name}.npy", sk if order is None else sk[:, order])
        rows.append(f"{name}.npy,{int(name[1:3]) - 1},{'test' if i % 5 == 0 else 'train'}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def test_layouts_command_lists_every_layout(capsys) -> None:
    assert masksem(["layouts"]) == 0
    out = capsys.readouterr().out
    names = "ntu25 kinect_v1_20 mediapipe33 azure_kinect_32 zed_body_34 zed_body_38 h36m_17 openni_15".split()
    listed = [line.split()[0] for line in out.splitlines() if line and not line.startswith(" ")]
    assert listed == names
    assert "32 joints" in out and "source: Azure Kinect Body Tracking SDK k4abt_joint_id_t" in out
    assert masksem(["layouts", "openni_15", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["num_joints"] == 15 and entry["joint_names"][2] == "torso" and entry["up"] == "+y"
    assert masksem(["layouts", "kinect_v2"]) == 2


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_every_layout_is_a_tree_with_a_checked_body_and_an_adapter(name: str) -> None:
    lay = get_layout(name)
    if name != "mediapipe33":  # MediaPipe's connections have loops (hand, foot, hips)
        assert len(lay.bones) == lay.num_joints - 1 and len({c for c, _ in lay.bones}) == lay.num_joints - 1
    rng = np.random.default_rng(0)
    body = [(str(i), plausible_clip(name, 20, rng)) for i in range(4)]
    assert check_clips(body, lay).ok
    shuffled = np.random.default_rng(1).permutation(lay.num_joints)
    assert not check_clips([(n, c[:, shuffled]) for n, c in body], lay).ok


def test_vendor_joint_orders_spot_checks() -> None:
    """Indices straight from the vendors' enums (cited in layouts.py)."""
    assert get_layout("azure_kinect_32").index("head") == 26  # K4ABT_JOINT_HEAD
    assert get_layout("azure_kinect_32").index("clavicle_right") == 11
    assert (
        get_layout("zed_body_34").index("left_heel") == 32 and get_layout("zed_body_34").index("head") == 26
    )
    assert get_layout("zed_body_38").index("right_hand_pinky_1") == 37
    assert get_layout("zed_body_38").index("left_big_toe") == 24
    assert get_layout("h36m_17").parent_of_joint() == [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15]
    assert get_layout("openni_15").joint_names[:3] == ("head", "neck", "torso")


def test_joint_check_passes_every_real_nw_ucla_clip_and_the_ntu_samples() -> None:
    clips = nw_ucla_clips()
    assert len(clips) == 1484
    result = check_clips(clips, KINECT_V1_20)
    assert result.ok, result.message()
    assert result.bad_fraction < 0.02  # the few that fail alone are tracker glitches, listed as warnings
    files = sorted(NTU_EXPECTED.glob("*.raw_bodies.npz"))
    if not files:
        pytest.skip("NTU samples not found")
    ntu = []
    for f in files:
        with np.load(f) as z:
            ntu += [(f"{f.name}:{k}", z[k]) for k in z.files if k.endswith("_joints")]
    assert check_clips(ntu, NTU25).ok and not check_clips(ntu, NTU25).bad


def test_joint_check_passes_synthetic_data() -> None:
    from masksem_core.synthetic import generate_dataset

    ds = generate_dataset(num_per_class=2, seed=0)
    clips = [(str(i), x[: ds.num_frames[i]].reshape(-1, 2, 25, 3)) for i, x in enumerate(ds.x)]
    result = check_clips(clips, NTU25)
    assert result.ok and not result.bad


def test_joint_check_refuses_swapped_trunk_and_suggests_the_order_that_fits() -> None:
    clips = [(n, c[:, TRUNK_SWAP]) for n, c in nw_ucla_clips(limit=40)]
    result = check_clips(clips, KINECT_V1_20)
    assert not result.ok and result.bad_fraction == 1.0
    text = result.message()
    assert "joint order" in text and "hip_center-hip_left" in text and "not above pelvis" in text
    assert "--joint-order kinect_v1_20_trunk_reversed" in text


def test_runtime_diagnostic_names_the_problem() -> None:
    (name, clip), *_ = nw_ucla_clips(limit=1)
    assert joint_order_diagnostic(clip, KINECT_V1_20) == []
    problems = joint_order_diagnostic(clip[:, TRUNK_SWAP], KINECT_V1_20)
    assert any("not above pelvis" in p for p in problems)
    mm = joint_order_diagnostic(clip * 1000, KINECT_V1_20)
    assert any("hip_center-shoulder_center is 382" in p and "human: 0.20-0.85" in p for p in mm)


def test_custom_30_real_clips_without_layout_are_kinect_v1(tmp_path: Path, capsys) -> None:
    raw = write_custom(tmp_path / "raw", nw_ucla_clips(view=3, limit=30))
    out = tmp_path / "out"
    assert masksem(["prepare", "custom", "--raw", str(raw), "--out", str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "layout kinect_v1_20 inferred (20 joints a frame in 30 files)" in err
    assert "30 files -> 30 clips; 0 bad files" in err
    side = json.loads((out / "custom.json").read_text())
    assert (
        side["layout"] == "kinect_v1_20" and side["num_joints"] == 20 and side["num_classes"] == 12
    )  # NW-UCLA action ids run to a12
    assert sorted(side["train"]["names"] + side["test"]["names"]) == sorted(p.stem for p in raw.glob("*.npy"))


def test_custom_swapped_trunk_is_refused_with_joint_order(tmp_path: Path, capsys) -> None:
    raw = write_custom(tmp_path / "raw", nw_ucla_clips(view=3, limit=30), order=TRUNK_SWAP)
    out = tmp_path / "out"
    assert masksem(["prepare", "custom", "--raw", str(raw), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "joint order looks wrong for layout kinect_v1_20: 30 of 30 clips" in err
    assert "--joint-order kinect_v1_20_trunk_reversed" in err and not (out / "custom.npz").exists()
    # the suggested order, or the override, prepares it
    ok = ["prepare", "custom", "--raw", str(raw), "--out", str(out), "--no-progress"]
    assert masksem([*ok, "--joint-order", "kinect_v1_20_trunk_reversed"]) == 0
    assert (
        json.loads((out / "custom.json").read_text())["joint_order"]["name"] == "kinect_v1_20_trunk_reversed"
    )
    assert masksem([*ok, "--no-joint-check", "--name", "forced"]) == 0 and (out / "forced.npz").exists()


def test_joint_order_file_with_missing_joints(tmp_path: Path) -> None:
    clips = nw_ucla_clips(view=3, limit=12)
    keep = [n for n in KINECT_V1_20.joint_names if not n.startswith("foot_")]  # a tracker without feet
    cols = [KINECT_V1_20.index(n) for n in keep]
    raw = write_custom(tmp_path / "raw", clips, order=cols)
    (tmp_path / "order.txt").write_text("# my tracker\n" + "\n".join(keep) + "\n")
    out = tmp_path / "out"
    argv = ["prepare", "custom", "--raw", str(raw), "--out", str(out), "--no-progress"]
    assert masksem([*argv, "--joint-order", str(tmp_path / "order.txt")]) == 0
    side = json.loads((out / "custom.json").read_text())
    assert side["layout"] == "kinect_v1_20" and side["joint_order"]["missing"] == ["foot_left", "foot_right"]
    x = np.load(out / "custom.npz")["x_train"].reshape(-1, 300, 1, 20, 3)
    assert not x[..., KINECT_V1_20.index("foot_left"), :].any() and x[..., 0, :].any()
    (tmp_path / "bad.txt").write_text("head\nelbow_left\nwing_left\n")
    assert masksem([*argv, "--joint-order", str(tmp_path / "bad.txt")]) == 2


def test_custom_refusals_and_unseen_joints(tmp_path: Path, capsys) -> None:
    clips = nw_ucla_clips(view=3, limit=10)
    # NaN joints become unseen joints, counted, and the clip is kept
    raw = write_custom(tmp_path / "nan", clips)
    sk = np.load(raw / f"{clips[0][0]}.npy")
    sk[:, 7] = np.nan
    sk[0, 3, 1] = np.inf
    np.save(raw / f"{clips[0][0]}.npy", sk)
    (raw / "classes.txt").write_text("\n".join(f"action {i}" for i in range(12)) + "\n")
    out = tmp_path / "out"
    assert masksem(["prepare", "custom", "--raw", str(raw), "--out", str(out), "--no-progress"]) == 0
    side = json.loads((out / "custom.json").read_text())
    assert side["nonfinite_joints_unseen"] == len(sk) + 1 and side["labels"][0] == "action 0"
    assert f"{len(sk) + 1} NaN/inf joints made unseen" in capsys.readouterr().err
    # a malformed folder (most files the wrong shape) is refused, naming the shape it expected
    bad = write_custom(tmp_path / "bad", clips)
    for name, c in clips[1:]:
        np.save(bad / f"{name}.npy", c[:, :15])
    assert masksem(["prepare", "custom", "--raw", str(bad), "--out", str(tmp_path / "o2"), "--layout",
                    "kinect_v1_20", "--no-progress"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "9 of 10 files are bad" in err and "expected (T, 20, 3)" in err
    # without --layout and 15 joints in most files: openni_15 is inferred, and the body check refuses it
    assert (
        masksem(["prepare", "custom", "--raw", str(bad), "--out", str(tmp_path / "o3"), "--no-progress"]) == 2
    )
    assert "layout openni_15 inferred" in capsys.readouterr().err
    # no layout has 21 joints: the error lists the candidates
    odd = write_custom(tmp_path / "odd", [(n, np.concatenate([c, c[:, :1]], 1)) for n, c in clips])
    assert (
        masksem(["prepare", "custom", "--raw", str(odd), "--out", str(tmp_path / "o4"), "--no-progress"]) == 2
    )
    err = capsys.readouterr().err
    assert "no known layout has 21 joints" in err and "kinect_v1_20 (20)" in err


def test_training_config_comes_from_the_sidecar(tmp_path: Path) -> None:
    from masksem_core.config import ConfigError
    from masksem_core.train.cli import load_experiment

    raw = write_custom(tmp_path / "raw", nw_ucla_clips(view=3, limit=10))
    out = tmp_path / "out"
    assert masksem(["prepare", "custom", "--raw", str(raw), "--out", str(out), "--no-progress"]) == 0
    npz = str(out / "custom.npz")
    filled = fill_from_sidecar({"data": {"path": npz}}, say=False)["model"]
    assert filled["num_joints"] == 20 and filled["layout"] == "kinect_v1_20" and filled["num_persons"] == 2
    assert filled["num_frames"] % 4 == 0 and 16 <= filled["num_frames"] <= 120
    kept = fill_from_sidecar({"data": {"path": npz}, "model": {"num_frames": 64}}, say=False)["model"]
    assert kept["num_frames"] == 64
    with pytest.raises(ConfigError, match=r"model.num_joints=25 .* num_joints 20"):
        fill_from_sidecar({"data": {"path": npz}, "model": {"num_joints": 25}})
    with pytest.raises(ConfigError, match=r"model\.patch_len"):  # a wrong type with a sidecar: named too
        load_experiment(None, [f"data.path={npz}", "model.patch_len=four"])


def test_nite2_order_is_suggested_and_millimetres_are_named(tmp_path: Path, capsys) -> None:
    from masksem_core.data.joint_order import KNOWN_ORDERS

    openni = get_layout("openni_15")
    rng = np.random.default_rng(0)
    clips = [(f"a{i % 3 + 1:02d}_c{i}", plausible_clip("openni_15", 30, rng)) for i in range(12)]
    nite2 = [openni.index(n) for n in KNOWN_ORDERS["nite2_15"][1]]  # column k holds this openni joint
    raw = write_custom(tmp_path / "raw", clips, order=nite2)
    argv = ["prepare", "custom", "--raw", str(raw), "--no-progress"]
    assert masksem([*argv, "--out", str(tmp_path / "o1")]) == 2
    err = capsys.readouterr().err
    assert "layout openni_15 inferred" in err and "joint order looks wrong for layout openni_15" in err
    assert "--joint-order nite2_15 (openni_15)" in err
    assert masksem([*argv, "--out", str(tmp_path / "o2"), "--joint-order", "nite2_15"]) == 0
    x = np.load(tmp_path / "o2" / "custom.npz")["x_train"].reshape(-1, 300, 2, 15, 3)
    src = np.load(raw / f"{clips[1][0]}.npy")  # clip 1 trains; back in openni order, centred on the torso
    back = np.zeros_like(src)
    back[:, nite2] = src
    np.testing.assert_allclose(x[0, :30, 0], back - back[0, openni.centre_joint], atol=1e-5)
    mm = write_custom(tmp_path / "mm", [(n, c * 1000) for n, c in clips])
    assert (
        masksem(["prepare", "custom", "--raw", str(mm), "--out", str(tmp_path / "o3"), "--no-progress"]) == 2
    )
    assert "coordinates look like millimetres" in capsys.readouterr().err


def test_prepare_bag_reads_pointcloud_skeletons(tmp_path: Path) -> None:
    pytest.importorskip("rosbags")
    from masksem_core.rosmsg.bag_io import write_skeleton_bag
    from masksem_core.synthetic import make_recording
    from masksem_core.synthetic.recording import write_intervals_csv

    rec = make_recording(seed=5, num_actions=3)
    bag = write_skeleton_bag(tmp_path / "bag", rec.frames, rec.layout, as_pointcloud=True)
    write_intervals_csv(tmp_path / "truth.csv", rec)
    out = tmp_path / "out"
    argv = ["prepare", "bag", "--raw", str(bag), "--labels", str(tmp_path / "truth.csv"), "--out", str(out)]
    assert masksem([*argv, "--no-progress", "--to-layout", "kinect_v1_20"]) == 0
    side = json.loads((out / "robot.json").read_text())
    assert side["layout"] == "kinect_v1_20" and side["num_joints"] == 20
    assert len(side["train"]["names"]) + len(side["test"]["names"]) == len(rec.intervals)
