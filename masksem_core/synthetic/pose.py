"""Anatomical pose channels (shoulder elevation, elbow bend, hip flexion...) and their joint rotations.

Motion programs speak in these named channels instead of raw rotation matrices, so a program reads
like a description of the movement ("raise the arm to 90 degrees, bend the elbow, swing"). Arm and leg
channels are anatomical, hence mirror-symmetric: "azim" > 0 swings an arm outwards on either side.
"""

from __future__ import annotations

import numpy as np

from masksem_core.layouts import NTU25
from masksem_core.synthetic.kinematics import NUM_JOINTS, rot_x, rot_y, rot_z

_ARM = ("elev", "azim", "twist", "elbow", "wrist", "fingers")
_LEG = ("hip_flex", "hip_abd", "knee")
CHANNELS: tuple[str, ...] = (
    "root_yaw",
    "root_lean",
    "spine_bend",
    "spine_twist",
    "spine_side",
    "neck_nod",
    "neck_turn",
    *(f"{s}_{c}" for s in "lr" for c in _ARM),
    *(f"{s}_{c}" for s in "lr" for c in _LEG),
)
CH = {name: i for i, name in enumerate(CHANNELS)}
J = NTU25.index


class Motion:
    """Channel trajectories `(B, T, C)` plus root translation `(B, T, 3)` of a batch of clips.

    `right` says, per clip, which arm is the "main" one (the performer's dominant hand), so programs
    write `main_arm`/`other_arm` and handedness follows automatically.
    """

    def __init__(self, rest: np.ndarray, num_frames: int, right: np.ndarray) -> None:
        self.rest = np.array(rest, dtype=np.float64)
        self.ch = np.repeat(self.rest[:, None, :], num_frames, axis=1)
        self.root = np.zeros((rest.shape[0], num_frames, 3))
        self.right = np.array(right, dtype=bool)  # a copy: programs may force a hand
        self._rows = np.arange(rest.shape[0])

    def get(self, name: str) -> np.ndarray:
        return self.ch[:, :, CH[name]]

    def set(self, name: str, value: np.ndarray) -> None:
        self.ch[:, :, CH[name]] = value

    def add(self, name: str, value: np.ndarray) -> None:
        self.ch[:, :, CH[name]] += value

    def arm_index(self, field: str, main: bool) -> np.ndarray:
        """`(B,)` channel index of `field` on each clip's main (dominant) or other arm."""
        use_right = self.right if main else ~self.right
        return np.where(use_right, CH[f"r_{field}"], CH[f"l_{field}"])

    def arm(self, field: str, main: bool = True) -> np.ndarray:
        """`(B, T)` copy of the main (or other) arm's channel."""
        return self.ch[self._rows, :, self.arm_index(field, main)]

    def set_arm(self, field: str, value: np.ndarray, main: bool = True) -> None:
        self.ch[self._rows, :, self.arm_index(field, main)] = np.broadcast_to(value, self.ch.shape[:2])

    def blend_arm(self, field: str, target: np.ndarray, weight: np.ndarray, main: bool = True) -> None:
        """Move the arm channel from where it is towards `target` by `weight` in [0, 1]."""
        cur = self.arm(field, main)
        self.set_arm(field, cur + weight * (target - cur), main)

    def blend(self, name: str, target: np.ndarray, weight: np.ndarray) -> None:
        cur = self.get(name)
        self.set(name, cur + weight * (target - cur))


def smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, with zero slope at both ends (minimum-jerk-like ramps)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * x * (x * (6 * x - 15) + 10)


def ramp(phase: np.ndarray, start: float | np.ndarray, end: float | np.ndarray) -> np.ndarray:
    """Smooth 0 -> 1 transition while `phase` goes from `start` to `end`."""
    return smoothstep((phase - start) / np.maximum(np.asarray(end) - start, 1e-6))


def envelope(phase: np.ndarray, rise: float | np.ndarray, fall: float | np.ndarray) -> np.ndarray:
    """0 -> 1 over the first `rise` of the action, 1 -> 0 over its last `fall`."""
    return ramp(phase, 0.0, rise) * (1.0 - ramp(phase, 1.0 - np.asarray(fall), 1.0))


