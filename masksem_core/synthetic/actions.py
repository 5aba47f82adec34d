"""One motion program per collaboration action: channel trajectories as functions of the action phase.

Every program starts and ends in the clip's rest pose (except sit_down / stand_up, which end / start
seated), scales with the clip's amplitude and speed, and uses the performer's dominant arm. Pairs that
differ only subtly are intended (push vs pull, handover_reach vs take_object, wave vs beckon, sit_down
vs stand_up): recognising them needs the order and direction of the motion, not a pose.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from masksem_core.layouts import NTU25
from masksem_core.synthetic.pose import Motion, envelope, ramp

TAU = 2.0 * np.pi


@dataclass
class Context:
    """What a program may use: time since onset, progress, and per-clip random draws (all `(B, 1)`)."""

    t: np.ndarray  # (B, T) seconds since the action began (negative before)
    phase: np.ndarray  # (B, T) progress through the action, 0..1 (time-warped)
    amp: np.ndarray  # (B, 1) amplitude factor
    speed: np.ndarray  # (B, 1) speed factor (scales oscillation frequencies)
    seat: np.ndarray  # (B, 1) the performer's seated thigh angle (rad), fixed per subject
    lengths: np.ndarray  # (B, persons, 25) bone lengths, for programs that place a hand exactly
    rng: np.random.Generator
    meet: np.ndarray | None = field(default=None)  # (B,) phase where two persons' hands touch

    def u(self, lo: float, hi: float) -> np.ndarray:
        return self.rng.uniform(lo, hi, size=(self.t.shape[0], 1))

    def deg(self, lo: float, hi: float) -> np.ndarray:
        return np.radians(self.u(lo, hi))

    def osc(self, hz_lo: float, hz_hi: float) -> np.ndarray:
        """sin of a random frequency (scaled by speed) and phase, `(B, T)`."""
        f = self.u(hz_lo, hz_hi) * self.speed
        return np.sin(TAU * f * np.maximum(self.t, 0.0) + self.u(-0.3, 0.3))


def _arm_to(m: Motion, w: np.ndarray, main: bool = True, **targets: np.ndarray) -> None:
    for name, value in targets.items():
        m.blend_arm(name, value, w, main)


def wave(ctx: Context, m: list[Motion]) -> None:
    """Hand raised beside the head, swinging side to side about 2 Hz."""
    p, w = m[0], envelope(ctx.phase, ctx.u(0.15, 0.3), ctx.u(0.12, 0.25))
    swing = ctx.osc(1.6, 2.6) * ctx.amp
    _arm_to(
        p,
        w,
        elev=ctx.deg(80, 115) * ctx.amp**0.5 + 0.25 * swing * ctx.u(0.0, 0.6),
        azim=ctx.deg(30, 65) + ctx.deg(10, 20) * swing,
        twist=ctx.deg(-10, 15) - ctx.deg(15, 30) * swing,
        elbow=ctx.deg(60, 100),
        wrist=ctx.deg(-10, 20),
        fingers=0.0,
    )
    p.add("neck_turn", w * ctx.deg(-10, 10))


def beckon(ctx: Context, m: list[Motion]) -> None:
    """Forearm curls towards the body and back ("come here"), hand at chest or head height."""
    p, w = m[0], envelope(ctx.phase, ctx.u(0.15, 0.3), ctx.u(0.12, 0.25))
    curl = 0.5 + 0.5 * ctx.osc(1.0, 1.9)
    high = ctx.rng.random((len(ctx.amp), 1)) < 0.3  # overhead beckoning: close to a wave
    elev = np.where(high, ctx.deg(75, 100), ctx.deg(30, 60))
    _arm_to(
        p,
        w,
        elev=elev,
        azim=ctx.deg(0, 30),
        twist=ctx.deg(-20, 10),
        elbow=ctx.deg(30, 60) + ctx.deg(40, 70) * curl * ctx.amp,
        wrist=ctx.deg(0, 30) + ctx.deg(20, 40) * curl,
        fingers=0.2 + 0.9 * curl,
    )


def point(ctx: Context, m: list[Motion]) -> None:
    """Arm straight towards a spot, held, the head turning the same way."""
    p, w = m[0], envelope(ctx.phase, ctx.u(0.15, 0.3), ctx.u(0.15, 0.3))
    azim = ctx.deg(-15, 60)
    _arm_to(
        p,
        w,
        elev=ctx.deg(65, 100),
        azim=azim,
        twist=ctx.deg(-30, 0),
        elbow=ctx.deg(0, 15),
        wrist=ctx.deg(-5, 10),
        fingers=ctx.deg(0, 10),
    )
    side = np.where(p.right, -1.0, 1.0)[:, None]
    p.add("neck_turn", w * side * azim * ctx.u(0.3, 0.7))


def stop_palm(ctx: Context, m: list[Motion]) -> None:
    """Arm thrust forward with the palm up and out, quickly, then held (one hand, sometimes two)."""
    w = envelope(ctx.phase, ctx.u(0.18, 0.28), ctx.u(0.2, 0.3))
    both = ctx.rng.random(len(ctx.amp)) < 0.2
    elev, azim, elbow, wrist = ctx.deg(95, 120), ctx.deg(-5, 25), ctx.deg(5, 25), ctx.deg(60, 85)
    _arm_to(m[0], w, elev=elev, azim=azim, twist=ctx.deg(-10, 10), elbow=elbow, wrist=wrist, fingers=0.0)
    w2 = w * both[:, None]
    _arm_to(m[0], w2, main=False, elev=elev, azim=azim, twist=0.0, elbow=elbow, wrist=wrist, fingers=0.0)
    m[0].add("spine_bend", w * ctx.deg(-3, 6))


def _carry(ctx: Context, p: Motion, w: np.ndarray, main: bool = True) -> None:
    """Hold an object in front of the chest (weight w)."""
    _arm_to(
        p,
        w,
        main=main,
        elev=ctx.deg(20, 35),
        azim=ctx.deg(-20, 0),
        twist=ctx.deg(-40, -15),
        elbow=ctx.deg(95, 120),
        wrist=ctx.deg(0, 15),
        fingers=ctx.deg(50, 70),
    )


def _reach(ctx: Context, p: Motion, w: np.ndarray, elev: np.ndarray, main: bool = True) -> None:
    _arm_to(
        p,
        w,
        main=main,
        elev=elev * ctx.amp**0.3,
        azim=ctx.deg(-10, 15),
        twist=ctx.deg(-30, -5),
        elbow=ctx.deg(10, 35),
        wrist=ctx.deg(0, 15),
    )


def handover_reach(ctx: Context, m: list[Motion]) -> None:
    """Bring an object to the chest, reach out with it, let go, withdraw."""
    p, ph = m[0], ctx.phase
    _carry(ctx, p, ramp(ph, 0.0, ctx.u(0.12, 0.22)))
    _reach(ctx, p, ramp(ph, 0.25, ctx.u(0.45, 0.55)), ctx.deg(60, 85))
    p.blend_arm("fingers", np.radians(60.0), 1.0 - ramp(ph, 0.62, 0.72))
    _return_arms(p, ramp(ph, 0.75, 1.0), both=False)
    p.add("spine_bend", ctx.deg(5, 15) * envelope(ph, 0.5, 0.35))


def take_object(ctx: Context, m: list[Motion]) -> None:
    """Reach out empty-handed, grasp, bring the object to the chest, lower it."""
    p, ph = m[0], ctx.phase
    _reach(ctx, p, ramp(ph, 0.0, ctx.u(0.25, 0.35)), ctx.deg(45, 70))
    p.blend_arm("fingers", np.radians(65.0), ramp(ph, 0.38, 0.45))
    _carry(ctx, p, ramp(ph, 0.5, ctx.u(0.65, 0.75)))
    _return_arms(p, ramp(ph, 0.82, 1.0), both=False)
    p.add("spine_bend", ctx.deg(8, 20) * envelope(ph, 0.3, 0.6))


def _both_arms(p: Motion, w: np.ndarray, **targets: np.ndarray) -> None:
    for main in (True, False):
        _arm_to(p, w, main=main, **targets)


def push(ctx: Context, m: list[Motion]) -> None:
    """Both palms to the chest, then a quick shove forward with the trunk, hold, relax."""
    p, ph = m[0], ctx.phase
    chest = dict(
        elev=ctx.deg(25, 45),
        azim=ctx.deg(-25, -5),
        twist=ctx.deg(-30, -10),
        elbow=ctx.deg(100, 125),
        wrist=ctx.deg(50, 75),
        fingers=0.0,
    )
    _both_arms(p, ramp(ph, 0.0, ctx.u(0.2, 0.3)), **chest)
    out = ramp(ph, 0.32, ctx.u(0.4, 0.48))  # fast extension
    _both_arms(
        p,
        out,
        elev=ctx.deg(60, 82) * ctx.amp**0.3,
        azim=ctx.deg(-15, 0),
        elbow=ctx.deg(5, 25),
        wrist=ctx.deg(55, 80),
    )
    p.add("spine_bend", ctx.deg(8, 20) * out * (1 - ramp(ph, 0.7, 0.95)))
    _return_arms(p, ramp(ph, 0.7, 1.0))


def pull(ctx: Context, m: list[Motion]) -> None:
    """Reach forward, grip, pull both hands back to the chest leaning back, hold, relax."""
    p, ph = m[0], ctx.phase
    _both_arms(
        p,
        ramp(ph, 0.0, ctx.u(0.2, 0.3)),
        elev=ctx.deg(70, 90) * ctx.amp**0.3,
        azim=ctx.deg(-15, 0),
        twist=ctx.deg(-30, -10),
        elbow=ctx.deg(5, 25),
        wrist=ctx.deg(0, 15),
    )
    _both_arms(p, ramp(ph, 0.3, 0.38), fingers=ctx.deg(60, 80))
    back = ramp(ph, 0.4, ctx.u(0.52, 0.6))  # the pull
    _both_arms(
        p, back, elev=ctx.deg(20, 40), azim=ctx.deg(-25, -5), elbow=ctx.deg(100, 125), wrist=ctx.deg(-10, 10)
    )
    p.add("spine_bend", -ctx.deg(6, 15) * back * (1 - ramp(ph, 0.7, 0.95)))
    p.add("root_lean", -ctx.deg(0, 6) * back * (1 - ramp(ph, 0.7, 0.95)))
    _return_arms(p, ramp(ph, 0.7, 1.0))


def _return_arms(p: Motion, w: np.ndarray, both: bool = True) -> None:
    """Blend the main arm (and the other one) back to the clip's rest pose by weight `w`."""
    for main in (True, False) if both else (True,):
        for f in ("elev", "azim", "twist", "elbow", "wrist", "fingers"):
            idx = p.arm_index(f, main)
            p.blend_arm(f, p.rest[np.arange(len(idx)), idx][:, None], w, main)


