"""The reference (MAMP / MaskSem) clip transforms on `(C, T, V, M)` numpy arrays.

Pure numpy, so the runtime can reuse the test-time transform without torch. Training: crop ratio
p ~ U[0.5, 1], crop length clip(floor(valid * p), floor, valid) at a random start, resize to T by
linear interpolation (the same numbers as torch's bilinear `F.interpolate`, align_corners=False),
random rotation. Test: centre crop p = 0.95, resize.

The reference's crop floor is 64 frames (meant for NTU's up-to-300-frame clips). On short clips
(NW-UCLA median 31 frames) that floor equals the whole clip and disables crop augmentation, so the
default floor follows the data: 64 frames, but at most half the clip's valid length. `min_crop_frames`
fixes it (the NTU/PKU recipes keep 64), `min_crop_fraction` scales it: max(1, floor(valid * fraction)).
"""

from __future__ import annotations

import math

import numpy as np

from masksem_core.layouts import SkeletonLayout


def valid_length(data: np.ndarray) -> int:
    """Frames whose values do not sum to zero (the reference's rule); `data` is `(C, T, V, M)`."""
    return int(np.count_nonzero(data.sum(axis=(0, 2, 3)) != 0))


def resize_frames(data: np.ndarray, num_frames: int) -> np.ndarray:
    """Linear resampling along T of `(C, L, V, M)` to `(C, num_frames, V, M)`, align_corners=False."""
    length = data.shape[1]
    if length == num_frames:
        return np.array(data, dtype=np.float32, copy=True)
    src = (np.arange(num_frames, dtype=np.float64) + 0.5) * (length / num_frames) - 0.5
    src = np.maximum(src, 0.0)
    i0 = np.floor(src).astype(np.int64)
    i0 = np.minimum(i0, length - 1)
    i1 = np.minimum(i0 + 1, length - 1)
    w = (src - i0).astype(np.float32)[None, :, None, None]
    d = data.astype(np.float32, copy=False)
    return (d[:, i0] * (1.0 - w) + d[:, i1] * w).astype(np.float32)


REFERENCE_CROP_FLOOR = 64  # frames: the reference recipes' floor, sized for NTU's ~100-300-frame clips
DATA_CROP_FRACTION = 0.5  # of a clip's valid length: the default floor of clips too short for 64


def crop_floor(valid: int, min_crop_frames: int | None = None, min_crop_fraction: float | None = None) -> int:
    """Shortest random crop: `max(1, floor(valid * fraction))` when a fraction is set, else the fixed
    `min_crop_frames` when set, else one that follows the data: the reference 64 frames, but never more
    than half the clip's valid length (so cropping stays on for short clips: custom data, NW-UCLA)."""
    if min_crop_fraction is not None:
        if not 0.0 < min_crop_fraction <= 1.0:
            raise ValueError(f"min_crop_fraction must be in (0, 1], got {min_crop_fraction}")
        return max(1, math.floor(valid * min_crop_fraction))
    if min_crop_frames is not None:
        return min_crop_frames
    return max(1, min(REFERENCE_CROP_FLOOR, math.floor(valid * DATA_CROP_FRACTION)))


def crop_and_resize(
    data: np.ndarray,
    valid_len: int,
    num_frames: int,
    p_range: tuple[float, float] | None = (0.5, 1.0),
    centre_p: float = 0.95,
    min_crop_frames: int | None = None,
    min_crop_fraction: float | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Crop the valid part of `(C, T, V, M)` and resize it to `num_frames`.

    `p_range=None` is the test transform: a centre crop keeping `centre_p` of the valid frames. Otherwise a
    random crop (ratio drawn from `p_range`, length floored by `crop_floor`, random start; `rng` draws).
    An all-zero clip (valid_len 0) gives zeros.
    """
    c, _, v, m = data.shape
    if valid_len <= 0:
        return np.zeros((c, num_frames, v, m), dtype=np.float32)
    if p_range is None:
        bias = int((1 - centre_p) * valid_len / 2)
        seg = data[:, bias : valid_len - bias]
    else:
        rng = rng if rng is not None else np.random.default_rng()
        p = rng.random() * (p_range[1] - p_range[0]) + p_range[0]
        floor = crop_floor(valid_len, min_crop_frames, min_crop_fraction)
        length = min(max(int(np.floor(valid_len * p)), floor), valid_len)
        bias = int(rng.integers(0, valid_len - length + 1))
        seg = data[:, bias : bias + length]
    return resize_frames(seg, num_frames)


def jitter_span(
    data: np.ndarray, valid_len: int, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, int]:
    """Move each end of the valid part of `(C, T, V, M)` by a whole number of frames drawn from
    U[-fraction, fraction] x valid_len: inward crops it, outward holds the edge pose for that many frames
    (as a person stands still before or after an action). A clip classifier trained so is meant to name
    an action on the span a stream recogniser found, which starts and ends a few frames off the truth.
    Returns the new clip (its frames all valid) and its length; at least one frame is kept."""
    if valid_len <= 0 or fraction <= 0:
        return data, valid_len
    reach = fraction * valid_len
    head, tail = (int(round(x)) for x in rng.uniform(-reach, reach, 2))  # > 0 outward: hold; < 0: crop
    first = min(max(-head, 0), valid_len - 1)
    last = max(valid_len - max(-tail, 0), first + 1)  # exclusive end of the kept frames
    kept = data[:, first:last]
    before = np.repeat(kept[:, :1], max(head, 0), axis=1)
    after = np.repeat(kept[:, -1:], max(tail, 0), axis=1)
    out = np.concatenate([before, kept, after], axis=1)
    return out, out.shape[1]


def rotation_matrix(angles: np.ndarray) -> np.ndarray:
    """The reference's Rz @ Ry @ Rx for Euler angles (x, y, z) in radians."""
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, sx], [0, -sx, cx]])
    ry = np.array([[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]])
    rz = np.array([[cz, sz, 0], [-sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def random_rotation(
    data: np.ndarray, theta: float = 0.3, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Rotate every point of `(3, T, V, M)` by one random rotation, angles ~ U(-theta, theta)."""
    rng = rng if rng is not None else np.random.default_rng()
    rot = rotation_matrix(rng.uniform(-theta, theta, 3)).astype(np.float32)
    return np.einsum("ij,jtvm->itvm", rot, data).astype(np.float32)


def bone_stream(data: np.ndarray, layout: SkeletonLayout) -> np.ndarray:
    """Bones `child - parent` of the layout's tree (roots are zero); `(C, T, V, M)` in and out."""
    out = np.zeros_like(data)
    child = np.array([c for c, _ in layout.bones])
    parent = np.array([p for _, p in layout.bones])
    out[:, :, child] = data[:, :, child] - data[:, :, parent]
    return out


def velocity_stream(data: np.ndarray) -> np.ndarray:
    """`x[t + 1] - x[t]`, last frame zero, along T of `(C, T, V, M)`."""
    out = np.zeros_like(data)
    out[:, :-1] = data[:, 1:] - data[:, :-1]
    return out
