"""ROS 2 recogniser node: skeleton arrays or PointCloud2 in, RecognizedActionArray and diagnostics out.

A thin rclpy adapter over `masksem_ros.recognition.RecognitionPipeline` (parameters, QoS, timers).
Best-effort sensor QoS in, reliable out. Every update carries the recogniser's status (OK, INVALID_INPUT,
ERROR): with a missing or broken bundle the node stays up, publishes an ERROR diagnostic and updates
with STATUS_ERROR (and logs why) instead of crash-looping under a launch file's respawn.
"""

from __future__ import annotations

import sys
from typing import Any

from masksem_core.rosmsg.messages import (
    STATUS_ERROR,
    STATUS_NAMES,
    STATUS_OK,
    actions_to_array_msg,
    skeleton_array_to_numpy,
    stamp_to_sec,
)
from masksem_core.rosmsg.pointcloud import pointcloud_to_numpy
from masksem_ros.recognition import RecognitionPipeline

try:
    from rclpy.node import Node
except ImportError:  # documentation builds and logic tests without ROS
    Node = object  # type: ignore[assignment,misc]

PARAMETERS: dict[str, Any] = {
    "bundle": "",  # model bundle directory or archive
    "device": "cpu",  # torch device: cpu, cuda, cuda:1
    "precision": "fp32",  # fp32, bf16, fp16 (torch); fp32, int8 (onnxruntime)
    "backend": "torch",  # torch, or onnxruntime: int8 runs one NTU window in ~27 ms on 2 CPU cores
    "num_threads": 0,  # CPU threads for inference (0: the library's default); set to the free cores
    # Window settings: unset (these values) -> the bundle's own choice (its `recognizer:` settings), else
    # FALLBACK; set -> they override the bundle (interface 3).
    "stride_frames": 0,  # run a window every this many frames per person
    "score_threshold": -1.0,  # below: not published
    "smoothing": "",  # none, ema, majority
    "smoothing_alpha": 0.0,
    "smoothing_window": 0,  # windows in a majority vote
    "lag_frames": 0,  # dense bundles: report frames this far behind the newest (config/recognizer.yaml)
    "segments": False,  # dense bundles: report whole running action segments
    "provisional": False,  # dense bundles with lag: also report the newest, unsettled frames ("now")
    "min_segment_frames": 0,
    "merge_gap_frames": 0,
    "segment_weight": -1.0,  # the segment classifier's share in a segment's label (< 0: the bundle's)
    "latency_frames": -1,  # settled record: frame t gets the answer for t + this (<= lag; < 0: the bundle's)
    "edge_background": -1.0,  # segments: weak action frames at a segment's edges (< 0: the bundle's)
    "top_k": 5,
    "max_persons": 8,
    "track_timeout_s": 2.0,  # forget a person not seen for this long
    "input_topic": "/masksem/skeletons",
    "input_type": "skeletons",  # skeletons (Skeleton3DArray) or pointcloud (sensor_msgs/PointCloud2)
    "input_layout": "",  # joint layout of PointCloud2 input ("" = infer from points per person)
    "output_topic": "/masksem/actions",
    "publish_empty": True,  # also publish updates without actions: the heartbeat (with its status)
    "diagnostics_period_s": 1.0,
    "stale_after_s": 2.0,  # no input message at all for this long -> STALE diagnostic
    "drop_window_s": 5.0,  # drop rates and malformed-only input are judged over this sliding window
}
FROM_BUNDLE = (
    "stride_frames", "score_threshold", "smoothing", "smoothing_alpha", "smoothing_window", "segment_weight",
    "latency_frames", "edge_background",
)  # fmt: skip
FALLBACK = {"stride_frames": 15, "score_threshold": 0.5, "smoothing": "ema", "smoothing_alpha": 0.5,
            "smoothing_window": 5, "segment_weight": 0.0, "latency_frames": 0,
            "edge_background": 1.0}  # fmt: skip
SETTING_NAMES = (
    "device", "precision", "backend", "num_threads", "stride_frames", "score_threshold", "smoothing",
    "smoothing_alpha", "smoothing_window", "top_k", "max_persons", "track_timeout_s", "lag_frames",
    "segments", "min_segment_frames", "merge_gap_frames", "provisional", "segment_weight", "latency_frames",
    "edge_background",
)  # fmt: skip
# Need a restart (a new model, new subscriptions or timers): refused by `ros2 param set`.
READ_ONLY = (
    "bundle", "device", "precision", "backend", "num_threads", "input_topic", "input_type", "input_layout",
    "output_topic", "diagnostics_period_s",
)  # fmt: skip


