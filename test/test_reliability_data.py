"""Fuzz the raw data-set readers: every malformed file is a `DataFormatError` naming where, never a crash,
a hang or an unbounded allocation. Mutations start from the real files in ../shared/data where they exist.
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from masksem_core.data.custom import _CustomClip, read_labels_csv
from masksem_core.data.errors import DataFormatError
from masksem_core.data.joint_order import layout_order
from masksem_core.data.ntu import parse_skeleton_bytes
from masksem_core.data.nwucla import nwucla_clip
from masksem_core.data.pku import parse_pku_labels, parse_pku_skeleton
from masksem_core.layouts import NTU25

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NTU_SAMPLE = SHARED / "ntu-samples" / "S003C001P015R001A034.skeleton"
UCLA_SAMPLE = SHARED / "nw-ucla" / "all_sqe" / "a01_s01_e00_v01.json"
NTU25_ORDER = layout_order(NTU25)  # the custom worker reads files in a layout's own joint order
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _real(path: Path) -> bytes:
    if not path.is_file():
        pytest.skip(f"real data not available: {path} is absent (it ships beside the repo, not in it)")
    return path.read_bytes()


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """A real file damaged the ways disks, copies and editors damage files."""
    lines = data.split(b"\n")
    kind = draw(st.sampled_from(["truncate", "flip", "line", "count", "insert", "drop"]))
    if kind == "truncate":
        return data[: draw(st.integers(0, len(data) - 1))]
    if kind == "flip":
        buf = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            buf[draw(st.integers(0, len(buf) - 1))] = draw(st.integers(0, 255))
        return bytes(buf)
    i = draw(st.integers(0, len(lines) - 1))
    if kind == "line":
        lines[i] = draw(st.binary(max_size=80))
    elif kind == "count":  # a frame/body/joint count line made absurd
        lines[i] = str(draw(st.sampled_from([0, -1, 10**9, 2**63, 26, 3]))).encode()
    elif kind == "insert":
        lines.insert(i, draw(st.sampled_from([b"", b"1", b"nan nan nan", b"\x00\xff", b"1e999 0 0"])))
    else:
        del lines[i]
    return b"\n".join(lines)


def _check_ntu(data: bytes) -> None:
    try:
        slow = parse_skeleton_bytes(data, "fuzz.skeleton", fast=False)
    except DataFormatError as exc:
        assert str(exc).startswith("fuzz.skeleton"), exc
        with pytest.raises(DataFormatError) as fast_exc:  # the compiled scanner defers to the same error
            parse_skeleton_bytes(data, "fuzz.skeleton")
        assert str(fast_exc.value) == str(exc)
        return
    raw = parse_skeleton_bytes(data, "fuzz.skeleton")  # compiled scanner when numba is installed
    assert [b.body_id for b in raw.bodies] == [b.body_id for b in slow.bodies]
    for fast_body, slow_body in zip(raw.bodies, slow.bodies):
        np.testing.assert_array_equal(fast_body.joints, slow_body.joints)
        np.testing.assert_array_equal(fast_body.frames, slow_body.frames)
    assert raw.num_frames_in_file == len(raw.bodies_per_frame)
    for body in raw.bodies:
        assert body.joints.shape == (len(body.frames), 25, 3) and body.joints.dtype == np.float32
        assert np.isfinite(body.joints).all()


@FUZZ
@given(data=st.data())
def test_ntu_damaged_real_file_is_parsed_or_rejected_with_location(data: st.DataObject) -> None:
    _check_ntu(data.draw(mutated(_real(NTU_SAMPLE))))


@FUZZ
@given(st.binary(max_size=3000))
def test_ntu_arbitrary_bytes(blob: bytes) -> None:
    _check_ntu(blob)


def test_ntu_claims_of_huge_counts_are_rejected_before_allocation() -> None:
    good = _real(NTU_SAMPLE)
    lines = good.split(b"\n")
    tracemalloc.start()
    try:
        for line, value in ((0, b"1000000000"), (1, b"1000000000")):
            bad = b"\n".join(lines[:line] + [value] + lines[line + 1 :])
            with pytest.raises(DataFormatError, match=r"fuzz\.skeleton:\d+ \[(frame|body) count\]"):
                parse_skeleton_bytes(bad, "fuzz.skeleton")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * len(good), f"peak {peak} bytes for a {len(good)}-byte file"


# --- PKU-MMD ------------------------------------------------------------------------------------------

frames_st = st.lists(
    st.lists(st.floats(-5, 5, allow_nan=False, width=32), min_size=150, max_size=150), min_size=1, max_size=4
)


def _pku_text(frames: list[list[float]]) -> bytes:
    return b"".join((" ".join(repr(v) for v in f) + "\n").encode() for f in frames)


@FUZZ
@given(frames=frames_st)
def test_pku_well_formed_file_round_trips(tmp_path: Path, frames: list[list[float]]) -> None:
    path = tmp_path / "v.txt"
    path.write_bytes(_pku_text(frames))
    out = parse_pku_skeleton(str(path))
    np.testing.assert_array_equal(out.reshape(len(frames), 150), np.asarray(frames, np.float32))


@FUZZ
@given(frames=frames_st, data=st.data())
def test_pku_damaged_file_is_rejected_with_line(tmp_path: Path, frames: list, data: st.DataObject) -> None:
    path = tmp_path / "v.txt"
    blob = data.draw(mutated(_pku_text(frames)))
    path.write_bytes(blob)
    try:
        out = parse_pku_skeleton(str(path))
    except DataFormatError as exc:
        assert str(exc).startswith(str(path)), exc
        return
    # accepted: then every non-blank line held exactly 150 finite numbers, in order
    rows = [ln.split() for ln in blob.splitlines() if ln.strip()]
    assert all(len(r) == 150 for r in rows)
    np.testing.assert_array_equal(
        out.reshape(len(rows), 150), np.asarray(rows, np.float64).astype(np.float32)
    )


def test_pku_lines_of_wrong_length_that_add_up_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_text(" ".join(["1"] * 149) + "\n" + " ".join(["1"] * 151) + "\n")
    with pytest.raises(DataFormatError, match=r"v\.txt:1 \[frame\]: expected 150 numbers, got 149"):
        parse_pku_skeleton(str(path))


@FUZZ
@given(st.binary(max_size=300))
def test_pku_label_file_arbitrary_bytes(tmp_path: Path, blob: bytes) -> None:
    path = tmp_path / "labels.txt"
    path.write_bytes(blob)
    try:
        rows = parse_pku_labels(str(path))
    except DataFormatError as exc:
        assert str(exc).startswith(str(path)), exc
        return
    assert all(1 <= a <= 51 and 0 <= s < e for a, s, e in rows)


# --- NW-UCLA ------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=20,
)


def _check_ucla(path: Path) -> None:
    try:
        clips = nwucla_clip(str(path))
    except DataFormatError as exc:
        assert str(exc).startswith(str(path)), exc
        return
    (clip,) = clips
    assert clip.data.ndim == 4 and clip.data.shape[1:] == (1, 20, 3) and np.isfinite(clip.data).all()
    assert 0 <= clip.label < 10


@FUZZ
@given(data=st.data())
def test_nwucla_damaged_real_file(tmp_path: Path, data: st.DataObject) -> None:
    path = tmp_path / UCLA_SAMPLE.name
    path.write_bytes(data.draw(mutated(_real(UCLA_SAMPLE))))
    _check_ucla(path)


@FUZZ
@given(key=st.sampled_from(["label", "skeletons", "file_name"]), value=json_values)
def test_nwucla_fields_replaced_by_any_json(tmp_path: Path, key: str, value: object) -> None:
    doc = json.loads(_real(UCLA_SAMPLE))
    doc[key] = value
    path = tmp_path / UCLA_SAMPLE.name
    path.write_text(json.dumps(doc))
    _check_ucla(path)


@pytest.mark.parametrize(
    "text",
    [
        # nesting past the recursion limit
        '{"label": 1, "skeletons": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"label": 1, "skeletons": [[[' + "9" * 400 + ", 0, 0]]]}",  # an integer too big for a float
    ],
    ids=["deep-nesting", "huge-integer"],
)
def test_nwucla_pathological_json_is_a_format_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "a01_s01_e00_v01.json"
    path.write_text(text)
    with pytest.raises(DataFormatError, match=r"a01_s01_e00_v01\.json"):
        nwucla_clip(str(path))


# --- the user clip format -----------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=400))
def test_custom_labels_csv_arbitrary_bytes(tmp_path: Path, blob: bytes) -> None:
    path = tmp_path / "labels.csv"
    path.write_bytes(blob)
    try:
        rows, _ = read_labels_csv(path)
    except DataFormatError as exc:
        assert str(exc).startswith(str(path)), exc
        return
    assert rows and all(f and lab and split in ("train", "test") for f, lab, split in rows)


def _npy(path: Path, shape: tuple, descr: str, payload: bytes) -> None:
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": descr, "fortran_order": False, "shape": shape})
        fh.write(payload)


@FUZZ
@given(
    shape=st.lists(st.sampled_from([0, 1, 2, 3, 25, 10**9]), min_size=0, max_size=5).map(tuple),
    descr=st.sampled_from(["<f4", "<f8", "<i2", "|b1", "<c8", "|S3"]),
    payload=st.binary(max_size=2000),
)
def test_custom_npy_with_any_header_and_payload(
    tmp_path: Path, shape: tuple, descr: str, payload: bytes
) -> None:
    path = tmp_path / "clip.npy"
    _npy(path, shape, descr, payload)
    worker = _CustomClip(tmp_path, NTU25_ORDER, {"0": 0}, 2)
    try:
        (clip,) = worker(("clip.npy", "0", "train"))
    except DataFormatError as exc:
        assert str(exc).startswith(str(path)), exc
        return
    assert clip.data.shape[2:] == (25, 3) and np.isfinite(clip.data).all()


@pytest.mark.parametrize("shape", [(3, 0, 25, 3), (0, 25, 3), (3, 25, 4), (3, 3, 25, 3)])
def test_custom_npy_without_a_person_or_of_the_wrong_shape_is_named(tmp_path: Path, shape: tuple) -> None:
    np.save(tmp_path / "clip.npy", np.zeros(shape, np.float32))
    with pytest.raises(DataFormatError, match=r"clip\.npy.*shape"):
        _CustomClip(tmp_path, NTU25_ORDER, {"0": 0}, 2)(("clip.npy", "0", "train"))


def test_custom_npy_claiming_a_billion_frames_is_rejected_before_allocation(tmp_path: Path) -> None:
    path = tmp_path / "clip.npy"
    _npy(path, (10**9, 25, 3), "<f4", np.zeros((2, 25, 3), np.float32).tobytes())
    tracemalloc.start()
    try:
        with pytest.raises(DataFormatError, match=r"clip\.npy"):
            _CustomClip(tmp_path, NTU25_ORDER, {"0": 0}, 2)(("clip.npy", "0", "train"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10_000_000, f"peak allocation {peak} bytes"
