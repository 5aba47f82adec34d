"""Benchmark: NTU `.skeleton` parsing, ours (numpy + process pool) vs the standard per-line parse.

Builds a corpus by replicating the five real samples in ../shared/data/ntu-samples (default 1000
files), then measures in the same run:
- baseline: the standard pipeline's `get_raw_bodies_data` loop (one Python split + np.array per joint
  line, np.vstack per frame), re-implemented faithfully below, on one process;
- ours, parse only (the like-for-like figure): `parse_skeleton_file`, with the compiled scanner when
  numba is installed and with the numpy parser;
- ours end to end: parse + denoise + centre (everything `masksem prepare` does per file);
each on one process and on a process pool of --workers.
Prints files/s and the speed-up. Usage: python bench/bench_prepare.py [--files 1000] [--workers 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from masksem_core.data.ntu import parse_skeleton_file
from masksem_core.data.ntu_prepare import ntu_clip
from masksem_core.data.ntu_scan import scan_available

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ntu-samples"


def standard_parse(path: str) -> dict:
    """The standard stage-1 parse (get_raw_skes_data.get_raw_bodies_data), per line, as published."""
    with open(path) as fr:
        str_data = fr.readlines()
    num_frames = int(str_data[0].strip("\r\n"))
    frames_drop = []
    bodies_data: dict = {}
    valid_frames = -1
    current_line = 1
    for f in range(num_frames):
        num_bodies = int(str_data[current_line].strip("\r\n"))
        current_line += 1
        if num_bodies == 0:
            frames_drop.append(f)
            continue
        valid_frames += 1
        joints = np.zeros((num_bodies, 25, 3), dtype=np.float32)
        colors = np.zeros((num_bodies, 25, 2), dtype=np.float32)
        for b in range(num_bodies):
            body_id = str_data[current_line].strip("\r\n").split()[0]
            current_line += 1
            num_joints = int(str_data[current_line].strip("\r\n"))
            current_line += 1
            for j in range(num_joints):
                temp_str = str_data[current_line].strip("\r\n").split()
                joints[b, j, :] = np.array(temp_str[:3], dtype=np.float32)
                colors[b, j, :] = np.array(temp_str[5:7], dtype=np.float32)
                current_line += 1
            if body_id not in bodies_data:
                body_data = {"joints": joints[b], "colors": colors[b, np.newaxis], "interval": [valid_frames]}
            else:
                body_data = bodies_data[body_id]
                body_data["joints"] = np.vstack((body_data["joints"], joints[b]))
                body_data["colors"] = np.vstack((body_data["colors"], colors[b, np.newaxis]))
                body_data["interval"].append(body_data["interval"][-1] + 1)
            bodies_data[body_id] = body_data
    if len(bodies_data) > 1:
        for body_data in bodies_data.values():
            body_data["motion"] = np.sum(np.var(body_data["joints"], axis=0))
    return {"data": bodies_data, "num_frames": num_frames - len(frames_drop)}


def make_corpus(out: Path, n: int) -> list[str]:
    """n copies of the five samples, named with distinct replication / performer numbers."""
    sources = sorted(SAMPLES.glob("*.skeleton"))
    files = []
    for i in range(n):
        src = sources[i % len(sources)]
        name = f"{src.name[:8]}P{1 + i // 500:03d}R{i % 500:03d}{src.name[16:20]}.skeleton"
        dst = out / name
        shutil.copyfile(src, dst)
        files.append(str(dst))
    return files


def parse_only(path: str) -> None:
    parse_skeleton_file(path)


def parse_only_numpy(path: str) -> None:
    parse_skeleton_file(path, fast=False)


def rate(fn, files: list[str], workers: int = 1) -> float:
    t0 = time.perf_counter()
    if workers <= 1:
        for f in files:
            fn(f)
    else:
        with mp.get_context("fork").Pool(workers) as pool:
            for _ in pool.imap(fn, files, chunksize=16):
                pass
    return len(files) / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--baseline-files", type=int, default=200, help="files timed for the slow baseline")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    if not SAMPLES.is_dir():
        print(f"no samples at {SAMPLES}", file=sys.stderr)
        return 2
    fast = scan_available()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = make_corpus(Path(tmp), args.files)
        if fast:
            parse_only(files[0])  # compile (or load the cached machine code) before forking and timing
        base = rate(standard_parse, files[: args.baseline_files])
        for label, fn in (
            ("parse, numpy parser", parse_only_numpy),
            (f"parse, {'compiled scanner' if fast else 'numpy parser (no numba)'}", parse_only),
            ("parse + denoise + centre (prepare)", ntu_clip),
        ):
            if fn is parse_only_numpy and not fast:
                continue
            rows.append((label, rate(fn, files), rate(fn, files, args.workers)))
    print(f"corpus: {args.files} files (5 real NTU samples replicated); numba scanner: {fast}")
    print(f"standard per-line parse, 1 process: {base:8.1f} files/s ({args.baseline_files} files)")
    print(f"{'ours':38s} {'1 process':>18s} {f'{args.workers} workers':>18s}")
    for label, one, many in rows:
        print(f"{label:38s} {one:8.1f} (x{one / base:4.1f}) {many:8.1f} (x{many / base:4.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
