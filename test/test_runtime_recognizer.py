"""StreamingRecognizer: window timing, batching, person slots, smoothing, bad input, bounded state."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from masksem_core.config import ConfigError, from_dict
from masksem_core.layouts import NTU25
from masksem_core.model import ActionClassifier, ModelConfig
from masksem_core.runtime.adapters import adapt
from masksem_core.runtime.bundle import Bundle, load_bundle, save_bundle
from masksem_core.runtime.recognizer import RecognizerSettings, StreamingRecognizer, windows_to_clips
from masksem_core.runtime.smoothing import Smoother

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FPS, WINDOW, K = 30.0, 24, 6
LABELS = [f"action{i}" for i in range(K)]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    torch.manual_seed(0)
    model = ActionClassifier(ModelConfig(num_frames=16, dim=32, depth=2, heads=4), K, "finetune").eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so eval-mode batching is really tested
        model.head.norm.running_mean.normal_(0, 0.5)
        model.head.norm.running_var.uniform_(0.5, 2.0)
    path = save_bundle(tmp_path_factory.mktemp("b") / "bundle", model, LABELS, "ntu25", FPS, WINDOW)
    return load_bundle(path)


def pose(t: float, person: int = 0) -> np.ndarray:
    """A person-specific, smoothly moving 25-joint skeleton (metres), standing `person` metres apart."""
    rng = np.random.default_rng(person)
    base = rng.normal(0, 0.1, size=(25, 3)) + np.array([person * 0.8, 0.0, 3.0])
    amp, freq = rng.uniform(0.05, 0.2, size=(25, 3)), rng.uniform(0.3, 1.5)
    return (base + amp * np.sin(2 * np.pi * freq * t + np.arange(75).reshape(25, 3))).astype(np.float32)


def rec_for(bundle, **kw) -> StreamingRecognizer:
    return StreamingRecognizer(bundle, RecognizerSettings(**{"stride_frames": 6, **kw}))


def test_windows_are_emitted_exactly_when_due(bundle):
    rec = rec_for(bundle, partner="none")
    emitted = []
    for k in range(60):
        assert rec.push("p", 100.0 + k / FPS, pose(k / FPS))
        for r in rec.poll():
            emitted.append((k, r))
    assert [k for k, _ in emitted] == [23, 29, 35, 41, 47, 53, 59]
    for k, r in emitted:
        assert r.person_id == "p" and r.stamp == pytest.approx(100.0 + k / FPS)
        assert r.window_end == pytest.approx(100.0 + k / FPS)
        assert r.window_start == pytest.approx(r.window_end - (WINDOW - 1) / FPS)
        assert r.label == LABELS[r.class_index] == r.topk_labels[0]
        assert r.score == pytest.approx(r.topk_scores[0]) and len(r.topk_labels) == 5
        assert r.latency_ms >= 0
    assert rec.stats["windows"] == 7 and rec.stats["latency_ms_p50"] >= 0


def test_a_late_poll_emits_only_the_newest_window(bundle):
    rec = rec_for(bundle)
    for k in range(60):
        rec.push(1, k / FPS, pose(k / FPS))
    (r,) = rec.poll()
    assert r.window_end == pytest.approx(59 / FPS)
    assert rec.poll() == []


def test_uneven_stream_windows_span_the_model_frame_rate(bundle):
    rec = rec_for(bundle, partner="none", max_gap_s=0.2)
    rng = np.random.default_rng(3)
    t, results = 0.0, []
    for _ in range(150):
        t += rng.uniform(0.01, 0.07)
        rec.push(7, t, pose(t))
        results += rec.poll()
    assert results
    for r in results:
        assert r.window_end - r.window_start == pytest.approx((WINDOW - 1) / FPS)
        assert r.window_end <= r.stamp < r.window_end + 1 / FPS
    assert rec.stats["events"]["gap_interpolated"] > 0 and rec.stats["dropped"] == 0


def test_batching_several_people_gives_the_same_outputs_as_one_at_a_time(bundle):
    people = [0, 3, 6, 9]  # 2.4 m apart: no partners
    together = rec_for(bundle, partner_max_distance_m=1.0)
    alone = {p: rec_for(bundle, partner_max_distance_m=1.0) for p in people}
    got, want = [], []
    for k in range(40):
        for p in people:
            together.push(p, k / FPS, pose(k / FPS, p))
            alone[p].push(p, k / FPS, pose(k / FPS, p))
        got += together.poll()
        for p in people:
            want += alone[p].poll()
    assert together.stats["forward_passes"] == len(got) // len(people)  # one pass per round of windows
    key = lambda r: (r.window_end, str(r.person_id))  # noqa: E731
    got, want = sorted(got, key=key), sorted(want, key=key)
    assert len(got) == len(want) == 3 * len(people)
    for a, b in zip(got, want):
        assert (a.person_id, a.class_index, a.topk_labels) == (b.person_id, b.class_index, b.topk_labels)
        np.testing.assert_allclose(a.topk_scores, b.topk_scores, atol=1e-5)


def mamp_valid_crop_resize(data: np.ndarray, valid: int, p: float, window: int) -> np.ndarray:
    """The reference feeder's test-time transform (MAMP tools.valid_crop_resize), (C, T, V, M)."""
    c, _, v, m = data.shape
    bias = int((1 - p) * valid / 2)
    cropped = torch.tensor(data[:, bias : valid - bias], dtype=torch.float)
    length = cropped.shape[1]
    x = cropped.permute(0, 2, 3, 1).contiguous().view(c * v * m, length)[None, None]
    x = F.interpolate(x, size=(c * v * m, window), mode="bilinear", align_corners=False).squeeze()
    return x.contiguous().view(c, v, m, window).permute(0, 3, 1, 2).contiguous().numpy()


