"""`masksem evaluate --bundle DIR --data NPZ`: score an exported bundle on a prepared data set.

The bundle runs on the backend a robot would use (torch, ONNX Runtime fp32 or int8, through the
streaming recogniser's own model factory) on the same test-time clips as checkpoint evaluation
(centre crop at the bundle's crop ratio, resized to its clip length), and the run folder gets the same
results.json and confusion.png. So an export, and its int8 quantisation, can be checked on a test
split before it ships. A stream bundle that carries a segment classifier answers "which action was
this whole clip" with that classifier (as the recogniser answers for a whole running segment), so that
model is scored by default (`model="auto"`); `model="main"` scores the stream model's token mean.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from masksem_core.data.feeder import SkeletonClips
from masksem_core.runtime.bundle import load_bundle
from masksem_core.runtime.clip_scores import action_labels, background_index, clip_logits
from masksem_core.train.config import ExperimentConfig
from masksem_core.train.distributed import cleanup
from masksem_core.train.results import classification_metrics
from masksem_core.train.run_env import setup_run

BUNDLE_MODELS = ("auto", "main", "segment")


def bundle_clip_model(bundle: Any, backend: str, precision: str, which: str = "main") -> Any:
    """clips -> logits on `backend` at `precision`, made exactly as the streaming recogniser makes it:
    its main model, or (`which="segment"`) its segment classifier."""
    from masksem_core.runtime.recognizer import RecognizerSettings, StreamingRecognizer

    settings = RecognizerSettings(backend=backend, precision=precision, device="cpu")
    recognizer = StreamingRecognizer(bundle, settings)
    return recognizer.segment_model if which == "segment" else recognizer.model


def scored_model(bundle: Any, which: str) -> str:
    """ "main" or "segment": which of a bundle's models answers for whole clips (auto: the segment
    classifier when the bundle carries one)."""
    if which not in BUNDLE_MODELS:
        raise ValueError(f"bundle model {which!r}: use one of {', '.join(BUNDLE_MODELS)}")
    if which == "segment" and bundle.segment_model is None:
        raise ValueError("the bundle carries no segment classifier (export it with --segment-classifier)")
    if which == "auto":
        return "segment" if bundle.segment_model is not None else "main"
    return which


def evaluate_bundle(
    cfg: ExperimentConfig,
    bundle_path: str | Path,
    backend: str = "torch",
    precision: str = "fp32",
    model: str = "auto",
) -> dict[str, Any]:
    """Top-1/top-5/per-class/confusion of a bundle on cfg.data.path's test split, written to run.out_dir;
    `model` says which of its models is scored (see the module docstring)."""
    from masksem_core.train.baselines import chance_top1
    from masksem_core.train.classify import finish

    bundle = load_bundle(bundle_path)
    which = scored_model(bundle, model)
    if which == "segment":  # a whole-clip classifier of the actions: no background column
        net, background, labels = bundle.segment_model, None, bundle.action_labels
        clip_length, crop = bundle.segment_clip_length, bundle.segment_crop_ratio
    else:
        net, background = bundle.model, background_index(bundle.labels, bundle.meta)
        labels = action_labels(bundle.labels, background)
        clip_length, crop = bundle.clip_length, bundle.crop_ratio
    cfg = dataclasses.replace(cfg, model=net.cfg)  # config.json records the model evaluated
    if not cfg.data.path:
        raise ValueError("no data set: pass --data NPZ (a prepared .npz, see `masksem prepare`)")
    data = SkeletonClips(
        cfg.data.path,
        split=cfg.data.test_split,
        num_frames=clip_length,
        train=False,
        test_crop=crop,
        stream=cfg.data.stream,
    )
    if data.num_classes != len(labels):
        raise ValueError(
            f"{cfg.data.path} has {data.num_classes} classes, the bundle {bundle_path} scores {len(labels)} "
            f"actions ({', '.join(labels[:5])}{', ...' if len(labels) > 5 else ''})"
        )
    if data.layout.num_joints != bundle.layout.num_joints or data.num_persons != bundle.num_persons:
        raise ValueError(
            f"{cfg.data.path} holds {data.num_persons} x {data.layout.name} skeletons, the bundle expects "
            f"{bundle.num_persons} x {bundle.layout.name}"
        )
    env = setup_run(cfg)
    if which == "segment":
        print(f"scoring the bundle's segment classifier ({len(labels)} actions, whole clips)", flush=True)
    clip_model = bundle_clip_model(bundle, backend, precision, which)
    loader = DataLoader(data, batch_size=max(cfg.optim.batch_size, 64), shuffle=False)
    outs, truth = [], []
    with torch.inference_mode():
        for clips, y in loader:
            outs.append(clip_logits(clip_model(clips).float(), background))
            truth.append(y)
    logits = torch.cat(outs).numpy() if outs else np.zeros((0, len(labels)), dtype=np.float32)
    metrics = classification_metrics(logits, torch.cat(truth).numpy(), len(labels))
    metrics["baselines"] = {"chance_top1": chance_top1(len(labels))}  # the floor beside the number
    finish(
        env,
        "evaluate",
        metrics,
        labels,
        {"bundle": str(bundle_path), "backend": backend, "precision": precision, "bundle_model": which},
    )
    env.logger.close()
    cleanup(env.info)
    return metrics
