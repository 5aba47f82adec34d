"""Replay metrics: frame accuracy, segment precision/recall/F1 at an IoU, detection delay, latency.

Pure numpy over plain arrays, so the numbers can be checked by hand and do not depend on ROS, torch or
the recogniser. Conventions (docs/replay.md):

- A *frame* is one input skeleton of one person at its stamp. Its truth is the labelled interval of
  that person (or of every person, when the interval has no person id) with `start <= t < end`
  (to within STAMP_TOL_S, so a frame stamped on a boundary belongs to the interval starting there);
  frames outside every interval are background.
- Causal prediction (what the robot knew when): the label of the newest recognition for that person
  whose stamp is `<= t` and not older than `max_age_s`; none is "unknown". "unknown" (and any
  background label, `no_action` included) is right only where the truth is background.
- Retrospective prediction (what the recogniser said about the frame, whenever it said it): the label
  of the newest recognition (by stamp, then by order) for that person whose reported span
  `[window_start, window_end]` contains `t`; a later recognition overrides an earlier one where their
  spans overlap (it saw more context); frames no span covers are "unknown".
- Segments are runs of consecutive frames of one person: truth runs follow the intervals, predicted
  runs follow the predicted label; background runs are not segments. A predicted segment is a true
  positive when it overlaps an unmatched truth segment of the same label with IoU >= the threshold
  (IoU in frames, the MS-TCN F1@50 convention); each truth segment matches at most once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

UNKNOWN = "unknown"
STAMP_TOL_S = (
    1e-6  # float seconds of epoch stamps are only good to ~0.2 us: a frame on a boundary belongs after it
)
BACKGROUND_LABELS = frozenset({"", "background", "idle", "none", "null", "no_action", UNKNOWN})


def is_background(labels: np.ndarray, background: frozenset[str] = BACKGROUND_LABELS) -> np.ndarray:
    """Boolean mask of labels that mean "no action" (case-insensitive)."""
    labels = np.asarray(labels, dtype=object)
    return np.fromiter((str(lab).lower() in background for lab in labels), dtype=bool, count=labels.size)


def predict_frames(
    frame_stamps: np.ndarray,
    frame_persons: np.ndarray,
    rec_stamps: np.ndarray,
    rec_persons: np.ndarray,
    rec_labels: np.ndarray,
    max_age_s: float,
) -> np.ndarray:
    """Label each frame with its person's newest recognition not older than `max_age_s` (else unknown)."""
    frame_stamps = np.asarray(frame_stamps, dtype=np.float64)
    frame_persons = np.asarray(frame_persons)
    rec_stamps = np.asarray(rec_stamps, dtype=np.float64)
    rec_persons = np.asarray(rec_persons)
    rec_labels = np.asarray(rec_labels, dtype=object)
    out = np.full(frame_stamps.shape, UNKNOWN, dtype=object)
    for person in np.unique(frame_persons):
        f_idx = np.flatnonzero(frame_persons == person)
        r_idx = np.flatnonzero(rec_persons == person)
        if r_idx.size == 0:
            continue
        r_idx = r_idx[np.argsort(rec_stamps[r_idx], kind="stable")]
        r_t = rec_stamps[r_idx]
        # newest recognition with stamp <= frame stamp; ties take the last one pushed
        pos = np.searchsorted(r_t, frame_stamps[f_idx], side="right") - 1
        ok = pos >= 0
        ok[ok] &= frame_stamps[f_idx[ok]] - r_t[pos[ok]] <= max_age_s
        out[f_idx[ok]] = rec_labels[r_idx[pos[ok]]]
    return out