def test_clips_are_centred_cropped_and_resized_like_the_training_feeder():
    rng = np.random.default_rng(5)
    windows = rng.normal(size=(3, 2, 40, 25, 3)).astype(np.float32)
    windows[1, 1] = 0.0  # absent second person
    clips = windows_to_clips(windows, centre_joint=1, clip_length=16, crop_ratio=0.9)
    assert clips.shape == (3, 3, 16, 25, 2)
    for i in range(3):
        centred = windows[i] - windows[i, 0, 0, 1]
        centred[~np.any(windows[i] != 0, axis=(1, 2, 3))] = 0
        ref = mamp_valid_crop_resize(centred.transpose(3, 1, 2, 0), 40, 0.9, 16)
        np.testing.assert_allclose(clips[i].numpy(), ref, atol=1e-5)
    assert not clips[1, ..., 1].any()
    uncropped = windows_to_clips(windows, 1, 40, 1.0)
    np.testing.assert_allclose(uncropped[0, :, 0, 1, 0].numpy(), 0.0, atol=1e-6)  # origin


def test_second_person_slot_is_the_nearest_track(bundle):
    rec = rec_for(bundle, partner_max_distance_m=1.5)
    for k in range(24):
        t = k / FPS
        rec.push("a", t, pose(t, 0))
        rec.push("b", t + 0.01, pose(t + 0.01, 1))  # 0.8 m away, stamps offset from a's
        rec.push("c", t, pose(t, 5))  # 4 m away: never a partner
    captured = {}
    predict = rec.predict
    rec.predict = lambda w: captured.setdefault("w", w) is not None and predict(w)
    results = {r.person_id: r for r in rec.poll()}
    w = captured["w"]  # (3, M, W, V, 3) in push order a, b, c
    stamps = np.arange(WINDOW) / FPS + 0.01  # b's grid; a's partner slot is b sampled on a's grid
    np.testing.assert_allclose(w[1, 0], np.stack([pose(s, 1) for s in stamps]), atol=1e-4)
    np.testing.assert_allclose(
        w[0, 1, 1:], w[1, 0, :-1] + (w[1, 0, 1:] - w[1, 0, :-1]) * (1 - 0.3), atol=1e-5
    )
    np.testing.assert_allclose(w[1, 1, :-1], w[0, 0, :-1] * 0.7 + w[0, 0, 1:] * 0.3, atol=1e-5)
    assert not w[2, 1].any()
    # The slot changes the answer: "a" with its partner differs from "a" alone.
    alone = rec_for(bundle, partner="none")
    for k in range(24):
        alone.push("a", k / FPS, pose(k / FPS, 0))
    (solo,) = alone.poll()
    assert not np.allclose(solo.topk_scores, results["a"].topk_scores, atol=1e-4)


