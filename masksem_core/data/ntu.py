"""NTU RGB+D `.skeleton` files: parse with numpy over the whole file, denoise bodies, pick two actors.

The denoising follows the standard three-script pipeline (get_raw_skes_data / get_raw_denoised_data /
seq_transformation) rule for rule, so our arrays match the community's, with two deliberate fixes
(docs/data.md, pinned by tests):

1. Frame placement: the standard parse records a body's frames as "first frame, then +1 per
   appearance", so a body that vanishes and comes back is shifted earlier in time. We keep the real
   frame index of every appearance.
2. When every body is shorter than the length threshold, the standard script crashes (IndexError);
   we keep the bodies instead of dropping them all.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from masksem_core.data.errors import DataFormatError
from masksem_core.data.ntu_scan import scan_skeleton

NUM_JOINTS = 25
FLOAT32_MAX = float(np.finfo(np.float32).max)
FIELDS_PER_JOINT = 12
NOISE_LEN_THRES = 11  # bodies seen in <= 11 frames are noise
NOISE_SPR_THRES1 = 0.8  # a frame is noisy when x spread > 0.8 * y spread
NOISE_SPR_THRES2 = 0.69754  # a body is noise when that many of its frames are noisy


@dataclass
class RawBody:
    """One tracked Kinect body: its joints in the frames where it appears."""

    body_id: str
    joints: np.ndarray  # (n, 25, 3) float32, metres, camera space
    frames: np.ndarray  # (n,) int64, index among the frames that have bodies
    motion: float = 0.0


@dataclass
class RawSkeleton:
    """A parsed `.skeleton` file: bodies in order of first appearance."""

    name: str
    num_frames_in_file: int
    bodies_per_frame: np.ndarray  # (num_frames_in_file,)
    bodies: list[RawBody] = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        """Frames that hold at least one body (the standard pipeline drops the empty ones)."""
        return int(np.count_nonzero(self.bodies_per_frame))


def _int_line(data: bytes, starts: list[int] | np.ndarray, i: int, path: str, what: str) -> int:
    if i + 1 >= len(starts):
        raise DataFormatError(path, f"file ends early: expected {what}", line=i + 1, field=what)
    text = data[starts[i] : starts[i + 1]].strip()
    try:
        return int(text)
    except ValueError:
        msg = f"expected an integer, got {text[:40]!r}"
        raise DataFormatError(path, msg, line=i + 1, field=what) from None


def _locate_bad_joint_line(data: bytes, starts: np.ndarray, first_lines: list[int], path: str) -> None:
    """Slow path, only on error: find the first joint line without 12 finite numbers."""
    for first in first_lines:
        for i in range(first, first + NUM_JOINTS):
            toks = data[starts[i] : starts[i + 1]].split()
            if len(toks) != FIELDS_PER_JOINT:
                raise DataFormatError(
                    path, f"expected {FIELDS_PER_JOINT} fields, got {len(toks)}", line=i + 1, field="joint"
                )
            try:
                vals = [float(t) for t in toks]
            except ValueError:
                msg = f"non-numeric field in {toks!r}"
                raise DataFormatError(path, msg, line=i + 1, field="joint") from None
            if not np.all(np.isfinite(vals)):
                raise DataFormatError(path, "non-finite value", line=i + 1, field="joint")
            if not np.all(np.abs(vals[:3]) <= FLOAT32_MAX):
                raise DataFormatError(path, "x/y/z beyond the float32 range", line=i + 1, field="joint")
    raise DataFormatError(path, "joint lines do not hold 12 numbers each", field="joint")


def _leading_xyz(data: bytes, starts: np.ndarray, first_lines: np.ndarray) -> np.ndarray | None:
    """x y z (the first 3 of 12 fields) of every joint line, or None when a line is malformed.

    Only the bytes up to each line's third space are gathered and converted in one `np.fromstring`
    call, a quarter of the numbers of the whole line; the per-line field count is checked with the
    positions of the spaces and newlines, all vectorised.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    lines = (first_lines[:, None] + np.arange(NUM_JOINTS)).ravel()
    line_start, line_end = starts[lines], starts[lines + 1]
    spaces = np.flatnonzero(buf == 32)
    first_space = np.searchsorted(spaces, line_start)
    if first_space.max() + FIELDS_PER_JOINT - 2 >= len(spaces):
        return None
    # a joint line has exactly 11 single spaces before its line end
    if np.any(spaces[first_space + FIELDS_PER_JOINT - 2] >= line_end):
        return None
    nxt = first_space + FIELDS_PER_JOINT - 1
    if np.any((nxt < len(spaces)) & (spaces[np.minimum(nxt, len(spaces) - 1)] < line_end)):
        return None
    # keep bytes from each line start up to and including its third space (the separator)
    marks = np.zeros(len(buf) + 1, dtype=np.int8)
    marks[line_start] = 1
    marks[spaces[first_space + 2] + 1] = -1
    keep = np.cumsum(marks[:-1], dtype=np.int8).view(bool)
    with warnings.catch_warnings():  # a bad token stops the parse with a warning; the count check reports it
        warnings.simplefilter("ignore", DeprecationWarning)
        values = np.fromstring(buf[keep].tobytes(), dtype=np.float64, sep=" ")
    if values.size != 3 * len(lines) or not (np.abs(values) <= FLOAT32_MAX).all():  # also NaN, inf
        return None
    return values


