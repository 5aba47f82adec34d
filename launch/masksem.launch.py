"""Camera -> pose -> recogniser -> collaboration.

    ros2 launch masksem_ros masksem.launch.py bundle:=/path/to/bundle image_topic:=/camera/color/image_raw

Each node reads its parameter file from config/ first; the launch arguments below override it. An
argument whose empty value means "unset" takes `none` (e.g. camera_info_topic:=none), since `name:=`
cannot be typed. The recogniser is respawned when it dies (respawn_recognizer:=false to turn off);
meanwhile the collaboration node holds the safe behaviour.
"""

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchContext, LaunchDescription

ARGUMENTS = {
    "bundle": (None, "model bundle directory or archive (required)"),
    "device": ("cpu", "torch device of the recogniser: cpu, cuda, cuda:0"),
    "backend": ("torch", "recogniser backend: torch, or onnxruntime (CPU robots)"),
    "precision": ("fp32", "recogniser precision: fp32, bf16, fp16 (torch); fp32, int8 (onnxruntime)"),
    "image_topic": ("/camera/image_raw", "sensor_msgs/Image input of the pose node (rgb8, bgr8, mono8)"),
    "camera_info_topic": (
        "/camera/camera_info",
        "CameraInfo for the intrinsics (none = a 60 degree horizontal field of view)",
    ),
    "skeleton_topic": ("/masksem/skeletons", "Skeleton3DArray from the pose node to the recogniser"),
    "action_topic": ("/masksem/actions", "RecognizedActionArray from the recogniser"),
    "speed_topic": ("/masksem/speed_scaling", "std_msgs/Float32 speed scaling for the robot"),
    "command_topic": ("/masksem/command", "std_msgs/String command for the robot"),
    "recognizer_params": ("none", "extra parameter file of the recogniser, over config/recognizer.yaml"),
    "table": ("none", "collaboration table YAML (none = the package's config/collaboration_table.yaml)"),
    "use_pose": ("true", "start the MediaPipe pose node (false: skeletons come from elsewhere)"),
    "use_collaboration": ("true", "start the collaboration node"),
    "respawn_recognizer": ("true", "restart the recogniser if its process dies"),
    "respawn_delay": ("2.0", "seconds before the recogniser is restarted"),
    "use_sim_time": ("false", "follow /clock"),
}


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("masksem_ros")
    arg = LaunchConfiguration
    sim = {"use_sim_time": arg("use_sim_time")}

    def params(name: str, overrides: dict, files: tuple = ()) -> list:
        """The package's config/<name>.yaml, then `files`, then the launch arguments (later wins)."""
        return [PathJoinSubstitution([share, "config", f"{name}.yaml"]), *files, {**overrides, **sim}]

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

    def recognizer(context: LaunchContext) -> list:
        """Built at launch time: respawn and respawn_delay are resolved from the arguments."""
        delay = float(arg("respawn_delay").perform(context))
        extra = arg("recognizer_params").perform(context)
        files = () if extra.strip().lower() in ("", "none") else (extra,)
        return [Node(
            package="masksem_ros", executable="recognizer_node", name="masksem_recognizer", output="screen",
            respawn=arg("respawn_recognizer"), respawn_delay=delay,
            parameters=params("recognizer", {"bundle": arg("bundle"), "device": arg("device"),
                                             "backend": arg("backend"), "precision": arg("precision"),
                                             "input_topic": arg("skeleton_topic"),
                                             "output_topic": arg("action_topic")}, files),
        )]  # fmt: skip

    collaboration = Node(
        package="masksem_ros", executable="collaboration_node", name="masksem_collaboration", output="screen",
        condition=IfCondition(arg("use_collaboration")),
        parameters=params("collaboration", {"table": arg("table"), "actions_topic": arg("action_topic"),
                                            "speed_topic": arg("speed_topic"),
                                            "command_topic": arg("command_topic")}),
    )  # fmt: skip
    return LaunchDescription([*declared, pose, OpaqueFunction(function=recognizer), collaboration])

