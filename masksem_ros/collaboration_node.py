"""ROS 2 collaboration node: recognised actions -> speed scaling (Float32) and robot command (String).

A thin rclpy adapter over `masksem_ros.collaboration`. The speed scaling is published at `rate_hz`
whatever happens, so the robot side can treat its absence as a fault; the command is published on every
change, latched (transient local) for late subscribers. The table's safe behaviour holds whenever the
recogniser reports an error (or no status), its input is invalid or stale, or its updates stop; the
default behaviour needs recognitions of real people. An unreadable table keeps the node up in a built-in
safe state (speed 0, "pause"); `ros2 param set /masksem_collaboration table PATH` reloads the table.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from masksem_core.rosmsg.messages import STATUS_NAMES, STATUS_UNKNOWN, msg_to_action, stamp_to_sec
from masksem_ros.collaboration import Behaviour, CollaborationStateMachine, CollaborationTable

try:
    from rclpy.node import Node
except ImportError:  # logic tests without ROS
    Node = object  # type: ignore[assignment,misc]

PARAMETERS: dict[str, Any] = {
    "table": "",  # YAML action->behaviour table ("" = the package's config/collaboration_table.yaml)
    "actions_topic": "/masksem/actions",
    "speed_topic": "/masksem/speed_scaling",
    "command_topic": "/masksem/command",
    "rate_hz": 10.0,
}
READ_ONLY = ("actions_topic", "speed_topic", "command_topic", "rate_hz")  # need a restart
FALLBACK_SAFE = Behaviour(name="safe", speed_scale=0.0, command="pause")


def default_table_path() -> str:
    """config/collaboration_table.yaml of the installed package (share/), else of the source tree."""
    try:
        from ament_index_python.packages import get_package_share_directory

        path = Path(get_package_share_directory("masksem_ros")) / "config" / "collaboration_table.yaml"
        if path.is_file():
            return str(path)
    except Exception:  # not in an ament environment
        pass
    return str(Path(__file__).resolve().parent.parent / "config" / "collaboration_table.yaml")


class CollaborationNode(Node):  # type: ignore[misc]
    def __init__(self, **node_kwargs: Any) -> None:
        super().__init__("masksem_collaboration", **node_kwargs)
        from std_msgs.msg import Float32, String

        from masksem_ros.msg import RecognizedActionArray
        from masksem_ros.ros_kit import declare_parameters, on_parameter_change, reliable_qos

        p = self.p = declare_parameters(self, PARAMETERS, READ_ONLY)
        try:
            table = self.load_table(p["table"])
        except ValueError as exc:
            self.get_logger().error(f"{exc}; staying in the safe behaviour (speed 0, pause)")
            table = CollaborationTable(rules={}, default=FALLBACK_SAFE, safe=FALLBACK_SAFE)
        self.sm = CollaborationStateMachine(table)
        self.Float32, self.String = Float32, String
        self.speed_pub = self.create_publisher(Float32, p["speed_topic"], reliable_qos())
        self.command_pub = self.create_publisher(
            String, p["command_topic"], reliable_qos(depth=1, latched=True)
        )
        self.sub = self.create_subscription(
            RecognizedActionArray, p["actions_topic"], self.on_actions, reliable_qos()
        )
        self.timer = self.create_timer(1.0 / max(float(p["rate_hz"]), 0.1), self.on_timer)
        self.published: Behaviour | None = None
        self.on_timer()
        on_parameter_change(self, PARAMETERS, self.apply_parameters)

    def load_table(self, path: str) -> CollaborationTable:
        path = os.path.expanduser(path or default_table_path())
        table = CollaborationTable.from_yaml(path)
        self.get_logger().info(f"collaboration table {path}: rules for {sorted(table.rules)}")
        return table

    def apply_parameters(self, changes: dict[str, Any]) -> None:
        """`ros2 param set ... table PATH` (also the same path again) reloads the table; a table that
        does not validate is refused and the running one stays. The robot restarts from safe."""
        if "table" in changes:
            table = self.load_table(changes["table"])
            self.sm = CollaborationStateMachine(table)
            self.p["table"] = changes["table"]
            self.publish(speed=True)

    def on_actions(self, msg: Any) -> None:
        from masksem_ros.ros_kit import now_s

        status = STATUS_NAMES.get(int(getattr(msg, "status", STATUS_UNKNOWN)), "unknown")
        try:
            actions = [msg_to_action(a) for a in msg.actions]
            stamp = stamp_to_sec(msg.header.stamp)
        except (ValueError, TypeError) as exc:
            self.get_logger().warning(f"ignored an action message: {exc}", throttle_duration_sec=5.0)
            status, actions, stamp = "invalid_input", [], float("nan")
        self.sm.on_actions(now_s(self), stamp, actions, status, str(getattr(msg, "status_message", "")))
        self.publish()

    def on_timer(self) -> None:
        from masksem_ros.ros_kit import now_s

        self.sm.tick(now_s(self))
        self.publish(speed=True)

    def publish(self, speed: bool = False) -> None:
        state = self.sm.state
        changed = state != self.published
        if changed:
            self.command_pub.publish(self.String(data=state.command))
            self.get_logger().info(
                f"behaviour {state.name}: speed {state.speed_scale:.2f}, "
                f"command {state.command!r} ({self.sm.reason})"
            )
            self.published = state
        if speed or changed:
            self.speed_pub.publish(self.Float32(data=float(state.speed_scale)))


def main(args: list[str] | None = None) -> int:
    from masksem_ros.ros_kit import spin

    return spin(CollaborationNode, args)


if __name__ == "__main__":
    sys.exit(main())
