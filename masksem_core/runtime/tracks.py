"""Per-person track buffers: validation of raw frames, resampling onto the model's frame grid, gap rules.

Skeletons arrive at uneven rates with holes; the model was trained on clips sampled at a fixed rate.
Each track therefore resamples its raw frames onto a regular grid `t0 + k / fps` by linear
interpolation between consecutive raw frames, and keeps only the last `window_frames` grid frames in a
fixed ring buffer, so memory stays flat however long a person is tracked.

Rules for bad input (each counted by the caller, never raised):
- stamp not a finite number -> drop (`bad_stamp`); joints not (V, 3) or confidence not (V,) -> drop
  (`bad_shape`); any NaN/inf value -> drop (`non_finite`); mean confidence below the threshold -> drop
  (`low_confidence`).
- stamp equal to the previous one -> drop (`repeated_stamp`); earlier than the previous one -> drop
  (`backwards_stamp`), unless it is earlier by more than `clock_jump_s` (a restarted clock or a
  looped bag) -> the track restarts from this frame (`clock_reset`).
- a hole shorter than `max_gap_s` is interpolated (`gap_interpolated` counts holes longer than two grid
  periods); a longer hole (including a person who vanishes and comes back) restarts the track from
  the new frame (`gap_reset`), so a window never spans invented motion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DROP_REASONS = (
    "bad_person_id",
    "bad_layout",
    "bad_stamp",
    "bad_shape",
    "non_finite",
    "low_confidence",
    "repeated_stamp",
    "backwards_stamp",
    "too_many_persons",
    "internal_error",
)
EVENTS = ("gap_interpolated", "gap_reset", "clock_reset", "timeout")


@dataclass(frozen=True)
class TrackConfig:
    """Grid and gap rules shared by all tracks of a recogniser."""

    fps: float
    window_frames: int
    stride_frames: int
    max_gap_s: float = 0.5
    clock_jump_s: float = 2.0

    def __post_init__(self) -> None:
        if not (self.fps > 0 and self.window_frames >= 2 and self.stride_frames >= 1 and self.max_gap_s > 0):
            raise ValueError(f"invalid TrackConfig {self}")


def check_frame(
    stamp: object, joints: object, confidence: object, num_joints: int, min_confidence: float = 0.0
) -> tuple[str | None, np.ndarray, np.ndarray]:
    """Validate one raw frame; returns (drop reason or None, joints (V,3) float32, confidence (V,))."""
    empty = np.zeros((0, 3), np.float32), np.zeros(0, np.float32)
    try:
        stamp_f = float(stamp)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "bad_stamp", *empty
    if not math.isfinite(stamp_f) or isinstance(stamp, bool):
        return "bad_stamp", *empty
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # huge values become inf: dropped as non_finite
            j = np.asarray(joints, dtype=np.float32)
            c = np.ones(num_joints, np.float32) if confidence is None else np.asarray(confidence, np.float32)
    except (TypeError, ValueError):
        return "bad_shape", *empty
    if j.shape != (num_joints, 3) or c.shape != (num_joints,):
        return "bad_shape", *empty
    if not (np.isfinite(j).all() and np.isfinite(c).all()):
        return "non_finite", *empty
    if min_confidence > 0.0 and float(c.mean()) < min_confidence:
        return "low_confidence", *empty
    return None, j, c


class Track:
    """One person's recent motion on the model's frame grid (a ring of `window_frames` frames)."""

    def __init__(self, num_joints: int, cfg: TrackConfig) -> None:
        self.cfg = cfg
        self.frames = np.zeros((cfg.window_frames, num_joints, 3), np.float32)
        self.stamps = np.zeros(cfg.window_frames, np.float64)
        self.reset()

    def reset(self) -> None:
        """Forget the motion (after a long gap or a clock jump); the next frame starts a new grid."""
        self.count = 0  # grid frames written since the reset
        self.t0 = 0.0
        self.next_k = 0
        self.last_stamp: float | None = None
        self.last_joints: np.ndarray | None = None
        self.emitted_at: int | None = None  # `count` when the last window was emitted
        self.due_since: float | None = None  # perf_counter() when the pending window became due

    def add(self, stamp: float, joints: np.ndarray) -> str | None:
        """Add a validated frame. Returns a drop reason, an event name (frame used), or None."""
        event = None
        if self.last_stamp is not None:
            dt = stamp - self.last_stamp
            if dt == 0.0:
                return "repeated_stamp"
            if dt < 0.0:
                if -dt <= self.cfg.clock_jump_s:
                    return "backwards_stamp"
                self.reset()
                event = "clock_reset"
            elif dt > self.cfg.max_gap_s:
                self.reset()
                event = "gap_reset"
            elif dt > 2.0 / self.cfg.fps:
                event = "gap_interpolated"
        if self.last_stamp is None:
            self.t0 = stamp
            self._write(np.array([stamp]), joints[None])
            self.next_k = 1
        else:
            self._resample_to(stamp, joints)
        self.last_stamp, self.last_joints = stamp, joints
        return event

    def _resample_to(self, stamp: float, joints: np.ndarray) -> None:
        assert self.last_stamp is not None and self.last_joints is not None
        last_k = math.floor((stamp - self.t0) * self.cfg.fps + 1e-6)
        if last_k < self.next_k:
            return
        first_k = max(self.next_k, last_k - self.cfg.window_frames + 1)  # older ones would be overwritten
        ks = np.arange(first_k, last_k + 1)
        grid = self.t0 + ks / self.cfg.fps
        alpha = np.clip((grid - self.last_stamp) / (stamp - self.last_stamp), 0.0, 1.0)
        frames = self.last_joints[None] + alpha[:, None, None].astype(np.float32) * (
            joints - self.last_joints
        )
        self._write(grid, frames)
        self.next_k = last_k + 1

    def _write(self, stamps: np.ndarray, frames: np.ndarray) -> None:
        idx = (self.count + np.arange(len(stamps))) % self.cfg.window_frames
        self.frames[idx] = frames
        self.stamps[idx] = stamps
        self.count += len(stamps)

    @property
    def filled(self) -> int:
        return min(self.count, self.cfg.window_frames)

    @property
    def due(self) -> bool:
        """Due when the ring is full and `stride_frames` new grid frames arrived since the last window."""
        if self.count < self.cfg.window_frames:
            return False
        return self.emitted_at is None or self.count - self.emitted_at >= self.cfg.stride_frames

    def mark_emitted(self) -> None:
        self.emitted_at = self.count
        self.due_since = None

    def window(self) -> tuple[np.ndarray, np.ndarray]:
        """The newest `window_frames` grid frames (W, V, 3) and their stamps (W,), oldest first."""
        n = self.filled
        idx = np.arange(self.count - n, self.count) % self.cfg.window_frames
        return self.frames[idx], self.stamps[idx]

    def sample_at(self, stamps: np.ndarray, min_overlap: float = 0.5) -> np.ndarray | None:
        """This track's motion interpolated at other stamps (for a partner slot); None if it overlaps
        less than `min_overlap` of them. Stamps outside its history take the nearest frame."""
        frames, own = self.window()
        if len(own) < 2:
            return None
        inside = (stamps >= own[0] - 0.5 / self.cfg.fps) & (stamps <= own[-1] + 0.5 / self.cfg.fps)
        if inside.mean() < min_overlap:
            return None
        pos = np.clip((stamps - own[0]) * self.cfg.fps, 0.0, len(own) - 1.0)  # own stamps are a regular grid
        lo = np.minimum(np.floor(pos).astype(np.int64), len(own) - 2)
        frac = (pos - lo).astype(np.float32)[:, None, None]
        return frames[lo] * (1.0 - frac) + frames[lo + 1] * frac

    def centre(self, joint: int) -> np.ndarray | None:
        """Newest position of one joint (for choosing the nearest partner)."""
        return None if self.last_joints is None else self.last_joints[joint]