def _bone(lengths: np.ndarray, name: str) -> np.ndarray:
    """`(B, 1)` length of the bone ending at joint `name`."""
    return lengths[:, NTU25.index(name)][:, None]


def clap(ctx: Context, m: list[Motion]) -> None:
    """Hands in front of the chest, meeting repeatedly (sharp contacts, slower opening).

    The closed arm swing is solved from the performer's shoulder width and arm reach, so the palms
    meet in the middle for every body, instead of missing or passing through each other.
    """
    p, w = m[0], envelope(ctx.phase, ctx.u(0.15, 0.25), ctx.u(0.15, 0.25))
    f = ctx.u(1.6, 2.6) * ctx.speed
    # 0 while the palms touch (a brief dwell, so a 30 Hz sensor sees every contact), 1 when wide open
    open_ = np.clip((np.abs(np.sin(np.pi * f * np.maximum(ctx.t, 0.0))) - 0.3) / 0.7, 0.0, 1.0) ** 0.8
    elev, elbow, wrist = ctx.deg(45, 75), ctx.deg(35, 55), ctx.deg(0, 20)
    body = ctx.lengths[:, 0]
    reach = (
        _bone(body, "elbow_left") * np.sin(elev)
        + _bone(body, "wrist_left") * np.sin(elev + elbow)
        + _bone(body, "hand_left") * np.sin(elev + elbow + wrist)
    )
    closed = -np.arcsin(np.clip((_bone(body, "shoulder_left") - 0.03) / reach, 0.0, 1.0))
    _both_arms(
        p,
        w,
        elev=elev,
        azim=closed + ctx.deg(25, 40) * open_ * ctx.amp**0.5,
        twist=0.0,
        elbow=elbow,
        wrist=wrist,
        fingers=0.0,
    )


