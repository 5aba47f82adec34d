"""Replay metrics on hand-computed cases: every expected number is worked out in the comments."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from masksem_core.replay.metrics import (
    UNKNOWN,
    detection_delays,
    evaluate,
    frame_accuracy,
    predict_frames,
    runs,
    segment_scores,
    summary_stats,
    truth_frames,
)

T = np.arange(10, dtype=np.float64)  # frames at 0..9 s, one person "a"
A = np.array(["a"] * 10, dtype=object)
# truth: wave [2, 5), sit [5, 8), any person
TRUTH = (
    np.array([2.0, 5.0]),
    np.array([5.0, 8.0]),
    np.array(["wave", "sit"], dtype=object),
    np.array([None, None], dtype=object),
)
# recognitions one frame late: wave at 3, sit at 6
REC_T, REC_P, REC_L = (
    np.array([3.0, 6.0]),
    np.array(["a", "a"], dtype=object),
    np.array(["wave", "sit"], dtype=object),
)


def test_predict_frames_takes_newest_recognition_within_max_age():
    pred = predict_frames(T, A, REC_T, REC_P, REC_L, max_age_s=2.0)
    # 0-2: nothing yet; 3,4,5: wave (5-3 = 2 <= 2); 6,7,8: sit; 9: 9-6 = 3 > 2 -> unknown
    assert pred.tolist() == [UNKNOWN] * 3 + ["wave"] * 3 + ["sit"] * 3 + [UNKNOWN]
    # another person never gets a's recognitions
    other = predict_frames(T, np.array(["b"] * 10, dtype=object), REC_T, REC_P, REC_L, 2.0)
    assert set(other.tolist()) == {UNKNOWN}


def test_truth_frames_half_open_and_person_specific():
    lab, idx = truth_frames(T, A, *TRUTH)
    assert lab.tolist() == ["background"] * 2 + ["wave"] * 3 + ["sit"] * 3 + ["background"] * 2
    assert idx.tolist() == [-1, -1, 0, 0, 0, 1, 1, 1, -1, -1]
    persons = np.array(["a", "b", "a", "b"], dtype=object)
    lab, _ = truth_frames(
        np.array([1.0, 1.0, 3.0, 3.0]),
        persons,
        np.array([0.0]),
        np.array([2.0]),
        np.array(["wave"], dtype=object),
        np.array(["b"], dtype=object),
    )
    assert lab.tolist() == ["background", "wave", "background", "background"]


def test_frame_accuracy_counts_unknown_right_only_on_background():
    truth, _ = truth_frames(T, A, *TRUTH)
    pred = predict_frames(T, A, REC_T, REC_P, REC_L, max_age_s=2.0)
    # right: 0,1 (bg/unknown), 3,4 (wave), 6,7 (sit), 9 (bg/unknown); wrong: 2 (unknown vs wave),
    # 5 (wave vs sit), 8 (sit vs background) -> 7/10
    assert frame_accuracy(truth, pred) == pytest.approx(0.7)
    assert frame_accuracy(np.array(["idle", "wave"]), np.array(["unknown", "unknown"])) == 0.5
    assert frame_accuracy(np.array(["idle"]), np.array(["wave"])) == 0.0
    assert math.isnan(frame_accuracy(np.array([]), np.array([])))


def test_runs():
    assert runs(np.array(["x", "x", "y", "x"], dtype=object)) == [(0, 2), (2, 3), (3, 4)]
    assert runs(np.array([], dtype=object)) == []


def test_segments_at_iou_half_are_inclusive():
    truth, idx = truth_frames(T, A, *TRUTH)
    pred = predict_frames(T, A, REC_T, REC_P, REC_L, max_age_s=2.0)
    # truth wave [2,5) vs pred wave [3,6): inter 2 / union 4 = 0.5; sit [5,8) vs [6,9): 0.5 -> both TP
    s = segment_scores(A, truth, idx, pred, 0.5)
    assert (s.tp, s.fp, s.fn, s.precision, s.recall, s.f1) == (2, 0, 0, 1.0, 1.0, 1.0)
    s = segment_scores(A, truth, idx, pred, 0.6)
    assert (s.tp, s.fp, s.fn, s.f1) == (0, 2, 2, 0.0)


def test_fragmented_and_wrong_label_segments():
    # truth: one wave over all 10 frames
    truth = np.array(["wave"] * 10, dtype=object)
    idx = np.zeros(10, dtype=np.int64)
    # pred: wave 0-5 (IoU 6/10 TP), unknown 6, wave 7-9 (IoU 3/10 -> FP; truth already used anyway)
    pred = np.array(["wave"] * 6 + [UNKNOWN] + ["wave"] * 3, dtype=object)
    s = segment_scores(A, truth, idx, pred)
    assert (s.tp, s.fp, s.fn) == (1, 1, 0)
    assert s.precision == 0.5 and s.recall == 1.0 and s.f1 == pytest.approx(2 / 3)
    # a right-sized segment with the wrong label: FP and FN
    s = segment_scores(A, truth, idx, np.array(["sit"] * 10, dtype=object))
    assert (s.tp, s.fp, s.fn, s.f1) == (0, 1, 1, 0.0)
    # two adjacent truth intervals of the same label stay two segments (runs follow interval ids)
    idx2 = np.array([0] * 5 + [1] * 5)
    s = segment_scores(A, truth, idx2, np.array(["wave"] * 10, dtype=object))
    # one prediction over both: IoU 5/10 = 0.5 with the first (TP), the second is missed (FN)
    assert (s.tp, s.fp, s.fn) == (1, 0, 1)


def test_detection_delay_first_right_recognition():
    d = detection_delays(*TRUTH, REC_T, REC_P, REC_L)
    assert d.tolist() == [1.0, 1.0]
    # wrong person / wrong label / after the end (no grace) -> missed (NaN); grace rescues the late one
    starts, ends = np.array([0.0, 0.0, 0.0]), np.array([2.0, 2.0, 2.0])
    labels = np.array(["wave", "sit", "background"], dtype=object)
    persons = np.array(["b", None, None], dtype=object)
    rt, rp, rl = (
        np.array([1.0, 2.5]),
        np.array(["a", "a"], dtype=object),
        np.array(["wave", "sit"], dtype=object),
    )
    d = detection_delays(starts, ends, labels, persons, rt, rp, rl)
    assert np.isnan(d).all()
    d = detection_delays(starts, ends, labels, persons, rt, rp, rl, grace_s=1.0)
    assert np.isnan(d[0]) and d[1] == 2.5 and np.isnan(d[2])


def test_summary_stats_ignores_nan():
    s = summary_stats(np.array([1.0, 2.0, np.nan, 3.0, 4.0]))
    assert s == {
        "count": 4,
        "mean": 2.5,
        "p50": 2.5,
        "p90": pytest.approx(3.7),
        "p99": pytest.approx(3.97),
        "max": 4.0,
    }
    assert summary_stats(np.array([]))["count"] == 0


def test_evaluate_two_persons_out_of_order_frames():
    # person b has no recognitions: all its action frames are wrong
    stamps = np.concatenate([T, T])
    persons = np.array(["a"] * 10 + ["b"] * 10, dtype=object)
    perm = np.random.default_rng(0).permutation(20)
    summary, frames = evaluate(
        stamps[perm], persons[perm], TRUTH, (REC_T, REC_P, REC_L, np.array([10.0, 30.0])), max_age_s=2.0
    )
    # a: 7/10 right (above); b: background frames 0,1,8,9 right, 6 action frames wrong -> 4/10
    assert summary["frame_accuracy"] == pytest.approx(11 / 20)
    assert summary["segments"]["tp"] == 2 and summary["segments"]["fn"] == 2
    assert summary["segments"]["recall"] == 0.5 and summary["segments"]["precision"] == 1.0
    assert summary["detection_delay_s"]["mean"] == 1.0 and summary["detection_delay_s"]["missed"] == 0
    assert summary["latency_ms"]["p50"] == 20.0
    assert summary["per_class_frame_accuracy"]["wave"] == {"frames": 6, "accuracy": pytest.approx(2 / 6)}
    assert frames.persons.tolist() == ["a"] * 10 + ["b"] * 10
    assert frames.stamps.tolist() == T.tolist() * 2


labels_st = st.lists(st.sampled_from(["wave", "sit", "background"]), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(labels_st)
def test_property_perfect_prediction_scores_one(seq):
    """Truth built from any label sequence, predicted exactly: accuracy 1, every segment matched."""
    truth = np.array(seq, dtype=object)
    idx = np.array([k for k, (a, b) in enumerate(runs(truth)) for _ in range(b - a)])
    s = segment_scores(np.array(["p"] * len(seq), object), truth, idx, truth)
    n_actions = sum(1 for a, _ in runs(truth) if truth[a] != "background")
    assert frame_accuracy(truth, truth) == 1.0
    assert (s.tp, s.fp, s.fn) == (n_actions, 0, 0)


@settings(max_examples=60, deadline=None)
@given(labels_st, st.lists(st.sampled_from(["wave", "sit", "background", UNKNOWN]), min_size=40, max_size=40))
def test_property_counts_are_consistent(seq, guess):
    """Any prediction: tp + fn = truth segments, tp + fp = predicted segments, scores within [0, 1]."""
    truth = np.array(seq, dtype=object)
    pred = np.array(guess[: len(seq)], dtype=object)
    idx = np.array([k for k, (a, b) in enumerate(runs(truth)) for _ in range(b - a)])
    s = segment_scores(np.array(["p"] * len(seq), object), truth, idx, pred)
    bg = {"background", UNKNOWN}
    assert s.tp + s.fn == sum(1 for a, _ in runs(truth) if truth[a] not in bg)
    assert s.tp + s.fp == sum(1 for a, _ in runs(pred) if pred[a] not in bg)
    assert 0.0 <= frame_accuracy(truth, pred) <= 1.0 and 0.0 <= s.f1 <= 1.0
