"""Person slots: fold (N, C, T, V, M) clips into sequences and skip the all-zero (absent) slots.

The reference encodes empty slots too, which in NTU is about 40% of all sequences; here they are
never encoded, never in the loss and never pooled, so results are the same as if they did not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class PresentSequences:
    """The present person sequences of a batch and how to map them back to clips."""

    seqs: torch.Tensor  # (P, C, T, V)
    present: torch.Tensor  # (N, M) bool
    clip_index: torch.Tensor  # (P,) long: clip of each sequence
    flat_index: torch.Tensor  # (P,) long: index into the N*M folded slots
    persons_per_clip: torch.Tensor  # (N,) float, >= 1

    @property
    def num_clips(self) -> int:
        return self.present.shape[0]

    def pool(self, per_seq: torch.Tensor) -> torch.Tensor:
        """Mean over each clip's present persons: (P, ...) -> (N, ...)."""
        n = self.num_clips
        out = per_seq.new_zeros((n,) + per_seq.shape[1:])
        out.index_add_(0, self.clip_index, per_seq)
        shape = (n,) + (1,) * (per_seq.ndim - 1)
        return out / self.persons_per_clip.to(per_seq.dtype).view(shape)


def person_present(x: torch.Tensor) -> torch.Tensor:
    """(N, C, T, V, M) -> (N, M) bool: a slot is present when any value is non-zero.

    A clip with no present slot at all keeps slot 0 (an all-zero person) so every clip has a feature.
    """
    present = x.abs().amax(dim=(1, 2, 3)) > 0
    empty = ~present.any(dim=1)
    if bool(empty.any()):
        present = present.clone()
        present[empty, 0] = True
    return present


def select_present(x: torch.Tensor) -> PresentSequences:
    """Fold persons into the batch and keep only present sequences."""
    n, c, t, v, m = x.shape
    present = person_present(x)
    folded = x.permute(0, 4, 1, 2, 3).reshape(n * m, c, t, v)
    flat_index = present.reshape(-1).nonzero(as_tuple=True)[0]
    return PresentSequences(
        seqs=folded.index_select(0, flat_index),
        present=present,
        clip_index=torch.div(flat_index, m, rounding_mode="floor"),
        flat_index=flat_index,
        persons_per_clip=present.sum(dim=1).clamp(min=1).float(),
    )
