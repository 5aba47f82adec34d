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

from masksem_core.rosmsg.messages import STATUS_ERROR, STATUS_INVALID_INPUT, STATUS_OK, STATUS_UNKNOWN
from masksem_ros.diagnostics import (
    DropWindow,
    LatencyStats,
    RateMeter,
    StatusReport,
    format_reasons,
    recognizer_status,
)

log = logging.getLogger(__name__)


def _default_factory(bundle: Any, settings: Any) -> Any:
    from masksem_core.runtime.recognizer import StreamingRecognizer

    return StreamingRecognizer(bundle, settings)


def settings_for(bundle: Any, given: Mapping[str, Any], fallback: Mapping[str, Any] | None = None) -> Any:
    """Interface 3: the bundle's own recogniser settings (chosen for that model), then the settings
    `given` explicitly (ROS parameters); `fallback` fills only what neither says (the node's safer
    defaults, e.g. a score threshold, for bundles that carry no settings)."""
    from masksem_core.runtime.recognizer import RecognizerSettings

    chosen = dict((getattr(bundle, "meta", None) or {}).get("recognizer") or {})
    filler = {k: v for k, v in (fallback or {}).items() if k not in chosen}
    return RecognizerSettings.from_bundle(bundle, **{**filler, **given})


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
    """Feeds `StreamingRecognizer` and keeps the node's own statistics (input rate, end-to-end latency,
    drops over a sliding window) and the health of the last input frame (`frame_status`), which the
    node publishes with every update so that a robot never mistakes a broken recogniser for a quiet
    scene.

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
        drop_window_s: float = 5.0,
        given: Mapping[str, Any] | None = None,
        fallback: Mapping[str, Any] | None = None,
    ) -> None:
        """`settings` as they are, or (settings None, `given` set) the bundle's settings overridden by
        `given`, with `fallback` for what neither sets (`settings_for`)."""
        self.device = device
        self.stale_after_s = stale_after_s
        self.error: str | None = None
        self.warning: str | None = None
        self.recognizer: Any = None
        self.settings = settings
        self.input = RateMeter()
        self.drops = DropWindow(drop_window_s)
        self.end_to_end = LatencyStats()
        self.bad_messages = 0
        self.rejected_frames = 0  # frames dropped before reaching the recogniser (no model, bad message)
        self.published = 0
        self.frame_status: tuple[int, str] = (STATUS_UNKNOWN, "no input yet")
        self._seen_drops: dict[str, int] = {}
        self._last_stamp: float | None = None
        self._last_arrival: float | None = None
        if not bundle_path:
            self.error = "no model bundle configured (parameter 'bundle')"
            return
        try:
            bundle: Any = bundle_path
            if settings is None and given is not None:
                from masksem_core.runtime.bundle import load_bundle

                bundle = load_bundle(bundle_path)
                settings = settings_for(bundle, given, fallback)
            settings = self.settings = self._fall_back_to_cpu(settings)
            self.recognizer = (factory or _default_factory)(bundle, settings)
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

    def update_settings(self, **changes: Any) -> None:
        """Runtime change of recogniser settings (threshold, smoothing, stride, ...); raises ValueError
        with the reason and changes nothing when a value is invalid or needs a restart."""
        if self.recognizer is not None:
            self.settings = self.recognizer.update_settings(**changes)
        elif self.settings is not None:  # no model: validate and keep, nothing runs anyway
            import dataclasses

            new = dataclasses.replace(self.settings, **changes)
            new.validate()
            self.settings = new

    def on_bad_message(self, now: float, reason: str) -> None:
        """A message that could not be converted (logged by the caller): it arrived, but is dropped."""
        self.input.tick(now)
        self.bad_messages += 1
        self.rejected_frames += 1
        self.drops.add(now, 1, 1, {"bad_message": 1})
        self.frame_status = (STATUS_INVALID_INPUT, f"malformed input message: {reason}")

    def on_frame(
        self,
        now: float,
        stamp: float,
        persons: Mapping[str, tuple[np.ndarray, np.ndarray]],
        layout: str | None,
    ) -> list[Any]:
        """Push one frame of all persons, then poll; returns the confident recognitions (class_index >= 0)
        and sets `frame_status`: OK (the frame was used, or nobody was in it), INVALID_INPUT (every
        skeleton in it was dropped, with the reasons) or ERROR (no model).

        `now` is the node clock (for rates and latency), `stamp` the frame's header stamp.
        """
        self.input.tick(now)
        self._last_stamp, self._last_arrival = stamp, time.monotonic()
        if self.recognizer is None:
            frames = max(len(persons), 1)
            self.rejected_frames += 1
            self.drops.add(now, frames, frames, {"no_model": frames})
            self.frame_status = (STATUS_ERROR, str(self.error))
            return []
        used = sum(
            self.recognizer.push(pid, stamp, joints, conf, layout or None) is not False
            for pid, (joints, conf) in persons.items()
        )
        reasons = self._new_drop_reasons() if used < len(persons) else {}
        self.drops.add(now, len(persons), len(persons) - used, reasons)
        if persons and not used:
            self.frame_status = (
                STATUS_INVALID_INPUT,
                f"no usable skeleton in the frame ({format_reasons(reasons) or 'dropped'})",
            )
        else:
            self.frame_status = (STATUS_OK, "")
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

    def _new_drop_reasons(self) -> dict[str, int]:
        """Drop reasons counted by the recogniser since the last call (its counters only grow)."""
        now = dict(self.recognizer.stats.get("dropped_by_reason", {}))
        new = {k: int(v) - int(self._seen_drops.get(k, 0)) for k, v in now.items()}
        self._seen_drops = now
        return {k: v for k, v in new.items() if v > 0}

    def expire(self) -> int:
        """Drop tracks whose person left, on the sensor clock estimated from the last frame's arrival."""
        if self.recognizer is None or self._last_stamp is None or self._last_arrival is None:
            return 0
        return int(self.recognizer.expire(self._last_stamp + (time.monotonic() - self._last_arrival)))

    def status(self, now: float) -> StatusReport:
        stats: dict[str, Any] = dict(self.recognizer.stats) if self.recognizer is not None else {}
        received, dropped, reasons = self.drops.totals(now)
        by_reason = dict(stats.get("dropped_by_reason", {}))
        by_reason["bad_message"] = self.bad_messages
        return recognizer_status(
            error=self.error,
            device=self.device,
            input_rate_hz=self.input.rate(now),
            input_age_s=None if self.input.last is None else now - self.input.last,
            dropped=dropped,
            received=received,
            reasons=reasons,
            window_s=self.drops.window_s,
            latency_p50_ms=float(stats.get("latency_ms_p50", float("nan"))),
            latency_p99_ms=float(stats.get("latency_ms_p99", float("nan"))),
            stale_after_s=self.stale_after_s,
            warning=self.warning,
            extra={
                "received_frames": int(stats.get("received", 0)) + self.rejected_frames,
                "dropped_frames": int(stats.get("dropped", 0)) + self.rejected_frames,
                "dropped_by_reason": format_reasons(by_reason) or "none",
                "end_to_end_latency_p50_ms": self.end_to_end.percentile(50),
                "end_to_end_latency_p99_ms": self.end_to_end.percentile(99),
                "bad_messages": self.bad_messages,
                "tracks": stats.get("tracks", 0),
                "windows": stats.get("windows", 0),
                "actions_published": self.published,
            },
        )
