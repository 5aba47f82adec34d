"""Centring and padding shared by every data set: the NTU convention applied to any layout."""

from __future__ import annotations

import numpy as np


def centre_clip(data: np.ndarray, centre_joint: int) -> np.ndarray:
    """Subtract the first actor's `centre_joint` at its first non-zero frame from every joint.

    `data` is `(T, M, V, 3)` float32. This is NTU's `seq_translation` generalised: the origin comes from
    actor 1 only and is subtracted from all persons; person-frames that were all zero (absent) stay
    zero afterwards. A clip where actor 1 is never present is returned unchanged.
    """
    data = np.array(data, dtype=np.float32, copy=True)
    present = np.any(data != 0, axis=(2, 3))  # (T, M)
    first = np.flatnonzero(present[:, 0])
    if first.size == 0:
        return data
    origin = data[first[0], 0, centre_joint].copy()
    data -= origin
    data[~present] = 0.0
    return data


def pad_frames(data: np.ndarray, max_frames: int) -> np.ndarray:
    """`(T, ...)` -> `(max_frames, ...)`: zero tail, or the first `max_frames` frames when longer."""
    out = np.zeros((max_frames, *data.shape[1:]), dtype=np.float32)
    n = min(len(data), max_frames)
    out[:n] = data[:n]
    return out


def centre_clip_keep_unseen(data: np.ndarray, centre_joint: int) -> np.ndarray:
    """`centre_clip`, but single unseen joints (all-zero, e.g. a NaN the tracker gave or a joint the
    file's joint order lacks) stay zero too, so they still read as "not seen" after centring."""
    unseen = ~np.any(np.asarray(data) != 0, axis=-1)  # (T, M, V)
    out = centre_clip(data, centre_joint)
    out[unseen] = 0.0
    return out
