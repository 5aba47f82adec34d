"""Health figures of a node as plain data: input rate, drops, latency percentiles -> a diagnostic status.

Kept free of ROS so the thresholds are tested here; the nodes copy a `StatusReport` into a
`diagnostic_msgs/DiagnosticStatus` (level, message, key/value strings) unchanged.
"""

from __future__ import annotations

import math
from collections import deque
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
    extra: dict[str, Any] | None = None,
    warning: str | None = None,
) -> StatusReport:
    """ERROR when the model cannot run, STALE when no input for `stale_after_s`, WARN when more than
    10% of the input is dropped or `warning` is set (e.g. a CPU fallback), else OK; every figure goes
    into the values."""
    values = {
        "device": device,
        "input_rate_hz": _fmt(input_rate_hz),
        "input_age_s": "never" if input_age_s is None else _fmt(input_age_s),
        "received_frames": str(received),
        "dropped_frames": str(dropped),
        "inference_latency_p50_ms": _fmt(latency_p50_ms),
        "inference_latency_p99_ms": _fmt(latency_p99_ms),
    }
    values.update({k: _fmt(v) for k, v in (extra or {}).items()})
    if error:
        return StatusReport(ERROR, error, values)
    if input_age_s is None or input_age_s > stale_after_s:
        return StatusReport(STALE, "no skeleton input", values)
    if received and dropped / received > 0.1:
        return StatusReport(WARN, f"dropping {dropped} of {received} frames", values)
    if warning:
        return StatusReport(WARN, warning, values)
    return StatusReport(OK, f"running on {device}", values)