class RecognizerNode(Node):  # type: ignore[misc]
    def __init__(self, **node_kwargs: Any) -> None:
        super().__init__("masksem_recognizer", **node_kwargs)
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.parameter import Parameter
        from sensor_msgs.msg import PointCloud2

        from masksem_ros.msg import RecognizedActionArray, Skeleton3DArray
        from masksem_ros.ros_kit import (
            declare_parameters,
            on_parameter_change,
            rclpy_kit,
            reliable_qos,
            sensor_qos,
        )

        p = self.p = declare_parameters(self, PARAMETERS, READ_ONLY)
        self.kit = rclpy_kit()
        given = {k: p[k] for k in SETTING_NAMES if k not in FROM_BUNDLE or p[k] != PARAMETERS[k]}
        self.pipeline = RecognitionPipeline(
            p["bundle"], None, device=p["device"], stale_after_s=float(p["stale_after_s"]),
            drop_window_s=float(p["drop_window_s"]), given=given, fallback=FALLBACK,
        )  # fmt: skip
        if self.pipeline.error:
            self.get_logger().error(f"{self.pipeline.error}; ERROR diagnostics and STATUS_ERROR updates")
        else:
            settings = self.pipeline.settings
            effective = {k: getattr(settings, k) for k in FROM_BUNDLE}
            # show what runs (`ros2 param get`), before the change callback exists
            self.set_parameters([Parameter(k, value=v) for k, v in effective.items()])
            p.update(effective)
            source = {k: "parameter" if k in given else "bundle/default" for k in FROM_BUNDLE}
            self.get_logger().info(
                f"bundle {p['bundle']} loaded: labels {self.pipeline.labels} on {p['device']}; "
                + ", ".join(f"{k} {v} ({source[k]})" for k, v in effective.items())
            )
        if p["input_type"] not in ("skeletons", "pointcloud"):
            self.get_logger().error(f"input_type must be skeletons or pointcloud, got {p['input_type']!r}")
            p["input_type"] = "skeletons"
        msg_type = PointCloud2 if p["input_type"] == "pointcloud" else Skeleton3DArray
        self.sub = self.create_subscription(msg_type, p["input_topic"], self.on_input, sensor_qos())
        self.pub = self.create_publisher(RecognizedActionArray, p["output_topic"], reliable_qos())
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", reliable_qos())
        self.timer = self.create_timer(float(p["diagnostics_period_s"]), self.on_timer)
        on_parameter_change(self, PARAMETERS, self.apply_parameters)

    def apply_parameters(self, changes: dict[str, Any]) -> None:
        """`ros2 param set` at runtime: recogniser settings (validated by the recogniser, all or none),
        staleness and drop window; ValueError with the reason otherwise."""
        settings = {k: v for k, v in changes.items() if k in SETTING_NAMES}
        if "stale_after_s" in changes and not changes["stale_after_s"] > 0:
            raise ValueError(f"stale_after_s must be > 0, got {changes['stale_after_s']}")
        if "drop_window_s" in changes and not changes["drop_window_s"] > 0:
            raise ValueError(f"drop_window_s must be > 0, got {changes['drop_window_s']}")
        if settings:
            self.pipeline.update_settings(**settings)
        if "stale_after_s" in changes:
            self.pipeline.stale_after_s = changes["stale_after_s"]
        if "drop_window_s" in changes:
            self.pipeline.drops.window_s = changes["drop_window_s"]
        self.p.update(changes)

    def on_input(self, msg: Any) -> None:
        from masksem_ros.ros_kit import now_s

        try:
            if self.p["input_type"] == "pointcloud":
                stamp, persons, layout = pointcloud_to_numpy(msg, self.p["input_layout"] or None)
            else:
                stamp, persons, layout = skeleton_array_to_numpy(msg)
        except (ValueError, KeyError, TypeError) as exc:
            self.pipeline.on_bad_message(now_s(self), str(exc))
            self.get_logger().warning(f"dropped input message: {exc}", throttle_duration_sec=5.0)
            self.publish([], self.stamp_of(msg), msg.header.frame_id)
            return
        results = self.pipeline.on_frame(now_s(self), stamp, persons, layout)
        newest = max((float(r.stamp) for r in results), default=stamp)
        self.publish(results, newest, msg.header.frame_id)

    @staticmethod
    def stamp_of(msg: Any) -> float:
        try:
            return stamp_to_sec(msg.header.stamp)
        except (ValueError, TypeError, AttributeError):
            return 0.0

    def publish(self, results: list[Any], stamp: float, frame_id: str) -> None:
        """One update with the recogniser's status; heartbeats only when `publish_empty`, but an update
        that is not OK is always published (the collaboration node must hear that it cannot see)."""
        status, message = self.pipeline.frame_status
        if not (results or self.p["publish_empty"] or status != STATUS_OK):
            return
        if status != STATUS_OK:
            self.get_logger().warning(
                f"update status {STATUS_NAMES.get(status, status)}: {message}", throttle_duration_sec=5.0
            )
        self.pub.publish(actions_to_array_msg(self.kit, results, stamp, frame_id, status, message))

    def on_timer(self) -> None:
        from masksem_ros.ros_kit import diagnostic_array, now_s

        now = now_s(self)
        self.pipeline.expire()
        report = self.pipeline.status(now)
        self.diag_pub.publish(
            diagnostic_array(self, f"{self.get_name()}: recognizer", self.p["device"], report)
        )
        if self.pipeline.error:  # say so even while no input arrives
            self.pub.publish(
                actions_to_array_msg(self.kit, [], now, "", STATUS_ERROR, str(self.pipeline.error))
            )


def main(args: list[str] | None = None) -> int:
    from masksem_ros.ros_kit import spin

    return spin(RecognizerNode, args)


if __name__ == "__main__":
    sys.exit(main())
