"""Depth-sensor corruption of clean skeletons: joint noise, tracking jitter, spikes and dropouts.

Applied after the kinematic motion, never instead of it: noise that is larger on the hands and feet
(as Kinect's is), a slow wobble of the whole track, single-joint jumps, joints that vanish (zero) or
freeze for a few frames, and the occasional frozen or lost body. Also returns per-joint confidences
(1 tracked, 0.5 inferred, 0 lost), which the recordings carry.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from masksem_core.layouts import NTU25

_EXTREMITY = [
    NTU25.index(n)
    for n in ("hand_left", "hand_right", "hand_tip_left", "hand_tip_right", "thumb_left", "thumb_right")
]
_DISTAL = [NTU25.index(n) for n in ("wrist_left", "wrist_right", "foot_left", "foot_right")]
_JOINT_NOISE = np.ones(NTU25.num_joints)
_JOINT_NOISE[_EXTREMITY] = 2.5
_JOINT_NOISE[_DISTAL] = 1.5


@dataclass(frozen=True)
class NoiseSettings:
    """Corruption strengths; `scale` multiplies all of them (0 switches corruption off)."""

    scale: float = 1.0
    noise_m: tuple[float, float] = (0.002, 0.008)  # per-clip white noise std range (metres, body joints)
    jitter_m: tuple[float, float] = (0.002, 0.006)  # slow whole-track wobble std range
    spikes_per_clip: float = 0.5  # single-joint jumps (1-3 frames, ~6 cm)
    joint_dropouts_per_clip: float = 0.3  # a joint zero or frozen for 1-4 frames
    body_dropout_prob: float = 0.08  # a whole body frozen or lost for 1-3 frames

    @classmethod
    def off(cls) -> NoiseSettings:
        return cls(scale=0.0)

    def to_dict(self) -> dict:
        return asdict(self)


def _smooth(x: np.ndarray, width: int, axis: int) -> np.ndarray:
    """Moving average along `axis` (same length; edges averaged over what exists)."""
    c = np.cumsum(np.moveaxis(x, axis, 0), axis=0)
    c = np.concatenate([np.zeros_like(c[:1]), c], axis=0)
    n = c.shape[0] - 1
    hi = np.minimum(np.arange(n) + width // 2 + 1, n)
    lo = np.maximum(np.arange(n) - width // 2, 0)
    avg = (c[hi] - c[lo]) / (hi - lo).reshape(-1, *([1] * (x.ndim - 1)))
    return np.moveaxis(avg, 0, axis)


def corrupt(
    bodies: np.ndarray, num_frames: np.ndarray, rng: np.random.Generator, settings: NoiseSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Corrupted copy of `bodies (B, M, T, V, 3)` and confidences `(B, M, T, V)`.

    Only person-frames that are present (non-zero) and inside each clip's `num_frames` are touched.
    """
    out = np.array(bodies, dtype=np.float64, copy=True)
    present = np.any(out != 0, axis=(-1, -2))  # (B, M, T)
    conf = np.where(present[..., None], 1.0, 0.0) * np.ones(out.shape[-2])
    s = settings.scale
    if s <= 0:
        return out, conf
    b, m, t, v, _ = out.shape
    sigma = rng.uniform(*settings.noise_m, (b, m, 1, 1, 1)) * s
    out += rng.normal(0.0, 1.0, out.shape) * sigma * _JOINT_NOISE[:, None]
    wobble = _smooth(rng.normal(0.0, 1.0, (b, m, t, 1, 3)), 9, axis=2) * 3.0  # std ~1 after smoothing
    out += wobble * rng.uniform(*settings.jitter_m, (b, m, 1, 1, 1)) * s
    extremity_p = np.where(_JOINT_NOISE > 1, 3.0, 1.0)
    extremity_p /= extremity_p.sum()
    for i in range(b):
        n = max(int(num_frames[i]), 1)
        persons = np.flatnonzero(present[i].any(axis=1))
        for k in persons:
            for _ in range(rng.poisson(settings.spikes_per_clip * s)):
                j, f0, ln = rng.choice(v, p=extremity_p), rng.integers(n), rng.integers(1, 4)
                out[i, k, f0 : f0 + ln, j] += rng.normal(0.0, 0.06, 3)
                conf[i, k, f0 : f0 + ln, j] = 0.5
            for _ in range(rng.poisson(settings.joint_dropouts_per_clip * s) if n > 1 else 0):
                j, f0, ln = rng.choice(v, p=extremity_p), rng.integers(1, n), rng.integers(1, 5)
                if rng.random() < 0.5:
                    out[i, k, f0 : f0 + ln, j] = 0.0
                    conf[i, k, f0 : f0 + ln, j] = 0.0
                else:
                    out[i, k, f0 : f0 + ln, j] = out[i, k, f0 - 1, j]
                    conf[i, k, f0 : f0 + ln, j] = 0.5
        if persons.size and n > 2 and rng.random() < settings.body_dropout_prob * s:
            f0, ln = rng.integers(1, n - 1), rng.integers(1, 4)
            if rng.random() < 0.5:
                out[i, persons, f0 : f0 + ln] = out[i, persons, f0 - 1][:, None]
                conf[i, persons, f0 : f0 + ln] = 0.5
            else:
                out[i, persons, f0 : f0 + ln] = 0.0
                conf[i, persons, f0 : f0 + ln] = 0.0
    absent = ~present
    out[absent] = 0.0
    conf[absent] = 0.0
    tail = np.arange(t)[None, :] >= np.asarray(num_frames)[:, None]
    out[np.broadcast_to(tail[:, None], (b, m, t))] = 0.0
    conf[np.broadcast_to(tail[:, None], (b, m, t))] = 0.0
    return out, conf
