"""Compute-matched continuation from one MAMP checkpoint (issue 19): does semantic guidance help?

The authors train MaskSem on top of a converged MAMP run; its published gain mixes semantic guidance
with twice the compute. Here every row starts from the SAME MAMP checkpoint (`--init-from`) and
continues for the same number of epochs with its own schedule (fresh optimiser, warm-up), so the rows
differ only in what the continuation does:

    mamp_continued            motion-aware masking, velocity target (MAMP, just longer)
    masksem_from_mamp         semantic masking (authors' normalisation, cam_scale auto), hybrid target
    motion_hybrid_from_mamp   motion-aware masking, hybrid target
    random_hybrid_from_mamp   random masking, hybrid target

and the variants, each against masksem_from_mamp (teacher momentum 0.999; a frozen teacher = the MAMP
encoder itself; semantic x motion weights; the CAM-weighted loss; the authors' fixed 1e8 scale; the
fine-tune head's dropout on the tokens). `mamp_start` probes the checkpoint itself (0 more epochs).
Each row: linear probe + kNN-20 (and fine-tune for the rows in --finetune), mean ± std over seeds,
wall time, the mask statistics of the last epoch. Rows are plain `masksem` commands
(`nwucla_protocols.run_row`), recorded with their results in OUT/<row>_s<seed>/row.json; the table
goes to OUT/table.md.

    python experiments/nwucla_continue.py --init-from runs/mamp100_s0/pretrain/last.pt \\
        --out runs/continue --epochs 100 --seeds 0 1 2 --finetune-epochs 50
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nwucla_protocols import run_row, stat

MASKSEM = [
    "masking.strategy=semantic",
    "masking.cam_norm=authors",
    "masking.cam_scale=auto",
    "target.kind=hybrid",
]


@dataclass
class Row:
    pretrain: list[str] | None  # continuation overrides; None: probe the start checkpoint itself
    finetune: list[str] = field(default_factory=list)  # fine-tune-only overrides
    same_encoder_as: str | None = None  # reuse that row's continued checkpoint (fine-tune variants)
    what: str = ""


ROWS: dict[str, Row] = {
    "mamp_start": Row(None, what="the MAMP checkpoint itself, no continuation"),
    "mamp_continued": Row(["masking.strategy=motion", "target.kind=velocity"], what="motion, velocity"),
    "masksem_from_mamp": Row(MASKSEM, what="semantic (authors norm, cam_scale auto), hybrid"),
    "motion_hybrid_from_mamp": Row(["masking.strategy=motion", "target.kind=hybrid"], what="motion, hybrid"),
    "random_hybrid_from_mamp": Row(["masking.strategy=random", "target.kind=hybrid"], what="random, hybrid"),
    # variants of masksem_from_mamp
    "masksem_momentum999": Row([*MASKSEM, "masking.momentum=0.999"], what="teacher momentum 0.999"),
    "masksem_frozen_teacher": Row([*MASKSEM, "masking.momentum=1.0"], what="teacher = MAMP encoder, frozen"),
    "masksem_cam_x_motion": Row(
        [*MASKSEM, "masking.cam_times_motion=true"], what="semantic x motion weights"
    ),
    "masksem_cam_loss": Row([*MASKSEM, "target.cam_loss_weight=1.0"], what="loss weight 1 + CAM"),
    "masksem_fixed_1e8": Row(
        [*MASKSEM, "masking.cam_scale=100000000.0"], what="authors' fixed 1e8 at this (smaller) scale"
    ),
    "masksem_token_dropout": Row(
        [], ["run.head_dropout_on=tokens"], "masksem_from_mamp", "fine-tune dropout on tokens before the mean"
    ),
}
MAIN = [
    "mamp_start",
    "mamp_continued",
    "masksem_from_mamp",
    "motion_hybrid_from_mamp",
    "random_hybrid_from_mamp",
]
MASK_KEYS = ("motion_masked", "motion_kept", "cam_masked", "cam_kept", "cam_positive_tokens")


def mask_summary(rows: list[dict]) -> str:
    """Last-epoch mask statistics, averaged over seeds: motion masked/kept (and CAM masked/kept, positive)."""
    vals = {k: [r["mask_stats"][k] for r in rows if k in r.get("mask_stats", {})] for k in MASK_KEYS}
    mean = {k: sum(v) / len(v) for k, v in vals.items() if v}
    if not mean:
        return "–"
    text = f"motion {mean['motion_masked']:.3f}/{mean['motion_kept']:.3f}"
    if "cam_masked" in mean:
        text += (
            f"; cam {mean['cam_masked']:.2f}/{mean['cam_kept']:.2f}, >0: {mean['cam_positive_tokens']:.0%}"
        )
    return text


def probe_val(row: dict, out: str | Path) -> float | None:
    """The linear probe's held-out accuracy at its chosen lr (20% of the TRAINING clips: the number
    defaults are chosen by; the test-view columns are reported, never chosen on)."""
    path = Path(out) / f"{row['name']}_s{row['seed']}" / "linprobe" / "results.json"
    if not path.is_file():
        return None
    by_lr = json.loads(path.read_text()).get("probe_val_top1") or {}
    return max(by_lr.values()) if by_lr else None


def extra_finetunes(row: dict, out: str | Path) -> list[float]:
    """Fine-tune top-1 of one continuation under more fine-tune seeds: its own fine-tune plus any
    OUT/<row>_s<seed>/finetune_f<F>/results.json (`masksem finetune ... run.seed=F`)."""
    found = [row["finetune_top1"]] if "finetune_top1" in row else []
    row_dir = Path(out) / f"{row['name']}_s{row['seed']}"
    for path in sorted(row_dir.glob("finetune_f*/results.json")):
        found.append(json.loads(path.read_text())["top1"])
    return found


def fine_tune_seeds(rows: list[dict], out: str | Path) -> str:
    """'s<seed>: mean ± std (n)' for each continuation fine-tuned with more than one seed, else '–'."""
    parts = []
    for r in rows:
        vals = extra_finetunes(r, out)
        if len(vals) > 1:
            parts.append(f"s{r['seed']}: {stat(vals, 2)} ({len(vals)})")
    return "; ".join(parts) or "–"


def table(rows: list[dict], epochs: int, out: str | Path = ".") -> str:
    """One line a row: mean ± std over continuation seeds (each fine-tuned with its own seed), and, where
    a continuation was fine-tuned with more seeds, that spread apart (fine-tune seeds, one continuation)."""
    lines = [
        "| row | what | seeds | continuation epochs | wall (s) | probe val (held-out training clips) |"
        " linear top-1 | kNN-20 top-1 | fine-tune top-1 | fine-tune seeds of one continuation |"
        " mask masked/kept (last epoch) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in dict.fromkeys(r["name"] for r in rows):
        rs = [r for r in rows if r["name"] == name]
        spec = ROWS[name]
        wall = [r["pretrain_s"] for r in rs if "pretrain_s" in r]
        lines.append(
            f"| {name} | {spec.what} | {','.join(str(r['seed']) for r in rs)} | "
            f"{0 if spec.pretrain is None else epochs} | {stat(wall, 0) if wall else '–'} | "
            f"{stat([v for v in (probe_val(r, out) for r in rs) if v is not None])} | "
            f"{stat([r['linear_top1'] for r in rs])} | {stat([r['knn_top1'] for r in rs])} | "
            f"{stat([r['finetune_top1'] for r in rs if 'finetune_top1' in r])} | "
            f"{fine_tune_seeds(rs, out)} | {mask_summary(rs)} |"
        )
    return "\n".join(lines) + "\n"


def run(name: str, seed: int, a: argparse.Namespace) -> dict:
    spec = ROWS[name]
    common = ["run.progress=false"]
    if spec.pretrain is None:
        return run_row(name, None, seed, a, common, pretrained=Path(a.init_from))
    if spec.same_encoder_as:
        base = run(spec.same_encoder_as, seed, a)
        ckpt = Path(a.out) / f"{spec.same_encoder_as}_s{seed}" / "pretrain" / "last.pt"
        row = run_row(name, None, seed, a, common, finetune_extra=spec.finetune, pretrained=ckpt)
        row["linked_pretrain"] = {k: base[k] for k in ("name", "pretrain_s") if k in base}
        return row
    return run_row(
        name, spec.pretrain, seed, a, common, [f"run.init_from={a.init_from}"], finetune_extra=spec.finetune
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--init-from", required=True, help="the MAMP checkpoint every row continues from")
    p.add_argument("--data", default="data/nw-ucla/NW-UCLA.npz")
    p.add_argument("--out", default="runs/continue")
    p.add_argument("--rows", nargs="*", default=MAIN, choices=list(ROWS))
    p.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=100, help="continuation epochs (the same for every row)")
    p.add_argument("--finetune-epochs", type=int, default=50, help="0: probes only")
    p.add_argument("--finetune", nargs="*", default=[], help="rows that are also fine-tuned")
    p.add_argument("--extra", nargs="*", default=[], help="overrides for every run")
    p.add_argument("--finetune-extra", nargs="*", default=[], help="overrides for every fine-tune run")
    a = p.parse_args()
    if not Path(a.init_from).is_file():
        p.error(f"--init-from {a.init_from}: no such checkpoint")
    a.pretrain_epochs = a.epochs  # the names run_row reads
    rows = []
    for seed in a.seeds:
        for name in a.rows:
            rows.append(run(name, seed, a))
            text = table(rows, a.epochs, a.out)
            Path(a.out, "table.md").write_text(text)
            Path(a.out, "table.json").write_text(json.dumps(rows, indent=2))
            print(text, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
