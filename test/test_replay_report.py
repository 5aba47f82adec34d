"""Replay report: atomic JSON (no NaN, no temp files left), the printed table, and the two plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from masksem_core.replay.metrics import UNKNOWN, FrameLabels, evaluate
from masksem_core.replay.report import format_table, json_safe, plot_latency, plot_timeline, write_json_atomic

PNG = b"\x89PNG\r\n\x1a\n"


def _summary():
    t = np.arange(10, dtype=np.float64)
    truth = (np.array([2.0]), np.array([6.0]), np.array(["wave"], object), np.array([None], object))
    recs = (np.array([3.0]), np.array(["a"], object), np.array(["wave"], object), np.array([12.5]))
    return evaluate(t, np.array(["a"] * 10, object), truth, recs, max_age_s=2.0)


def test_json_is_atomic_and_nan_free(tmp_path: Path):
    summary, _ = _summary()
    doc = json_safe({"metrics": summary, "x": float("nan"), "n": np.int64(3), "arr": [np.float32(0.5)]})
    path = write_json_atomic(tmp_path / "sub" / "report.json", doc)
    back = json.loads(path.read_text())
    assert back["x"] is None and back["n"] == 3 and back["arr"] == [0.5]
    assert back["metrics"]["segments"]["tp"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]
    with pytest.raises(ValueError):  # a NaN that slipped through is refused, and the old file stays
        write_json_atomic(path, {"bad": float("nan")})
    assert json.loads(path.read_text()) == back
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]


def test_table_lists_the_numbers():
    summary, _ = _summary()
    # frames 0..9: truth wave on 2..5; recognised wave at 3, valid 2 s (3, 4, 5), unknown elsewhere:
    # only frame 2 (unknown vs wave) is wrong -> 0.9; segment [3,6) vs [2,6): IoU 3/4 -> TP; delay 1 s
    assert summary["frame_accuracy"] == pytest.approx(0.9)
    text = format_table(
        json_safe(
            {
                "bag": "b",
                "frames_read": 10,
                "persons": 1,
                "recognitions": 1,
                "read_error": "cut",
                "metrics": summary,
            }
        )
    )
    assert "frame accuracy" in text and "0.900" in text and "READ ERROR" in text
    assert "tp 1, fp 0, fn 0" in text and "12.5 ms" in text and "1.000 s" in text
    bare = format_table({"bag": "b", "latency_ms": {"p50": None, "p99": None}})
    assert "no ground truth given" in bare


def test_plots_are_png(tmp_path: Path):
    _, frames = _summary()
    assert plot_timeline(tmp_path / "t.png", frames, t0=0.0).read_bytes()[:8] == PNG
    assert plot_latency(tmp_path / "l.png", np.array([1.0, 2.0, np.nan])).read_bytes()[:8] == PNG
    assert plot_latency(tmp_path / "e.png", np.array([])).read_bytes()[:8] == PNG
    empty = FrameLabels(np.zeros(0), np.zeros(0, object), np.zeros(0, object), np.full(0, UNKNOWN, object))
    assert plot_timeline(tmp_path / "n.png", empty).read_bytes()[:8] == PNG
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.png", "l.png", "n.png", "t.png"]
