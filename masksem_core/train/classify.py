"""Supervised protocols on a (pre-trained) encoder: linear probe, fine-tune, semi-supervised, evaluate."""

from __future__ import annotations

import copy
import functools
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, TensorDataset

from masksem_core.config import ConfigError, to_dict
from masksem_core.data.feeder import select_label_fraction
from masksem_core.data.stream import stream_metadata, stream_windows
from masksem_core.model import ActionClassifier
from masksem_core.train import baselines
from masksem_core.train import checkpoint as ckpt
from masksem_core.train.config import ExperimentConfig, OptimConfig
from masksem_core.train.distributed import cleanup
from masksem_core.train.engine import classify_epoch, knn_top1, predict
from masksem_core.train.loaders import EpochLoader, epoch_seed, make_dataset, seed_everything
from masksem_core.train.optim import build_optimizer
from masksem_core.train.results import classification_metrics, plot_confusion, write_json
from masksem_core.train.run_env import (
    RunEnv,
    announce,
    resume_run,
    save_periodic,
    setup_run,
    step_context,
    train_state,
    wrap_ddp,
)


def build_classifier(cfg: ExperimentConfig, num_classes: int, head: str) -> ActionClassifier:
    """A classifier whose encoder comes from run.pretrained (pre-training or classifier checkpoint).
    With streaming.enabled it is dense (per-token logits) and its last class is the background."""
    dense = cfg.streaming.enabled
    model = ActionClassifier(
        cfg.model, num_classes, head, cfg.run.head_dropout, dense=dense, background=dense,
        head_hidden=cfg.run.head_hidden, head_dropout_on=cfg.run.head_dropout_on,
        causal=dense and cfg.streaming.causal, dual=dense and cfg.streaming.dual,
    )
    if cfg.run.pretrained:
        payload = ckpt.load_checkpoint(cfg.run.pretrained)
        ckpt.load_state_strict(model.encoder, ckpt.encoder_state(payload), cfg.run.pretrained)
    return model


def classifier_payload(
    model: ActionClassifier, dataset: Any, cfg: ExperimentConfig, epoch: int, metrics: dict[str, Any]
) -> dict[str, Any]:
    """The deployable checkpoint (docs/INTERFACES.md) that `masksem export` turns into a bundle."""
    from masksem_core.layouts import get_layout

    layout = get_layout(cfg.model.layout)
    stream = stream_metadata(dataset)
    return {
        **{k: v for k, v in stream.items() if k != "fps"},
        "kind": "classifier",
        "model": model.state_dict(),
        "model_config": to_dict(cfg.model),
        "num_classes": model.num_classes,
        "head": model.head_kind,
        "head_hidden": model.head_hidden,
        "causal": model.causal,
        "dual": model.dual,
        "labels": list(_labels(dataset)),
        "layout": layout.name,
        "epoch": epoch,
        "config": to_dict(cfg),
        "data": {
            "clip_length": cfg.model.num_frames,
            "fps": getattr(dataset, "fps", None),  # None (unknown): `masksem export` asks for --fps
            "centre_joint": layout.centre_joint,
        },
        "metrics": {k: v for k, v in metrics.items() if k in ("top1", "top5", "knn_top1", "baselines")},
    }


def _labels(dataset: Any) -> list[str]:
    labels = getattr(dataset, "labels", None)
    return list(labels) if labels else [f"class_{i}" for i in range(dataset.num_classes)]


def finish(
    env: RunEnv, name: str, metrics: dict[str, Any], labels: list[str], extra: dict | None = None
) -> None:
    """results.json + confusion PNG, and the headline as the last printed line."""
    if not env.info.is_main:
        return
    labels = labels[: len(metrics["confusion_matrix"])]  # a background class is not an answer offline
    result = {"protocol": name, **metrics, "labels": labels, **(extra or {})}
    write_json(env.out / "results.json", result)
    plot_confusion(
        metrics["confusion_matrix"],
        labels,
        env.out / "confusion.png",
        f"{name}: top-1 {metrics['top1']:.2f}%",
    )
    knn = f", kNN-{env.cfg.probe.knn_k} {metrics['knn_top1']:.2f}%" if "knn_top1" in metrics else ""
    floors = f" {baselines.describe(metrics['baselines'])}" if metrics.get("baselines") else ""
    announce(
        env,
        f"{name} top-1 {metrics['top1']:.2f}% top-5 {metrics['top5']:.2f}%{knn} "
        f"on {metrics['num_samples']} test clips{floors}",
    )