def bow(ctx: Context, m: list[Motion]) -> None:
    """Bend forward at the hips, pause, straighten; the arms hang or stay at the sides."""
    p, w = m[0], envelope(ctx.phase, ctx.u(0.3, 0.4), ctx.u(0.3, 0.4))
    lean, bend = ctx.deg(25, 50) * ctx.amp, ctx.deg(5, 15)
    p.add("root_lean", w * lean)
    p.add("spine_bend", w * bend)
    p.add("neck_nod", w * ctx.deg(5, 25))
    hang = ctx.u(0.3, 0.95)  # how much the arms hang vertically rather than follow the trunk
    for main in (True, False):
        p.set_arm("elev", p.arm("elev", main) + w * hang * (lean + bend), main)
        p.blend_arm("azim", ctx.deg(-5, 20), w, main)


def _seated(ctx: Context, p: Motion, w: np.ndarray) -> None:
    for s in "lr":
        p.blend(f"{s}_hip_flex", ctx.seat, w)
        p.blend(f"{s}_knee", ctx.seat * 1.05, w)
    _both_arms(p, w, elev=np.radians(25.0), azim=np.radians(10.0), elbow=np.radians(45.0))


def sit_down(ctx: Context, m: list[Motion]) -> None:
    """Lower onto a seat behind: trunk leans forward while the hips go back and down; stays seated."""
    p, ph = m[0], ctx.phase
    down = ramp(ph, 0.05, ctx.u(0.6, 0.75))
    _seated(ctx, p, down)
    p.add("root_lean", ctx.deg(25, 40) * np.sin(np.pi * down) + ctx.deg(5, 12) * down)


