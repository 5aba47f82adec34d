"""MaskSem messages without ROS: .msg parsing (ROS's own parser), package.xml, rosbags type store,
message <-> numpy round trips, PointCloud2, and rosbag2 I/O on real NW-UCLA skeletons."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from masksem_core.rosmsg import bag_io
from masksem_core.rosmsg.messages import (
    ACTION_ARRAY_TYPE,
    MSG_NAMES,
    SKELETON_ARRAY_TYPE,
    actions_to_array_msg,
    array_msg_to_actions,
    get_typestore,
    msg_dir,
    numpy_to_skeleton_array,
    rosbags_kit,
    sec_to_stamp,
    skeleton_array_to_numpy,
    stamp_to_sec,
)
from masksem_core.rosmsg.pointcloud import numpy_to_pointcloud, pointcloud_to_numpy

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
NWUCLA = DATA / "nw-ucla" / "all_sqe"
DEBIAN_PY = Path("/usr/bin/python3")


def _nwucla(stem: str) -> np.ndarray:
    if not NWUCLA.is_dir():
        pytest.skip(f"NW-UCLA skeletons not found at {NWUCLA} (shared data not next to the repo)")
    return np.asarray(json.loads((NWUCLA / f"{stem}.json").read_text())["skeletons"], dtype=np.float32)


def test_every_msg_parses_with_rosidl():
    if not DEBIAN_PY.exists():
        pytest.skip("no Debian /usr/bin/python3 for python3-rosidl")
    probe = subprocess.run([DEBIAN_PY, "-c", "import rosidl_adapter.parser"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("python3-rosidl not installed (apt-get install python3-rosidl)")
    code = (
        "import sys\nfrom rosidl_adapter.parser import parse_message_file\n"
        "for p in sys.argv[1:]:\n"
        "    s = parse_message_file('masksem_ros', p)\n"
        "    print(s.msg_name, ' '.join(f'{f.type}:{f.name}' for f in s.fields))\n"
    )
    files = [str(msg_dir() / f"{n}.msg") for n in MSG_NAMES]
    out = subprocess.run([DEBIAN_PY, "-c", code, *files], capture_output=True, text=True, check=True).stdout
    parsed = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in out.strip().splitlines()}
    assert set(parsed) == set(MSG_NAMES)
    assert "geometry_msgs/Point[]:joints" in parsed["Skeleton3D"]
    assert "float32[]:confidence" in parsed["Skeleton3D"]
    assert "masksem_ros/Skeleton3D[]:skeletons" in parsed["Skeleton3DArray"]
    assert "builtin_interfaces/Time:window_start" in parsed["RecognizedAction"]


def test_every_msg_file_is_documented_and_registered():
    ts = get_typestore()
    for name in MSG_NAMES:
        text = (msg_dir() / f"{name}.msg").read_text()
        fields = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        comments = [ln for ln in text.splitlines() if ln.lstrip().startswith("#")]
        assert len(comments) >= len(fields), f"{name}.msg: document every field"
        assert f"masksem_ros/msg/{name}" in ts.types


def test_package_xml_validates_with_catkin_pkg():
    from catkin_pkg.package import parse_package

    pkg = parse_package(str(REPO / "package.xml"))
    pkg.validate()
    assert pkg.name == "masksem_ros" and pkg.package_format == 3
    assert pkg.get_build_type() == "ament_cmake"
    assert "rosidl_interface_packages" in [g.name for g in pkg.member_of_groups]
    deps = {d.name for d in pkg.build_depends + pkg.exec_depends}
    assert {"std_msgs", "geometry_msgs", "sensor_msgs", "builtin_interfaces", "rclpy"} <= deps
    cmake = (REPO / "CMakeLists.txt").read_text()
    for name in MSG_NAMES:
        assert f"msg/{name}.msg" in cmake


def test_skeleton_array_round_trips_through_cdr():
    ts, kit = get_typestore(), rosbags_kit()
    rng = np.random.default_rng(0)
    persons = {
        "3": (rng.normal(size=(20, 3)).astype(np.float32), rng.uniform(size=20).astype(np.float32)),
        "b1x7k": (rng.normal(size=(20, 3)).astype(np.float32), None),
    }
    persons["3"][0][5] = np.nan  # a missing joint survives as NaN
    msg = numpy_to_skeleton_array(kit, 1732571234.123456789, persons, "kinect_v1_20", "cam_optical")
    raw = bytes(ts.serialize_cdr(msg, SKELETON_ARRAY_TYPE))
    back = ts.deserialize_cdr(raw, SKELETON_ARRAY_TYPE)
    assert bytes(ts.serialize_cdr(back, SKELETON_ARRAY_TYPE)) == raw
    stamp, got, layout = skeleton_array_to_numpy(back)
    assert layout == "kinect_v1_20" and list(got) == ["3", "b1x7k"]
    assert abs(stamp - 1732571234.123456789) < 1e-6
    assert back.header.frame_id == "cam_optical" and back.skeletons[1].header.frame_id == "cam_optical"
    np.testing.assert_array_equal(got["3"][0], persons["3"][0])
    np.testing.assert_array_equal(got["3"][1], persons["3"][1])
    np.testing.assert_array_equal(got["b1x7k"][1], np.ones(20, np.float32))  # empty confidence = ones
    assert len(back.skeletons[1].confidence) == 0


def test_cdr_bytes_of_known_message_match_hand_encoding():
    """Pin the wire format: header, strings, a Point[] and a float32[] laid out as rclpy serialises them."""
    ts, kit = get_typestore(), rosbags_kit()
    msg = numpy_to_skeleton_array(
        kit, 2.5, {"7": (np.array([[1.0, 2.0, 3.0]]), np.array([0.5]))}, "ntu25", "c"
    )
    raw = bytes(ts.serialize_cdr(msg, SKELETON_ARRAY_TYPE))

    def s(text: str) -> bytes:
        b = text.encode() + b"\0"
        return len(b).to_bytes(4, "little") + b

    def pad(buf: bytes, align: int) -> bytes:  # CDR alignment counted after the 4-byte encapsulation header
        return buf + b"\0" * (-(len(buf) - 4) % align)

    header = (2).to_bytes(4, "little") + (500_000_000).to_bytes(4, "little") + s("c")
    body = b"\x00\x01\x00\x00" + header
    body = pad(body, 4) + (1).to_bytes(4, "little") + header
    body = pad(body, 4) + s("7")
    body = pad(body, 4) + s("ntu25")
    body = pad(body, 4) + (1).to_bytes(4, "little")
    body = pad(body, 8) + np.array([1.0, 2.0, 3.0], "<f8").tobytes()
    body = body + (1).to_bytes(4, "little") + np.array([0.5], "<f4").tobytes()
    assert raw == body


def test_actions_round_trip_through_cdr():
    ts, kit = get_typestore(), rosbags_kit()
    rec = SimpleNamespace(
        person_id="2",
        label="wave",
        class_index=4,
        score=0.8125,
        topk_labels=["wave", "stop", "reach"],
        topk_scores=[0.8125, 0.125, 0.0625],
        window_start=10.0,
        window_end=11.5,
        stamp=11.5,
        latency_ms=12.25,
    )
    msg = actions_to_array_msg(kit, [rec], 11.5, "cam")
    back = ts.deserialize_cdr(bytes(ts.serialize_cdr(msg, ACTION_ARRAY_TYPE)), ACTION_ARRAY_TYPE)
    stamp, actions = array_msg_to_actions(back)
    assert stamp == 11.5 and len(actions) == 1
    a = actions[0]
    assert (a.person_id, a.label, a.class_index, a.score, a.latency_ms) == ("2", "wave", 4, 0.8125, 12.25)
    assert a.topk_labels == ("wave", "stop", "reach") and a.topk_scores == (0.8125, 0.125, 0.0625)
    assert (a.window_start, a.window_end, a.stamp) == (10.0, 11.5, 11.5)


def test_stamps_convert_exactly_and_reject_nonfinite():
    kit = rosbags_kit()
    t = sec_to_stamp(kit, 1.999999999999)
    assert (t.sec, t.nanosec) == (2, 0)
    t = sec_to_stamp(kit, 12.000000001)
    assert (t.sec, t.nanosec) == (12, 1) and stamp_to_sec(t) == pytest.approx(12.000000001, abs=1e-12)
    with pytest.raises(ValueError, match="finite"):
        sec_to_stamp(kit, float("nan"))


def test_pointcloud_round_trip_and_layout_inference():
    ts, kit = get_typestore(), rosbags_kit()
    joints = _nwucla("a01_s01_e00_v01")
    persons = {"4": (joints[0], np.linspace(0, 1, 20, dtype=np.float32)), "9": (joints[1], None)}
    msg = numpy_to_pointcloud(kit, 3.25, persons, "cam")
    back = ts.deserialize_cdr(
        bytes(ts.serialize_cdr(msg, "sensor_msgs/msg/PointCloud2")), "sensor_msgs/msg/PointCloud2"
    )
    stamp, got, layout = pointcloud_to_numpy(back)
    assert stamp == 3.25 and layout == "kinect_v1_20" and list(got) == ["4", "9"]
    np.testing.assert_array_equal(got["4"][0], joints[0])
    np.testing.assert_array_equal(got["4"][1], persons["4"][1])
    np.testing.assert_array_equal(got["9"][1], np.ones(20, np.float32))
    # only x, y, z: consecutive skeletons numbered from 0; an ambiguous count needs the layout
    bare = numpy_to_pointcloud(kit, 1.0, persons, with_confidence=False, with_person_id=False)
    _, got, _ = pointcloud_to_numpy(bare, "kinect_v1_20")
    assert list(got) == ["0", "1"]
    np.testing.assert_array_equal(got["1"][0], joints[1])
    with pytest.raises(ValueError, match="cannot infer the joint layout"):
        pointcloud_to_numpy(bare)
    with pytest.raises(ValueError, match="25 joints"):
        pointcloud_to_numpy(msg, "ntu25")


def test_pointcloud_with_foreign_field_order_padding_and_big_endian():
    """A tracker's cloud: person_id first as float32, extra field, padded points and rows, big-endian."""
    kit = rosbags_kit()
    v = 25
    rng = np.random.default_rng(1)
    xyz = rng.normal(size=(2 * v, 3)).astype(np.float32)
    dtype = np.dtype(
        {
            "names": ["person_id", "intensity", "z", "y", "x"],
            "formats": [">f4"] * 5,
            "offsets": [0, 4, 8, 12, 16],
            "itemsize": 24,
        }
    )
    pts = np.zeros(2 * v, dtype)
    pts["person_id"] = np.repeat([7.0, 2.0], v)
    pts["x"], pts["y"], pts["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    rows = pts.reshape(2, v).view(np.uint8).reshape(2, -1)
    data = np.concatenate([rows, np.zeros((2, 8), np.uint8)], axis=1).tobytes()  # 8 bytes row padding
    fields = [
        kit.PointField(name=n, offset=o, datatype=7, count=1) for n, o in zip(dtype.names, [0, 4, 8, 12, 16])
    ]
    msg = kit.PointCloud2(
        header=kit.Header(stamp=kit.Time(sec=1, nanosec=0), frame_id="c"),
        height=2,
        width=v,
        fields=fields,
        is_bigendian=True,
        point_step=24,
        row_step=24 * v + 8,
        data=kit.byte_array(data),
        is_dense=True,
    )
    _, got, layout = pointcloud_to_numpy(msg)
    assert layout == "ntu25" and list(got) == ["7", "2"]
    np.testing.assert_array_equal(got["2"][0], xyz[v:])
    msg.data = msg.data[:-30]
    with pytest.raises(ValueError, match="too short"):
        pointcloud_to_numpy(msg)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
@pytest.mark.parametrize("as_pointcloud", [False, True])
def test_bag_round_trip_on_nwucla_clips(tmp_path, storage, as_pointcloud):
    clips = [_nwucla("a01_s01_e00_v01"), _nwucla("a12_s01_e00_v01")]
    fps = 30.0
    frames, labels, t = [], [], 100.0
    for k, clip in enumerate(clips):
        labels.append((t, get_typestore().types["std_msgs/msg/String"](data=f"clip{k}")))
        for joints in clip:
            frames.append((t, {"1": (joints, None)}))
            t += 1 / fps
    bag = bag_io.write_skeleton_bag(
        tmp_path / "in",
        frames,
        "kinect_v1_20",
        storage=storage,
        as_pointcloud=as_pointcloud,
        extra_topics={"/labels": ("std_msgs/msg/String", labels)},
    )
    assert bag_io.find_skeleton_topic(bag) == "/masksem/skeletons"
    read = list(bag_io.iter_skeleton_frames(bag))
    assert len(read) == sum(len(c) for c in clips)
    assert all(f.layout == "kinect_v1_20" for f in read)
    np.testing.assert_array_equal(np.stack([f.persons["1"][0] for f in read]), np.concatenate(clips))
    np.testing.assert_allclose([f.stamp for f in read], [s for s, _ in frames], atol=1e-6)
    got_labels = [(round(t, 6), m.data) for _, t, m in bag_io.iter_messages(bag, ["/labels"])]
    assert got_labels == [(round(s, 6), m.data) for s, m in labels]

    rec = SimpleNamespace(
        person_id="1",
        label="carry",
        class_index=9,
        score=0.9,
        topk_labels=["carry"],
        topk_scores=[0.9],
        window_start=read[0].stamp,
        window_end=read[-1].stamp,
        stamp=read[-1].stamp,
        latency_ms=3.0,
    )
    out = bag_io.write_action_bag(tmp_path / "out", [(read[-1].stamp, [rec])], storage=storage, copy_from=bag)
    assert bag_io.bag_topics(out) == {
        "/masksem/skeletons": "sensor_msgs/msg/PointCloud2" if as_pointcloud else SKELETON_ARRAY_TYPE,
        "/labels": "std_msgs/msg/String",
        "/masksem/actions": ACTION_ARRAY_TYPE,
    }
    assert len(list(bag_io.iter_skeleton_frames(out))) == len(read)
    [(stamp, [action])] = list(bag_io.iter_action_frames(out))
    assert action.label == "carry" and action.window_start == pytest.approx(read[0].stamp, abs=1e-6)
    with pytest.raises(FileExistsError):
        bag_io.write_action_bag(out, [])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left behind


def test_truncated_bag_reports_how_much_was_read(tmp_path):
    clip = _nwucla("a04_s01_e00_v01")
    bag = bag_io.write_skeleton_bag(
        tmp_path / "b",
        [(i / 30, {"1": (j, None)}) for i, j in enumerate(clip)],
        "kinect_v1_20",
        storage="sqlite3",
    )
    with pytest.raises(FileNotFoundError):
        list(bag_io.iter_skeleton_frames(tmp_path / "nope"))
    db = next(bag.glob("*.db3"))
    broken = tmp_path / "broken"
    shutil.copytree(bag, broken)
    (broken / db.name).write_bytes(db.read_bytes()[:2048])
    with pytest.raises(bag_io.BagReadError, match="broken") as err:
        list(bag_io.iter_skeleton_frames(broken))
    assert err.value.messages_read < len(clip)
