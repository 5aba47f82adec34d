"""Checkpoints: atomic writes, an embedded checksum, and loading without unpickling code.

A checkpoint is a dict of tensors and plain data saved with `torch.save` and always read back with
`weights_only=True`. Its `sha256` field is a digest of every tensor's bytes and the plain data, so
a truncated file (torch cannot open it) and a corrupted one (digest mismatch) are both reported
clearly instead of training on garbage.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from masksem_core.config import from_dict
from masksem_core.fileio import UnreadableTorchFile, atomic_write_bytes, load_torch_weights_only
from masksem_core.model.classifier import ActionClassifier, output_kind
from masksem_core.model.config import ModelConfig


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used: missing, truncated, corrupted or from another model."""


def _digest(obj: Any, h: Any) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, dict):
        for k in sorted(obj, key=str):
            if k == "sha256":
                continue
            h.update(f"K{k!s}".encode())
            _digest(obj[k], h)
    elif isinstance(obj, (list, tuple)):
        h.update(f"L{len(obj)}".encode())
        for x in obj:
            _digest(x, h)
    else:
        h.update(json.dumps(obj, sort_keys=True, default=str).encode())


def checksum(payload: dict[str, Any]) -> str:
    h = hashlib.sha256()
    _digest(payload, h)
    return h.hexdigest()


def remove_stale_temp_files(path: Path) -> int:
    """Delete temp files a killed writer left beside `path` (only this process writes checkpoints)."""
    removed = 0
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        tmp.unlink(missing_ok=True)
        removed += 1
    return removed


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> None:
    path = Path(path)
    remove_stale_temp_files(path)
    payload = dict(payload)
    payload["sha256"] = checksum(payload)
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def load_checkpoint(path: str | Path, verify: bool = True) -> dict[str, Any]:
    """Load with weights_only=True and verify the checksum."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = load_torch_weights_only(path)
    except UnreadableTorchFile as exc:
        raise CheckpointError(f"checkpoint {exc}") from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"checkpoint {path}: expected a dict, got {type(payload).__name__}")
    if verify and "sha256" in payload and checksum(payload) != payload["sha256"]:
        raise CheckpointError(f"checkpoint {path} is corrupted: its checksum does not match its contents")
    return payload


def load_state_strict(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """load_state_dict that names missing, unexpected and shape-mismatched keys in one error."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if own[k].shape != state[k].shape
    ]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append("shape mismatch " + "; ".join(shapes[:5]))
        if missing:
            parts.append(f"missing {missing[:5]}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}")
        raise CheckpointError(f"{source} does not fit this model configuration: " + " | ".join(parts))
    module.load_state_dict(state)


def encoder_state(payload: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The encoder weights of a pre-training or classifier checkpoint (prefix 'encoder.' stripped)."""
    state = payload.get("model")
    if not isinstance(state, dict):
        raise CheckpointError("checkpoint has no 'model' state")
    enc = {k.removeprefix("encoder."): v for k, v in state.items() if k.startswith("encoder.")}
    if not enc:
        raise CheckpointError("checkpoint holds no encoder weights")
    return enc


def load_classifier(path: str | Path) -> tuple[ActionClassifier, dict[str, Any]]:
    """An ActionClassifier in eval mode and the checkpoint's metadata (labels, layout, data, ...)."""
    payload = load_checkpoint(path)
    if payload.get("kind") != "classifier":
        raise CheckpointError(f"{path} is a {payload.get('kind')!r} checkpoint, not a classifier")
    cfg = from_dict(ModelConfig, payload["model_config"])
    model = ActionClassifier(cfg, int(payload["num_classes"]), payload["head"], **output_kind(payload))
    load_state_strict(model, payload["model"], str(path))
    model.eval()
    meta = {k: v for k, v in payload.items() if k not in ("model", "optimizer", "scaler")}
    return model, meta