def stand_up(ctx: Context, m: list[Motion]) -> None:
    """From seated: lean well forward first, then rise and straighten."""
    p, ph = m[0], ctx.phase
    up = ramp(ph, ctx.u(0.25, 0.35), ctx.u(0.75, 0.85))
    _seated(ctx, p, 1.0 - up)
    lean_first = ramp(ph, 0.05, 0.3) * (1.0 - ramp(ph, 0.55, 0.9))
    p.add("root_lean", ctx.deg(5, 12) * (1.0 - up) + ctx.deg(25, 40) * lean_first)


def walk_past(ctx: Context, m: list[Motion]) -> None:
    """Walk across the view (sideways to the camera, give or take 20 degrees), arms swinging."""
    p = m[0]
    b = len(ctx.amp)
    heading = np.where(ctx.rng.random((b, 1)) < 0.5, 1.0, -1.0) * np.pi / 2 + ctx.deg(-20, 20)
    speed = ctx.u(0.9, 1.4) * ctx.speed  # m/s
    cadence = speed / ctx.u(0.6, 0.75)  # steps per second (speed / step length)
    gait = TAU * cadence / 2.0 * ctx.t + ctx.u(0, TAU)  # one gait cycle is two steps
    go = ramp(ctx.phase, 0.0, 0.08)  # starts already moving, at most a brief acceleration
    swing = ctx.deg(20, 30) * ctx.amp**0.5 * go
    p.set("root_yaw", p.get("root_yaw") + heading)
    for s, sign in (("l", 1.0), ("r", -1.0)):
        g = gait + (0.0 if sign > 0 else np.pi)
        p.set(f"{s}_hip_flex", swing * np.sin(g))
        p.set(f"{s}_knee", go * (0.1 + ctx.deg(35, 55) * np.maximum(0.0, np.sin(g + 1.2)) ** 2))
        arm_s = "r" if s == "l" else "l"  # arms swing opposite to the legs
        p.set(f"{arm_s}_elev", 0.05 + go * ctx.deg(10, 25) * np.sin(g))
        p.set(f"{arm_s}_azim", np.zeros_like(g) + 0.2)
        p.set(f"{arm_s}_elbow", ctx.deg(10, 30) + go * ctx.deg(5, 15) * (1 + np.sin(g)))
    t_mid = np.take_along_axis(ctx.t, np.abs(ctx.phase - 0.5).argmin(axis=1)[:, None], axis=1)
    dist = speed * (np.clip(ctx.t, 0.0, None) - t_mid)  # passes the scene centre half-way
    p.root[..., 0] = dist * np.sin(heading)
    p.root[..., 2] = dist * np.cos(heading)
    p.add("neck_turn", ctx.deg(-20, 20))


