"""A compiled single-pass scanner for NTU `.skeleton` text (numba): the fast path of the NTU parser.

Parsing is bound by text-to-float conversion: numpy's `fromstring` costs ~50 ns a number and a file
holds 10-20 thousand x/y/z values, so the numpy parser tops out near 750 files/s a core. This scanner
walks the bytes once in machine code (numba), checking the layout as it goes and converting only
x, y, z. A decimal whose digits form an integer below 2^53 and whose power of ten is within 1e±22
is converted as (integer mantissa) / 10^k or x 10^k: both operands are exact doubles, so the one
rounding of the operation gives the correctly rounded value, the same double `strtod` gives; the
arrays are therefore bit-identical to the numpy parser's.

The scanner only ever answers "this file is regular, here are its numbers" or "not sure": for anything
else (a malformed line, a long mantissa, an exotic number format) it returns a status and the caller
falls back to the numpy parser, which produces the precise error message. numba is optional
(`pip install masksem[fast]`); without it the numpy parser is used everywhere.
"""

from __future__ import annotations

import numpy as np

try:
    from numba import njit
except ImportError:  # pragma: no cover - exercised when the 'fast' extra is absent
    njit = None

OK = 0
NOT_SURE = 1  # irregular or unusual input: use the numpy parser (it reports errors precisely)

_POW10 = np.array([10.0**k for k in range(23)], dtype=np.float64)  # exact doubles up to 1e22


def _is_space(c: int) -> bool:
    return c == 32 or c == 9 or c == 13 or c == 11 or c == 12


def _read_signed_digits(buf: np.ndarray, pos: int, max_digits: int) -> tuple[bool, int, int, int]:
    """An optional sign and a run of at most `max_digits` digits -> (negative, value, digits, position)."""
    n = len(buf)
    neg = False
    if pos < n and (buf[pos] == 45 or buf[pos] == 43):
        neg = buf[pos] == 45
        pos += 1
    value, digits = 0, 0
    while pos < n and 48 <= buf[pos] <= 57 and digits < max_digits:
        value = value * 10 + (buf[pos] - 48)
        digits += 1
        pos += 1
    return neg, value, digits, pos


def _read_int_line(buf: np.ndarray, pos: int) -> tuple[int, int, bool]:
    """An integer alone on its line (surrounding blanks allowed) -> (value, position after \\n, ok)."""
    n = len(buf)
    while pos < n and (buf[pos] == 32 or buf[pos] == 9):
        pos += 1
    neg, value, digits, pos = _read_signed_digits(buf, pos, 18)
    if digits == 0:
        return 0, pos, False
    while pos < n and (buf[pos] == 32 or buf[pos] == 9 or buf[pos] == 13):
        pos += 1
    if pos < n:
        if buf[pos] != 10:
            return 0, pos, False
        pos += 1
    return (-value if neg else value), pos, True


def _read_float(buf: np.ndarray, pos: int, pow10: np.ndarray) -> tuple[float, int, bool]:
    """A plain decimal ending at a space -> (correctly rounded double, position of the space, ok)."""
    n = len(buf)
    neg, mant, digits, pos = _read_signed_digits(buf, pos, 19)  # 19 digits: then rejected below
    frac = 0
    if pos < n and buf[pos] == 46:
        pos += 1
        while pos < n and 48 <= buf[pos] <= 57:
            mant = mant * 10 + (buf[pos] - 48)
            digits += 1
            frac += 1
            pos += 1
    if digits == 0 or digits > 18 or mant > 9007199254740992:  # 2**53: larger mantissas are not exact
        return 0.0, pos, False
    exp = 0
    if pos < n and (buf[pos] == 101 or buf[pos] == 69):
        eneg, exp, edigits, pos = _read_signed_digits(buf, pos + 1, 4)
        if edigits == 0:
            return 0.0, pos, False
        if eneg:
            exp = -exp
    power = exp - frac
    if power < -22 or power > 22:
        return 0.0, pos, False
    value = float(mant) / pow10[-power] if power < 0 else float(mant) * pow10[power]
    return (-value if neg else value), pos, True