def test_real_ntu_two_person_sample_fills_both_slots():
    """S001C003P008R002A058 (shaking hands): two tracks streamed frame by frame at 30 Hz."""
    f = DATA / "ntu-samples" / "expected" / "S001C003P008R002A058.raw_bodies.npz"
    if not f.exists():
        pytest.skip(f"real NTU sample not found: {f}")
    with np.load(f) as z:
        bodies = [z["body0_joints"], z["body1_joints"]]
    torch.manual_seed(1)
    model = ActionClassifier(ModelConfig(num_frames=16, dim=32, depth=2, heads=4), K, "linear").eval()
    b = Bundle(model, LABELS, NTU25, 16, FPS, 64, {"centre_joint": 1, "crop_ratio": 0.95})
    rec = StreamingRecognizer(b, RecognizerSettings(stride_frames=100))
    for k in range(64):
        for pid in (0, 1):
            rec.push(pid, k / FPS, bodies[pid][k])
    results = {r.person_id: r for r in rec.poll()}
    assert set(results) == {0, 1}
    clip = np.stack([bodies[0][:64], bodies[1][:64]])[None]  # slot 0 = actor 1, as NTU prepares it
    with torch.no_grad():
        want = torch.softmax(model(windows_to_clips(clip, 1, 16, 0.95)), -1)[0].numpy()
    np.testing.assert_allclose(sorted(results[0].topk_scores), sorted(np.sort(want)[-5:]), atol=1e-5)


def test_score_threshold_answers_unknown(bundle):
    rec = rec_for(bundle, score_threshold=1.01, unknown_label="?")
    for k in range(24):
        rec.push(1, k / FPS, pose(k / FPS))
    (r,) = rec.poll()
    assert r.label == "?" and r.class_index == -1 and r.topk_labels[0] in LABELS


def test_smoothers():
    ema = Smoother("ema", alpha=0.5)
    ema(np.array([1.0, 0.0]))
    probs, cls = ema(np.array([0.0, 1.0]))
    np.testing.assert_allclose(probs, [0.5, 0.5])
    probs, cls = ema(np.array([0.0, 1.0]))
    assert cls == 1 and probs[1] == pytest.approx(0.75)
    maj = Smoother("majority", window=3)
    seq = [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.1, 0.9], [0.3, 0.7]]
    winners = [maj(np.array(p))[1] for p in seq]
    assert winners == [0, 1, 0, 1, 1]  # ties go to the most recent winner; votes over the last 3
    probs, _ = maj(np.array([0.5, 0.5]))
    np.testing.assert_allclose(probs, np.mean([[0.1, 0.9], [0.3, 0.7], [0.5, 0.5]], axis=0))
    with pytest.raises(ValueError):
        Smoother("median")


