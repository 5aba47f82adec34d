"""Online merging of overlapping windows' per-frame class probabilities (dense bundles), one per person.

A dense model labels every temporal token of a window; windows overlap (a new one every `stride`
frames), so each grid frame is seen by up to `window / stride` windows, early ones with little
context after it, later ones with more. `FrameScores` keeps, for the last `capacity` grid frames of a
track, the sum of the probabilities every window gave the frame and how many windows did; the mean is
the merged estimate. Memory is a fixed ring: flat for any stream length. A dual bundle's causal
probabilities (what each window said of a frame from the frames up to it) ride along in a second sum.
"""

from __future__ import annotations

import numpy as np


def frame_probs(token_probs: np.ndarray, window_frames: int) -> np.ndarray:
    """(L_t, K) per-token probabilities -> (W, K) per frame (frame f belongs to token floor(f L_t / W))."""
    tokens = token_probs.shape[0]
    index = (np.arange(window_frames) * tokens) // window_frames
    return token_probs[index]


class FrameScores:
    """Per-frame probability sums of one track's recent grid frames, indexed by grid frame number."""

    def __init__(self, capacity: int, num_classes: int) -> None:
        self.capacity = int(capacity)
        self.sums = np.zeros((self.capacity, num_classes), np.float64)
        self.counts = np.zeros(self.capacity, np.int64)
        self.index = np.full(self.capacity, -1, np.int64)  # grid frame number held in each slot
        self.stamps = np.zeros(self.capacity, np.float64)
        self.causal_sums: np.ndarray | None = None  # allocated by the first `add` with causal_probs
        self.reported = -1  # newest grid frame already reported

    def reset(self) -> None:
        self.sums[:] = 0.0
        if self.causal_sums is not None:
            self.causal_sums[:] = 0.0
        self.counts[:] = 0
        self.index[:] = -1
        self.reported = -1

    def add(
        self, first: int, probs: np.ndarray, stamps: np.ndarray, causal_probs: np.ndarray | None = None
    ) -> None:
        """Add a window's per-frame probabilities (W, K) for grid frames first .. first + W - 1 (and a
        dual model's causal ones, same shape)."""
        ks = first + np.arange(len(probs))
        slots = ks % self.capacity
        stale = self.index[slots] != ks  # slot last held an older frame: start it afresh
        if causal_probs is not None and self.causal_sums is None:
            self.causal_sums = np.zeros_like(self.sums)
        self.sums[slots[stale]] = 0.0
        if self.causal_sums is not None:
            self.causal_sums[slots[stale]] = 0.0
            if causal_probs is not None:
                self.causal_sums[slots] += causal_probs
        self.counts[slots[stale]] = 0
        self.index[slots] = ks
        self.sums[slots] += probs
        self.counts[slots] += 1
        self.stamps[slots] = stamps

    def mean(self, k0: int, k1: int, causal: bool = False) -> np.ndarray:
        """Mean over grid frames k0..k1 (inclusive) of each frame's merged probabilities (K,) (`causal`:
        of the causal ones, when windows brought them)."""
        ks = np.arange(k0, k1 + 1)
        slots = ks % self.capacity
        held = (self.index[slots] == ks) & (self.counts[slots] > 0)
        if not held.any():
            raise KeyError(f"no scores for grid frames {k0}..{k1}")
        sums = self.causal_sums if causal and self.causal_sums is not None else self.sums
        per_frame = sums[slots[held]] / self.counts[slots[held], None]
        return per_frame.mean(axis=0)

    def first_held(self, k0: int, k1: int) -> int:
        """The oldest of grid frames k0..k1 that has scores (k1 + 1 if none): frames that no window saw
        (a poll more than a window late) or that left the ring cannot be labelled."""
        ks = np.arange(k0, k1 + 1)
        slots = ks % self.capacity
        held = np.flatnonzero((self.index[slots] == ks) & (self.counts[slots] > 0))
        return int(ks[held[0]]) if held.size else k1 + 1

    def stamp(self, k: int) -> float:
        return float(self.stamps[k % self.capacity])


