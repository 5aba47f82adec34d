"""rclpy-side helpers shared by the nodes: the rclpy message kit, QoS profiles, clock and diagnostics.

Imported only by the node modules (it needs a ROS 2 installation); all logic lives elsewhere.
"""

from __future__ import annotations

import array
from collections.abc import Callable
from typing import Any

from masksem_core.rosmsg.messages import MsgKit, float_array_rclpy
from masksem_ros.diagnostics import StatusReport


def rclpy_kit() -> MsgKit:
    """Kit building rclpy message objects (generated masksem_ros.msg + standard messages)."""
    from builtin_interfaces.msg import Time
    from geometry_msgs.msg import Point
    from sensor_msgs.msg import PointCloud2, PointField
    from std_msgs.msg import Header

    from masksem_ros.msg import RecognizedAction, RecognizedActionArray, Skeleton3D, Skeleton3DArray

    return MsgKit(
        Time=Time,
        Header=Header,
        Point=Point,
        PointField=PointField,
        PointCloud2=PointCloud2,
        Skeleton3D=Skeleton3D,
        Skeleton3DArray=Skeleton3DArray,
        RecognizedAction=RecognizedAction,
        RecognizedActionArray=RecognizedActionArray,
        float_array=float_array_rclpy,
        byte_array=lambda b: array.array("B", bytes(b)),
    )


def sensor_qos(depth: int = 5) -> Any:
    """Best effort, keep last `depth`: for skeletons and images (late data is worthless)."""
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(depth=depth, reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST)


def reliable_qos(depth: int = 10, latched: bool = False) -> Any:
    """Reliable (actions, commands); `latched` keeps the last message for late subscribers."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE,
        history=HistoryPolicy.KEEP_LAST,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


def declare_parameters(node: Any, defaults: dict[str, Any]) -> dict[str, Any]:
    """Declare parameters with dynamic typing (a YAML `1` for a float parameter must not kill the node),
    coercing each value back to its default's type; returns name -> value."""
    from rcl_interfaces.msg import ParameterDescriptor

    out = {}
    for name, default in defaults.items():
        value = node.declare_parameter(name, default, ParameterDescriptor(dynamic_typing=True)).value
        try:
            if value is None:
                out[name] = default
            elif isinstance(default, bool) and isinstance(value, str):
                out[name] = value.strip().lower() in ("1", "true", "yes", "on")
            else:
                out[name] = type(default)(value)
        except (TypeError, ValueError):
            node.get_logger().error(
                f"parameter {name}={value!r} is not a {type(default).__name__}; using {default!r}"
            )
            out[name] = default
    return out


def now_s(node: Any) -> float:
    """The node clock (ROS time: follows /clock under use_sim_time) in seconds."""
    return node.get_clock().now().nanoseconds * 1e-9


def diagnostic_array(node: Any, name: str, hardware_id: str, report: StatusReport) -> Any:
    """StatusReport -> diagnostic_msgs/DiagnosticArray with one status."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    status = DiagnosticStatus(
        level=bytes([report.level]),
        name=name,
        message=report.message,
        hardware_id=hardware_id,
        values=[KeyValue(key=k, value=v) for k, v in report.values.items()],
    )
    out = DiagnosticArray(status=[status])
    out.header.stamp = node.get_clock().now().to_msg()
    return out


def spin(
    make_node: Callable[[], Any],
    args: list[str] | None = None,
    start_errors: tuple[type[BaseException], ...] = (),
) -> int:
    """rclpy.init, build the node, spin until Ctrl-C or shutdown, clean up; 1 if the node cannot start."""
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.logging import get_logger

    rclpy.init(args=args)
    try:
        node = make_node()
    except start_errors as exc:
        get_logger("masksem").fatal(str(exc))
        rclpy.try_shutdown()
        return 1
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
