"""Node tests with real rclpy: start the nodes in-process, publish real messages, assert on outputs and
diagnostics. They bring their own data (a tiny bundle and synthetic skeletons, test/ros_fixtures.py), so
they run in any colcon workspace:

    colcon build --packages-select masksem_ros && colcon test --packages-select masksem_ros

Without rclpy (pip installs) the module is skipped with that reason, except under `colcon test`
(MASKSEM_REQUIRE_ROS=1 from CMakeLists.txt), where a missing piece is an error, not a skip.
"""

from __future__ import annotations

import array
import math
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import load_script
from ros_fixtures import LABELS, LAYOUT, bad_frame, isolate_dds, synthetic_clip, tiny_bundle, write_table
from ros_fixtures import require as _require

isolate_dds(41)
rclpy = _require("rclpy", "rclpy not importable: node tests need a ROS 2 installation")
_require("masksem_ros.msg", "generated masksem_ros.msg not found: colcon build and source install/setup.bash")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from masksem_ros.msg import RecognizedAction, RecognizedActionArray, Skeleton3DArray  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Float32, String  # noqa: E402

from masksem_core.rosmsg.messages import (  # noqa: E402
    numpy_to_skeleton_array,
    sec_to_stamp,
    stamp_to_sec,
)
from masksem_ros.ros_kit import rclpy_kit, reliable_qos, sensor_qos  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OK_LEVEL, WARN_LEVEL, ERROR_LEVEL = b"\x00", b"\x01", b"\x02"


@pytest.fixture(scope="module", autouse=True)
def ros():
    rclpy.init()
    yield
    rclpy.try_shutdown()


@pytest.fixture
def probe():
    node = rclpy.create_node(f"masksem_test_probe_{time.monotonic_ns()}")
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    yield node, ex
    ex.shutdown()
    node.destroy_node()


