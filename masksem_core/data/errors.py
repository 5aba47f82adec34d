"""The one error type for bad input files, so every reader reports file, line and field the same way."""

from __future__ import annotations


class DataFormatError(ValueError):
    """A raw data file is malformed; the message names the file and, when known, the line and field.

    Preparation catches it per file, counts it and carries on with the other files.
    """

    def __init__(self, path: str, message: str, line: int | None = None, field: str | None = None):
        self.path = str(path)
        self.line = line
        self.field = field
        where = self.path
        if line is not None:
            where += f":{line}"
        if field is not None:
            where += f" [{field}]"
        super().__init__(f"{where}: {message}")
