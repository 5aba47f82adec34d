"""Timing shared by the benchmarks: wall and process-CPU milliseconds per call, after untimed warm-up."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def timed(
    fn: Callable[[], object], iters: int, warmup: int, sync: Callable[[], None]
) -> tuple[np.ndarray, np.ndarray]:
    """Wall-clock and process CPU milliseconds per call. On a shared machine the CPU time of a
    single-threaded run approximates the wall time the call would take on an idle core."""
    for _ in range(warmup):
        fn()
    sync()
    wall, cpu = [], []
    for _ in range(iters):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        sync()
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return np.asarray(wall), np.asarray(cpu)