def test_smoothing_is_per_person_and_reset_by_a_gap(bundle):
    rec = rec_for(bundle, smoothing="ema", smoothing_alpha=0.2, partner="none", top_k=K)
    raw = rec_for(bundle, partner="none", top_k=K)
    out, ref = [], []
    for k in range(40):
        for r in (rec, raw):
            r.push(1, k / FPS, pose(k / FPS, 2))
        out += rec.poll()
        ref += raw.poll()
    np.testing.assert_allclose(out[0].topk_scores, ref[0].topk_scores, atol=1e-6)  # first window: no history
    p_prev = {lab: s for lab, s in zip(ref[0].topk_labels, ref[0].topk_scores)}
    p_new = {lab: s for lab, s in zip(ref[1].topk_labels, ref[1].topk_scores)}
    lab = out[1].topk_labels[0]
    assert out[1].topk_scores[0] == pytest.approx(0.2 * p_new[lab] + 0.8 * p_prev[lab], abs=1e-6)
    assert rec.smoothers[1]._ema is not None
    rec.push(1, 2.5, pose(2.5, 2))  # a 1.2 s gap (> max_gap_s, < timeout): track and smoothing restart
    assert rec.smoothers[1]._ema is None and rec.stats["events"]["gap_reset"] == 1


def test_every_bad_input_is_counted_and_never_raises(bundle):
    rec = rec_for(bundle, max_persons=2, track_timeout_s=2.0, max_gap_s=0.5, min_confidence=0.2)
    good = pose(0.0)
    assert rec.push(1, 0.0, good)
    cases = [
        ((1, 0.05, np.full((25, 3), np.nan)), "non_finite"),
        ((1, 0.05, np.where(np.eye(25, 3) > 0, np.inf, good)), "non_finite"),
        ((1, 0.05, good[:20]), "bad_shape"),
        ((1, 0.05, "not joints"), "bad_shape"),
        ((1, 0.05, None), "bad_shape"),
        ((1, 0.05, good, np.ones(3)), "bad_shape"),
        ((1, 0.05, good, np.full(25, 0.1)), "low_confidence"),
        ((1, float("inf"), good), "bad_stamp"),
        ((1, None, good), "bad_stamp"),
        ((1, 0.0, good), "repeated_stamp"),
        ((1, -0.5, good), "backwards_stamp"),
        (([1], 0.05, good), "bad_person_id"),
        ((1, 0.05, good, None, "openpose18"), "bad_layout"),
        ((1, 0.05, np.zeros((25, 3)), None, "mediapipe33"), "bad_shape"),
    ]
    for args, reason in cases:
        before = rec.stats["dropped_by_reason"][reason]
        assert rec.push(*args) is False, reason
        assert rec.stats["dropped_by_reason"][reason] == before + 1, reason
    assert rec.push(2, 0.05, good)
    assert rec.push(3, 0.05, good) is False and rec.stats["dropped_by_reason"]["too_many_persons"] == 1
    # Person 1 vanishes for 1 s (> max_gap) and returns: same id, fresh track.
    assert rec.push(1, 1.0, good) and rec.stats["events"]["gap_reset"] == 1
    # Person 2 is not seen for more than the timeout: its track is dropped, making room for person 3.
    assert rec.push(1, 2.5, good) and rec.stats["events"]["timeout"] == 1
    assert rec.push(3, 2.5, good) and set(rec.tracks) == {1, 3}
    # A clock that jumps back (looped bag) restarts everything instead of stalling.
    assert rec.push(1, -100.0, good)
    assert rec.stats["events"]["timeout"] == 3 and set(rec.tracks) == {1}
    s = rec.stats
    assert s["received"] == s["used"] + s["dropped"]
    assert rec.poll() == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pid=st.one_of(st.integers(), st.text(max_size=3), st.none(), st.lists(st.integers(), max_size=2)),
    stamp=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.text(max_size=3)),
    joints=st.one_of(
        st.lists(
            st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=3, max_size=3), max_size=34
        ),
        st.text(max_size=5),
        st.none(),
    ),
    layout=st.sampled_from([None, "ntu25", "mediapipe33", "kinect_v1_20", "bogus", ""]),
)
def test_push_never_raises_on_arbitrary_input(bundle, pid, stamp, joints, layout):
    rec = rec_for(bundle)
    rec.push(pid, stamp, joints, None, layout)
    rec.poll()
    s = rec.stats
    assert s["received"] == 1 and s["used"] + s["dropped"] == 1


