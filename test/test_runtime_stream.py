"""Stream training and dense recognition: windows with a no-action class, per-token output, online
merging of overlapping windows, spans, settings carried by the bundle, export of dense models."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from masksem_core.config import ConfigError
from masksem_core.data.arrays import write_split_npz
from masksem_core.data.feeder import SkeletonClips
from masksem_core.data.stream import StreamingConfig, StreamWindows, centre_window, data_fps, token_labels
from masksem_core.model import ActionClassifier, ModelConfig
from masksem_core.runtime.bundle import BundleError, load_bundle, save_bundle
from masksem_core.runtime.export import ExportableClassifier, export, onnx_bytes, onnx_max_abs_diff
from masksem_core.runtime.merging import FrameScores, frame_probs
from masksem_core.runtime.recognizer import RecognizerSettings, StreamingRecognizer

FPS, T, V = 15.0, 16, 20
LABELS = ["wave", "bow", "no_action"]


def tiny_cfg(**kw) -> ModelConfig:
    return ModelConfig(num_frames=T, num_joints=V, num_persons=1, dim=32, depth=1, heads=2,
                       layout="kinect_v1_20", **kw)  # fmt: skip


@pytest.fixture(scope="module")
def npz(tmp_path_factory) -> Path:
    """A tiny prepared set: 12 clips of two classes, 10-30 frames, with an fps in the sidecar."""
    rng = np.random.default_rng(0)
    n, pad = 12, 40
    x = np.zeros((n, pad, V * 3), np.float32)
    labels = np.arange(n) % 2
    for i in range(n):
        length = int(rng.integers(10, 31))
        t = np.arange(length)[:, None, None] / FPS
        base = rng.normal(0, 0.2, (1, V, 3))
        wave = 0.3 * np.sin(2 * np.pi * (1.0 + labels[i]) * t) * np.ones((1, V, 3))
        x[i, :length] = (base + wave).reshape(length, V * 3)
    out = tmp_path_factory.mktemp("stream") / "tiny.npz"
    names = {"names": [f"c{i}" for i in range(n)]}
    side = {"layout": "kinect_v1_20", "labels": LABELS[:2], "num_persons": 1, "num_joints": V, "fps": FPS,
            "train": names, "test": names}  # fmt: skip
    write_split_npz(out, x, np.arange(n), np.arange(n), labels, 2, side)
    return out


def test_token_labels_take_the_majority_of_each_token():
    assert token_labels(np.array([0, 0, 0, 2, 2, 2, 1, 1]), 4).tolist() == [0, 0, 2, 1]
    assert token_labels(np.array([2, 2, 2, 1]), 2).tolist() == [2, 1]


def test_stream_windows_mix_actions_background_and_context(npz):
    clips = SkeletonClips(npz, "train", num_frames=T, train=True)
    cfg = StreamingConfig(enabled=True, whole_clip_fraction=0.0)
    ds = StreamWindows(clips, cfg, T // 4, data_fps(str(npz)))
    assert ds.labels == LABELS and ds.num_classes == 3 and ds.fps == FPS
    torch.manual_seed(0)
    seen = np.zeros(3)
    for i in range(60):
        x, y = ds[i % len(ds)]
        assert x.shape == (3, T, V, 1) and y.shape == (T // 4,) and y.dtype == torch.int64
        seen += np.bincount(y.numpy(), minlength=3)
    # background and both actions appear, none dominates completely
    assert (seen > 0).all() and seen.max() / seen.sum() < 0.8


def test_a_window_is_raw_frames_at_the_data_rate_with_per_frame_truth(npz):
    clips = SkeletonClips(npz, "train", num_frames=T, train=False)
    ds = StreamWindows(clips, StreamingConfig(enabled=True, speed=[1.0, 1.0], context_clips=False), 4, FPS)
    frames, tags = ds.window(0, np.random.default_rng(1))
    assert frames.shape == (T, 1, V, 3) and tags.shape == (T,)
    raw = clips.raw_clip(0)[:, :, :, 0].transpose(1, 2, 0)  # (T_pad, V, 3)
    # every action frame in the window is a frame of the clip, unstretched (speed 1)
    action = np.flatnonzero(tags == 0)
    assert action.size > 0
    assert np.abs(frames[action, 0][:, None] - raw[None]).max(axis=(2, 3)).min(axis=1).max() < 1e-5
    centred = centre_window(frames, clips.layout.centre_joint)
    assert np.allclose(centred[0, 0, clips.layout.centre_joint], 0.0)


def test_missing_frame_rate_is_an_error_naming_the_field(tmp_path, npz):
    other = tmp_path / "nofps.npz"
    other.write_bytes(Path(npz).read_bytes())
    side = json.loads(Path(npz).with_suffix(".json").read_text())
    side.pop("fps")
    other.with_suffix(".json").write_text(json.dumps(side))
    with pytest.raises(ConfigError, match="fps"):
        data_fps(str(other))
    assert data_fps(str(other), 12.5) == 12.5


def test_dense_model_gives_per_token_logits_and_clip_scores_without_background():
    torch.manual_seed(0)
    model = ActionClassifier(tiny_cfg(), 3, "finetune", dense=True, background=True).eval()
    x = torch.randn(2, 3, T, V, 1)
    logits = model(x)
    assert logits.shape == (2, T // 4, 3)
    assert torch.allclose(model.clip_logits(x), logits.mean(dim=1)[:, :2])
    # export-friendly twin computes the same numbers, and ONNX Runtime agrees
    assert torch.allclose(ExportableClassifier(model)(x), logits, atol=1e-5)
    assert onnx_max_abs_diff(model, onnx_bytes(model), x) < 1e-4


def test_frame_scores_merge_overlapping_windows():
    scores = FrameScores(8, 2)
    a = np.array([[1.0, 0.0]] * 4)
    b = np.array([[0.0, 1.0]] * 4)
    scores.add(0, a, np.arange(4.0))
    scores.add(2, b, np.arange(2.0, 6.0))
    assert np.allclose(scores.mean(0, 1), [1, 0])
    assert np.allclose(scores.mean(2, 3), [0.5, 0.5])
    assert np.allclose(scores.mean(4, 5), [0, 1])
    scores.add(8, a, np.arange(8.0, 12.0))  # the ring wrapped: frames 8.. replace 0..
    assert np.allclose(scores.mean(8, 9), [1, 0])
    assert frame_probs(np.eye(2), 4).tolist() == [[1, 0], [1, 0], [0, 1], [0, 1]]


@pytest.fixture(scope="module")
def dense_bundle(tmp_path_factory):
    torch.manual_seed(0)
    model = ActionClassifier(tiny_cfg(), 3, "finetune", dense=True, background=True).eval()
    settings = {"window_frames": T, "stride_frames": 4, "lag_frames": 4, "score_threshold": 0.0,
                "smoothing": "none", "smoothing_alpha": 0.5, "smoothing_window": 5}  # fmt: skip
    path = save_bundle(tmp_path_factory.mktemp("d") / "b", model, LABELS, "kinect_v1_20", FPS, T,
                       {"crop_ratio": 1.0}, {"recognizer": settings})  # fmt: skip
    return load_bundle(path)


def test_bundle_carries_dense_background_and_recognizer_settings(dense_bundle):
    b = dense_bundle
    assert b.dense and b.background_label == "no_action" and b.meta["token_frames"] == 4.0
    s = RecognizerSettings.from_bundle(b)
    assert (s.stride_frames, s.lag_frames) == (4, 4)
    s = RecognizerSettings.from_bundle(b, stride_frames=2, score_threshold=None)
    assert (s.stride_frames, s.lag_frames, s.score_threshold) == (2, 4, 0.0)
    with pytest.raises(ConfigError, match="recognizer.strde"):
        RecognizerSettings.from_bundle(b, strde=3)


def test_dense_recognitions_tile_the_stream_with_settled_spans(dense_bundle):
    rec = StreamingRecognizer(dense_bundle)  # settings from the bundle: stride 4, lag 4
    rng = np.random.default_rng(0)
    out = []
    for k in range(60):
        rec.push("p", 10.0 + k / FPS, rng.normal(0, 0.3, (V, 3)).astype(np.float32))
        out.extend(rec.poll())
    assert len(out) == (60 - T) // 4 + 1
    for r in out:
        assert r.label in LABELS and r.stamp - r.window_end == pytest.approx(4 / FPS)
    # consecutive spans follow each other frame by frame: nothing reported twice, nothing skipped
    for a, b in zip(out, out[1:]):
        assert b.window_start == pytest.approx(a.window_end + 1 / FPS)
        assert b.window_end - b.window_start == pytest.approx(3 / FPS)


def test_merged_span_is_the_mean_of_the_windows_that_saw_it(dense_bundle):
    rec = StreamingRecognizer(dense_bundle, RecognizerSettings(stride_frames=4, lag_frames=8, top_k=3))
    rng = np.random.default_rng(1)
    frames = rng.normal(0, 0.3, (40, V, 3)).astype(np.float32)
    out = []
    for k in range(40):
        rec.push("p", k / FPS, frames[k])
        out.extend(rec.poll())
    r = out[-1]  # frames 28..31 (newest 39, lag 8) were seen by the windows ending at 31, 35 and 39
    probs = rec.predict(np.stack([frames[16:32][None], frames[20:36][None], frames[24:40][None]]))
    per = [frame_probs(p, T) for p in probs]
    want = ((per[0][12:16] + per[1][8:12] + per[2][4:8]) / 3).mean(axis=0)
    got = dict(zip(r.topk_labels, r.topk_scores))
    assert np.allclose([got[lab] for lab in LABELS], want, atol=1e-5)


def test_export_of_a_dense_checkpoint_keeps_background_and_onnx_int8_runs(dense_bundle, tmp_path):
    meta = {"labels": LABELS, "layout": "kinect_v1_20", "data": {"fps": FPS, "centre_joint": 1},
            "recognizer": dense_bundle.recognizer}  # fmt: skip
    out = export(dense_bundle.model, meta, tmp_path / "onnx", fmt="onnx-int8")
    b = load_bundle(out)
    assert b.dense and b.background_label == "no_action" and b.crop_ratio == 1.0
    assert b.recognizer["lag_frames"] == 4
    rng = np.random.default_rng(2)
    for backend, precision in (("onnxruntime", "fp32"), ("onnxruntime", "int8")):
        rec = StreamingRecognizer(b, RecognizerSettings.from_bundle(b, backend=backend, precision=precision))
        got = []
        for k in range(30):
            rec.push("p", k / FPS, rng.normal(0, 0.3, (V, 3)).astype(np.float32))
            got.extend(rec.poll())
        assert got and all(r.label in LABELS for r in got)


def test_choosing_settings_on_a_validation_stream_and_writing_them_into_the_bundle(dense_bundle, tmp_path):
    import shutil

    from masksem_core.runtime import tuning
    from masksem_core.runtime.bundle import set_recognizer_settings
    from masksem_core.runtime.recognizer import Recognition

    rng = np.random.default_rng(0)
    clips = [rng.normal(0, 0.3, (int(n), 1, V, 3)).astype(np.float32) for n in (20, 25, 18)]
    (stream,) = tuning.validation_streams(clips, [0, 1, 0], FPS, LABELS[:2], ("hold",), (0,), 3)
    assert all(1.0 - 0.5 / FPS <= g <= 3.0 + 0.5 / FPS for g, _ in stream.gaps)  # masksem stitch's default
    (short,) = tuning.validation_streams(clips, [0, 1, 0], FPS, LABELS[:2], ("hold",), (0,), 3, (0.4, 0.4))
    assert [g for g, _ in short.gaps] == [6 / FPS] * 4  # the gaps asked for, to the frame
    # a perfect recogniser: one recognition per truth interval and gap, spans exactly on them
    perfect = []
    for i in stream.intervals:
        inside = stream.stamps[(stream.stamps >= i.start) & (stream.stamps < i.end)]
        perfect.append(Recognition("1", i.label, 0, 1.0, [], [], inside[0], inside[-1], inside[0], 0.0))
    got = tuning.score_stream(stream, perfect, T / FPS)
    assert got["retro_segments_f1"] == 1.0 and got["retro_frame_accuracy"] == 1.0
    assert got["delay_p50"] == 0.0 and got["missed"] == 0
    # the search runs the real recogniser, then the choice is written into a copy of the bundle
    chosen, rows = tuning.choose(dense_bundle, [stream], {"stride_frames": [2, 4], "lag_frames": [0, 4]},
                                 log=lambda _: None)  # fmt: skip
    assert len(rows) == 4 and set(chosen) == {"stride_frames", "lag_frames"}
    logged = []  # a candidate the recogniser refuses (lag not below the 16-frame window) is skipped, said
    grid = {"stride_frames": [4], "lag_frames": [4, 16]}
    _, rows = tuning.choose(dense_bundle, [stream], grid, log=logged.append)
    assert [r["lag_frames"] for r in rows] == [4]
    assert any("skip" in m and "lag_frames=16 must be below window_frames=16" in m for m in logged)
    copy = shutil.copytree(dense_bundle.path, tmp_path / "b")
    set_recognizer_settings(copy, chosen)
    assert {k: load_bundle(copy).recognizer[k] for k in chosen} == chosen
    with pytest.raises(Exception, match="max_persons"):
        set_recognizer_settings(copy, {"max_persons": 3})


def test_action_segments_relabel_from_all_frames_merge_pauses_and_drop_blips():
    from masksem_core.runtime.merging import ActionSegment

    bg = 2
    act0, act1, back = np.array([0.6, 0.3, 0.1]), np.array([0.1, 0.5, 0.4]), np.array([0.1, 0.1, 0.8])
    seg = ActionSegment(min_frames=4, merge_gap=2)
    assert seg.update(back, 2, 0.0, bg)[1] == 0.0
    p, start = seg.update(act0, 2, 1.0, bg)
    assert start == 1.0 and p[bg] == 0.0 and p.argmax() == 0
    p, start = seg.update(act1, 2, 2.0, bg)  # the running segment: mean of both chunks, span from 1.0
    assert start == 1.0 and np.allclose(p[:2], (act0[:2] + act1[:2]) / 2)
    p, start = seg.update(back, 2, 3.0, bg)  # a pause of 2 frames ...
    assert start == 3.0 and p.argmax() == bg
    p, start = seg.update(act0, 2, 4.0, bg)  # ... then the same action goes on: one segment from 1.0
    assert start == 1.0 and not seg.gap
    seg.update(back, 2, 5.0, bg)
    seg.update(back, 2, 6.0, bg)
    p, start = seg.update(act1, 2, 7.0, bg)  # after a long pause: a new segment ...
    assert start == 7.0
    p, start = seg.update(back, 2, 8.0, bg)  # ... of 2 frames < 4: reported again as background
    assert start == 7.0 and p.argmax() == bg


REPO = Path(__file__).resolve().parents[1]


def test_shipped_bundle_is_small_stream_trained_and_the_robot_config_agrees_with_it():
    import yaml

    path = REPO / "models" / "nwucla_xview"
    size = sum(f.stat().st_size for f in path.iterdir())
    assert size < 10 * 2**20, f"{path} is {size / 2**20:.1f} MiB: too big for git"
    b = load_bundle(path)
    assert b.dense and b.background_label == "no_action" and len(b.labels) == 11 and b.fps == 15.0
    node = yaml.safe_load((REPO / "config" / "recognizer.yaml").read_text())["masksem_recognizer"]
    params = node["ros__parameters"]
    for key, value in b.recognizer.items():
        if key in params:
            assert params[key] == value, f"config/recognizer.yaml {key}={params[key]}, the bundle {value}"
    assert {"stride_frames", "lag_frames", "segments", "score_threshold", "smoothing"} <= set(params)


def test_stream_windows_on_real_nwucla_read_the_sidecar_frame_rate(nwucla_npz):
    clips = SkeletonClips(nwucla_npz, "train", num_frames=32, train=True)
    from masksem_core.data.stream import stream_windows

    ds = stream_windows(clips, StreamingConfig(enabled=True), patch_len=4)
    assert ds.fps == 15.0 and ds.token_frames == 4.0 and ds.labels[-1] == "no_action"
    torch.manual_seed(0)
    tokens = torch.stack([ds[i][1] for i in range(0, len(ds), 50)])
    assert (tokens == 10).any() and (tokens < 10).any()


def _labelled_stream_recognizer(bundle, **settings):
    """The real recogniser with a stub model whose per-frame output is known: each grid frame carries its
    true class in joint 0's x coordinate, and the 'model' answers a one-hot of it for every frame (one
    token per frame), so a report's probabilities are exactly the class shares of the frames it covers."""
    rec = StreamingRecognizer(bundle, RecognizerSettings(top_k=3, **settings))

    def predict(windows: np.ndarray) -> np.ndarray:
        classes = np.rint(windows[:, 0, :, 0, 0]).astype(np.int64)  # (N, W)
        return np.eye(len(LABELS))[classes]  # (N, L_t = W, K)

    rec.predict = predict
    return rec


