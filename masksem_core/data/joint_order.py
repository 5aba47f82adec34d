"""Joint orders: which column of a user's array holds which joint of a known layout.

A recording from a tracker whose layout is known but whose files list the joints in another order (or
leave some out) is described by a joint-order file: one joint name a line, in the file's column order,
names from one known layout (`masksem layouts` lists them); `_` marks a column to drop, `#` starts a
comment. Joints of the layout that the file does not list become unseen joints (zeros). A few orders
that real data sets use are shipped by name (`KNOWN_ORDERS`), so `--joint-order nite2_15` works too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from masksem_core.layouts import KINECT_V1_20, LAYOUTS, OPENNI_15, SkeletonLayout, get_layout

SKIP = "_"

# name -> (layout, joint names in file order). Each is checked against the source it names.
KNOWN_ORDERS: dict[str, tuple[str, tuple[str, ...]]] = {
    # NiTE 2 (NiteEnums.h, NiteJointType): the NiTE 1 joints, left and right interleaved, torso ninth.
    "nite2_15": (
        OPENNI_15.name,
        (
            "head",
            "neck",
            "left_shoulder",
            "right_shoulder",
            "left_elbow",
            "right_elbow",
            "left_hand",
            "right_hand",
            "torso",
            "left_hip",
            "right_hip",
            "left_knee",
            "right_knee",
            "left_foot",
            "right_foot",
        ),
    ),  # fmt: skip
    # Kinect v1 joints with the trunk listed head first (head, shoulder centre, spine, hip centre), as some
    # public Kinect v1 data sets store them (issue 20: the order that reverses the trunk).
    "kinect_v1_20_trunk_reversed": (
        KINECT_V1_20.name,
        ("head", "shoulder_center", "spine", "hip_center", *KINECT_V1_20.joint_names[4:]),
    ),
}


class JointOrderFileError(ValueError):
    """A joint-order file cannot be used; the message names the file, line and name."""


@dataclass(frozen=True)
class JointOrder:
    """`columns[i]` = the layout joint index that file column i holds (-1: dropped column)."""

    name: str
    layout: SkeletonLayout
    columns: tuple[int, ...]

    @property
    def num_columns(self) -> int:
        return len(self.columns)

    @property
    def missing(self) -> list[str]:
        """Layout joints the order does not provide (they stay unseen)."""
        have = set(self.columns)
        return [n for i, n in enumerate(self.layout.joint_names) if i not in have]

    def is_identity(self) -> bool:
        return self.columns == tuple(range(self.layout.num_joints))

    def to_layout(self, data: np.ndarray) -> np.ndarray:
        """`(..., num_columns, 3)` in file order -> `(..., V, 3)` in layout order, missing joints zero."""
        data = np.asarray(data)
        if data.shape[-2] != self.num_columns:
            raise ValueError(
                f"joint order {self.name}: {self.num_columns} joints a frame expected, got {data.shape[-2]}"
            )
        out = np.zeros((*data.shape[:-2], self.layout.num_joints, data.shape[-1]), dtype=data.dtype)
        cols = np.asarray(self.columns)
        keep = cols >= 0
        out[..., cols[keep], :] = data[..., np.flatnonzero(keep), :]
        return out


def layout_order(layout: SkeletonLayout) -> JointOrder:
    """A layout's own order (identity)."""
    return JointOrder(layout.name, layout, tuple(range(layout.num_joints)))


def order_from_names(name: str, names: list[str], layout: str | None = None, where: str = "") -> JointOrder:
    """Build an order from joint names; the layout is the one known layout that has every name (or
    `layout` when given). Errors name `where` (file and line) and the offending joint."""
    where = where or name
    real = [n for n in names if n != SKIP]
    seen: set[str] = set()
    for i, n in enumerate(names):
        if n != SKIP and n in seen:
            raise JointOrderFileError(f"{where}: joint {n!r} listed twice (line {i + 1})")
        seen.add(n)
    if layout is not None:
        candidates = [get_layout(layout)]
    else:
        candidates = [lay for lay in LAYOUTS.values() if all(n in lay.joint_names for n in real)]
    if not candidates:
        best = max(LAYOUTS.values(), key=lambda lay: sum(n in lay.joint_names for n in real))
        unknown = [(i + 1, n) for i, n in enumerate(names) if n != SKIP and n not in best.joint_names]
        raise JointOrderFileError(
            f"{where}: no known layout has all these joints; closest is {best.name}, which has no "
            + ", ".join(f"{n!r} (line {i})" for i, n in unknown[:5])
            + f"; its joints: {', '.join(best.joint_names)}"
        )
    if len(candidates) > 1:
        raise JointOrderFileError(
            f"{where}: these joint names fit several layouts ({', '.join(c.name for c in candidates)}); "
            "choose one with --layout"
        )
    lay = candidates[0]
    unknown = [(i + 1, n) for i, n in enumerate(names) if n != SKIP and n not in lay.joint_names]
    if unknown:
        line, n = unknown[0]
        raise JointOrderFileError(f"{where}: line {line}: layout {lay.name} has no joint {n!r}")
    return JointOrder(name, lay, tuple(-1 if n == SKIP else lay.index(n) for n in names))


def read_joint_order(spec: str | Path, layout: str | None = None) -> JointOrder:
    """`--joint-order`: a shipped order name (`KNOWN_ORDERS`), a layout name, or a file of joint names."""
    text = str(spec)
    if text in KNOWN_ORDERS:
        lay, names = KNOWN_ORDERS[text]
        if layout is not None and layout != lay:
            raise JointOrderFileError(f"joint order {text} is an order of {lay}, not of --layout {layout}")
        return order_from_names(text, list(names), lay)
    if text in LAYOUTS and not Path(text).exists():
        return layout_order(get_layout(text))
    path = Path(spec)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise JointOrderFileError(
            f"--joint-order {spec}: not a shipped order ({', '.join(KNOWN_ORDERS)}), a layout, or a "
            f"readable UTF-8 file: {exc}"
        ) from None
    names = [ln.split("#", 1)[0].strip() for ln in lines]
    names = [n for n in names if n]
    if not names:
        raise JointOrderFileError(f"{path}: no joint names (one a line, `_` for a column to drop)")
    return order_from_names(path.stem, names, layout, where=str(path))


def orders_with_columns(num_columns: int) -> list[JointOrder]:
    """Every known order (layouts and shipped orders) that reads `num_columns` joints a frame."""
    out = [layout_order(lay) for lay in LAYOUTS.values() if lay.num_joints == num_columns]
    for name, (lay, names) in KNOWN_ORDERS.items():
        if len(names) == num_columns:
            out.append(order_from_names(name, list(names), lay))
    return out
