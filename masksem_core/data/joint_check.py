"""Joint-order check: do these skeletons look like a human body in the layout they claim?

A data set stored in another joint order than its layout says trains fine and means nothing, so every
prepared set (and, as a diagnostic, the runtime's input) is checked on four things, per clip:
- bone lengths within human ranges for the layout: the trunk, head, shoulder and hip half-widths, upper
  arms, forearms, thighs and shins between the layout's landmark joints (metres), and no bone of the
  layout longer than `MAX_BONE_M`;
- left/right symmetry: every bone against its mirror bone (names with left/right swapped);
- the head above the pelvis along the layout's up axis (median over the clip's frames);
- consistency across clips: each clip's landmark bone lengths, relative to its trunk, against the set's.
Medians over frames make it robust to tracker noise; joints that are zero (unseen) are left out.
A set where more than `MAX_BAD_FRACTION` of the clips fail is refused; the message says "joint order",
names the bones that look wrong, and suggests any known order (`joint_order.orders_with_columns`) under
which the same clips pass.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from masksem_core.layouts import SkeletonLayout

MAX_BONE_M = 0.75  # no bone of any layout is longer (thigh ~0.45 m)
MAX_BAD_FRACTION = 0.1
SYMMETRY_RATIO = 1.8  # landmark limbs: longer / shorter side; bones of the whole layout get 2x that
HALF_WIDTH_SYMMETRY = 2.5  # shoulder and hip half-widths (a side view collapses one of them)
MIN_SYMMETRY_M = 0.05  # bones shorter than this on both sides (fingers, face) are too noisy to compare
CONSISTENCY_RATIO = 2.0  # a clip's bone vs the set's median bone, scaled to the clip's body size
CONSISTENCY_MIN_M = 0.12  # only bones whose set median is this long (half-widths are too noisy)
MAX_FRAMES = 64  # frames a clip sampled for the check (evenly)
MAX_CLIPS = 2000  # clips a set sampled for the check (evenly; NTU-120 has 114k)

# Landmark roles -> joints averaged, per layout.
_LANDMARKS: dict[str, dict[str, tuple[str, ...]]] = {
    "ntu25": {"pelvis": ("spine_base",), "neck": ("spine_shoulder",), "head": ("head",)},
    "kinect_v1_20": {"pelvis": ("hip_center",), "neck": ("shoulder_center",), "head": ("head",)},
    "mediapipe33": {
        "pelvis": ("left_hip", "right_hip"),
        "neck": ("left_shoulder", "right_shoulder"),
        "head": ("left_ear", "right_ear"),
    },
    "azure_kinect_32": {"pelvis": ("pelvis",), "neck": ("neck",), "head": ("head",)},
    "zed_body_34": {"pelvis": ("pelvis",), "neck": ("neck",), "head": ("head",)},
    "zed_body_38": {"pelvis": ("pelvis",), "neck": ("neck",), "head": ("left_ear", "right_ear")},
    "h36m_17": {"pelvis": ("hip",), "neck": ("thorax",), "head": ("head",)},
    "openni_15": {"pelvis": ("left_hip", "right_hip"), "neck": ("neck",), "head": ("head",)},
}
# Limb joints: role -> joint name per layout, written as a pattern over the side.
_LIMB_PATTERNS: dict[str, dict[str, str]] = {
    "ntu25": {r: f"{r}_{{s}}" for r in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")},
    "kinect_v1_20": {r: f"{r}_{{s}}" for r in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")},
    "mediapipe33": {r: f"{{s}}_{r}" for r in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")},
    "azure_kinect_32": {r: f"{r}_{{s}}" for r in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")},
    "zed_body_34": {r: f"{{s}}_{r}" for r in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")},
    "zed_body_38": {r: f"{{s}}_{r}" for r in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")},
    "h36m_17": {
        "shoulder": "{s}_shoulder",
        "elbow": "{s}_elbow",
        "wrist": "{s}_wrist",
        "hip": "{s}_hip",
        "knee": "{s}_knee",
        "ankle": "{s}_foot",
    },  # fmt: skip
    "openni_15": {
        "shoulder": "{s}_shoulder",
        "elbow": "{s}_elbow",
        "wrist": "{s}_hand",
        "hip": "{s}_hip",
        "knee": "{s}_knee",
        "ankle": "{s}_foot",
    },  # fmt: skip
}
_SIDES = {"h36m_17": ("l", "r")}

# (role a, role b, shortest, longest) in metres: generous human ranges (children to tall adults, and the
# sensors' different joint placements), so only a wrong joint order or wrong units fall outside.
SEGMENTS: tuple[tuple[str, str, float, float], ...] = (
    ("pelvis", "neck", 0.20, 0.85),
    ("neck", "head", 0.04, 0.45),
    ("neck", "shoulder_{s}", 0.02, 0.35),
    ("shoulder_{s}", "elbow_{s}", 0.10, 0.50),
    ("elbow_{s}", "wrist_{s}", 0.08, 0.45),
    ("pelvis", "hip_{s}", 0.005, 0.30),
    ("hip_{s}", "knee_{s}", 0.15, 0.70),
    ("knee_{s}", "ankle_{s}", 0.10, 0.65),
)


class JointOrderError(ValueError):
    """A data set's joints do not look like its layout; the message contains "joint order"."""


