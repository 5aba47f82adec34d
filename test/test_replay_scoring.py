"""Replay scoring: retrospective (span) scores, background and oracle baselines, settings from the bundle,
--overwrite, and the timeline palette. Hand-computed numbers are worked out in the comments."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import make_tiny_bundle

from masksem_core.replay.metrics import (
    UNKNOWN,
    background_baseline,
    evaluate,
    is_background,
    oracle_scores,
    retrospective_frames,
    truth_frames,
)

T = np.arange(10, dtype=np.float64)  # frames at 0..9 s, one person "a"
A = np.array(["a"] * 10, dtype=object)
TRUTH = (  # wave [2, 5), sit [5, 8)
    np.array([2.0, 5.0]),
    np.array([5.0, 8.0]),
    np.array(["wave", "sit"], dtype=object),
    np.array([None, None], dtype=object),
)


def _obj(*xs):
    return np.array(xs, dtype=object)


def test_retrospective_spans_are_inclusive_and_the_newest_wins():
    # r0 (stamp 5) says wave over [2, 4]; r1 (stamp 8) says sit over [4, 7]: frame 4 is in both spans,
    # the newer r1 wins; r2 (stamp 9, person b) never labels a's frames; 0, 1, 8, 9: no span -> unknown
    starts, ends, stamps = np.array([2.0, 4.0, 0.0]), np.array([4.0, 7.0, 9.0]), np.array([5.0, 8.0, 9.0])
    persons, labels = _obj("a", "a", "b"), _obj("wave", "sit", "throw")
    got = retrospective_frames(T, A, starts, ends, stamps, persons, labels)
    assert got.tolist() == [UNKNOWN] * 2 + ["wave"] * 2 + ["sit"] * 4 + [UNKNOWN] * 2
    # the same recognitions in another input order give the same answer (order is by stamp)
    rev = retrospective_frames(T, A, starts[::-1], ends[::-1], stamps[::-1], persons[::-1], labels[::-1])
    assert rev.tolist() == got.tolist()
    # equal stamps: the later one in input order wins; NaN spans (no span reported) label nothing
    tie = retrospective_frames(
        T,
        A,
        np.array([0.0, 3.0, np.nan]),
        np.array([5.0, 9.0, np.nan]),
        np.array([9.0, 9.0, 9.5]),
        _obj("a", "a", "a"),
        _obj("wave", "sit", "throw"),
    )
    assert tie.tolist() == ["wave"] * 3 + ["sit"] * 7


def test_causal_and_retrospective_side_by_side():
    # one recognition per action, stamped 2 frames after the action ended (a late but right answer),
    # spans exactly the action: causal is late, retrospective exact
    recs = (np.array([6.0, 9.0]), _obj("a", "a"), _obj("wave", "sit"), np.array([1.0, 1.0]))
    spans = (np.array([2.0, 5.0]), np.array([4.0, 7.0]))
    summary, frames = evaluate(T, A, TRUTH, recs, max_age_s=3.0, spans=spans)
    # causal: 0-5 unknown (right on 0, 1; wrong on 2-5), 6-8 wave (wrong: sit, sit, background),
    # 9 sit (wrong: background) -> 2/10
    assert summary["frame_accuracy"] == pytest.approx(0.2)
    assert summary["segments"]["tp"] == 0
    retro = summary["retrospective"]
    assert retro["frame_accuracy"] == 1.0
    assert (retro["segments"]["tp"], retro["segments"]["fp"], retro["segments"]["fn"]) == (2, 0, 0)
    assert frames.retro.tolist()[2:8] == ["wave"] * 3 + ["sit"] * 3
    assert "retrospective" not in evaluate(T, A, TRUTH, recs, max_age_s=3.0)[0]


def test_background_baseline_is_the_background_share():
    truth, _ = truth_frames(T, A, *TRUTH)
    # 4 of 10 frames are background (0, 1, 8, 9)
    assert background_baseline(truth) == {"background_frame_accuracy": 0.4, "background_segments_f1": 0.0}


def test_no_action_is_background():
    assert is_background(_obj("no_action", "No_Action", "wave")).tolist() == [True, True, False]
    summary, _ = evaluate(
        T, A, TRUTH, (np.array([0.0]), _obj("a"), _obj("no_action"), np.array([1.0])), max_age_s=20.0
    )
    assert summary["frame_accuracy"] == pytest.approx(0.4) and summary["segments"]["fp"] == 0


def test_oracle_scores_by_hand():
    truth, idx = truth_frames(T, A, *TRUTH)
    # the oracle answers wave for wave (right) and wave for sit (wrong): clip accuracy 1/2; frames: the
    # 3 sit frames are wrong -> 7/10; segments: wave [2,5) and wave [5,8) are two predicted runs? No: the
    # prediction is one run of wave over 2..7 (IoU with wave [2,5) = 3/6 = 0.5 -> TP), sit missed (FN) ->
    # P 1, R 1/2, F1 2/3
    got = oracle_scores(A, truth, idx, _obj("wave", "wave"))
    assert got["oracle_clip_accuracy"] == 0.5 and got["oracle_clips"] == 2
    assert got["oracle_frame_accuracy"] == pytest.approx(0.7)
    assert got["oracle_segments_f1"] == pytest.approx(2 / 3)
    perfect = oracle_scores(A, truth, idx, _obj("wave", "sit"))
    assert perfect["oracle_clip_accuracy"] == 1.0 and perfect["oracle_frame_accuracy"] == 1.0
    none = oracle_scores(A, truth, idx, _obj(None, "sit"))  # no frames to classify: counted wrong
    assert none["oracle_clip_accuracy"] == 0.5 and none["oracle_frame_accuracy"] == pytest.approx(0.7)


def test_settings_from_bundle_then_overrides(tmp_path):
    from masksem_core.config import ConfigError
    from masksem_core.runtime.bundle import load_bundle
    from masksem_core.runtime.recognizer import RecognizerSettings

    path = _with_recognizer(make_tiny_bundle(tmp_path / "b", ["x", "y"]), {"stride_frames": 3})
    bundle = load_bundle(path)
    s = RecognizerSettings.from_bundle(bundle)
    assert (s.stride_frames, s.score_threshold, s.smoothing, s.window_frames) == (3, 0.5, "ema", 12)
    s = RecognizerSettings.from_bundle(bundle, stride_frames=7, smoothing=None)
    assert (s.stride_frames, s.smoothing) == (7, "ema")
    with pytest.raises(ConfigError, match="unknown"):
        RecognizerSettings.from_bundle(bundle, strid=2)
    with pytest.raises(ConfigError, match="window_frames"):
        RecognizerSettings.from_bundle(bundle, window_frames=1)
    assert RecognizerSettings.from_bundle(load_bundle(make_tiny_bundle(tmp_path / "c", ["x"]))) == (
        RecognizerSettings()
    )


STORED = {"window_frames": 12, "score_threshold": 0.5, "smoothing": "ema", "smoothing_alpha": 0.6}


def _with_recognizer(bundle: Path, extra: dict | None = None) -> Path:
    meta_path = bundle / "bundle.yaml"
    meta = yaml.safe_load(meta_path.read_text())
    meta["recognizer"] = {**STORED, **(extra or {})}
    meta_path.write_text(yaml.safe_dump(meta, sort_keys=False))
    return bundle


@pytest.fixture(scope="module")
def stitched(nwucla_npz, tmp_path_factory) -> Path:
    from masksem_core.cli import main

    out = tmp_path_factory.mktemp("rec")
    argv = ["stitch", str(nwucla_npz), "--out", str(out), "--clips", "6", "--seed", "2", "--gap-s", "1", "2"]
    assert main(argv) == 0
    return out


def _offline_accuracy(bundle_path: Path, npz: Path, rows: list[int]) -> float:
    """The bundle on the same clips through the training feeder's test transform (the offline number)."""
    import torch

    from masksem_core.data.feeder import SkeletonClips
    from masksem_core.runtime.bundle import load_bundle

    bundle = load_bundle(bundle_path)
    ds = SkeletonClips(npz, "test", num_frames=bundle.clip_length, train=False).subset(np.array(rows))
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    with torch.inference_mode():
        pred = bundle.model(x).argmax(1).numpy()
    return float(np.mean(pred == ds.targets))


