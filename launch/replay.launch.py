"""Replay a bag of skeletons into the recogniser (and optionally record what it publishes).

    ros2 launch masksem_ros replay.launch.py bag:=/data/session1 bundle:=/path/to/bundle record:=/tmp/actions

The bag plays with --clock and the nodes use sim time, so stamps, windows and staleness follow bag time.
Everything shuts down when playback ends. `ros2 bag` (rosbag2, with its mcap storage plugin for bags
written by `masksem`) must be installed; without it this launch says so and stops, and `masksem replay`
does the same offline without ROS.
"""

import importlib.util

from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    ExecuteProcess,
    LogInfo,
    RegisterEventHandler,
)
from launch.conditions import IfCondition
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

ARGUMENTS = {
    "bag": (None, "rosbag2 directory with Skeleton3DArray or PointCloud2 skeletons (required)"),
    "bundle": (None, "model bundle directory or archive (required)"),
    "device": ("cpu", "torch device of the recogniser"),
    "rate": ("1.0", "playback rate"),
    "skeleton_topic": ("/masksem/skeletons", "skeleton topic in the bag"),
    "input_type": ("skeletons", "skeletons or pointcloud"),
    "input_layout": ("none", "joint layout of PointCloud2 input (none = infer)"),
    "action_topic": ("/masksem/actions", "RecognizedActionArray output"),
    "record": ("none", "output bag directory for actions and diagnostics (none = do not record)"),
    "use_collaboration": ("false", "also run the collaboration node"),
}
NO_ROSBAG = (
    "replay.launch.py needs `ros2 bag` (rosbag2), which is not installed: install ros-$ROS_DISTRO-rosbag2 "
    "and ros-$ROS_DISTRO-rosbag2-storage-mcap (rosdep install --from-paths src), or replay offline "
    "without ROS: masksem replay BAG --bundle BUNDLE"
)


def rosbag2_available() -> bool:
    """`ros2 bag` is the ros2bag verb package (a Python package of rosbag2)."""
    return importlib.util.find_spec("ros2bag") is not None


def generate_launch_description() -> LaunchDescription:
    declared = [
        DeclareLaunchArgument(
            name, description=doc, **({} if default is None else {"default_value": default})
        )
        for name, (default, doc) in ARGUMENTS.items()
    ]
    if not rosbag2_available():
        return LaunchDescription(
            [*declared, LogInfo(msg=f"ERROR: {NO_ROSBAG}"), EmitEvent(event=Shutdown(reason=NO_ROSBAG))]
        )
    share = FindPackageShare("masksem_ros")
    arg = LaunchConfiguration
    play = ExecuteProcess(
        cmd=["ros2", "bag", "play", arg("bag"), "--clock", "--rate", arg("rate")], output="screen"
    )
    recognizer = Node(
        package="masksem_ros", executable="recognizer_node", name="masksem_recognizer", output="screen",
        parameters=[
            PathJoinSubstitution([share, "config", "recognizer.yaml"]),
            {"bundle": arg("bundle"), "device": arg("device"), "input_topic": arg("skeleton_topic"),
             "input_type": arg("input_type"), "input_layout": arg("input_layout"),
             "output_topic": arg("action_topic"), "use_sim_time": True},
        ],
    )  # fmt: skip
    collaboration = Node(
        package="masksem_ros", executable="collaboration_node", name="masksem_collaboration", output="screen",
        condition=IfCondition(arg("use_collaboration")),
        parameters=[PathJoinSubstitution([share, "config", "collaboration.yaml"]),
                    {"actions_topic": arg("action_topic"), "use_sim_time": True}],
    )  # fmt: skip
    record = ExecuteProcess(
        cmd=["ros2", "bag", "record", "-o", arg("record"), arg("action_topic"), "/diagnostics"],
        output="screen",
        condition=IfCondition(
            PythonExpression(["'", arg("record"), "'.strip().lower() not in ('', 'none')"])
        ),
    )
    stop_when_played = RegisterEventHandler(
        OnProcessExit(target_action=play, on_exit=[EmitEvent(event=Shutdown())])
    )
    return LaunchDescription([*declared, recognizer, collaboration, record, play, stop_when_played])