def to_rotations(ch: np.ndarray) -> np.ndarray:
    """Local joint rotations `(B, T, 25, 3, 3)` for channel values `(B, T, C)`.

    Leg flexion is measured from the vertical (the pelvis tilt is compensated) and the feet are kept
    level, so leaning the trunk does not lift the legs.
    """
    c = {name: ch[..., i] for name, i in CH.items()}
    rot = np.broadcast_to(np.eye(3), (*ch.shape[:2], NUM_JOINTS, 3, 3)).copy()
    lean = c["root_lean"]
    rot[..., J("spine_base"), :, :] = rot_y(c["root_yaw"]) @ rot_x(lean)
    half = [rot_y(c["spine_twist"] / 2), rot_z(-c["spine_side"] / 2), rot_x(c["spine_bend"] / 2)]
    upper = half[0] @ half[1] @ half[2]
    rot[..., J("spine_mid"), :, :] = upper
    rot[..., J("spine_shoulder"), :, :] = upper
    rot[..., J("neck"), :, :] = rot_y(c["neck_turn"]) @ rot_x(c["neck_nod"])
    for side, name in (("l", "left"), ("r", "right")):
        m = 1.0 if side == "l" else -1.0  # mirror: angles about y and z change sign on the right
        a = {f: c[f"{side}_{f}"] for f in _ARM}
        rot[..., J(f"shoulder_{name}"), :, :] = (
            rot_y(m * a["azim"]) @ rot_x(-a["elev"]) @ rot_y(m * a["twist"])
        )
        rot[..., J(f"elbow_{name}"), :, :] = rot_x(-a["elbow"])
        rot[..., J(f"wrist_{name}"), :, :] = rot_x(-a["wrist"])
        rot[..., J(f"hand_{name}"), :, :] = rot_x(-a["fingers"])
        flex, knee = c[f"{side}_hip_flex"], c[f"{side}_knee"]
        rot[..., J(f"hip_{name}"), :, :] = rot_z(m * c[f"{side}_hip_abd"]) @ rot_x(-(flex + lean))
        rot[..., J(f"knee_{name}"), :, :] = rot_x(knee)
        rot[..., J(f"ankle_{name}"), :, :] = rot_x(flex - knee)
    return rot


def rest_channels(
    rng: np.random.Generator,
    arm_hang: np.ndarray,
    elbow_rest: np.ndarray,
    stance: np.ndarray,
    jitter: float = 1.0,
) -> np.ndarray:
    """Start poses `(B, C)`: the subject's habitual stance, varied per clip by `jitter` (0: none).

    About one clip in six starts with the hands loosely together in front of the belly.
    """
    b = len(arm_hang)
    rest = np.zeros((b, len(CHANNELS)))

    def j(scale: float) -> np.ndarray:
        return rng.normal(0.0, scale * jitter, b)

    for s in "lr":
        rest[:, CH[f"{s}_elev"]] = 0.04 + arm_hang + np.abs(j(0.04))  # hanging slightly away from the body,
        rest[:, CH[f"{s}_azim"]] = 1.1 + j(0.25)  # mostly sideways
        rest[:, CH[f"{s}_twist"]] = j(0.15)
        rest[:, CH[f"{s}_elbow"]] = np.clip(elbow_rest + j(0.1), 0.0, 0.8)
        rest[:, CH[f"{s}_fingers"]] = 0.2 + np.abs(j(0.1))
        rest[:, CH[f"{s}_hip_abd"]] = stance + j(0.015)
    clasped = rng.random(b) < 0.17 * jitter
    for s in "lr":
        rest[clasped, CH[f"{s}_elev"]] = 0.35
        rest[clasped, CH[f"{s}_azim"]] = -0.5
        rest[clasped, CH[f"{s}_twist"]] = -0.6
        rest[clasped, CH[f"{s}_elbow"]] = 1.2
    rest[:, CH["root_lean"]] = j(0.03)
    rest[:, CH["spine_bend"]] = j(0.04)
    rest[:, CH["neck_nod"]] = 0.05 + j(0.08)
    rest[:, CH["neck_turn"]] = j(0.12)
    return rest
