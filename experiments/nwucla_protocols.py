"""The NW-UCLA experiment table (issues 4 and 10): same-budget pre-training variants, each linear-probed
(+ kNN) and fine-tuned, a random-init floor and a supervised-from-scratch baseline.

Every run is a plain `masksem` command (printed, and written into the table), so any row can be
reproduced alone. Results land in OUT/<row>/..., the table in OUT/table.md and OUT/table.json.

    python experiments/nwucla_protocols.py --data data/nw-ucla/NW-UCLA.npz --out runs/nwucla_table \
        --pretrain-epochs 20 --finetune-epochs 20 --seeds 0
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

# name -> pre-training overrides (None: no pre-training)
VARIANTS: dict[str, list[str] | None] = {
    "random_init": None,
    "mae_random_velocity": ["masking.strategy=random", "target.kind=velocity"],
    "mamp_motion_velocity": ["masking.strategy=motion", "target.kind=velocity"],
    "masksem_semantic_hybrid": ["masking.strategy=semantic", "target.kind=hybrid"],
    "semantic_velocity": ["masking.strategy=semantic", "target.kind=velocity"],
    "motion_hybrid": ["masking.strategy=motion", "target.kind=hybrid"],
}


def masksem(args: list[str], log: Path) -> float:
    """Run one masksem command, tee its output to `log`; returns wall seconds."""
    cmd = [sys.executable, "-m", "masksem_core.cli", *args]
    print("$ masksem " + " ".join(shlex.quote(a) for a in args), flush=True)
    t0 = time.time()
    with log.open("w") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"command failed ({proc.returncode}); see {log}")
    return time.time() - t0


def run_row(
    name: str,
    overrides: list[str] | None,
    seed: int,
    a: argparse.Namespace,
    common: list[str],
    pretrain_extra: list[str] | None = None,
    finetune_extra: list[str] | None = None,
    pretrained: Path | None = None,
) -> dict:
    """Pre-train (unless `overrides` is None), probe, fine-tune one row; cached in OUT/<row>_s<seed>/row.json.

    `pretrained` (with overrides None): probe / fine-tune this checkpoint instead of a new pre-training.
    """
    row_dir = Path(a.out) / f"{name}_s{seed}"
    row_dir.mkdir(parents=True, exist_ok=True)
    done = row_dir / "row.json"
    if done.exists():
        return json.loads(done.read_text())
    row: dict = {"name": name, "seed": seed, "commands": []}
    seed_args = [f"run.seed={seed}", f"data.path={a.data}", *common]
    if overrides is not None:
        args = [
            "pretrain",
            "--config",
            "nwucla_pretrain",
            *seed_args,
            *overrides,
            *a.extra,
            f"optim.epochs={a.pretrain_epochs}",
            f"optim.warmup_epochs={max(1, a.pretrain_epochs // 10)}",
            f"run.out_dir={row_dir / 'pretrain'}",
            *(pretrain_extra or []),
        ]
        row["pretrain_s"] = masksem(args, row_dir / "pretrain.log")
        row["commands"].append("masksem " + shlex.join(args))
        pretrained = row_dir / "pretrain" / "last.pt"
        pre_res = json.loads((row_dir / "pretrain" / "results.json").read_text())
        stats = pre_res["last_epoch_stats"]
        if pre_res.get("init_from"):
            row["init_from"] = {k: pre_res["init_from"][k] for k in ("path", "sha256", "epochs_trained")}
        row["mask_stats"] = {k: v for k, v in stats.items() if k.startswith(("cam_", "motion_", "mask_"))}
    probe = [
        "linprobe",
        "--config",
        "nwucla_linprobe",
        *seed_args,
        *a.extra,
        f"run.out_dir={row_dir / 'linprobe'}",
        f"run.pretrained={pretrained}" if pretrained else "run.pretrained=null",
    ]
    row["linprobe_s"] = masksem(probe, row_dir / "linprobe.log")
    row["commands"].append("masksem " + shlex.join(probe))
    res = json.loads((row_dir / "linprobe" / "results.json").read_text())
    row["linear_top1"], row["knn_top1"] = res["top1"], res["knn_top1"]
    if a.finetune_epochs > 0 and name in a.finetune:
        ft = [
            "finetune",
            "--config",
            "nwucla_finetune",
            *seed_args,
            *a.extra,
            *a.finetune_extra,
            *(finetune_extra or []),
            f"optim.epochs={a.finetune_epochs}",
            f"run.out_dir={row_dir / 'finetune'}",
            f"run.pretrained={pretrained}" if pretrained else "run.pretrained=null",
        ]
        row["finetune_s"] = masksem(ft, row_dir / "finetune.log")
        row["commands"].append("masksem " + shlex.join(ft))
        fres = json.loads((row_dir / "finetune" / "results.json").read_text())
        row["finetune_top1"], row["finetune_best_top1"] = fres["top1"], fres["best_top1"]
    done.write_text(json.dumps(row, indent=2))
    return row


def stat(vals: list[float], digits: int = 1) -> str:
    """'mean ± std' (sample std) of a row's seeds; one value alone; '–' for none."""
    if not vals:
        return "–"
    if len(vals) == 1:
        return f"{vals[0]:.{digits}f}"
    return f"{np.mean(vals):.{digits}f} ± {np.std(vals, ddof=1):.{digits}f}"


