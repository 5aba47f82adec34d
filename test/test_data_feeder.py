"""SkeletonClips and the reference augmentation: shapes, crops, floors, streams, subsets, workers."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader, DistributedSampler

from masksem_core.config import ConfigError
from masksem_core.data.arrays import write_split_npz
from masksem_core.data.augment import (
    bone_stream,
    crop_and_resize,
    crop_floor,
    random_rotation,
    resize_frames,
    valid_length,
    velocity_stream,
)
from masksem_core.data.feeder import SkeletonClips, select_label_fraction
from masksem_core.layouts import KINECT_V1_20, NTU25


def _write(
    path: Path,
    lengths: list[int],
    labels: list[int],
    v: int = 25,
    m: int = 2,
    layout: str = "ntu25",
    sidecar: bool = True,
) -> Path:
    rng = np.random.default_rng(0)
    x = np.zeros((len(lengths), 300, m, v, 3), dtype=np.float32)
    for i, t in enumerate(lengths):
        x[i, :t, 0] = rng.normal(size=(t, v, 3))
    x = x.reshape(len(lengths), 300, -1)
    rows = np.arange(len(lengths))
    side = {
        "layout": layout,
        "num_persons": m,
        "labels": [f"a{i}" for i in range(max(labels) + 1)],
        "train": {"names": [f"c{i}" for i in rows]},
        "test": {"names": [f"c{i}" for i in rows]},
    }
    write_split_npz(path, x, rows, rows, np.asarray(labels), max(labels) + 1, side)
    if not sidecar:
        path.with_suffix(".json").unlink()
    return path


def _torch_resize(d: np.ndarray, t: int) -> np.ndarray:
    c, length, v, m = d.shape
    x = torch.tensor(d).permute(0, 2, 3, 1).reshape(c * v * m, length)[None, None]
    x = F.interpolate(x, size=(c * v * m, t), mode="bilinear", align_corners=False)[0, 0]
    return x.reshape(c, v, m, t).permute(0, 3, 1, 2).numpy()


@pytest.mark.parametrize(("length", "t"), [(37, 120), (200, 64), (64, 64), (1, 30), (5, 3)])
def test_resize_matches_torch_bilinear(length, t):
    d = np.random.default_rng(1).normal(size=(3, length, 4, 2)).astype(np.float32)
    np.testing.assert_allclose(resize_frames(d, t), _torch_resize(d, t), atol=1e-5)


def test_valid_length_and_centre_crop():
    d = np.zeros((3, 300, 25, 2), dtype=np.float32)
    d[:, :100] = np.arange(1, 101, dtype=np.float32)[None, :, None, None]
    assert valid_length(d) == 100
    out = crop_and_resize(d, 100, 90, p_range=None, centre_p=0.95)
    # bias = int(0.05 * 100 / 2) = 2: frames 3..98, resized 96 -> 90
    np.testing.assert_allclose(out, _torch_resize(d[:, 2:98], 90), atol=1e-5)
    assert not crop_and_resize(np.zeros_like(d), 0, 16).any()


def test_random_crop_respects_floor_and_ratio():
    d = np.zeros((1, 300, 1, 1), dtype=np.float32)
    d[0, :, 0, 0] = np.arange(1, 301)
    rng = np.random.default_rng(0)
    spans = []
    for _ in range(300):
        out = crop_and_resize(d, 300, 300, rng=rng)
        spans.append(out[0, -1, 0, 0] - out[0, 0, 0, 0] + 1)
    spans = np.array(spans)
    assert spans.min() >= 149 and spans.max() <= 300  # floor(300 * U[0.5, 1])
    # short clip with the reference's fixed 64-frame floor: it exceeds the clip, so the crop is the
    # whole clip every time
    short = d[:, :31].copy()
    full = crop_and_resize(short, 31, 64, p_range=None, centre_p=1.0)
    for _ in range(20):
        np.testing.assert_array_equal(crop_and_resize(short, 31, 64, min_crop_frames=64, rng=rng), full)
    # the default floor follows the data, and so does a fractional one: the augmentation is back
    for kwargs in ({}, {"min_crop_fraction": 0.5}):
        outs = {crop_and_resize(short, 31, 64, rng=rng, **kwargs)[0, 0, 0, 0] for _ in range(50)}
        assert len(outs) > 3, kwargs
    assert crop_floor(31, min_crop_frames=64) == 64 and crop_floor(31, min_crop_fraction=0.5) == 15
    # default: the reference 64 on long clips, at most half of a short one
    assert crop_floor(300) == 64 and crop_floor(128) == 64 and crop_floor(31) == 15 and crop_floor(1) == 1
    assert crop_floor(1, min_crop_fraction=0.5) == 1
    with pytest.raises(ValueError, match="min_crop_fraction"):
        crop_floor(10, min_crop_fraction=1.5)


def test_rotation_preserves_lengths_and_absent_person():
    d = np.random.default_rng(2).normal(size=(3, 10, 25, 2)).astype(np.float32)
    d[..., 1] = 0
    r = random_rotation(d, 0.3, np.random.default_rng(3))
    np.testing.assert_allclose(np.linalg.norm(r, axis=0), np.linalg.norm(d, axis=0), rtol=1e-5, atol=1e-6)
    assert not r[..., 1].any() and not np.allclose(r, d)


def test_bone_and_velocity_streams():
    d = np.random.default_rng(4).normal(size=(3, 8, 25, 1)).astype(np.float32)
    b = bone_stream(d, NTU25)
    assert not b[:, :, 0].any()  # spine_base is the root
    np.testing.assert_allclose(
        b[:, :, NTU25.index("elbow_left")],
        d[:, :, NTU25.index("elbow_left")] - d[:, :, NTU25.index("shoulder_left")],
    )
    v = velocity_stream(d)
    np.testing.assert_allclose(v[:, :-1], d[:, 1:] - d[:, :-1])
    assert not v[:, -1].any()


def test_dataset_items_test_transform_is_deterministic(tmp_path):
    path = _write(tmp_path / "a.npz", [100, 40, 300, 80], [0, 1, 1, 0])
    ds = SkeletonClips(path, "test", num_frames=120, train=False)
    assert len(ds) == 4 and ds.num_classes == 2 and ds.layout is NTU25 and ds.num_persons == 2
    assert ds.labels == ["a0", "a1"]
    x, y = ds[1]
    assert x.shape == (3, 120, 25, 2) and x.dtype == torch.float32 and y == 1
    raw = ds.raw_clip(1)
    assert valid_length(raw) == 40
    np.testing.assert_array_equal(x.numpy(), crop_and_resize(raw, 40, 120, p_range=None))
    np.testing.assert_array_equal(ds[1][0], x)
    assert not x[..., 1].any()


def test_dataset_train_is_random_but_seeded(tmp_path):
    path = _write(tmp_path / "a.npz", [100, 40, 300, 80], [0, 1, 1, 0])
    ds = SkeletonClips(path, "train", num_frames=64, train=True)
    torch.manual_seed(0)
    a = ds[2][0]
    torch.manual_seed(0)
    np.testing.assert_array_equal(ds[2][0], a)
    assert not torch.equal(ds[2][0], a)
    vel = SkeletonClips(path, "train", num_frames=64, stream="velocity", train=False)
    assert not vel[0][0][:, -1].any()


def test_layout_guess_without_sidecar(tmp_path):
    path = _write(tmp_path / "ucla.npz", [10, 20], [0, 1], v=20, m=1, layout="kinect_v1_20", sidecar=False)
    ds = SkeletonClips(path, "train", num_frames=16, train=False)
    assert ds.layout is KINECT_V1_20 and ds.num_persons == 1 and ds[0][0].shape == (3, 16, 20, 1)


def test_label_fraction_is_class_balanced_and_seeded():
    labels = np.repeat(np.arange(5), [100, 50, 20, 10, 1])
    sel = select_label_fraction(labels, 0.1, seed=3)
    assert np.bincount(labels[sel]).tolist() == [10, 5, 2, 1, 1]
    np.testing.assert_array_equal(sel, select_label_fraction(labels, 0.1, seed=3))
    assert not np.array_equal(sel, select_label_fraction(labels, 0.1, seed=4))


def test_dataset_pickles_without_the_array_and_works_with_workers(tmp_path):
    path = _write(tmp_path / "a.npz", [50] * 8, [0, 1, 2, 3, 0, 1, 2, 3])
    ds = SkeletonClips(path, "train", num_frames=32, label_fraction=0.5, label_seed=1)
    assert len(ds) == 4 and sorted(ds.targets.tolist()) == [0, 1, 2, 3]
    ds[0]  # maps the file
    assert len(pickle.dumps(ds)) < 20_000  # the 8 x 300 x 150 floats (1.4 MB) are not in the pickle
    loader = DataLoader(ds, batch_size=2, num_workers=2, shuffle=True)
    batches = list(loader)
    assert sum(len(b[1]) for b in batches) == 4 and batches[0][0].shape == (2, 3, 32, 25, 2)
    seen = []
    for rank in range(2):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=False)
        seen += list(sampler)
    assert sorted(seen) == [0, 1, 2, 3]


def test_bad_arguments_are_named(tmp_path):
    path = _write(tmp_path / "a.npz", [10], [0])
    with pytest.raises(ValueError, match="split"):
        SkeletonClips(path, "val")
    with pytest.raises(ValueError, match="stream"):
        SkeletonClips(path, stream="angle")
    with pytest.raises(KeyError, match="no array 'x_train'"):
        from masksem_core.data.arrays import open_npz_member

        np.savez(tmp_path / "other.npz", a=np.zeros(3))
        open_npz_member(tmp_path / "other.npz", "x_train")


EXPECTED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ntu-samples" / "expected"


@pytest.mark.skipif(not EXPECTED.is_dir(), reason=f"reference npz files not found at {EXPECTED}")
def test_reads_the_standard_pipelines_file_unchanged():
    ds = SkeletonClips(EXPECTED / "NTU60_XSub.npz", "train", num_frames=64, train=False)
    assert ds.layout is NTU25 and ds.num_persons == 2 and ds.num_classes == 60 and len(ds) == 3
    assert ds.max_frames == 124 and valid_length(ds.raw_clip(1)) == 70
    x, y = ds[1]
    assert x.shape == (3, 64, 25, 2) and y == 57 and x[..., 1].abs().sum() > 0  # the two-person sample


@given(st.integers(1, 60), st.floats(0.0, 0.5), st.integers(0, 2**31))
@settings(max_examples=60, deadline=None)
def test_span_jitter_crops_or_holds_each_end_within_its_reach(valid, fraction, seed):
    """Each end of the valid part moves by at most fraction x valid frames: inward it cuts real frames,
    outward it repeats the edge pose; what stays in between is the clip's own frames in order."""
    from masksem_core.data.augment import jitter_span

    t = np.arange(1, valid + 1, dtype=np.float32)
    data = np.broadcast_to(t[None, :, None, None], (3, valid, 2, 1)).copy()  # frame k holds the value k + 1
    out, n = jitter_span(data, valid, fraction, np.random.default_rng(seed))
    assert out.shape == (3, n, 2, 1) and n >= 1
    frames = out[0, :, 0, 0]
    reach = round(fraction * valid) + 1
    assert abs(n - valid) <= 2 * reach
    body = np.unique(frames)  # the clip's frames kept, consecutive, each once apart from the held edges
    assert np.array_equal(body, np.arange(body[0], body[-1] + 1))
    assert np.all(np.diff(frames) >= 0) and body[0] <= reach and body[-1] >= valid - reach
    if fraction == 0:
        assert np.array_equal(out, data)


def test_span_jitter_reaches_the_training_clips_only(tmp_path):
    """data.span_jitter changes what a training item holds (and is validated); evaluation items are
    untouched."""
    from masksem_core.train.config import DataConfig

    with pytest.raises(ConfigError, match=r"span_jitter must be in \[0, 0.5\], got 0.7"):
        DataConfig(span_jitter=0.7).validate()
    npz = _write(tmp_path / "d.npz", [40, 30, 50], [0, 1, 0])

    def items(train: bool, jitter: float | None) -> list[np.ndarray]:
        clips = SkeletonClips(npz, num_frames=16, train=train, rotate=False, min_crop_frames=300,
                              span_jitter=jitter)  # fmt: skip  (crop off: only the jitter moves the span)
        torch.manual_seed(0)
        return [clips[i][0].numpy() for i in range(3)]

    for a, b in zip(items(False, 0.3), items(False, None)):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(items(True, 0.3), items(True, None)))
