"""The recent frames of one person, kept so that a running action segment can be classified as a whole.

A dense model labels each frame from the window around it; a whole-clip classifier (a bundle's segment
classifier) is more accurate on a whole action but needs all of it. `FrameHistory` keeps the model
input of the last `capacity` grid frames (every person slot: partners included, as the windows had
them) by grid frame number, in a fixed ring, and hands back the frames of a segment by stamps. A segment
longer than the ring is classified from its newest `capacity` frames.
"""

from __future__ import annotations

import numpy as np


class FrameHistory:
    """(M, V, 3) model-input frames of one track's recent grid frames, indexed by grid frame number."""

    def __init__(self, capacity: int, slots: int, joints: int) -> None:
        self.capacity = int(capacity)
        self.frames = np.zeros((self.capacity, slots, joints, 3), np.float32)
        self.stamps = np.zeros(self.capacity, np.float64)
        self.index = np.full(self.capacity, -1, np.int64)

    def reset(self) -> None:
        self.index[:] = -1

    def add(self, first: int, window: np.ndarray, stamps: np.ndarray) -> None:
        """Store a window (M, W, V, 3) of grid frames first .. first + W - 1 with their stamps (W,)."""
        w = window.shape[1]
        ks = first + np.arange(w)
        slots = ks % self.capacity
        self.frames[slots] = np.moveaxis(window, 1, 0)
        self.stamps[slots] = stamps
        self.index[slots] = ks

    def between(self, start: float, end: float, tol: float = 1e-6) -> np.ndarray:
        """The held frames with stamps in [start, end], oldest first, as (M, n, V, 3) (n may be 0)."""
        held = np.flatnonzero((self.index >= 0) & (self.stamps >= start - tol) & (self.stamps <= end + tol))
        order = held[np.argsort(self.index[held], kind="stable")]
        return np.moveaxis(self.frames[order], 0, 1)
