"""Self-supervised pre-training protocol (`masksem pretrain`)."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from masksem_core.config import ConfigError
from masksem_core.model import MaskSemPretrainer
from masksem_core.train import checkpoint as ckpt
from masksem_core.train.config import ExperimentConfig
from masksem_core.train.distributed import cleanup
from masksem_core.train.engine import pretrain_epoch
from masksem_core.train.init_from import load_init
from masksem_core.train.loaders import EpochLoader, epoch_seed, make_dataset, seed_everything
from masksem_core.train.optim import build_optimizer
from masksem_core.train.results import write_json
from masksem_core.train.run_env import (
    announce,
    resume_run,
    save_periodic,
    setup_run,
    step_context,
    train_state,
    wrap_ddp,
)


def pretrain(cfg: ExperimentConfig, resume: bool = False) -> dict[str, Any]:
    if cfg.masking.strategy == "semantic" and cfg.masking.momentum == 1.0 and not cfg.run.init_from:
        raise ConfigError(
            "masking.momentum=1.0 keeps the teacher frozen where it starts: without run.init_from (a "
            "pre-trained checkpoint, e.g. MAMP's) that is a random network and its Grad-CAM means nothing"
        )
    env = setup_run(cfg)
    model = MaskSemPretrainer(cfg.model, cfg.masking, cfg.target).to(env.device)
    init_record = None
    if cfg.run.init_from:
        init_record, has_decoder = load_init(model, cfg.run.init_from)
        announce(
            env,
            f"initialised encoder{' and decoder' if has_decoder else ''} from {cfg.run.init_from} "
            f"({init_record['epochs_trained']} epochs, sha256 {init_record['sha256'][:12]}); "
            "teacher = the loaded encoder, fresh optimiser and schedule",
        )
    optimizer = build_optimizer(model, cfg.optim, cfg.model.depth)
    ctx = step_context(env, optimizer)
    start, extra = 0, {"best_loss": None}
    last, best = env.out / "last.pt", env.out / "best.pt"
    if resume and last.exists():
        start, extra = resume_run(env, last, model, optimizer, ctx.scaler)
        extra.setdefault("best_loss", None)
    if init_record:
        extra["init_from"] = init_record  # in every checkpoint of a continued run (and kept on resume)
    ddp = wrap_ddp(model, env)
    train = EpochLoader(
        make_dataset(cfg, cfg.data.train_split, train=True),
        cfg.optim.batch_size,
        True,
        True,
        cfg,
        env.info,
        env.device,
    )
    stats: dict[str, float] = {}
    t0 = time.time()
    for epoch in range(start, cfg.optim.epochs):
        if cfg.run.stop_after_epochs is not None and epoch >= cfg.run.stop_after_epochs:
            announce(env, f"stopping after epoch {epoch} (run.stop_after_epochs); continue with --resume")
            break
        seed_everything(epoch_seed(cfg.run.seed, epoch, env.info.rank))
        train.set_epoch(epoch)
        stats = pretrain_epoch(ddp, train, ctx, epoch)
        stats["elapsed_s"] = time.time() - t0
        env.logger.log(epoch, stats)
        if env.info.is_main:
            state = partial(train_state, "pretrain", model, optimizer, ctx.scaler, epoch, cfg, extra)
            if extra["best_loss"] is None or stats["loss"] < extra["best_loss"]:
                extra["best_loss"] = stats["loss"]  # best.pt: the lowest epoch-mean training loss
                ckpt.save_checkpoint(state(), best)
            save_periodic(env, state, epoch)
            stopping = cfg.run.stop_after_epochs is not None and epoch + 1 >= cfg.run.stop_after_epochs
            if (epoch + 1) % cfg.run.save_every == 0 or epoch + 1 == cfg.optim.epochs or stopping:
                ckpt.save_checkpoint(state(), last)
            announce(
                env,
                f"epoch {epoch + 1}/{cfg.optim.epochs} loss {stats['loss']:.4f} "
                f"mask {stats.get('mask_ratio', 0):.3f} motion masked/kept "
                f"{stats.get('motion_masked', 0):.4f}/{stats.get('motion_kept', 0):.4f}"
                + (
                    f" cam masked/kept {stats['cam_masked']:.3f}/{stats['cam_kept']:.3f}"
                    if "cam_masked" in stats
                    else ""
                ),
            )
    result = {
        "final_loss": stats.get("loss"),
        "epochs": cfg.optim.epochs,
        "wall_time_s": time.time() - t0,
        "last_epoch_stats": stats,
        "checkpoint": str(last),
        "best_checkpoint": str(best),
        "best_loss": extra["best_loss"],
        "init_from": extra.get("init_from"),
    }
    if start >= cfg.optim.epochs:
        announce(env, f"pretrain: {last} already holds all {cfg.optim.epochs} epochs; nothing to do")
    elif env.info.is_main:
        write_json(env.out / "results.json", result)
        announce(env, f"pretrain done: final loss {stats.get('loss', float('nan')):.4f} -> {last}")
    env.logger.close()
    del ddp  # its reducer holds the process group: release it so cleanup really tears the group down
    cleanup(env.info)
    return result
