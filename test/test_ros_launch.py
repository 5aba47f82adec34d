"""Launch tests of masksem.launch.py with the real nodes (recogniser + collaboration; skeletons come from
the test): run by `colcon test` (add_launch_test in CMakeLists.txt) or `launch_test test/test_ros_launch.py`
against a built and sourced workspace. Each scenario starts the launch file afresh:

- healthy: skeletons in -> actions out -> command `resume`, speed 1.0; `score_threshold` set at runtime
  through the parameter service changes what is published.
- no_bundle (bundle:=/nonexistent/bundle), nan, wrong_joint_count, unknown_layout: the command never
  carries `resume` and the speed never leaves the safe value 0.0, while updates arrive saying why.
- killed: the recogniser is killed (SIGKILL) mid-run; the robot is safe within stale_after_s and stays
  so until the respawned recogniser recognises people again.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ros_fixtures import LABELS, bad_frame, isolate_dds, require, synthetic_clip, tiny_bundle, write_table

isolate_dds(45)
require("launch_testing", "launch_testing not installed: launch tests need ROS 2")
rclpy = require("rclpy", "rclpy not importable: launch tests need ROS 2")
require("masksem_ros.msg", "generated masksem_ros.msg not found: colcon build and source install/setup.bash")

import launch_testing  # noqa: E402
import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402
import psutil  # noqa: E402
import pytest  # noqa: E402
from ament_index_python.packages import get_package_share_directory  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from masksem_ros.msg import RecognizedActionArray, Skeleton3DArray  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from std_msgs.msg import Float32, String  # noqa: E402

from launch import LaunchDescription  # noqa: E402
from masksem_core.rosmsg.messages import numpy_to_skeleton_array  # noqa: E402
from masksem_ros.ros_kit import rclpy_kit, reliable_qos, sensor_qos  # noqa: E402

SCENARIOS = ["healthy", "no_bundle", "nan", "wrong_joint_count", "unknown_layout", "killed"]
STALE_AFTER_S = 0.5  # the test table's
RECOGNIZER_PARAMS = """masksem_recognizer:
  ros__parameters:
    score_threshold: 0.0
    stride_frames: 8
    smoothing: none
    num_threads: 1
    diagnostics_period_s: 0.25
    drop_window_s: 2.0
"""


@launch_testing.parametrize("scenario", SCENARIOS)
@pytest.mark.launch_test
def generate_test_description(scenario: str):
    tmp = Path(tempfile.mkdtemp(prefix=f"masksem_launch_{scenario}_"))
    bundle = "/nonexistent/bundle" if scenario == "no_bundle" else str(tiny_bundle(tmp / "bundle"))
    (tmp / "recognizer.yaml").write_text(RECOGNIZER_PARAMS)
    ns = f"/launch_test_{scenario}"
    topics = {"skeleton_topic": f"{ns}/skeletons", "action_topic": f"{ns}/actions",
              "speed_topic": f"{ns}/speed", "command_topic": f"{ns}/command"}  # fmt: skip
    launch_file = Path(get_package_share_directory("masksem_ros")) / "launch" / "masksem.launch.py"
    masksem = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(launch_file)),
        launch_arguments={
            "bundle": bundle,
            "use_pose": "false",
            "table": str(write_table(tmp / "table.yaml", STALE_AFTER_S)),
            "recognizer_params": str(tmp / "recognizer.yaml"),
            "respawn_delay": "1.0",
            **topics,
        }.items(),
    )
    return LaunchDescription([masksem, launch_testing.actions.ReadyToTest()]), {"topics": topics}


def recognizer_pids() -> set[int]:
    """The recogniser processes this test's launch started (children of this process), by id."""
    me = psutil.Process(os.getpid())
    return {
        p.pid
        for p in me.children(recursive=True)
        if any("recognizer_node" in part for part in (p.cmdline() if p.is_running() else []))
    }


