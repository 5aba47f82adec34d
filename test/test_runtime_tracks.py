"""Track buffers: resampling uneven streams onto the model's grid, window timing, gap and stamp rules."""

from __future__ import annotations

import numpy as np
import pytest

from masksem_core.runtime.tracks import Track, TrackConfig, check_frame

V = 5


def linear_pose(t: float) -> np.ndarray:
    """Joints moving on straight lines at different speeds: linear interpolation must be exact."""
    base = np.arange(V * 3, dtype=np.float64).reshape(V, 3) * 0.1
    vel = np.linspace(-1.0, 1.0, V * 3).reshape(V, 3)
    return (base + vel * t).astype(np.float32)


def feed(track: Track, stamps) -> list[str | None]:
    return [track.add(float(s), linear_pose(float(s))) for s in stamps]


def test_uneven_stream_is_resampled_onto_the_fps_grid():
    cfg = TrackConfig(fps=30.0, window_frames=45, stride_frames=5, max_gap_s=0.5)
    track = Track(V, cfg)
    rng = np.random.default_rng(0)
    stamps = 10.0 + np.cumsum(rng.uniform(0.005, 0.08, size=200))  # 12..200 Hz jitter, holes up to 80 ms
    feed(track, stamps)
    frames, grid = track.window()
    assert frames.shape == (45, V, 3)
    np.testing.assert_allclose(np.diff(grid), 1 / 30, atol=1e-9)
    assert grid[-1] <= stamps[-1] < grid[-1] + 1 / 30
    assert abs((grid[0] - stamps[0]) * 30 - round((grid[0] - stamps[0]) * 30)) < 1e-6  # grid anchored at t0
    want = np.stack([linear_pose(t) for t in grid])
    np.testing.assert_allclose(frames, want, atol=1e-5)
    assert track.count == int(np.floor((stamps[-1] - stamps[0]) * 30 + 1e-6)) + 1


def test_slow_input_is_upsampled_and_a_sine_is_followed_closely():
    cfg = TrackConfig(fps=30.0, window_frames=60, stride_frames=1)
    track = Track(1, cfg)
    stamps = np.arange(0, 4, 1 / 15)  # 15 Hz camera, 30 Hz model
    for s in stamps:
        track.add(float(s), np.full((1, 3), np.sin(2 * np.pi * 0.5 * s), np.float32))
    frames, grid = track.window()
    assert track.count == 2 * (len(stamps) - 1) + 1
    np.testing.assert_allclose(frames[:, 0, 0], np.sin(2 * np.pi * 0.5 * grid), atol=0.01)


def test_window_is_due_exactly_every_stride_once_full():
    cfg = TrackConfig(fps=30.0, window_frames=12, stride_frames=4)
    track = Track(V, cfg)
    due_at = []
    for k in range(40):
        track.add(k / 30, linear_pose(k / 30))
        if track.due:
            due_at.append(k)
            track.mark_emitted()
    assert due_at == [11, 15, 19, 23, 27, 31, 35, 39]


def test_repeated_and_backwards_stamps_are_dropped_and_a_clock_jump_restarts():
    cfg = TrackConfig(fps=30.0, window_frames=10, stride_frames=1, clock_jump_s=2.0)
    track = Track(V, cfg)
    assert feed(track, [1.0, 1.04, 1.1]) == [None, None, None]
    count = track.count
    assert track.add(1.1, linear_pose(1.1)) == "repeated_stamp"
    assert track.add(1.05, linear_pose(1.05)) == "backwards_stamp"
    assert track.count == count and track.last_stamp == 1.1
    assert track.add(-5.0, linear_pose(-5.0)) == "clock_reset"  # bag looped / clock restarted
    assert track.count == 1 and track.last_stamp == -5.0


def test_short_gaps_are_interpolated_long_gaps_restart_the_track():
    cfg = TrackConfig(fps=30.0, window_frames=30, stride_frames=1, max_gap_s=0.5)
    track = Track(V, cfg)
    feed(track, np.arange(0, 1, 1 / 30))
    assert track.add(1.3, linear_pose(1.3)) == "gap_interpolated"  # 0.33 s hole
    frames, grid = track.window()
    np.testing.assert_allclose(frames, np.stack([linear_pose(t) for t in grid]), atol=1e-5)
    assert track.due
    assert track.add(2.5, linear_pose(2.5)) == "gap_reset"  # vanished for 1.2 s and came back
    assert track.count == 1 and not track.due
    frames, grid = track.window()
    assert grid.tolist() == [2.5]


