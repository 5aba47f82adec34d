"""Layout adapters on real skeletons: NTU (Kinect v2), NW-UCLA (Kinect v1) and MediaPipe on a photograph."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from masksem_core.layouts import KINECT_V1_20, NTU25
from masksem_core.runtime.adapters import MAPPING_TABLES, adapt, get_adapter

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NTU_EXPECTED = DATA / "ntu-samples" / "expected"
NW_UCLA = DATA / "nw-ucla" / "all_sqe"


def ntu_joints() -> np.ndarray:
    """All bodies of the five real NTU samples, (F, 25, 3) in Kinect v2 camera space."""
    files = sorted(NTU_EXPECTED.glob("*.raw_bodies.npz"))
    if not files:
        pytest.skip(f"real NTU samples not found under {NTU_EXPECTED}")
    out = []
    for f in files:
        with np.load(f) as z:
            out += [z[k] for k in z.files if k.endswith("_joints")]
    return np.concatenate(out).astype(np.float32)


def j(layout, name: str) -> int:
    return layout.index(name)


def bone(sk: np.ndarray, a: str, b: str) -> np.ndarray:
    return np.linalg.norm(sk[..., j(NTU25, a), :] - sk[..., j(NTU25, b), :], axis=-1)


@pytest.mark.parametrize("pair", sorted(MAPPING_TABLES))
def test_weights_sum_to_one_so_adapting_commutes_with_translation(pair):
    src, dst = pair
    ad = get_adapter(src, dst)
    np.testing.assert_allclose(ad.matrix.sum(axis=1), 1.0, atol=1e-6)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, ad.source.num_joints, 3)).astype(np.float32)
    shift = np.array([0.3, -1.0, 2.0], np.float32)
    np.testing.assert_allclose(ad(x + shift), ad(x) + shift * ad.signs, atol=1e-5)


def test_same_layout_is_identity_and_wrong_shape_is_rejected():
    x = np.random.default_rng(1).normal(size=(25, 3)).astype(np.float32)
    np.testing.assert_array_equal(adapt(x, "ntu25", "ntu25"), x)
    with pytest.raises(ValueError, match="mediapipe33 -> ntu25"):
        adapt(np.zeros((25, 3)), "mediapipe33", "ntu25")
    with pytest.raises(KeyError, match="unknown joint layout"):
        get_adapter("openpose18", "ntu25")


def test_kinect_v1_round_trip_recovers_real_ntu_joints():
    """NTU -> the 20 joints Kinect v1 has -> NTU: kept joints are exact, derived ones close to the truth."""
    truth = ntu_joints()
    back = adapt(adapt(truth, "ntu25", "kinect_v1_20"), "kinect_v1_20", "ntu25")
    err = np.linalg.norm(back - truth, axis=-1)  # (F, 25) metres
    kept = [
        j(NTU25, n) for n in ("head", "shoulder_left", "wrist_right", "hand_left", "knee_right", "foot_left")
    ]
    assert err[:, kept].max() < 1e-6
    med = {n: float(np.median(err[:, j(NTU25, n)])) for n in NTU25.joint_names}
    assert med["spine_mid"] < 0.01  # fitted ratio: spine_mid lies on the spine line
    assert med["neck"] < 0.02
    for side in ("left", "right"):
        assert med[f"hand_tip_{side}"] < 0.05, med
        assert med[f"thumb_{side}"] < 0.06, med
    # The kinect v1 "spine" joint derived from NTU lies low on the trunk, as real Kinect v1 data has it.
    v1 = adapt(truth, "ntu25", "kinect_v1_20")
    t = (v1[:, 1, 1] - v1[:, 0, 1]) / (v1[:, 2, 1] - v1[:, 0, 1])
    assert 0.1 < float(np.median(t)) < 0.25


def test_kinect_v1_nw_ucla_gives_plausible_ntu_skeleton():
    files = sorted(NW_UCLA.glob("*.json"))[:40]
    if not files:
        pytest.skip(f"NW-UCLA not found under {NW_UCLA}")
    v1 = np.concatenate([np.asarray(json.loads(f.read_text())["skeletons"], np.float32) for f in files])
    sk = adapt(v1, "kinect_v1_20", "ntu25")
    assert sk.shape == (len(v1), 25, 3)
    real = ntu_joints()
    # Bone lengths within 25% of real NTU (Kinect v2) medians, derived joints included.
    for a, b in [
        ("spine_base", "spine_shoulder"),
        ("shoulder_left", "elbow_left"),
        ("elbow_right", "wrist_right"),
        ("knee_right", "ankle_right"),
        ("spine_shoulder", "head"),
        ("spine_shoulder", "neck"),
        ("hip_left", "hip_right"),
        ("hand_left", "hand_tip_left"),
        ("spine_mid", "spine_base"),
    ]:
        got, want = np.median(bone(sk, a, b)), np.median(bone(real, a, b))
        assert abs(got - want) / want < 0.25, (a, b, got, want)
    # Kinect v1 puts the hip joints ~10 cm higher than Kinect v2 (thigh 0.46 vs 0.32 m); not corrected.
    assert 0.3 < np.median(bone(sk, "hip_left", "knee_left")) < 0.55
    y = sk[..., 1]
    assert np.median(y[:, j(NTU25, "head")] - y[:, j(NTU25, "spine_mid")]) > 0.2  # y up
    assert np.median(y[:, j(NTU25, "spine_mid")] - y[:, j(NTU25, "ankle_left")]) > 0.5


def test_confidence_of_derived_joints_is_the_lowest_source():
    ad = get_adapter("mediapipe33", "ntu25")
    conf = np.ones(33, np.float32)
    conf[ad.source.index("left_pinky")] = 0.2
    out = ad.confidence(conf)
    assert out.shape == (25,)
    assert out[j(NTU25, "hand_tip_left")] == pytest.approx(0.2)
    assert out[j(NTU25, "hand_left")] == pytest.approx(0.2)
    assert out[j(NTU25, "hand_tip_right")] == 1.0


def test_mediapipe_to_kinect_v1_composes_through_ntu():
    x = np.random.default_rng(2).normal(size=(3, 33, 3)).astype(np.float32)
    direct = adapt(x, "mediapipe33", "kinect_v1_20")
    assert direct.shape == (3, KINECT_V1_20.num_joints, 3)
    np.testing.assert_allclose(
        direct, adapt(adapt(x, "mediapipe33", "ntu25"), "ntu25", "kinect_v1_20"), atol=1e-5
    )


@pytest.fixture(scope="module")
def astronaut_world() -> np.ndarray:
    mp = pytest.importorskip("mediapipe", reason="mediapipe (the 'pose' extra) is not installed")
    skdata = pytest.importorskip("skimage.data")
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1) as pose:
        result = pose.process(skdata.astronaut())
    assert result.pose_world_landmarks is not None, "MediaPipe found no person in astronaut()"
    return np.array([[p.x, p.y, p.z] for p in result.pose_world_landmarks.landmark], np.float32)


def test_mediapipe_on_a_real_photo_gives_a_plausible_ntu_skeleton(astronaut_world):
    sk = adapt(astronaut_world, "mediapipe33", "ntu25")
    assert sk.shape == (25, 3) and np.isfinite(sk).all()
    # Bone lengths of an adult, metres (upper body: the photo shows it; the legs are MediaPipe's guess).
    ranges = {
        ("shoulder_left", "shoulder_right"): (0.2, 0.5),
        ("spine_base", "spine_shoulder"): (0.3, 0.7),
        ("shoulder_left", "elbow_left"): (0.15, 0.4),
        ("shoulder_right", "elbow_right"): (0.15, 0.4),
        ("elbow_left", "wrist_left"): (0.12, 0.35),
        ("elbow_right", "wrist_right"): (0.12, 0.35),
        ("spine_shoulder", "head"): (0.1, 0.35),
        ("hip_left", "hip_right"): (0.12, 0.4),
        ("hand_left", "hand_tip_left"): (0.02, 0.15),
        ("wrist_right", "hand_right"): (0.02, 0.12),
    }
    for (a, b), (lo, hi) in ranges.items():
        assert lo < bone(sk, a, b) < hi, (a, b, bone(sk, a, b))
    y = sk[:, 1]
    order = ["head", "neck", "spine_shoulder", "spine_mid", "spine_base", "knee_left", "ankle_left"]
    assert all(y[j(NTU25, a)] > y[j(NTU25, b)] for a, b in zip(order, order[1:])), y  # y is up
    # She faces the camera. In real NTU data a person facing the Kinect has the right shoulder at larger x
    # and cross(right - left, up) pointing away from the sensor (+z); the adapted skeleton must agree.
    real = ntu_joints()

    def facing(s: np.ndarray) -> np.ndarray:
        right = s[..., j(NTU25, "shoulder_right"), :] - s[..., j(NTU25, "shoulder_left"), :]
        return np.cross(right, s[..., j(NTU25, "spine_shoulder"), :] - s[..., j(NTU25, "spine_base"), :])[
            ..., 2
        ]

    assert np.median(facing(real)) > 0 and facing(sk) > 0
    assert sk[j(NTU25, "shoulder_right"), 0] > sk[j(NTU25, "shoulder_left"), 0]
    assert sk[j(NTU25, "wrist_right"), 0] > sk[j(NTU25, "wrist_left"), 0]
    # Proportions close to real Kinect v2 people: head-to-spine_shoulder over trunk length.
    ratio = bone(sk, "spine_shoulder", "head") / bone(sk, "spine_base", "spine_shoulder")
    real_ratio = np.median(bone(real, "spine_shoulder", "head") / bone(real, "spine_base", "spine_shoulder"))
    assert abs(ratio - real_ratio) < 0.2, (ratio, real_ratio)
