"""Runtime soak: the streaming recogniser fed 4 people at 30 Hz for an hour of input, as fast as it runs.

Faults are injected on a seeded schedule: dropped frames (never sent), NaN joints, wrong shapes, unknown
layouts, repeated and slightly backwards stamps, person-id churn (a person re-appears under a new id),
and clock jumps of the whole stream (+3 s forwards, -10 s backwards). The node's loop is reproduced:
push every person of a frame, poll once, expire once per second of input.

Reported: RSS growth (after a 10 % warm-up, and from the start), latency drift (p50 of the first vs the
last 10 % of windows, both the recogniser's due->done latency and the wall time of poll()), and the
accounting: received == used + dropped, by reason, against what was injected. A small model is used so
the hour runs in minutes; `--minutes` shortens it.

    .venv/bin/python bench/bench_soak.py --minutes 60 --json bench/results/soak.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from masksem_core.layouts import NTU25
from masksem_core.model import ActionClassifier, ModelConfig
from masksem_core.runtime.bundle import Bundle
from masksem_core.runtime.recognizer import RecognizerSettings, StreamingRecognizer

SMALL = dict(num_frames=32, num_joints=25, num_persons=2, dim=32, depth=2, heads=2)


def rss_mib() -> float:
    """Resident set size of this process (psutil when installed, else /proc/self/status)."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    return float("nan")


def small_bundle() -> Bundle:
    torch.manual_seed(0)
    model = ActionClassifier(ModelConfig(**SMALL), 10, "finetune").eval()
    return Bundle(
        model, [f"c{i}" for i in range(10)], NTU25, 32, 30.0, 32, {"centre_joint": 1, "crop_ratio": 0.95}
    )


class Person:
    """A person swaying in place: smooth, plausible joints around a random body."""

    def __init__(self, rng: np.random.Generator, slot: int) -> None:
        self.base = rng.normal(0, 0.25, size=(25, 3)) + [slot * 0.8, 0.0, 3.0]
        self.phase = rng.uniform(0, 2 * np.pi, size=(25, 3))
        self.freq = rng.uniform(0.2, 1.2)
        self.generation = 0

    def joints(self, t: float) -> np.ndarray:
        return (self.base + 0.08 * np.sin(2 * np.pi * self.freq * t + self.phase)).astype(np.float32)