@dataclass(frozen=True)
class _Segment:
    label: str  # joint names, e.g. "shoulder_center-shoulder_left"
    a: tuple[int, ...]
    b: tuple[int, ...]
    lo: float
    hi: float
    mirror: int  # index of the other side's segment, -1 for trunk segments
    half_width: bool = False  # neck-shoulder or pelvis-hip


def _mirror_name(name: str) -> str:
    swap = {"left": "right", "right": "left", "l": "r", "r": "l"}
    return "_".join(swap.get(t, t) for t in name.split("_"))


@dataclass(frozen=True)
class _Plan:
    layout: SkeletonLayout
    segments: tuple[_Segment, ...]
    pelvis: tuple[int, ...]
    head: tuple[int, ...]
    bone_pairs: tuple[tuple[int, int], ...]  # (bone index, mirror bone index), each pair once


def _plan(layout: SkeletonLayout) -> _Plan:
    marks = _LANDMARKS.get(layout.name)
    limbs = _LIMB_PATTERNS.get(layout.name)
    if marks is None or limbs is None:
        raise KeyError(f"no joint-order check rules for layout {layout.name}")
    sides = _SIDES.get(layout.name, ("left", "right"))

    def joints(role: str, side: str) -> tuple[int, ...]:
        if role in marks:
            return tuple(layout.index(n) for n in marks[role])
        stem = role.replace("_{s}", "")
        return (layout.index(limbs[stem].format(s=side)),)

    def label(idx: tuple[int, ...]) -> str:
        names = [layout.joint_names[i] for i in idx]
        return names[0] if len(names) == 1 else f"mid({','.join(names)})"

    segs: list[_Segment] = []
    for a, b, lo, hi in SEGMENTS:
        sided = "{s}" in a + b
        first = len(segs)
        for k, side in enumerate(sides if sided else sides[:1]):
            ja, jb = joints(a, side), joints(b, side)
            mirror = first + 1 - k if sided else -1
            half = a in ("neck", "pelvis") and sided
            segs.append(_Segment(f"{label(ja)}-{label(jb)}", ja, jb, lo, hi, mirror, half))
    names = layout.joint_names
    index = {(names[c], names[p]): i for i, (c, p) in enumerate(layout.bones)}
    pairs = []
    for (c, p), i in index.items():
        j = index.get((_mirror_name(c), _mirror_name(p)))
        if j is not None and i < j:
            pairs.append((i, j))
    return _Plan(layout, tuple(segs), joints("pelvis", sides[0]), joints("head", sides[0]), tuple(pairs))


@dataclass
class ClipCheck:
    """One clip's medians and what looks wrong in it."""

    name: str
    segment_m: np.ndarray  # (S,) median landmark bone lengths, NaN where never seen
    bone_m: np.ndarray  # (B,) median lengths of the layout's bones
    head_up_m: float  # median of (head - pelvis) along the up axis; NaN if never seen
    head_up_axes: np.ndarray  # (3,) median of (head - pelvis) on each axis
    problems: list[str] = field(default_factory=list)


