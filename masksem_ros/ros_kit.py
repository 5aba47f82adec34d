"""rclpy-side helpers shared by the nodes: the rclpy message kit, QoS profiles, clock and diagnostics.

Imported only by the node modules (it needs a ROS 2 installation); all logic lives elsewhere.
"""

from __future__ import annotations

import array
import os
import sys
from collections.abc import Callable, Iterable
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


# String parameters whose "" means "unset" (topics, frames, paths): `none` stands for "" as well.
NONE_MEANS_EMPTY = frozenset({"camera_info_topic", "output_frame", "input_layout", "table"})


def coerce_parameter(name: str, value: Any, default: Any) -> Any:
    """A parameter value converted to its default's type, or ValueError naming the parameter and value
    (a YAML `1` for a float parameter is fine; `0.5` for an integer one is not). For the parameters in
    NONE_MEANS_EMPTY, `none` means "" (unset)."""
    kind = type(default).__name__
    bad = ValueError(f"parameter {name}={value!r} is not a valid {kind}")
    if value is None:
        raise bad
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        words = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False}
        if isinstance(value, str) and value.strip().lower() in words:
            return words[value.strip().lower()]
        raise bad
    if isinstance(value, bool) and isinstance(default, (int, float)):
        raise bad
    try:
        if isinstance(default, int):
            number = float(value)
            if not number.is_integer():
                raise bad
            return int(number)
        if isinstance(default, float):
            return float(value)
    except (TypeError, ValueError, OverflowError):
        raise bad from None
    if isinstance(value, (list, tuple, bytes)):
        raise bad
    if name in NONE_MEANS_EMPTY and str(value).strip().lower() == "none":
        return ""  # "" cannot be typed as a launch argument (name:=): `none` stands for it
    return str(value)


def declare_parameters(node: Any, defaults: dict[str, Any], read_only: Iterable[str] = ()) -> dict[str, Any]:
    """Declare parameters with dynamic typing (a YAML `1` for a float parameter must not kill the node),
    coercing each value back to its default's type; those in `read_only` can only be set at start-up
    (`ros2 param set` is refused with "parameter is read-only"). Returns name -> value."""
    from rcl_interfaces.msg import ParameterDescriptor

    fixed = set(read_only)
    out = {}
    for name, default in defaults.items():
        descriptor = ParameterDescriptor(dynamic_typing=True, read_only=name in fixed)
        value = node.declare_parameter(name, default, descriptor).value
        try:
            out[name] = default if value is None else coerce_parameter(name, value, default)
        except ValueError as exc:
            node.get_logger().error(f"{exc}; using {default!r}")
            out[name] = default
    return out


def on_parameter_change(
    node: Any, defaults: dict[str, Any], apply: Callable[[dict[str, Any]], None]
) -> None:
    """Runtime parameter changes (`ros2 param set`): each new value is coerced to its default's type,
    then `apply(changes)` validates and applies them all or raises ValueError; the caller of set
    parameters gets the reason. Read-only parameters never get here (rclpy refuses them)."""
    from rcl_interfaces.msg import SetParametersResult

    def callback(params: list[Any]) -> Any:
        try:
            changes = {p.name: coerce_parameter(p.name, p.value, defaults[p.name]) for p in params
                       if p.name in defaults}  # fmt: skip
            if changes:
                apply(changes)
        except (ValueError, TypeError) as exc:
            node.get_logger().warning(f"parameter change refused: {exc}")
            return SetParametersResult(successful=False, reason=str(exc))
        if changes:
            node.get_logger().info(f"parameters changed: {changes}")
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(callback)


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
    """rclpy.init, build the node, spin until Ctrl-C or shutdown, clean up and exit the process (0);
    returns 1 if the node cannot start."""
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
    # Skip the interpreter's teardown: with torch loaded it takes seconds (3 s on 2 busy cores), longer
    # than `ros2 launch` waits after SIGINT before it escalates to SIGTERM. Nothing is left to save.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
