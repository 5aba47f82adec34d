"""The compiled `.skeleton` scanner (numba, the 'fast' extra) against the numpy parser: the same arrays bit
for bit on the real samples and on generated decimals, and "not sure" (so the numpy parser answers) on
anything irregular. The fuzz tests in test_reliability_data.py also check both parsers agree on damage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from masksem_core.data.ntu import parse_skeleton_bytes
from masksem_core.data.ntu_scan import scan_available, scan_skeleton

pytestmark = pytest.mark.skipif(not scan_available(), reason="numba (the 'fast' extra) is not installed")
SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ntu-samples"
INFO = b"72057594037931101 0 1 1 1 1 0 0.02764709 0.05745083 2"


def assert_same(a, b) -> None:
    assert a.num_frames_in_file == b.num_frames_in_file
    np.testing.assert_array_equal(a.bodies_per_frame, b.bodies_per_frame)
    assert [x.body_id for x in a.bodies] == [x.body_id for x in b.bodies]
    for x, y in zip(a.bodies, b.bodies, strict=True):
        assert x.joints.dtype == y.joints.dtype == np.float32
        np.testing.assert_array_equal(x.joints, y.joints)  # bit-identical, not close
        np.testing.assert_array_equal(x.frames, y.frames)


def skeleton(xyz_tokens: list[bytes], eol: bytes = b"\r\n") -> bytes:
    """One frame, one body, 25 joint lines whose x y z are the given tokens (cycled)."""
    lines = [b"1", b"1", INFO, b"25"]
    for j in range(25):
        x, y, z = (xyz_tokens[(3 * j + k) % len(xyz_tokens)] for k in range(3))
        lines.append(b" ".join([x, y, z, b"256.3406 153.2504 976.7161 407.8062 0 0 0 0 2"]))
    return eol.join(lines) + eol


@pytest.mark.parametrize("name", sorted(p.stem for p in SAMPLES.glob("*.skeleton")) or ["(no samples)"])
@pytest.mark.parametrize("eol", [b"\r\n", b"\n"])
def test_real_samples_scan_bit_identical_to_the_numpy_parser(name: str, eol: bytes) -> None:
    path = SAMPLES / f"{name}.skeleton"
    if not path.is_file():
        pytest.skip(f"real data not available: {SAMPLES} is absent (it ships beside the repo, not in it)")
    data = path.read_bytes().replace(b"\r\n", eol)
    assert scan_skeleton(data) is not None, "a regular real file must take the fast path"
    assert_same(parse_skeleton_bytes(data, name, fast=True), parse_skeleton_bytes(data, name, fast=False))


decimal = st.builds(
    lambda sign, whole, frac, exp: sign + whole + (b"." + frac if frac is not None else b"") + exp,
    st.sampled_from([b"", b"-", b"+"]),
    st.from_regex(rb"\A[0-9]{0,20}\Z"),
    st.none() | st.from_regex(rb"\A[0-9]{0,20}\Z"),
    st.sampled_from([b""] * 4 + [b"E-05", b"e+3", b"E22", b"e-30", b"E-323", b"e"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(decimal, min_size=1, max_size=6))
def test_generated_decimals_convert_exactly_like_strtod(tokens: list[bytes]) -> None:
    """Whatever the scanner accepts it converts to the double strtod gives (then float32 as the standard
    pipeline); what it is not sure of goes to the numpy parser, which then decides."""
    data = skeleton(tokens)
    scanned = scan_skeleton(data)
    try:
        want = parse_skeleton_bytes(data, "gen", fast=False)
    except ValueError:  # numpy parser rejects it (DataFormatError is a ValueError)
        assert scanned is None
        return
    if scanned is not None:
        _, _, _, _, xyz = scanned
        strtod = np.array([float(t) for t in tokens], dtype=np.float64)
        np.testing.assert_array_equal(xyz.reshape(-1)[: len(tokens)], strtod)
    assert_same(parse_skeleton_bytes(data, "gen", fast=True), want)


def test_plain_ntu_numbers_take_the_fast_path() -> None:
    assert scan_skeleton(skeleton([b"-0.2475014", b"3.785547", b"0.2181153", b"-7.257856E-05"])) is not None
    assert scan_skeleton(skeleton([b"1", b"2", b"3"], eol=b"\n")) is not None


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d.replace(b"3.785547 ", b"3.785547  ", 1),  # double space
        lambda d: d.replace(b"0 0 0 0 2\r\n", b"0 0 0 0 2 \r\n", 1),  # trailing blank on a joint line
        lambda d: d.replace(b"256.3406", b"256.3406\t", 1),  # a tab
        lambda d: d.replace(b"\r\n25\r\n", b"\r\n24\r\n", 1),  # joint count
        lambda d: d.replace(b"3.785547", b"nan", 1),  # not a decimal
        lambda d: d.replace(b"3.785547", b"12345678901234567890", 1),  # mantissa beyond 2^53
        lambda d: d[:-5],  # truncated
        lambda d: d + b"junk\r\n",  # text after the last frame
    ],
)
def test_irregular_input_is_left_to_the_numpy_parser(edit) -> None:
    good = skeleton([b"-0.2475014", b"3.785547", b"0.2181153"])
    assert scan_skeleton(good) is not None
    bad = edit(good)
    assert scan_skeleton(bad) is None


def test_ctrl_c_during_the_scan_is_a_keyboard_interrupt_not_a_bad_file() -> None:
    """A signal that lands while machine code runs surfaces from numba as a SystemError; a per-file
    error handler would count it as a bad file and carry on. The scanner re-raises KeyboardInterrupt."""
    import os
    import signal
    import threading
    import time

    data = skeleton([b"-0.2475014", b"3.785547", b"0.2181153"])
    lines = data.split(b"\r\n")
    big = b"\r\n".join([b"400"] + lines[1:-1] * 400) + b"\r\n"
    assert scan_skeleton(big) is not None
    timer = threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    deadline = time.time() + 10
    with pytest.raises(KeyboardInterrupt):
        while time.time() < deadline:
            scan_skeleton(big)
    timer.join()