def _landmark_pos(frames: np.ndarray, seen: np.ndarray, idx: tuple[int, ...]) -> np.ndarray:
    """Per frame, the mean of the landmark's joints `(F, 3)`; NaN where one of them is unseen."""
    ok = seen[:, list(idx)].all(axis=1)
    pos = frames[:, list(idx)].mean(axis=1)
    pos[~ok] = np.nan
    return pos


def _person_frames(data: np.ndarray) -> np.ndarray:
    """`(T, V, 3)` or `(T, M, V, 3)` -> the present person-frames `(F, V, 3)`, at most MAX_FRAMES."""
    data = np.asarray(data, dtype=np.float64)
    if data.ndim == 3:
        data = data[:, None]
    frames = data.reshape(-1, *data.shape[2:])
    frames = frames[np.any(frames != 0, axis=(1, 2))]
    if len(frames) > MAX_FRAMES:
        frames = frames[np.linspace(0, len(frames) - 1, MAX_FRAMES).round().astype(int)]
    return frames


def _nanmedian(x: np.ndarray, axis: int = 0) -> np.ndarray:
    """np.nanmedian without the all-NaN warning (an all-NaN slice is NaN: never seen)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(x, axis=axis)


def _measure(plan: _Plan, name: str, data: np.ndarray) -> ClipCheck:
    lay = plan.layout
    frames = _person_frames(data)
    seen = np.any(frames != 0, axis=2)  # (F, V)
    seg = np.empty((len(frames), len(plan.segments)))
    for s, sg in enumerate(plan.segments):
        seg[:, s] = np.linalg.norm(
            _landmark_pos(frames, seen, sg.a) - _landmark_pos(frames, seen, sg.b), axis=1
        )
    bones = np.asarray(lay.bones, dtype=np.int64).reshape(-1, 2)
    blen = np.linalg.norm(frames[:, bones[:, 0]] - frames[:, bones[:, 1]], axis=2)
    blen[~(seen[:, bones[:, 0]] & seen[:, bones[:, 1]])] = np.nan
    rel = _landmark_pos(frames, seen, plan.head) - _landmark_pos(frames, seen, plan.pelvis)  # (F, 3)
    axis, sign = lay.up
    up = _nanmedian(rel[:, axis] * sign) if len(frames) else np.nan
    axes = _nanmedian(rel) if len(frames) else np.full(3, np.nan)
    return ClipCheck(name, _nanmedian(seg), _nanmedian(blen), float(up), np.atleast_1d(axes))


def _axis_name(axis: int, sign: int) -> str:
    return ("+" if sign > 0 else "-") + "xyz"[axis]


def _judge(plan: _Plan, c: ClipCheck) -> None:
    lay = plan.layout
    for s, sg in enumerate(plan.segments):
        m = c.segment_m[s]
        if np.isfinite(m) and not sg.lo <= m <= sg.hi:
            c.problems.append(f"bone {sg.label} is {m:.2f} m (human: {sg.lo:.2f}-{sg.hi:.2f})")
        if sg.mirror > s:
            o = c.segment_m[sg.mirror]
            if np.isfinite(m) and np.isfinite(o) and max(m, o) >= MIN_SYMMETRY_M:
                limit = HALF_WIDTH_SYMMETRY if sg.half_width else SYMMETRY_RATIO
                if max(m, o) > limit * max(min(m, o), 1e-6):
                    other = plan.segments[sg.mirror].label
                    c.problems.append(f"left/right bones differ: {sg.label} {m:.2f} m vs {other} {o:.2f} m")
    names = lay.joint_names
    for b, (ch, pa) in enumerate(lay.bones):
        if np.isfinite(c.bone_m[b]) and c.bone_m[b] > MAX_BONE_M:
            c.problems.append(f"bone {names[ch]}-{names[pa]} is {c.bone_m[b]:.2f} m (over {MAX_BONE_M} m)")
    for i, j in plan.bone_pairs:
        m, o = c.bone_m[i], c.bone_m[j]
        if np.isfinite(m) and np.isfinite(o) and max(m, o) >= MIN_SYMMETRY_M:
            if max(m, o) > 2 * SYMMETRY_RATIO * max(min(m, o), 1e-6):
                (ci, pi), (cj, pj) = lay.bones[i], lay.bones[j]
                bi, bj = f"{names[ci]}-{names[pi]}", f"{names[cj]}-{names[pj]}"
                problem = f"left/right bones differ: {bi} {m:.2f} m vs {bj} {o:.2f} m"
                if problem not in c.problems:
                    c.problems.append(problem)
    if np.isfinite(c.head_up_m) and c.head_up_m <= 0:
        head = "/".join(names[i] for i in plan.head)
        pelvis = "/".join(names[i] for i in plan.pelvis)
        text = f"head ({head}) not above pelvis ({pelvis}) along {_axis_name(*lay.up)}"
        if np.all(np.isfinite(c.head_up_axes)):
            best = int(np.argmax(np.abs(c.head_up_axes)))
            best_axis = _axis_name(best, 1 if c.head_up_axes[best] > 0 else -1)
            if best_axis != _axis_name(*lay.up):
                text += f" (head-pelvis points along {best_axis})"
        c.problems.append(text)


@dataclass
class JointCheckResult:
    """What the check found on a set of clips."""

    layout: str
    clips: int
    bad: list[ClipCheck]
    bone_counts: Counter  # problem text without the numbers -> clips
    suggestions: list[str] = field(default_factory=list)
    units_hint: str = ""

    @property
    def bad_fraction(self) -> float:
        return len(self.bad) / max(self.clips, 1)

    @property
    def ok(self) -> bool:
        return self.clips == 0 or self.bad_fraction <= MAX_BAD_FRACTION

    def message(self, max_items: int = 6) -> str:
        """The refusal (or warning) text: contains "joint order", names bones and suggestions."""
        head = (
            f"joint order looks wrong for layout {self.layout}: {len(self.bad)} of {self.clips} clips "
            f"do not look like a human body in this order"
        )
        common = "; ".join(f"{text} ({n} clips)" for text, n in self.bone_counts.most_common(max_items))
        lines = [head + (f": {common}" if common else "")]
        if self.units_hint:
            lines.append(self.units_hint)
        if self.suggestions:
            lines.append("another known joint order fits these clips: " + ", ".join(self.suggestions))
        else:
            lines.append("no other known joint order fits; give the file's order with --joint-order FILE")
        examples = ", ".join(c.name for c in self.bad[:3])
        lines.append(f"e.g. clips {examples}; --no-joint-check prepares them anyway")
        return "\n".join(lines)


def check_clips(
    clips: Iterable[tuple[str, np.ndarray]], layout: SkeletonLayout, suggest: bool = True
) -> JointCheckResult:
    """Check `(name, (T, V, 3) or (T, M, V, 3))` clips against `layout` (see the module docstring)."""
    clips = list(clips)
    if len(clips) > MAX_CLIPS:
        clips = [clips[i] for i in np.linspace(0, len(clips) - 1, MAX_CLIPS).round().astype(int)]
    result = _check(clips, layout)
    if not result.ok and suggest:
        result.suggestions = _suggest(clips, layout)
    return result


def _check(clips: list[tuple[str, np.ndarray]], layout: SkeletonLayout) -> JointCheckResult:
    plan = _plan(layout)
    checks = [_measure(plan, name, data) for name, data in clips]
    checks = [c for c in checks if np.isfinite(c.segment_m).any()]  # nothing seen: nothing to judge
    for c in checks:
        _judge(plan, c)
    _consistency(plan, checks)
    bad = [c for c in checks if c.problems]
    counts: Counter = Counter()
    for c in bad:
        for p in dict.fromkeys(_short(p) for p in c.problems):
            counts[p] += 1
    result = JointCheckResult(layout.name, len(checks), bad, counts)
    trunk = [c.segment_m[0] for c in checks if np.isfinite(c.segment_m[0])]
    if trunk and np.median(trunk) > 50:
        result.units_hint = (
            f"the trunk is {np.median(trunk):.0f} units long: the coordinates look like millimetres; "
            "convert them to metres"
        )
    return result


def _short(problem: str) -> str:
    """`bone a-b is 0.61 m (human: ...)` -> `bone a-b out of human range`; numbers dropped for counting."""
    if problem.startswith("bone ") and " is " in problem:
        return problem.split(" is ")[0] + " out of human range"
    if problem.startswith("left/right bones differ: "):
        parts = problem.removeprefix("left/right bones differ: ").split(" ")
        return f"left/right bones differ: {parts[0]} vs {parts[4]}"
    if problem.startswith("unlike the other clips: "):
        return problem.split(" is ")[0]
    return problem


def _consistency(plan: _Plan, checks: list[ClipCheck]) -> None:
    """A landmark bone far from the set's median length, after scaling each clip to the set (its median
    ratio to the set over all long bones), marks a clip as unlike the others."""
    if len(checks) < 3:
        return
    seg = np.stack([c.segment_m for c in checks])  # (N, S)
    ref = _nanmedian(seg, axis=0)
    long = np.isfinite(ref) & (ref >= CONSISTENCY_MIN_M)
    if long.sum() < 3:
        return
    with np.errstate(all="ignore"):
        scale = _nanmedian((seg[:, long] / ref[long]).T, axis=0)  # (N,)
        dev = seg / (ref * scale[:, None])
    for c, d, k in zip(checks, dev, scale, strict=True):
        for s in np.flatnonzero(long):
            if np.isfinite(d[s]) and d[s] > 0 and max(d[s], 1 / d[s]) > CONSISTENCY_RATIO:
                c.problems.append(
                    f"unlike the other clips: {plan.segments[s].label} is {c.segment_m[s]:.2f} m"
                    f" where the set's bodies, scaled to this one, give {ref[s] * k:.2f} m"
                )


def _suggest(clips: list[tuple[str, np.ndarray]], layout: SkeletonLayout) -> list[str]:
    """Known orders with the clips' joint count under which the clips pass."""
    from masksem_core.data.joint_order import orders_with_columns

    out = []
    for order in orders_with_columns(layout.num_joints):
        if order.layout.name == layout.name and order.is_identity():
            continue
        moved = [(n, order.to_layout(np.asarray(d))) for n, d in clips]
        if _check(moved, order.layout).ok:
            flag = f"--layout {order.name}" if order.is_identity() else f"--joint-order {order.name}"
            out.append(f"{flag} ({order.layout.name})")
    return out


