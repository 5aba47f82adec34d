"""Pre-training continued from another run's checkpoint (`masksem pretrain --init-from CKPT`).

The paper trains MaskSem on top of a converged MAMP run; a continued run here keeps the loaded encoder
and decoder, restarts the EMA teacher as that encoder, and runs its own schedule (fresh optimiser,
warm-up, epochs). Its checkpoint and results.json record where it started (`init_from_record`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from masksem_core.model import MaskSemPretrainer
from masksem_core.train import checkpoint as ckpt


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def init_from_record(path: str | Path, payload: dict[str, Any]) -> dict[str, Any]:
    """Where a continued run started: the file (absolute path, sha256), that run's epochs and config."""
    cfg = payload.get("config") or {}
    optim = cfg.get("optim") or {}
    epoch = payload.get("epoch")
    return {
        "path": str(Path(path).resolve()),
        "sha256": file_sha256(path),
        "kind": payload.get("kind"),
        "epochs_trained": epoch + 1 if isinstance(epoch, int) else None,
        "epochs_planned": optim.get("epochs"),
        "masking": cfg.get("masking"),
        "target": cfg.get("target"),
        "seed": (cfg.get("run") or {}).get("seed"),
        "config": cfg,  # that run's whole resolved config
        # a chain of continuations keeps its whole history
        "init_from": (payload.get("extra") or {}).get("init_from"),
    }


def load_init(model: MaskSemPretrainer, path: str | Path) -> tuple[dict[str, Any], bool]:
    """Load encoder (+ decoder when present) from `path`, restart the teacher from the loaded encoder.

    Returns the provenance record and whether a decoder was loaded.
    """
    payload = ckpt.load_checkpoint(path)
    ckpt.load_state_strict(model.encoder, ckpt.encoder_state(payload), str(path))
    dec = {k.removeprefix("decoder."): v for k, v in payload["model"].items() if k.startswith("decoder.")}
    if dec:
        ckpt.load_state_strict(model.decoder, dec, str(path))
    model.reset_teacher()
    return init_from_record(path, payload), bool(dec)
