"""Fuzz message -> numpy conversion: damaged CDR bytes from a bag and arbitrary PointCloud2 field tables
either convert to consistent arrays or fail with the error types the node and replay catch
(ValueError / KeyError), quickly and without allocating more than the message holds."""

from __future__ import annotations

import dataclasses
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("rosbags")
from rosbags.serde import SerdeError

from masksem_core.layouts import LAYOUTS
from masksem_core.rosmsg.messages import (
    SKELETON_ARRAY_TYPE,
    get_typestore,
    make_header,
    numpy_to_skeleton_array,
    rosbags_kit,
    skeleton_array_to_numpy,
)
from masksem_core.rosmsg.pointcloud import numpy_to_pointcloud, pointcloud_to_numpy

FUZZ = settings(max_examples=80, deadline=None)
KIT = rosbags_kit()
persons_st = st.dictionaries(
    st.integers(0, 99).map(str),
    st.integers(1, 25).flatmap(
        lambda v: st.tuples(
            st.lists(st.floats(width=32), min_size=3 * v, max_size=3 * v).map(
                lambda x: np.asarray(x, np.float32).reshape(-1, 3)
            ),
            st.just(None) | st.just(np.ones(v, np.float32)),
        )
    ),
    max_size=3,
)


def _check_persons(persons: dict) -> None:
    for joints, conf in persons.values():
        assert joints.ndim == 2 and joints.shape[1] == 3 and conf.shape == (len(joints),)