def spin_until(ex, cond, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ex.spin_once(timeout_sec=0.02)
        if cond():
            return True
    return cond()


def spin_for(ex, seconds: float) -> None:
    spin_until(ex, lambda: False, seconds)


def now_s(node) -> float:
    return node.get_clock().now().nanoseconds * 1e-9


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    _require("torch", "torch (pip) is needed to run a model bundle")
    return tiny_bundle(tmp_path_factory.mktemp("bundle") / "tiny")


def collect(node, msg_type, topic: str, qos) -> list:
    got: list = []
    node.create_subscription(msg_type, topic, got.append, qos)
    return got


def diag_values(arr: DiagnosticArray, name_prefix: str):
    for st in arr.status:
        if st.name.startswith(name_prefix):
            return st, {kv.key: kv.value for kv in st.values}
    return None, {}


def recognizer(topic: str, **params):
    from masksem_ros.recognizer_node import RecognizerNode

    base = {"input_topic": f"{topic}/in", "output_topic": f"{topic}/out", "diagnostics_period_s": 0.2,
            "stride_frames": 8, "score_threshold": 0.0, "smoothing": "none"}  # fmt: skip
    base.update(params)
    return RecognizerNode(parameter_overrides=[Parameter(k, value=v) for k, v in base.items()])


def publish_frames(ex, pub, node, frames, t0: float, persons=("7",), layout: str = LAYOUT) -> list[float]:
    """Publish one Skeleton3DArray per frame (30 fps stamps), each waited for by the node under test."""
    kit, stamps = rclpy_kit(), []
    for k, joints in enumerate(frames):
        stamp = t0 + k / 30
        people = {pid: (joints, np.ones(len(joints), np.float32)) for pid in persons}
        before = node.pipeline.input.count
        pub.publish(numpy_to_skeleton_array(kit, stamp, people, layout, "camera_optical"))
        assert spin_until(ex, lambda b=before: node.pipeline.input.count > b, 5.0), f"frame {k} not received"
        stamps.append(stamp)
    return stamps


def test_recognizer_node_skeleton_arrays_to_actions_and_diagnostics(probe, bundle):
    node_p, ex = probe
    topic = "/t_rec_sk"
    node = recognizer(topic, bundle=str(bundle))
    ex.add_node(node)
    try:
        pub = node_p.create_publisher(Skeleton3DArray, f"{topic}/in", sensor_qos())
        actions = collect(node_p, RecognizedActionArray, f"{topic}/out", reliable_qos())
        diags = collect(node_p, DiagnosticArray, "/diagnostics", reliable_qos())
        assert spin_until(
            ex, lambda: pub.get_subscription_count() > 0 and node.count_publishers(f"{topic}/out")
        )
        clip = synthetic_clip(40)
        stamps = publish_frames(ex, pub, node, clip, now_s(node_p))
        assert spin_until(ex, lambda: sum(len(a.actions) for a in actions) >= 3)
        first = next(a for a in actions if a.actions)
        act: RecognizedAction = first.actions[0]
        assert act.person_id == "7" and act.label in LABELS and act.class_index == LABELS.index(act.label)
        assert list(act.topk_labels)[0] == act.label and len(act.topk_scores) == len(LABELS)
        assert 0.0 <= act.score <= 1.0 and math.isclose(sum(act.topk_scores), 1.0, abs_tol=1e-4)
        # stamped with the newest input used: the 16th frame completes the first 16-frame window
        assert first.header.stamp == sec_to_stamp(rclpy_kit(), stamps[15]) == act.header.stamp
        assert stamp_to_sec(act.window_end) - stamp_to_sec(act.window_start) == pytest.approx(0.5, abs=1e-3)
        assert first.header.frame_id == "camera_optical"
        assert len(actions) >= len(clip) - 1  # heartbeat: empty arrays for frames without a due window
        assert {a.status for a in actions} == {RecognizedActionArray.STATUS_OK}
        assert {a.status_message for a in actions} == {""}

        def healthy() -> bool:
            st, values = diag_values(diags[-1], "masksem_recognizer") if diags else (None, {})
            return st is not None and st.level == OK_LEVEL and int(values["received_frames"]) == len(clip)

        assert spin_until(ex, healthy, 5.0)
        st, values = diag_values(diags[-1], "masksem_recognizer")
        assert st.hardware_id == "cpu" and values["device"] == "cpu" and values["dropped_frames"] == "0"
        assert float(values["inference_latency_p50_ms"]) > 0 and float(values["input_rate_hz"]) > 0
        assert values["inference_latency_p99_ms"] != "nan" and values["window_drop_rate"] == "0.000"
    finally:
        ex.remove_node(node)
        node.destroy_node()


def test_recognizer_node_pointcloud_input(probe, bundle):
    point_cloud2 = _require("sensor_msgs_py.point_cloud2", "sensor_msgs_py not installed")
    from sensor_msgs.msg import PointCloud2, PointField
    from std_msgs.msg import Header

    from masksem_core.rosmsg.pointcloud import pointcloud_to_numpy

    node_p, ex = probe
    topic = "/t_rec_pc"
    node = recognizer(topic, bundle=str(bundle), input_type="pointcloud")
    ex.add_node(node)
    try:
        pub = node_p.create_publisher(PointCloud2, f"{topic}/in", sensor_qos())
        actions = collect(node_p, RecognizedActionArray, f"{topic}/out", reliable_qos())
        assert spin_until(ex, lambda: pub.get_subscription_count() > 0)
        fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
                  for i, n in enumerate(("x", "y", "z", "confidence"))]  # fmt: skip
        fields.append(PointField(name="person_id", offset=16, datatype=PointField.UINT32, count=1))
        clip = synthetic_clip(20, seed=1)
        t0 = now_s(node_p)
        for k, joints in enumerate(clip):
            header = Header(stamp=sec_to_stamp(rclpy_kit(), t0 + k / 30), frame_id="cam")
            points = [(float(x), float(y), float(z), 1.0, 3) for x, y, z in joints]
            cloud = point_cloud2.create_cloud(header, fields, points)
            if k == 0:  # our numpy reader agrees with sensor_msgs_py's on the rclpy message
                _, persons, layout = pointcloud_to_numpy(cloud)
                ref = np.array(
                    [tuple(p)[:3] for p in point_cloud2.read_points(cloud, field_names=("x", "y", "z"))]
                )
                assert layout == "kinect_v1_20" and list(persons) == ["3"]
                np.testing.assert_allclose(persons["3"][0], ref, rtol=0, atol=0)
            pub.publish(cloud)
            assert spin_until(ex, lambda k=k: node.pipeline.input.count > k, 5.0)
        assert spin_until(ex, lambda: any(a.actions for a in actions))
        act = next(a for a in actions if a.actions).actions[0]
        assert act.person_id == "3" and act.label in LABELS
    finally:
        ex.remove_node(node)
        node.destroy_node()


