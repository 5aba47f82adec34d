"""Stream-like training windows from any prepared data set: what a streaming recogniser will see.

A robot's recogniser sees a continuous stream cut into fixed windows of raw frames; most windows hold
part of an action, the end of one, or no action at all. Training on whole clips stretched to the clip
length (the offline protocol) teaches none of that. `StreamWindows` therefore builds each training
sample as a short synthetic stream around one clip and cuts a window out of it:

    [tail of another clip] [gap] [the clip, at a random speed] [gap] [head of another clip]

- Gaps are background ("no action") and take one of two forms, each half of the time: **hold** (the
  neighbouring pose held, with `jitter_m` of per-joint noise and a slow drift of up to `drift_mps`:
  a still or slowly moving person) or **transition** (a smooth, eased interpolation from the previous
  pose to the next: a person moving between two actions). Gap lengths are uniform in `gap_s`.
- Neighbouring clips keep their own labels, so windows also learn where one action ends. Half of the
  time they are moved next to where the person stands, else they keep their own coordinates.
- The window is `window_frames` raw frames at the data set's frame rate (`fps`, from the sidecar
  unless set) at a uniformly random offset whose span overlaps the clip or its gaps, so it contains
  context before and after the action; it is centred like the runtime does (slot 0's centre joint in
  the window's first frame) and randomly rotated.
- Labels are per temporal token (`token_frames` frames each): the label covering most of the token's
  frames, background being the last class (`background_label`, default `no_action`).
- `whole_clip_fraction` of the samples are instead the offline sample (random crop of the whole clip
  resized to the clip length, every token labelled with the action), which keeps offline accuracy.

The same `StreamingConfig` (the `streaming:` section of a training config) works for any prepared
npz: NW-UCLA, NTU, the demo's synthetic set or a user's own recordings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from masksem_core.config import ConfigError
from masksem_core.data.arrays import read_sidecar
from masksem_core.data.augment import crop_and_resize, random_rotation, resize_frames, valid_length
from masksem_core.data.feeder import SkeletonClips

BACKGROUND_LABEL = "no_action"


@dataclass
class StreamingConfig:
    """Training on stream-like windows (see masksem_core.data.stream). Off unless `enabled`."""

    enabled: bool = False
    fps: float | None = None  # the data's frame rate; None: the sidecar's "fps" (an error when absent)
    window_frames: int | None = None  # raw frames per window; None: model.num_frames (no resizing)
    whole_clip_fraction: float = 0.5  # share of samples that are the offline whole-clip sample
    gap_s: list[float] = field(default_factory=lambda: [0.3, 3.0])  # background gap lengths, seconds
    speed: list[float] = field(default_factory=lambda: [0.8, 1.25])  # clip playback speed range
    jitter_m: float = 0.002  # per-joint noise on held poses, metres
    drift_mps: float = 0.1  # slow drift of held poses, up to this speed (m/s)
    context_clips: bool = True  # put the tail/head of other clips before/after the gaps
    background_label: str = BACKGROUND_LABEL
    # causal attention over temporal tokens: every token is trained as the newest token of a stream is
    # used by a robot (no future frames); see ActionClassifier(causal=True)
    causal: bool = False
    # both: every training sample through both attentions (2x the encoder's work); answers a stream's newest
    # frames causally and its settled frames and whole clips bidirectionally (ActionClassifier(dual=True))
    dual: bool = False

    def validate(self) -> None:
        if self.fps is not None and not self.fps > 0:
            raise ConfigError(f"streaming.fps must be > 0, got {self.fps}")
        if self.window_frames is not None and self.window_frames < 2:
            raise ConfigError(f"streaming.window_frames must be >= 2, got {self.window_frames}")
        if not 0.0 <= self.whole_clip_fraction < 1.0:
            raise ConfigError(
                f"streaming.whole_clip_fraction must be in [0, 1), got {self.whole_clip_fraction}"
            )
        for name in ("gap_s", "speed"):
            lo_hi = getattr(self, name)
            if len(lo_hi) != 2 or not 0 <= lo_hi[0] <= lo_hi[1]:
                raise ConfigError(f"streaming.{name} must be [low, high] with 0 <= low <= high, got {lo_hi}")
        if self.speed[0] <= 0:
            raise ConfigError(f"streaming.speed must be > 0, got {self.speed}")
        if self.jitter_m < 0 or self.drift_mps < 0:
            raise ConfigError("streaming.jitter_m and streaming.drift_mps must be >= 0")
        if not self.background_label:
            raise ConfigError("streaming.background_label must not be empty")
        if self.causal and not self.enabled:
            raise ConfigError("streaming.causal needs streaming.enabled: true (a dense stream model)")
        if self.dual and not self.enabled:
            raise ConfigError("streaming.dual needs streaming.enabled: true (a dense stream model)")
        if self.dual and self.causal:
            raise ConfigError("streaming.causal and streaming.dual exclude each other: choose one")


def data_fps(npz_path: str, fps: float | None = None) -> float:
    """The frame rate of a prepared data set: `fps` when given, else its sidecar's "fps"."""
    if fps is not None:
        return float(fps)
    meta = read_sidecar(npz_path) or {}
    value = meta.get("fps")
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise ConfigError(
            f"{npz_path}: the sidecar has no valid 'fps' (got {value!r}); stream training needs the "
            "data set's frame rate: re-run `masksem prepare` or set streaming.fps"
        )
    return float(value)


