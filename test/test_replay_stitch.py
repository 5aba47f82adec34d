"""`masksem stitch`: continuous recordings from prepared clips (gap models, truth, bag round trip)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from masksem_core.replay import ground_truth
from masksem_core.replay.stitch import choose_clips, load_split_clips, stitch_clips


def _clip(n: int, m: int = 1, v: int = 4, value: float = 1.0) -> np.ndarray:
    """A clip whose frame t has every coordinate = value + t (easy to recognise after stitching)."""
    return (value + np.arange(n, dtype=np.float32))[:, None, None, None] * np.ones((1, m, v, 3), np.float32)


def test_hand_made_clips_land_where_the_truth_says():
    clips = [_clip(5, value=1.0), _clip(3, value=100.0)]
    s = stitch_clips(
        clips, [1, 0], fps=10.0, gap_s=(0.2, 0.4), seed=3, noise_m=0.0, start_s=2.0, label_names=["a", "b"]
    )
    assert [iv.label for iv in s.intervals] == ["b", "a"]
    assert [iv.person_id for iv in s.intervals] == ["1", "1"]
    for iv, clip in zip(s.intervals, clips, strict=True):
        inside = (s.stamps >= iv.start - 1e-9) & (s.stamps < iv.end - 1e-9)
        assert inside.sum() == len(clip)
        np.testing.assert_array_equal(s.frames[inside], clip)
    assert np.allclose(np.diff(s.stamps), 0.1) and s.stamps[0] == 2.0
    # three gaps (before, between, after) of 2..4 frames; held poses without noise are exact copies
    assert len(s.gaps) == 3 and all(0.2 - 1e-9 <= g <= 0.4 + 1e-9 for g, _ in s.gaps)
    first = int(np.flatnonzero(s.frame_labels >= 0)[0])
    assert np.all(s.frames[:first] == clips[0][0])  # before the first clip: its first pose
    assert np.all(s.frames[first + 5] == clips[0][-1])  # after it: its last pose
    assert s.background_fraction == pytest.approx(np.mean(s.frame_labels < 0))
    assert (s.frame_labels >= 0).sum() == 8 and set(s.frame_clips[s.frame_labels >= 0]) == {0, 1}


def test_smooth_gap_moves_monotonically_from_last_to_next_pose():
    clips = [_clip(4, value=0.5), _clip(4, value=50.0)]
    s = stitch_clips(clips, [0, 1], fps=30.0, gap_model="smooth", gap_s=(1.0, 1.0), seed=0, noise_m=0.0)
    idx = np.arange(len(s.stamps))
    end_a, start_b = np.flatnonzero(s.frame_labels == 0)[-1] + 1, np.flatnonzero(s.frame_labels == 1)[0]
    between = idx[(idx >= end_a) & (idx < start_b)]
    assert len(between) == 30
    x = s.frames[between, 0, 0, 0]
    assert np.all(np.diff(x) > 0) and clips[0][-1, 0, 0, 0] < x[0] and x[-1] < clips[1][0, 0, 0, 0]
    # smoothstep: slow at both ends, fast in the middle
    steps = np.diff(x)
    assert steps[len(steps) // 2] > 3 * steps[0] and steps[len(steps) // 2] > 3 * steps[-1]


def test_hold_noise_is_about_one_millimetre_and_seeded():
    clips = [_clip(3), _clip(3, value=7.0)]
    a = stitch_clips(clips, [0, 1], fps=30.0, gap_s=(2.0, 2.0), seed=1)
    b = stitch_clips(clips, [0, 1], fps=30.0, gap_s=(2.0, 2.0), seed=1)
    c = stitch_clips(clips, [0, 1], fps=30.0, gap_s=(2.0, 2.0), seed=2)
    np.testing.assert_array_equal(a.frames, b.frames)
    assert not np.array_equal(a.frames, c.frames)
    gap = a.frames[a.frame_labels < 0][:60]  # the leading gap holds clip 0's first pose
    assert np.std(gap - clips[0][0]) == pytest.approx(0.001, rel=0.1)


def test_two_person_clips_get_one_interval_per_present_person():
    solo = _clip(4, m=2)
    solo[:, 1] = 0  # second slot absent
    pair = _clip(4, m=2, value=9.0)
    s = stitch_clips([solo, pair], [0, 1], fps=30.0, gap_s=(0.5, 0.5), noise_m=0.0, gap_model="smooth")
    assert [(iv.label, iv.person_id) for iv in s.intervals] == [("0", "1"), ("1", "1"), ("1", "2")]
    assert not s.present[s.frame_labels == 0, 1].any() and s.present[s.frame_labels == 1].all()
    assert not np.any(s.frames[~s.present])  # absent persons stay all zero


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="gap_model"):
        stitch_clips([_clip(2)], [0], fps=30.0, gap_model="teleport")
    with pytest.raises(ValueError, match="fps"):
        stitch_clips([_clip(2)], [0], fps=0.0)
    with pytest.raises(ValueError, match="gap_s"):
        stitch_clips([_clip(2)], [0], fps=30.0, gap_s=(2.0, 1.0))
    with pytest.raises(ValueError, match="same M and V"):
        stitch_clips([_clip(2), _clip(2, v=5)], [0, 0], fps=30.0)
    with pytest.raises(ValueError, match="only 1 have"):
        choose_clips(np.array([0, 1]), [3, 20], num=2, min_frames=10, seed=0)
    with pytest.raises(ValueError, match="clips must be >= 1"):
        choose_clips(np.array([0, 1]), [30, 20], num=-1, min_frames=10, seed=0)
    with pytest.raises(ValueError, match="no clip has at least 50"):
        choose_clips(np.array([0, 1]), [30, 20], num=None, min_frames=50, seed=0)


def test_stitch_cli_on_real_nwucla_round_trips(nwucla_npz, tmp_path):
    from masksem_core.cli import main
    from masksem_core.rosmsg.bag_io import iter_skeleton_frames

    side = json.loads(nwucla_npz.with_suffix(".json").read_text())
    assert side["fps"] > 0
    out = tmp_path / "rec"
    argv = [
        "stitch",
        str(nwucla_npz),
        "--split",
        "test",
        "--out",
        str(out),
        "--clips",
        "12",
        "--seed",
        "5",
        "--gap-s",
        "1",
        "3",
    ]
    assert main(argv) == 0
    assert main(argv) == 2  # refuses to overwrite
    man = json.loads((out / "stitch.json").read_text())
    data = load_split_clips(nwucla_npz, "test")
    assert man["fps"] == side["fps"] and len(man["clips"]) == 12
    assert all(len(data.clips[i]) >= 10 for i in man["clips"])
    intervals = ground_truth.read_intervals_csv(out / "labels.csv")
    assert [iv.label for iv in intervals] == [data.label_names[data.labels[i]] for i in man["clips"]]
    fps = man["fps"]
    for iv, i in zip(intervals, man["clips"], strict=True):  # interval length = the clip's frames
        assert iv.end - iv.start == pytest.approx(len(data.clips[i]) / fps, abs=2e-6)
    gaps = np.array([b.start - a.end for a, b in zip(intervals, intervals[1:])])
    assert np.all(gaps >= 1 - 0.5 / fps) and np.all(gaps <= 3 + 0.5 / fps)
    frames = list(iter_skeleton_frames(out / "bag"))
    assert len(frames) == man["frames"] and {f.layout for f in frames} == {data.layout}
    stamps = np.array([f.stamp for f in frames])
    assert np.allclose(np.diff(stamps), 1 / fps, atol=1e-6)
    # the clips' own frames come back bit for bit at the truth's stamps
    for iv, i in zip(intervals, man["clips"], strict=True):
        inside = np.flatnonzero((stamps >= iv.start - 1e-6) & (stamps < iv.end - 1e-6))
        got = np.stack([frames[t].persons["1"][0] for t in inside])
        np.testing.assert_array_equal(got, data.clips[i][:, 0])
    # the label topic written into the bag says the same as the CSV
    topic, _ = ground_truth.read_label_topic(out / "bag", "/masksem/ground_truth")
    assert [(iv.label, iv.person_id) for iv in topic] == [(iv.label, iv.person_id) for iv in intervals]
    assert np.allclose([iv.start for iv in topic], [iv.start for iv in intervals], atol=1e-6)
