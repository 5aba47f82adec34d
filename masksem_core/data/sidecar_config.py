"""Training config from the prepared data: joints, layout, person slots and clip length from the sidecar.

A run on prepared data should not have to repeat what the data already says. `fill_from_sidecar` takes
the raw config mapping (YAML + `key=value` overrides, before defaults are applied) and, when
`data.path` has a sidecar, fills in `model.num_joints`, `model.layout`, `model.num_persons` (facts of
the data: a config that says otherwise is an error naming both values) and `model.num_frames` (a choice:
only filled when the config has none; the median valid length rounded down to a multiple of
`model.patch_len`, between 4 patches and the reference 120 frames).

Precedence: explicit config / overrides > pre-trained checkpoint (merged into the raw mapping before
this is called) > data sidecar > defaults.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from masksem_core.config import ConfigError

FACTS = (("num_joints", "num_joints"), ("layout", "layout"), ("num_persons", "num_persons"))
MAX_FRAMES = 120  # the reference clip length (MAMP/MaskSem on NTU)
DEFAULT_PATCH_LEN = 4


def suited_num_frames(valid_lengths: list[int], patch_len: int = DEFAULT_PATCH_LEN) -> int:
    """Median valid length, rounded down to a multiple of `patch_len`, within [4 patches, 120]."""
    if not valid_lengths:
        return MAX_FRAMES
    median = float(np.median(valid_lengths))
    frames = int(median // patch_len) * patch_len
    return int(min(max(frames, 4 * patch_len), MAX_FRAMES // patch_len * patch_len))


def fill_from_sidecar(raw: dict[str, Any], say: bool = True) -> dict[str, Any]:
    """`raw` with the model keys the data's sidecar decides filled in (a new mapping; see the docstring)."""
    from masksem_core.data.arrays import read_sidecar

    # Wrong-typed values are left as they are: the config's own validation (`from_dict`) names the field.
    path = raw["data"].get("path") if isinstance(raw.get("data"), dict) else None
    model_ok = isinstance(raw.get("model"), (dict, type(None)))
    if not isinstance(path, (str, os.PathLike)) or not path or not model_ok:
        return raw
    try:
        if not Path(path).is_file():
            return raw
    except (OSError, ValueError):  # e.g. a name too long for the file system: the data loader reports it
        return raw
    try:
        meta = read_sidecar(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"data.path {path}: cannot read its sidecar: {exc}") from None
    if not meta:
        return raw
    model = dict(raw.get("model") or {})
    taken = []
    for key, side_key in FACTS:
        if side_key not in meta:
            continue
        value = meta[side_key]
        if key in model and model[key] != value:
            raise ConfigError(
                f"model.{key}={model[key]!r} but the prepared data {path} has {side_key} {value!r} "
                f"(its sidecar); remove model.{key} from the config or use data with {model[key]!r}"
            )
        if key not in model:
            model[key] = value
            taken.append(f"model.{key}={value}")
    if "num_frames" not in model:
        lengths = [n for split in ("train", "test") for n in (meta.get(split) or {}).get("valid_lengths", [])]
        patch_len = model.get("patch_len", DEFAULT_PATCH_LEN)
        if lengths and type(patch_len) is int and patch_len > 0:  # else from_dict names model.patch_len
            model["num_frames"] = suited_num_frames(lengths, patch_len)
            taken.append(f"model.num_frames={model['num_frames']}")
    if taken and say:
        print(f"config from the data's sidecar ({path}): {', '.join(taken)}", file=sys.stderr)
    return {**raw, "model": model}