def test_other_layouts_are_adapted(bundle):
    rec = rec_for(bundle, partner="none")
    mp = np.random.default_rng(0).normal(0, 0.3, size=(33, 3)).astype(np.float32)
    for k in range(24):
        assert rec.push("m", k / FPS, mp + 0.01 * k, np.ones(33), layout="mediapipe33")
    (r,) = rec.poll()
    direct = rec_for(bundle, partner="none")
    for k in range(24):
        direct.push("m", k / FPS, adapt(mp + 0.01 * k, "mediapipe33", "ntu25"))
    (d,) = direct.poll()
    np.testing.assert_allclose(r.topk_scores, d.topk_scores, atol=1e-6)


def test_state_stays_bounded_over_many_people_and_windows(bundle):
    import gc
    import tracemalloc

    rec = rec_for(bundle, max_persons=3, track_timeout_s=0.3, smoothing="majority")
    n_windows, sizes = 0, []
    tracemalloc.start()
    for k in range(2400):  # 80 s; a new person id every second, each seen for 1.5 s
        t = k / FPS
        for pid in {k // 30, max(k // 30 - 1, 0)}:
            if (k - pid * 30) < 45:
                rec.push(pid, t, pose(t, pid % 3))
        if k % 15 == 0:
            n_windows += len(rec.poll())
        if k in (1200, 2399):  # after the latency history is full-ish vs at the end
            gc.collect()
            sizes.append(tracemalloc.get_traced_memory()[0])
    tracemalloc.stop()
    s = rec.stats
    assert len(rec.tracks) <= 3 and len(rec.smoothers) == len(rec.tracks)
    assert len(rec._latencies) <= 1000 and n_windows > 60
    assert s["events"]["timeout"] >= 75 and s["dropped_by_reason"]["too_many_persons"] == 0
    assert sizes[1] - sizes[0] < 100_000, sizes  # no growth with the number of people or windows seen


def test_a_failing_forward_pass_is_counted_not_raised(bundle):
    rec = rec_for(bundle)
    for k in range(24):
        rec.push(1, k / FPS, pose(k / FPS))

    def broken(_):
        raise RuntimeError("CUDA out of memory (simulated)")

    rec.predict = broken
    assert rec.poll() == [] and rec.stats["inference_errors"] == 1


def test_bf16_gives_nearly_the_same_probabilities(bundle):
    ref, low = rec_for(bundle), rec_for(bundle, precision="bf16")
    for k in range(24):
        for r in (ref, low):
            r.push(1, k / FPS, pose(k / FPS))
    (a,), (b,) = ref.poll(), low.poll()
    assert next(low.model.parameters()).dtype == torch.bfloat16
    assert next(ref.model.parameters()).dtype == torch.float32  # the shared bundle model is not cast
    pa = dict(zip(a.topk_labels, a.topk_scores))
    for lab, score in zip(b.topk_labels, b.topk_scores):
        if lab in pa:
            assert abs(pa[lab] - score) < 0.05


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"stride_frames": 0}, "stride_frames"),
        ({"smoothing": "median"}, "smoothing"),
        ({"precision": "int4"}, "precision"),
        ({"partner": "all"}, "partner"),
        ({"max_gap_s": 0}, "max_gap_s"),
        ({"smoothing_alpha": 1.5}, "smoothing_alpha"),
        ({"backend": "tensorrt"}, "backend"),
        ({"backend": "onnxruntime", "precision": "bf16"}, "precision"),
    ],
)
def test_bad_settings_fail_at_construction_naming_the_field(bundle, bad, match):
    with pytest.raises(ConfigError, match=f"recognizer.{match}"):
        StreamingRecognizer(bundle, RecognizerSettings(**bad))


def test_settings_load_from_a_mapping_like_the_node_parameters():
    s = from_dict(RecognizerSettings, {"stride_frames": 10, "smoothing": "majority", "precision": "bf16"})
    assert (s.stride_frames, s.smoothing, s.precision) == (10, "majority", "bf16")
    with pytest.raises(ConfigError, match="strid"):
        from_dict(RecognizerSettings, {"strid": 3})