def test_recognizer_node_with_missing_bundle_reports_error_and_stays_up(probe, tmp_path):
    node_p, ex = probe
    topic = "/t_rec_bad"
    missing = str(tmp_path / "no_bundle_here")
    node = recognizer(topic, bundle=missing, diagnostics_period_s=0.1)
    ex.add_node(node)
    try:
        pub = node_p.create_publisher(Skeleton3DArray, f"{topic}/in", sensor_qos())
        actions = collect(node_p, RecognizedActionArray, f"{topic}/out", reliable_qos())
        diags = collect(node_p, DiagnosticArray, "/diagnostics", reliable_qos())

        def error_seen() -> bool:
            return any(
                st.level == ERROR_LEVEL and missing in st.message
                for d in diags for st in d.status if st.name.startswith("masksem_recognizer")
            )  # fmt: skip

        assert spin_until(ex, error_seen, 5.0)
        # it says so on its output too, even before any input arrives
        assert spin_until(ex, lambda: len(actions) > 0, 5.0)
        first = actions[0]
        assert first.status == RecognizedActionArray.STATUS_ERROR and missing in first.status_message
        assert spin_until(ex, lambda: pub.get_subscription_count() > 0)
        n = len(actions)
        publish_frames(ex, pub, node, synthetic_clip(5), now_s(node_p))
        assert spin_until(ex, lambda: len(actions) >= n + 5, 5.0)  # still alive: an update per frame
        assert all(a.actions == [] and a.status == RecognizedActionArray.STATUS_ERROR for a in actions)
        assert node.pipeline.rejected_frames == 5
    finally:
        ex.remove_node(node)
        node.destroy_node()


@pytest.mark.parametrize("kind", ["nan", "wrong_joint_count", "unknown_layout"])
def test_recognizer_node_malformed_only_input_is_invalid_and_warns(probe, bundle, kind):
    """Every skeleton malformed: each update says STATUS_INVALID_INPUT (with the reason), no actions;
    diagnostics WARN with the reasons (it used to read STALE "no skeleton input")."""
    node_p, ex = probe
    topic = f"/t_rec_{kind}"
    node = recognizer(topic, bundle=str(bundle))
    ex.add_node(node)
    try:
        pub = node_p.create_publisher(Skeleton3DArray, f"{topic}/in", sensor_qos())
        actions = collect(node_p, RecognizedActionArray, f"{topic}/out", reliable_qos())
        diags = collect(node_p, DiagnosticArray, "/diagnostics", reliable_qos())
        assert spin_until(ex, lambda: pub.get_subscription_count() > 0)
        joints, layout = bad_frame(kind)
        publish_frames(ex, pub, node, [joints] * 40, now_s(node_p), layout=layout)
        assert spin_until(ex, lambda: len(actions) >= 40, 5.0)
        reason = {"nan": "non_finite", "wrong_joint_count": "bad_shape", "unknown_layout": "bad_layout"}[kind]
        assert {a.status for a in actions} == {RecognizedActionArray.STATUS_INVALID_INPUT}
        assert all(a.actions == [] for a in actions)
        assert actions[-1].status_message == f"no usable skeleton in the frame ({reason} 1)"

        def warned() -> bool:
            st, values = diag_values(diags[-1], "masksem_recognizer") if diags else (None, {})
            return st is not None and values.get("window_dropped_frames") == "40"

        assert spin_until(ex, warned, 5.0)
        st, values = diag_values(diags[-1], "masksem_recognizer")
        assert st.level == WARN_LEVEL
        assert st.message == f"no valid skeleton input: all 40 frames in the last 5 s dropped ({reason} 40)"
    finally:
        ex.remove_node(node)
        node.destroy_node()


