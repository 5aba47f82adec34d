"""Inference benchmark of the streaming recogniser at the NTU-size model (T=120, V=25, M=2, depth 8, dim 256).

Measures, per device and precision:
- latency p50/p99 of one window for one person: `StreamingRecognizer.predict` = clip building (centre,
  crop, resize) + forward + softmax, i.e. what `poll()` spends per window;
- batched throughput (windows/s) and per-batch latency for 1/4/8 persons in one forward pass;
- the cost of `push()` per frame (adapt from MediaPipe 33, validate, resample).
CUDA is measured too whenever it is available. Results are printed and written atomically as JSON.

    .venv/bin/python bench/bench_inference.py --out bench/results/inference_cpu.json
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from masksem_core.layouts import NTU25
from masksem_core.model import ActionClassifier, ModelConfig
from masksem_core.runtime.bundle import Bundle
from masksem_core.runtime.recognizer import RecognizerSettings, StreamingRecognizer
from masksem_core.train.results import write_json  # atomic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import timed

NTU_SIZE = dict(num_frames=120, num_joints=25, num_persons=2, dim=256, depth=8, heads=8)


def ntu_bundle(num_classes: int = 60) -> Bundle:
    torch.manual_seed(0)
    model = ActionClassifier(ModelConfig(**NTU_SIZE), num_classes, "finetune").eval()
    labels = [f"A{i + 1:03d}" for i in range(num_classes)]
    return Bundle(model, labels, NTU25, 120, 30.0, 120, {"centre_joint": 1, "crop_ratio": 0.95})


def encoder_gflop(cfg: ModelConfig, persons: int = 1) -> float:
    """2 x multiply-adds of the encoder per clip: QKV/proj/MLP (12 D^2 a token) + attention (2 L^2 D)."""
    tokens = cfg.num_segments * cfg.num_joints
    per_layer = tokens * (4 + 2 * cfg.mlp_ratio) * cfg.dim**2 + 2 * tokens**2 * cfg.dim
    return 2 * persons * cfg.depth * per_layer / 1e9


def one_person_windows(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, M=2, W=120, V=25, 3): moving people in slot 0, slot 1 empty (the common single-person case)."""
    w = np.zeros((n, 2, 120, 25, 3), np.float32)
    t = np.arange(120)[:, None, None] / 30.0
    for i in range(n):
        base = rng.normal(0, 0.3, size=(1, 25, 3)) + [0, 0, 3]
        w[i, 0] = base + 0.1 * np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * t + rng.uniform(0, 6, (1, 25, 3)))
    return w


def bench_device(
    bundle: Bundle,
    device: str,
    precision: str,
    iters: int,
    warmup: int,
    backend: str = "torch",
    threads: int = 0,
) -> dict:
    settings = RecognizerSettings(device=device, precision=precision, backend=backend, num_threads=threads)
    rec = StreamingRecognizer(bundle, settings)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    rng = np.random.default_rng(0)
    one = one_person_windows(1, rng)
    lat, cpu = timed(lambda: rec.predict(one), iters, warmup, sync)
    row = {
        "device": device,
        "backend": backend,
        "precision": precision,
        "one_window_ms_p50": float(np.percentile(lat, 50)),
        "one_window_ms_p99": float(np.percentile(lat, 99)),
        "one_window_ms_mean": float(lat.mean()),
        "one_window_cpu_ms_p50": float(np.percentile(cpu, 50)),
        "iters": iters,
        "batched": {},
    }
    for n in (1, 4, 8):
        w = one_person_windows(n, rng)
        t, _ = timed(lambda w=w: rec.predict(w), max(3, iters // max(1, n // 2)), 1, sync)
        row["batched"][str(n)] = {
            "batch_ms_p50": float(np.percentile(t, 50)),
            "windows_per_s": float(n / (np.percentile(t, 50) / 1e3)),
        }
    return row


def bench_push(bundle: Bundle, frames: int = 3000) -> dict:
    rec = StreamingRecognizer(bundle, RecognizerSettings(stride_frames=10**6))  # never due: push cost only
    mp = np.random.default_rng(1).normal(0, 0.3, size=(frames, 33, 3)).astype(np.float32)
    t0 = time.perf_counter()
    for k in range(frames):
        rec.push(k % 4, k / 120.0, mp[k], None, "mediapipe33")
    return {"push_us_per_frame_mediapipe33": (time.perf_counter() - t0) / frames * 1e6}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--cpu-only", action="store_true")
    ap.add_argument(
        "--no-onnxruntime",
        dest="onnxruntime",
        action="store_false",
        help="skip the ONNX Runtime backend (fp32 and int8, measured by default on the CPU)",
    )
    ap.add_argument("--out", type=Path, default=Path("bench/results/inference.json"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    bundle = ntu_bundle()
    env = {
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_avg_at_start": os.getloadavg(),
        "model": NTU_SIZE,
        "encoder_gflop_per_one_person_window": encoder_gflop(bundle.model.cfg),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    devices = ["cpu"] + ([] if args.cpu_only or not torch.cuda.is_available() else ["cuda"])
    runs = [
        (d, "torch", p)
        for d in devices
        for p in args.precisions.split(",") + (["fp16"] if d == "cuda" else [])
    ]
    if args.onnxruntime:
        runs += [("cpu", "onnxruntime", "fp32"), ("cpu", "onnxruntime", "int8")]
    rows = []
    for device, backend, precision in runs:
        row = bench_device(bundle, device, precision, args.iters, args.warmup, backend, args.threads or 0)
        rows.append(row)
        b = row["batched"]
        print(
            f"{device:4s} {backend:11s} {precision:4s} one window p50 {row['one_window_ms_p50']:7.1f} ms  "
            f"p99 {row['one_window_ms_p99']:7.1f} ms (cpu {row['one_window_cpu_ms_p50']:6.1f} ms) "
            f"| windows/s  1: {b['1']['windows_per_s']:6.1f}  "
            f"4: {b['4']['windows_per_s']:6.1f}  8: {b['8']['windows_per_s']:6.1f}",
            flush=True,
        )
    push = bench_push(bundle)
    print(f"push(): {push['push_us_per_frame_mediapipe33']:.0f} us per MediaPipe frame")
    env["load_avg_at_end"] = os.getloadavg()
    write_json(args.out, {"env": env, "results": rows, **push})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
