"""Camera image -> 3D skeleton with MediaPipe Pose (33 landmarks), placed in the camera's optical frame.

MediaPipe's world landmarks are metric and hip-centred but have no position in the room. Their axes are
the camera's optical axes (x right, y down, z forward), so the hip centre's position follows from the
2D landmarks and the camera intrinsics by a linear least-squares fit (`place_in_camera`); the skeleton
then lives in the camera frame that the image header names. Uses `mediapipe==0.10.21`'s bundled model
(`model_complexity=1`); newer mediapipe releases ship no model. Single person (legacy Pose solution).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from masksem_core.layouts import SkeletonLayout

ENCODINGS = {"rgb8": 3, "bgr8": 3, "mono8": 1, "rgba8": 4, "bgra8": 4}
MEDIAPIPE_HINT = "install it with: pip install 'mediapipe==0.10.21' (needs numpy<2; extra: masksem[pose])"


class PoseUnavailable(RuntimeError):
    """MediaPipe cannot be used (not installed, or a release without the bundled pose model)."""


def image_to_rgb(data: Any, height: int, width: int, encoding: str, step: int) -> np.ndarray:
    """Raw sensor_msgs/Image bytes -> contiguous (H, W, 3) uint8 RGB; `step` may include row padding."""
    if encoding not in ENCODINGS:
        raise ValueError(f"image encoding {encoding!r} not supported; use one of {sorted(ENCODINGS)}")
    ch = ENCODINGS[encoding]
    if height <= 0 or width <= 0:
        raise ValueError(f"image size {width}x{height} is empty")
    if step < width * ch:
        raise ValueError(f"image step {step} is smaller than width*channels = {width * ch} ({encoding})")
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size < (height - 1) * step + width * ch:
        raise ValueError(
            f"image data has {raw.size} bytes, {encoding} {width}x{height} step {step} needs more"
        )
    rows = np.lib.stride_tricks.as_strided(raw, shape=(height, width * ch), strides=(step, 1))
    img = rows.reshape(height, width, ch)
    if encoding == "mono8":
        return np.repeat(img, 3, axis=2)
    if encoding.startswith("bgr"):
        return np.ascontiguousarray(img[:, :, 2::-1])
    return np.ascontiguousarray(img[:, :, :3])


def intrinsics_from_fov(
    width: int, height: int, horizontal_fov_deg: float
) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) of an ideal pinhole camera with square pixels, when no CameraInfo is available."""
    fx = width / (2.0 * math.tan(math.radians(horizontal_fov_deg) / 2.0))
    return fx, fx, (width - 1) / 2.0, (height - 1) / 2.0


def place_in_camera(
    world: np.ndarray,
    image_xy: np.ndarray,
    weights: np.ndarray,
    intrinsics: tuple[float, float, float, float],
) -> np.ndarray:
    """Translation t (3,) such that world + t projects onto the pixel positions `image_xy` (V, 2).

    Pinhole: u = fx (X + tx) / (Z + tz) + cx is linear in t once multiplied out, so the weighted
    least-squares fit over joints is exact for noise-free data and needs no iteration.
    """
    fx, fy, cx, cy = intrinsics
    x, y, z = world[:, 0].astype(np.float64), world[:, 1].astype(np.float64), world[:, 2].astype(np.float64)
    du, dv = image_xy[:, 0] - cx, image_xy[:, 1] - cy
    zeros = np.zeros_like(x)
    a = np.concatenate(
        [np.stack([np.full_like(x, fx), zeros, -du], 1), np.stack([zeros, np.full_like(x, fy), -dv], 1)]
    )
    b = np.concatenate([du * z - fx * x, dv * z - fy * y])
    w = np.sqrt(np.clip(np.concatenate([weights, weights]), 1e-6, None))
    t, *_ = np.linalg.lstsq(a * w[:, None], b * w, rcond=None)
    return t


@dataclass(frozen=True)
class PoseResult:
    world: np.ndarray  # (33, 3) metres, MediaPipe world landmarks (hip-centred, camera axes)
    visibility: np.ndarray  # (33,) in [0, 1]
    image_xy: np.ndarray  # (33, 2) pixels

    def in_camera(self, intrinsics: tuple[float, float, float, float]) -> np.ndarray:
        """(33, 3) joint positions in the camera optical frame (metres)."""
        return (self.world + place_in_camera(self.world, self.image_xy, self.visibility, intrinsics)).astype(
            np.float32
        )


class PoseEstimator:
    """MediaPipe Pose wrapper. `static=True` treats every image on its own; False tracks across frames."""

    def __init__(
        self,
        static: bool = False,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
    ) -> None:
        try:
            import mediapipe as mp
        except ImportError as exc:
            raise PoseUnavailable(f"MediaPipe is not installed ({exc}); {MEDIAPIPE_HINT}") from exc
        solutions = getattr(mp, "solutions", None)
        if solutions is None or not hasattr(solutions, "pose"):
            raise PoseUnavailable(
                f"mediapipe {getattr(mp, '__version__', '?')} has no bundled Pose model; {MEDIAPIPE_HINT}"
            )
        self._pose = solutions.pose.Pose(
            static_image_mode=static,
            model_complexity=1,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )

    def process(self, rgb: np.ndarray) -> PoseResult | None:
        """(H, W, 3) uint8 RGB -> PoseResult, or None when no person is found."""
        result = self._pose.process(rgb)
        if result.pose_world_landmarks is None or result.pose_landmarks is None:
            return None
        h, w = rgb.shape[:2]
        world = np.array([(p.x, p.y, p.z) for p in result.pose_world_landmarks.landmark], dtype=np.float32)
        vis = np.array([p.visibility for p in result.pose_landmarks.landmark], dtype=np.float32)
        xy = np.array([(p.x * w, p.y * h) for p in result.pose_landmarks.landmark], dtype=np.float64)
        return PoseResult(world=world, visibility=np.clip(vis, 0.0, 1.0), image_xy=xy)

    def close(self) -> None:
        self._pose.close()


def bone_segments(joints: np.ndarray, layout: SkeletonLayout) -> np.ndarray:
    """(2B, 3) start/end points of the layout's bones (for a LINE_LIST marker), skipping NaN joints."""
    pairs = np.asarray(layout.bones, dtype=np.int64).reshape(-1, 2)
    seg = joints[pairs]  # (B, 2, 3)
    ok = np.isfinite(seg).all(axis=(1, 2))
    return seg[ok].reshape(-1, 3)


def transform_points(
    points: np.ndarray, rotation_xyzw: tuple[float, ...], translation: tuple[float, ...]
) -> np.ndarray:
    """Apply a TF transform (unit quaternion x, y, z, w and translation) to (N, 3) points; NaN stays NaN."""
    x, y, z, w = (float(c) for c in rotation_xyzw)
    n = math.sqrt(x * x + y * y + z * z + w * w)
    if not n > 0:
        raise ValueError(f"rotation quaternion {rotation_xyzw} has zero length")
    x, y, z, w = x / n, y / n, z / n, w / n
    rot = np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])  # fmt: skip
    return (np.asarray(points, np.float64) @ rot.T + np.asarray(translation, np.float64)).astype(np.float32)
