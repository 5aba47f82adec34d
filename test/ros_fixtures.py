"""Data that the node and launch tests bring with them (a user's colcon workspace has no ../shared):
a tiny untrained bundle, synthetic skeleton motion, a collaboration table; and the DDS isolation every
ROS test sets before rclpy starts."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

import numpy as np

LABELS = ["pick_up", "walk", "wave", "sit_down", "throw"]
LAYOUT, JOINTS = "kinect_v1_20", 20


def isolate_dds(domain_id: int) -> None:
    """DDS traffic on the loopback interface only, in a domain of this project's test range (40-49),
    unless the test environment (CMake) already chose one."""
    os.environ["ROS_LOCALHOST_ONLY"] = "1"
    os.environ.setdefault("ROS_DOMAIN_ID", str(domain_id))


def require(module: str, reason: str) -> ModuleType:
    """pytest.importorskip, except where the test environment says ROS must be there (colcon test sets
    MASKSEM_REQUIRE_ROS=1): there a missing piece is an error, never a skipped node test."""
    if os.environ.get("MASKSEM_REQUIRE_ROS") == "1":
        return importlib.import_module(module)
    import pytest

    return pytest.importorskip(module, reason=reason)


def tiny_bundle(out: Path, extra: dict | None = None) -> Path:
    """An untrained small classifier over LABELS, saved as a bundle (conftest.make_tiny_bundle); `extra`
    goes into its metadata (e.g. {"recognizer": {...}} settings)."""
    from conftest import make_tiny_bundle

    return make_tiny_bundle(out, LABELS, LAYOUT, fps=30.0, extra=extra)


def synthetic_clip(frames: int, seed: int = 0) -> np.ndarray:
    """(frames, 20, 3) float32: a body 3 m in front of the camera, swaying and waving at 30 fps."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(JOINTS, 3)).astype(np.float32) * 0.3 + np.array([0.0, 0.0, 3.0], np.float32)
    t = np.arange(frames, dtype=np.float32)[:, None] / 30.0
    motion = np.zeros((frames, JOINTS, 3), np.float32)
    motion[:, :, 0] = 0.05 * np.sin(2 * np.pi * 0.5 * t)  # whole-body sway
    motion[:, 7:12, 1] += 0.2 * np.sin(2 * np.pi * 1.5 * t)  # one arm waving
    return base[None] + motion


def bad_frame(kind: str) -> tuple[np.ndarray, str]:
    """One malformed skeleton: all-NaN joints, a wrong joint count, or an unknown layout."""
    good = synthetic_clip(1)[0]
    if kind == "nan":
        return np.full_like(good, np.nan), LAYOUT
    if kind == "wrong_joint_count":
        return np.zeros((25, 3), np.float32), LAYOUT
    if kind == "unknown_layout":
        return good, "no_such_layout"
    raise ValueError(f"unknown bad frame kind {kind!r}")


def write_table(path: Path, stale_after_s: float = 0.5) -> Path:
    """safe = pause/0, default = resume/1; its one rule names no label of the bundle, so every confident
    recognition of a person asks for the default behaviour."""
    path.write_text(
        f"min_score: 0.0\nstale_after_s: {stale_after_s}\nenter_count: 2\nexit_count: 3\n"
        "safe: {speed_scale: 0.0, command: pause}\ndefault: {speed_scale: 1.0, command: resume}\n"
        "rules:\n  not_in_the_bundle: {speed_scale: 0.5, command: slow}\n"
    )
    return path