def test_replay_runs_the_bundles_settings_scores_both_ways_and_refuses_to_overwrite(
    stitched, nwucla_npz, tmp_path, capsys
):
    from masksem_core.cli import main
    from masksem_core.data.nwucla import LABELS

    bundle = _with_recognizer(make_tiny_bundle(tmp_path / "b", list(LABELS), fps=15.0, heads=4))
    out = tmp_path / "out"
    argv = [
        "replay",
        str(stitched / "bag"),
        "--bundle",
        str(bundle),
        "--labels",
        str(stitched / "labels.csv"),
    ]
    assert main([*argv, "--out", str(out), "--no-bag"]) == 0
    rep = json.loads((out / "report.json").read_text())
    s = rep["settings"]
    assert (s["window_frames"], s["score_threshold"], s["smoothing"], s["smoothing_alpha"]) == (
        12,
        0.5,
        "ema",
        0.6,
    )
    assert rep["settings_source"]["overrides"] == {} and rep["settings_source"]["window_frames"] == 12
    assert rep["input_fps"] == pytest.approx(15.0, rel=1e-4)
    m = rep["metrics"]
    for key in ("frame_accuracy", "segments", "detection_delay_s"):
        assert key in m
    assert set(m["retrospective"]) >= {"frame_accuracy", "segments"}
    man = json.loads((stitched / "stitch.json").read_text())
    base = rep["baselines"]
    assert base["background_frame_accuracy"] == pytest.approx(man["background_fraction"], abs=0.01)
    assert base["oracle_clips"] == 6
    assert base["oracle_clip_accuracy"] == pytest.approx(_offline_accuracy(bundle, nwucla_npz, man["clips"]))
    text = capsys.readouterr().out
    assert "retrospective frame accuracy" in text and "background-only frame accuracy" in text
    # a second replay into the same folder is refused, naming what is there; --overwrite replaces it
    assert main([*argv, "--out", str(out), "--no-bag"]) == 2
    assert "already holds a replay (report.json, timeline.png, latency.png)" in capsys.readouterr().err
    before = (out / "report.json").stat().st_mtime_ns
    assert (
        main([*argv, "--out", str(out), "--overwrite", "--stride", "5", "--threshold", "0", "--window", "20"])
        == 0
    )
    rep = json.loads((out / "report.json").read_text())
    assert (out / "report.json").stat().st_mtime_ns > before and (out / "bag").is_dir()
    assert rep["settings_source"]["overrides"] == {
        "window_frames": 20,
        "stride_frames": 5,
        "score_threshold": 0.0,
    }
    assert (rep["settings"]["stride_frames"], rep["settings"]["smoothing"]) == (
        5,
        "ema",
    )  # rest from the bundle


