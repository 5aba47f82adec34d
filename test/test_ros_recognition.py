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
    pipe.on_bad_message("mixed layouts")
    status = pipe.status(1.2)
    assert status.values["dropped_frames"] == "3" and status.values["bad_messages"] == "1"
    assert status.level == WARN


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


def test_unknown_setting_is_named():
    pytest.importorskip("torch")
    with pytest.raises(ValueError, match=r"unknown recogniser setting\(s\) \['strid'\]"):
        make_settings(strid=3)
