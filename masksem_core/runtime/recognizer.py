"""The streaming recogniser: skeleton frames of several people in, one action per person and window out.

`push()` adapts a frame to the bundle's joint layout and adds it to that person's track (resampled to
the bundle's frame rate, see tracks.py); it never raises, it counts and drops bad input. `poll()` takes
every person whose window is due, builds clips exactly as the training feeder does at test time
(centre on the first person's centre joint in the window's first frame, centre crop, linear resize
to the clip length), fills the extra person slots from the nearest other tracks, runs ONE batched
forward pass, and returns a `Recognition` per person, optionally smoothed over recent windows.
With a dense bundle that carries a segment classifier and `segment_weight > 0`, each running action
segment is also classified as a whole clip (its frames from where it started), in a second batched pass,
and the segment's label mixes both answers (segment_frames.py).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from masksem_core.config import ConfigError, from_dict
from masksem_core.runtime.adapters import get_adapter
from masksem_core.runtime.bundle import Bundle, load_bundle
from masksem_core.runtime.merging import ActionSegment, FrameScores, frame_probs
from masksem_core.runtime.segment_frames import FrameHistory
from masksem_core.runtime.smoothing import Smoother
from masksem_core.runtime.tracks import DROP_REASONS, EVENTS, Track, TrackConfig, check_frame

log = logging.getLogger(__name__)
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
SEGMENT_HISTORY_WINDOWS = 4  # a running segment is classified from at most this many windows of frames
SEGMENT_MIN_FRAMES = 4  # (and at least min_segment_frames): fewer frames are not a clip


@dataclass
class RecognizerSettings:
    """How the recogniser windows, batches and reports. Times are in seconds of the input stamps.

    partner: `nearest` fills the model's extra person slots (NTU's second actor) with the nearest other
    tracks whose centre joint is within `partner_max_distance_m`; `none` leaves them empty (absent).
    """

    window_frames: int | None = None  # grid frames per window; None: the bundle's
    stride_frames: int = 15
    lag_frames: int = 0  # dense bundles: report frames this far behind the newest (more context, later)
    # dense bundles: the settled record labels frame t with what the windows said of frame t + this (<= lag):
    # a causal model names an action some frames after it starts and keeps naming it after it ends
    latency_frames: int = 0
    # dense bundles with no_action: added to no_action's log-probability before each report is read
    # (> 0: more frames called no_action, < 0: fewer): the class prior of the deployment, not of training
    background_bias: float = 0.0
    segments: bool = False  # dense bundles with no_action: report whole running action segments
    min_segment_frames: int = 0  # segments: shorter actions are reported again as no_action
    merge_gap_frames: int = 0  # segments: an action resuming within this many frames continues
    # segments: action chunks with no_action probability above this neither start a segment nor end one
    # (a segment's weak tail is reported again as no_action when it ends); 1: off
    edge_background: float = 1.0
    # dense bundles with lag: after each settled report, also report the newest stride's frames from what
    # the windows so far say (a "now" answer the robot can act on; later settled reports replace it); a
    # dual bundle answers them from its causal pass, the settled frames from its bidirectional one
    provisional: bool = False
    # segments with a bundle's segment classifier: a running action segment's label is (1 - w) x the dense
    # model's mean over its frames + w x the whole-clip classifier's answer on its frames (0: dense only)
    segment_weight: float = 0.0
    score_threshold: float = 0.0
    smoothing: Literal["none", "ema", "majority"] = "none"
    smoothing_alpha: float = 0.5
    smoothing_window: int = 5
    top_k: int = 5
    max_persons: int = 8
    track_timeout_s: float = 2.0
    max_gap_s: float = 0.5
    min_confidence: float = 0.0
    partner: Literal["nearest", "none"] = "nearest"
    partner_max_distance_m: float = 1.5
    max_batch: int = 16
    device: str = "cpu"
    precision: Literal["fp32", "bf16", "fp16", "int8"] = "fp32"  # int8: onnxruntime, dynamic quantisation
    unknown_label: str = "unknown"
    num_threads: int = 0  # CPU threads (torch: for the whole process); 0 leaves the library default
    backend: Literal["torch", "onnxruntime"] = "torch"  # onnxruntime: fp32 or int8, 2-3.5x faster on a CPU

    @classmethod
    def from_bundle(cls, bundle: Bundle | None, **overrides: Any) -> RecognizerSettings:
        """The bundle's recogniser settings (`bundle.yaml` `recognizer:`, chosen for that model), then
        `overrides` (replay flags, ROS parameters; None means "not given"), over these defaults."""
        values: dict[str, Any] = dict(bundle.recognizer) if bundle is not None else {}
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            settings = from_dict(cls, values, prefix="recognizer.")
        except ConfigError as exc:
            where = f"bundle {bundle.path}: " if bundle is not None and bundle.path is not None else ""
            raise ConfigError(f"{where}{exc}") from None
        return settings

    def validate(self) -> None:
        if self.window_frames is not None and self.window_frames < 2:
            raise ConfigError(f"recognizer.window_frames must be >= 2, got {self.window_frames}")
        if self.min_segment_frames < 0 or self.merge_gap_frames < 0:
            raise ConfigError("recognizer.min_segment_frames and merge_gap_frames must be >= 0")
        if not 0.0 < self.edge_background <= 1.0:  # NaN fails too
            raise ConfigError(
                f"recognizer.edge_background must be in (0, 1] (1: off), got {self.edge_background}"
            )
        if self.lag_frames < 0:
            raise ConfigError(f"recognizer.lag_frames must be >= 0, got {self.lag_frames}")
        if not abs(self.background_bias) <= 20.0:  # NaN fails too
            raise ConfigError(
                f"recognizer.background_bias must be within [-20, 20], got {self.background_bias}"
            )
        if not 0 <= self.latency_frames <= self.lag_frames:
            raise ConfigError(
                f"recognizer.latency_frames must be in [0, lag_frames={self.lag_frames}] (the frames it "
                f"looks ahead must have arrived), got {self.latency_frames}"
            )
        for name in ("stride_frames", "top_k", "max_persons", "max_batch", "smoothing_window"):
            if getattr(self, name) < 1:
                raise ConfigError(f"recognizer.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("track_timeout_s", "max_gap_s", "partner_max_distance_m"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"recognizer.{name} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.segment_weight <= 1.0:
            raise ConfigError(f"recognizer.segment_weight must be in [0, 1], got {self.segment_weight}")
        if not 0.0 < self.smoothing_alpha <= 1.0:
            raise ConfigError(f"recognizer.smoothing_alpha must be in (0, 1], got {self.smoothing_alpha}")
        if self.precision not in (*DTYPES, "int8"):
            raise ConfigError(
                f"recognizer.precision must be one of {[*DTYPES, 'int8']}, got {self.precision!r}"
            )
        if self.smoothing not in ("none", "ema", "majority"):
            raise ConfigError(f"recognizer.smoothing must be none, ema or majority, got {self.smoothing!r}")
        if self.partner not in ("nearest", "none"):
            raise ConfigError(f"recognizer.partner must be nearest or none, got {self.partner!r}")
        if self.num_threads < 0:
            raise ConfigError(f"recognizer.num_threads must be >= 0, got {self.num_threads}")
        if self.backend not in ("torch", "onnxruntime"):
            raise ConfigError(f"recognizer.backend must be torch or onnxruntime, got {self.backend!r}")
        if self.backend == "onnxruntime" and self.precision not in ("fp32", "int8"):
            raise ConfigError(
                f"recognizer.precision={self.precision!r}: the onnxruntime backend runs fp32 or int8"
            )
        if self.backend == "torch" and self.precision == "int8":
            raise ConfigError(
                "recognizer.precision='int8' needs backend='onnxruntime' (dynamic quantisation)"
            )
        if self.backend == "torch" and self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"recognizer.device={self.device!r} but CUDA is not available here")


@dataclass
class Recognition:
    """One person's answer for one window. `stamp` is the newest input stamp the window used (what the
    robot knew when); `window_start`/`window_end` the first and last (grid) stamp the label covers: the
    whole window for a clip-level bundle, the newly settled frames for a dense one. `class_index` is -1
    (and `label` the unknown label) when the score is below the threshold; a stream-trained bundle's
    background label ("no_action") is a valid answer: a person is seen and does no action."""

    person_id: Any
    label: str
    class_index: int
    score: float
    topk_labels: list[str]
    topk_scores: list[float]
    window_start: float
    window_end: float
    stamp: float
    latency_ms: float


def windows_to_clips(
    windows: np.ndarray, centre_joint: int, clip_length: int, crop_ratio: float
) -> torch.Tensor:
    """(N, M, W, V, 3) person windows (absent slots all zero) -> model input (N, 3, T, V, M).

    Centring uses slot 0's `centre_joint` in the first frame and keeps absent slots at zero; then the
    feeder's test-time transform: centre crop of `crop_ratio` and linear resize to `clip_length`.
    """
    windows = np.asarray(windows, dtype=np.float32)
    n, m, w, v, _ = windows.shape
    present = np.any(windows != 0, axis=(2, 3, 4))  # (N, M)
    origin = windows[:, 0, 0, centre_joint]  # (N, 3)
    centred = np.where(present[:, :, None, None, None], windows - origin[:, None, None, None, :], 0.0)
    bias = int((1.0 - crop_ratio) * w / 2)
    cropped = torch.from_numpy(np.ascontiguousarray(centred[:, :, bias : w - bias], dtype=np.float32))
    length = cropped.shape[2]
    x = cropped.permute(0, 4, 3, 1, 2).reshape(n, 3 * v * m, length)  # (N, C*V*M, W')
    if length != clip_length:
        x = F.interpolate(x, size=clip_length, mode="linear", align_corners=False)
    return x.reshape(n, 3, v, m, clip_length).permute(0, 1, 4, 2, 3).contiguous()


def mix_segment(dense: np.ndarray, clip: np.ndarray, weight: float) -> np.ndarray:
    """A running segment's class scores: its dense mean (background last, zeroed inside a segment) and
    the whole-clip classifier's action probabilities, mixed; the actions renormalised, background 0."""
    actions = np.asarray(dense[:-1], np.float64)
    total = actions.sum()
    actions = actions / total if total > 0 else np.full_like(actions, 1.0 / len(actions))
    out = np.zeros(len(dense), np.float64)
    out[:-1] = (1.0 - weight) * actions + weight * np.asarray(clip, np.float64)
    return out