def table(rows: list[dict]) -> str:
    names = list(dict.fromkeys(r["name"] for r in rows))
    lines = [
        "| encoder | seeds | pre-train wall (s) | linear top-1 | kNN-20 top-1 | fine-tune top-1 (last) |",
        "|---|---|---|---|---|---|",
    ]
    for n in names:
        rs = [r for r in rows if r["name"] == n]
        pre = [r["pretrain_s"] for r in rs if "pretrain_s" in r]
        label = "random init (floor) / supervised from scratch" if n == "random_init" else n
        lines.append(
            f"| {label} | {len(rs)} | {stat(pre) if pre else '–'} | "
            f"{stat([r['linear_top1'] for r in rs])} | {stat([r['knn_top1'] for r in rs])} | "
            f"{stat([r['finetune_top1'] for r in rs if 'finetune_top1' in r])} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="data/nw-ucla/NW-UCLA.npz")
    p.add_argument("--out", default="runs/nwucla_table")
    p.add_argument("--variants", nargs="*", default=list(VARIANTS))
    p.add_argument("--seeds", nargs="*", type=int, default=[0])
    p.add_argument("--pretrain-epochs", type=int, default=20)
    p.add_argument("--finetune-epochs", type=int, default=20)
    p.add_argument(
        "--finetune",
        nargs="*",
        default=list(VARIANTS),
        help="rows that are also fine-tuned (random_init = supervised from scratch)",
    )
    p.add_argument(
        "--extra", nargs="*", default=[], help="overrides for every run, e.g. data.min_crop_fraction=0.5"
    )
    p.add_argument(
        "--finetune-extra",
        nargs="*",
        default=[],
        help="overrides for the fine-tune runs only, e.g. optim.ema_decay=0.998",
    )
    p.add_argument(
        "--collect",
        nargs="*",
        metavar="DIR",
        help="only print the table of every finished row under these output folders",
    )
    a = p.parse_args()
    if a.collect:
        rows = [json.loads(f.read_text()) for d in a.collect for f in sorted(Path(d).glob("*/row.json"))]
        print(table(sorted(rows, key=lambda r: (list(VARIANTS).index(r["name"]), r["seed"]))), end="")
        return 0
    common = ["run.progress=false"]
    rows = []
    for seed in a.seeds:
        for name in a.variants:
            rows.append(run_row(name, VARIANTS[name], seed, a, common))
            text = table(rows)
            Path(a.out, "table.md").write_text(text)
            Path(a.out, "table.json").write_text(json.dumps(rows, indent=2))
            print(text, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
