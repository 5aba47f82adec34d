"""Continuous recordings from a prepared data set's clips: what a robot would stream, with exact truth.

A prepared data set holds pre-cut clips; a robot sees one continuous stream. `stitch_clips` lays clips
end to end at the data set's true frame rate with a gap before, between and after them, whose motion
follows a documented *gap model* (docs/replay.md):

- `hold`: the person stands still in the last pose of the previous clip (the first pose of the first
  clip before it), with N(0, `noise_m`) sensor noise on every coordinate of every frame;
- `smooth`: a smooth transition (smoothstep in time, per joint) from the last pose of the previous clip
  to the first pose of the next one, with the same noise;
- `mixed`: each gap is `hold` or `smooth` at random;
- `none`: no gaps at all, clips back to back (`gap_s` is ignored).

Gap durations are drawn uniformly from `gap_s` per gap. Truth: one interval per clip and person present
in it, `[first frame, last frame + 1/fps)`; gap frames are background. Everything is deterministic by seed.

The core (`stitch_clips`) takes plain arrays, so training code can build validation streams from
training clips; `load_split_clips` reads a prepared npz; `write_stitched` writes the bag of the package's
own Skeleton3DArray messages and the truth CSV that `masksem replay --labels` reads, with the synthetic
recordings' writers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from masksem_core.replay.ground_truth import Interval

GAP_MODELS = ("hold", "smooth", "mixed", "none")
DEFAULT_GAP_S = (1.0, 3.0)
DEFAULT_NOISE_M = 0.001


@dataclass
class SplitClips:
    """The clips of one split of a prepared data set, unpadded: `clips[k]` is `(T_k, M, V, 3)` float32."""

    clips: list[np.ndarray]
    labels: np.ndarray  # (N,) int class indices
    names: list[str]
    label_names: list[str]
    layout: str
    fps: float | None  # None when the sidecar does not say (older prepared files)


@dataclass
class Stitched:
    """A continuous recording: `frames[t]` is `(M, V, 3)` at `stamps[t]`; person slot m is present in frame t
    when `present[t, m]`. `frame_labels[t]` is the class index of the clip frame t belongs to (-1: gap)
    and `frame_clips[t]` that clip's position in `clip_order` (-1: gap)."""

    frames: np.ndarray  # (T, M, V, 3) float32
    stamps: np.ndarray  # (T,) float64 seconds
    present: np.ndarray  # (T, M) bool
    frame_labels: np.ndarray  # (T,) int64
    frame_clips: np.ndarray  # (T,) int64
    intervals: list[Interval]  # one per clip and present person, sorted by start
    fps: float
    layout: str
    label_names: list[str]
    clip_order: list[int] = field(default_factory=list)  # indices into the caller's clips, in stream order
    gaps: list[tuple[float, str]] = field(default_factory=list)  # (seconds, model) of each gap, in order

    @property
    def duration_s(self) -> float:
        return len(self.stamps) / self.fps

    @property
    def background_fraction(self) -> float:
        """Share of frames outside every clip (what answering "no action" everywhere scores)."""
        return float(np.mean(self.frame_labels < 0)) if self.frame_labels.size else float("nan")


