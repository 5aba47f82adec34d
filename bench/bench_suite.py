"""The whole benchmark in one command: hardware peak, pre-training, inference and data, as a table + JSON.

Every model figure is measured next to the naive reference (bench/naive_reference.py: explicit
attention, empty slots encoded, autograd Grad-CAM) in the same process, interleaved step by step, so
ratios hold on a shared, loaded machine; absolute figures are printed with the load average.
Achieved FLOP/s counts useful matmul FLOPs analytically (bench/flops.py) against the peak of a large
fp32 / bf16 `torch.matmul` measured in the same run.

    .venv/bin/python bench/bench_suite.py                       # NTU size, batch 32 (slow on a CPU)
    .venv/bin/python bench/bench_suite.py --batch 8 --steps 2 --sizes 1,4,8
    .venv/bin/python bench/bench_suite.py --compare bench/results/suite_previous.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from flops import inference_flops, pretrain_step_flops
from naive_reference import NaiveEncoder, NaivePretrainer

from masksem_core.model import ActionClassifier, MaskingConfig, MaskSemPretrainer, ModelConfig, TargetConfig
from masksem_core.train.results import write_json  # atomic

RESULTS = Path(__file__).resolve().parent / "results"


# ---------------------------------------------------------------- measurement helpers
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


class PeakMemory:
    """Peak memory of a block: the CUDA allocator's peak, or on CPU the RSS high-water above the start.

    On CPU, `main` fixes glibc's mmap threshold so that freed tensors go back to the OS and the
    1 ms RSS poll follows live memory instead of the allocator's cache.
    """

    def __init__(self, device: torch.device) -> None:
        self.device, self.peak_mb = device, 0.0

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            return self
        self._base, self._high, self._stop = self._rss(), 0, threading.Event()

        def poll() -> None:
            while not self._stop.wait(0.001):
                self._high = max(self._high, self._rss())

        self._thread = threading.Thread(target=poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            self.peak_mb = (torch.cuda.max_memory_allocated(self.device) - self._base) / 2**20
            return
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(0, max(self._high, self._rss()) - self._base) / 2**20


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    """Best FLOP/s of an n x n x n matmul (the machine's practical peak for this dtype)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        torch.matmul(a, b)
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def ntu_like_clips(n: int, cfg: ModelConfig, one_person: float, seed: int = 0) -> torch.Tensor:
    """(n, 3, T, V, M) smooth random-walk skeletons; a fraction `one_person` has its second slot empty."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, cfg.num_frames, cfg.num_joints, cfg.num_persons, generator=gen).cumsum(2) * 0.02
    x = x + torch.randn(n, 3, 1, cfg.num_joints, cfg.num_persons, generator=gen) * 0.3
    x[: round(n * one_person), ..., 1:] = 0
    return x[torch.randperm(n, generator=gen)]


# ---------------------------------------------------------------- pre-training
def pretrain_section(args: argparse.Namespace, device: torch.device, peaks: dict[str, float]) -> dict:
    cfg = ModelConfig(**json.loads(args.model)) if args.model else ModelConfig()
    masking = MaskingConfig(strategy=args.strategy, ratio=0.9)
    target = TargetConfig()
    torch.manual_seed(0)
    ours = MaskSemPretrainer(cfg, masking, target).to(device).train()
    # name -> (model, autocast precision); every variant starts from the same weights
    models: dict[str, tuple[torch.nn.Module, str]] = {"ours": (ours, "fp32")}
    if not args.skip_naive:
        naive = NaivePretrainer(cfg, masking, target)
        naive.load_state_dict(ours.state_dict())
        models["naive"] = (naive.to(device).train(), "fp32")
    for variant in filter(None, args.variants.split(",")):
        if variant == "teacher_bf16":
            m = MaskSemPretrainer(cfg, MaskingConfig(strategy=args.strategy, teacher_bf16=True), target)
            m.load_state_dict(ours.state_dict())
            models["ours_teacher_bf16"] = (m.to(device).train(), "fp32")
        elif variant == "bf16":
            m = MaskSemPretrainer(cfg, MaskingConfig(strategy=args.strategy, teacher_bf16=True), target)
            m.load_state_dict(ours.state_dict())
            models["ours_bf16"] = (m.to(device).train(), "bf16")
        else:
            raise SystemExit(f"--variants: unknown {variant!r} (teacher_bf16, bf16)")
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-4, betas=(0.9, 0.95)) for k, (m, _) in models.items()}
    x = ntu_like_clips(args.batch, cfg, args.one_person).to(device)
    sequences = int((x.abs().amax(dim=(1, 2, 3)) > 0).sum())
    flops = pretrain_step_flops(cfg, masking, sequences)["total"]
    times: dict[str, list[float]] = {k: [] for k in models}
    mem: dict[str, float] = dict.fromkeys(models, 0.0)
    peaks_now: list[float] = []
    for step in range(args.warmup + args.steps):
        for name, (model, precision) in models.items():  # interleaved: all see the same machine load
            with PeakMemory(device) as pm:
                sync(device)
                t0 = time.perf_counter()
                opts[name].zero_grad(set_to_none=True)
                with autocast(device, precision):
                    out = model(x)
                loss = out.loss if hasattr(out, "loss") else out
                loss.backward()
                opts[name].step()
                model.update_teacher()
                sync(device)
                dt = time.perf_counter() - t0
            if step >= args.warmup:
                times[name].append(dt)
                mem[name] = max(mem[name], pm.peak_mb)
                # the peak again, now: on a shared machine the load moves during a long run
                peaks_now.append(matmul_peak(device, torch.float32, n=min(1536, args.peak_size), repeats=3))
            print(f"  pretrain {name:5s} step {step}: {dt:6.2f} s  loss {loss.item():.4f}", flush=True)
    rows = {}
    for name in models:
        t = float(np.median(times[name]))
        rows[name] = {
            "step_s": t,
            "clips_per_s": args.batch / t,
            "peak_mem_mb": mem[name],
            "useful_tflops_per_s": flops / t / 1e12,
            "fraction_of_fp32_peak": flops / t / peaks["fp32"],
            "fraction_of_bf16_peak": flops / t / peaks["bf16"],
            "fraction_of_fp32_peak_during_run": flops / t / float(np.median(peaks_now)),
            "steps": times[name],
        }
    out = {
        "config": {
            **cfg.__dict__,
            "strategy": args.strategy,
            "batch": args.batch,
            "one_person": args.one_person,
            "present_sequences": sequences,
        },
        "useful_flops_per_step": flops,
        "fp32_peak_during_run": float(np.median(peaks_now)),
        **rows,
    }
    if "naive" in rows:
        out["speedup_vs_naive"] = rows["naive"]["step_s"] / rows["ours"]["step_s"]
    return out


# ---------------------------------------------------------------- inference
def interleaved_ms(fns: dict, iters: int, warmup: int, device: torch.device) -> dict[str, np.ndarray]:
    """Latency (ms) of each function, calls alternating so that both see the same machine load."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    out: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(iters):
        for name, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            out[name].append((time.perf_counter() - t0) * 1e3)
    return {k: np.asarray(v) for k, v in out.items()}


def inference_section(args: argparse.Namespace, device: torch.device, peaks: dict[str, float]) -> list[dict]:
    """One window for one person (p50/p99) and batched windows/s, ours vs naive, per precision."""
    cfg = ModelConfig(**json.loads(args.model)) if args.model else ModelConfig()
    torch.manual_seed(0)
    model = ActionClassifier(cfg, 60, "finetune").to(device).eval()
    impls = {"ours": model}
    if not args.skip_naive:
        naive = NaiveEncoder(cfg)
        naive.load_state_dict(model.encoder.state_dict())
        naive = naive.to(device).eval()
        impls["naive"] = lambda x: model.head(*_naive_pooled(naive, x))
    rows = []
    for precision in args.precisions.split(","):

        def call(fn, x: torch.Tensor, precision: str = precision):
            def run() -> None:
                with torch.inference_mode(), autocast(device, precision):
                    fn(x)

            return run

        one = ntu_like_clips(1, cfg, 1.0, seed=1).to(device)
        lat = interleaved_ms({k: call(f, one) for k, f in impls.items()}, args.iters, 3, device)
        batched: dict[str, dict[str, float]] = {k: {} for k in impls}
        for n in (int(s) for s in args.sizes.split(",")):
            xb = ntu_like_clips(n, cfg, 1.0, seed=n).to(device)
            t = interleaved_ms({k: call(f, xb) for k, f in impls.items()}, max(2, args.iters // n), 1, device)
            for k in impls:
                batched[k][str(n)] = n / (float(np.median(t[k])) / 1e3)
        peak = peaks.get(precision, peaks["fp32"])
        for name in impls:
            p50 = float(np.percentile(lat[name], 50))
            rows.append(
                {
                    "device": device.type,
                    "precision": precision,
                    "impl": name,
                    "one_window_ms_p50": p50,
                    "one_window_ms_p99": float(np.percentile(lat[name], 99)),
                    "fraction_of_peak": inference_flops(cfg) / (p50 / 1e3) / peak,
                    "batched_windows_per_s": batched[name],
                }
            )
            print(f"  inference {device.type} {precision} {name}: p50 {p50:.1f} ms", flush=True)
    return rows


def _naive_pooled(naive: NaiveEncoder, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The head's inputs (pooled (N, D), per-joint (N, V, D)) computed the naive way (all slots)."""
    n, c, t, v, m = x.shape
    feats = naive(x.permute(0, 4, 1, 2, 3).reshape(n * m, c, t, v))
    per_joint = feats.view(n, m, -1, v, feats.shape[-1]).mean(dim=2)
    present = (x.abs().amax(dim=(1, 2, 3)) > 0).float()
    present[:, 0] = present[:, 0].clamp_min(present.sum(1).eq(0).float())
    per_joint = (per_joint * present[..., None, None]).sum(1) / present.sum(1).clamp_min(1)[:, None, None]
    return per_joint.mean(dim=1), per_joint


def recognizer_section(args: argparse.Namespace, devices: list[torch.device]) -> list[dict]:
    """End-to-end `StreamingRecognizer.predict` (clip building + forward), via bench/bench_inference.py."""
    try:
        import bench_inference
    except ImportError as exc:  # the runtime is optional for the model figures
        return [{"skipped": str(exc)}]
    bundle = bench_inference.ntu_bundle()
    rows = []
    for device in devices:
        for precision in args.precisions.split(","):
            rows.append(bench_inference.bench_device(bundle, device.type, precision, args.iters, 2))
            print(
                f"  recogniser {device.type} {precision}: p50 {rows[-1]['one_window_ms_p50']:.1f} ms",
                flush=True,
            )
    return rows


# ---------------------------------------------------------------- data
def data_section(args: argparse.Namespace) -> dict:
    out: dict = {}
    try:
        import bench_prepare  # the data engineer's prepare benchmark (files/s)

        if bench_prepare.SAMPLES.is_dir():
            with tempfile.TemporaryDirectory() as tmp:
                files = bench_prepare.make_corpus(Path(tmp), args.prepare_files)
                out["prepare_files_per_s_1_worker"] = bench_prepare.rate(bench_prepare.ntu_clip, files)
                out["prepare_files_per_s_standard_parse"] = bench_prepare.rate(
                    bench_prepare.standard_parse, files
                )
        else:
            out["prepare"] = f"skipped: {bench_prepare.SAMPLES} is absent"
    except ImportError as exc:
        out["prepare"] = f"skipped: {exc}"
    out.update(feeder_rates(args))
    return out


def feeder_rates(args: argparse.Namespace) -> dict:
    """Feeder clips/s with the reference augmentation (crop 0.5-1, resize to 120, rotation), per worker."""
    from torch.utils.data import DataLoader

    from masksem_core.data.feeder import SkeletonClips

    n, frames = args.feeder_clips, 300
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(n, frames, 150)).cumsum(1) * 0.01).astype(np.float32)
    lengths = rng.integers(60, frames, n)
    x[np.arange(frames)[None, :] >= lengths[:, None]] = 0  # zero-padded after each clip's end
    x[: int(n * args.one_person), :, 75:] = 0
    y = rng.integers(0, 60, n)
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ntu_like.npz"
        np.savez(path, x_train=x, y_train=y)
        ds = SkeletonClips(path, "train", num_frames=120, train=True)
        t0 = time.perf_counter()
        for i in range(len(ds)):
            ds[i]
        res["feeder_clips_per_s_1_process"] = len(ds) / (time.perf_counter() - t0)
        for workers in (w for w in (2,) if w <= (os.cpu_count() or 1)):
            loader = DataLoader(ds, batch_size=32, num_workers=workers, persistent_workers=False)
            t0 = time.perf_counter()
            for _ in loader:
                pass
            res[f"feeder_clips_per_s_{workers}_workers"] = len(ds) / (time.perf_counter() - t0)
    return res


# ---------------------------------------------------------------- report
def print_table(result: dict, previous: dict | None) -> None:
    def prev(path: list[str]):
        node = previous
        for k in path:
            if not isinstance(node, dict) or k not in node:
                return None
            node = node[k]
        return node

    def line(
        label: str, value: float, unit: str, path: list[str], ratio: str = "", p=None, scale=1.0
    ) -> None:
        p = prev(path) if path else p
        p = p * scale if isinstance(p, (int, float)) else p
        delta = f"  (was {p:.4g})" if isinstance(p, (int, float)) else ""
        print(f"| {label:52s} | {value:10.4g} {unit:9s} | {ratio:14s}|{delta}")

    env = result["env"]
    print(
        f"\nload average {env['load_avg_start']} -> {env['load_avg_end']}, {env['threads']} torch threads, "
        f"{env['cpu']}, torch {env['torch']}"
    )
    print(f"| {'figure':52s} | {'value':20s} | {'ratio':14s}|")
    print(f"|{'-' * 54}|{'-' * 22}|{'-' * 15}|")
    for k, v in result["peak"].items():
        line(f"matmul peak {k}", v / 1e9, "GFLOP/s", ["peak", k])
    pre = result.get("pretrain")
    if pre:
        sp = pre.get("speedup_vs_naive")
        for name in ("ours", "naive", "ours_teacher_bf16", "ours_bf16"):
            if name in pre:
                r = pre[name]
                ratio = (
                    f"x{pre['naive']['step_s'] / r['step_s']:.2f} vs naive" if sp and name != "naive" else ""
                )
                line(
                    f"pretrain {name} clips/s",
                    r["clips_per_s"],
                    "clips/s",
                    ["pretrain", name, "clips_per_s"],
                    ratio,
                )
                line(
                    f"pretrain {name} peak memory", r["peak_mem_mb"], "MiB", ["pretrain", name, "peak_mem_mb"]
                )
                if name == "ours_bf16":
                    line(
                        f"pretrain {name} useful FLOP/s / bf16 peak",
                        100 * r["fraction_of_bf16_peak"],
                        "%",
                        ["pretrain", name, "fraction_of_bf16_peak"],
                        scale=100,
                    )
                line(
                    f"pretrain {name} useful FLOP/s / fp32 peak",
                    100 * r["fraction_of_fp32_peak"],
                    "%",
                    ["pretrain", name, "fraction_of_fp32_peak"],
                    scale=100,
                )
                line(
                    f"pretrain {name} ... / fp32 peak during run",
                    100 * r["fraction_of_fp32_peak_during_run"],
                    "%",
                    ["pretrain", name, "fraction_of_fp32_peak_during_run"],
                    scale=100,
                )
    rows = {f"{r['device']} {r['precision']} {r['impl']}": r for r in result.get("inference", [])}
    prev_rows = {
        f"{r['device']} {r['precision']} {r['impl']}": r for r in (previous or {}).get("inference", [])
    }
    for key, row in rows.items():
        naive = rows.get(key.rsplit(" ", 1)[0] + " naive")
        ours_vs = naive if naive is not None and row is not naive else None
        was = prev_rows.get(key, {})
        for q in ("p50", "p99"):
            k = f"one_window_ms_{q}"
            ratio = f"x{ours_vs[k] / row[k]:.2f} vs naive" if ours_vs else ""
            line(f"infer {key} 1 window {q}", row[k], "ms", [], ratio, was.get(k))
        for n, w in row["batched_windows_per_s"].items():
            ratio = f"x{w / ours_vs['batched_windows_per_s'][n]:.2f} vs naive" if ours_vs else ""
            line(
                f"infer {key} batch {n}",
                w,
                "windows/s",
                [],
                ratio,
                was.get("batched_windows_per_s", {}).get(n),
            )
    for row in result.get("recognizer", []):
        if "one_window_ms_p50" in row:
            key = f"recogniser {row['device']} {row['precision']} 1 window"
            line(f"{key} p50", row["one_window_ms_p50"], "ms", [])
            line(f"{key} p99", row["one_window_ms_p99"], "ms", [])
    for k, v in result.get("data", {}).items():
        if isinstance(v, float):
            line(k.replace("_", " "), v, "/s", ["data", k])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", default="pretrain,inference,recognizer,data")
    ap.add_argument("--model", default="", help="JSON ModelConfig overrides (default: NTU size)")
    ap.add_argument("--strategy", default="semantic", choices=["random", "motion", "semantic"])
    ap.add_argument("--variants", default="teacher_bf16,bf16", help="extra pre-training variants to time")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--one-person", type=float, default=0.8, help="fraction of clips with one person")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--sizes", default="1,4,8,32", help="batched inference sizes (persons)")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--prepare-files", type=int, default=100)
    ap.add_argument("--feeder-clips", type=int, default=256)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--peak-size", type=int, default=2048, help="n of the n x n x n peak matmul")
    ap.add_argument("--cpu-only", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="JSON (default bench/results/suite_<time>.json)")
    ap.add_argument("--compare", type=Path, default=None, help="an earlier JSON to show next to each figure")
    return ap.parse_args(argv)


def release_freed_memory() -> None:
    """glibc: serve allocations >= 64 KiB by mmap and never raise that threshold (RSS = live memory)."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    release_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    sections = set(args.sections.split(","))
    devices = [torch.device("cpu")]
    if torch.cuda.is_available() and not args.cpu_only:
        devices.append(torch.device("cuda"))
    result: dict = {
        "env": {
            "torch": torch.__version__,
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if len(devices) > 1 else None,
            "load_avg_start": [round(v, 2) for v in os.getloadavg()],
            "argv": sys.argv[1:] if argv is None else argv,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
        "peak": {},
        "inference": [],
    }
    main_device = devices[-1]  # train where a real run would: the GPU when there is one
    for device in devices:
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            result["peak"][f"{device.type}_{name}"] = matmul_peak(device, dtype, n=args.peak_size)
    peaks = {p: result["peak"][f"{main_device.type}_{p}"] for p in ("fp32", "bf16")}
    if "pretrain" in sections:
        result["pretrain"] = pretrain_section(args, main_device, peaks)
    if "inference" in sections:
        for device in devices:
            dev_peaks = {p: result["peak"][f"{device.type}_{p}"] for p in ("fp32", "bf16")}
            result["inference"] += inference_section(args, device, dev_peaks)
    if "recognizer" in sections:
        result["recognizer"] = recognizer_section(args, devices)
    if "data" in sections:
        result["data"] = data_section(args)
    result["env"]["load_avg_end"] = [round(v, 2) for v in os.getloadavg()]
    previous = json.loads(args.compare.read_text()) if args.compare else None
    print_table(result, previous)
    out = args.out or RESULTS / f"suite_{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}.json"
    write_json(out, result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