def soak(args: argparse.Namespace) -> dict:
    rng = np.random.default_rng(args.seed)
    settings = RecognizerSettings(stride_frames=args.stride, num_threads=args.threads, max_persons=8)
    rec = StreamingRecognizer(small_bundle(), settings)
    people = [Person(rng, k) for k in range(args.people)]
    frames = int(args.minutes * 60 * args.hz)
    injected: Counter[str] = Counter()
    pushes = 0
    offset = 0.0  # clock jumps of the whole stream
    next_jump, jump_sign = args.jump_every_s, 1
    # per-frame figures in arrays allocated (and touched) up front, so the bench's own bookkeeping does not
    # show up as RSS growth: wall and thread-CPU ms of polls that ran the model, median Recognition latency
    poll_ms, poll_cpu_ms, latency_ms = (np.full(frames, np.nan) for _ in range(3))
    rss_every = max(1, frames // 100)
    rss = np.full((frames // rss_every + 2, 2), np.nan)
    rss[0] = 0, rss_mib()
    t_start = time.perf_counter()
    for k in tqdm(range(frames), desc="soak", unit="frame", mininterval=2.0, disable=not args.progress):
        t = k / args.hz
        if t >= next_jump:
            offset += 3.0 if jump_sign > 0 else -10.0
            injected["clock_jump"] += 1
            next_jump, jump_sign = next_jump + args.jump_every_s, -jump_sign
        stamp = t + offset
        for slot, person in enumerate(people):
            if rng.random() < args.churn_per_s / args.hz:
                person.generation += 1
                injected["id_churn"] += 1
            pid = f"{slot}.{person.generation}"
            if rng.random() < args.dropout:
                injected["not_sent"] += 1
                continue
            joints, layout = person.joints(t), None
            fault = rng.random()
            if fault < args.fault_rate:
                joints = joints.copy()
                joints[rng.integers(25), rng.integers(3)] = np.nan
                injected["non_finite"] += 1
            elif fault < 1.5 * args.fault_rate:
                joints = joints[:-1]
                injected["bad_shape"] += 1
            elif fault < 1.75 * args.fault_rate:
                layout = "no_such_layout"
                injected["bad_layout"] += 1
            used = rec.push(pid, float("nan") if 1.75 * args.fault_rate <= fault < 2 * args.fault_rate
                            else stamp, joints, None, layout)  # fmt: skip
            injected["bad_stamp"] += 1.75 * args.fault_rate <= fault < 2 * args.fault_rate
            pushes += 1
            if used and fault > 1 - args.fault_rate:  # a duplicate, or a slightly late copy, right after
                late = fault > 1 - args.fault_rate / 2
                rec.push(pid, stamp - 0.005 if late else stamp, joints, None, None)
                pushes += 1
                injected["backwards_stamp" if late else "repeated_stamp"] += 1
        t0, c0 = time.perf_counter(), time.thread_time()
        results = rec.poll()
        if results:
            poll_ms[k], poll_cpu_ms[k] = (time.perf_counter() - t0) * 1e3, (time.thread_time() - c0) * 1e3
            latency_ms[k] = np.median([r.latency_ms for r in results])
        if k % int(args.hz) == 0:
            rec.expire(stamp)
        if k % rss_every == 0:
            rss[k // rss_every + 1] = k, rss_mib()
    wall = time.perf_counter() - t_start
    rss[-1] = frames, rss_mib()
    series = {"poll_wall": poll_ms, "poll_thread_cpu": poll_cpu_ms, "latency_due_to_done": latency_ms}
    return report(args, rec.stats, injected, pushes, frames, wall, series, rss[~np.isnan(rss[:, 0])])


def _p50_drift(per_frame: np.ndarray) -> dict:
    """p50 over the first and the last 10 % of the input (frames without a model run are NaN)."""
    n = len(per_frame)
    first, last = per_frame[: n // 10], per_frame[n - n // 10 :]
    a = float(np.nanmedian(first)) if np.isfinite(first).any() else float("nan")
    b = float(np.nanmedian(last)) if np.isfinite(last).any() else float("nan")
    return {"first10_p50_ms": a, "last10_p50_ms": b, "drift_ratio": b / a if a else float("nan")}


def report(args, stats, injected, pushes, frames, wall, series, rss) -> dict:
    reasons = stats["dropped_by_reason"]
    warm = float(rss[np.argmax(rss[:, 0] >= 0.1 * frames), 1])
    deciles = [float(rss[np.argmax(rss[:, 0] >= q * frames), 1]) for q in np.linspace(0, 1, 11)]
    return {
        "input_minutes": args.minutes,
        "people": args.people,
        "hz": args.hz,
        "frames": frames,
        "wall_s": wall,
        "input_s_per_wall_s": frames / args.hz / wall,
        "pushes": pushes,
        "received": stats["received"],
        "used": stats["used"],
        "dropped": stats["dropped"],
        "dropped_by_reason": reasons,
        "events": stats["events"],
        "injected": dict(injected),
        "accounting_ok": stats["received"] == pushes == stats["used"] + sum(reasons.values()),
        "windows": stats["windows"],
        "inference_errors": stats["inference_errors"],
        "tracks_at_end": stats["tracks"],
        "rss_mib_at_each_tenth": deciles,
        "rss_mib": {
            "start": float(rss[0, 1]),
            "after_warmup": warm,
            "end": float(rss[-1, 1]),
            "max": float(rss[:, 1].max()),
        },
        "rss_growth_after_warmup_mib": float(rss[-1, 1]) - warm,
        **{key: _p50_drift(values) for key, values in series.items()},
        "poll_wall_p99_ms": float(np.nanpercentile(series["poll_wall"], 99)),
        "torch_threads": torch.get_num_threads(),
    }


def print_table(r: dict) -> None:
    inj, m = r["injected"], r["rss_mib"]
    lines = [
        f"{r['input_minutes']:.0f} min of input, {r['people']} people at {r['hz']:.0f} Hz: "
        f"{r['frames']} frames in {r['wall_s']:.1f} s wall ({r['input_s_per_wall_s']:.1f}x real time)",
        f"{'drop reason':<18}{'dropped':>10}{'injected':>10}",
    ]
    for reason, n in sorted(r["dropped_by_reason"].items()):
        if n or reason in inj:
            lines.append(f"{reason:<18}{n:>10}{inj.get(reason, 0):>10}")
    ok = "OK" if r["accounting_ok"] else "MISMATCH"
    lines += [
        f"received {r['received']} = used {r['used']} + dropped {r['dropped']}: {ok} (pushes {r['pushes']})",
        f"not sent {inj.get('not_sent', 0)}, id churn {inj.get('id_churn', 0)}, "
        f"clock jumps {inj.get('clock_jump', 0)}; events {r['events']}",
        f"RSS MiB: start {m['start']:.1f}, after warm-up {m['after_warmup']:.1f}, end {m['end']:.1f}, "
        f"max {m['max']:.1f}; growth after warm-up {r['rss_growth_after_warmup_mib']:+.1f} MiB",
    ]
    lines.append(
        "RSS MiB at each tenth of the input: " + " ".join(f"{v:.0f}" for v in r["rss_mib_at_each_tenth"])
    )
    for key in ("latency_due_to_done", "poll_wall", "poll_thread_cpu"):
        d = r[key]
        lines.append(
            f"{key:<20} p50 first 10% {d['first10_p50_ms']:.2f} ms, last 10% {d['last10_p50_ms']:.2f} ms "
            f"(x{d['drift_ratio']:.2f})"
        )
    lines.append(
        f"windows {r['windows']}, inference errors {r['inference_errors']}, tracks {r['tracks_at_end']}"
    )
    print("\n" + "\n".join(lines))


def write_json_atomic(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh, indent=2)
    os.replace(tmp, path)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=60.0, help="minutes of input to simulate")
    p.add_argument("--people", type=int, default=4)
    p.add_argument("--hz", type=float, default=30.0)
    p.add_argument("--stride", type=int, default=15, help="recogniser stride (frames)")
    p.add_argument("--dropout", type=float, default=0.05, help="probability a frame is never sent")
    p.add_argument("--fault-rate", type=float, default=0.02, help="base probability of each bad-frame kind")
    p.add_argument("--churn-per-s", type=float, default=1 / 60, help="id changes per person per second")
    p.add_argument("--jump-every-s", type=float, default=120.0, help="seconds between stream clock jumps")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="write the figures here (atomically)")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    args = p.parse_args()
    result = soak(args)
    print_table(result)
    print(json.dumps(result, indent=2))
    if args.json:
        write_json_atomic(args.json, result)
    return 0 if result["accounting_ok"] and result["inference_errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
