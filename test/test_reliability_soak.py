"""A short run of the soak benchmark (bench/bench_soak.py, the hour-long version is a benchmark): every
frame is accounted for, each injected fault is dropped under its own reason, and nothing throws."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("torch")
BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_soak.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_soak", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_twenty_seconds_of_faulty_input_are_fully_accounted_for() -> None:
    bench = _bench()
    args = argparse.Namespace(
        minutes=20 / 60, people=4, hz=30.0, stride=15, dropout=0.05, fault_rate=0.05, churn_per_s=0.1,
        jump_every_s=7.0, threads=1, seed=3, progress=False,
    )  # fmt: skip
    r = bench.soak(args)
    assert r["accounting_ok"] and r["received"] == r["pushes"] > 0
    for reason in ("non_finite", "bad_shape", "bad_layout", "bad_stamp", "repeated_stamp", "backwards_stamp"):
        assert r["injected"][reason] > 0 and r["dropped_by_reason"][reason] == r["injected"][reason], reason
    assert r["injected"]["clock_jump"] == 2 and r["injected"]["id_churn"] > 0
    assert r["events"]["timeout"] > 0  # churned ids and jumped clocks leave tracks that are expired
    assert r["inference_errors"] == 0 and r["windows"] > 0
    assert r["tracks_at_end"] <= 8