def retrospective_frames(
    frame_stamps: np.ndarray,
    frame_persons: np.ndarray,
    rec_starts: np.ndarray,
    rec_ends: np.ndarray,
    rec_stamps: np.ndarray,
    rec_persons: np.ndarray,
    rec_labels: np.ndarray,
) -> np.ndarray:
    """Label each frame with its person's newest recognition whose span [start, end] holds it (else unknown).

    Spans are inclusive (window_start/window_end are the first and last input stamp covered), to within
    STAMP_TOL_S. Recognitions are painted oldest first (by stamp, ties in input order), so where spans
    overlap the newest one wins.
    """
    frame_stamps = np.asarray(frame_stamps, dtype=np.float64)
    frame_persons = np.asarray(frame_persons)
    rec_starts = np.asarray(rec_starts, dtype=np.float64)
    rec_ends = np.asarray(rec_ends, dtype=np.float64)
    rec_stamps = np.asarray(rec_stamps, dtype=np.float64)
    rec_persons = np.asarray(rec_persons)
    rec_labels = np.asarray(rec_labels, dtype=object)
    out = np.full(frame_stamps.shape, UNKNOWN, dtype=object)
    for person in np.unique(frame_persons):
        f_idx = np.flatnonzero(frame_persons == person)
        f_idx = f_idx[np.argsort(frame_stamps[f_idx], kind="stable")]
        f_t = frame_stamps[f_idx]
        r_idx = np.flatnonzero((rec_persons == person) & np.isfinite(rec_starts) & np.isfinite(rec_ends))
        r_idx = r_idx[np.argsort(rec_stamps[r_idx], kind="stable")]
        lo = np.searchsorted(f_t, rec_starts[r_idx] - STAMP_TOL_S, side="left")
        hi = np.searchsorted(f_t, rec_ends[r_idx] + STAMP_TOL_S, side="right")
        for k, a, b in zip(r_idx, lo, hi):
            out[f_idx[a:b]] = rec_labels[k]
    return out


def truth_frames(
    frame_stamps: np.ndarray,
    frame_persons: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    labels: np.ndarray,
    persons: np.ndarray,
    background: str = "background",
) -> tuple[np.ndarray, np.ndarray]:
    """Truth label and interval index (-1: background) of every frame.

    `persons` holds each interval's person id, or None for "every person". Where intervals overlap for
    one frame, the one that started last wins (a new action overrides a long background label).
    """
    frame_stamps = np.asarray(frame_stamps, dtype=np.float64)
    frame_persons = np.asarray(frame_persons)
    starts, ends = np.asarray(starts, dtype=np.float64), np.asarray(ends, dtype=np.float64)
    persons = np.asarray(persons, dtype=object)
    labels = np.asarray(labels, dtype=object)
    index = np.full(frame_stamps.shape, -1, dtype=np.int64)
    for k in np.argsort(starts, kind="stable"):
        inside = (frame_stamps >= starts[k] - STAMP_TOL_S) & (frame_stamps < ends[k] - STAMP_TOL_S)
        if persons[k] is not None:
            inside &= frame_persons == persons[k]
        index[inside] = k
    out = np.full(frame_stamps.shape, background, dtype=object)
    out[index >= 0] = labels[index[index >= 0]]
    return out, index


def frame_accuracy(truth: np.ndarray, pred: np.ndarray) -> float:
    """Fraction of frames predicted right; background truth is matched by any background/unknown label."""
    truth, pred = np.asarray(truth, dtype=object), np.asarray(pred, dtype=object)
    if truth.size == 0:
        return float("nan")
    t_bg, p_bg = is_background(truth), is_background(pred)
    right = np.where(t_bg, p_bg, (truth == pred) & ~p_bg)
    return float(right.mean())