@FUZZ
@given(persons=persons_st, data=st.data())
def test_damaged_skeleton_array_cdr(persons: dict, data: st.DataObject) -> None:
    ts = get_typestore()
    msg = numpy_to_skeleton_array(KIT, 12.5, persons, "ntu25")
    raw = bytearray(ts.serialize_cdr(msg, SKELETON_ARRAY_TYPE))
    stamp, back, _ = skeleton_array_to_numpy(ts.deserialize_cdr(bytes(raw), SKELETON_ARRAY_TYPE))
    assert stamp == pytest.approx(12.5) and set(back) == set(persons)  # the undamaged round trip
    for _ in range(data.draw(st.integers(1, 6))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    raw = raw[: data.draw(st.integers(0, len(raw)))]
    t0 = time.perf_counter()
    try:
        msg = ts.deserialize_cdr(bytes(raw), SKELETON_ARRAY_TYPE)
    except Exception:  # the bag reader turns any deserialisation error into BagReadError
        return
    finally:
        assert time.perf_counter() - t0 < 2.0
    try:
        _, back, _ = skeleton_array_to_numpy(msg)
    except (ValueError, KeyError):
        return
    _check_persons(back)


def test_cdr_sequence_length_of_a_billion_does_not_allocate() -> None:
    ts = get_typestore()
    msg = numpy_to_skeleton_array(KIT, 1.0, {"1": (np.zeros((25, 3), np.float32), None)}, "ntu25")
    raw = bytearray(ts.serialize_cdr(msg, SKELETON_ARRAY_TYPE))
    # the skeletons sequence length follows the header (stamp 8 bytes + frame_id string "camera\0")
    at = raw.index(b"camera\x00") + 8
    at += -at % 4
    raw[at : at + 4] = (10**9).to_bytes(4, "little")
    tracemalloc.start()
    try:
        with pytest.raises(SerdeError, match="sequence length 1000000000"):
            ts.deserialize_cdr(bytes(raw), SKELETON_ARRAY_TYPE)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000


field_st = st.builds(
    lambda name, offset, datatype: KIT.PointField(name=name, offset=offset, datatype=datatype, count=1),
    st.sampled_from(["x", "y", "z", "confidence", "person_id", "rgb"]),
    st.integers(0, 40),
    st.integers(0, 9),
)


@FUZZ
@given(
    fields=st.lists(field_st, max_size=6),
    width=st.integers(0, 60) | st.just(10**9),
    height=st.integers(0, 3) | st.just(10**9),
    point_step=st.integers(0, 40),
    row_step=st.integers(0, 2000) | st.just(2**32 - 1),
    data=st.binary(max_size=3000),
    bigendian=st.booleans(),
    layout=st.sampled_from([None, "ntu25", "mediapipe33", "nope"]),
)
def test_any_pointcloud2_field_table(
    fields: list,
    width: int,
    height: int,
    point_step: int,
    row_step: int,
    data: bytes,
    bigendian: bool,
    layout,
) -> None:
    msg = KIT.PointCloud2(
        header=make_header(KIT, 3.0, "camera"),
        height=height,
        width=width,
        fields=fields,
        is_bigendian=bigendian,
        point_step=point_step,
        row_step=row_step,
        data=KIT.byte_array(data),
        is_dense=False,
    )
    t0 = time.perf_counter()
    try:
        _, persons, _ = pointcloud_to_numpy(msg, layout)
    except (ValueError, KeyError):
        return
    finally:
        assert time.perf_counter() - t0 < 2.0
    _check_persons(persons)


@FUZZ
@given(persons=persons_st.filter(lambda p: len({len(j) for j, _ in p.values()}) == 1))
def test_pointcloud_round_trip(persons: dict) -> None:
    v = len(next(iter(persons.values()))[0])
    fits = [name for name, lay in LAYOUTS.items() if lay.num_joints == v]  # inferred only when unique
    layout = fits[0] if len(fits) == 1 else None
    msg = numpy_to_pointcloud(KIT, 4.0, persons)
    if layout is None:
        with pytest.raises(ValueError, match="layout"):
            pointcloud_to_numpy(msg)
        return
    _, back, lay = pointcloud_to_numpy(msg)
    assert lay == layout and list(back) == list(persons)
    for pid, (joints, _) in persons.items():
        np.testing.assert_array_equal(back[pid][0], joints)


UNIQUE_COUNTS = [
    (15, "openni_15"), (17, "h36m_17"), (20, "kinect_v1_20"), (25, "ntu25"), (32, "azure_kinect_32"),
    (33, "mediapipe33"), (34, "zed_body_34"), (38, "zed_body_38"),
]  # fmt: skip


@pytest.mark.parametrize("v, layout", UNIQUE_COUNTS)
def test_pointcloud_layout_is_inferred_from_a_unique_joint_count(v: int, layout: str) -> None:
    msg = numpy_to_pointcloud(KIT, 1.0, {"3": (np.zeros((v, 3), np.float32), None)})
    assert pointcloud_to_numpy(msg)[2] == layout


def test_pointcloud_joint_count_of_no_layout_or_several_is_an_error_naming_them(monkeypatch) -> None:
    msg = numpy_to_pointcloud(KIT, 1.0, {"0": (np.zeros((21, 3), np.float32), None)})
    with pytest.raises(ValueError, match=r"no layout has 21;.*kinect_v1_20=20"):
        pointcloud_to_numpy(msg)
    monkeypatch.setitem(LAYOUTS, "other_25", dataclasses.replace(LAYOUTS["ntu25"], name="other_25"))
    msg = numpy_to_pointcloud(KIT, 1.0, {"0": (np.zeros((25, 3), np.float32), None)})
    with pytest.raises(ValueError, match=r"several layouts have 25 joints \(ntu25, other_25\)"):
        pointcloud_to_numpy(msg)
    assert pointcloud_to_numpy(msg, layout="ntu25")[2] == "ntu25"  # an explicit layout settles it


def test_a_field_past_the_point_step_is_named() -> None:
    fields = [KIT.PointField(name=n, offset=4 * i, datatype=7, count=1) for i, n in enumerate("xyz")]
    fields[2] = KIT.PointField(name="z", offset=100, datatype=7, count=1)
    msg = KIT.PointCloud2(
        header=make_header(KIT, 1.0, "camera"), height=1, width=25, fields=fields, is_bigendian=False,
        point_step=12, row_step=300, data=KIT.byte_array(bytes(300)), is_dense=True,
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"field 'z': offset 100 \+ 4 bytes exceeds point_step 12"):
        pointcloud_to_numpy(msg)