def test_partner_is_sampled_at_the_focal_track_stamps():
    cfg = TrackConfig(fps=30.0, window_frames=30, stride_frames=1)
    partner = Track(V, cfg)
    feed(partner, np.arange(0.013, 1.2, 1 / 30))  # its grid is offset from the focal one
    focal_stamps = np.arange(0.2, 1.2, 1 / 30)[:30]
    sampled = partner.sample_at(focal_stamps)
    assert sampled is not None
    _, own = partner.window()
    inside = (focal_stamps >= own[0]) & (focal_stamps <= own[-1])
    want = np.stack([linear_pose(t) for t in focal_stamps[inside]])
    np.testing.assert_allclose(sampled[inside], want, atol=1e-5)
    assert partner.sample_at(focal_stamps + 10.0) is None  # no overlap: no partner


@pytest.mark.parametrize(
    "stamp, joints, conf, reason",
    [
        (float("nan"), np.zeros((V, 3)), None, "bad_stamp"),
        ("soon", np.zeros((V, 3)), None, "bad_stamp"),
        (True, np.zeros((V, 3)), None, "bad_stamp"),
        (1.0, np.zeros((V + 1, 3)), None, "bad_shape"),
        (1.0, np.zeros((V, 2)), None, "bad_shape"),
        (1.0, None, None, "bad_shape"),
        (1.0, [["a", "b", "c"]] * V, None, "bad_shape"),
        (1.0, np.zeros((V, 3)), np.ones(V + 2), "bad_shape"),
        (1.0, np.full((V, 3), np.inf), None, "non_finite"),
        (1.0, np.where(np.eye(V, 3) > 0, np.nan, 0.0), None, "non_finite"),
        (1.0, np.zeros((V, 3)), np.full(V, np.nan), "non_finite"),
        (1.0, np.zeros((V, 3)), np.full(V, 0.1), "low_confidence"),
    ],
)
def test_bad_frames_are_named(stamp, joints, conf, reason):
    got, _, _ = check_frame(stamp, joints, conf, V, min_confidence=0.3)
    assert got == reason


def test_good_frame_passes_with_default_confidence():
    reason, joints, conf = check_frame(3, np.ones((V, 3)), None, V)
    assert reason is None and joints.dtype == np.float32 and conf.tolist() == [1.0] * V


def test_memory_is_a_fixed_ring_however_long_the_track():
    cfg = TrackConfig(fps=30.0, window_frames=20, stride_frames=5)
    track = Track(V, cfg)
    frames_id, stamps_id = id(track.frames), id(track.stamps)
    feed(track, np.arange(0, 300, 1 / 30))  # 10 minutes at 30 Hz
    assert (
        track.frames.shape == (20, V, 3) and id(track.frames) == frames_id and id(track.stamps) == stamps_id
    )
    frames, grid = track.window()
    np.testing.assert_allclose(frames, np.stack([linear_pose(t) for t in grid]), atol=1e-3)


def test_ros_epoch_stamps_resample_like_small_ones():
    """Stamps like 1.7e9 s (ROS time) must not lose the sub-millisecond precision the grid needs."""
    cfg = TrackConfig(fps=30.0, window_frames=30, stride_frames=1)
    rng = np.random.default_rng(4)
    offsets = np.cumsum(rng.uniform(0.01, 0.05, size=80))
    small, epoch = Track(V, cfg), Track(V, cfg)
    for o in offsets:
        small.add(float(o), linear_pose(float(o)))
        epoch.add(1_700_000_000.0 + float(o), linear_pose(float(o)))
    (fs, gs), (fe, ge) = small.window(), epoch.window()
    np.testing.assert_allclose(fe, fs, atol=1e-5)
    np.testing.assert_allclose(ge - 1_700_000_000.0, gs, atol=1e-6)