def test_timeline_gives_sixteen_labels_sixteen_colours(tmp_path):
    from masksem_core.replay.metrics import FrameLabels
    from masksem_core.replay.report import label_colours, plot_timeline

    labels = [f"action_{k:02d}" for k in range(16)]
    colours = label_colours(labels)
    assert len({tuple(np.round(c, 3)) for c in colours.values()}) == 16
    assert len({tuple(np.round(c, 3)) for c in label_colours([f"x{k}" for k in range(30)]).values()}) == 30
    t = np.arange(160, dtype=np.float64) / 10
    truth = np.repeat(np.array(labels, dtype=object), 10)
    frames = FrameLabels(t, _obj(*["1"] * 160), truth, np.roll(truth, 5), truth.copy())
    png = plot_timeline(tmp_path / "t.png", frames)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _experiment():
    from conftest import load_script

    return load_script("experiments/stream_eval.py")


def test_stream_eval_table_means_and_rows():
    exp = _experiment()

    def report(f1, retro_f1, missed):
        seg = {"f1": f1}
        return {
            "metrics": {
                "segments": seg,
                "frame_accuracy": 0.5,
                "detection_delay_s": {"p50": 0.8, "missed": missed, "actions": 10},
                "retrospective": {"segments": {"f1": retro_f1}, "frame_accuracy": 0.9},
            },
            "baselines": {"background_frame_accuracy": 0.45, "oracle_clip_accuracy": 0.92},
            "settings": {"stride_frames": 5},
            "settings_source": {"window_frames": 24, "fps": 15.0},
        }

    stitch = {"duration_s": 200.0, "clips": list(range(10))}
    rows = {
        "hold_s0": exp.row_of(report(0.2, 0.7, 1), stitch),
        "hold_s1": exp.row_of(report(0.4, 0.8, 3), stitch),
        "smooth_s0": exp.row_of(report(0.1, 0.6, 0), stitch),
    }
    assert rows["hold_s1"]["missed_frac"] == 0.3 and rows["hold_s0"]["window_frames"] == 24
    text = exp.table(rows, ["hold", "smooth"])
    lines = text.splitlines()
    # hold: retro F1 mean 0.75, sd (ddof 1) 0.0707; causal 0.3 ± 0.141; missed 20% ± 14.1%
    assert lines[2].startswith("| **hold**, 2 seeds | 0.750 ± 0.071 | 0.900 ± 0.000 | 0.300 ± 0.141 |")
    assert "20.0% ± 14.1%" in lines[2] and lines[3].startswith("| **smooth**, 1 seeds | 0.600 |")
    assert lines[4].startswith("| hold_s0 (10 clips, 200 s) | 0.700 | 0.900 | 0.200 | 0.500 | 0.80 | 10.0% |")


def test_stream_errors_sorts_each_true_action_into_one_outcome():
    """experiments/stream_errors.py's breakdown: hit, right span but wrong label, split, missed, span off."""
    from conftest import load_script

    exp = load_script("experiments/stream_errors.py")
    bg = "no_action"
    clips = np.array([-1] * 2 + [0] * 10 + [-1] * 2 + [1] * 10 + [-1] * 2 + [2] * 10 + [-1] * 2 + [3] * 10
                     + [-1] * 2 + [4] * 10 + [-1] * 2)  # fmt: skip
    truth = np.where(clips < 0, bg, np.array(["a", "b", "a", "b", "a"], dtype=object)[np.maximum(clips, 0)])
    retro = truth.copy()
    retro[14:24] = "a"  # clip 1 ("b") found, labelled a
    retro[26:36] = bg  # clip 2 missed
    retro[38:48] = ["b"] * 4 + [bg] + ["a"] * 4 + [bg]  # clip 3 in two runs, neither IoU 0.5: split
    retro[50:62] = ["a"] * 2 + [bg] * 8 + ["a"] * 2  # clip 4: one run covers 2 of its 10 frames: span off
    got = [o[4] for o in exp.action_outcomes(clips, truth, retro, bg)]
    assert got == ["hit", "wrong label", "missed", "split", "span off"]