class Robot:
    """The test's side of the robot: publishes skeletons, records everything the nodes publish."""

    def __init__(self, topics: dict[str, str]) -> None:
        self.node = rclpy.create_node(f"masksem_launch_probe_{time.monotonic_ns()}")
        self.pub = self.node.create_publisher(Skeleton3DArray, topics["skeleton_topic"], sensor_qos())
        self.updates: list = []
        self.speeds: list[float] = []
        self.arrivals: list[tuple[float, str, object]] = []  # (monotonic time, what, value), in order
        self.commands: list[str] = []
        self.diagnostics: list = []
        n, qos = self.node, reliable_qos()
        n.create_subscription(RecognizedActionArray, topics["action_topic"], self.on_update, qos)
        n.create_subscription(Float32, topics["speed_topic"], self.on_speed, qos)
        n.create_subscription(
            String, topics["command_topic"], lambda m: self.commands.append(m.data), reliable_qos(1, True)
        )
        n.create_subscription(DiagnosticArray, "/diagnostics", self.on_diagnostics, qos)
        self.param_client = n.create_client(SetParameters, "/masksem_recognizer/set_parameters")
        self.kit, self.frame = rclpy_kit(), 0

    def on_update(self, msg: RecognizedActionArray) -> None:
        self.updates.append(msg)
        self.arrivals.append((time.monotonic(), "actions", len(msg.actions)))

    def on_speed(self, msg: Float32) -> None:
        self.speeds.append(msg.data)
        self.arrivals.append((time.monotonic(), "speed", msg.data))

    def on_diagnostics(self, msg: DiagnosticArray) -> None:
        self.diagnostics += [s for s in msg.status if s.name.startswith("masksem_recognizer")]

    def spin_until(self, cond, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            rclpy.spin_once(self.node, timeout_sec=0.02)
            if cond():
                return True
        return cond()

    def publish_for(self, seconds: float, kind: str = "good", until=None) -> None:
        """Skeletons of one person at 30 fps for `seconds` (or until `until()`), spinning meanwhile."""
        end = time.monotonic() + seconds
        clip = synthetic_clip(300)
        while time.monotonic() < end and not (until and until()):
            if kind == "good":
                joints, layout = clip[self.frame % len(clip)], "kinect_v1_20"
            else:
                joints, layout = bad_frame(kind)
            stamp = self.node.get_clock().now().nanoseconds * 1e-9
            self.pub.publish(numpy_to_skeleton_array(self.kit, stamp, {"1": (joints, None)}, layout, "cam"))
            self.frame += 1
            self.spin_until(lambda: False, 1 / 30)

    def set_threshold(self, value: float) -> None:
        assert self.param_client.wait_for_service(timeout_sec=20.0), "no parameter service of the recogniser"
        msg = Parameter("score_threshold", value=value).to_parameter_msg()
        future = self.param_client.call_async(SetParameters.Request(parameters=[msg]))
        assert self.spin_until(future.done, 10.0)
        assert future.result().results[0].successful, future.result().results[0].reason

    def close(self) -> None:
        self.node.destroy_node()


class TestMasksemLaunch(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        rclpy.init()

    @classmethod
    def tearDownClass(cls) -> None:
        rclpy.try_shutdown()

    def setUp(self) -> None:
        self.robot: Robot | None = None

    def tearDown(self) -> None:
        if self.robot is not None:
            self.robot.close()

    def test_scenario(self, scenario: str, topics: dict) -> None:
        robot = self.robot = Robot(topics)
        # both nodes up: the collaboration node's latched command is the safe one
        assert robot.spin_until(lambda: robot.pub.get_subscription_count() > 0, 60.0), "recogniser not up"
        assert robot.spin_until(lambda: robot.commands, 30.0) and robot.commands[0] == "pause"
        getattr(self, f"check_{scenario}" if hasattr(self, f"check_{scenario}") else "check_invalid")(
            robot, scenario
        )

    def check_healthy(self, robot: Robot, _: str) -> None:
        robot.set_threshold(0.99)  # an untrained model is never that sure: updates come, actions do not
        robot.publish_for(2.0)
        ok = [u for u in robot.updates if u.status == RecognizedActionArray.STATUS_OK]
        assert len(ok) > 30 and not any(u.actions for u in robot.updates)
        assert set(robot.commands) == {"pause"} and set(robot.speeds) == {0.0}
        robot.set_threshold(0.0)  # now every window is published
        robot.publish_for(10.0, until=lambda: robot.commands[-1] == "resume" and robot.speeds[-1] == 1.0)
        actions = [a for u in robot.updates for a in u.actions]
        assert actions and {a.label for a in actions} <= set(LABELS)
        assert {a.person_id for a in actions} == {"1"}
        assert robot.commands[-1] == "resume" and robot.speeds[-1] == 1.0
        assert robot.spin_until(lambda: robot.diagnostics and robot.diagnostics[-1].level == b"\x00", 5.0)

    def check_no_bundle(self, robot: Robot, _: str) -> None:
        robot.publish_for(4.0)
        assert len(robot.updates) > 30 and len(robot.speeds) > 20
        assert {u.status for u in robot.updates} == {RecognizedActionArray.STATUS_ERROR}
        assert "/nonexistent/bundle" in robot.updates[-1].status_message
        assert not any(u.actions for u in robot.updates)
        assert "resume" not in robot.commands and set(robot.speeds) == {0.0}
        assert robot.diagnostics and {d.level for d in robot.diagnostics} == {b"\x02"}

    def check_invalid(self, robot: Robot, kind: str) -> None:
        robot.publish_for(4.0, kind=kind)
        assert len(robot.updates) > 30 and len(robot.speeds) > 20
        assert {u.status for u in robot.updates} == {RecognizedActionArray.STATUS_INVALID_INPUT}
        assert robot.updates[-1].status_message.startswith("no usable skeleton in the frame")
        assert "resume" not in robot.commands and set(robot.speeds) == {0.0}
        assert robot.diagnostics[-1].level == b"\x01"
        assert robot.diagnostics[-1].message.startswith("no valid skeleton input: all")

    def check_killed(self, robot: Robot, _: str) -> None:
        robot.publish_for(15.0, until=lambda: robot.commands[-1] == "resume")
        assert robot.commands[-1] == "resume" and robot.speeds[-1] == 1.0
        [pid] = recognizer_pids()
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        robot.publish_for(STALE_AFTER_S + 0.4)
        assert robot.commands[-1] == "pause" and robot.speeds[-1] == 0.0, "not safe after the kill"
        # respawned (a new process) and recognising again: resume, but never before new recognitions
        robot.publish_for(40.0, until=lambda: robot.commands[-1] == "resume")
        assert robot.commands[-1] == "resume", "the recogniser did not come back"
        new = recognizer_pids()
        assert new and pid not in new
        robot.spin_until(lambda: False, 0.3)
        after = [(t, what, v) for t, what, v in robot.arrivals if t > killed_at + STALE_AFTER_S + 0.2]
        first_recognition = next(t for t, what, v in after if what == "actions" and v > 0)
        moving = [t for t, what, v in after if what == "speed" and v > 0.0]
        stopped = [v for t, what, v in after if what == "speed" and t < first_recognition]
        assert moving and stopped and set(stopped) == {0.0}
        assert min(moving) > first_recognition, "speed left 0 before the new recogniser recognised anyone"
        print(
            f"killed recogniser {pid}: safe within {STALE_AFTER_S + 0.4:.1f} s; {len(stopped)} speed "
            f"messages, all 0.0, until the respawned recogniser {sorted(new)} recognised a person "
            f"{first_recognition - killed_at:.1f} s after the kill; speed > 0 again "
            f"{min(moving) - first_recognition:.2f} s after that"
        )


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_nodes_exit_cleanly(self, proc_info) -> None:
        """Clean exits on shutdown (SIGINT); only the recogniser killed on purpose reports SIGKILL."""
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0, -signal.SIGKILL])
