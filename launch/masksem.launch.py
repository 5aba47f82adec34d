"""Camera -> pose -> recogniser -> collaboration.

    ros2 launch masksem_ros masksem.launch.py bundle:=/path/to/bundle image_topic:=/camera/color/image_raw

Each node reads its parameter file from config/ first; the launch arguments below override it.
"""

from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

ARGUMENTS = {
    "bundle": (None, "model bundle directory or archive (required)"),
    "device": ("cpu", "torch device of the recogniser: cpu, cuda, cuda:0"),
    "backend": ("torch", "recogniser backend: torch, or onnxruntime (CPU robots)"),
    "precision": ("fp32", "recogniser precision: fp32, bf16, fp16 (torch); fp32, int8 (onnxruntime)"),
    "image_topic": ("/camera/image_raw", "sensor_msgs/Image input of the pose node (rgb8, bgr8, mono8)"),
    "camera_info_topic": (
        "/camera/camera_info",
        "CameraInfo for the intrinsics ('' = 60 degree field of view)",
    ),
    "skeleton_topic": ("/masksem/skeletons", "Skeleton3DArray from the pose node to the recogniser"),
    "action_topic": ("/masksem/actions", "RecognizedActionArray from the recogniser"),
    "speed_topic": ("/masksem/speed_scaling", "std_msgs/Float32 speed scaling for the robot"),
    "command_topic": ("/masksem/command", "std_msgs/String command for the robot"),
    "table": ("", "collaboration table YAML ('' = the package's config/collaboration_table.yaml)"),
    "use_pose": ("true", "start the MediaPipe pose node (false: skeletons come from elsewhere)"),
    "use_collaboration": ("true", "start the collaboration node"),
    "use_sim_time": ("false", "follow /clock"),
}


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("masksem_ros")
    arg = LaunchConfiguration
    sim = {"use_sim_time": arg("use_sim_time")}

    def params(name: str, overrides: dict) -> list:
        return [PathJoinSubstitution([share, "config", f"{name}.yaml"]), {**overrides, **sim}]

    declared = [
        DeclareLaunchArgument(
            name, description=doc, **({} if default is None else {"default_value": default})
        )
        for name, (default, doc) in ARGUMENTS.items()
    ]
    pose = Node(
        package="masksem_ros", executable="pose_node", name="masksem_pose", output="screen",
        condition=IfCondition(arg("use_pose")),
        parameters=params("pose", {"image_topic": arg("image_topic"),
                                   "camera_info_topic": arg("camera_info_topic"),
                                   "output_topic": arg("skeleton_topic")}),
    )  # fmt: skip
    recognizer = Node(
        package="masksem_ros", executable="recognizer_node", name="masksem_recognizer", output="screen",
        parameters=params("recognizer", {"bundle": arg("bundle"), "device": arg("device"),
                                         "backend": arg("backend"), "precision": arg("precision"),
                                         "input_topic": arg("skeleton_topic"),
                                         "output_topic": arg("action_topic")}),
    )  # fmt: skip
    collaboration = Node(
        package="masksem_ros", executable="collaboration_node", name="masksem_collaboration", output="screen",
        condition=IfCondition(arg("use_collaboration")),
        parameters=params("collaboration", {"table": arg("table"), "actions_topic": arg("action_topic"),
                                            "speed_topic": arg("speed_topic"),
                                            "command_topic": arg("command_topic")}),
    )  # fmt: skip
    return LaunchDescription([*declared, pose, recognizer, collaboration])
