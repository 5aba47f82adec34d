"""One score per clip from a bundle's output, for "which action was this clip" questions.

A dense bundle (metadata `"dense": true`) returns per-temporal-token logits `(N, L_t, K)`; its clip
score is the mean of the token logits. A stream-trained bundle's last label is the background class
(`"background_label": "no_action"`): it is a valid recognition on a stream, but a clip of a labelled
data set is always some action, so its column is left out of the clip score. Used by
`masksem evaluate --bundle` and meant for any other clip-level scoring of a bundle.
"""

from __future__ import annotations

from typing import Any

import torch


def background_index(labels: list[str], meta: dict[str, Any]) -> int | None:
    """The class index of the bundle's background label, or None for a bundle without one."""
    name = meta.get("background_label")
    if not name:
        return None
    if name not in labels:
        raise ValueError(f"background_label {name!r} is not one of the bundle's labels {labels}")
    return labels.index(name)


def clip_logits(logits: torch.Tensor, background: int | None = None) -> torch.Tensor:
    """(N, K) or dense (N, L_t, K) logits -> (N, K') clip logits: token mean, background column dropped."""
    if logits.ndim == 3:
        logits = logits.mean(dim=1)
    elif logits.ndim != 2:
        raise ValueError(f"expected logits of shape (N, K) or (N, L_t, K), got {tuple(logits.shape)}")
    if background is None:
        return logits
    keep = [k for k in range(logits.shape[1]) if k != background]
    return logits[:, keep]


def action_labels(labels: list[str], background: int | None) -> list[str]:
    """The labels that clip_logits' columns stand for."""
    return [name for k, name in enumerate(labels) if k != background]