def _eval_loader(cfg: ExperimentConfig, ds: Any) -> DataLoader:
    return DataLoader(
        ds, batch_size=max(cfg.optim.batch_size, 64), shuffle=False, num_workers=cfg.data.workers
    )


def _test_loader(cfg: ExperimentConfig) -> DataLoader:
    return _eval_loader(cfg, make_dataset(cfg, cfg.data.test_split, train=False))


# ------------------------------------------------------------------------------------------- linear probe
def linprobe(cfg: ExperimentConfig) -> dict[str, Any]:
    env = setup_run(cfg)
    train_ds = make_dataset(cfg, cfg.data.train_split, train=True, label_fraction=cfg.data.label_fraction)
    _warn_if_from_scratch(env, "linprobe")
    model = build_classifier(cfg, train_ds.num_classes, "linear").to(env.device)
    model.encoder.requires_grad_(False)
    t0 = time.time()
    if cfg.probe.cache_features:
        metrics = _probe_cached(env, model, train_ds)
    else:
        metrics = _train_supervised(env, model, train_ds, frozen_encoder=True)
    metrics["wall_time_s"] = time.time() - t0
    metrics["baselines"] = _probe_baselines(env, train_ds, metrics)
    if env.info.is_main:
        ckpt.save_checkpoint(
            classifier_payload(model, train_ds, cfg, cfg.optim.epochs - 1, metrics), env.out / "classifier.pt"
        )
    finish(env, "linprobe", metrics, _labels(train_ds), _provenance(cfg))
    env.logger.close()
    cleanup(env.info)
    return metrics


def _probe_cached(env: RunEnv, model: ActionClassifier, train_ds: Any, log: bool = True) -> dict[str, Any]:
    """Extract frozen features once, train BN+Linear on them with SGD and a cosine schedule."""
    cfg = env.cfg
    eval_train = make_dataset(cfg, cfg.data.train_split, train=False, label_fraction=cfg.data.label_fraction)
    views = [
        predict(model, DataLoader(eval_train, batch_size=128), env.device, cfg.run.precision, features=True)
    ]
    for v in range(1, cfg.probe.train_views):
        seed_everything(epoch_seed(cfg.run.seed, 10_000 + v))
        views.append(
            predict(model, DataLoader(train_ds, batch_size=128), env.device, cfg.run.precision, features=True)
        )
    train_x = torch.from_numpy(np.concatenate([x for x, _ in views]))
    train_y = torch.from_numpy(np.concatenate([y for _, y in views])).long()
    test_x, test_y = predict(model, _test_loader(cfg), env.device, cfg.run.precision, features=True)
    knn = knn_top1(views[0][0], views[0][1], test_x, test_y, cfg.probe.knn_k)
    head = model.head.to(env.device)
    initial = copy.deepcopy(head.state_dict())
    lr, val_top1, at_edge = cfg.optim.lr, {}, False
    if cfg.probe.lr_grid:
        clips = len(views[0][1])
        val = np.zeros(clips, dtype=bool)
        val[select_label_fraction(views[0][1], cfg.probe.val_fraction, cfg.run.seed)] = True
        fit = torch.from_numpy(np.tile(~val, len(views)))  # every view of the fitting clips
        val_x = torch.from_numpy(views[0][0][val])

        def score(candidate: float) -> float:
            head.load_state_dict(initial)
            _fit_probe_head(env, head, train_x[fit], train_y[fit], candidate, log=False)
            logits = _probe_logits(head, val_x, env.device)
            return float((logits.argmax(1) == views[0][1][val]).mean() * 100)

        lr, val_top1, at_edge = search_lr(score, cfg.probe.lr_grid, cfg.probe.lr_widen)
        edge = f" (still the edge of the grid after {cfg.probe.lr_widen} widenings)" if at_edge else ""
        announce(env, "probe lr on held-out training clips: " + ", ".join(
            f"{c:g} -> {a:.1f}%" for c, a in sorted(val_top1.items())) + f"; chose {lr:g}{edge}")  # fmt: skip
        head.load_state_dict(initial)
    _fit_probe_head(env, head, train_x, train_y, lr, log=log)
    metrics = classification_metrics(_probe_logits(head, torch.from_numpy(test_x), env.device), test_y,
                                     model.num_classes)  # fmt: skip
    metrics["knn_top1"] = knn
    metrics["probe_lr"] = lr
    if val_top1:
        metrics["probe_val_top1"] = {f"{c:g}": a for c, a in sorted(val_top1.items())}
        metrics["probe_lr_at_edge"] = at_edge
    return metrics


