"""ROS 2 pose node: sensor_msgs/Image -> MediaPipe Pose -> Skeleton3DArray (+ MarkerArray for RViz).

A thin rclpy adapter over `masksem_ros.pose`. Joints are placed in the image's optical frame using
CameraInfo intrinsics when a camera_info topic is given (else a horizontal field of view), and
optionally transformed into `output_frame` through TF. A missing mediapipe stops the node at start-up
with the pip command to fix it.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from masksem_core.layouts import MEDIAPIPE33
from masksem_core.rosmsg.messages import make_header, numpy_to_skeleton, stamp_to_sec
from masksem_ros.pose import (
    PoseEstimator,
    PoseUnavailable,
    bone_segments,
    image_to_rgb,
    intrinsics_from_fov,
    transform_points,
)

try:
    from rclpy.node import Node
except ImportError:  # logic tests without ROS
    Node = object  # type: ignore[assignment,misc]

PARAMETERS: dict[str, Any] = {
    "image_topic": "/camera/image_raw",
    "camera_info_topic": "",  # "" = use horizontal_fov_deg
    "horizontal_fov_deg": 60.0,
    "static_mode": False,  # True: detect in every image independently (slower, no tracking)
    "min_detection_confidence": 0.5,
    "min_tracking_confidence": 0.5,
    "output_topic": "/masksem/skeletons",
    "output_frame": "",  # "" = the image's frame; else transformed with TF
    "person_id": "0",  # MediaPipe Pose tracks one person
    "publish_markers": True,
    "markers_topic": "/masksem/skeleton_markers",
}


class PoseNode(Node):  # type: ignore[misc]
    def __init__(self, estimator: PoseEstimator | None = None, **node_kwargs: Any) -> None:
        super().__init__("masksem_pose", **node_kwargs)
        from sensor_msgs.msg import CameraInfo, Image
        from visualization_msgs.msg import MarkerArray

        from masksem_ros.msg import Skeleton3DArray
        from masksem_ros.ros_kit import declare_parameters, rclpy_kit, reliable_qos, sensor_qos

        p = self.p = declare_parameters(self, PARAMETERS)
        self.kit = rclpy_kit()
        self.estimator = estimator or PoseEstimator(
            static=p["static_mode"],
            min_detection_confidence=p["min_detection_confidence"],
            min_tracking_confidence=p["min_tracking_confidence"],
        )
        self.intrinsics: tuple[float, float, float, float] | None = None
        self.tf_buffer = None
        if p["output_frame"]:
            from tf2_ros import Buffer, TransformListener

            self.tf_buffer = Buffer()
            self.tf_listener = TransformListener(self.tf_buffer, self)
        if p["camera_info_topic"]:
            self.create_subscription(CameraInfo, p["camera_info_topic"], self.on_camera_info, sensor_qos(1))
        self.pub = self.create_publisher(Skeleton3DArray, p["output_topic"], sensor_qos())
        self.marker_pub = self.create_publisher(MarkerArray, p["markers_topic"], reliable_qos(depth=1))
        self.sub = self.create_subscription(Image, p["image_topic"], self.on_image, sensor_qos(1))
        self.frames = 0

    def on_camera_info(self, msg: Any) -> None:
        k = list(msg.k)
        if k[0] > 0 and k[4] > 0:
            self.intrinsics = (k[0], k[4], k[2], k[5])

    def on_image(self, msg: Any) -> None:
        try:
            rgb = image_to_rgb(msg.data, msg.height, msg.width, msg.encoding, msg.step)
        except ValueError as exc:
            self.get_logger().warning(f"dropped image: {exc}", throttle_duration_sec=5.0)
            return
        try:
            result = self.estimator.process(rgb)
        except Exception as exc:  # keep the node alive whatever MediaPipe does with one image
            self.get_logger().error(f"pose estimation failed: {exc}", throttle_duration_sec=5.0)
            return
        stamp, frame = stamp_to_sec(msg.header.stamp), msg.header.frame_id
        persons = {}
        if result is not None:
            k = self.intrinsics or intrinsics_from_fov(msg.width, msg.height, self.p["horizontal_fov_deg"])
            joints = result.in_camera(k)
            if self.tf_buffer is not None and self.p["output_frame"] != frame:
                joints = self.to_output_frame(joints, frame, msg.header.stamp)
                if joints is None:
                    return
            persons[self.p["person_id"]] = (joints, result.visibility)
        out_frame = self.p["output_frame"] or frame
        header = make_header(self.kit, stamp, out_frame)
        skeletons = [
            numpy_to_skeleton(self.kit, pid, j, c, MEDIAPIPE33.name, header)
            for pid, (j, c) in persons.items()
        ]
        self.pub.publish(self.kit.Skeleton3DArray(header=header, skeletons=skeletons))
        self.frames += 1
        if self.p["publish_markers"]:
            self.marker_pub.publish(self.markers(header, persons))

    def to_output_frame(self, joints: np.ndarray, frame: str, stamp: Any) -> np.ndarray | None:
        from rclpy.duration import Duration
        from rclpy.time import Time

        try:
            tf = self.tf_buffer.lookup_transform(
                self.p["output_frame"], frame, Time.from_msg(stamp), timeout=Duration(seconds=0.05)
            )
        except Exception as exc:
            self.get_logger().warning(
                f"no TF {frame} -> {self.p['output_frame']}: {exc}", throttle_duration_sec=5.0
            )
            return None
        r, t = tf.transform.rotation, tf.transform.translation
        return transform_points(joints, (r.x, r.y, r.z, r.w), (t.x, t.y, t.z))

    def markers(self, header: Any, persons: dict[str, tuple[np.ndarray, np.ndarray]]) -> Any:
        """Joints as a sphere list and bones as a line list per person; DELETEALL first clears old people."""
        from visualization_msgs.msg import Marker, MarkerArray

        out = [Marker(header=header, action=Marker.DELETEALL)]
        for n, (pid, (joints, _)) in enumerate(persons.items()):
            for kind, pts, ns in (
                (Marker.SPHERE_LIST, joints[np.isfinite(joints).all(axis=1)], "joints"),
                (Marker.LINE_LIST, bone_segments(joints, MEDIAPIPE33), "bones"),
            ):
                m = Marker(header=header, ns=f"{ns}_{pid}", id=n, type=kind, action=Marker.ADD)
                m.pose.orientation.w = 1.0
                m.scale.x = m.scale.y = m.scale.z = 0.04 if kind == Marker.SPHERE_LIST else 0.015
                m.color.r, m.color.g, m.color.b, m.color.a = (0.1, 0.8, 0.2, 1.0)
                m.points = [self.kit.Point(x=float(x), y=float(y), z=float(z)) for x, y, z in pts]
                out.append(m)
        return MarkerArray(markers=out)


def main(args: list[str] | None = None) -> int:
    from masksem_ros.ros_kit import spin

    return spin(PoseNode, args, start_errors=(PoseUnavailable,))


if __name__ == "__main__":
    sys.exit(main())
