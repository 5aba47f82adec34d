"""Model benchmark at the NTU-size configuration (T=120, V=25, M=2, 8+3 layers, width 256, batch 8).

Measures, per device and precision (fp32, bf16 autocast; CUDA too when available):
- pre-training throughput (clips/s) of one full step — mask sampling (incl. the teacher's CAM for the
  semantic strategy), forward, backward, AdamW step, EMA update — for each masking strategy, on
  batches where about 80% of clips have one person and the second slot empty (as in NTU-60);
- single-window inference latency p50/p99 of the classifier for one person (second slot empty).

Wall-clock and process CPU time are both recorded: on a shared machine, CPU time per step of a run is
a better guide to what an idle machine would give than wall time. Results are printed and written
atomically as JSON.

    .venv/bin/python bench/bench_model.py --out bench/results/model.json
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch

from masksem_core.model import ActionClassifier, MaskingConfig, MaskSemPretrainer, ModelConfig, TargetConfig
from masksem_core.train.results import write_json  # atomic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import timed

STRATEGIES = ("random", "motion", "semantic")


def ntu_batches(count: int, batch: int, single_fraction: float, seed: int = 0) -> list[torch.Tensor]:
    """`count` batches (batch, 3, 120, 25, 2) of smooth random motion; slot 1 empty in ~single_fraction."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.linspace(0, 4, 120).view(1, 1, 120, 1, 1)
    out = []
    for _ in range(count):
        base = 0.3 * torch.randn(batch, 3, 1, 25, 2, generator=gen)
        freq = 0.3 + 1.2 * torch.rand(batch, 3, 1, 25, 2, generator=gen)
        phase = 6.28 * torch.rand(batch, 3, 1, 25, 2, generator=gen)
        x = base + 0.1 * torch.sin(6.28 * freq * t + phase)
        single = torch.rand(batch, generator=gen) < single_fraction
        x[single, ..., 1] = 0
        out.append(x)
    return out


def autocast(device: str, precision: str) -> contextlib.AbstractContextManager:
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    return torch.autocast("cuda" if device.startswith("cuda") else "cpu", dtype=dtype)


def bench_pretrain(
    strategy: str, device: str, precision: str, batches: list[torch.Tensor], steps: int, warmup: int
) -> dict:
    torch.manual_seed(0)
    model = MaskSemPretrainer(ModelConfig(), MaskingConfig(strategy=strategy), TargetConfig()).to(device)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05)
    data = [b.to(device) for b in batches]
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    state = {"i": 0, "loss": float("nan")}

    def step() -> None:
        x = data[state["i"] % len(data)]
        state["i"] += 1
        with autocast(device, precision):
            out = model(x)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        model.update_teacher()
        state["loss"] = out.loss.detach()

    wall, cpu = timed(step, steps, warmup, sync)
    batch = batches[0].shape[0]
    persons = sum(int((b.abs().amax(dim=(1, 2, 3)) > 0).sum()) for b in batches) / sum(
        len(b) for b in batches
    )
    return {
        "kind": "pretrain",
        "strategy": strategy,
        "device": device,
        "precision": precision,
        "batch": batch,
        "present_persons_per_clip": persons,
        "steps": steps,
        "step_ms_p50": float(np.percentile(wall, 50)),
        "clips_per_s": float(batch / (np.median(wall) / 1e3)),
        "cpu_ms_per_step_p50": float(np.percentile(cpu, 50)),
        "final_loss": float(state["loss"]),
    }


def bench_latency(device: str, precision: str, iters: int, warmup: int) -> dict:
    torch.manual_seed(0)
    clf = ActionClassifier(ModelConfig(), num_classes=60, head="finetune").to(device).eval()
    x = ntu_batches(1, 1, single_fraction=1.0, seed=1)[0].to(device)  # one person, second slot empty
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def forward() -> None:
        with torch.inference_mode(), autocast(device, precision):
            clf(x)

    wall, cpu = timed(forward, iters, warmup, sync)
    return {
        "kind": "latency",
        "device": device,
        "precision": precision,
        "iters": iters,
        "latency_ms_p50": float(np.percentile(wall, 50)),
        "latency_ms_p99": float(np.percentile(wall, 99)),
        "cpu_ms_p50": float(np.percentile(cpu, 50)),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--steps", type=int, default=None, help="timed pre-training steps (default 3 CPU, 20 CUDA)"
    )
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument(
        "--iters", type=int, default=None, help="timed inference calls (default 30 CPU, 200 CUDA)"
    )
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--single-fraction", type=float, default=0.8, help="clips with only one person")
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--devices", default=None, help="comma list; default cpu (+ cuda when available)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--out", type=Path, default=Path("bench/results/model.json"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.devices.split(",") if args.devices else ["cpu"] + (["cuda"] * torch.cuda.is_available())
    batches = ntu_batches(4, args.batch, args.single_fraction)
    env = {
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_avg_at_start": os.getloadavg(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "model": {k: v for k, v in vars(ModelConfig()).items()},
    }
    rows = []
    print(f"{'kind':9s} {'strategy':9s} {'device':6s} {'prec':5s} {'result':>40s}")
    for device in devices:
        cuda = device.startswith("cuda")
        steps = args.steps or (20 if cuda else 3)
        iters = args.iters or (200 if cuda else 30)
        for precision in args.precisions.split(","):
            row = bench_latency(device, precision, iters, max(args.warmup, 3))
            rows.append(row)
            print(
                f"{'latency':9s} {'-':9s} {device:6s} {precision:5s} "
                f"p50 {row['latency_ms_p50']:8.2f} ms  p99 {row['latency_ms_p99']:8.2f} ms "
                f"(cpu {row['cpu_ms_p50']:.1f} ms)",
                flush=True,
            )
            for strategy in args.strategies.split(","):
                row = bench_pretrain(strategy, device, precision, batches, steps, args.warmup)
                rows.append(row)
                print(
                    f"{'pretrain':9s} {strategy:9s} {device:6s} {precision:5s} "
                    f"{row['clips_per_s']:8.2f} clips/s  step {row['step_ms_p50']:8.0f} ms "
                    f"(cpu {row['cpu_ms_per_step_p50']:.0f} ms)",
                    flush=True,
                )
    env["load_avg_at_end"] = os.getloadavg()
    write_json(args.out, {"env": env, "results": rows})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
