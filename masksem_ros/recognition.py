"""What the recogniser node does, without rclpy: frames in, confident recognitions and health out.

A bundle that is missing or broken does not raise: the pipeline stays up in an error state that the
diagnostics report (a robot's launch file should not crash-loop), and every frame is counted as dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from masksem_ros.diagnostics import LatencyStats, RateMeter, StatusReport, recognizer_status

log = logging.getLogger(__name__)


def _default_factory(bundle: str, settings: Any) -> Any:
    from masksem_core.runtime.recognizer import StreamingRecognizer

    return StreamingRecognizer(bundle, settings)


def make_settings(**params: Any) -> Any:
    """RecognizerSettings from node parameters; unknown names are an error that lists the known ones."""
    from dataclasses import fields

    from masksem_core.runtime.recognizer import RecognizerSettings

    known = {f.name for f in fields(RecognizerSettings)}
    unknown = set(params) - known
    if unknown:
        raise ValueError(f"unknown recogniser setting(s) {sorted(unknown)}; known: {sorted(known)}")
    return RecognizerSettings(**params)


class RecognitionPipeline:
    """Feeds `StreamingRecognizer` and keeps the node's own statistics (input rate, end-to-end latency).

    `factory(bundle_path, settings)` builds the recogniser; tests may pass a small fake with the same
    interface (push / poll / expire / stats).
    """

    def __init__(
        self,
        bundle_path: str,
        settings: Any | None = None,
        device: str = "cpu",
        factory: Callable[[str, Any], Any] | None = None,
        stale_after_s: float = 2.0,
    ) -> None:
        self.device = device
        self.stale_after_s = stale_after_s
        self.error: str | None = None
        self.warning: str | None = None
        self.recognizer: Any = None
        self.input = RateMeter()
        self.end_to_end = LatencyStats()
        self.bad_messages = 0
        self.rejected_frames = 0  # frames dropped before reaching the recogniser (no model, bad message)
        self.published = 0
        self._last_stamp: float | None = None
        self._last_arrival: float | None = None
        if not bundle_path:
            self.error = "no model bundle configured (parameter 'bundle')"
            return
        settings = self._fall_back_to_cpu(settings)
        try:
            self.recognizer = (factory or _default_factory)(bundle_path, settings)
        except Exception as exc:  # missing file, bad YAML, checksum mismatch, torch missing, ...
            self.error = f"cannot load model bundle {bundle_path!r}: {type(exc).__name__}: {exc}"
            log.error(self.error)

    def _fall_back_to_cpu(self, settings: Any) -> Any:
        """CUDA asked for on a machine without it: run on the CPU and say so (WARN), don't stop."""
        wanted = str(getattr(settings, "device", self.device) or "cpu")
        if not wanted.startswith("cuda"):
            return settings
        try:
            import torch

            available = torch.cuda.is_available()
        except ImportError:
            available = False
        if available:
            return settings
        self.warning = f"device {wanted!r} requested but CUDA is not available: running on the CPU"
        log.warning(self.warning)
        self.device = "cpu"
        if settings is not None:
            import dataclasses

            cpu_precision = settings.precision if settings.backend == "onnxruntime" else "fp32"
            settings = dataclasses.replace(settings, device="cpu", precision=cpu_precision)
        return settings

    @property
    def labels(self) -> list[str]:
        return list(getattr(getattr(self.recognizer, "bundle", None), "labels", []) or [])

    def on_bad_message(self, reason: str) -> None:
        """A message that could not be converted (logged by the caller, counted here)."""
        self.bad_messages += 1
        self.rejected_frames += 1

    def on_frame(
        self,
        now: float,
        stamp: float,
        persons: Mapping[str, tuple[np.ndarray, np.ndarray]],
        layout: str | None,
    ) -> list[Any]:
        """Push one frame of all persons, then poll; returns the confident recognitions (class_index >= 0).

        `now` is the node clock (for rates and latency), `stamp` the frame's header stamp.
        """
        self.input.tick(now)
        self._last_stamp, self._last_arrival = stamp, time.monotonic()
        if self.recognizer is None:
            self.rejected_frames += 1
            return []
        for pid, (joints, conf) in persons.items():
            self.recognizer.push(pid, stamp, joints, conf, layout or None)
        try:
            results = self.recognizer.poll()
        except Exception:  # poll is meant not to raise; a robot keeps running if it does
            log.exception("recogniser poll failed")
            return []
        confident = [r for r in results if int(r.class_index) >= 0]
        for r in confident:
            self.end_to_end.add((now - float(r.stamp)) * 1e3)
        self.published += len(confident)
        return confident

    def expire(self) -> int:
        """Drop tracks whose person left, on the sensor clock estimated from the last frame's arrival."""
        if self.recognizer is None or self._last_stamp is None or self._last_arrival is None:
            return 0
        return int(self.recognizer.expire(self._last_stamp + (time.monotonic() - self._last_arrival)))

    def status(self, now: float) -> StatusReport:
        stats: dict[str, Any] = dict(self.recognizer.stats) if self.recognizer is not None else {}
        received = int(stats.get("received", 0)) + self.rejected_frames
        dropped = int(stats.get("dropped", 0)) + self.rejected_frames
        return recognizer_status(
            error=self.error,
            device=self.device,
            input_rate_hz=self.input.rate(now),
            input_age_s=None if self.input.last is None else now - self.input.last,
            dropped=dropped,
            received=received,
            latency_p50_ms=float(stats.get("latency_ms_p50", float("nan"))),
            latency_p99_ms=float(stats.get("latency_ms_p99", float("nan"))),
            stale_after_s=self.stale_after_s,
            warning=self.warning,
            extra={
                "end_to_end_latency_p50_ms": self.end_to_end.percentile(50),
                "end_to_end_latency_p99_ms": self.end_to_end.percentile(99),
                "bad_messages": self.bad_messages,
                "tracks": stats.get("tracks", 0),
                "windows": stats.get("windows", 0),
                "actions_published": self.published,
                "dropped_by_reason": stats.get("dropped_by_reason", {}),
            },
        )