def _scan(buf: np.ndarray, pow10: np.ndarray):
    """Walk a whole file. Returns (status, frame count, bodies per frame, per-block first and last byte
    of the body id, per-block index among the frames that have bodies, xyz (blocks, 25, 3))."""
    n = len(buf)
    newlines = 0
    for i in range(n):  # branch-free counting loops vectorise; byte-by-byte parsing does not
        newlines += buf[i] == 10
    ends = np.empty(newlines, dtype=np.int64)  # position of every '\n'
    k = 0
    for i in range(n):
        if buf[i] == 10:
            ends[k] = i
            k += 1
    empty_i = np.zeros(0, dtype=np.int64)
    empty_x = np.zeros((0, 25, 3), dtype=np.float64)
    num_frames, pos, ok = _read_int_line(buf, 0)
    if not ok or num_frames < 1 or num_frames > n:
        return NOT_SURE, 0, empty_i, empty_i, empty_i, empty_i, empty_x
    bodies_per_frame = np.zeros(num_frames, dtype=np.int64)
    cap = 64
    id_start = np.zeros(cap, dtype=np.int64)
    id_end = np.zeros(cap, dtype=np.int64)
    block_frame = np.zeros(cap, dtype=np.int64)
    xyz = np.zeros((cap, 25, 3), dtype=np.float64)
    blocks = 0
    kept = -1
    for f in range(num_frames):
        nb, pos, ok = _read_int_line(buf, pos)
        if not ok or nb < 0 or nb * 600 > n - pos + 1:  # a body block takes > 600 bytes
            return NOT_SURE, 0, empty_i, empty_i, empty_i, empty_i, empty_x
        bodies_per_frame[f] = nb
        if nb > 0:
            kept += 1
        for _ in range(nb):
            if blocks == cap:
                cap *= 2
                id_start = np.concatenate((id_start, np.zeros(cap - blocks, dtype=np.int64)))
                id_end = np.concatenate((id_end, np.zeros(cap - blocks, dtype=np.int64)))
                block_frame = np.concatenate((block_frame, np.zeros(cap - blocks, dtype=np.int64)))
                xyz = np.concatenate((xyz, np.zeros((cap - blocks, 25, 3), dtype=np.float64)))
            # body info line: 10 blank-separated fields, the first is the body id
            while pos < n and (buf[pos] == 32 or buf[pos] == 9):
                pos += 1
            fields = 0
            id_start[blocks] = pos
            while pos < n and buf[pos] != 10:
                if buf[pos] == 11 or buf[pos] == 12:  # blanks that bytes.split() splits on too: be safe
                    return NOT_SURE, 0, empty_i, empty_i, empty_i, empty_i, empty_x
                if buf[pos] == 32 or buf[pos] == 9 or buf[pos] == 13:
                    pos += 1
                    continue
                fields += 1
                while pos < n and not (buf[pos] == 32 or buf[pos] == 9 or buf[pos] == 13 or buf[pos] == 10):
                    pos += 1
                if fields == 1:
                    id_end[blocks] = pos
            if fields != 10 or pos >= n:
                return NOT_SURE, 0, empty_i, empty_i, empty_i, empty_i, empty_x
            pos += 1
            nj, pos, ok = _read_int_line(buf, pos)
            if not ok or nj != 25:
                return NOT_SURE, 0, empty_i, empty_i, empty_i, empty_i, empty_x
            line = np.searchsorted(ends, pos)  # index of the first joint line
            for j in range(25):
                end = ends[line] if line < newlines else n  # this line's '\n' (or the end of the file)
                content_end = end - 1 if end > pos and buf[end - 1] == 13 else end
                for k in range(3):  # x y z, each followed by exactly one space
                    v, pos, ok = _read_float(buf, pos, pow10)
                    if not ok or pos >= content_end or buf[pos] != 32:
                        return NOT_SURE, 0, empty_i, empty_i, empty_i, empty_i, empty_x
                    xyz[blocks, j, k] = v
                    pos += 1
                # the other 9 fields: 8 single spaces, no tab or CR inside, no blank at either end
                spaces, bad = 0, 0
                for i in range(pos, content_end):
                    c = buf[i]
                    spaces += c == 32
                    bad += (c == 9) | (c == 13) | ((c == 32) & (buf[i - 1] == 32))
                if spaces != 8 or bad > 0 or content_end <= pos or buf[content_end - 1] == 32:
                    return NOT_SURE, 0, empty_i, empty_i, empty_i, empty_i, empty_x
                pos = min(end + 1, n)
                line += 1
            block_frame[blocks] = kept
            blocks += 1
    while pos < n:
        if not (_is_space(buf[pos]) or buf[pos] == 10):
            return NOT_SURE, 0, empty_i, empty_i, empty_i, empty_i, empty_x
        pos += 1
    return (
        OK,
        num_frames,
        bodies_per_frame,
        id_start[:blocks],
        id_end[:blocks],
        block_frame[:blocks],
        xyz[:blocks],
    )


if njit is not None:
    _is_space = njit(cache=True, nogil=True, inline="always")(_is_space)
    _read_signed_digits = njit(cache=True, nogil=True, inline="always")(_read_signed_digits)
    _read_int_line = njit(cache=True, nogil=True, inline="always")(_read_int_line)
    _read_float = njit(cache=True, nogil=True, inline="always")(_read_float)
    _scan = njit(cache=True, nogil=True)(_scan)


def scan_available() -> bool:
    """True when numba is installed, so `scan_skeleton` runs compiled."""
    return njit is not None


def scan_skeleton(data: bytes):
    """The compiled scan of one file's bytes; None when numba is absent or the file needs the numpy
    parser (irregular or unusual input). Otherwise (frame count, bodies per frame, body ids as bytes,
    block frame indices, xyz float64 (blocks, 25, 3))."""
    if njit is None:
        return None
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        status, num_frames, per_frame, id_start, id_end, block_frame, xyz = _scan(buf, _POW10)
    except SystemError as exc:
        # Ctrl-C while machine code runs: the dispatcher returns with the KeyboardInterrupt pending and
        # CPython wraps it in a SystemError, which a per-file error handler would swallow.
        cause: BaseException | None = exc
        for _ in range(8):  # the chain is SystemError <- SystemError (numba's unpickle) <- KeyboardInterrupt
            if cause is None or not isinstance(cause, Exception):
                break
            cause = cause.__cause__ or cause.__context__
        if cause is not None and not isinstance(cause, Exception):
            raise cause from None
        raise
    if status != OK:
        return None
    ids = [data[a:b] for a, b in zip(id_start.tolist(), id_end.tolist())]
    return num_frames, per_frame, ids, block_frame, xyz
