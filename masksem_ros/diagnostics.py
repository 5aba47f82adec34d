"""Health figures of a node as plain data: input rate, drops, latency percentiles -> a diagnostic status.

Kept free of ROS so the thresholds are tested here; the nodes copy a `StatusReport` into a
`diagnostic_msgs/DiagnosticStatus` (level, message, key/value strings) unchanged.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# diagnostic_msgs/DiagnosticStatus levels
OK, WARN, ERROR, STALE = 0, 1, 2, 3


class RateMeter:
    """Messages per second over the last `window_s` seconds of arrival times."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()
        self.count = 0
        self.last: float | None = None

    def tick(self, now: float) -> None:
        self._times.append(now)
        self.count += 1
        self.last = now
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()

    def rate(self, now: float) -> float:
        self._trim(now)
        if len(self._times) < 2:
            return 0.0
        span = max(now - self._times[0], self._times[-1] - self._times[0])
        return (len(self._times) - 1) / span if span > 0 else 0.0


class LatencyStats:
    """Percentiles of the most recent `maxlen` latencies (milliseconds); NaN values are ignored."""

    def __init__(self, maxlen: int = 1000) -> None:
        self._values: deque[float] = deque(maxlen=maxlen)

    def add(self, ms: float) -> None:
        if math.isfinite(ms):
            self._values.append(float(ms))

    def percentile(self, q: float) -> float:
        if not self._values:
            return float("nan")
        ordered = sorted(self._values)
        k = min(len(ordered) - 1, max(0, math.ceil(q / 100.0 * len(ordered)) - 1))  # nearest rank
        return ordered[k]


@dataclass
class StatusReport:
    level: int
    message: str
    values: dict[str, str] = field(default_factory=dict)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.3f}"
    return str(v)


class DropWindow:
    """Received and dropped input frames (with drop reasons) over the last `window_s` seconds, so a
    burst of bad input after hours of good input still shows in the drop rate."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._events: deque[tuple[float, int, int, dict[str, int]]] = deque()

    def add(self, now: float, received: int, dropped: int, reasons: Mapping[str, int] | None = None) -> None:
        self._events.append((now, int(received), int(dropped), dict(reasons or {})))
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._events and now - self._events[0][0] > self.window_s:
            self._events.popleft()

    def totals(self, now: float) -> tuple[int, int, dict[str, int]]:
        """(received, dropped, {reason: count}) within the window ending at `now`."""
        self._trim(now)
        reasons: Counter[str] = Counter()
        for _, _, _, r in self._events:
            reasons.update(r)
        received = sum(e[1] for e in self._events)
        dropped = sum(e[2] for e in self._events)
        return received, dropped, {k: v for k, v in sorted(reasons.items()) if v}


def format_reasons(reasons: Mapping[str, int]) -> str:
    """{reason: count} -> 'non_finite 30, bad_shape 2' (most frequent first)."""
    return ", ".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])) if v)


def recognizer_status(
    *,
    error: str | None,
    device: str,
    input_rate_hz: float,
    input_age_s: float | None,
    dropped: int,
    received: int,
    latency_p50_ms: float,
    latency_p99_ms: float,
    stale_after_s: float = 2.0,
    window_s: float = 5.0,
    reasons: Mapping[str, int] | None = None,
    extra: dict[str, Any] | None = None,
    warning: str | None = None,
) -> StatusReport:
    """The documented levels, first match wins:
    ERROR when the model cannot run; STALE when no input message at all arrived for `stale_after_s`;
    WARN when every input frame of the last `window_s` was dropped (malformed-only input, with the
    reasons), when more than 10% of them were dropped, or when `warning` is set (e.g. a CPU
    fallback); else OK. `received`/`dropped` count person-frames within the window; every figure goes
    into the values."""
    why = format_reasons(reasons or {})
    values = {
        "device": device,
        "input_rate_hz": _fmt(input_rate_hz),
        "input_age_s": "never" if input_age_s is None else _fmt(input_age_s),
        "window_s": _fmt(float(window_s)),
        "window_received_frames": str(received),
        "window_dropped_frames": str(dropped),
        "window_drop_rate": _fmt(dropped / received if received else 0.0),
        "window_dropped_by_reason": why or "none",
        "inference_latency_p50_ms": _fmt(latency_p50_ms),
        "inference_latency_p99_ms": _fmt(latency_p99_ms),
    }
    values.update({k: _fmt(v) for k, v in (extra or {}).items()})
    if error:
        return StatusReport(ERROR, error, values)
    if input_age_s is None or input_age_s > stale_after_s:
        return StatusReport(STALE, "no skeleton input", values)
    span = f"in the last {window_s:g} s"
    if received and dropped == received:
        message = f"no valid skeleton input: all {received} frames {span} dropped ({why})"
        return StatusReport(WARN, message, values)
    if received and dropped / received > 0.1:
        return StatusReport(WARN, f"dropping {dropped} of {received} frames {span} ({why})", values)
    if warning:
        return StatusReport(WARN, warning, values)
    return StatusReport(OK, f"running on {device}", values)
