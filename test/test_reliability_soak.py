"""A short run of the soak benchmark (bench/bench_soak.py, the hour-long version is a benchmark): every
frame is accounted for, each injected fault is dropped under its own reason, and nothing throws."""

from __future__ import annotations

import argparse
import functools

import numpy as np
import pytest
from conftest import load_script
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("torch")


def _bench():
    return load_script("bench/bench_soak.py")


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


junk = (
    st.none()
    | st.booleans()
    | st.floats()
    | st.integers(-(2**70), 2**70)
    | st.text(max_size=4)
    | st.lists(st.floats(), max_size=4)
    | st.builds(lambda n, v: np.full((n, 3), v, np.float32), st.integers(0, 40), st.floats(width=32))
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            junk | st.lists(st.integers(), max_size=2),  # person id, some unhashable
            junk,  # stamp
            junk,  # joints
            junk,  # confidence
            st.none() | st.sampled_from(["ntu25", "mediapipe33", "kinect_v1_20", "", "nope"]),
        ),
        max_size=25,
    )
)
def test_push_never_raises_and_counts_every_frame(frames: list) -> None:
    from masksem_core.runtime.recognizer import StreamingRecognizer

    rec = StreamingRecognizer(_tiny_bundle())
    for pid, stamp, joints, conf, layout in frames:
        assert rec.push(pid, stamp, joints, conf, layout) in (True, False)
    rec.poll()
    stats = rec.stats
    assert stats["received"] == len(frames) == stats["used"] + stats["dropped"]
    assert stats["dropped_by_reason"]["internal_error"] == 0


@functools.cache
def _tiny_bundle():
    import torch

    from masksem_core.layouts import NTU25
    from masksem_core.model import ActionClassifier, ModelConfig
    from masksem_core.runtime.bundle import Bundle

    torch.manual_seed(0)
    cfg = ModelConfig(num_frames=8, num_joints=25, num_persons=2, dim=16, depth=1, heads=2)
    return Bundle(ActionClassifier(cfg, 3).eval(), ["a", "b", "c"], NTU25, 8, 30.0, 8, {"centre_joint": 1})
