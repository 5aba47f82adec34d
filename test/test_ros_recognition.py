"""The recogniser node's logic without ROS: a real (tiny, untrained) bundle on real NW-UCLA skeletons,
through messages, with diagnostics; a missing or broken bundle gives an ERROR status, not a crash."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_bundle

from masksem_core.rosmsg.messages import (
    ACTION_ARRAY_TYPE,
    STATUS_ERROR,
    STATUS_INVALID_INPUT,
    STATUS_OK,
    actions_to_array_msg,
    array_msg_to_actions,
    get_typestore,
    numpy_to_skeleton_array,
    rosbags_kit,
    skeleton_array_to_numpy,
)
from masksem_ros.diagnostics import ERROR, OK, STALE, WARN, LatencyStats, RateMeter, recognizer_status
from masksem_ros.recognition import RecognitionPipeline, make_settings

NWUCLA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nw-ucla" / "all_sqe"
LABELS = ["pick_up", "walk", "wave"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return make_tiny_bundle(tmp_path_factory.mktemp("bundle") / "tiny", LABELS, fps=30.0, heads=2)


def _clip(stem: str) -> np.ndarray:
    if not NWUCLA.is_dir():
        pytest.skip(f"NW-UCLA skeletons not found at {NWUCLA} (shared data not next to the repo)")
    return np.asarray(json.loads((NWUCLA / f"{stem}.json").read_text())["skeletons"], dtype=np.float32)


def test_rate_and_latency_statistics():
    meter = RateMeter(window_s=2.0)
    for k in range(31):
        meter.tick(10.0 + k / 30)
    assert meter.rate(11.0) == pytest.approx(30.0)
    assert meter.rate(13.5) == 0.0 and meter.count == 31
    lat = LatencyStats()
    assert math.isnan(lat.percentile(50))
    for v in [*range(1, 101), float("nan")]:
        lat.add(float(v))
    assert (lat.percentile(50), lat.percentile(99)) == (50.0, 99.0)


def test_status_levels():
    common = dict(device="cpu", input_rate_hz=30.0, latency_p50_ms=5.0, latency_p99_ms=9.0)
    assert recognizer_status(error=None, input_age_s=0.1, dropped=1, received=100, **common).level == OK
    assert recognizer_status(error=None, input_age_s=0.1, dropped=20, received=100, **common).level == WARN
    assert recognizer_status(error=None, input_age_s=5.0, dropped=0, received=100, **common).level == STALE
    rep = recognizer_status(error="cannot load", input_age_s=0.1, dropped=0, received=1, **common)
    assert rep.level == ERROR and rep.message == "cannot load"
    assert rep.values["inference_latency_p99_ms"] == "9.000" and rep.values["device"] == "cpu"


def test_pipeline_recognises_real_skeletons_through_messages(bundle):
    ts, kit = get_typestore(), rosbags_kit()
    settings = make_settings(stride_frames=8, score_threshold=0.0, top_k=2, device="cpu")
    pipe = RecognitionPipeline(str(bundle), settings, device="cpu")
    assert pipe.error is None and pipe.labels == LABELS
    clip = _clip("a04_s01_e00_v01")  # walking, several seconds
    out = []
    for k, joints in enumerate(clip):
        stamp = 50.0 + k / 30
        msg = numpy_to_skeleton_array(kit, stamp, {"7": (joints, np.ones(20, np.float32))}, "kinect_v1_20")
        msg = ts.deserialize_cdr(
            bytes(ts.serialize_cdr(msg, "masksem_ros/msg/Skeleton3DArray")), "masksem_ros/msg/Skeleton3DArray"
        )
        got = pipe.on_frame(stamp + 0.01, *skeleton_array_to_numpy(msg))
        out.extend((k, r) for r in got)
    assert len(clip) >= 40
    first_k, first = out[0]
    assert first_k == 15  # the 16-frame window is full at the 16th frame
    assert first.person_id == "7" and first.label in LABELS and first.topk_labels[0] == first.label
    assert first.window_end - first.window_start == pytest.approx(15 / 30, abs=1e-6)
    assert first.stamp == pytest.approx(50.0 + 15 / 30)
    assert [k for k, _ in out][:3] == [15, 23, 31]  # then every stride (8 frames)
    msg = actions_to_array_msg(kit, [first], first.stamp, "camera")
    _, [back] = array_msg_to_actions(
        ts.deserialize_cdr(bytes(ts.serialize_cdr(msg, ACTION_ARRAY_TYPE)), ACTION_ARRAY_TYPE)
    )
    assert (back.label, back.class_index) == (first.label, first.class_index)
    status = pipe.status(50.0 + len(clip) / 30)
    assert status.level == OK, status
    assert status.values["received_frames"] == str(len(clip)) and status.values["dropped_frames"] == "0"
    assert float(status.values["input_rate_hz"]) == pytest.approx(30.0, rel=0.05)
    assert float(status.values["end_to_end_latency_p50_ms"]) == pytest.approx(10.0, abs=0.5)
    assert status.values["actions_published"] == str(len(out))
    assert pipe.status(60.0 + len(clip) / 30).level == STALE


def test_bad_frames_are_counted_not_raised(bundle):
    pipe = RecognitionPipeline(str(bundle), make_settings(stride_frames=8), device="cpu")
    bad = np.full((20, 3), np.nan, np.float32)
    assert pipe.on_frame(1.0, 1.0, {"1": (bad, np.ones(20, np.float32))}, "kinect_v1_20") == []
    assert pipe.on_frame(1.1, 1.1, {"1": (np.zeros((25, 3), np.float32), None)}, "kinect_v1_20") == []
    pipe.on_bad_message(1.15, "mixed layouts")
    assert pipe.frame_status == (STATUS_INVALID_INPUT, "malformed input message: mixed layouts")
    status = pipe.status(1.2)
    assert status.values["dropped_frames"] == "3" and status.values["bad_messages"] == "1"
    assert status.level == WARN  # malformed-only input arrives: WARN with the reasons, never STALE
    assert status.message == (
        "no valid skeleton input: all 3 frames in the last 5 s dropped "
        "(bad_message 1, bad_shape 1, non_finite 1)"
    )


@pytest.mark.parametrize("kind", ["missing", "corrupt", "empty"])
def test_missing_or_broken_bundle_reports_error(tmp_path, bundle, kind):
    pytest.importorskip("torch")
    if kind == "missing":
        path = str(tmp_path / "nope")
    elif kind == "corrupt":
        path = str(tmp_path / "corrupt")
        Path(path).mkdir()
        for f in bundle.iterdir():
            (Path(path) / f.name).write_bytes(f.read_bytes())
        w = Path(path) / "weights.safetensors"
        w.write_bytes(w.read_bytes()[:-64])
    else:
        path = ""
    pipe = RecognitionPipeline(path, make_settings(), device="cpu")
    assert pipe.recognizer is None and pipe.error
    assert pipe.on_frame(1.0, 1.0, {"1": (np.zeros((20, 3), np.float32), None)}, "kinect_v1_20") == []
    status = pipe.status(1.0)
    assert status.level == ERROR and status.values["dropped_frames"] == "1"
    if kind != "empty":
        assert path in status.message


def _pose(k: int) -> np.ndarray:
    rng = np.random.default_rng(k)
    return (rng.normal(size=(20, 3)) * 0.2 + [0.0, 0.0, 3.0]).astype(np.float32)


@pytest.mark.parametrize(
    ("joints", "layout", "reason"),
    [
        (np.full((20, 3), np.nan, np.float32), "kinect_v1_20", "non_finite"),
        (np.zeros((25, 3), np.float32), "kinect_v1_20", "bad_shape"),
        (np.zeros((20, 3), np.float32), "no_such_layout", "bad_layout"),
    ],
)
def test_frame_status_says_when_no_skeleton_was_usable(bundle, joints, layout, reason):
    pipe = RecognitionPipeline(str(bundle), make_settings(stride_frames=8), device="cpu")
    pipe.on_frame(1.0, 1.0, {"1": (joints, None)}, layout)
    assert pipe.frame_status == (STATUS_INVALID_INPUT, f"no usable skeleton in the frame ({reason} 1)")
    pipe.on_frame(1.1, 1.1, {"1": (_pose(0), None), "2": (joints, None)}, "kinect_v1_20")
    assert pipe.frame_status == (STATUS_OK, "")  # one usable person is enough
    pipe.on_frame(1.2, 1.2, {}, "")
    assert pipe.frame_status == (STATUS_OK, "")  # nobody in view is valid input


def test_drop_rate_is_judged_over_a_sliding_window(bundle):
    """60 all-NaN frames after 1,900 good ones: WARN (over the node's whole life it would be 3 %)."""
    pipe = RecognitionPipeline(str(bundle), make_settings(stride_frames=8), device="cpu", drop_window_s=5.0)
    for k in range(1900):
        pipe.on_frame(k / 30, k / 30, {"1": (_pose(k), None)}, "kinect_v1_20")
    t = 1900 / 30
    assert pipe.status(t).level == OK
    bad = np.full((20, 3), np.nan, np.float32)
    for k in range(60):
        pipe.on_frame(t + k / 30, t + k / 30, {"1": (bad, None)}, "kinect_v1_20")
    status = pipe.status(t + 2.0 - 0.5 / 30)  # the window holds 90 good and the 60 bad frames
    assert status.level == WARN
    assert status.message == "dropping 60 of 150 frames in the last 5 s (non_finite 60)"
    assert status.values["window_drop_rate"] == "0.400" and status.values["dropped_frames"] == "60"
    assert status.values["received_frames"] == "1960"
    # good frames again: the bad burst leaves the window
    for k in range(200):
        tk = t + 2.0 + k / 30
        pipe.on_frame(tk, tk, {"1": (_pose(k), None)}, "kinect_v1_20")
    assert pipe.status(t + 2.0 + 200 / 30).level == OK


def test_no_model_frames_carry_the_error(tmp_path):
    pipe = RecognitionPipeline(str(tmp_path / "nope"), make_settings(), device="cpu")
    pipe.on_frame(1.0, 1.0, {"1": (_pose(0), None)}, "kinect_v1_20")
    status, message = pipe.frame_status
    assert status == STATUS_ERROR and str(tmp_path / "nope") in message


def test_runtime_settings_change_what_is_published(bundle):
    """score_threshold, stride and smoothing applied while running; a bad value changes nothing."""
    pipe = RecognitionPipeline(str(bundle), make_settings(stride_frames=8, score_threshold=0.0), device="cpu")
    out = [len(pipe.on_frame(k / 30, k / 30, {"1": (_pose(k), None)}, "kinect_v1_20")) for k in range(40)]
    assert sum(out) == 4  # windows at frames 15, 23, 31, 39
    pipe.update_settings(score_threshold=1.0, stride_frames=4, smoothing="majority")
    assert pipe.recognizer.settings.stride_frames == 4 and pipe.recognizer.settings.smoothing == "majority"
    out = [len(pipe.on_frame(k / 30, k / 30, {"1": (_pose(k), None)}, "kinect_v1_20")) for k in range(40, 80)]
    assert sum(out) == 0 and int(pipe.recognizer.stats["windows"]) == 4 + 10  # a window every 4 frames
    with pytest.raises(ValueError, match="stride_frames must be >= 1"):
        pipe.update_settings(stride_frames=0, score_threshold=0.0)
    with pytest.raises(ValueError, match="cannot change while running"):
        pipe.update_settings(device="cuda")
    assert pipe.recognizer.settings.score_threshold == 1.0  # all or nothing
    pipe.update_settings(score_threshold=0.0)
    out = [len(pipe.on_frame(k / 30, k / 30, {"1": (_pose(k), None)}, "kinect_v1_20")) for k in range(80, 88)]
    assert sum(out) == 2


def test_bundle_settings_then_parameters_then_node_fallback(tmp_path):
    """Interface 3: the bundle's recogniser settings apply unless a parameter is given; the node's
    fallback fills only what neither says."""
    chosen = {"stride_frames": 4, "score_threshold": 0.2, "smoothing": "majority"}
    with_settings = make_tiny_bundle(tmp_path / "b", LABELS, fps=30.0, extra={"recognizer": chosen})
    fallback = {"stride_frames": 15, "score_threshold": 0.5, "smoothing": "ema", "smoothing_window": 7}
    pipe = RecognitionPipeline(str(with_settings), given={"top_k": 2}, fallback=fallback)
    s = pipe.recognizer.settings
    assert (s.stride_frames, s.score_threshold, s.smoothing, s.smoothing_window, s.top_k) == (
        4, 0.2, "majority", 7, 2
    )  # fmt: skip
    pipe = RecognitionPipeline(str(with_settings), given={"score_threshold": 0.7}, fallback=fallback)
    assert (pipe.recognizer.settings.score_threshold, pipe.recognizer.settings.stride_frames) == (0.7, 4)
    plain = make_tiny_bundle(tmp_path / "plain", LABELS, fps=30.0)
    s = RecognitionPipeline(str(plain), given={}, fallback=fallback).recognizer.settings
    assert (s.stride_frames, s.score_threshold, s.smoothing) == (15, 0.5, "ema")
    bad = RecognitionPipeline(str(plain), given={"stride_frames": 0}, fallback=fallback)
    assert bad.recognizer is None and "stride_frames must be >= 1" in bad.error


def test_unknown_setting_is_named():
    pytest.importorskip("torch")
    with pytest.raises(ValueError, match=r"unknown recogniser setting\(s\) \['strid'\]"):
        make_settings(strid=3)


@pytest.mark.parametrize(
    ("name", "value", "default", "expected"),
    [
        ("score_threshold", 1, 0.5, 1.0),  # a YAML integer for a float parameter
        ("stride_frames", 8.0, 15, 8),
        ("publish_empty", "false", True, False),
        ("smoothing", "none", "", "none"),  # a real value of a string parameter
        ("camera_info_topic", "none", "", ""),  # `none` types the empty string in a launch argument
        ("table", "None", "", ""),
    ],
)
def test_parameter_values_are_coerced_to_the_default_type(name, value, default, expected):
    from masksem_ros.ros_kit import coerce_parameter

    got = coerce_parameter(name, value, default)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    ("value", "default"), [(0.5, 15), (True, 0.5), ("high", 0.5), ("maybe", True), ([1], ""), (None, 1)]
)
def test_bad_parameter_values_are_refused_by_name(value, default):
    import re

    from masksem_ros.ros_kit import coerce_parameter

    message = f"parameter p={value!r} is not a valid {type(default).__name__}"
    with pytest.raises(ValueError, match=re.escape(message)):
        coerce_parameter("p", value, default)