def token_labels(frame_labels: np.ndarray, num_tokens: int) -> np.ndarray:
    """(W,) per-frame class indices -> (num_tokens,) the class covering most frames of each token
    (ties: the smaller index, i.e. an action over the background, which is the last class)."""
    w = len(frame_labels)
    edges = np.linspace(0, w, num_tokens + 1)
    out = np.empty(num_tokens, np.int64)
    for j in range(num_tokens):
        part = frame_labels[int(round(edges[j])) : max(int(round(edges[j + 1])), int(round(edges[j])) + 1)]
        out[j] = np.bincount(part).argmax()
    return out


def _ease(n: int) -> np.ndarray:
    """n interpolation weights in (0, 1), smoothstep-shaped (slow start and end, like a person)."""
    s = (np.arange(1, n + 1, dtype=np.float32)) / (n + 1)
    return s * s * (3 - 2 * s)


class StreamWindows(Dataset):
    """Stream-like windows around the clips of a `SkeletonClips` (see the module docstring).

    Items are `(C, T, V, M)` float32 tensors and `(L_t,)` long per-token labels, `L_t = T / patch_len`;
    class `num_classes - 1` is the background.
    """

    def __init__(
        self,
        clips: SkeletonClips,
        cfg: StreamingConfig,
        num_tokens: int,
        fps: float,
    ) -> None:
        if clips.num_frames % num_tokens:
            raise ValueError(f"clip length {clips.num_frames} is not a multiple of {num_tokens} tokens")
        self.clips, self.cfg, self.num_tokens, self.fps = clips, cfg, num_tokens, float(fps)
        self.window_frames = int(cfg.window_frames or clips.num_frames)
        self.labels = [*clips.labels, cfg.background_label]
        self.num_classes = clips.num_classes + 1
        self.background = clips.num_classes
        self.layout = clips.layout
        self.names = clips.names
        self.indices = clips.indices  # item i is clip clips.indices[i], as for SkeletonClips

    @property
    def token_frames(self) -> float:
        """Input frames (at `fps`) per temporal token."""
        return self.window_frames / self.num_tokens

    def subset(self, positions: np.ndarray) -> StreamWindows:
        out = StreamWindows(self.clips.subset(positions), self.cfg, self.num_tokens, self.fps)
        return out

    @property
    def targets(self) -> np.ndarray:
        return self.clips.targets

    def __len__(self) -> int:
        return len(self.clips)

    # ------------------------------------------------------------------ building blocks
    def _motion(self, item: int, rng: np.random.Generator) -> np.ndarray:
        """The valid frames of clip `item` as (L, M, V, 3), played at a random speed."""
        data = self.clips.raw_clip(item)  # (C, T, V, M)
        n = max(valid_length(data), 1)
        lo, hi = self.cfg.speed
        speed = float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if hi > lo else lo
        length = max(2, int(round(n / speed)))
        data = resize_frames(data[:, :n], length) if length != n else data[:, :n]
        return np.ascontiguousarray(data.transpose(1, 3, 2, 0))  # (L, M, V, 3)

    def _gap(self, before: np.ndarray, after: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Background frames (G, M, V, 3) between pose `before` and pose `after` (each (M, V, 3))."""
        lo, hi = self.cfg.gap_s
        g = int(round(rng.uniform(lo, hi) * self.fps))
        if g <= 0:
            return np.zeros((0, *before.shape), np.float32)
        present = np.any(before != 0, axis=(1, 2))[None, :, None, None]
        if rng.random() < 0.5:  # transition: ease from one pose to the other
            w = _ease(g)[:, None, None, None]
            frames = before[None] * (1 - w) + after[None] * w
        else:  # hold: the pose held (from the side the gap is anchored to), slowly drifting
            pose = before if rng.random() < 0.5 else after
            speed = rng.uniform(0, self.cfg.drift_mps)
            direction = rng.normal(size=3)
            direction[1] = 0.0  # drift on the floor
            direction /= max(np.linalg.norm(direction), 1e-9)
            t = (np.arange(g, dtype=np.float32) / self.fps)[:, None, None, None]
            frames = pose[None] + t * speed * direction.astype(np.float32)
        frames = frames + rng.normal(0, self.cfg.jitter_m, frames.shape).astype(np.float32)
        return np.where(present, frames, 0.0).astype(np.float32)

    def _stream(self, item: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int, int]:
        """A short stream around clip `item`: frames (F, M, V, 3), per-frame labels (F,), and the
        [start, end) frames of the clip within it."""
        w = self.window_frames
        own = self._motion(item, rng)
        label = int(self.clips.all_labels[self.clips.indices[item]])
        labels = [np.full(len(own), label)]
        if self.cfg.context_clips and len(self.clips) > 1:
            before_item, after_item = rng.integers(0, len(self.clips), 2)
            before = self._motion(int(before_item), rng)[-w:]
            after = self._motion(int(after_item), rng)[:w]
            before_label = int(self.clips.all_labels[self.clips.indices[before_item]])
            after_label = int(self.clips.all_labels[self.clips.indices[after_item]])
        else:
            before, after = own[:1], own[-1:]
            before_label = after_label = self.background
        # each neighbour is moved so that it joins the clip near where the person stands
        before = before + self._shift(before[-1], own[0], rng)
        gap1 = self._gap(before[-1], own[0], rng)
        after = after + self._shift(after[0], own[-1], rng)
        gap2 = self._gap(own[-1], after[0], rng)
        pieces = [before, gap1, own, gap2, after]
        tags = [
            np.full(len(before), before_label),
            np.full(len(gap1), self.background),
            labels[0],
            np.full(len(gap2), self.background),
            np.full(len(after), after_label),
        ]
        if not (self.cfg.context_clips and len(self.clips) > 1):
            tags[0][:] = self.background  # a held first/last pose, not another action
            tags[-1][:] = self.background
        frames = np.concatenate(pieces).astype(np.float32)
        start = len(before) + len(gap1)
        return frames, np.concatenate(tags).astype(np.int64), start, start + len(own)

    def _shift(self, pose: np.ndarray, anchor: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Translation putting `pose`'s centre joint a small step on the floor from `anchor`'s; half of the
        time none: clips then keep their own coordinates (prepared clips each start near the origin), as
        when recordings are stitched from prepared clips, so a window may also see such a jump."""
        if rng.random() < 0.5:
            return np.zeros((1, 1, 1, 3), np.float32)
        cj = self.layout.centre_joint
        step = rng.normal(0, 0.2, 3).astype(np.float32)
        step[1] = 0.0
        present = np.any(pose != 0, axis=(1, 2))[None, :, None, None]
        return np.where(present, (anchor[0, cj] - pose[0, cj] + step)[None, None, None, :], 0.0).astype(
            np.float32
        )

    def window(self, item: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One stream window around clip `item`: (W, M, V, 3) frames and (W,) per-frame labels."""
        frames, tags, start, end = self._stream(item, rng)
        w = self.window_frames
        if len(frames) < w:  # pad with the last pose held (background)
            pad = w - len(frames)
            frames = np.concatenate([frames, np.repeat(frames[-1:], pad, axis=0)])
            tags = np.concatenate([tags, np.full(pad, self.background)])
        # offsets whose window overlaps the clip or the gaps next to it: context on both sides
        lo = max(0, start - w)
        hi = max(lo, min(len(frames) - w, end))
        offset = int(rng.integers(lo, hi + 1))
        return frames[offset : offset + w], tags[offset : offset + w]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
        clips = self.clips
        if rng.random() < self.cfg.whole_clip_fraction:
            data = clips.raw_clip(index)
            data = crop_and_resize(
                data, valid_length(data), clips.num_frames, p_range=clips.p_range,
                min_crop_frames=clips.min_crop_frames, min_crop_fraction=clips.min_crop_fraction, rng=rng,
            )  # fmt: skip
            label = int(clips.all_labels[clips.indices[index]])
            tokens = np.full(self.num_tokens, label, np.int64)
        else:
            frames, tags = self.window(index, rng)
            frames = centre_window(frames, self.layout.centre_joint)
            data = np.ascontiguousarray(frames.transpose(3, 0, 2, 1))  # (C, W, V, M)
            if self.window_frames != clips.num_frames:
                data = resize_frames(data, clips.num_frames)
            tokens = token_labels(tags, self.num_tokens)
        if clips.rotate:
            data = random_rotation(data, clips.rotate_theta, rng)
        return torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32)), torch.from_numpy(tokens)


def centre_window(frames: np.ndarray, centre_joint: int) -> np.ndarray:
    """(W, M, V, 3) -> the same centred on slot 0's centre joint in the first frame; absent slots stay
    zero (what the runtime's `windows_to_clips` does)."""
    present = np.any(frames != 0, axis=(0, 2, 3))  # (M,)
    origin = frames[0, 0, centre_joint]
    out = frames - origin[None, None, None, :]
    out[:, ~present] = 0.0
    return out.astype(np.float32)


def stream_windows(clips: SkeletonClips, cfg: StreamingConfig, patch_len: int) -> StreamWindows:
    """The training set of a stream-trained model: windows around `clips` at the data set's frame rate."""
    return StreamWindows(clips, cfg, clips.num_frames // patch_len, data_fps(clips.path, cfg.fps))


def stream_metadata(dataset: object) -> dict:
    """What a checkpoint/bundle records about a stream-trained model (interfaces 1 and 2)."""
    if not isinstance(dataset, StreamWindows):
        return {}
    return {
        "dense": True,
        "background_label": dataset.cfg.background_label,
        "token_frames": float(dataset.token_frames),
        "window_frames": int(dataset.window_frames),
        "fps": float(dataset.fps),
    }