def search_lr(
    score: Callable[[float], float], grid: list[float], widen: int
) -> tuple[float, dict[float, float], bool]:
    """Best lr of `grid` by `score` (ties: the smaller); while the best is the largest or smallest rate
    tried, extend on that side by the grid's end step (at most x3), at most `widen` times. Returns the
    lr, every score, and whether the best is still at an edge."""
    scores = {c: score(c) for c in sorted(set(grid))}
    for _ in range(widen + 1):
        tried = sorted(scores)
        best = max(tried, key=lambda c: (scores[c], -c))
        if len(tried) > 1 and tried[0] < best < tried[-1]:
            return best, scores, False
        if _ == widen:
            break
        hi = min(tried[-1] / tried[-2], 3.0) if len(tried) > 1 else 3.0
        lo = min(tried[1] / tried[0], 3.0) if len(tried) > 1 else 3.0
        if best == tried[-1]:
            wider = float(f"{best * hi:.3g}")
            scores[wider] = score(wider)
        if best == tried[0]:
            narrower = float(f"{best / lo:.3g}")
            scores[narrower] = score(narrower)
    return best, scores, True


class _HeadOnly(torch.nn.Module):
    """The probe head as a module of features, for the shared classification epoch."""

    def __init__(self, head: torch.nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.head(f, f)


def _fit_probe_head(
    env: RunEnv, head: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, lr: float, log: bool
) -> None:
    """SGD (optim.*) with a cosine schedule from `lr` on cached features, optim.epochs epochs."""
    cfg = env.cfg
    optimizer = build_optimizer(head, cfg.optim, cfg.model.depth)
    ctx = step_context(env, optimizer, lr=lr)
    loader = DataLoader(
        TensorDataset(x, y),
        batch_size=cfg.optim.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(cfg.run.seed),
    )
    wrapper = _HeadOnly(head)
    for epoch in range(cfg.optim.epochs):
        seed_everything(epoch_seed(cfg.run.seed, epoch))
        stats = classify_epoch(wrapper, loader, ctx, epoch)
        if log:
            env.logger.log(epoch, stats)


def _probe_logits(head: torch.nn.Module, x: torch.Tensor, device: torch.device) -> np.ndarray:
    head.eval()
    with torch.no_grad():
        logits = head(x.to(device), None).float().cpu().numpy()
    head.train()
    return logits


def _probe_baselines(env: RunEnv, train_ds: Any, metrics: dict[str, Any]) -> dict[str, Any]:
    """Chance and the same probe on a random-init encoder of the same architecture (run.seed)."""
    cfg = env.cfg
    out: dict[str, Any] = {"chance_top1": baselines.chance_top1(train_ds.num_classes)}
    if not cfg.run.pretrained:
        out.update(random_init_top1=metrics["top1"], random_init_knn_top1=metrics.get("knn_top1"),
                   random_init_note="this run is the random-init encoder")  # fmt: skip
    elif cfg.probe.cache_features and cfg.probe.random_init_baseline:
        announce(env, "floor: the same probe on a random-init encoder of the same architecture")
        seed_everything(epoch_seed(cfg.run.seed, -1, env.info.rank))  # as setup_run seeds a from-scratch init
        scratch = ActionClassifier(cfg.model, train_ds.num_classes, "linear", cfg.run.head_dropout)
        scratch = scratch.to(env.device)
        scratch.encoder.requires_grad_(False)
        floor = _probe_cached(env, scratch, train_ds, log=False)
        out.update(random_init_top1=floor["top1"], random_init_knn_top1=floor["knn_top1"],
                   random_init_probe_lr=floor["probe_lr"])  # fmt: skip
    else:
        out["random_init_top1"] = None
        out["random_init_note"] = "probe.random_init_baseline is off (or probe.cache_features)"
    return out


def _finetune_baselines(env: RunEnv, num_classes: int, metrics: dict[str, Any]) -> dict[str, Any]:
    """Chance and the from-scratch floor of this protocol: recorded by this run when it is from
    scratch, else read from the cache of earlier from-scratch runs (train/baselines.py)."""
    cfg = env.cfg
    out: dict[str, Any] = {"chance_top1": baselines.chance_top1(num_classes)}
    if not cfg.run.pretrained and env.info.is_main:
        baselines.record_random_init(cfg, "finetune", metrics["top1"], env.out / "results.json")
    cached = baselines.cached_random_init(cfg, "finetune")
    if cached is None:
        out["random_init_top1"] = None
        out["random_init_note"] = (
            f"no from-scratch run of this protocol recorded in {baselines.baselines_dir(cfg)}: run the same "
            "command without --pretrained (run.pretrained=null)"
        )
    else:
        out.update(random_init_top1=cached["top1"], random_init_top1_std=cached["top1_std"],
                   random_init_seeds=cached["seeds"], random_init_source=cached["source"])  # fmt: skip
    return out


def _warn_if_from_scratch(env: RunEnv, command: str) -> None:
    if not env.cfg.run.pretrained:
        text = (
            f"masksem {command}: WARNING: no pre-trained encoder (--pretrained / run.pretrained unset): "
            "training from scratch, random-init encoder; results.json records from_scratch: true"
        )
        if env.info.is_main:
            print(text, file=sys.stderr, flush=True)


def _provenance(cfg: ExperimentConfig) -> dict[str, Any]:
    return {"pretrained": cfg.run.pretrained, "from_scratch": not cfg.run.pretrained}


# ---------------------------------------------------------------------------------------------- fine-tune
def finetune(cfg: ExperimentConfig, resume: bool = False) -> dict[str, Any]:
    """Fine-tune; with data.label_fraction and run.semi_draws > 1, repeat over seeded label draws."""
    if cfg.run.semi_draws <= 1:
        return _finetune_once(cfg, resume)
    import copy

    draws = []
    for d in range(cfg.run.semi_draws):
        sub = copy.deepcopy(cfg)
        sub.data.label_seed = cfg.data.label_seed + d
        sub.run.out_dir = str(Path(cfg.run.out_dir) / f"draw{d}")
        sub.run.semi_draws = 1
        draws.append(_finetune_once(sub, resume))
    top1 = np.array([m["top1"] for m in draws])
    summary = {
        "protocol": "semi-supervised finetune",
        "label_fraction": cfg.data.label_fraction,
        "draws": len(draws),
        "top1_per_draw": top1.tolist(),
        "top1_mean": float(top1.mean()),
        "top1_std": float(top1.std(ddof=1)) if len(top1) > 1 else 0.0,
    }
    write_json(Path(cfg.run.out_dir) / "results.json", summary)
    print(
        f"semi-supervised ({cfg.data.label_fraction:.0%} labels, {len(draws)} draws) top-1 "
        f"{summary['top1_mean']:.2f} ± {summary['top1_std']:.2f}%",
        flush=True,
    )
    return summary


def _finetune_once(cfg: ExperimentConfig, resume: bool) -> dict[str, Any]:
    env = setup_run(cfg)
    train_ds = make_dataset(cfg, cfg.data.train_split, train=True, label_fraction=cfg.data.label_fraction)
    if cfg.streaming.enabled:  # stream-like windows with a background class (masksem_core.data.stream)
        train_ds = stream_windows(train_ds, cfg.streaming, cfg.model.patch_len)
    _warn_if_from_scratch(env, "finetune")
    model = build_classifier(cfg, train_ds.num_classes, cfg.run.head).to(env.device)
    t0 = time.time()
    metrics = _train_supervised(env, model, train_ds, frozen_encoder=False, resume=resume)
    metrics["wall_time_s"] = time.time() - t0
    actions = model.num_classes - int(model.background)  # a background class is no answer offline
    metrics["baselines"] = _finetune_baselines(env, actions, metrics)
    finish(
        env,
        "finetune",
        metrics,
        _labels(train_ds),
        {**_provenance(cfg), "label_fraction": cfg.data.label_fraction},
    )
    env.logger.close()
    cleanup(env.info)
    return metrics


def _train_supervised(
    env: RunEnv, model: ActionClassifier, train_ds: Any, frozen_encoder: bool, resume: bool = False
) -> dict[str, Any]:
    """Epoch loop with periodic evaluation, final and best classifier checkpoints and exact resume.

    The periodic evaluation (and so best_classifier.pt) uses the held-out training clips when
    data.val_fraction or data.val_names is set, else the test split; the reported top-1 and
    classifier.pt are always the last epoch's, so no number in results.json is chosen on the test
    split. With a weight average (optim.average_epochs / average_fraction / ema_decay) the raw and the
    averaged weights are both scored at the end; the held-out clips choose which one is kept.
    """
    cfg = env.cfg
    train_ds, val_ds = _hold_out(cfg, train_ds)
    optimizer = build_optimizer(model, cfg.optim, cfg.model.depth)
    ctx = step_context(env, optimizer)
    last, best_path = env.out / "last.pt", env.out / "best_classifier.pt"
    train = EpochLoader(train_ds, cfg.optim.batch_size, True, True, cfg, env.info, env.device)
    cap = cfg.run.max_steps_per_epoch
    steps = len(train) if cap is None else min(len(train), cap)
    ema, averaging = weight_average(model, cfg.optim, steps)
    scored = ema.module if ema is not None else model  # the weights evaluated periodically
    start, extra = 0, {"best_top1": -1.0}
    if resume and last.exists():
        start, extra = resume_run(env, last, model, optimizer, ctx.scaler, ema)
    ddp = wrap_ddp(model, env)
    test = _test_loader(cfg)
    held_name, held = ("val", _eval_loader(cfg, val_ds)) if val_ds is not None else ("test", test)
    metrics: dict[str, Any] = {}
    for epoch in range(start, cfg.optim.epochs):
        if cfg.run.stop_after_epochs is not None and epoch >= cfg.run.stop_after_epochs:
            announce(env, f"stopping after epoch {epoch} (run.stop_after_epochs); continue with --resume")
            break
        seed_everything(epoch_seed(cfg.run.seed, epoch, env.info.rank))
        train.set_epoch(epoch)
        if frozen_encoder:
            model.encoder.eval()
        stats = classify_epoch(ddp, train, ctx, epoch, cfg.optim.label_smoothing, ema)
        final = epoch + 1 == cfg.optim.epochs
        if final or (epoch + 1) % cfg.run.eval_every == 0:
            metrics = _score(scored, held, env, model.num_classes)
            stats[f"{held_name}_top1"] = metrics["top1"]
            if ema is not None:
                stats[f"{held_name}_top1_raw"] = _score(model, held, env, model.num_classes)["top1"]
            if env.info.is_main and metrics["top1"] > extra["best_top1"]:
                extra["best_top1"] = metrics["top1"]
                ckpt.save_checkpoint(classifier_payload(scored, train_ds, cfg, epoch, metrics), best_path)
        env.logger.log(epoch, stats)
        stopping = cfg.run.stop_after_epochs is not None and epoch + 1 >= cfg.run.stop_after_epochs
        state = functools.partial(
            train_state, "classifier-train", model, optimizer, ctx.scaler, epoch, cfg, extra, ema
        )
        save_periodic(env, state, epoch)
        if env.info.is_main and ((epoch + 1) % cfg.run.save_every == 0 or final or stopping):
            ckpt.save_checkpoint(state(), last)
        if final:
            val = _eval_loader(cfg, val_ds) if val_ds is not None else None
            kept, metrics = _choose_weights(env, model, ema, val, test, averaging)
            if env.info.is_main:
                payload = classifier_payload(kept, train_ds, cfg, epoch, metrics)
                ckpt.save_checkpoint(payload, env.out / "classifier.pt")
    metrics["best_top1"] = extra["best_top1"]
    metrics["best_on"] = held_name
    return metrics


def _choose_weights(
    env: RunEnv,
    model: ActionClassifier,
    ema: AveragedModel | None,
    val: DataLoader | None,
    test: DataLoader,
    averaging: dict[str, Any],
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Score the raw and the averaged weights on the test split (both reported) and on the held-out
    clips, which alone choose the weights kept (ties: averaged). Without held-out clips nothing can
    choose: the averaged weights are kept, and results.json says that no choice was made."""
    candidates = {"raw": model} if ema is None else {"raw": model, "averaged": ema.module}
    k = model.num_classes
    tests = {name: _score(m, test, env, k) for name, m in candidates.items()}
    vals = {name: _score(m, val, env, k)["top1"] for name, m in candidates.items()} if val is not None else {}
    if ema is None:
        chosen, how = "raw", "no weight average"
    elif vals:
        chosen = "averaged" if vals["averaged"] >= vals["raw"] else "raw"
        how = "held-out training clips (data.val_fraction / data.val_names)"
    else:
        chosen, how = "averaged", "not chosen: no held-out clips (set data.val_fraction or data.val_names)"
    metrics = dict(tests[chosen])
    if vals:
        metrics["val_top1"] = vals[chosen]
    metrics["weights"] = {
        "chosen": chosen,
        "chosen_on": how,
        "val_top1": vals or None,
        "test_top1": {name: m["top1"] for name, m in tests.items()},
        "average": averaging or None,
    }
    if ema is not None:
        scores = ", ".join(
            (f"{n} val {vals[n]:.2f}% / " if vals else f"{n} ") + f"test {tests[n]['top1']:.2f}%"
            for n in candidates
        )
        announce(env, f"weights: {scores}; kept {chosen} ({how})")
    return candidates[chosen], metrics


def _hold_out(cfg: ExperimentConfig, train_ds: Any) -> tuple[Any, Any | None]:
    """(clips to fit, held-out clips) of the training split: data.val_fraction of each class (run.seed),
    or the clips named like data.val_names."""
    d = cfg.data
    if d.val_fraction is None and d.val_names is None:
        return train_ds, None
    held = np.zeros(len(train_ds), dtype=bool)
    if d.val_names is not None:
        pattern = re.compile(d.val_names)
        held[:] = [bool(pattern.search(train_ds.names[i])) for i in train_ds.indices]
        if held.all() or not held.any():
            raise ConfigError(
                f"data.val_names {d.val_names!r} matches {held.sum()} of the {len(held)} training clips "
                f"(e.g. {train_ds.names[train_ds.indices[0]]!r}); it must hold out some, not all"
            )
    else:
        held[select_label_fraction(train_ds.targets, d.val_fraction, cfg.run.seed)] = True
    val_ds = make_dataset(cfg, cfg.data.train_split, train=False, label_fraction=cfg.data.label_fraction)
    return train_ds.subset(np.flatnonzero(~held)), val_ds.subset(np.flatnonzero(held))


def weight_average(
    model: torch.nn.Module, optim: OptimConfig, steps_per_epoch: int
) -> tuple[AveragedModel | None, dict[str, Any]]:
    """The weight average optim.* asks for (torch AveragedModel over parameters and buffers) and a
    description for results.json; (None, {}) when none is set."""
    if optim.ema_decay is not None:
        avg = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(optim.ema_decay), use_buffers=True)
        horizon = 1.0 / (1.0 - optim.ema_decay)
        return avg, {"kind": "ema per step (legacy, no warm-up)", "decay": optim.ema_decay,
                     "horizon_epochs": horizon / max(steps_per_epoch, 1)}  # fmt: skip
    if optim.average_epochs is None and optim.average_fraction is None:
        return None, {}
    epochs = optim.average_epochs
    if epochs is None:
        epochs = optim.average_fraction * optim.epochs
    horizon = max(1.0, epochs * steps_per_epoch)
    avg = AveragedModel(model, multi_avg_fn=functools.partial(warm_ema, rate=1.0 / horizon), use_buffers=True)
    return avg, {"kind": "ema with warm-up", "horizon_epochs": epochs, "horizon_steps": horizon,
                 "decay": 1.0 - 1.0 / horizon}  # fmt: skip


@torch.no_grad()
def warm_ema(
    averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged: torch.Tensor, rate: float
) -> None:
    """One averaging step, in place (AveragedModel's multi_avg_fn): a plain running mean while fewer
    than 1/rate steps are in (the warm-up, which also removes the pull towards the first weights), then
    an EMA of weight `rate` per step."""
    weight = max(rate, 1.0 / (float(num_averaged) + 1.0))  # one host sync per step and device
    if torch.is_floating_point(averaged[0]):
        torch._foreach_lerp_(averaged, current, weight)
    else:
        for a, c in zip(averaged, current, strict=True):
            a.copy_(a + (c - a) * weight)


def _score(model: torch.nn.Module, loader: DataLoader, env: RunEnv, num_classes: int) -> dict[str, Any]:
    logits, labels = predict(model, loader, env.device, env.cfg.run.precision)
    return classification_metrics(logits, labels, logits.shape[1])  # without a background column


# ----------------------------------------------------------------------------------------------- evaluate
def evaluate(cfg: ExperimentConfig, checkpoint: str) -> dict[str, Any]:
    env = setup_run(cfg)
    model, meta = ckpt.load_classifier(checkpoint)
    model.to(env.device)
    loader = _test_loader(cfg)
    metrics = _score(model, loader, env, model.num_classes)
    trained = meta.get("metrics") or {}
    metrics["baselines"] = {
        **(trained.get("baselines") or {}),
        "chance_top1": baselines.chance_top1(model.num_classes),
    }
    finish(
        env,
        "evaluate",
        metrics,
        list(meta.get("labels") or _labels(loader.dataset)),
        {"checkpoint": checkpoint, "training_top1": trained.get("top1")},
    )
    cleanup(env.info)
    return metrics