def idle(ctx: Context, m: list[Motion]) -> None:
    """Standing: weight shifts, breathing, looking around, sometimes a hand drifts to the belly."""
    p = m[0]
    p.add("spine_side", ctx.deg(1, 4) * ctx.osc(0.15, 0.4))
    p.add("spine_bend", ctx.deg(0.5, 2) * ctx.osc(0.2, 0.35))
    p.add("root_yaw", ctx.deg(2, 8) * ctx.osc(0.05, 0.2))
    p.add("neck_turn", ctx.deg(5, 30) * ctx.osc(0.1, 0.35))
    p.add("neck_nod", ctx.deg(2, 8) * ctx.osc(0.1, 0.3))
    start = ctx.u(0.1, 0.3)
    window = ramp(ctx.phase, start, start + ctx.u(0.5, 0.65))
    long_enough = ctx.t.max(axis=1, keepdims=True) > 2.0  # no hurried fidgets in short pauses
    fidget = (ctx.rng.random((len(ctx.amp), 1)) < 0.35) * long_enough * envelope(window, 0.35, 0.35)
    _arm_to(
        p, fidget, elev=ctx.deg(10, 25), azim=ctx.deg(-20, 10), twist=ctx.deg(-50, -20), elbow=ctx.deg(60, 90)
    )


_ELEV_GRID = np.radians(np.linspace(10.0, 110.0, 201))


def _right_hand_height(lengths: np.ndarray, elbow: np.ndarray, wrist: np.ndarray) -> np.ndarray:
    """Height above the ground `(B, G)` of the right hand at every elevation of `_ELEV_GRID`, standing
    upright (planar arm model: enough to bring two people's hands to the same height)."""
    shoulder = (
        0.33 * _bone(lengths, "foot_right")
        + _bone(lengths, "ankle_right")
        + _bone(lengths, "knee_right")
        + 0.6 * _bone(lengths, "hip_right")
        + _bone(lengths, "spine_mid")
        + _bone(lengths, "spine_shoulder")
        - 0.12 * _bone(lengths, "shoulder_right")
    )
    e = _ELEV_GRID[None, :]
    return (
        shoulder
        - _bone(lengths, "elbow_right") * np.cos(e)
        - _bone(lengths, "wrist_right") * np.cos(e + elbow)
        - _bone(lengths, "hand_right") * np.cos(e + elbow + wrist)
    )


