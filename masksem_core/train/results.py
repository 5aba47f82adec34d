"""Run outputs: metrics, results.json (atomic), confusion-matrix PNG, CSV/TensorBoard/text logs."""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from masksem_core.train.checkpoint import atomic_write_bytes


def classification_metrics(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> dict[str, Any]:
    """top-1, top-5, per-class accuracy and the confusion matrix (rows: truth, columns: prediction)."""
    pred = logits.argmax(axis=1)
    k = min(5, logits.shape[1])
    top5 = np.argsort(-logits, axis=1)[:, :k]
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (labels, pred), 1)
    support = confusion.sum(axis=1)
    per_class = np.where(support > 0, np.diag(confusion) / np.maximum(support, 1), np.nan)
    return {
        "top1": float((pred == labels).mean() * 100) if len(labels) else 0.0,
        "top5": float((top5 == labels[:, None]).any(axis=1).mean() * 100) if len(labels) else 0.0,
        "num_samples": int(len(labels)),
        "per_class_accuracy": [None if np.isnan(a) else float(a * 100) for a in per_class],
        "confusion_matrix": confusion.tolist(),
    }


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    atomic_write_bytes(Path(path), (json.dumps(data, indent=2) + "\n").encode())


def plot_confusion(
    confusion: np.ndarray | list, labels: list[str], path: str | Path, title: str = ""
) -> None:
    """Row-normalised confusion matrix as a PNG (written atomically)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(confusion, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    n = len(cm)
    size = max(4.0, min(16.0, 0.45 * n + 2))
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), labels[:n], rotation=90, fontsize=7)
    ax.set_yticks(range(n), labels[:n], fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 20:
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(
                        j,
                        i,
                        int(cm[i, j]),
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if norm[i, j] > 0.5 else "black",
                    )
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())


# train.log gets every run message (announce(), through RUN_LOGGER, which does not propagate, so it is
# printed once, by announce) and the library's warnings (LIBRARY_LOGGER: masksem_core.* module loggers).
RUN_LOGGER, LIBRARY_LOGGER = "masksem_core.run", "masksem_core"
_text_handlers: list[logging.FileHandler] = []
logging.getLogger(RUN_LOGGER).addHandler(logging.NullHandler())  # no run open: run_log() writes nothing
logging.getLogger(RUN_LOGGER).propagate = False


def _detach(handler: logging.FileHandler) -> None:
    for name in (RUN_LOGGER, LIBRARY_LOGGER):
        logging.getLogger(name).removeHandler(handler)
    handler.close()
    if handler in _text_handlers:
        _text_handlers.remove(handler)


def close_text_logs() -> None:
    """Detach every run's train.log handler (a run that failed or was interrupted left its own)."""
    while _text_handlers:
        _detach(_text_handlers[-1])


def run_log(text: str, level: int = logging.INFO) -> None:
    """A line for the open runs' train.log (announce() prints it as well)."""
    logging.getLogger(RUN_LOGGER).log(level, text)


class RunLogger:
    """log.csv (one row per epoch, `epoch` first), TensorBoard scalars and the plain-text train.log.

    `epoch` is the 0-based epoch index, the same number a checkpoint's `epoch` field holds. A resumed
    run calls `forget_after` first, so after any number of resumes each epoch has exactly one row."""

    def __init__(self, out_dir: Path, enabled: bool = True) -> None:
        self.enabled = enabled
        self.csv_path = out_dir / "log.csv"
        self.fields: list[str] | None = None
        self.tb = None
        self.text: logging.FileHandler | None = None
        if enabled:
            out_dir.mkdir(parents=True, exist_ok=True)
            self.text = logging.FileHandler(out_dir / "train.log", encoding="utf-8")
            self.text.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
            )
            run = logging.getLogger(RUN_LOGGER)
            run.setLevel(logging.INFO)
            run.addHandler(self.text)
            logging.getLogger(LIBRARY_LOGGER).addHandler(self.text)
            _text_handlers.append(self.text)
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out_dir / "tensorboard"))
            except ImportError:  # tensorboard is optional
                self.tb = None

    def log(self, epoch: int, row: dict[str, float]) -> None:
        """One epoch's row (0-based `epoch`; a key `epoch` in `row` is ignored)."""
        if not self.enabled:
            return
        row = {"epoch": epoch, **{k: v for k, v in row.items() if k != "epoch"}}
        if self.csv_path.exists() and self.fields is None:
            with self.csv_path.open() as f:
                header = f.readline().strip()
            self.fields = header.split(",") if header else None
        if self.fields is None:
            self.fields = list(row)
            with self.csv_path.open("w", newline="") as f:
                csv.writer(f).writerow(self.fields)
        elif any(k not in self.fields for k in row):  # a new column (e.g. test_top1 on eval epochs)
            self._widen([k for k in row if k not in self.fields])
        with self.csv_path.open("a", newline="") as f:
            csv.writer(f).writerow([row.get(k, "") for k in self.fields])
        if self.tb is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and k != "epoch":
                    self.tb.add_scalar(k, v, epoch)

    def forget_after(self, epoch: int) -> int:
        """Drop the rows of epochs >= `epoch` (a resumed run redoes them); returns how many."""
        if not self.enabled or not self.csv_path.exists():
            return 0
        rows = self._read()
        if not rows or "epoch" not in rows[0]:
            return 0
        col = rows[0].index("epoch")

        def done(r: list[str]) -> bool:
            try:
                return int(float(r[col])) < epoch
            except (IndexError, ValueError):
                return False  # a damaged row (the write a kill interrupted) goes too

        keep = [r for r in rows[1:] if done(r)]
        dropped = len(rows) - 1 - len(keep)
        if dropped:
            self._rewrite([rows[0], *keep])
        return dropped

    def _widen(self, new: list[str]) -> None:
        """Rewrite the CSV with extra columns; earlier rows get empty cells there."""
        assert self.fields is not None
        rows = self._read()[1:]
        self.fields = self.fields + new
        self._rewrite([self.fields, *(r + [""] * (len(self.fields) - len(r)) for r in rows)])

    def _read(self) -> list[list[str]]:
        with self.csv_path.open(newline="") as f:
            return list(csv.reader(f))

    def _rewrite(self, rows: list[list[str]]) -> None:
        """Replace the CSV atomically (header first): a kill mid-write leaves the old file."""
        text = io.StringIO(newline="")
        csv.writer(text).writerows(rows)
        atomic_write_bytes(self.csv_path, text.getvalue().encode())

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.text is not None:
            _detach(self.text)
            self.text = None