def test_recognizer_node_parameters_change_at_runtime_or_are_refused(probe, bundle):
    node_p, ex = probe
    topic = "/t_rec_param"
    # stamps continue across the batches below; a long track timeout keeps the person's track however
    # slowly a busy machine runs the test (expiry follows the wall clock between batches)
    node = recognizer(topic, bundle=str(bundle), score_threshold=0.99, track_timeout_s=60.0)
    ex.add_node(node)
    try:
        pub = node_p.create_publisher(Skeleton3DArray, f"{topic}/in", sensor_qos())
        actions = collect(node_p, RecognizedActionArray, f"{topic}/out", reliable_qos())
        assert spin_until(ex, lambda: pub.get_subscription_count() > 0)
        t0 = now_s(node_p)
        publish_frames(ex, pub, node, synthetic_clip(40), t0)
        spin_for(ex, 0.2)
        assert len(actions) >= 40 and not any(a.actions for a in actions)  # untrained: nothing at 0.99
        [ok] = node.set_parameters([Parameter("score_threshold", value=0.0)])
        assert ok.successful
        n = len(actions)
        publish_frames(ex, pub, node, synthetic_clip(40)[:16], t0 + 40 / 30)
        assert spin_until(ex, lambda: sum(len(a.actions) for a in actions[n:]) >= 2, 5.0)
        # stride 8 -> 4 at runtime: twice as many windows
        windows = node.pipeline.recognizer.stats["windows"]
        assert node.set_parameters([Parameter("stride_frames", value=4)])[0].successful
        publish_frames(ex, pub, node, synthetic_clip(16), t0 + 56 / 30)
        assert node.pipeline.recognizer.stats["windows"] - windows == 4
        refused = {
            "stride_frames": (0, "stride_frames must be >= 1, got 0"),
            "smoothing": ("median", "smoothing must be none, ema or majority, got 'median'"),
            "score_threshold": ("high", "parameter score_threshold='high' is not a valid float"),
            "bundle": ("/elsewhere", "read-only"),
            "device": ("cuda", "read-only"),
        }
        for name, (value, reason) in refused.items():
            [res] = node.set_parameters([Parameter(name, value=value)])
            assert not res.successful and reason in res.reason, (name, res.reason)
        s = node.pipeline.recognizer.settings
        assert (s.stride_frames, s.score_threshold, s.smoothing) == (4, 0.0, "none")
    finally:
        ex.remove_node(node)
        node.destroy_node()


def test_recognizer_node_takes_window_settings_from_the_bundle_unless_given(tmp_path):
    from masksem_ros.recognizer_node import RecognizerNode

    chosen = {"stride_frames": 6, "score_threshold": 0.3, "smoothing": "majority"}
    bundle = tiny_bundle(tmp_path / "with_settings", extra={"recognizer": chosen})
    node = RecognizerNode(parameter_overrides=[Parameter("bundle", value=str(bundle)),
                                               Parameter("smoothing", value="none")])  # fmt: skip
    try:
        shown = {k: node.get_parameter(k).value for k in ("stride_frames", "score_threshold", "smoothing")}
        assert shown == {"stride_frames": 6, "score_threshold": 0.3, "smoothing": "none"}  # `ros2 param get`
        s = node.pipeline.recognizer.settings
        assert (s.stride_frames, s.score_threshold, s.smoothing, s.smoothing_alpha) == (6, 0.3, "none", 0.5)
    finally:
        node.destroy_node()


def collaboration_node(ex, table: Path, name: str):
    from masksem_ros.collaboration_node import CollaborationNode

    topics = {"actions_topic": f"/{name}/actions", "speed_topic": f"/{name}/speed",
              "command_topic": f"/{name}/command"}  # fmt: skip
    node = CollaborationNode(parameter_overrides=[Parameter("table", value=str(table)),
                                                  Parameter("rate_hz", value=20.0)]
                             + [Parameter(k, value=v) for k, v in topics.items()])  # fmt: skip
    ex.add_node(node)
    return node, topics


