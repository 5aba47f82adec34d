"""Choosing a dense bundle's recogniser settings on validation streams (never the test split).

`validation_streams` stitches clips of the *training* split that the model did not fit (e.g. NW-UCLA
view 2 for a model fitted on view 1) into continuous recordings with `masksem stitch`'s core
(`stitch_clips`), one per gap model and seed. `stream_recognitions` runs the real `StreamingRecognizer`
over a recording frame by frame (as the robot and `masksem replay` do, without a bag), and
`score_stream` scores it causally (a label counts from its stamp) and retrospectively (a label counts
on the span it reports). `choose` searches stride, lag, smoothing and threshold: the best
retrospective segment F1 among the settings whose causal detection delay p50 is <= `max_delay_s` with
at most `max_missed` of the actions missed and whose causal frame accuracy beats background-only
(`choice_pool` says what happens when none does). The model's forward passes are cached by window content,
so settings that see the same windows share them.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from masksem_core.replay import metrics
from masksem_core.replay.stitch import DEFAULT_GAP_S, Stitched, stitch_clips
from masksem_core.runtime.bundle import Bundle
from masksem_core.runtime.recognizer import RecognizerSettings, StreamingRecognizer

PERSON = "1"


def validation_streams(
    clips: Sequence[np.ndarray],
    labels: Sequence[int],
    fps: float,
    label_names: Sequence[str],
    gap_models: Iterable[str] = ("hold", "smooth"),
    seeds: Iterable[int] = (0, 1),
    clips_per_stream: int = 60,
    gap_s: tuple[float, float] = DEFAULT_GAP_S,
) -> list[Stitched]:
    """One stitched recording per (gap model, seed), each of `clips_per_stream` seeded random clips, with
    gaps uniform in `gap_s` seconds (`masksem stitch`'s default unless given)."""
    out = []
    for gap_model, seed in itertools.product(gap_models, seeds):
        rng = np.random.default_rng([seed, 1701])
        pick = rng.permutation(len(clips))[:clips_per_stream]
        out.append(
            stitch_clips(
                [clips[i] for i in pick], [int(labels[i]) for i in pick], fps, gap_model=gap_model,
                seed=seed, label_names=list(label_names), gap_s=gap_s,
            )  # fmt: skip
        )
    return out


class CachedPredict:
    """Wraps a recogniser's `predict` with a cache keyed by the window's bytes (and, for a dual bundle,
    which of its two passes)."""

    def __init__(self, predict: Any) -> None:
        self.predict, self.cache, self.hits, self.misses = predict, {}, 0, 0

    def __call__(self, windows: np.ndarray, causal: bool | None = None) -> np.ndarray:
        out = []
        for w in windows:
            key = hashlib.blake2b(np.ascontiguousarray(w).tobytes(), digest_size=16).digest(), bool(causal)
            if key not in self.cache:
                self.cache[key] = (self.predict(w[None], causal=True) if causal else self.predict(w[None]))[0]
                self.misses += 1
            else:
                self.hits += 1
            out.append(self.cache[key])
        return np.stack(out)


class CachedSegments:
    """Wraps a recogniser's `predict_segments` with a cache keyed by each segment's frames (settings
    that differ only in how much the segment classifier counts ask it the same questions)."""

    def __init__(self, predict_segments: Any) -> None:
        self.predict_segments, self.cache = predict_segments, {}

    def __call__(self, segments: list[np.ndarray]) -> np.ndarray:
        keys = [
            (hashlib.blake2b(np.ascontiguousarray(s).tobytes(), digest_size=16).digest(), s.shape)
            for s in segments
        ]
        todo = [i for i, k in enumerate(keys) if k not in self.cache]
        if todo:
            for i, p in zip(todo, self.predict_segments([segments[i] for i in todo])):
                self.cache[keys[i]] = p
        return np.stack([self.cache[k] for k in keys])


def stream_recognitions(rec: StreamingRecognizer, stream: Stitched) -> list:
    """Push every frame of person slot 0 of `stream` and poll after each, as replay does."""
    rec.reset()
    out = []
    for t in range(len(stream.stamps)):
        rec.push(PERSON, float(stream.stamps[t]), stream.frames[t, 0])
        out.extend(rec.poll())
    return out


def score_stream(stream: Stitched, recognitions: Sequence[Any], window_s: float) -> dict[str, Any]:
    """Causal and retrospective frame accuracy, segment F1@0.5 and detection delay of one stream, by
    `masksem replay`'s scoring (`replay.metrics.evaluate`, max age and grace = one window)."""
    truth = (
        np.array([i.start for i in stream.intervals]),
        np.array([i.end for i in stream.intervals]),
        np.array([i.label for i in stream.intervals], dtype=object),
        np.array([i.person_id for i in stream.intervals], dtype=object),
    )
    recs = (
        np.array([r.stamp for r in recognitions], dtype=np.float64),
        np.full(len(recognitions), PERSON, dtype=object),
        np.array([r.label for r in recognitions], dtype=object),
        np.zeros(len(recognitions)),
    )
    spans = (
        np.array([r.window_start for r in recognitions], dtype=np.float64),
        np.array([r.window_end for r in recognitions], dtype=np.float64),
    )
    frame_persons = np.full(len(stream.stamps), PERSON, dtype=object)
    m, _ = metrics.evaluate(stream.stamps, frame_persons, truth, recs, max_age_s=window_s, grace_s=window_s,
                            spans=spans)  # fmt: skip
    return {
        "frame_accuracy": m["frame_accuracy"],
        "segments_f1": m["segments"]["f1"],
        "delay_p50": m["detection_delay_s"]["p50"],
        "actions": m["detection_delay_s"]["actions"],
        "missed": m["detection_delay_s"]["missed"],
        "retro_frame_accuracy": m["retrospective"]["frame_accuracy"],
        "retro_segments_f1": m["retrospective"]["segments"]["f1"],
        "background_share": stream.background_fraction,
    }


def mean_scores(scores: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Means over streams (delay: the median of the streams' p50; missed: summed over actions)."""
    out = {k: float(np.mean([s[k] for s in scores])) for k in scores[0] if k not in ("actions", "missed")}
    delays = [np.nan if s["delay_p50"] is None else s["delay_p50"] for s in scores]
    out["delay_p50"] = float(np.median(delays))
    out["actions"] = int(sum(s["actions"] for s in scores))
    out["missed"] = int(sum(s["missed"] for s in scores))
    out["missed_fraction"] = out["missed"] / max(out["actions"], 1)
    return out


def evaluate_settings(
    bundle: Bundle,
    settings: RecognizerSettings,
    streams: Sequence[Stitched],
    cache: CachedPredict | None,
    segment_cache: CachedSegments | None = None,
) -> dict[str, Any]:
    """Mean scores of `settings` over `streams` (the forward passes cached in `cache` and
    `segment_cache`)."""
    rec = StreamingRecognizer(bundle, settings)
    if cache is not None:
        rec.predict = cache  # type: ignore[method-assign]
    if segment_cache is not None:
        rec.predict_segments = segment_cache  # type: ignore[method-assign]
    window_s = rec.window_frames / bundle.fps
    return mean_scores(
        [score_stream(s, stream_recognitions(rec, s), window_s) for s in streams]
    )


def choose(
    bundle: Bundle,
    streams: Sequence[Stitched],
    grid: dict[str, Sequence[Any]],
    max_delay_s: float = 1.0,
    max_missed: float = 0.1,
    log: Any = print,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Search `grid` (RecognizerSettings field -> candidates); returns the chosen settings and all rows."""
    base = RecognizerSettings()
    probe = StreamingRecognizer(bundle, base)
    cache = CachedPredict(probe.predict)
    segment_cache = CachedSegments(probe.predict_segments) if bundle.segment_model is not None else None
    rows = []
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        chosen = dict(zip(keys, values))
        try:
            settings = replace(base, **chosen)
            scores = evaluate_settings(bundle, settings, streams, cache, segment_cache)
        except Exception as exc:  # e.g. a lag longer than the window: not a candidate
            log(f"skip {chosen}: {exc}")
            continue
        row = {**chosen, **scores}
        rows.append(row)
        log(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    if not rows:
        raise ValueError(f"no candidate of the grid {grid} could run (see the skipped settings above)")
    pool = choice_pool(rows, max_delay_s, max_missed, log)
    best = max(pool, key=lambda r: (r["retro_segments_f1"], r["retro_frame_accuracy"], r["frame_accuracy"]))
    return {k: best[k] for k in keys}, rows


def choice_pool(
    rows: Sequence[dict[str, Any]], max_delay_s: float, max_missed: float, log: Any = print
) -> list[dict[str, Any]]:
    """The candidates `choose` picks from: those within the delay/miss limits whose causal frame accuracy
    beats the background-only share (answering `no_action` always); else those beating background at all
    (limits missed); else, when none beats background, those within the limits, else every row."""
    ok = [r for r in rows if r["delay_p50"] <= max_delay_s and r["missed_fraction"] <= max_missed]
    beats = [r for r in rows if r["frame_accuracy"] > r["background_share"]]
    both = [r for r in ok if r in beats]
    if both:
        return both
    if beats:
        log(f"no candidate meets delay p50 <= {max_delay_s} s with <= {max_missed:.0%} missed and beats "
            "background-only: choosing among those beating background")  # fmt: skip
        return beats
    log("no candidate's causal frame accuracy beats background-only: choosing on segment F1 alone")
    return ok or list(rows)