def _truth(k: int) -> int:
    """Class of global frame k: blocks of 7 frames, so spans straddle class changes."""
    return (k // 7) % len(LABELS)


@pytest.mark.parametrize(
    "stride, lag, poll_every",
    [(8, 10, 1), (12, 8, 1), (4, 15, 1), (16, 0, 1), (16, 15, 1), (1, 0, 1), (5, 13, 1), (4, 4, 1),
     (4, 10, 9), (8, 12, 5)],  # fmt: skip
)
def test_every_frame_is_reported_once_with_its_labels_whatever_lag_and_stride(dense_bundle, stride, lag,
                                                                               poll_every):  # fmt: skip
    """lag + stride > window (16 here) used to skip lag + stride - window frames per report; late polls
    (every `poll_every` frames) too. After a track restarts (a gap), reporting starts afresh."""
    rec = _labelled_stream_recognizer(dense_bundle, stride_frames=stride, lag_frames=lag)
    n, gap_at = 90, 50  # a 1 s hole after frame 49: the track restarts at frame 50
    stamps = np.array([k / FPS + (1.0 if k >= gap_at else 0.0) for k in range(n)])
    out = []
    for k in range(n):
        joints = np.zeros((V, 3), np.float32)
        joints[0, 0] = _truth(k)
        rec.push("p", 100.0 + stamps[k], joints)
        if k % poll_every == poll_every - 1 or k == gap_at - 1:
            out.extend(rec.poll())
    assert rec.stats["events"]["gap_reset"] == 1
    covered = np.zeros(n, np.int64)
    for r in out:
        inside = (100.0 + stamps >= r.window_start - 1e-6) & (100.0 + stamps <= r.window_end + 1e-6)
        ks = np.flatnonzero(inside)
        assert ks.size and ks[-1] - ks[0] + 1 == ks.size  # a span is consecutive frames of one track
        covered[ks] += 1
        share = np.bincount([_truth(k) for k in ks], minlength=len(LABELS)) / ks.size
        got = dict(zip(r.topk_labels, r.topk_scores))
        assert np.allclose([got[lab] for lab in LABELS], share), (r, ks)
        assert r.label == LABELS[int(np.argmax(share))]
    # each track piece: every frame from its first window's (run at its first poll) on, exactly once, up
    # to the last settled one (`lag` behind the newest frame of the last window run)
    polled = [k for k in range(n) if k % poll_every == poll_every - 1 or k == gap_at - 1]
    for lo, hi in ((0, gap_at), (gap_at, n)):
        first_poll = min(k for k in polled if k >= lo + T - 1)
        last_poll = max(k for k in polled if k < hi)
        piece = covered[lo:hi]
        assert piece.max() == 1, f"frames reported twice: {np.flatnonzero(piece > 1) + lo}"
        got = np.flatnonzero(piece) + lo
        assert got[0] == first_poll - T + 1 and (np.diff(got) == 1).all(), f"frames reported: {got}"
        assert last_poll - lag - stride - poll_every < got[-1] <= last_poll - lag  # the last window run


@pytest.mark.parametrize("stride, lag, latency", [(4, 8, 0), (4, 8, 3), (2, 12, 12), (8, 10, 6), (1, 5, 5)])
def test_latency_frames_labels_each_settled_frame_with_the_answer_for_a_later_frame(dense_bundle, stride, lag,
                                                                                    latency):  # fmt: skip
    """latency_frames d: a settled report of frames k0..k1 carries the merged answers for frames k0 + d..
    k1 + d (a causal model answers late), still for every frame once and with the frames' own stamps."""
    rec = _labelled_stream_recognizer(
        dense_bundle, stride_frames=stride, lag_frames=lag, latency_frames=latency
    )
    n = 80
    stamps = 100.0 + np.arange(n) / FPS
    out = []
    for k in range(n):
        joints = np.zeros((V, 3), np.float32)
        joints[0, 0] = _truth(k)
        rec.push("p", stamps[k], joints)
        out.extend(rec.poll())
    covered = np.zeros(n, np.int64)
    for r in out:
        ks = np.flatnonzero((stamps >= r.window_start - 1e-6) & (stamps <= r.window_end + 1e-6))
        covered[ks] += 1
        share = np.bincount([_truth(k + latency) for k in ks], minlength=len(LABELS)) / ks.size
        got = dict(zip(r.topk_labels, r.topk_scores))
        assert np.allclose([got[lab] for lab in LABELS], share), (r, ks)
    assert covered.max() == 1 and covered[T - 1 : n - lag - stride].min() == 1


@pytest.mark.parametrize("bias", [0.0, np.log(3.0), -np.log(3.0)])
def test_background_bias_shifts_no_action_log_odds_in_settled_and_provisional_reports(dense_bundle, bias):
    """Frames alternate wave / no_action, so each 2-frame report holds one of each (0.5 / 0.5): with the
    bias b no_action gets e^b / (1 + e^b) of it, in the settled and the provisional reports alike."""
    rec = _labelled_stream_recognizer(
        dense_bundle, stride_frames=2, lag_frames=4, provisional=True, background_bias=float(bias)
    )
    out = []
    for k in range(40):
        joints = np.zeros((V, 3), np.float32)
        joints[0, 0] = 0 if k % 2 == 0 else LABELS.index("no_action")
        rec.push("p", 100.0 + k / FPS, joints)
        out.extend(rec.poll())
    want = np.exp(bias) / (1.0 + np.exp(bias))
    two_frame = [r for r in out if abs(r.window_end - r.window_start - 1 / FPS) < 1e-6]
    assert {r.label for r in two_frame} == {"no_action" if bias > 0 else "wave"} or bias == 0.0
    assert len({False, True} & {r.stamp - r.window_end > 1e-6 for r in two_frame}) == 2  # settled and now
    for r in two_frame:
        got = dict(zip(r.topk_labels, r.topk_scores))
        assert got["no_action"] == pytest.approx(want) and got["wave"] == pytest.approx(1 - want)


def test_latency_beyond_the_lag_is_refused_naming_both(dense_bundle):
    with pytest.raises(ConfigError, match=r"latency_frames must be in \[0, lag_frames=4\].*got 5"):
        StreamingRecognizer(dense_bundle, RecognizerSettings(lag_frames=4, latency_frames=5))
    rec = StreamingRecognizer(dense_bundle, RecognizerSettings(lag_frames=4, latency_frames=4))
    with pytest.raises(ConfigError, match="latency_frames"):
        rec.update_settings(lag_frames=2)
    with pytest.raises(ConfigError, match="background_bias must be within"):
        rec.update_settings(background_bias=float("nan"))
    assert (rec.settings.lag_frames, rec.settings.latency_frames) == (4, 4)


def test_dense_settings_that_cannot_settle_every_frame_are_refused_naming_the_values(dense_bundle):
    with pytest.raises(ConfigError, match="lag_frames=16 must be below window_frames=16"):
        StreamingRecognizer(dense_bundle, RecognizerSettings(lag_frames=16))
    with pytest.raises(ConfigError, match="stride_frames=17 must be <= window_frames=16"):
        StreamingRecognizer(dense_bundle, RecognizerSettings(stride_frames=17))
    rec = StreamingRecognizer(dense_bundle, RecognizerSettings(stride_frames=16, lag_frames=15))
    with pytest.raises(ConfigError, match="lag_frames=20"):
        rec.update_settings(lag_frames=20)
    assert rec.settings.lag_frames == 15


def test_the_chooser_keeps_settings_that_beat_background_only_whenever_any_does():
    from masksem_core.runtime.tuning import choice_pool

    def row(f1, acc, delay=0.5, missed=0.0):
        return {"retro_segments_f1": f1, "retro_frame_accuracy": acc, "frame_accuracy": acc,
                "background_share": 0.6, "delay_p50": delay, "missed_fraction": missed}  # fmt: skip

    fast_bg, fast_good, slow_good = row(0.7, 0.55), row(0.4, 0.65), row(0.5, 0.7, delay=2.0)
    assert choice_pool([fast_bg, fast_good, slow_good], 1.0, 0.1, log=lambda _: None) == [fast_good]
    logged = []  # none within the limits beats background: the limits give way, background does not
    assert choice_pool([fast_bg, slow_good], 1.0, 0.1, log=logged.append) == [slow_good]
    assert "beating background" in logged[0]
    logged = []  # nothing beats background: the limits, then segment F1, as before
    slow_bg = row(0.9, 0.5, delay=3.0)
    assert choice_pool([fast_bg, slow_bg], 1.0, 0.1, log=logged.append) == [fast_bg]
    assert choice_pool([slow_bg], 1.0, 0.1, log=logged.append) == [slow_bg]
    assert "beats background-only" in logged[0]


def test_a_causal_dense_model_never_uses_future_frames_and_exports_the_same_function(tmp_path):
    """streaming.causal: token j's logits depend only on frames up to the end of token j, in torch, in the
    export twin and in ONNX Runtime; a bidirectional model's early tokens do change with the future."""
    torch.manual_seed(0)
    causal = ActionClassifier(tiny_cfg(), 3, "finetune", dense=True, background=True, causal=True).eval()
    both = ActionClassifier(tiny_cfg(), 3, "finetune", dense=True, background=True).eval()
    x = torch.randn(2, 3, T, V, 1)
    later = x.clone()
    later[:, :, 8:] = torch.randn(2, 3, T - 8, V, 1)  # frames 8.. = tokens 2.. changed
    with torch.no_grad():
        a, b = causal(x), causal(later)
        assert torch.allclose(a[:, :2], b[:, :2], atol=1e-6)  # tokens 0-1 (frames 0-7): unchanged
        assert (a[:, 2:] - b[:, 2:]).abs().max() > 1e-3
        assert (both(x)[:, :2] - both(later)[:, :2]).abs().max() > 1e-3
        assert torch.allclose(ExportableClassifier(causal)(x), a, atol=1e-5)
    assert onnx_max_abs_diff(causal, onnx_bytes(causal), x) < 1e-4
    path = save_bundle(tmp_path / "b", causal, LABELS, "kinect_v1_20", FPS, T, {"crop_ratio": 1.0})
    loaded = load_bundle(path)
    assert loaded.model.causal and torch.allclose(loaded.model(x), a, atol=1e-6)
    with pytest.raises(ValueError, match="dense"):
        ActionClassifier(tiny_cfg(), 3, "finetune", causal=True)


def test_a_dual_model_answers_bidirectionally_or_causally_and_exports_both(tmp_path):
    """streaming.dual: one encoder, trained with every clip both ways; it answers bidirectionally unless
    asked causal=True, and its export twin, ONNX graph and bundle give both."""
    from masksem_core.runtime.onnx_backend import OnnxClassifier

    torch.manual_seed(0)
    dual = ActionClassifier(tiny_cfg(), 3, "finetune", dense=True, background=True, dual=True).eval()
    x = torch.randn(2, 3, T, V, 1)
    later = x.clone()
    later[:, :, 8:] = torch.randn(2, 3, T - 8, V, 1)  # frames 8.. = tokens 2.. changed
    with torch.no_grad():
        bi, causal = dual(x), dual(x, causal=True)
        assert (bi[:, :2] - dual(later)[:, :2]).abs().max() > 1e-3  # default: sees the future
        assert torch.allclose(causal[:, :2], dual(later, causal=True)[:, :2], atol=1e-6)  # never does
        twin_bi, twin_causal = ExportableClassifier(dual)(x)
        assert torch.allclose(twin_bi, bi, atol=1e-5) and torch.allclose(twin_causal, causal, atol=1e-5)
        # training: every clip both ways in one pass, bidirectional tokens first (the encoder's features:
        # no drop-path here, and the head's BatchNorm would use batch statistics)
        dual.train()
        got = dual.token_features(x)
        assert copy.deepcopy(dual)(x).shape == (2, 2 * T // 4, 3)  # a copy: BatchNorm stats would move
        dual.eval()
        s = T // 4
        assert torch.allclose(got[:, :s], dual.token_features(x), atol=1e-5)
        assert torch.allclose(got[:, s:], dual.token_features(x, causal=True), atol=1e-5)
    graph = onnx_bytes(dual)
    assert onnx_max_abs_diff(dual, graph, x) < 1e-4  # both outputs
    broken = copy.deepcopy(dual)
    broken.dual = False  # exports only the bidirectional output: the parity check must notice a missing one
    with pytest.raises(ValueError):
        onnx_max_abs_diff(dual, onnx_bytes(broken), x)
    session = OnnxClassifier(graph)
    assert session.outputs == ["logits", "causal_logits"]
    assert torch.allclose(session(x, causal=True), causal, atol=1e-4)
    path = save_bundle(tmp_path / "b", dual, LABELS, "kinect_v1_20", FPS, T, {"crop_ratio": 1.0})
    loaded = load_bundle(path)
    assert loaded.dual and not loaded.model.causal and torch.allclose(loaded.model(x), bi, atol=1e-6)
    with pytest.raises(ValueError, match="not both"):
        ActionClassifier(tiny_cfg(), 3, "finetune", dense=True, causal=True, dual=True)
    meta_file = path / "bundle.yaml"
    meta_file.write_text(meta_file.read_text().replace("dual: true", "dual: true\ncausal: true"))
    with pytest.raises(BundleError, match=r"bundle\.yaml: choose causal or dual attention, not both"):
        load_bundle(path)
    with pytest.raises(ValueError, match="dense"):
        ActionClassifier(tiny_cfg(), 3, "finetune", dual=True)


def test_a_dual_bundle_settles_frames_bidirectionally_and_answers_now_causally(tmp_path):
    """With provisional reports a dual bundle runs both passes: settled reports merge the bidirectional
    answers, provisional ones (the newest frames) the causal ones; without provisional only one pass."""
    torch.manual_seed(0)
    dual = ActionClassifier(tiny_cfg(), 3, "finetune", dense=True, background=True, dual=True).eval()
    path = save_bundle(tmp_path / "b", dual, LABELS, "kinect_v1_20", FPS, T, {"crop_ratio": 1.0})
    stride, lag, n = 4, 10, 60
    rec = StreamingRecognizer(load_bundle(path), RecognizerSettings(
        top_k=3, stride_frames=stride, lag_frames=lag, provisional=True))  # fmt: skip
    calls = []

    def predict(windows: np.ndarray, causal: bool | None = None) -> np.ndarray:
        """Bidirectional: always no_action; causal: the frame's true class (joint 0's x)."""
        calls.append(bool(causal))
        classes = np.rint(windows[:, 0, :, 0, 0]).astype(np.int64) if causal else np.full(
            windows.shape[:1] + windows.shape[2:3], 2)  # fmt: skip
        return np.eye(len(LABELS))[classes]

    rec.predict = predict
    polls = [(k, got) for k, got in enumerate(_feed_truth(rec, 100.0 + np.arange(n) / FPS)) if got]
    assert polls and calls.count(True) == calls.count(False) == len(polls)
    for k, (settled, now) in polls:
        assert settled.label == "no_action"
        share = np.bincount([_truth(j) for j in range(k - stride + 1, k + 1)], minlength=len(LABELS))
        assert now.label == LABELS[int(np.argmax(share))]
    bidirectional = ActionClassifier(tiny_cfg(), 3, "finetune", dense=True, background=True).eval()
    path = save_bundle(tmp_path / "bi", bidirectional, LABELS, "kinect_v1_20", FPS, T, {"crop_ratio": 1.0})
    with pytest.raises(ValueError, match="dual or causal"):  # it was never trained to answer causally
        StreamingRecognizer(load_bundle(path)).predict(np.zeros((1, 1, T, V, 3)), causal=True)


def test_the_tuning_cache_keeps_a_dual_bundles_two_passes_apart(tmp_path):
    from masksem_core.runtime.tuning import CachedPredict

    torch.manual_seed(0)
    dual = ActionClassifier(tiny_cfg(), 3, "finetune", dense=True, background=True, dual=True).eval()
    rec = StreamingRecognizer(load_bundle(save_bundle(
        tmp_path / "b", dual, LABELS, "kinect_v1_20", FPS, T, {"crop_ratio": 1.0})))  # fmt: skip
    windows = np.random.default_rng(0).normal(0, 0.3, (2, 1, T, V, 3)).astype(np.float32)
    cache = CachedPredict(rec.predict)
    for _ in range(2):
        assert np.allclose(cache(windows), rec.predict(windows), atol=1e-6)
        assert np.allclose(cache(windows, causal=True), rec.predict(windows, causal=True), atol=1e-6)
    assert (cache.misses, cache.hits) == (4, 4)
    assert not np.allclose(rec.predict(windows), rec.predict(windows, causal=True), atol=1e-4)


@pytest.mark.parametrize("fields, message", [
    ({"enabled": False, "dual": True}, "streaming.dual needs"),
    ({"enabled": True, "dual": True, "causal": True}, "exclude each other"),
])  # fmt: skip
def test_dual_stream_settings_that_cannot_work_are_refused(fields, message):
    with pytest.raises(ConfigError, match=message):
        StreamingConfig(**fields).validate()


def test_streaming_causal_without_streaming_is_refused():
    with pytest.raises(ConfigError, match="streaming.causal"):
        StreamingConfig(enabled=False, causal=True).validate()


def _feed_truth(rec, stamps: np.ndarray) -> list[list]:
    """Push frame k (its true class in joint 0's x, see _labelled_stream_recognizer) at stamps[k] and
    poll after each; returns what each poll gave."""
    out = []
    for k, stamp in enumerate(stamps):
        joints = np.zeros((V, 3), np.float32)
        joints[0, 0] = _truth(k)
        rec.push("p", stamp, joints)
        out.append(rec.poll())
    return out


@pytest.mark.parametrize("segments", [False, True])
def test_provisional_reports_say_now_what_the_lagged_settled_reports_say_later(dense_bundle, segments):
    """provisional: each poll reports the settled span (lag behind) and then the newest stride's frames
    (not settled yet) with what the windows so far say: causally the robot's newest answer describes the
    frames just seen; retrospectively the settled reports replace every provisional span but the last."""
    stride, lag, n = 4, 10, 80
    rec = _labelled_stream_recognizer(dense_bundle, stride_frames=stride, lag_frames=lag,
                                      provisional=True, segments=segments)  # fmt: skip
    stamps = 100.0 + np.arange(n) / FPS
    polls = [(k, got) for k, got in enumerate(_feed_truth(rec, stamps)) if got]
    assert polls and all(len(got) == 2 for _, got in polls)
    for k, (settled, now) in polls:
        assert settled.stamp == now.stamp == stamps[k]
        assert np.isclose(now.window_end, stamps[k])  # up to the newest frame
        # the newest stride's frames only (never frames already settled, which it could mislabel for good)
        assert np.isclose(now.window_start, stamps[k - stride + 1])
        assert settled.window_end < stamps[k - lag + 1]  # settled: lag behind
        if not segments:  # one-hot stub: the provisional answer is the majority class of its frames
            share = np.bincount([_truth(j) for j in range(k - stride + 1, k + 1)], minlength=len(LABELS))
            assert now.label == LABELS[int(np.argmax(share))]
        if segments and now.label != "no_action":
            assert now.score > 0 and now.topk_labels[0] != "no_action"
    assert rec.stats["windows"] == len(polls)  # provisional reports are not extra windows
    # the segment state follows settled reports only: the same settled reports as without provisional
    plain = _labelled_stream_recognizer(dense_bundle, stride_frames=stride, lag_frames=lag, segments=segments)
    settled_plain = [r for got in _feed_truth(plain, stamps) for r in got]
    assert [(r.label, r.window_start, r.window_end) for r in settled_plain] == [
        (s.label, s.window_start, s.window_end) for _, (s, _) in polls
    ]


@pytest.mark.parametrize("edge", [1.0, 0.3])
def test_edge_background_trims_weak_action_chunks_off_both_ends_of_a_segment(edge):
    """A person moving between actions looks a little like one: chunks whose most likely class is an
    action but whose no_action probability is above `edge_background` neither start a segment (reported
    as no_action) nor stay in it at its end (the weak tail is reported again as no_action)."""
    from masksem_core.runtime.merging import ActionSegment

    bg = 2
    weak, strong, back = np.array([0.5, 0.1, 0.4]), np.array([0.8, 0.1, 0.1]), np.array([0.1, 0.1, 0.8])
    seg = ActionSegment(min_frames=4, edge_background=edge)
    p, start = seg.update(weak, 2, 1.0, bg)  # leading weak chunk
    if edge < 1:
        assert p.argmax() == bg and start == 1.0 and p[bg] == 0.4 and not p[:bg].any() and not seg.active
    else:
        assert p.argmax() == 0 and start == 1.0 and seg.active
    for t in (2.0, 3.0, 4.0):
        p, start = seg.update(strong, 2, t, bg)
    first = 2.0 if edge < 1 else 1.0
    assert p.argmax() == 0 and start == first
    for t in (5.0, 6.0):  # a weak tail: still the running segment while it lasts
        p, start = seg.update(weak, 2, t, bg)
        assert p.argmax() == 0 and start == first
    p, start = seg.update(back, 2, 7.0, bg)  # the end: no_action from where the weak tail began
    assert p.argmax() == bg and start == (5.0 if edge < 1 else 7.0)
    prev_start, prev_sums, prev_count = seg.prev
    assert prev_start == first and prev_count == (6 if edge < 1 else 12)
    # a segment whose strong part is shorter than min_frames is a blip once its tail is trimmed
    seg = ActionSegment(min_frames=4, edge_background=edge)
    seg.update(back, 2, 10.0, bg)
    seg.update(strong, 2, 11.0, bg)
    seg.update(weak, 2, 12.0, bg)
    p, start = seg.update(back, 2, 13.0, bg)
    assert p.argmax() == bg and start == (11.0 if edge < 1 else 13.0)
    with pytest.raises(ConfigError, match=r"edge_background must be in \(0, 1\] \(1: off\), got 0.0"):
        RecognizerSettings(edge_background=0.0).validate()


def test_changed_segment_rules_reach_the_people_already_tracked(dense_bundle):
    """`ros2 param set ... min_segment_frames` must change what a running recogniser does for the people
    it already follows, not only for people seen afterwards."""
    rec = _labelled_stream_recognizer(dense_bundle, stride_frames=2, lag_frames=4, segments=True,
                                      min_segment_frames=8, merge_gap_frames=8)  # fmt: skip
    _feed_truth(rec, 100.0 + np.arange(20) / FPS)
    rec.update_settings(min_segment_frames=2, merge_gap_frames=0, edge_background=0.3)
    assert (rec.segments["p"].min_frames, rec.segments["p"].merge_gap) == (2, 0)
    assert rec.segments["p"].edge_background == 0.3


def test_dense_only_settings_on_a_clip_bundle_are_named_in_a_warning(tmp_path, caplog):
    torch.manual_seed(0)
    model = ActionClassifier(tiny_cfg(), 2, "finetune").eval()
    path = save_bundle(tmp_path / "clip", model, LABELS[:2], "kinect_v1_20", FPS, T, {"crop_ratio": 1.0})
    with caplog.at_level("WARNING", logger="masksem_core.runtime.recognizer"):
        StreamingRecognizer(load_bundle(path), RecognizerSettings(lag_frames=4, provisional=True))
    assert "lag_frames" in caplog.text and "provisional" in caplog.text and "ignored" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="masksem_core.runtime.recognizer"):  # an off value that is not 0
        StreamingRecognizer(load_bundle(path), RecognizerSettings(edge_background=0.2, merge_gap_frames=2))
    assert "'edge_background': 0.2" in caplog.text and "'merge_gap_frames': 2" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="masksem_core.runtime.recognizer"):
        StreamingRecognizer(load_bundle(path), RecognizerSettings())
    assert "ignored" not in caplog.text  # the defaults say nothing