def test_collaboration_node_follows_the_table_and_goes_safe_when_stale(probe, tmp_path):
    node_p, ex = probe
    table = tmp_path / "table.yaml"
    table.write_text(
        "min_score: 0.6\nstale_after_s: 0.5\nenter_count: 2\nexit_count: 3\n"
        "safe: {speed_scale: 0.0, command: safe_stop}\ndefault: {speed_scale: 1.0, command: resume}\n"
        "rules:\n  wave: {speed_scale: 0.8, command: greet}\n"
        "  stop: {speed_scale: 0.0, command: pause, priority: 10, enter_count: 1}\n"
    )
    node, topics = collaboration_node(ex, table, "t_col")
    try:
        pub = node_p.create_publisher(RecognizedActionArray, topics["actions_topic"], reliable_qos())
        speeds = collect(node_p, Float32, topics["speed_topic"], reliable_qos())
        commands = collect(node_p, String, topics["command_topic"], reliable_qos(depth=1, latched=True))
        assert spin_until(
            ex, lambda: commands and commands[-1].data == "safe_stop", 5.0
        )  # latched initial state
        assert spin_until(ex, lambda: pub.get_subscription_count() > 0)
        kit = rclpy_kit()

        def send(*labels: str, status: int = RecognizedActionArray.STATUS_OK, message: str = "") -> None:
            msg = RecognizedActionArray(status=status, status_message=message)
            msg.header.stamp = sec_to_stamp(kit, now_s(node_p))
            msg.actions = [RecognizedAction(person_id="1", label=lb, score=0.9) for lb in labels]
            pub.publish(msg)
            spin_for(ex, 0.1)

        for _ in range(5):
            send()  # heartbeats: fresh, but nobody recognised -> still safe
        assert commands[-1].data == "safe_stop" and speeds[-1].data == 0.0
        for _ in range(3):
            send("no_action")  # a person seen doing nothing mapped
        assert commands[-1].data == "resume" and speeds[-1].data == pytest.approx(1.0)
        send("wave")
        assert commands[-1].data == "resume"  # hysteresis: one wave is not enough
        send()  # a heartbeat between two windows does not break the count
        send("wave")
        assert commands[-1].data == "greet" and speeds[-1].data == pytest.approx(0.8)
        send("wave", "stop")
        assert commands[-1].data == "pause" and speeds[-1].data == 0.0
        for _ in range(3):
            send("no_action")
        assert commands[-1].data == "resume"
        send("wave", status=RecognizedActionArray.STATUS_ERROR, message="cannot load model bundle")
        assert commands[-1].data == "safe_stop" and speeds[-1].data == 0.0  # at once
        assert node.sm.reason == "recogniser error: cannot load model bundle"
        for _ in range(3):
            send("no_action", status=RecognizedActionArray.STATUS_UNKNOWN)  # a publisher without status
        assert commands[-1].data == "safe_stop"
        for _ in range(3):
            send("no_action")
        assert commands[-1].data == "resume"
        n = len(speeds)
        spin_for(ex, 1.0)  # the recogniser "stops": safe within stale_after_s, speed keeps coming at rate_hz
        assert commands[-1].data == "safe_stop" and speeds[-1].data == 0.0
        assert len(speeds) - n >= 10
    finally:
        ex.remove_node(node)
        node.destroy_node()


def test_collaboration_node_reloads_its_table_or_refuses_a_bad_one(probe, tmp_path):
    node_p, ex = probe
    node, _ = collaboration_node(ex, write_table(tmp_path / "a.yaml"), "t_col_reload")
    try:
        other = tmp_path / "b.yaml"
        other.write_text(write_table(tmp_path / "c.yaml").read_text().replace("command: slow", "command: x"))
        [res] = node.set_parameters([Parameter("table", value=str(other))])
        assert res.successful and node.sm.table.rules["not_in_the_bundle"].command == "x"
        broken = tmp_path / "broken.yaml"
        broken.write_text("rules: {}\n")
        [res] = node.set_parameters([Parameter("table", value=str(broken))])
        assert not res.successful and str(broken) in res.reason and "missing field 'default'" in res.reason
        assert node.sm.table.rules["not_in_the_bundle"].command == "x"  # the running table stays
        [res] = node.set_parameters([Parameter("rate_hz", value=1.0)])
        assert not res.successful and "read-only" in res.reason
    finally:
        ex.remove_node(node)
        node.destroy_node()


