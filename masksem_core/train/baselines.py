"""Floors beside every headline: chance, and the same protocol on a random-init encoder.

A pre-training result only means something next to what the same protocol gets without pre-training.
The linear probe computes that floor alongside (a random-init encoder of the same architecture, probed
the same way: seconds on cached features). Fine-tuning is too costly to run twice, so its floor is
cached per config: a from-scratch run (no run.pretrained) records its top-1 under a key of every setting
that shapes the protocol (model, data, optim, head; not seeds, paths or devices), in
`run.baselines_dir` (default: `baselines/` beside the run folder), and every later run of the same
protocol with a pre-trained encoder reports the recorded seeds' mean and spread.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from masksem_core.config import to_dict
from masksem_core.train.checkpoint import atomic_write_bytes
from masksem_core.train.config import ExperimentConfig
from masksem_core.train.resolve import ENCODER_FIELDS


def chance_top1(num_classes: int) -> float:
    """Top-1 of a uniform guess over the classes."""
    return 100.0 / max(num_classes, 1)


def protocol_key(cfg: ExperimentConfig, protocol: str) -> str:
    """A digest of the settings that decide a protocol's score, so only like runs share a floor."""
    c = to_dict(cfg)
    shaping = {
        "protocol": protocol,
        "model": {k: v for k, v in c["model"].items() if k in (*ENCODER_FIELDS, "drop_path")},
        "data": {k: v for k, v in c["data"].items() if k not in ("workers", "pin_memory")},
        "optim": c["optim"],
        "probe": c["probe"] if protocol == "linprobe" else None,
        "run": {k: c["run"][k] for k in ("head", "head_dropout", "max_steps_per_epoch", "precision")},
    }
    shaping["data"]["path"] = str(Path(shaping["data"]["path"]).resolve()) if c["data"]["path"] else ""
    text = json.dumps(shaping, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def baselines_dir(cfg: ExperimentConfig) -> Path:
    return Path(cfg.run.baselines_dir or Path(cfg.run.out_dir).parent / "baselines")


def record_random_init(cfg: ExperimentConfig, protocol: str, top1: float, results: Path) -> Path:
    """Add a from-scratch run's top-1 (per seed) to the cache of its protocol."""
    path = baselines_dir(cfg) / f"{protocol}_{protocol_key(cfg, protocol)}.json"
    entry: dict[str, Any] = {"protocol": protocol, "data": cfg.data.path, "seeds": {}}
    if path.is_file():
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            pass  # a damaged cache entry is rebuilt from this run on
    entry.setdefault("seeds", {})[str(cfg.run.seed)] = {"top1": top1, "results": str(results)}
    atomic_write_bytes(path, (json.dumps(entry, indent=2) + "\n").encode())
    return path


def cached_random_init(cfg: ExperimentConfig, protocol: str) -> dict[str, Any] | None:
    """The recorded from-scratch floor of this protocol: mean, spread and seeds; None if never run."""
    path = baselines_dir(cfg) / f"{protocol}_{protocol_key(cfg, protocol)}.json"
    try:
        seeds = json.loads(path.read_text())["seeds"]
        top1 = np.array([float(s["top1"]) for s in seeds.values()])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not len(top1):
        return None
    return {
        "top1": float(top1.mean()),
        "top1_std": float(top1.std(ddof=1)) if len(top1) > 1 else None,
        "seeds": sorted(int(s) for s in seeds),
        "source": str(path),
    }


def describe(baselines: dict[str, Any]) -> str:
    """The floors as the headline's bracket: '(random-init encoder, same protocol 44.5%; chance 10.0%)'."""
    parts = []
    r = baselines.get("random_init_top1")
    if r is not None:
        spread = baselines.get("random_init_top1_std")
        n = len(baselines.get("random_init_seeds") or [])
        extra = f" ± {spread:.2f}" if spread is not None else ""
        extra += f", {n} seeds" if n > 1 else ""
        parts.append(f"random-init encoder, same protocol {r:.2f}%{extra}")
    else:
        parts.append("random-init floor not known: see results.json baselines")
    parts.append(f"chance {baselines['chance_top1']:.2f}%")
    return "(" + "; ".join(parts) + ")"
