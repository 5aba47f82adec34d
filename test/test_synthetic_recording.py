"""Continuous synthetic recordings: clock, ground truth against the frames, determinism, bag round trip."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from masksem_core.layouts import NTU25
from masksem_core.synthetic import NoiseSettings, make_recording
from masksem_core.synthetic.kinematics import measured_bone_lengths
from masksem_core.synthetic.recording import MAIN, PARTNER, PASSER_BY, plan_actions, write_intervals_csv

J = NTU25.index
PLAN = ["stop_palm", "handshake", "sit_down", "stand_up", "walk_past", "clap", "idle"]


@pytest.fixture(scope="module")
def clean():
    return make_recording(seed=4, actions=PLAN, noise=NoiseSettings.off())


def track(rec, pid: str) -> tuple[np.ndarray, np.ndarray]:
    """(stamps, joints (T, 25, 3)) of the frames where `pid` is present."""
    stamps = np.array([s for s, p in rec.frames if pid in p])
    joints = np.array([p[pid][0] for _, p in rec.frames if pid in p])
    return stamps, joints


def inside(stamps: np.ndarray, iv) -> np.ndarray:
    return (stamps >= iv.start_s) & (stamps < iv.end_s)


def interval(rec, label: str, pid: str = MAIN):
    found = [iv for iv in rec.intervals if iv.label == label and iv.person_id == pid]
    assert len(found) == 1, (label, pid, rec.intervals)
    return found[0]


def test_clock_is_30hz_and_monotonic(clean):
    stamps = clean.stamps
    assert np.allclose(np.diff(stamps), 1 / 30, atol=1e-9) and stamps[0] == 0.0
    assert clean.duration_s == pytest.approx(len(stamps) / 30)
    for iv in clean.intervals:
        assert 0 <= iv.start_s < iv.end_s <= stamps[-1] + 1 / 30


def test_intervals_follow_the_plan_with_gaps(clean):
    main = [iv for iv in clean.intervals if iv.person_id == MAIN]
    assert [iv.label for iv in main] == [a for a in PLAN if a != "walk_past"]
    assert [iv.label for iv in clean.intervals if iv.person_id == PASSER_BY] == ["walk_past"]
    gaps = [b.start_s - a.end_s for a, b in zip(main, main[1:])]
    assert all(g >= 0 for g in gaps)
    assert sum(g > 0.5 for g in gaps) >= 3  # idle gaps between actions (none inside sit_down -> stand_up)


def test_frames_inside_intervals_carry_the_actions_motion(clean):
    stamps, body = track(clean, MAIN)
    assert len(stamps) == len(clean.frames)  # person 1 is tracked throughout (no noise: no dropouts)
    lift = np.maximum(
        body[:, J("hand_tip_left"), 1] - body[:, J("shoulder_left"), 1],
        body[:, J("hand_tip_right"), 1] - body[:, J("shoulder_right"), 1],
    )
    stop = inside(stamps, interval(clean, "stop_palm"))
    assert lift[stop].max() > 0.1  # the hand goes up above the shoulder during stop_palm...
    busy = np.zeros(len(stamps), bool)
    for iv in clean.intervals:
        busy |= inside(stamps, iv)
    assert lift[~busy].max() < 0  # ...and never in the idle gaps
    hips = body[:, J("spine_base"), 1]
    sit, stand = inside(stamps, interval(clean, "sit_down")), inside(stamps, interval(clean, "stand_up"))
    assert hips[sit][0] - hips[sit][-1] > 0.2 and hips[stand][-1] - hips[stand][0] > 0.2
    clap = inside(stamps, interval(clean, "clap"))
    gap = np.linalg.norm(body[:, J("hand_left")] - body[:, J("hand_right")], axis=-1)
    assert gap[clap].min() < 0.12 and gap[~busy].min() > 0.12


def test_other_persons_appear_only_for_their_actions(clean):
    hs = interval(clean, "handshake", PARTNER)
    assert hs == interval(clean, "handshake", MAIN)._replace(person_id=PARTNER)
    stamps, partner = track(clean, PARTNER)
    assert inside(stamps, hs).sum() == round((hs.end_s - hs.start_s) * 30)
    assert stamps.min() > hs.start_s - 0.5 * (hs.end_s - hs.start_s) and stamps.max() < hs.end_s + 1.0
    _, main = track(clean, MAIN)
    at = np.searchsorted(clean.stamps, stamps)
    hands = np.linalg.norm(main[at, J("hand_right")] - partner[:, J("hand_right")], axis=-1)
    assert hands.min() < 0.25  # the two right hands meet
    walk = interval(clean, "walk_past", PASSER_BY)
    stamps, walker = track(clean, PASSER_BY)
    walking = inside(stamps, walk)
    assert np.linalg.norm(walker[walking][-1, 0] - walker[walking][0, 0]) > 1.5 and walking.mean() > 0.8
    path = walker[walking][-1, 0] - walker[walking][0, 0]
    assert abs(path[0]) > abs(path[2])  # across the view rather than towards the camera
    assert np.median(walker[:, 0, 2]) > np.median(main[:, 0, 2]) + 0.8  # behind person 1


def test_bones_constant_across_actions_gaps_and_turns(clean):
    _, body = track(clean, MAIN)
    lengths = measured_bone_lengths(body.astype(np.float64))
    assert np.abs(lengths - lengths[0]).max() < 1e-5
    step = np.linalg.norm(np.diff(body, axis=0), axis=-1).max()
    assert step < 0.25  # no teleporting between scenes (a joint moves at most 7.5 m/s)


def test_determinism_and_noise():
    a, b, c = (
        make_recording(seed=9, num_actions=4),
        make_recording(seed=9, num_actions=4),
        make_recording(seed=10),
    )
    assert a.intervals == b.intervals and len(a.frames) == len(b.frames)
    assert all(
        np.array_equal(a.frames[i][1][MAIN][0], b.frames[i][1][MAIN][0]) for i in range(0, len(a.frames), 7)
    )
    assert a.intervals != c.intervals
    conf = np.concatenate([p[MAIN][1] for _, p in a.frames if MAIN in p])
    assert conf.dtype == np.float32 and set(np.unique(conf)) <= {0.0, 0.5, 1.0} and conf.mean() > 0.95


def test_plans_and_bad_plans():
    rng = np.random.default_rng(0)
    for _ in range(20):
        plan = plan_actions(rng, 12)
        assert all(x != y for x, y in zip(plan, plan[1:]))
        assert all(plan[i + 1] == "stand_up" for i, a in enumerate(plan) if a == "sit_down")
    with pytest.raises(ValueError, match="followed by stand_up"):
        make_recording(actions=["wave", "sit_down"])
    with pytest.raises(KeyError, match="jump"):
        make_recording(actions=["jump"])


def test_ground_truth_files_round_trip(tmp_path, clean):
    from masksem_core.replay.ground_truth import read_intervals_csv

    got = read_intervals_csv(write_intervals_csv(tmp_path / "truth.csv", clean))
    assert [(round(i.start, 5), i.label, i.person_id) for i in got] == [
        (round(iv.start_s, 5), iv.label, iv.person_id) for iv in clean.intervals
    ]


def test_bag_round_trip(tmp_path):
    bag_io = pytest.importorskip(
        "masksem_core.rosmsg.bag_io",
        reason="rosbags is not importable here",
    )
    from masksem_core.replay.ground_truth import read_label_topic
    from masksem_core.synthetic import write_recording_bag
    from masksem_core.synthetic.recording import GROUND_TRUTH_TOPIC

    rec = make_recording(seed=2, actions=["wave", "handshake", "idle", "push"])
    path = write_recording_bag(tmp_path / "rec", rec)
    frames = list(bag_io.iter_skeleton_frames(path))
    assert len(frames) == len(rec.frames) and frames[0].layout == "ntu25"
    for got, (stamp, persons) in zip(frames[::9], rec.frames[::9]):
        assert got.stamp == pytest.approx(stamp, abs=1e-9) and set(got.persons) == set(persons)
        for pid, (joints, conf) in persons.items():
            assert np.allclose(got.persons[pid][0], joints) and np.allclose(got.persons[pid][1], conf)
    truth, error = read_label_topic(path, GROUND_TRUTH_TOPIC)
    assert error is None
    expected = [iv for iv in rec.intervals if iv.label != "idle"]  # replay treats idle as background
    assert [(i.label, i.person_id) for i in truth] == [(iv.label, iv.person_id) for iv in expected]
    assert np.allclose([i.start for i in truth], [iv.start_s for iv in expected], atol=1e-6)
    assert np.allclose([i.end for i in truth], [iv.end_s for iv in expected], atol=1e-6)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31), num_actions=st.integers(1, 6))
def test_any_seed_gives_a_consistent_recording(seed, num_actions):
    rec = make_recording(seed=seed, num_actions=num_actions, noise=NoiseSettings.off())
    stamps = rec.stamps
    assert np.allclose(np.diff(stamps), 1 / 30, atol=1e-9)
    main = [iv for iv in rec.intervals if iv.person_id in (MAIN, PASSER_BY)]
    assert len(main) >= num_actions
    for iv in rec.intervals:
        assert stamps[0] <= iv.start_s < iv.end_s <= stamps[-1] + 1 / 30
        present = [iv.person_id in p for s, p in rec.frames if iv.start_s <= s < iv.end_s]
        assert all(present)  # whoever performs an action is tracked throughout it (no noise)
    _, body = track(rec, MAIN)
    lengths = measured_bone_lengths(body.astype(np.float64))
    assert np.abs(lengths - lengths[0]).max() < 1e-5