def test_pose_node_on_a_real_photograph(probe):
    _require("mediapipe", "mediapipe==0.10.21 (pip) is needed by the pose node")
    skdata = _require("skimage.data", "scikit-image provides the test photograph")
    from visualization_msgs.msg import Marker, MarkerArray

    from masksem_ros.pose_node import PoseNode

    node_p, ex = probe
    params = {"image_topic": "/t_pose/image", "output_topic": "/t_pose/skeletons",
              "markers_topic": "/t_pose/markers", "camera_info_topic": "", "static_mode": True,
              "person_id": "5"}  # fmt: skip
    node = PoseNode(parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    ex.add_node(node)
    try:
        pub = node_p.create_publisher(Image, params["image_topic"], reliable_qos(depth=1))
        skeletons = collect(node_p, Skeleton3DArray, params["output_topic"], sensor_qos())
        markers = collect(node_p, MarkerArray, params["markers_topic"], reliable_qos(depth=1))
        assert spin_until(ex, lambda: pub.get_subscription_count() > 0)
        rgb = skdata.astronaut()
        pad = 16
        rows = np.concatenate([rgb[:, :, ::-1].reshape(512, -1), np.zeros((512, pad), np.uint8)], axis=1)
        img = Image(height=512, width=512, encoding="bgr8", is_bigendian=0, step=512 * 3 + pad,
                    data=array.array("B", rows.tobytes()))  # fmt: skip
        img.header.frame_id = "camera_optical"
        img.header.stamp = sec_to_stamp(rclpy_kit(), 1234.5)
        pub.publish(img)
        assert spin_until(ex, lambda: skeletons and markers, 30.0)
        msg = skeletons[0]
        assert msg.header.stamp == img.header.stamp and msg.header.frame_id == "camera_optical"
        assert len(msg.skeletons) == 1
        sk = msg.skeletons[0]
        assert (
            sk.person_id == "5"
            and sk.layout == "mediapipe33"
            and len(sk.joints) == 33
            and len(sk.confidence) == 33
        )
        nose, hip = sk.joints[0], sk.joints[23]
        assert nose.y < hip.y and 0.3 < nose.z < 5.0  # y down in the optical frame; in front of the camera
        kinds = [m.type for m in markers[0].markers]
        assert Marker.DELETEALL in [m.action for m in markers[0].markers]
        assert Marker.SPHERE_LIST in kinds and Marker.LINE_LIST in kinds
    finally:
        ex.remove_node(node)
        node.destroy_node()


@pytest.mark.parametrize("name", ["masksem.launch.py", "replay.launch.py"])
def test_launch_files_build_a_description(name):
    _require("launch_ros", "launch_ros not installed")
    from launch.actions import DeclareLaunchArgument

    from launch import LaunchDescription

    module = load_script(f"launch/{name}")
    desc = module.generate_launch_description()
    assert isinstance(desc, LaunchDescription)
    args = {e.name for e in desc.entities if isinstance(e, DeclareLaunchArgument)}
    assert {"bundle", "device"} <= args
    assert ("image_topic" in args) == (name == "masksem.launch.py")
    assert ("bag" in args) == (name == "replay.launch.py")


def test_rclpy_and_rosbags_serialise_identical_cdr():
    """The converters build the same message through both kits; rclpy's bytes equal rosbags' bytes."""
    from rclpy.serialization import deserialize_message, serialize_message

    from masksem_core.rosmsg.messages import (
        ACTION_ARRAY_TYPE,
        SKELETON_ARRAY_TYPE,
        actions_to_array_msg,
        get_typestore,
        rosbags_kit,
        skeleton_array_to_numpy,
    )

    ts = get_typestore()
    rng = np.random.default_rng(0)
    persons = {"1": (rng.normal(size=(25, 3)), rng.uniform(size=25)), "b7": (rng.normal(size=(25, 3)), None)}
    ros_msg = numpy_to_skeleton_array(rclpy_kit(), 17.25, persons, "ntu25", "cam")
    bag_msg = numpy_to_skeleton_array(rosbags_kit(), 17.25, persons, "ntu25", "cam")
    raw = serialize_message(ros_msg)
    assert raw == bytes(ts.serialize_cdr(bag_msg, SKELETON_ARRAY_TYPE))
    stamp, back, layout = skeleton_array_to_numpy(deserialize_message(raw, Skeleton3DArray))
    assert (stamp, layout, list(back)) == (17.25, "ntu25", ["1", "b7"])
    np.testing.assert_array_equal(back["1"][0], persons["1"][0].astype(np.float32))

    from types import SimpleNamespace

    rec = SimpleNamespace(
        person_id="1",
        label="wave",
        class_index=2,
        score=0.75,
        topk_labels=["wave", "walk"],
        topk_scores=[0.75, 0.25],
        window_start=1.0,
        window_end=2.0,
        stamp=2.0,
        latency_ms=4.5,
    )
    ros_arr = actions_to_array_msg(rclpy_kit(), [rec], 2.0, "cam")
    bag_arr = actions_to_array_msg(rosbags_kit(), [rec], 2.0, "cam")
    assert serialize_message(ros_arr) == bytes(ts.serialize_cdr(bag_arr, ACTION_ARRAY_TYPE))