class ActionSegment:
    """The running action segment of one person (dense bundles with a background class).

    Settled chunks whose most likely class is an action extend the segment (or start one); a chunk whose
    most likely class is the background ends it. The segment's class scores are the frame-weighted mean
    of its chunks' probabilities, so every report of a running action re-labels it from all its frames
    (like classifying the clip so far) instead of from the newest frames only, and its span reaches back
    to where it started: retrospectively the segment carries one label, decided on most evidence.
    Two retrospective repairs: an action that resumes within `merge_gap` frames of the previous one's end
    continues it (its span covers the short pause), and an action that ended after fewer than
    `min_frames` frames is reported again as background over its whole span (a blip, not an action).
    A third trims a segment's edges, where a person moving between actions is most often taken for one:
    with `edge_background` < 1, an action chunk whose no_action probability is above it does not start
    a segment (it is reported as no_action, with only that column kept), and the run of such chunks at a
    segment's end is reported again as no_action when the segment ends.
    """

    def __init__(self, min_frames: int = 0, merge_gap: int = 0, edge_background: float = 1.0) -> None:
        self.min_frames, self.merge_gap = int(min_frames), int(merge_gap)
        self.edge_background = float(edge_background)
        self.reset()

    def reset(self) -> None:
        self.active = False
        self.start = 0.0
        self.sums: np.ndarray | None = None
        self.count = 0
        self.gap = 0  # background frames since the last segment ended
        self.prev: tuple[float, np.ndarray, int] | None = None  # the last segment: start, sums, count
        self._clear_tail()

    def _clear_tail(self) -> None:
        """Forget the run of weak action chunks (no_action above edge_background) at the segment's end."""
        self.tail_start = 0.0
        self.tail_sums: np.ndarray | None = None
        self.tail_count = 0

    def update(
        self, probs: np.ndarray, frames: int, start: float, background: int
    ) -> tuple[np.ndarray, float]:
        """Feed one settled chunk's mean probabilities over `frames` frames starting at stamp `start`;
        returns the probabilities to report (background column zeroed inside an action; a weak action
        chunk outside one keeps only it) and the stamp the reported span starts at."""
        is_action = int(np.argmax(probs)) != background
        weak = bool(probs[background] > self.edge_background)
        if not is_action or (weak and not self.active):
            if is_action:  # a weak action chunk outside a segment: no_action
                probs = np.where(np.arange(len(probs)) == background, probs, 0.0)
            if not self.active:
                self.gap += frames
                return probs, start
            assert self.sums is not None
            end = start
            if self.tail_count:  # the segment ends where its weak tail began
                assert self.tail_sums is not None
                self.sums, self.count = self.sums - self.tail_sums, self.count - self.tail_count
                end = self.tail_start
            self.prev, self.active, self.gap = (self.start, self.sums, self.count), False, frames
            self._clear_tail()
            if self.count < self.min_frames:  # a blip: background over its whole span
                return probs, self.start
            return probs, end
        if not self.active:
            joined = self._joins()  # None or the previous segment, resumed within merge_gap
            if joined is not None:
                self.start, self.sums, self.count = joined[0], joined[1].copy(), joined[2]
            else:
                self.start, self.sums, self.count = start, np.zeros_like(probs), 0
            self.active, self.gap = True, 0
        assert self.sums is not None
        if weak:
            if not self.tail_count:
                self.tail_start, self.tail_sums = start, np.zeros_like(probs)
            assert self.tail_sums is not None
            self.tail_sums += probs * frames
            self.tail_count += frames
        else:
            self._clear_tail()
        self.sums += probs * frames
        self.count += frames
        out = self.sums / self.count
        out[background] = 0.0  # inside an action segment: say which action
        return out, self.start

    def _joins(self) -> tuple[float, np.ndarray, int] | None:
        """The segment an action chunk would extend: the running one, else the previous one when the
        action resumes within `merge_gap` frames of its end, else None (a new segment)."""
        if self.active:
            assert self.sums is not None
            return self.start, self.sums, self.count
        if self.prev is not None and self.gap <= self.merge_gap:
            return self.prev
        return None

    def joined_start(self) -> float | None:
        """Where the segment an action chunk would extend now starts (None: it would start a new one)."""
        joined = self._joins()
        return None if joined is None else joined[0]

    def peek(self, probs: np.ndarray, frames: int, background: int) -> np.ndarray:
        """The probabilities `update` would report for this chunk, without changing the segment
        (provisional reports of frames not settled yet): background as it is; an action joins the
        segment it would extend (`_joins`), else stands alone, background column zeroed."""
        if int(np.argmax(probs)) == background:
            return probs
        joined = self._joins()
        sums, count = (np.zeros_like(probs), 0) if joined is None else joined[1:]
        out = (sums + probs * frames) / (count + frames)
        out[background] = 0.0
        return out
