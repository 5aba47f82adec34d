"""A dense bundle's segment classifier: a whole-clip classifier of the same actions carried in the bundle
(float16 storage), asked about each running action segment as a whole by the recogniser."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest
import torch

from masksem_core.config import ConfigError
from masksem_core.model import ActionClassifier, ModelConfig
from masksem_core.runtime.bundle import (
    SEGMENT_WEIGHTS_FILE,
    WEIGHTS_FILE,
    BundleError,
    load_bundle,
    save_bundle,
    set_recognizer_settings,
)
from masksem_core.runtime.export import export
from masksem_core.runtime.recognizer import (
    RecognizerSettings,
    StreamingRecognizer,
    mix_segment,
    windows_to_clips,
)
from masksem_core.runtime.segment_frames import FrameHistory
from masksem_core.runtime.tuning import CachedSegments

FPS, T, V = 15.0, 16, 20
LABELS = ["wave", "bow", "no_action"]


def tiny_cfg(**kw) -> ModelConfig:
    return ModelConfig(num_frames=T, num_joints=V, num_persons=1, dim=32, depth=1, heads=2,
                       layout="kinect_v1_20", **kw)  # fmt: skip


def _models(seed: int = 0) -> tuple[ActionClassifier, ActionClassifier]:
    torch.manual_seed(seed)
    dense = ActionClassifier(tiny_cfg(), 3, "finetune", dense=True, background=True, head_hidden=64).eval()
    clip = ActionClassifier(tiny_cfg(), 2, "finetune", head_hidden=64).eval()
    return dense, clip


@pytest.fixture(scope="module")
def seg_bundle(tmp_path_factory):
    dense, clip = _models()
    path = save_bundle(tmp_path_factory.mktemp("s") / "b", dense, LABELS, "kinect_v1_20", FPS, T,
                       {"crop_ratio": 1.0}, None, clip, "float16")  # fmt: skip
    return load_bundle(path), dense, clip


def test_frame_history_hands_back_a_segments_frames_by_stamp_oldest_first_and_wraps():
    h = FrameHistory(capacity=8, slots=1, joints=2)
    window = np.arange(6, dtype=np.float32)[None, :, None, None] * np.ones((1, 6, 2, 3), np.float32)
    h.add(0, window, 10.0 + np.arange(6))
    h.add(3, window + 3, 13.0 + np.arange(6))  # frames 3..8 (the same values where they overlap)
    got = h.between(12.0, 16.0)
    assert got.shape == (1, 5, 2, 3) and got[0, :, 0, 0].tolist() == [2, 3, 4, 5, 6]
    assert h.between(9.0, 18.0)[0, :, 0, 0].tolist() == [1, 2, 3, 4, 5, 6, 7, 8]  # frame 0 was overwritten
    assert h.between(30.0, 40.0).shape[1] == 0
    h.reset()
    assert h.between(0.0, 100.0).shape[1] == 0


def test_a_bundle_carries_its_segment_classifier_in_float16_and_loads_it_in_float32(seg_bundle, tmp_path):
    b, dense, clip = seg_bundle
    assert b.segment_model is not None and b.action_labels == LABELS[:2]
    assert b.meta["weights_dtype"] == "float16"
    assert all(p.dtype == torch.float32 for p in b.segment_model.parameters())
    x = torch.randn(3, 3, T, V, 1) * 0.3
    with torch.no_grad():
        assert torch.allclose(b.segment_model(x), clip(x), atol=2e-2)
        assert torch.allclose(b.model(x), dense(x), atol=2e-2)
    norm = {"crop_ratio": 1.0}
    full = save_bundle(tmp_path / "f32", dense, LABELS, "kinect_v1_20", FPS, T, norm, None, clip)
    half_size = (b.path / WEIGHTS_FILE).stat().st_size + (b.path / SEGMENT_WEIGHTS_FILE).stat().st_size
    full_size = (full / WEIGHTS_FILE).stat().st_size + (full / SEGMENT_WEIGHTS_FILE).stat().st_size
    assert half_size < 0.55 * full_size
    # an archive of the bundle loads the same two models
    archive = tmp_path / "b.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for f in b.path.iterdir():
            tf.add(f, arcname=f"b/{f.name}")
    again = load_bundle(archive)
    with torch.no_grad():
        assert torch.equal(again.segment_model(x), b.segment_model(x))


def test_a_damaged_or_missing_segment_classifier_is_refused_naming_the_file(seg_bundle, tmp_path):
    import shutil

    b, _, _ = seg_bundle
    copy = shutil.copytree(b.path, tmp_path / "c")
    data = bytearray((copy / SEGMENT_WEIGHTS_FILE).read_bytes())
    data[-1] ^= 0xFF
    (copy / SEGMENT_WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(BundleError, match=SEGMENT_WEIGHTS_FILE):
        load_bundle(copy)
    (copy / SEGMENT_WEIGHTS_FILE).unlink()
    with pytest.raises(BundleError, match=f"no {SEGMENT_WEIGHTS_FILE}"):
        load_bundle(copy)


def test_a_segment_classifier_must_classify_the_models_actions_from_whole_clips(tmp_path):
    dense, clip = _models()
    three = ActionClassifier(tiny_cfg(), 3, "finetune", head_hidden=64)
    with pytest.raises(BundleError, match="3 classes, the model 2 actions"):
        save_bundle(tmp_path / "a", dense, LABELS, "kinect_v1_20", FPS, T, None, None, three)
    dense_clip = ActionClassifier(tiny_cfg(), 2, "finetune", dense=True, head_hidden=64)
    with pytest.raises(BundleError, match="whole-clip classifier"):
        save_bundle(tmp_path / "b", dense, LABELS, "kinect_v1_20", FPS, T, None, None, dense_clip)
    plain = ActionClassifier(tiny_cfg(), 2, "finetune", head_hidden=64)
    with pytest.raises(BundleError, match="dense model with a background class"):
        save_bundle(tmp_path / "c", plain, LABELS[:2], "kinect_v1_20", FPS, T, None, None, clip)
    meta = {"labels": LABELS, "layout": "kinect_v1_20", "data": {"fps": FPS}}
    with pytest.raises(BundleError, match="not the model's actions"):
        export(dense, meta, tmp_path / "d", segment=(clip, {"labels": ["bow", "wave"]}))
    with pytest.raises(BundleError, match="30.0 fps"):
        export(dense, meta, tmp_path / "e", segment=(clip, {"labels": LABELS[:2], "data": {"fps": 30.0}}))
    out = export(dense, meta, tmp_path / "f", segment=(clip, {"labels": LABELS[:2], "epoch": 7}))
    assert load_bundle(out).meta["segment_source"] == {"epoch": 7}


def _stub_recognizer(bundle, clip_answer: int, **settings):
    """The real recogniser with stub models: the dense 'model' answers a one-hot of the class each frame
    carries in joint 0's x (one token per frame); the segment classifier always answers `clip_answer` and
    records the segments it was asked about."""
    rec = StreamingRecognizer(bundle, RecognizerSettings(top_k=3, **settings))
    rec.predict = lambda windows: np.eye(len(LABELS))[np.rint(windows[:, 0, :, 0, 0]).astype(np.int64)]
    asked: list[np.ndarray] = []

    def predict_segments(segments):
        asked.extend(segments)
        return np.tile(np.eye(2)[clip_answer], (len(segments), 1))

    rec.predict_segments = predict_segments
    return rec, asked


def _feed(rec, classes: list[int]) -> tuple[list, np.ndarray]:
    """Push the frames (class in joint 0's x) and poll after each; returns the non-empty polls' reports."""
    stamps = 50.0 + np.arange(len(classes)) / FPS
    polls = []
    for k, c in enumerate(classes):
        joints = np.zeros((V, 3), np.float32)
        joints[0, 0] = c
        rec.push("p", stamps[k], joints)
        got = rec.poll()
        if got:
            polls.append(got)
    return polls, stamps


STREAM = [2] * 20 + [0] * 30 + [2] * 24 + [0] * 12 + [2] * 20  # background, "wave" x30, ..., "wave" x12


@pytest.mark.parametrize("weight, expect", [(0.0, "wave"), (0.4, "wave"), (1.0, "bow"), (0.6, "bow")])
def test_running_segments_mix_the_segment_classifiers_answer_on_their_frames(seg_bundle, weight, expect):
    """The dense stub says wave, the segment classifier bow: a settled report of a running action says
    what the mix says once the segment has min_segment_frames, the dense answer before; the last report
    of each action (its retrospective label) is the mix's; provisional reports are mixed the same way."""
    b, _, _ = seg_bundle
    settings = dict(stride_frames=2, lag_frames=4, segments=True, provisional=True, min_segment_frames=6,
                    segment_weight=weight)  # fmt: skip
    rec, asked = _stub_recognizer(b, clip_answer=1, **settings)
    polls, stamps = _feed(rec, STREAM)
    settled = [p[0] for p in polls]
    actions = [r for r in settled if r.label != "no_action"]
    long_enough = [r for r in actions if (r.window_end - r.window_start) * FPS + 1 >= 6 - 1e-6]
    assert long_enough and {r.label for r in long_enough} == {expect}
    assert {r.label for r in actions if r not in long_enough} <= {"wave"}
    for start in (stamps[20], stamps[74]):  # each action's last settled report, the one that stays
        last = [r for r in actions if r.window_start == pytest.approx(start)][-1]
        assert last.label == expect
    provisional = [p[1] for p in polls if len(p) == 2 and p[1].label != "no_action"]
    assert expect in {r.label for r in provisional}
    if weight == 0.0:
        assert not asked  # never asked: no extra cost when unused
        return
    assert asked and all(seg.shape[1] >= 6 for seg in asked)  # never fewer frames than min_segment_frames
    for seg in asked:  # consecutive grid frames of the running action, none of the background around it
        assert (seg[0, :, 0, 0] == 0).all()
    assert max(seg.shape[1] for seg in asked) >= 28  # the first action: (nearly) all its 30 frames


def test_segment_weight_needs_a_segment_classifier_and_segments_and_a_share_in_0_1(seg_bundle, tmp_path):
    b, dense, _ = seg_bundle
    plain = load_bundle(save_bundle(tmp_path / "p", dense, LABELS, "kinect_v1_20", FPS, T))
    with pytest.raises(ConfigError, match="has no segment classifier"):
        StreamingRecognizer(plain, RecognizerSettings(segments=True, segment_weight=0.5))
    with pytest.raises(ConfigError, match="needs segments: true"):
        StreamingRecognizer(b, RecognizerSettings(segment_weight=0.5))
    with pytest.raises(ConfigError, match=r"segment_weight must be in \[0, 1\], got 1.5"):
        StreamingRecognizer(b, RecognizerSettings(segments=True, segment_weight=1.5))
    StreamingRecognizer(plain, RecognizerSettings(segments=True))  # 0: runs without one
    import shutil

    copy = shutil.copytree(b.path, tmp_path / "c")
    set_recognizer_settings(copy, {"segments": True, "segment_weight": 0.5})
    assert RecognizerSettings.from_bundle(load_bundle(copy)).segment_weight == 0.5


def test_the_real_segment_classifier_sees_a_segment_as_evaluate_sees_a_clip(seg_bundle):
    b, _, clip = seg_bundle
    rec = StreamingRecognizer(b, RecognizerSettings(segments=True, segment_weight=1.0))
    rng = np.random.default_rng(0)
    segs = [rng.normal(0, 0.3, (1, n, V, 3)).astype(np.float32) for n in (9, 16, 40)]
    got = rec.predict_segments(segs)
    assert got.shape == (3, 2) and np.allclose(got.sum(1), 1.0)
    with torch.no_grad():  # each segment resized to the classifier's clip length, centred, centre-cropped
        want = [torch.softmax(b.segment_model(windows_to_clips(s[None], b.centre_joint, T, 0.95)), -1)[0]
                for s in segs]  # fmt: skip
    assert np.allclose(got, torch.stack(want).numpy(), atol=1e-6)
    assert rec.stats["segment_passes"] == 1  # one batched pass for all three


def test_mixing_renormalises_the_dense_actions_and_keeps_background_zero():
    dense = np.array([0.2, 0.2, 0.0])  # a segment's dense mean with its background column zeroed
    out = mix_segment(dense, np.array([0.9, 0.1]), 0.5)
    assert np.allclose(out, [0.7, 0.3, 0.0]) and out.sum() == pytest.approx(1.0)
    assert np.allclose(mix_segment(dense, np.array([0.9, 0.1]), 0.0), [0.5, 0.5, 0.0])


def test_the_tuning_cache_asks_the_segment_classifier_once_per_distinct_segment():
    calls = []

    def predict(segments):
        calls.append(len(segments))
        return np.array([[float(s.shape[1]), 0.0] for s in segments])

    cache = CachedSegments(predict)
    a, b = np.zeros((1, 5, V, 3), np.float32), np.ones((1, 7, V, 3), np.float32)
    assert cache([a, b])[:, 0].tolist() == [5.0, 7.0]
    assert cache([b, a, np.zeros((1, 6, V, 3), np.float32)])[:, 0].tolist() == [7.0, 5.0, 6.0]
    assert calls == [2, 1]


@pytest.mark.parametrize("name, value, flag, override, fallback", [
    ("segment_weight", 0.5, "--segment-weight", 1.0, 0.0),
    ("edge_background", 0.2, "--edge-background", 0.5, 1.0),
])  # fmt: skip
def test_replay_and_the_ros_node_take_the_bundles_dense_settings_unless_told_otherwise(
    seg_bundle, tmp_path, name, value, flag, override, fallback
):
    import argparse
    import shutil

    from masksem_core.replay import cli as replay_cli
    from masksem_ros.recognition import RecognitionPipeline
    from masksem_ros.recognizer_node import FALLBACK, FROM_BUNDLE, PARAMETERS, SETTING_NAMES

    b, _, _ = seg_bundle
    copy = shutil.copytree(b.path, tmp_path / "c")
    set_recognizer_settings(copy, {"segments": True, name: value})
    bundle = load_bundle(copy)
    parser = argparse.ArgumentParser()
    replay_cli.add_arguments(parser)
    args = parser.parse_args(["bag", "--bundle", str(copy), "--labels", "x.csv"])
    assert getattr(replay_cli._settings(args, bundle)[0], name) == value  # no flag: what the robot runs
    args = parser.parse_args(["bag", "--bundle", str(copy), "--labels", "x.csv", flag, str(override)])
    assert getattr(replay_cli._settings(args, bundle)[0], name) == override
    # the node: an unset parameter (its sentinel) leaves the bundle's choice, the fallback fills the rest
    assert name in FROM_BUNDLE and name in SETTING_NAMES
    assert PARAMETERS[name] < 0 and FALLBACK[name] == fallback
    pipe = RecognitionPipeline(str(copy), given={"segments": True}, fallback=FALLBACK)
    assert getattr(pipe.recognizer.settings, name) == value
    pipe = RecognitionPipeline(str(b.path), given={"segments": True}, fallback=FALLBACK)
    assert getattr(pipe.recognizer.settings, name) == fallback


def test_replays_second_oracle_is_the_segment_classifier_on_each_interval_cut_exactly(seg_bundle):
    from types import SimpleNamespace

    from masksem_core.replay.oracle import classify_intervals

    b, _, _ = seg_bundle
    rng = np.random.default_rng(3)
    stamps = 10.0 + np.arange(60) / FPS
    joints = rng.normal(0, 0.3, (60, V, 3)).astype(np.float32)
    tracks = {"1": (stamps, joints)}
    cuts = ((0, 20), (25, 59))  # end exclusive, as truth intervals are
    intervals = [SimpleNamespace(start=stamps[a], end=stamps[e], person_id="1") for a, e in cuts]
    got = classify_intervals(b, tracks, intervals, segment=True)
    rec = StreamingRecognizer(b, RecognizerSettings(segments=True, segment_weight=1.0))
    want = rec.predict_segments([joints[None, 0:20], joints[None, 25:59]]).argmax(1)
    assert got == [b.action_labels[i] for i in want]
    assert all(lab in LABELS for lab in classify_intervals(b, tracks, intervals))  # the main model's oracle
