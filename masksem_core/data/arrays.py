"""Prepared arrays on disk: the community `.npz` (x_train, y_train, x_test, y_test) plus a JSON sidecar.

The npz is what MAMP / CTR-GCN feeders read: `x_*` float32 `(N, T_pad, M*V*3)` (person-major, then
joint, then xyz) and `y_*` float64 one-hot. Members are stored uncompressed (as `np.savez` does), which
lets `open_npz_member` memory-map them, and we write them row-chunk by row-chunk, so a 20 GB NTU-120
file never has to exist in memory. Every write goes to a temporary file in the target directory and
is moved into place with `os.replace`, so a crash or Ctrl-C never leaves a half-written file behind.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from masksem_core.fileio import atomic_write_bytes, file_mode

SIDECAR_FORMAT = "masksem-skeleton-arrays/1"
_CHUNK_ROWS = 512


def sidecar_path(npz_path: str | os.PathLike) -> Path:
    """`NTU60_CS.npz` -> `NTU60_CS.json`."""
    return Path(npz_path).with_suffix(".json")


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """float64 one-hot rows, as the community files store labels."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"label outside 0..{num_classes - 1}: {labels.min()}..{labels.max()}")
    out = np.zeros((labels.size, num_classes), dtype=np.float64)
    out[np.arange(labels.size), labels] = 1.0
    return out


def _write_member(zf: zipfile.ZipFile, name: str, source: np.ndarray, rows: np.ndarray | None) -> None:
    """Write `source[rows]` (or all of `source`) as `name.npy`, streaming in row chunks."""
    n = source.shape[0] if rows is None else len(rows)
    shape = (n, *source.shape[1:])
    header = {"descr": np.lib.format.dtype_to_descr(source.dtype), "fortran_order": False, "shape": shape}
    with zf.open(name + ".npy", "w", force_zip64=True) as fh:
        np.lib.format.write_array_header_2_0(fh, header)
        for start in range(0, n, _CHUNK_ROWS):
            idx = slice(start, start + _CHUNK_ROWS) if rows is None else rows[start : start + _CHUNK_ROWS]
            fh.write(np.ascontiguousarray(source[idx]).tobytes())


def _replace(tmp: str, path: Path) -> None:
    """mkstemp files are 0600; give the final file normal permissions, then move it into place."""
    os.chmod(tmp, file_mode())
    os.replace(tmp, path)


def write_split_npz(
    path: str | os.PathLike,
    x: np.ndarray,
    train_rows: Sequence[int],
    test_rows: Sequence[int],
    labels: np.ndarray,
    num_classes: int,
    sidecar: dict[str, Any],
) -> None:
    """Write `x[train_rows]`, `x[test_rows]` and one-hot labels as a community npz, plus its sidecar.

    `x` may be a memmap; rows are copied in chunks. `sidecar` is stored as JSON next to the npz (the
    npz is replaced first, then the sidecar, each atomically).
    """
    path = Path(path)
    train_rows = np.asarray(train_rows, dtype=np.int64)
    test_rows = np.asarray(test_rows, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            _write_member(zf, "x_train", x, train_rows)
            _write_member(zf, "y_train", one_hot(labels[train_rows], num_classes), None)
            _write_member(zf, "x_test", x, test_rows)
            _write_member(zf, "y_test", one_hot(labels[test_rows], num_classes), None)
        _replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    meta = {"format": SIDECAR_FORMAT, **sidecar}
    atomic_write_bytes(sidecar_path(path), json.dumps(meta, indent=1).encode())


def read_sidecar(npz_path: str | os.PathLike) -> dict[str, Any] | None:
    """The sidecar of a prepared npz, or None when the file came from another tool without one."""
    p = sidecar_path(npz_path)
    if not p.exists():
        return None
    with open(p) as fh:
        meta = json.load(fh)
    if meta.get("format") != SIDECAR_FORMAT:
        raise ValueError(f"{p}: field 'format' is {meta.get('format')!r}, expected {SIDECAR_FORMAT!r}")
    return meta


def open_npz_member(path: str | os.PathLike, key: str, mmap: bool = True) -> np.ndarray:
    """One array of an npz, memory-mapped read-only when it is stored uncompressed.

    `np.load(npz, mmap_mode=...)` ignores mmap for npz archives; this finds the member's bytes inside
    the zip and maps them, so DataLoader workers share the page cache instead of each holding a copy.
    Compressed members (np.savez_compressed) are loaded into memory instead.
    """
    path = str(path)
    with zipfile.ZipFile(path) as zf:
        try:
            info = zf.getinfo(key + ".npy")
        except KeyError:
            raise KeyError(f"{path}: no array {key!r} (has {[n[:-4] for n in zf.namelist()]})") from None
        if not mmap or info.compress_type != zipfile.ZIP_STORED:
            with zf.open(info) as fh:
                return np.lib.format.read_array(fh, allow_pickle=False)
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)
        if local[:4] != b"PK\x03\x04":
            raise ValueError(f"{path}: member {key!r} has a bad local header")
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        fh.seek(info.header_offset + 30 + name_len + extra_len)
        version = np.lib.format.read_magic(fh)
        read_header = {
            (1, 0): np.lib.format.read_array_header_1_0,
            (2, 0): np.lib.format.read_array_header_2_0,
        }.get(version)
        if read_header is None:
            raise ValueError(f"{path}: member {key!r} has unsupported .npy format version {version}")
        shape, fortran, dtype = read_header(fh)
        offset = fh.tell()
    if dtype.hasobject:
        raise ValueError(f"{path}: member {key!r} holds Python objects; refusing to load")
    return np.memmap(path, dtype=dtype, mode="r", shape=shape, offset=offset, order="F" if fortran else "C")
