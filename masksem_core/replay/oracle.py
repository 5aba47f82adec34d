"""The oracle upper bound of a replay: the bundle classifying each labelled interval, cut exactly.

A stream recogniser has to find where actions start and end and what they are; given the true
boundaries, what remains is the offline problem. Each truth interval's frames are cut from the
recording, turned into a clip exactly as the recogniser turns a window into one (the feeder's test-time
transform: centre on the first frame, centre crop, resize to the clip length) and classified whole; the
background class of a stream-trained bundle is left out of that choice ("which action was this clip").
On a recording stitched from a data set's clips this is the offline accuracy of those clips. A bundle's
segment classifier (a whole-clip model of the same actions) is a second oracle: `segment=True`.
`metrics.oracle_scores` turns the per-interval answers into frame and segment scores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from masksem_core.replay.metrics import STAMP_TOL_S
from masksem_core.runtime.adapters import get_adapter
from masksem_core.runtime.bundle import Bundle
from masksem_core.runtime.recognizer import windows_to_clips


def read_tracks(
    bag: str | Path, topic: str | None = None, layout: str | None = None, target: str | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{person: (stamps (F,), joints (F, V, 3))} of a bag's skeleton topic, adapted to layout `target`.

    A bag damaged part-way gives what was read before the damage.
    """
    from masksem_core.rosmsg.bag_io import BagReadError, iter_skeleton_frames

    stamps: dict[str, list[float]] = {}
    joints: dict[str, list[np.ndarray]] = {}
    try:
        for frame in iter_skeleton_frames(bag, topic, layout):
            for pid, (j, _) in frame.persons.items():
                source = frame.layout or layout or target
                if target is not None and source != target:
                    j = get_adapter(source, target)(np.asarray(j, dtype=np.float32))
                stamps.setdefault(str(pid), []).append(frame.stamp)
                joints.setdefault(str(pid), []).append(np.asarray(j, dtype=np.float32))
    except BagReadError:
        pass
    return {p: (np.asarray(stamps[p]), np.stack(joints[p])) for p in stamps}


def clip_scores(bundle: Bundle, logits: torch.Tensor) -> torch.Tensor:
    """(N, K) class scores of whole clips: dense (N, L_t, K) logits averaged over tokens (interface 2),
    the background column of a stream-trained bundle dropped (it cannot be "which action")."""
    if logits.ndim == 3:
        logits = logits.mean(dim=1)
    if bundle.meta.get("background_label"):
        logits = logits[:, :-1]
    return logits


def _window(tracks: dict, person: str | None, start: float, end: float, m: int, v: int) -> np.ndarray | None:
    """(M, W, V, 3) of the interval: slot 0 its person, the other slots others seen then (by id)."""
    inside = {p: (t >= start - STAMP_TOL_S) & (t < end - STAMP_TOL_S) for p, (t, _) in tracks.items()}
    order = sorted((p for p in inside if inside[p].any()), key=lambda p: (p != person, p))
    if not order or (person is not None and order[0] != person):
        return None
    grid = np.unique(np.concatenate([tracks[p][0][inside[p]] for p in order[:1]]))
    out = np.zeros((m, len(grid), v, 3), np.float32)
    for slot, p in enumerate(order[:m]):
        t, j = tracks[p][0][inside[p]], tracks[p][1][inside[p]]
        pos = np.searchsorted(grid, t)
        ok = (pos < len(grid)) & (np.abs(grid[np.minimum(pos, len(grid) - 1)] - t) <= STAMP_TOL_S)
        out[slot, pos[ok]] = j[ok]
    return out


@torch.inference_mode()
def classify_intervals(
    bundle: Bundle,
    tracks: dict[str, tuple[np.ndarray, np.ndarray]],
    intervals: list[Any],
    segment: bool = False,
) -> list[str | None]:
    """The bundle's answer for each interval (`start`, `end`, `person_id`), None when it has no frames
    (`segment`: its segment classifier's, prepared as the recogniser prepares a segment)."""
    m, v = bundle.num_persons, bundle.layout.num_joints
    out: list[str | None] = []
    if segment and bundle.segment_model is None:
        raise ValueError("the bundle has no segment classifier")
    labels = bundle.labels
    model = (bundle.segment_model if segment else bundle.model).eval()
    length = bundle.segment_clip_length if segment else bundle.clip_length
    crop = bundle.segment_crop_ratio if segment else bundle.crop_ratio
    for iv in intervals:
        window = _window(tracks, iv.person_id, iv.start, iv.end, m, v)
        if window is None:
            out.append(None)
            continue
        x = windows_to_clips(window[None], bundle.centre_joint, length, crop)
        scores = model(x).float() if segment else clip_scores(bundle, model(x).float())
        out.append(labels[int(scores.argmax(dim=1)[0])])
    return out