def runs(keys: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index ranges of consecutive equal values of `keys`."""
    keys = np.asarray(keys, dtype=object)
    if keys.size == 0:
        return []
    change = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    bounds = np.concatenate([[0], change, [keys.size]])
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


@dataclass
class SegmentScores:
    """Counts and scores of the segment matching at one IoU threshold."""

    iou: float
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float

    def to_dict(self) -> dict:
        return asdict(self)


def _iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = min(a[1], b[1]) - max(a[0], b[0])
    if inter <= 0:
        return 0.0
    return inter / (max(a[1], b[1]) - min(a[0], b[0]))


def segment_scores(
    frame_persons: np.ndarray,
    truth_labels: np.ndarray,
    truth_index: np.ndarray,
    pred_labels: np.ndarray,
    iou_threshold: float = 0.5,
) -> SegmentScores:
    """Segment-level precision/recall/F1; frames must be in time order within each person."""
    frame_persons = np.asarray(frame_persons)
    truth_labels = np.asarray(truth_labels, dtype=object)
    truth_index = np.asarray(truth_index)
    pred_labels = np.asarray(pred_labels, dtype=object)
    tp = fp = fn = 0
    for person in np.unique(frame_persons):
        idx = np.flatnonzero(frame_persons == person)
        t_lab, t_key, p_lab = truth_labels[idx], truth_index[idx], pred_labels[idx]
        t_bg, p_bg = is_background(t_lab), is_background(p_lab)
        truth_segs = [(a, b, t_lab[a]) for a, b in runs(t_key) if not t_bg[a]]
        pred_segs = [(a, b, p_lab[a]) for a, b in runs(p_lab) if not p_bg[a]]
        used = np.zeros(len(truth_segs), dtype=bool)
        for pa, pb, plab in pred_segs:
            ious = np.array(
                [_iou((pa, pb), (ta, tb)) if tlab == plab else 0.0 for ta, tb, tlab in truth_segs]
            )
            ious[used] = 0.0
            best = int(np.argmax(ious)) if ious.size else -1
            if best >= 0 and ious[best] >= iou_threshold:
                tp += 1
                used[best] = True
            else:
                fp += 1
        fn += int((~used).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return SegmentScores(iou_threshold, tp, fp, fn, precision, recall, f1)


def detection_delays(
    starts: np.ndarray,
    ends: np.ndarray,
    labels: np.ndarray,
    persons: np.ndarray,
    rec_stamps: np.ndarray,
    rec_persons: np.ndarray,
    rec_labels: np.ndarray,
    grace_s: float = 0.0,
) -> np.ndarray:
    """Seconds from each action's start to its first right recognition (NaN: missed or background).

    A recognition counts when it is for the interval's person (any person if the interval has None),
    has the interval's label and its stamp lies in [start, end + grace_s]: a window needs some frames
    of the action, so the first right answer may come just after the action ended.
    """
    starts, ends = np.asarray(starts, dtype=np.float64), np.asarray(ends, dtype=np.float64)
    labels, persons = np.asarray(labels, dtype=object), np.asarray(persons, dtype=object)
    rec_stamps = np.asarray(rec_stamps, dtype=np.float64)
    rec_persons, rec_labels = np.asarray(rec_persons), np.asarray(rec_labels, dtype=object)
    out = np.full(starts.shape, np.nan)
    bg = is_background(labels)
    for k in range(starts.size):
        if bg[k]:
            continue
        in_time = (rec_stamps >= starts[k] - STAMP_TOL_S) & (rec_stamps <= ends[k] + grace_s + STAMP_TOL_S)
        hit = (rec_labels == labels[k]) & in_time
        if persons[k] is not None:
            hit &= rec_persons == persons[k]
        if hit.any():
            out[k] = max(0.0, rec_stamps[hit].min() - starts[k])
    return out


def summary_stats(values: np.ndarray) -> dict:
    """count/mean/p50/p90/p99/max of the finite values (None when there are none)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"count": 0, "mean": None, "p50": None, "p90": None, "p99": None, "max": None}
    p50, p90, p99 = np.percentile(v, [50, 90, 99])
    return {
        "count": int(v.size),
        "mean": float(v.mean()),
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "max": float(v.max()),
    }


@dataclass
class FrameLabels:
    """Per-frame truth and prediction, sorted by person then stamp (what the timeline plot draws)."""

    stamps: np.ndarray
    persons: np.ndarray
    truth: np.ndarray
    pred: np.ndarray  # causal
    retro: np.ndarray | None = None  # retrospective, when the recognitions' spans were given


def per_class_accuracy(truth: np.ndarray, pred: np.ndarray) -> dict:
    """{truth label: {frames, accuracy}} (background counts as one class)."""
    out = {}
    for lab in sorted({str(x) for x in truth}):
        sel = truth == lab
        out[lab] = {"frames": int(sel.sum()), "accuracy": frame_accuracy(truth[sel], pred[sel])}
    return out


def background_baseline(truth: np.ndarray) -> dict:
    """What answering "no action" for every frame scores: the floor a stream recogniser must beat."""
    truth = np.asarray(truth, dtype=object)
    pred = np.full(truth.shape, UNKNOWN, dtype=object)
    return {"background_frame_accuracy": frame_accuracy(truth, pred), "background_segments_f1": 0.0}


