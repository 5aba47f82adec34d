"""Read what is left of a damaged bag, front to back, up to the first damaged record.

rosbags (like `ros2 bag`) opens an MCAP file from its footer and summary, so a recording cut off by a
crash or a full disk cannot be opened at all. The data section is a plain sequence of records
(opcode u8, length u64, content) though, so a forward scan recovers every complete message before the
damage; only what replay needs is decoded: schemas, channels, messages and (compressed) chunks.
A sqlite3 bag with a damaged page is refused by rosbags as "malformed" too, yet SQLite itself still
reads the rows stored before the damaged page, in insertion order.

`read_messages` is what replay uses: the normal rosbags reader, and these scans only when the bag
cannot be opened at all.
"""

from __future__ import annotations

import mmap
import sqlite3
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

MAGIC = b"\x89MCAP0\r\n"
OP_FOOTER, OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK, OP_DATA_END = 0x02, 0x03, 0x04, 0x05, 0x06, 0x0F


class SalvageStop(RuntimeError):
    """The scan ended at damage; `messages_read` messages were yielded before it."""

    def __init__(self, message: str, messages_read: int) -> None:
        super().__init__(message)
        self.messages_read = messages_read


def _string(buf: bytes, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<I", buf, pos)
    end = pos + 4 + n
    if end > len(buf):
        raise ValueError("string runs past its record")
    return bytes(buf[pos + 4 : end]).decode("utf-8"), end


def _records(buf: bytes | mmap.mmap, start: int) -> Iterator[tuple[int, bytes, int]]:
    """(opcode, content, offset) of each complete record; raises ValueError at a cut record."""
    view = buf  # slicing an mmap copies just that record, so a huge bag is never read whole
    pos, size = start, len(view)
    while pos < size:
        if pos + 9 > size:
            raise ValueError(f"record header cut at byte {pos}")
        op = view[pos]
        (length,) = struct.unpack_from("<Q", view, pos + 1)
        if pos + 9 + length > size:
            raise ValueError(f"record (opcode 0x{op:02x}) at byte {pos} cut: needs {length} bytes")
        yield op, view[pos + 9 : pos + 9 + length], pos
        if op in (OP_FOOTER, OP_DATA_END):
            return
        pos += 9 + length


def salvage_mcap(
    path: str | Path, topics: Iterable[str] | None = None
) -> Iterator[tuple[str, str, int, bytes]]:
    """Yield `(topic, msgtype, log_time_ns, cdr_bytes)` in file order; raise SalvageStop at damage."""
    from rosbags.rosbag2.storage_mcap import decompress

    path = Path(path)
    wanted = set(topics) if topics is not None else None
    schemas: dict[int, str] = {}
    channels: dict[int, tuple[str, str]] = {}
    count = 0
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        if mm[:8] != MAGIC:
            raise SalvageStop(f"{path}: not an MCAP file (bad magic)", 0)
        stack = [_records(mm, 8)]
        try:
            while stack:
                try:
                    op, rec, offset = next(stack[-1])
                except StopIteration:
                    stack.pop()
                    continue
                if op == OP_SCHEMA:
                    (sid,) = struct.unpack_from("<H", rec, 0)
                    schemas[sid], _ = _string(rec, 2)
                elif op == OP_CHANNEL:
                    cid, sid = struct.unpack_from("<HH", rec, 0)
                    topic, _ = _string(rec, 4)
                    channels[cid] = (topic, schemas.get(sid, ""))
                elif op == OP_MESSAGE:
                    cid, _, log_time, _ = struct.unpack_from("<HIQQ", rec, 0)
                    topic, msgtype = channels[cid]
                    if wanted is None or topic in wanted:
                        count += 1
                        yield topic, msgtype, log_time, rec[22:]
                elif op == OP_CHUNK:
                    if len(stack) > 1:
                        raise ValueError(f"nested chunk at byte {offset}")
                    _, _, usize, crc = struct.unpack_from("<QQQI", rec, 0)
                    compression, pos = _string(rec, 28)
                    (csize,) = struct.unpack_from("<Q", rec, pos)
                    data = decompress(rec[pos + 8 : pos + 8 + csize], compression, usize, crc)
                    stack.append(_records(data, 0))
        except Exception as exc:  # any malformed record ends the scan; what came before stands
            raise SalvageStop(f"{path}: damaged after {count} messages: {exc}", count) from exc


def salvage_sqlite3(
    path: str | Path, topics: Iterable[str] | None = None
) -> Iterator[tuple[str, str, int, bytes]]:
    """Yield `(topic, msgtype, timestamp_ns, cdr_bytes)` in insertion order; raise SalvageStop at damage."""
    path = Path(path)
    wanted = set(topics) if topics is not None else None
    count = 0
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error as exc:
        raise SalvageStop(f"{path}: cannot open with SQLite: {exc}", 0) from exc
    try:
        conns = {tid: (name, ty) for tid, name, ty in con.execute("SELECT id, name, type FROM topics")}
        for tid, t_ns, data in con.execute("SELECT topic_id, timestamp, data FROM messages ORDER BY id"):
            topic, msgtype = conns[tid]
            if wanted is None or topic in wanted:
                count += 1
                yield topic, msgtype, int(t_ns), bytes(data)
    except (sqlite3.Error, KeyError) as exc:
        raise SalvageStop(f"{path}: damaged after {count} messages: {exc}", count) from exc
    finally:
        con.close()


def read_messages(
    bag: str | Path, topics: Iterable[str] | None = None, msgtypes: Iterable[str] | None = None
) -> Iterator[tuple[str, float, Any]]:
    """Yield `(topic, bag_time_s, message)` of `topics` (all when None) whose type is in `msgtypes`.

    Read errors raise `bag_io.BagReadError` after everything readable has been yielded; when
    the bag cannot be opened, its MCAP / sqlite3 files are scanned instead and the error says so.
    With `topics` None only the first topic of an accepted type is read (a bag's skeleton stream).
    """
    from masksem_core.rosmsg import bag_io
    from masksem_core.rosmsg.messages import get_typestore

    bag = Path(bag)
    accept = set(msgtypes) if msgtypes is not None else None
    try:
        if topics is None:
            found = sorted(t for t, ty in bag_io.bag_topics(bag).items() if accept is None or ty in accept)
            if not found:
                raise KeyError(f"bag {bag} has no topic of type {sorted(accept or [])}")
            topics = found[:1]
        yield from bag_io.iter_messages(bag, topics)
        return
    except bag_io.BagReadError as exc:
        files = sorted(bag.glob("*.mcap")) + sorted(bag.glob("*.db3")) if bag.is_dir() else [bag]
        files = [f for f in files if f.suffix in (".mcap", ".db3") and f.is_file()]
        if exc.messages_read or not files:
            raise
        open_error = str(exc)
    ts = get_typestore()
    wanted = set(topics) if topics is not None else None
    count = 0
    try:
        for f in files:
            scan = salvage_mcap if f.suffix == ".mcap" else salvage_sqlite3
            for topic, msgtype, t_ns, raw in scan(f, wanted):
                if accept is not None and msgtype not in accept:
                    continue
                wanted = wanted or {topic}
                if topic in wanted:
                    count += 1
                    yield topic, t_ns * 1e-9, ts.deserialize_cdr(raw, msgtype)
    except SalvageStop as stop:
        raise bag_io.BagReadError(
            f"{open_error}; forward scan recovered {count} messages, then: {stop}", count
        ) from stop
    raise bag_io.BagReadError(f"{open_error}; forward scan recovered all {count} messages", count)