def handshake(ctx: Context, m: list[Motion]) -> None:
    """Both persons reach out their right hands, meet at a common height, shake two to four times."""
    ctx.meet = np.full(len(ctx.amp), 0.5)
    rows = np.arange(len(ctx.amp))
    shake = ctx.osc(2.0, 3.2) * envelope(ramp(ctx.phase, 0.3, 0.7), 0.2, 0.2)
    swing = ctx.deg(6, 12) * shake  # shared: the joined hands move together
    elbows, wrists = [ctx.deg(25, 45) for _ in m], [ctx.deg(-10, 10) for _ in m]
    heights = [_right_hand_height(ctx.lengths[:, k], elbows[k], wrists[k]) for k in range(len(m))]
    natural = np.abs(_ELEV_GRID[None, :] - ctx.deg(40, 55)).argmin(axis=1)
    meet_height = np.mean([h[rows, natural] for h in heights], axis=0)[:, None]
    for k, p in enumerate(m):
        p.right[:] = True
        elev = _ELEV_GRID[np.abs(heights[k] - meet_height).argmin(axis=1)][:, None]
        ph = np.clip(ctx.phase + (0.03 if k else 0.0) * ctx.u(-1, 1), 0.0, 1.0)
        w = envelope(ph, ctx.u(0.22, 0.3), ctx.u(0.2, 0.3))
        _arm_to(
            p,
            w,
            elev=elev + swing,
            azim=ctx.deg(-20, -5),
            twist=ctx.deg(-20, 0),
            elbow=elbows[k],
            wrist=wrists[k],
            fingers=ctx.deg(30, 50),
        )
        p.add("spine_bend", w * ctx.deg(2, 6))


def hand_object_to_person(ctx: Context, m: list[Motion]) -> None:
    """Person 1 holds an object out; person 2 reaches, takes it and brings it to the chest."""
    giver, taker, ph = m[0], m[1], ctx.phase
    ctx.meet = np.full(len(ctx.amp), 0.55)
    _carry(ctx, giver, ramp(ph, 0.0, 0.15))
    _reach(ctx, giver, ramp(ph, 0.2, 0.45), ctx.deg(50, 70))
    giver.blend_arm("fingers", np.radians(20.0), ramp(ph, 0.62, 0.68))
    _return_arms(giver, ramp(ph, 0.7, 0.95), both=False)
    _reach(ctx, taker, ramp(ph, 0.3, 0.52), ctx.deg(45, 65))
    taker.blend_arm("fingers", np.radians(65.0), ramp(ph, 0.58, 0.64))
    _carry(ctx, taker, ramp(ph, 0.7, 0.9))


@dataclass(frozen=True)
class ActionSpec:
    """An action class: its program, how many persons take part and its natural duration."""

    name: str
    program: Callable[[Context, list[Motion]], None]
    duration_s: tuple[float, float]
    persons: int = 1
    planted: bool = True  # feet stay where they are (everything but walking)


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("wave", wave, (2.0, 3.5)),
    ActionSpec("point", point, (1.8, 3.0)),
    ActionSpec("beckon", beckon, (2.0, 3.2)),
    ActionSpec("stop_palm", stop_palm, (2.0, 3.2)),
    ActionSpec("handover_reach", handover_reach, (2.4, 3.6)),
    ActionSpec("take_object", take_object, (2.4, 3.6)),
    ActionSpec("push", push, (1.8, 2.8)),
    ActionSpec("pull", pull, (1.8, 2.8)),
    ActionSpec("clap", clap, (1.6, 3.0)),
    ActionSpec("bow", bow, (2.0, 3.2)),
    ActionSpec("sit_down", sit_down, (2.2, 3.4)),
    ActionSpec("stand_up", stand_up, (2.0, 3.2)),
    ActionSpec("walk_past", walk_past, (2.4, 4.0), planted=False),
    ActionSpec("idle", idle, (2.0, 4.0)),
    ActionSpec("handshake", handshake, (2.4, 3.6), persons=2),
    ActionSpec("hand_object_to_person", hand_object_to_person, (2.6, 3.8), persons=2),
)
ACTION_NAMES: tuple[str, ...] = tuple(a.name for a in ACTIONS)
_BY_NAME = {a.name: a for a in ACTIONS}


def get_action(name: str) -> ActionSpec:
    """The spec of an action by class name; the error lists the known names."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown synthetic action {name!r}; known: {', '.join(ACTION_NAMES)}") from None
