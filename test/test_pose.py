"""Image -> skeleton logic of the pose node: encodings and row padding, MediaPipe on a real photograph,
placement in the camera frame."""

from __future__ import annotations

import numpy as np
import pytest

from masksem_core.layouts import MEDIAPIPE33
from masksem_ros.pose import bone_segments, image_to_rgb, intrinsics_from_fov, place_in_camera

J = {name: MEDIAPIPE33.index(name) for name in MEDIAPIPE33.joint_names}


def _padded(img: np.ndarray, pad: int) -> tuple[bytes, int]:
    h, w = img.shape[:2]
    ch = 1 if img.ndim == 2 else img.shape[2]
    rows = np.concatenate([img.reshape(h, w * ch), np.full((h, pad), 77, np.uint8)], axis=1)
    return rows.tobytes()[:-pad], w * ch + pad  # last row unpadded, as some drivers send it


def test_image_encodings_and_step_padding():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    data, step = _padded(rgb[:, :, ::-1].copy(), 3)
    np.testing.assert_array_equal(image_to_rgb(data, 5, 7, "bgr8", step), rgb)
    np.testing.assert_array_equal(image_to_rgb(rgb.tobytes(), 5, 7, "rgb8", 21), rgb)
    gray = rng.integers(0, 256, size=(5, 7), dtype=np.uint8)
    data, step = _padded(gray, 1)
    out = image_to_rgb(data, 5, 7, "mono8", step)
    assert out.shape == (5, 7, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out[:, :, 1], gray)
    with pytest.raises(ValueError, match="'yuv422'"):
        image_to_rgb(data, 5, 7, "yuv422", step)
    with pytest.raises(ValueError, match="step 20 is smaller"):
        image_to_rgb(rgb.tobytes(), 5, 7, "rgb8", 20)
    with pytest.raises(ValueError, match="needs more"):
        image_to_rgb(rgb.tobytes()[:-1], 5, 7, "rgb8", 21)


def test_place_in_camera_recovers_a_known_translation():
    rng = np.random.default_rng(3)
    world = rng.normal(scale=0.4, size=(33, 3))
    t_true = np.array([0.3, -0.2, 2.5])
    k = intrinsics_from_fov(640, 480, 70.0)
    p = world + t_true
    xy = np.stack([k[0] * p[:, 0] / p[:, 2] + k[2], k[1] * p[:, 1] / p[:, 2] + k[3]], axis=1)
    np.testing.assert_allclose(place_in_camera(world, xy, np.ones(33), k), t_true, atol=1e-9)


def test_bone_segments_skip_missing_joints():
    joints = np.arange(33 * 3, dtype=np.float32).reshape(33, 3)
    assert bone_segments(joints, MEDIAPIPE33).shape == (2 * len(MEDIAPIPE33.bones), 3)
    joints[J["left_wrist"]] = np.nan
    touching = sum(J["left_wrist"] in b for b in MEDIAPIPE33.bones)
    assert bone_segments(joints, MEDIAPIPE33).shape == (2 * (len(MEDIAPIPE33.bones) - touching), 3)


@pytest.fixture(scope="module")
def astronaut():
    data = pytest.importorskip("skimage.data", reason="scikit-image provides the test photograph")
    return data.astronaut()  # 512x512 RGB portrait of Eileen Collins, facing the camera


@pytest.fixture(scope="module")
def estimator():
    pytest.importorskip("mediapipe", reason="mediapipe==0.10.21 (pose extra) not installed")
    from masksem_ros.pose import PoseEstimator

    est = PoseEstimator(static=True)
    yield est
    est.close()


def test_mediapipe_on_a_real_photograph(astronaut, estimator):
    res = estimator.process(astronaut)
    assert res is not None and res.world.shape == (33, 3) and res.visibility.shape == (33,)
    w, vis, xy = res.world, res.visibility, res.image_xy
    # y points down: head above shoulders above hips, in the world and in the image
    assert w[J["nose"], 1] < w[J["left_shoulder"], 1] < w[J["left_hip"], 1]
    assert xy[J["nose"], 1] < xy[J["left_shoulder"], 1]
    # facing the camera: the person's left shoulder is on the image's right; metric shoulder width
    assert (
        xy[J["left_shoulder"], 0] > xy[J["right_shoulder"], 0]
        and w[J["left_shoulder"], 0] > w[J["right_shoulder"], 0]
    )
    width = np.linalg.norm(w[J["left_shoulder"]] - w[J["right_shoulder"]])
    assert 0.2 < width < 0.5
    # a head-and-shoulders portrait: face visible, ankles not
    assert vis[J["nose"]] > 0.9 and vis[J["left_ankle"]] < 0.3 and vis[J["right_ankle"]] < 0.3
    # nose inside the face region of the photograph (the face is in the upper middle)
    assert 150 < xy[J["nose"], 0] < 300 and 60 < xy[J["nose"], 1] < 200

    k = intrinsics_from_fov(512, 512, 60.0)
    cam = res.in_camera(k)
    assert (
        cam.dtype == np.float32 and 0.4 < cam[J["nose"], 2] < 3.0
    )  # in front of the camera, plausible distance
    seen = vis > 0.9
    proj = np.stack([k[0] * cam[:, 0] / cam[:, 2] + k[2], k[1] * cam[:, 1] / cam[:, 2] + k[3]], axis=1)
    assert np.median(np.linalg.norm(proj[seen] - xy[seen], axis=1)) < 25  # pixels, of 512


def test_encodings_reach_the_same_pose(astronaut, estimator):
    """bgr8 with padded rows gives the very same pixels, hence the same pose; mono8 still finds the person."""
    ref = estimator.process(astronaut)
    data, step = _padded(astronaut[:, :, ::-1].copy(), 16)
    res = estimator.process(image_to_rgb(data, 512, 512, "bgr8", step))
    np.testing.assert_allclose(res.world, ref.world, atol=1e-6)
    gray = (astronaut @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    res = estimator.process(image_to_rgb(gray.tobytes(), 512, 512, "mono8", 512))
    assert res is not None and res.world[J["nose"], 1] < res.world[J["left_hip"], 1]


def test_missing_mediapipe_gives_a_clear_error(monkeypatch):
    import sys

    from masksem_ros.pose import PoseEstimator, PoseUnavailable

    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import now raises ImportError
    with pytest.raises(PoseUnavailable, match=r"pip install 'mediapipe==0.10.21'"):
        PoseEstimator()


def test_transform_points_matches_a_known_rotation():
    from masksem_ros.pose import transform_points

    # optical frame (z forward, x right, y down) -> body frame (x forward, y left, z up): the standard
    # camera_link <- camera_optical_frame rotation, quaternion (-0.5, 0.5, -0.5, 0.5)
    pts = np.array([[0.0, 0.0, 2.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [np.nan, 0.0, 0.0]])
    out = transform_points(pts, (-0.5, 0.5, -0.5, 0.5), (0.1, 0.0, 1.0))
    np.testing.assert_allclose(out[:3], [[2.1, 0.0, 1.0], [0.1, -1.0, 1.0], [0.1, 0.0, 0.0]], atol=1e-6)
    assert np.isnan(out[3]).all()
    with pytest.raises(ValueError, match="zero length"):
        transform_points(pts, (0, 0, 0, 0), (0, 0, 0))