def test_push_and_poll_from_different_threads(bundle):
    """ROS executors may call push() and poll() from different threads."""
    import threading

    # Threads push 4 s of stamps each at their own pace; all stamps share one clock, so the timeout must
    # cover how far the pushers can drift apart (a stamp > track_timeout_s away expires other tracks).
    rec = rec_for(bundle, stride_frames=3, track_timeout_s=10.0)
    results: list = []
    stop = threading.Event()

    def poller():
        while not stop.is_set():
            results.extend(rec.poll())

    def pusher(pid: int):
        for k in range(120):
            rec.push(pid, k / FPS, pose(k / FPS, pid))

    threads = [threading.Thread(target=pusher, args=(p,)) for p in (0, 1, 2)]
    poll_thread = threading.Thread(target=poller)
    poll_thread.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    poll_thread.join()
    results.extend(rec.poll())
    s = rec.stats
    assert s["received"] == s["used"] == 360 and s["dropped"] == 0
    assert {r.person_id for r in results} == {0, 1, 2} and s["windows"] == len(results)


def test_streamed_real_clips_match_the_training_feeder_at_test_time():
    """NW-UCLA clips streamed frame by frame give the probabilities of the offline test-time pipeline
    (masksem_core.data: centre_clip when preparing, crop_and_resize(p_range=None) when feeding)."""
    from masksem_core.data.augment import crop_and_resize
    from masksem_core.data.centre import centre_clip
    from masksem_core.layouts import KINECT_V1_20

    files = sorted((DATA / "nw-ucla" / "all_sqe").glob("a0*_s01_e00_v03.json"))[:4]
    if not files:
        pytest.skip(f"NW-UCLA not found under {DATA / 'nw-ucla'}")
    torch.manual_seed(2)
    cfg = ModelConfig(
        num_frames=16, num_joints=20, num_persons=1, dim=32, depth=2, heads=4, layout="kinect_v1_20"
    )
    model = ActionClassifier(cfg, K, "linear").eval()
    for f in files:
        clip = np.asarray(json.loads(f.read_text())["skeletons"], np.float32)  # (T, 20, 3), camera space
        offline_in = centre_clip(clip[:, None], KINECT_V1_20.centre_joint).transpose(3, 0, 2, 1)  # (3,T,V,1)
        offline_in = crop_and_resize(offline_in, len(clip), 16, p_range=None, centre_p=0.95)
        with torch.no_grad():
            want = torch.softmax(model(torch.from_numpy(offline_in)[None]), -1)[0].numpy()
        b = Bundle(model, LABELS, KINECT_V1_20, 16, 30.0, len(clip), {"centre_joint": 1, "crop_ratio": 0.95})
        rec = StreamingRecognizer(b, RecognizerSettings(top_k=K, stride_frames=1000))
        for k, frame in enumerate(clip):
            assert rec.push("x", 5.0 + k / 30.0, frame)
        (r,) = rec.poll()
        got = np.array([r.topk_scores[r.topk_labels.index(lab)] for lab in LABELS])
        np.testing.assert_allclose(got, want, atol=1e-5)
        assert r.class_index == int(want.argmax())


def test_an_internal_failure_in_push_is_counted_not_raised(bundle, monkeypatch, caplog):
    rec = rec_for(bundle)
    rec.push(1, 0.0, pose(0.0))

    def broken(self, stamp, joints):
        raise IndexError("simulated bug")

    monkeypatch.setattr("masksem_core.runtime.tracks.Track.add", broken)
    for k in range(1, 11):
        assert rec.push(1, k / FPS, pose(k / FPS)) is False
    assert rec.stats["dropped_by_reason"]["internal_error"] == 10
    assert sum("recognizer push failed" in r.message for r in caplog.records) == 3  # not one per frame