def _worth_logging(count: int) -> bool:
    """Log the first few failures of a kind, then every 1000th, so a persistent fault cannot flood the log."""
    return count < 3 or count % 1000 == 0


class StreamingRecognizer:
    """Per-person streaming action recognition on top of a model bundle (see module docstring)."""

    def __init__(self, bundle: Bundle | str | Path, settings: RecognizerSettings | None = None) -> None:
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        self.settings = settings or RecognizerSettings.from_bundle(self.bundle)
        self.settings.validate()
        b, s = self.bundle, self.settings
        if s.num_threads > 0:
            torch.set_num_threads(s.num_threads)
        self.device = torch.device(s.device)
        self.dtype = DTYPES.get(s.precision, torch.float32)
        self.model = self._make_model()
        self.window_frames = s.window_frames or b.window_frames
        self._check_dense(s)
        self.track_cfg = TrackConfig(
            fps=b.fps,
            window_frames=self.window_frames,
            stride_frames=s.stride_frames,
            max_gap_s=s.max_gap_s,
            clock_jump_s=s.track_timeout_s,
        )
        self.tracks: dict[Any, Track] = {}
        self.smoothers: dict[Any, Smoother] = {}
        self.scores: dict[Any, FrameScores] = {}  # dense bundles: merged per-frame probabilities
        self.segments: dict[Any, ActionSegment] = {}  # dense bundles: each person's running action
        self.history: dict[Any, FrameHistory] = {}  # with a segment classifier: each person's recent frames
        self.segment_model = self._make_segment_model()
        self.now: float | None = None  # stamp of the newest accepted frame (the sensor's clock)
        self._latencies: deque[float] = deque(maxlen=1000)
        self._counts: Counter[str] = Counter()
        self._dropped: Counter[str] = Counter({r: 0 for r in DROP_REASONS})
        self._events: Counter[str] = Counter({e: 0 for e in EVENTS})
        self._lock = threading.RLock()

    def _check_dense(self, s: RecognizerSettings) -> None:
        """A dense bundle labels the frames its windows saw: every frame must be in some window (stride <=
        window), and a frame has had all its windows once it is window - 1 behind the newest (lag below
        the window; more lag would only wait longer for nothing, and no frame would ever settle)."""
        if s.segment_weight > 0 and (self.bundle.segment_model is None or not s.segments):
            what = (
                "has no segment classifier" if self.bundle.segment_model is None else "needs segments: true"
            )
            raise ConfigError(
                f"recognizer.segment_weight={s.segment_weight}: the bundle {what} (0 runs without it)"
            )
        if not self.bundle.dense:
            off = RecognizerSettings()  # what each dense-only setting is when unused
            names = ("lag_frames", "latency_frames", "segments", "provisional", "background_bias",
                     "min_segment_frames", "merge_gap_frames", "edge_background")  # fmt: skip
            dense_only = {k: getattr(s, k) for k in names if getattr(s, k) != getattr(off, k)}
            if dense_only:
                log.warning("recognizer settings %s apply to dense (stream-trained) bundles only; this "
                            "bundle labels whole windows, so they are ignored", dense_only)  # fmt: skip
            return
        w = self.window_frames
        if s.lag_frames >= w:
            raise ConfigError(
                f"recognizer.lag_frames={s.lag_frames} must be below window_frames={w} (dense bundle)"
            )
        if s.stride_frames > w:
            raise ConfigError(
                f"recognizer.stride_frames={s.stride_frames} must be <= window_frames={w} (dense bundle: "
                "frames between windows would never be seen)"
            )

    def _make_model(self) -> Any:
        """Clips -> logits: the bundle's torch model (cast when asked) or an ONNX Runtime session."""
        b, s = self.bundle, self.settings
        if s.backend == "onnxruntime":
            from masksem_core.runtime.onnx_backend import OnnxClassifier, bundle_onnx

            self.device, self.dtype = torch.device("cpu"), torch.float32  # inputs are handed over on the CPU
            return OnnxClassifier(bundle_onnx(b, s.precision), s.device, s.num_threads)
        return self._on_device(b.model)

    def _make_segment_model(self) -> Any:
        """The bundle's segment classifier on the recogniser's torch device and precision (with the
        onnxruntime backend: torch on the CPU in fp32, as the bundle's ONNX file holds the main model)."""
        model = self.bundle.segment_model
        return None if model is None else self._on_device(model)

    def _on_device(self, model: torch.nn.Module) -> torch.nn.Module:
        """The bundle's own model on the CPU in fp32, else a copy cast to the device and precision."""
        if self.device.type == "cpu" and self.dtype == torch.float32:
            return model.eval()
        return copy.deepcopy(model).to(self.device, self.dtype).eval()

    # ------------------------------------------------------------------ input
    def push(
        self,
        person_id: Any,
        stamp_s: float,
        joints: np.ndarray,
        confidence: np.ndarray | None = None,
        layout: str | None = None,
    ) -> bool:
        """Add one frame of one person; returns whether it was used. Never raises (bad input is counted)."""
        with self._lock:
            self._counts["received"] += 1
            try:
                reason = self._push(person_id, stamp_s, joints, confidence, layout)
            except Exception:  # a bug must not take a robot's perception down: count, log, carry on
                if _worth_logging(self._dropped["internal_error"]):
                    log.exception("recognizer push failed for person %r", person_id)
                reason = "internal_error"
            return self._count(reason)

    def _count(self, reason: str | None) -> bool:
        if reason is not None:
            self._dropped[reason] += 1
            return False
        self._counts["used"] += 1
        return True

    def _push(
        self, person_id: Any, stamp_s: float, joints: Any, confidence: Any, layout: str | None
    ) -> str | None:
        try:
            hash(person_id)
        except TypeError:
            return "bad_person_id"
        target = self.bundle.layout.name
        try:
            adapter = get_adapter(layout or target, target)
        except (KeyError, TypeError):
            return "bad_layout"
        reason, j, c = check_frame(
            stamp_s, joints, confidence, adapter.source.num_joints, self.settings.min_confidence
        )
        if reason is not None:
            return reason
        stamp = float(stamp_s)
        self.expire(stamp)
        track = self.tracks.get(person_id)
        if track is None:
            if len(self.tracks) >= self.settings.max_persons:
                return "too_many_persons"
            track = self.tracks[person_id] = Track(self.bundle.layout.num_joints, self.track_cfg)
            self.smoothers[person_id] = Smoother(
                self.settings.smoothing, self.settings.smoothing_alpha, self.settings.smoothing_window
            )
            if self.bundle.dense:
                self.scores[person_id] = FrameScores(2 * self.window_frames, len(self.bundle.labels))
                self.segments[person_id] = ActionSegment(
                    self.settings.min_segment_frames,
                    self.settings.merge_gap_frames,
                    self.settings.edge_background,
                )
                if self.segment_model is not None:
                    slots, joints = self.bundle.num_persons, self.bundle.layout.num_joints
                    self.history[person_id] = FrameHistory(
                        SEGMENT_HISTORY_WINDOWS * self.window_frames, slots, joints
                    )
        outcome = track.add(stamp, j if adapter.source.name == target else adapter(j))
        if outcome in DROP_REASONS:
            return outcome
        if outcome in ("gap_reset", "clock_reset"):
            self.smoothers[person_id].reset()
            if person_id in self.scores:
                self.scores[person_id].reset()
                self.segments[person_id].reset()
            if person_id in self.history:
                self.history[person_id].reset()
        if outcome is not None:
            self._events[outcome] += 1
        self.now = stamp
        if track.due and track.due_since is None:
            track.due_since = time.perf_counter()
        return None

    def expire(self, now: float) -> int:
        """Drop tracks not updated within `track_timeout_s` of `now` (either way: a clock that jumped back
        also strands old tracks). Called on every push; call it from a timer when input may stop."""
        timeout = self.settings.track_timeout_s
        with self._lock:
            gone = [
                pid
                for pid, t in self.tracks.items()
                if t.last_stamp is not None and abs(now - t.last_stamp) > timeout
            ]
            for pid in gone:
                del self.tracks[pid]
                del self.smoothers[pid]
                self.scores.pop(pid, None)
                self.segments.pop(pid, None)
                self.history.pop(pid, None)
            self._events["timeout"] += len(gone)
        return len(gone)

    def reset(self) -> None:
        """Forget all tracks (statistics are kept)."""
        with self._lock:
            self.tracks.clear()
            self.smoothers.clear()
            self.scores.clear()
            self.segments.clear()
            self.history.clear()

    def update_settings(self, **changes: Any) -> RecognizerSettings:
        """Change settings while running (threshold, smoothing, stride, track rules; e.g. from a ROS
        parameter): validated first, so a bad value changes nothing. Tracks keep their frames; a new
        smoothing restarts the smoothers. Device, precision, backend and threads need a new recogniser."""
        fixed = sorted({"device", "precision", "backend", "num_threads"} & set(changes))
        if fixed:
            raise ConfigError(f"recognizer settings {fixed} cannot change while running: restart")
        try:
            new = dataclasses.replace(self.settings, **changes)
        except TypeError as exc:
            known = [f.name for f in dataclasses.fields(RecognizerSettings)]
            raise ConfigError(f"unknown recognizer setting in {sorted(changes)}; known: {known}") from exc
        new.validate()
        self._check_dense(new)
        smoothing = ("smoothing", "smoothing_alpha", "smoothing_window")
        with self._lock:
            restart_smoothers = any(getattr(new, k) != getattr(self.settings, k) for k in smoothing)
            self.settings = new
            self.track_cfg = dataclasses.replace(
                self.track_cfg,
                stride_frames=new.stride_frames,
                max_gap_s=new.max_gap_s,
                clock_jump_s=new.track_timeout_s,
            )
            for track in self.tracks.values():
                track.cfg = self.track_cfg
            if restart_smoothers:
                for pid in self.smoothers:
                    self.smoothers[pid] = Smoother(new.smoothing, new.smoothing_alpha, new.smoothing_window)
            for segment in self.segments.values():  # running segments follow the new rules from now on
                segment.min_frames, segment.merge_gap = new.min_segment_frames, new.merge_gap_frames
                segment.edge_background = new.edge_background
        return new

    # ------------------------------------------------------------------ inference
    def poll(self) -> list[Recognition]:
        """Recognise every due window (newest window per person) in one batched forward pass (and the
        running action segments, with a segment classifier, in a second one).

        Thread-safe with `push()`: windows are copied under a lock, the forward passes run outside it."""
        with self._lock:
            due = [(pid, t) for pid, t in self.tracks.items() if t.due]
            if not due:
                return []
            clips, spans = [], []
            for pid, track in due:
                frames, stamps = track.window()
                clips.append(self._slots(pid, track, frames, stamps))
                last = float(track.last_stamp or stamps[-1])
                first = track.count - len(stamps)  # grid frame number of the window's first frame
                spans.append((first, stamps.copy(), last, track.due_since, self.scores.get(pid)))
                if pid in self.history:
                    self.history[pid].add(first, clips[-1], stamps)
                track.mark_emitted()
        both = self.bundle.dual and self.settings.provisional  # the newest frames from the causal pass
        windows = np.stack(clips)
        try:
            probs = self.predict(windows)
            now_probs = self.predict(windows, causal=True) if both else [None] * len(probs)
        except Exception:  # e.g. out of GPU memory: skip these windows, keep running
            if _worth_logging(self._counts["inference_errors"]):
                log.exception("recognizer forward pass failed for %d windows", len(clips))
            self._counts["inference_errors"] += 1
            return []
        with self._lock:
            answers = []  # [person, probabilities, span, provisional, segment frames to classify or None]
            for (pid, _), p, now_p, (first, stamps, last, due_since, scores) in zip(
                due, probs, now_probs, spans
            ):
                if not self.bundle.dense:
                    answers.append([pid, p, (stamps[0], stamps[-1], last, due_since), False, None])
                    continue
                if scores is None or self.scores.get(pid) is not scores:
                    continue  # the track was dropped while the forward pass ran
                answers.extend(self._dense_answers(pid, scores, first, stamps, last, due_since, p, now_p))
        self._classify_segments(answers)
        done = time.perf_counter()
        with self._lock:
            return [self._recognition(pid, p, span, done, prov) for pid, p, span, prov, _ in answers]

    def _dense_answers(
        self,
        pid: Any,
        scores: FrameScores,
        first: int,
        stamps: np.ndarray,
        last: float,
        due_since: float | None,
        token_probs: np.ndarray,
        causal_token_probs: np.ndarray | None,
    ) -> list[list[Any]]:
        """The settled report (and the provisional one) of one person's dense window, each with the
        running segment's frames when the segment classifier is to be asked about them."""
        merged = self._merge(scores, first, stamps, token_probs, causal_token_probs)
        if merged is None:
            return []
        span_probs, start, end, frames = merged
        span_probs = self._bias(span_probs)
        segment = self.settings.segments and self.bundle.background_label is not None
        background = len(self.bundle.labels) - 1
        ask = None
        if segment:
            running = self.segments[pid]
            span_probs, start = running.update(span_probs, frames, start, background)
            if running.active:
                ask = self._segment_frames(pid, running.start, end)
        out = [[pid, span_probs, (start, end, last, due_since), False, ask]]
        newest = first + len(stamps) - 1
        if self.settings.provisional and scores.reported < newest:
            # "now": the newest stride's frames (those since the previous window), not the whole lag
            k0 = max(scores.reported + 1, newest - self.settings.stride_frames + 1)
            both = self.bundle.dual
            now, now_start = self._bias(scores.mean(k0, newest, causal=both)), scores.stamp(k0)
            ask = None
            if segment:  # the label a running segment would give; the span stays these frames
                running = self.segments[pid]
                if int(np.argmax(now)) != background:
                    joined = running.joined_start()
                    ask = self._segment_frames(
                        pid, now_start if joined is None else joined, scores.stamp(newest)
                    )
                now = running.peek(now, newest - k0 + 1, background)
            out.append([pid, now, (now_start, scores.stamp(newest), last, due_since), True, ask])
        return out

    def _bias(self, probs: np.ndarray) -> np.ndarray:
        """Merged probabilities with `background_bias` added to no_action's log-probability."""
        bias = self.settings.background_bias
        if bias == 0.0 or self.bundle.background_label is None:
            return probs
        out = probs.copy()
        out[len(self.bundle.labels) - 1] *= np.exp(bias)
        return out / out.sum()

    def _segment_frames(self, pid: Any, start: float, end: float) -> np.ndarray | None:
        """A running segment's frames (M, n, V, 3) to classify whole, or None (no segment classifier in
        use, or fewer frames than a clip needs)."""
        if self.settings.segment_weight <= 0 or pid not in self.history:
            return None
        frames = self.history[pid].between(start, end)
        if frames.shape[1] < max(self.settings.min_segment_frames, SEGMENT_MIN_FRAMES):
            return None
        return frames

    def _classify_segments(self, answers: list[list[Any]]) -> None:
        """Mix the segment classifier's answer into every answer that asked for one (one batched pass;
        on failure the dense answers stand)."""
        asked = [a for a in answers if a[4] is not None]
        if not asked:
            return
        try:
            seg_probs = self.predict_segments([a[4] for a in asked])
        except Exception:
            if _worth_logging(self._counts["inference_errors"]):
                log.exception("segment classifier failed for %d segments", len(asked))
            self._counts["inference_errors"] += 1
            return
        w = self.settings.segment_weight
        for a, clip_p in zip(asked, seg_probs):
            a[1] = mix_segment(a[1], clip_p, w)

    @torch.inference_mode()
    def predict_segments(self, segments: list[np.ndarray]) -> np.ndarray:
        """Whole-clip action probabilities (N, K - 1) of segments (M, n_i, V, 3) of any lengths, each
        prepared as `evaluate` prepares a clip (centred, centre crop, resized to the clip length)."""
        b = self.bundle
        x = torch.cat(
            [
                windows_to_clips(seg[None], b.centre_joint, b.segment_clip_length, b.segment_crop_ratio)
                for seg in segments
            ]
        )
        out = []
        for i in range(0, len(x), self.settings.max_batch):
            logits = self.segment_model(x[i : i + self.settings.max_batch].to(self.device, self.dtype))
            out.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
        self._counts["segment_passes"] += len(out)
        return np.concatenate(out)

    def _merge(
        self,
        scores: FrameScores,
        first: int,
        stamps: np.ndarray,
        token_probs: np.ndarray,
        causal_token_probs: np.ndarray | None = None,
    ) -> tuple[np.ndarray, float, float, int] | None:
        """Add a dense window to the person's per-frame scores and return the merged probabilities of
        the frames now settled (new since the last report, `lag_frames` behind the newest) and their
        first and last stamps; None when no new frame is settled. With `latency_frames` d the
        probabilities of frames k0..k1 are those of frames k0 + d..k1 + d (arrived, as d <= lag).

        A continuing track resumes right after its last report even when that lies before this window
        (lag + stride > window, or a late poll): those frames are still in the ring (2 windows)."""
        w = len(stamps)
        causal = frame_probs(causal_token_probs, w) if causal_token_probs is not None else None
        scores.add(first, frame_probs(token_probs, w), stamps, causal)
        k1 = first + w - 1 - self.settings.lag_frames
        if scores.reported >= 0:  # continue where the last report ended (a late poll included)
            k0 = scores.first_held(scores.reported + 1, k1)
        else:  # first report of this track: every frame its first window saw
            k0 = first
        if k1 < k0:
            return None
        scores.reported = k1
        d = self.settings.latency_frames
        return scores.mean(k0 + d, k1 + d), scores.stamp(k0), scores.stamp(k1), k1 - k0 + 1

    def _slots(self, pid: Any, track: Track, frames: np.ndarray, stamps: np.ndarray) -> np.ndarray:
        """(M, W, V, 3): this person in slot 0, the nearest other tracks in the other slots."""
        m = self.bundle.num_persons
        out = np.zeros((m,) + frames.shape, np.float32)
        out[0] = frames
        if m == 1 or self.settings.partner == "none":
            return out
        cj = self.bundle.centre_joint
        here = track.centre(cj)
        candidates = []
        for other_id, other in self.tracks.items():
            there = other.centre(cj)
            if other_id == pid or there is None or here is None:
                continue
            dist = float(np.linalg.norm(there - here))
            if dist <= self.settings.partner_max_distance_m:
                candidates.append((dist, other))
        slot = 1
        for _, other in sorted(candidates, key=lambda c: c[0]):
            sampled = other.sample_at(stamps)
            if sampled is not None:
                out[slot] = sampled
                slot += 1
                if slot == m:
                    break
        return out

    @torch.inference_mode()
    def predict(self, windows: np.ndarray, causal: bool | None = None) -> np.ndarray:
        """(N, M, W, V, 3) windows -> (N, K) class probabilities ((N, L_t, K) per token for a dense
        bundle), in chunks of `max_batch`. `causal=True`: a dual bundle's causal answer."""
        b = self.bundle
        if causal and not (b.dual or b.model.causal):
            raise ValueError("predict(causal=True) needs a dual or causal bundle; this one is bidirectional")
        out = []
        for i in range(0, len(windows), self.settings.max_batch):
            x = windows_to_clips(
                windows[i : i + self.settings.max_batch], b.centre_joint, b.clip_length, b.crop_ratio
            )
            x = x.to(self.device, self.dtype)
            logits = self.model(x, causal=True) if causal else self.model(x)
            out.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
        self._counts["forward_passes"] += len(out)
        return np.concatenate(out)

    def _recognition(
        self, pid: Any, probs: np.ndarray, span: tuple, done: float, provisional: bool = False
    ) -> Recognition:
        """A provisional report (the unsettled newest frames) bypasses smoothing, whose state follows the
        settled reports only, and is not counted as a window."""
        start, end, stamp, due_since = span
        start, end = float(start), float(end)
        if pid in self.smoothers and not provisional:
            smoothed, cls = self.smoothers[pid](probs)
        else:
            smoothed, cls = probs, int(probs.argmax())
        k = min(self.settings.top_k, len(smoothed))
        top = np.argsort(-smoothed, kind="stable")[:k]
        score = float(smoothed[cls])
        known = score >= self.settings.score_threshold
        latency = (done - due_since) * 1e3 if due_since is not None else float("nan")
        if not provisional:
            self._latencies.append(latency)
            self._counts["windows"] += 1
        return Recognition(
            person_id=pid,
            label=self.bundle.labels[cls] if known else self.settings.unknown_label,
            class_index=cls if known else -1,
            score=score,
            topk_labels=[self.bundle.labels[i] for i in top],
            topk_scores=[float(smoothed[i]) for i in top],
            window_start=start,
            window_end=end,
            stamp=stamp,
            latency_ms=latency,
        )

    def joint_order_problems(self, person_id: Any) -> list[str]:
        """Diagnostic: what looks wrong (joint order, units, up axis) in this person's buffered frames,
        in the bundle's layout (`masksem_core.data.joint_check`); empty when they look like a body."""
        from masksem_core.data.joint_check import joint_order_diagnostic

        with self._lock:
            track = self.tracks.get(person_id)
            if track is None or not track.filled:
                return []
            frames, _ = track.window()
            return joint_order_diagnostic(frames.copy(), self.bundle.layout)

    # ------------------------------------------------------------------ statistics
    @property
    def stats(self) -> dict[str, Any]:
        """Counters the caller can log or publish as diagnostics."""
        with self._lock:
            return self._stats()

    def _stats(self) -> dict[str, Any]:
        lat = np.asarray(self._latencies, dtype=np.float64)
        return {
            "received": self._counts["received"],
            "used": self._counts["used"],
            "dropped": sum(self._dropped.values()),
            "dropped_by_reason": dict(self._dropped),
            "events": dict(self._events),
            "windows": self._counts["windows"],
            "forward_passes": self._counts["forward_passes"],
            "segment_passes": self._counts["segment_passes"],
            "inference_errors": self._counts["inference_errors"],
            "latency_ms_p50": float(np.percentile(lat, 50)) if lat.size else float("nan"),
            "latency_ms_p99": float(np.percentile(lat, 99)) if lat.size else float("nan"),
            "tracks": len(self.tracks),
        }
