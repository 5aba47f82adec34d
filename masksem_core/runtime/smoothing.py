"""Temporal smoothing of per-window class probabilities, one state per person.

Consecutive windows overlap, and a single window can flicker between similar classes; a robot should
not change its mind every half second. `none` passes probabilities through; `ema` keeps an exponential
moving average (weight `alpha` on the newest window); `majority` votes over the last `window` argmax
labels and reports, as score, the mean probability of the winning class over those windows (ties go
to the most recent winner). State is bounded: one vector or a short deque per person.
"""

from __future__ import annotations

from collections import deque
from typing import Literal

import numpy as np

SmoothingKind = Literal["none", "ema", "majority"]


class Smoother:
    """Smooths one person's probability vectors over successive windows."""

    def __init__(self, kind: SmoothingKind = "none", alpha: float = 0.5, window: int = 5) -> None:
        if kind not in ("none", "ema", "majority"):
            raise ValueError(f"smoothing must be none, ema or majority, got {kind!r}")
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"smoothing alpha must be in (0, 1], got {alpha}")
        if window < 1:
            raise ValueError(f"smoothing window must be >= 1, got {window}")
        self.kind, self.alpha = kind, alpha
        self._ema: np.ndarray | None = None
        self._history: deque[np.ndarray] = deque(maxlen=window)

    def reset(self) -> None:
        self._ema = None
        self._history.clear()

    def __call__(self, probs: np.ndarray) -> tuple[np.ndarray, int]:
        """Feed one window's probabilities (K,); returns (smoothed probabilities (K,), chosen class)."""
        probs = np.asarray(probs, dtype=np.float64)
        if self.kind == "none":
            return probs, int(probs.argmax())
        if self.kind == "ema":
            self._ema = (
                probs.copy() if self._ema is None else self.alpha * probs + (1 - self.alpha) * self._ema
            )
            return self._ema, int(self._ema.argmax())
        self._history.append(probs)
        stack = np.stack(self._history)  # (n, K)
        labels = stack.argmax(axis=1)
        votes = np.bincount(labels, minlength=stack.shape[1])
        tied = set(np.flatnonzero(votes == votes.max()).tolist())
        winner = next(int(c) for c in labels[::-1] if int(c) in tied)
        return stack.mean(axis=0), winner
