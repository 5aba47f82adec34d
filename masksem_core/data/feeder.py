"""`SkeletonClips`: a torch Dataset over prepared arrays, with the reference augmentation.

The `x_*` array is memory-mapped straight out of the (uncompressed) npz and opened lazily in each
DataLoader worker, so workers share the page cache instead of each holding a copy. Randomness comes
from torch's RNG (seeded per worker by DataLoader), so runs are reproducible with `torch.manual_seed`
and workers do not repeat each other's crops.
"""

from __future__ import annotations

import copy
import os
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from masksem_core.data.arrays import open_npz_member, read_sidecar
from masksem_core.data.augment import (
    bone_stream,
    crop_and_resize,
    jitter_span,
    random_rotation,
    valid_length,
    velocity_stream,
)
from masksem_core.layouts import LAYOUTS, SkeletonLayout, get_layout

Stream = Literal["joint", "bone", "velocity"]


def _layout_from_width(width: int, path: str) -> tuple[SkeletonLayout, int]:
    """For npz files without a sidecar (e.g. the community's): guess layout and persons from the row width."""
    for name in ("ntu25", "kinect_v1_20", "mediapipe33"):
        v = LAYOUTS[name].num_joints
        for m in (2, 1):
            if width == m * v * 3:
                return LAYOUTS[name], m
    raise ValueError(f"{path}: row width {width} matches no layout (M * V * 3); add a sidecar JSON")


def select_label_fraction(labels: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Row indices of a seeded, class-balanced subset: round(fraction * n_c) (at least 1) of each class."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"label_fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        n = max(1, round(fraction * len(rows)))
        keep.append(np.sort(rng.permutation(rows)[:n]))
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)


class SkeletonClips(Dataset):
    """Clips `(C, T, V, M)` float32 tensors and integer labels from a prepared npz.

    train=True: random crop (ratio in `p_range`, floor `min_crop_frames` or `min_crop_fraction` of the
    valid length; by default one that follows the data, see `augment.crop_floor`) and, when `rotate`, a
    random rotation; train=False: centre crop 0.95. Both resize to `num_frames`. `stream` picks joints,
    bones (layout tree) or velocities (computed after the resize).
    `label_fraction` keeps a seeded class-balanced subset (semi-supervised runs).
    """

    def __init__(
        self,
        npz_path: str | os.PathLike,
        split: Literal["train", "test"] = "train",
        num_frames: int = 120,
        train: bool = True,
        rotate: bool | None = None,
        min_crop_frames: int | None = None,
        min_crop_fraction: float | None = None,
        label_fraction: float | None = None,
        label_seed: int = 0,
        stream: Stream = "joint",
        mmap: bool = True,
        p_range: tuple[float, float] = (0.5, 1.0),
        test_crop: float = 0.95,
        rotate_theta: float = 0.3,
        span_jitter: float | None = None,
    ):
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if stream not in ("joint", "bone", "velocity"):
            raise ValueError(f"stream must be joint, bone or velocity, got {stream!r}")
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        self.path, self.split, self.num_frames, self.train = str(npz_path), split, num_frames, train
        self.rotate = train if rotate is None else rotate
        self.min_crop_frames, self.min_crop_fraction = min_crop_frames, min_crop_fraction
        self.stream, self.mmap = stream, mmap
        self.p_range, self.test_crop, self.rotate_theta = p_range, test_crop, rotate_theta
        self.span_jitter = span_jitter
        y = np.asarray(open_npz_member(self.path, f"y_{split}", mmap=False))
        self.all_labels = np.argmax(y, axis=1).astype(np.int64) if y.ndim == 2 else y.astype(np.int64)
        x = open_npz_member(self.path, f"x_{split}", mmap=True)
        if x.ndim != 3 or len(x) != len(self.all_labels):
            raise ValueError(
                f"{self.path}: x_{split} shape {x.shape} does not match {len(self.all_labels)} labels"
            )
        self.max_frames, width = x.shape[1], x.shape[2]
        meta = read_sidecar(self.path)
        if meta is not None:
            self.layout = get_layout(meta["layout"])
            self.num_persons = int(meta["num_persons"])
            self.labels: list[str] = list(meta.get("labels") or [])
            self.names: list[str] = list(meta[split]["names"])
            self.fps: float | None = float(meta["fps"]) if meta.get("fps") else None  # frames per second
        else:
            self.fps = None
            self.layout, self.num_persons = _layout_from_width(width, self.path)
            self.labels, self.names = [], [f"{split}_{i}" for i in range(len(x))]
        if width != self.num_persons * self.layout.num_joints * 3:
            raise ValueError(f"{self.path}: row width {width} != persons x joints x 3 from the sidecar")
        self.num_classes = y.shape[1] if y.ndim == 2 else int(self.all_labels.max()) + 1
        if not self.labels:
            self.labels = [f"class_{i}" for i in range(self.num_classes)]
        self.indices = (
            np.arange(len(self.all_labels))
            if label_fraction is None
            else select_label_fraction(self.all_labels, label_fraction, label_seed)
        )
        self._x = None if mmap else np.asarray(x)
        del x

    def subset(self, positions: np.ndarray) -> SkeletonClips:
        """The same file and transforms, narrowed to the items at `positions` (e.g. a held-out split)."""
        out = copy.copy(self)
        out.indices = self.indices[np.asarray(positions, dtype=np.int64)]
        return out

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if self.mmap:
            state["_x"] = None  # each worker maps the file itself; never pickle the array
        return state

    @property
    def x(self) -> np.ndarray:
        if self._x is None:
            self._x = open_npz_member(self.path, f"x_{self.split}", mmap=True)
        return self._x

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def targets(self) -> np.ndarray:
        """Labels of the items, in item order."""
        return self.all_labels[self.indices]

    def raw_clip(self, index: int) -> np.ndarray:
        """Item `index` before any transform: `(C, max_frames, V, M)` float32."""
        row = np.asarray(self.x[self.indices[index]], dtype=np.float32)
        v, m = self.layout.num_joints, self.num_persons
        return np.ascontiguousarray(row.reshape(self.max_frames, m, v, 3).transpose(3, 0, 2, 1))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        data = self.raw_clip(index)
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
        p_range = self.p_range if self.train else None
        valid = valid_length(data)
        if self.train and self.span_jitter:
            data, valid = jitter_span(data[:, :valid], valid, self.span_jitter, rng)
        data = crop_and_resize(
            data,
            valid,
            self.num_frames,
            p_range=p_range,
            centre_p=self.test_crop,
            min_crop_frames=self.min_crop_frames,
            min_crop_fraction=self.min_crop_fraction,
            rng=rng,
        )
        if self.rotate:
            data = random_rotation(data, self.rotate_theta, rng)
        if self.stream == "bone":
            data = bone_stream(data, self.layout)
        elif self.stream == "velocity":
            data = velocity_stream(data)
        return torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32)), int(
            self.all_labels[self.indices[index]]
        )
