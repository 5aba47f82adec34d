"""Files the tools write and read: atomic writes others can read, output-folder checks, safe torch loads.

Every writer goes through a temp file in the target folder, fsync and `os.replace`, so a reader (or a
resumed run) sees the old file or the new one, never half of one. `tempfile.mkstemp` creates its file
0600; outputs here are meant to be shared (a bundle written by a training user is read by the ROS node
running as another user), so the final file gets the mode a plain `open()` would give: 0666 minus the
umask (0644 under the usual 022).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any


class OutputDirError(ValueError):
    """An output folder that cannot be created or written; the message names the path and why."""


class UnreadableTorchFile(ValueError):
    """A torch file that is missing, damaged, or holds more than tensors and plain data."""


def file_mode() -> int:
    """The mode a new file gets under this process's umask (0o644 under the usual umask 022)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, set the umask mode, rename: never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")


def check_writable(path: str | os.PathLike, what: str = "--out") -> Path:
    """Prove that the folder `path` (or, for an archive path, its folder) can be created and written,
    or raise OutputDirError naming it; creates nothing.

    Checked up front, so a long run does not end in a traceback at its first write. A real temp-file
    write in the folder, or in its nearest existing ancestor, is the test (os.access says yes to root
    on a read-only file system)."""
    path = Path(path)
    folder = path.parent if path.name.endswith(ARCHIVE_SUFFIXES) else path
    probe_dir = folder
    while not probe_dir.exists() and probe_dir != probe_dir.parent:
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        raise OutputDirError(f"cannot write to {what} {path}: {probe_dir} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=probe_dir, prefix=".masksem-write-test.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        where = "" if probe_dir == folder else f" (its nearest existing folder {probe_dir})"
        raise OutputDirError(f"cannot write to {what} {path}: {reason}{where}") from None
    return path


_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")
_UNPICKLER = re.compile(r"WeightsUnpickler error:\s*([^\n]+)")


def load_torch_weights_only(path: str | os.PathLike) -> Any:
    """`torch.load(path, weights_only=True)` with an error that says what is wrong with the file.

    torch's own message for a file holding Python objects recommends turning weights_only off, i.e.
    running whatever code the file carries; these tools never do that, so the message says so instead."""
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise UnreadableTorchFile(f"{path} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = _GLOBAL.search(str(exc))
        if not found:  # garbage bytes, not a pickle of objects
            detail = _UNPICKLER.search(str(exc))
            reason = detail.group(1) if detail else "not a torch file"
            raise UnreadableTorchFile(f"{path} is truncated or not a checkpoint: {reason}") from None
        raise UnreadableTorchFile(
            f"{path} holds Python objects ({found.group(1)}) besides tensors and plain data, so it cannot "
            "be read weights-only; it is refused, since unpickling it could run code. Use a checkpoint "
            "written by `masksem` (or re-save the state dict alone with torch.save)"
        ) from None
    except Exception as exc:  # torch raises several types for truncated zips
        raise UnreadableTorchFile(f"{path} is truncated or not a checkpoint: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