def check_store(
    x: np.ndarray, lengths: list[int], names: list[str], num_persons: int, layout: str, report: Any
) -> JointCheckResult:
    """The check on prepared rows `x (N, T_pad, M*V*3)`: refuse (JointOrderError) or warn per bad clip."""
    from masksem_core.layouts import get_layout

    lay = get_layout(layout)
    n = len(names)
    rows = range(n) if n <= MAX_CLIPS else np.linspace(0, n - 1, MAX_CLIPS).round().astype(int)
    shape = (-1, num_persons, lay.num_joints, 3)  # each clip kept as its sampled person-frames only
    clips = [
        (names[i], _person_frames(np.asarray(x[i, : max(lengths[i], 1)]).reshape(shape)).astype(np.float32))
        for i in rows
    ]
    result = check_clips(clips, lay)
    if not result.ok:
        raise JointOrderError(result.message())
    for c in result.bad:
        report.warnings.append(f"{c.name}: joint check: {'; '.join(c.problems[:3])}")
    return result


def joint_order_diagnostic(joints: np.ndarray, layout: SkeletonLayout) -> list[str]:
    """Runtime diagnostic: what looks wrong with a track's recent frames `(T, V, 3)` (empty: fine).

    Meant for a recogniser's diagnostics (a few seconds of one person), not for every frame.
    """
    plan = _plan(layout)
    c = _measure(plan, "input", joints)
    if not np.isfinite(c.segment_m).any():
        return []
    _judge(plan, c)
    return c.problems


__all__ = [
    "JointCheckResult",
    "JointOrderError",
    "MAX_BAD_FRACTION",
    "check_clips",
    "check_store",
    "joint_order_diagnostic",
]
