"""The standard NTU evaluation splits, with the row order of the standard `get_indices`.

Rows are grouped by subject (or camera, or setup) in the order of the ID list, and keep the sorted
sample-name order inside a group; this is the row order of the community's npz files.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

NTU60_XSUB_TRAIN = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
NTU120_XSUB_TRAIN = NTU60_XSUB_TRAIN + (
    45,
    46,
    47,
    49,
    50,
    52,
    53,
    54,
    55,
    56,
    57,
    58,
    59,
    70,
    74,
    78,
    80,
    81,
    82,
    83,
    84,
    85,
    86,
    89,
    91,
    92,
    93,
    94,
    95,
    97,
    98,
    100,
    103,
)

# file stem -> (meta field, train ids, test ids); stems are the names CTR-GCN / MAMP configs read
NTU_PROTOCOLS: dict[str, dict[str, tuple[str, tuple[int, ...], tuple[int, ...]]]] = {
    "ntu60": {
        "NTU60_CS": (
            "performer",
            NTU60_XSUB_TRAIN,
            tuple(i for i in range(1, 41) if i not in NTU60_XSUB_TRAIN),
        ),
        "NTU60_CV": ("camera", (2, 3), (1,)),
    },
    "ntu120": {
        "NTU120_CSub": (
            "performer",
            NTU120_XSUB_TRAIN,
            tuple(i for i in range(1, 107) if i not in NTU120_XSUB_TRAIN),
        ),
        "NTU120_CSet": ("setup", tuple(range(2, 33, 2)), tuple(range(1, 33, 2))),
    },
}


def grouped_rows(values: Sequence[int], ids: Sequence[int]) -> np.ndarray:
    """Row indices whose value is in `ids`, grouped in the order of `ids`."""
    values = np.asarray(values)
    if len(ids) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.flatnonzero(values == i) for i in ids]).astype(np.int64)


def ntu_split_rows(
    meta: list[dict[str, int]], field: str, train_ids: Sequence[int], test_ids: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, test rows) for samples described by `parse_name` dicts."""
    values = [m[field] for m in meta]
    return grouped_rows(values, train_ids), grouped_rows(values, test_ids)