def parse_skeleton_bytes(data: bytes, path: str = "<bytes>", fast: bool = True) -> RawSkeleton:
    """Parse the text of a `.skeleton` file (CRLF or LF).

    With numba installed (the 'fast' extra) a compiled scanner reads regular files in one pass
    (`ntu_scan`, bit-identical numbers); anything it is not sure of comes here. Header lines are
    walked in Python (a few per frame); the x, y, z of all joint lines, which are most of the file,
    are gathered and converted in one `np.fromstring` call. Every count in the file
    is checked against the number of lines before anything is allocated, so a corrupt frame count of
    10^9 is an error, not an out-of-memory.
    """
    name = Path(path).name.split(".")[0]
    scanned = scan_skeleton(data) if fast else None
    if scanned is not None:
        num_frames, bodies_per_frame, ids, block_frames, xyz = scanned
        return _with_bodies(RawSkeleton(name, num_frames, bodies_per_frame), ids, xyz, block_frames)
    nl = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    starts = np.concatenate(([0], nl + 1))
    if starts[-1] < len(data):  # last line without a newline
        starts = np.append(starts, len(data))
    num_lines = len(starts) - 1
    if num_lines == 0:
        raise DataFormatError(path, "empty file", line=1, field="frame count")
    num_frames = _int_line(data, starts, 0, path, "frame count")
    if num_frames < 1 or num_frames > num_lines - 1:
        raise DataFormatError(
            path, f"claims {num_frames} frames but has only {num_lines} lines", line=1, field="frame count"
        )
    sl = starts.tolist()  # Python ints: scalar indexing into a numpy array is slow in this loop
    bodies_per_frame: list[int] = []
    ids: list[bytes] = []
    first_lines: list[int] = []
    frame_of_block: list[int] = []
    line = 1
    kept = -1
    for f in range(num_frames):
        nb = _int_line(data, sl, line, path, "body count")
        if nb < 0 or line + 1 + nb * (2 + NUM_JOINTS) > num_lines:
            raise DataFormatError(
                path,
                f"frame {f + 1} claims {nb} bodies; the file is too short",
                line=line + 1,
                field="body count",
            )
        bodies_per_frame.append(nb)
        line += 1
        if nb:
            kept += 1
        for _ in range(nb):
            info = data[sl[line] : sl[line + 1]].split()
            if len(info) != 10:
                raise DataFormatError(
                    path, f"body info line needs 10 fields, got {len(info)}", line=line + 1, field="body info"
                )
            ids.append(info[0])
            nj = _int_line(data, sl, line + 1, path, "joint count")
            if nj != NUM_JOINTS:
                raise DataFormatError(
                    path, f"joint count is {nj}, expected {NUM_JOINTS}", line=line + 2, field="joint count"
                )
            first_lines.append(line + 2)
            frame_of_block.append(kept)
            line += 2 + NUM_JOINTS
    if data[starts[line] :].strip():
        raise DataFormatError(path, "unexpected text after the last frame", line=line + 1)
    raw = RawSkeleton(name, num_frames, np.asarray(bodies_per_frame, dtype=np.int64))
    if not ids:
        return raw
    xyz = _leading_xyz(data, starts, np.asarray(first_lines, dtype=np.int64))
    if xyz is None:
        _locate_bad_joint_line(data, starts, first_lines, path)
    return _with_bodies(raw, ids, xyz, np.asarray(frame_of_block, dtype=np.int64))


