"""Node-level faults at the logic level (what the rclpy nodes delegate to): an unloadable bundle, CUDA asked
for on a CPU machine, input that goes silent, a burst faster than inference, a recogniser that throws,
and the collaboration state machine's safe state when recognitions go stale."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from masksem_ros.collaboration import CollaborationStateMachine, CollaborationTable
from masksem_ros.diagnostics import ERROR, OK, STALE, WARN
from masksem_ros.recognition import RecognitionPipeline, make_settings

torch = pytest.importorskip("torch")
LABELS = ["a", "b", "c"]
V = 20


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from masksem_core.model.classifier import ActionClassifier
    from masksem_core.model.config import ModelConfig
    from masksem_core.runtime.bundle import save_bundle

    torch.manual_seed(0)
    cfg = ModelConfig(num_frames=16, num_joints=V, num_persons=1, dim=16, depth=1, heads=2, decoder_dim=16,
                      decoder_depth=0, decoder_heads=2, layout="kinect_v1_20")  # fmt: skip
    model = ActionClassifier(cfg, len(LABELS)).eval()
    return save_bundle(tmp_path_factory.mktemp("b") / "tiny", model, LABELS, "kinect_v1_20", fps=30.0)


def _pose(rng: np.random.Generator) -> np.ndarray:
    return (rng.normal(size=(V, 3)) * 0.2 + [0.0, 0.0, 3.0]).astype(np.float32)


@pytest.mark.parametrize("how", ["missing", "not-a-bundle", "truncated-weights", "yaml-garbage"])
def test_unloadable_bundle_is_an_error_state_not_a_crash(tmp_path: Path, bundle: Path, how: str) -> None:
    path = tmp_path / "broken"
    if how != "missing":
        path.mkdir()
        for f in bundle.iterdir():
            (path / f.name).write_bytes(f.read_bytes())
    if how == "not-a-bundle":
        (path / "bundle.yaml").unlink()
    elif how == "truncated-weights":
        w = path / "weights.safetensors"
        w.write_bytes(w.read_bytes()[: w.stat().st_size // 3])
    elif how == "yaml-garbage":
        (path / "bundle.yaml").write_bytes(b"\xff\x00: [unclosed\n")
    pipe = RecognitionPipeline(str(path), make_settings(), device="cpu")
    rng = np.random.default_rng(0)
    for k in range(50):  # frames keep coming: all counted as dropped, none raises
        assert pipe.on_frame(k / 30, k / 30, {"1": (_pose(rng), None)}, "kinect_v1_20") == []
    status = pipe.status(50 / 30)
    assert status.level == ERROR and str(path) in status.message
    assert status.values["received_frames"] == status.values["dropped_frames"] == "50"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_requested_on_a_cpu_machine_falls_back_to_cpu_with_a_warning(bundle: Path) -> None:
    pipe = RecognitionPipeline(str(bundle), make_settings(device="cuda"), device="cuda")
    assert pipe.recognizer is not None and pipe.error is None
    rng = np.random.default_rng(0)
    for k in range(40):  # it really runs, on the CPU
        pipe.on_frame(k / 30, k / 30, {"1": (_pose(rng), None)}, "kinect_v1_20")
    status = pipe.status(40 / 30)
    assert status.level == WARN and "CUDA is not available" in status.message
    assert status.values["device"] == "cpu"
    assert int(pipe.recognizer.stats["windows"]) > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_fallback_keeps_the_onnxruntime_int8_choice(bundle: Path) -> None:
    """A CPU robot configured for a GPU with backend onnxruntime + int8 still gets the fast CPU path."""
    pytest.importorskip("onnxruntime", reason="onnxruntime (the 'export' extra) is not installed")
    settings = make_settings(device="cuda", backend="onnxruntime", precision="int8", num_threads=1)
    pipe = RecognitionPipeline(str(bundle), settings, device="cuda")
    assert pipe.error is None and pipe.recognizer is not None
    assert (pipe.recognizer.settings.device, pipe.recognizer.settings.precision) == ("cpu", "int8")
    rng = np.random.default_rng(0)
    for k in range(40):
        pipe.on_frame(k / 30, k / 30, {"1": (_pose(rng), None)}, "kinect_v1_20")
    assert int(pipe.recognizer.stats["windows"]) > 0


def test_silent_input_goes_stale_and_tracks_expire(bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import masksem_ros.recognition as recognition

    clock = [1000.0]
    monkeypatch.setattr(recognition.time, "monotonic", lambda: clock[0])
    pipe = RecognitionPipeline(str(bundle), make_settings(track_timeout_s=2.0), stale_after_s=2.0)
    rng = np.random.default_rng(1)
    for k in range(60):
        clock[0] += 1 / 30
        pipe.on_frame(k / 30, k / 30, {p: (_pose(rng), None) for p in ("1", "2")}, "kinect_v1_20")
    assert pipe.status(60 / 30).level == OK and pipe.recognizer.stats["tracks"] == 2
    clock[0] += 1.0  # one second of silence: still within both limits
    assert pipe.expire() == 0 and pipe.status(60 / 30 + 1.0).level == OK
    clock[0] += 1.5  # 2.5 s of silence
    assert pipe.expire() == 2 and pipe.recognizer.stats["tracks"] == 0
    status = pipe.status(60 / 30 + 2.5)
    assert status.level == STALE and status.message == "no skeleton input"


def test_burst_faster_than_inference_keeps_only_the_newest_window(bundle: Path) -> None:
    from masksem_core.runtime.recognizer import StreamingRecognizer

    rec = StreamingRecognizer(str(bundle), make_settings(stride_frames=4))
    rng = np.random.default_rng(2)
    for k in range(16 * 5):  # five windows' worth per person, no poll in between
        for p in range(4):
            assert rec.push(p, k / 30, _pose(rng), None, "kinect_v1_20")
    out = rec.poll()
    assert sorted(r.person_id for r in out) == [0, 1, 2, 3]  # one answer per person, not a backlog
    assert all(r.window_end == pytest.approx(79 / 30) for r in out)  # ... for the newest window
    assert rec.poll() == []
    stats = rec.stats
    assert stats["windows"] == 4 and stats["received"] == stats["used"] == 320


def test_a_recogniser_that_throws_does_not_stop_the_pipeline() -> None:
    class Flaky:
        def __init__(self, *_):
            self.calls = 0
            self.stats = {"received": 0, "dropped": 0}

        def push(self, *_):
            self.stats["received"] += 1

        def poll(self):
            self.calls += 1
            if self.calls % 2:
                raise RuntimeError("CUDA out of memory")
            return [SimpleNamespace(class_index=0, stamp=0.0)]

    pipe = RecognitionPipeline("bundle", make_settings(), factory=Flaky)
    got = [pipe.on_frame(k, k, {"1": (np.zeros((V, 3)), None)}, None) for k in range(6)]
    assert [len(g) for g in got] == [0, 1, 0, 1, 0, 1] and pipe.published == 3


TABLE = CollaborationTable.from_dict(
    {
        "stale_after_s": 1.0,
        "enter_count": 1,
        "safe": {"speed_scale": 0.0, "command": "stop"},
        "default": {"speed_scale": 1.0, "command": "work"},
        "rules": {"a": {"speed_scale": 0.5, "command": "slow"}},
    }
)
event = st.tuples(
    st.floats(0.0, 3.0),  # time since the previous event
    st.floats(-0.5, 3.0),  # age of the recogniser stamp when it arrives
    st.lists(st.sampled_from(["a", "b"]), max_size=2),
    st.booleans(),  # a clock tick instead of a message
)


@settings(max_examples=150, deadline=None)
@given(st.lists(event, max_size=30))
def test_collaboration_is_safe_whenever_fresh_input_is_older_than_the_limit(events: list) -> None:
    sm = CollaborationStateMachine(TABLE)
    now, last_fresh = 0.0, None
    for dt, age, labels, tick in events:
        now += dt
        if tick:
            state = sm.tick(now)
        else:
            actions = [SimpleNamespace(label=lab, score=0.9, person_id="1") for lab in labels]
            state = sm.on_actions(now, now - age, actions)
            if age <= TABLE.stale_after_s:
                last_fresh = now
        if last_fresh is None or now - last_fresh > TABLE.stale_after_s:
            assert state == TABLE.safe, (now, last_fresh, sm.reason)
    assert sm.tick(now + TABLE.stale_after_s + 0.01) == TABLE.safe


update = st.tuples(
    st.floats(0.0, 0.6),  # time since the previous update
    st.floats(-0.2, 1.5),  # age of its stamp when it arrives
    st.sampled_from(["ok", "ok", "ok", "invalid_input", "error", "unknown"]),
    st.lists(st.sampled_from(["a", "b", "no_action"]), max_size=2),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(update, max_size=40))
def test_collaboration_leaves_safe_only_on_fresh_recognitions_after_the_last_error(updates: list) -> None:
    """Whatever the recogniser sends, the robot is out of its safe behaviour only if a fresh, OK update
    with recognitions of people came after the last error (or status-less update)."""
    sm = CollaborationStateMachine(TABLE)
    now, evidence = 0.0, False
    for dt, age, status, labels in updates:
        now += dt
        actions = [SimpleNamespace(label=lab, score=0.9, person_id="1") for lab in labels]
        state = sm.on_actions(now, now - age, actions, status, "why")
        if status in ("error", "unknown"):
            evidence = False
        elif status == "ok" and age <= TABLE.stale_after_s and actions:
            evidence = True
        if not evidence:
            assert state == TABLE.safe, (now, status, sm.reason)
        if status in ("error", "unknown"):
            assert sm.reason == f"recogniser {status}: why"