def oracle_scores(
    frame_persons: np.ndarray,
    truth_labels: np.ndarray,
    truth_index: np.ndarray,
    interval_labels: np.ndarray,
    iou_threshold: float = 0.5,
) -> dict:
    """Scores of the oracle that knows every interval's boundaries and answers `interval_labels[k]` for
    interval k (its frames take that answer, all other frames are background): the ceiling of a stream
    recogniser built on the same classifier. `oracle_clip_accuracy` = right answers / action intervals."""
    truth_labels = np.asarray(truth_labels, dtype=object)
    truth_index = np.asarray(truth_index)
    answers = np.asarray(interval_labels, dtype=object)
    pred = np.full(truth_labels.shape, UNKNOWN, dtype=object)
    inside = truth_index >= 0
    pred[inside] = answers[truth_index[inside]]
    pred[inside & np.array([a is None for a in pred], dtype=bool)] = UNKNOWN
    used = np.unique(truth_index[inside])
    labels_of = {int(k): str(truth_labels[np.flatnonzero(truth_index == k)[0]]) for k in used}
    actions = [k for k in used if not is_background([labels_of[int(k)]])[0]]
    right = sum(answers[k] == labels_of[int(k)] for k in actions)
    return {
        "oracle_clip_accuracy": right / len(actions) if actions else float("nan"),
        "oracle_clips": len(actions),
        "oracle_frame_accuracy": frame_accuracy(truth_labels, pred),
        "oracle_segments_f1": segment_scores(
            frame_persons, truth_labels, truth_index, pred, iou_threshold
        ).f1,
    }


def evaluate(
    frame_stamps: np.ndarray,
    frame_persons: np.ndarray,
    truth: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    recognitions: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    max_age_s: float,
    iou_threshold: float = 0.5,
    grace_s: float = 0.0,
    spans: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[dict, FrameLabels]:
    """All metrics of one replay as a JSON-ready dict, plus the per-frame labels they came from.

    `truth` = (starts, ends, labels, persons) of the labelled intervals; `recognitions` = (stamps,
    persons, labels, latencies_ms); `spans` = (window_start, window_end) of each recognition, which adds
    the retrospective scores under "retrospective" (and `FrameLabels.retro`).
    """
    frame_stamps = np.asarray(frame_stamps, dtype=np.float64)
    frame_persons = np.asarray(frame_persons, dtype=object)
    order = np.lexsort((frame_stamps, frame_persons.astype(str)))
    frame_stamps, frame_persons = frame_stamps[order], frame_persons[order]
    starts, ends, labels, persons = truth
    labels = np.asarray(labels, dtype=object)
    rec_stamps, rec_persons, rec_labels, latencies = recognitions
    rec_persons = np.asarray(rec_persons, dtype=object)
    t_lab, t_idx = truth_frames(frame_stamps, frame_persons, starts, ends, labels, persons)
    p_lab = predict_frames(frame_stamps, frame_persons, rec_stamps, rec_persons, rec_labels, max_age_s)
    seg = segment_scores(frame_persons, t_lab, t_idx, p_lab, iou_threshold)
    delays = detection_delays(starts, ends, labels, persons, rec_stamps, rec_persons, rec_labels, grace_s)
    actions = ~is_background(labels)
    summary = {
        "frames": int(frame_stamps.size),
        "frame_accuracy": frame_accuracy(t_lab, p_lab),
        "per_class_frame_accuracy": per_class_accuracy(t_lab, p_lab),
        "segments": seg.to_dict(),
        "detection_delay_s": {
            **summary_stats(delays[actions]),
            "actions": int(actions.sum()),
            "missed": int(np.isnan(delays[actions]).sum()),
        },
        "latency_ms": summary_stats(np.asarray(latencies, dtype=np.float64)),
        "recognitions": int(np.asarray(rec_stamps).size),
        "max_age_s": float(max_age_s),
    }
    r_lab = None
    if spans is not None:
        r_lab = retrospective_frames(frame_stamps, frame_persons, *spans, rec_stamps, rec_persons, rec_labels)
        summary["retrospective"] = {
            "frame_accuracy": frame_accuracy(t_lab, r_lab),
            "per_class_frame_accuracy": per_class_accuracy(t_lab, r_lab),
            "segments": segment_scores(frame_persons, t_lab, t_idx, r_lab, iou_threshold).to_dict(),
        }
    return summary, FrameLabels(frame_stamps, frame_persons, t_lab, p_lab, r_lab)