def _with_bodies(
    raw: RawSkeleton, ids: list[bytes], xyz: np.ndarray, block_frames: np.ndarray
) -> RawSkeleton:
    """Group the per-frame body blocks by body id, in order of first appearance."""
    if not ids:
        return raw
    # float64 then float32: bit-identical to the standard np.array(str_list, dtype=np.float32)
    blocks = xyz.reshape(-1, NUM_JOINTS, 3).astype(np.float32)
    order: dict[bytes, list[int]] = {}
    for k, bid in enumerate(ids):
        order.setdefault(bid, []).append(k)
    for bid, ks in order.items():
        raw.bodies.append(RawBody(bid.decode(errors="replace"), blocks[ks], block_frames[ks]))
    return raw


def parse_skeleton_file(path: str | Path, fast: bool = True) -> RawSkeleton:
    """Read and parse one `.skeleton` file (`fast=False`: always the numpy parser)."""
    with open(path, "rb") as fh:
        return parse_skeleton_bytes(fh.read(), str(path), fast)


def _motion(joints: np.ndarray) -> float:
    # the standard: variance of all joint positions pooled over frames and joints, summed over xyz (float32)
    return np.float32(np.sum(np.var(joints.reshape(-1, 3), axis=0)))


def _noisy_frame_mask(joints: np.ndarray) -> np.ndarray:
    x, y = joints[:, :, 0], joints[:, :, 1]
    return (x.max(1) - x.min(1)) > NOISE_SPR_THRES1 * (y.max(1) - y.min(1))


def denoise_bodies(raw: RawSkeleton) -> list[RawBody]:
    """The standard body denoising: length, then spread, then order by motion (largest first)."""
    bodies = list(raw.bodies)
    if len(bodies) <= 1:
        return bodies
    for b in bodies:
        b.motion = _motion(b.joints)
    long_enough = [b for b in bodies if len(b.frames) > NOISE_LEN_THRES]
    bodies = long_enough or bodies  # fix 2: the standard script crashes when none is long enough
    if len(bodies) == 1:
        return bodies
    for b in list(bodies):
        if len(bodies) == 1:
            break
        noisy = _noisy_frame_mask(b.joints)
        if not noisy.any():
            continue
        if noisy.mean() >= NOISE_SPR_THRES2:
            bodies.remove(b)
        else:
            b.motion = min(b.motion, _motion(b.joints[~noisy]))
    if len(bodies) == 1:
        return bodies
    return sorted(bodies, key=lambda b: b.motion, reverse=True)


def assemble_actors(raw: RawSkeleton, bodies: list[RawBody]) -> np.ndarray:
    """Place denoised bodies into two actor slots: `(T, 2, 25, 3)` float32, uncentred.

    Actor 1 is the body with most motion; a later body that does not overlap actor 1 in time continues
    actor 1 (the actor was lost and re-tracked under a new id), else one that does not overlap actor 2
    fills actor 2; bodies overlapping both are dropped. With several bodies, frames where both slots
    end up empty are removed, as the standard pipeline does.
    """
    out = np.zeros((raw.num_frames, 2, NUM_JOINTS, 3), dtype=np.float32)
    if not bodies:
        return out[:0]
    first = bodies[0]
    out[first.frames, 0] = first.joints
    if len(raw.bodies) == 1:
        return out
    start1, end1 = int(first.frames[0]), int(first.frames[-1])
    start2, end2 = 0, 0
    for b in bodies[1:]:
        start, end = int(b.frames[0]), int(b.frames[-1])
        if min(end1, end) - max(start1, start) <= 0:
            out[b.frames, 0] = b.joints
            start1, end1 = min(start, start1), max(end, end1)
        elif min(end2, end) - max(start2, start) <= 0:
            out[b.frames, 1] = b.joints
            start2, end2 = min(start, start2), max(end, end2)
    return out[np.any(out != 0, axis=(1, 2, 3))]


def skeleton_to_actors(raw: RawSkeleton, path: str = "") -> np.ndarray:
    """Denoise and assemble; an error when no frame with a skeleton is left."""
    actors = assemble_actors(raw, denoise_bodies(raw))
    if len(actors) == 0:
        raise DataFormatError(path or raw.name, "no frame with a skeleton", field="bodies")
    return actors


def parse_name(name: str) -> dict[str, int]:
    """`S001C002P003R002A013` -> setup, camera, performer, replication, action (all 1-based)."""
    if len(name) < 20 or [name[i] for i in (0, 4, 8, 12, 16)] != list("SCPRA"):
        raise ValueError(f"not an NTU sample name (SsssCcccPpppRrrrAaaa): {name!r}")
    return {
        "setup": int(name[1:4]),
        "camera": int(name[5:8]),
        "performer": int(name[9:12]),
        "replication": int(name[13:16]),
        "action": int(name[17:20]),
    }