def _smoothstep(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def _gap(
    before: np.ndarray | None,
    after: np.ndarray | None,
    n: int,
    model: str,
    noise_m: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """`n` gap frames `(n, M, V, 3)` and their presence `(n, M)` between two poses `(M, V, 3)`."""
    ref = before if before is not None else after
    assert ref is not None
    pres_b = np.any(before != 0, axis=(1, 2)) if before is not None else np.zeros(ref.shape[0], bool)
    pres_a = np.any(after != 0, axis=(1, 2)) if after is not None else np.zeros(ref.shape[0], bool)
    if before is None:
        before, pres_b = after, pres_a
    if after is None:
        after, pres_a = before, pres_b
    assert before is not None and after is not None
    if model == "hold":
        frames = np.broadcast_to(before, (n, *before.shape)).copy()
        present = np.broadcast_to(pres_b, (n, len(pres_b))).copy()
    else:  # smooth: interpolate persons seen on both sides; one seen on one side only stays on that half
        w = _smoothstep((np.arange(n) + 1.0) / (n + 1.0))[:, None, None, None]
        frames = (1.0 - w) * before[None] + w * after[None]
        only_b, only_a = pres_b & ~pres_a, pres_a & ~pres_b
        frames[:, only_b] = before[only_b][None]
        frames[:, only_a] = after[only_a][None]
        first_half = (np.arange(n) < n / 2)[:, None]
        present = (pres_b & pres_a)[None] | (first_half & only_b[None]) | (~first_half & only_a[None])
    if noise_m > 0:
        frames = frames + rng.normal(0.0, noise_m, frames.shape)
    frames[~present] = 0.0
    return frames.astype(np.float32), present


def stitch_clips(
    clips: Sequence[np.ndarray],
    labels: Sequence[int],
    fps: float,
    gap_model: str = "hold",
    gap_s: tuple[float, float] = DEFAULT_GAP_S,
    seed: int = 0,
    noise_m: float = DEFAULT_NOISE_M,
    start_s: float = 1.0,
    layout: str = "",
    label_names: Sequence[str] | None = None,
    shuffle: bool = False,
) -> Stitched:
    """Lay `clips` (each `(T, M, V, 3)`, unpadded, absent persons all zero) end to end with gaps.

    `labels[k]` is clip k's class index; `fps` the clips' true frame rate (stamps are `start_s + t / fps`);
    `gap_model` one of GAP_MODELS, gap lengths uniform in `gap_s` seconds (at least one frame), also before
    the first clip and after the last. `shuffle` puts the clips in a seeded random order. Same arguments,
    same output.
    """
    if gap_model not in GAP_MODELS:
        raise ValueError(f"gap_model must be one of {GAP_MODELS}, got {gap_model!r}")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    lo, hi = (float(g) for g in gap_s)
    if not 0 < lo <= hi:
        raise ValueError(f"gap_s must be 0 < min <= max seconds, got {gap_s}")
    if len(clips) != len(labels):
        raise ValueError(f"{len(clips)} clips but {len(labels)} labels")
    if not clips:
        raise ValueError("no clips to stitch")
    shapes = {tuple(np.shape(c)[1:]) for c in clips}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3 or next(iter(shapes))[2] != 3:
        raise ValueError(f"clips must all be (T, M, V, 3) with the same M and V, got shapes {sorted(shapes)}")
    for k, c in enumerate(clips):
        if len(c) == 0:
            raise ValueError(f"clip {k} has no frames")
    rng = np.random.default_rng([seed, 17])
    order = [int(i) for i in rng.permutation(len(clips))] if shuffle else list(range(len(clips)))
    parts: list[np.ndarray] = []
    present: list[np.ndarray] = []
    frame_labels: list[np.ndarray] = []
    frame_clips: list[np.ndarray] = []
    gaps: list[tuple[float, str]] = []
    spans: list[tuple[int, int, int, np.ndarray]] = []  # (start frame, end frame, label, persons present)
    cursor = 0
    prev_last: np.ndarray | None = None

    def add_gap(before: np.ndarray | None, after: np.ndarray | None) -> None:
        nonlocal cursor
        model = gap_model if gap_model != "mixed" else str(rng.choice(["hold", "smooth"]))
        n = max(1, round(rng.uniform(lo, hi) * fps))
        g, p = _gap(before, after, n, model, noise_m, rng)
        parts.append(g)
        present.append(p)
        frame_labels.append(np.full(n, -1, np.int64))
        frame_clips.append(np.full(n, -1, np.int64))
        gaps.append((n / fps, model))
        cursor += n

    for pos, k in enumerate(order):
        clip = np.asarray(clips[k], dtype=np.float32)
        if gap_model != "none":
            add_gap(prev_last, clip[0])
        pres = np.any(clip != 0, axis=(2, 3))  # (T, M)
        parts.append(clip)
        present.append(pres)
        frame_labels.append(np.full(len(clip), int(labels[k]), np.int64))
        frame_clips.append(np.full(len(clip), pos, np.int64))
        spans.append((cursor, cursor + len(clip), int(labels[k]), np.flatnonzero(pres.any(axis=0))))
        cursor += len(clip)
        prev_last = clip[-1]
    if gap_model != "none":
        add_gap(prev_last, None)
    names = list(label_names) if label_names is not None else [str(i) for i in range(max(labels) + 1)]
    intervals = [
        Interval(start_s + a / fps, start_s + b / fps, names[lab], str(m + 1))
        for a, b, lab, persons in spans
        for m in persons
    ]
    return Stitched(
        frames=np.concatenate(parts),
        stamps=start_s + np.arange(cursor, dtype=np.float64) / fps,
        present=np.concatenate(present),
        frame_labels=np.concatenate(frame_labels),
        frame_clips=np.concatenate(frame_clips),
        intervals=sorted(intervals, key=lambda i: (i.start, i.person_id or "")),
        fps=float(fps),
        layout=layout,
        label_names=names,
        clip_order=order,
        gaps=gaps,
    )


def load_split_clips(npz: str | Path, split: str = "test") -> SplitClips:
    """Every clip of `split` ("train" or "test") of a prepared npz, cut to its valid length."""
    from masksem_core.data.arrays import open_npz_member, read_sidecar

    npz = Path(npz)
    if split not in ("train", "test"):
        raise ValueError(f"split must be train or test, got {split!r}")
    if not npz.is_file():
        raise FileNotFoundError(f"prepared data set {npz} does not exist")
    side = read_sidecar(npz)
    if side is None:
        raise ValueError(f"{npz}: no sidecar {npz.with_suffix('.json').name}: layout and labels are unknown")
    x = open_npz_member(npz, f"x_{split}")
    y = np.asarray(open_npz_member(npz, f"y_{split}", mmap=False))
    m, v = int(side["num_persons"]), int(side["num_joints"])
    meta = side.get(split) or {}
    lengths = meta.get("valid_lengths")
    labels = np.asarray(meta.get("labels") if meta.get("labels") is not None else y.argmax(1), np.int64)
    clips = []
    for i in range(len(x)):
        row = np.asarray(x[i], dtype=np.float32).reshape(x.shape[1], m, v, 3)
        n = int(lengths[i]) if lengths is not None else int(np.count_nonzero(row.sum(axis=(1, 2, 3)) != 0))
        clips.append(row[:n])
    fps = side.get("fps")
    return SplitClips(
        clips=clips,
        labels=labels,
        names=list(meta.get("names") or [f"{split}{i}" for i in range(len(x))]),
        label_names=[str(s) for s in side.get("labels") or range(y.shape[1])],
        layout=str(side["layout"]),
        fps=float(fps) if fps is not None else None,
    )


def choose_clips(
    labels: np.ndarray, lengths: Sequence[int], num: int | None, min_frames: int, seed: int
) -> np.ndarray:
    """Seeded random choice of `num` clips (None: all) of at least `min_frames` frames, in random order."""
    if num is not None and num < 1:
        raise ValueError(f"--clips must be >= 1 (0: all), got {num}")
    eligible = np.flatnonzero(np.asarray(lengths) >= min_frames)
    if eligible.size == 0:
        raise ValueError(f"no clip has at least {min_frames} frames")
    if num is not None and num > eligible.size:
        raise ValueError(f"asked for {num} clips, only {eligible.size} have at least {min_frames} frames")
    rng = np.random.default_rng([seed, 18])
    return rng.permutation(eligible)[: num if num is not None else eligible.size]


def to_recording(stitched: Stitched):  # -> masksem_core.synthetic.recording.Recording
    """The stitched stream as a synthetic `Recording` (frames of person id -> (joints, confidence)),
    so the synthetic recordings' bag and CSV writers serve both."""
    from masksem_core.synthetic.recording import Recording, TruthInterval

    frames = []
    for t in range(len(stitched.stamps)):
        persons = {}
        for m in np.flatnonzero(stitched.present[t]):
            joints = stitched.frames[t, m]
            conf = np.any(joints != 0, axis=1).astype(np.float32)  # a zero joint was not seen
            persons[str(m + 1)] = (joints, conf)
        frames.append((float(stitched.stamps[t]), persons))
    intervals = [TruthInterval(i.start, i.end, i.label, i.person_id or "") for i in stitched.intervals]
    return Recording(frames=frames, intervals=intervals, fps=stitched.fps, layout=stitched.layout)


def write_stitched(
    out: str | Path, stitched: Stitched, storage: str = "mcap", overwrite: bool = False
) -> dict[str, Path]:
    """Write `out/bag` (Skeleton3DArray on /masksem/skeletons + the truth on /masksem/ground_truth) and
    `out/labels.csv` (`start,end,label,person_id`, what `masksem replay --labels` reads)."""
    import shutil

    from masksem_core.synthetic.recording import write_intervals_csv, write_recording_bag

    out = Path(out)
    bag, csv = out / "bag", out / "labels.csv"
    if bag.exists() or csv.exists():
        if not overwrite:
            raise FileExistsError(f"{out} already holds a recording (bag/ or labels.csv); pass --overwrite")
        shutil.rmtree(bag, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    rec = to_recording(stitched)
    write_recording_bag(bag, rec, storage=storage)
    write_intervals_csv(csv, rec)
    return {"bag": bag, "labels": csv}
