"""How many CPU threads a command uses, and a warning when the CPU is already busy.

One rule for every `masksem` command: `--threads N` when given, else `OMP_NUM_THREADS` when set, else
the cores this process may run on (`os.sched_getaffinity`: a container's or taskset's share, not the
machine's). The count goes to torch (intra-op threads) and to the environment that worker processes
inherit (`OMP_NUM_THREADS`, `MKL_NUM_THREADS`). On a CPU shared with other jobs, OpenMP threads that
outnumber the free cores wait on each other: a step can get 10x slower, so the start line states the
load average and warns when threads + load exceed the cores.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), or os.cpu_count() where that is unknown."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        return os.cpu_count() or 1


def default_threads() -> int:
    """OMP_NUM_THREADS when it is set to a positive integer, else the usable cores."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    return usable_cores()


def load_average() -> float | None:
    """The 1-minute load average (runnable processes), or None where the OS has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


@dataclass(frozen=True)
class ThreadPlan:
    threads: int
    source: str  # "--threads", "OMP_NUM_THREADS" or "cores"
    cores: int
    load: float | None

    @property
    def oversubscribed(self) -> bool:
        """The load already there plus our threads need more cores than this process may use."""
        return self.load is not None and self.load + self.threads > self.cores + 0.5

    def start_line(self, command: str) -> str:
        plural = "s" if self.threads != 1 else ""
        load = f"load average {self.load:.2f}" if self.load is not None else "load average unknown"
        return (
            f"masksem {command}: {self.threads} thread{plural} ({self.source}); "
            f"{self.cores} usable cores, {load}"
        )

    def warning(self, command: str) -> str | None:
        if not self.oversubscribed:
            return None
        advice = "use --threads 1 on a shared machine" if self.threads > 1 else "other jobs share the CPU"
        return (
            f"masksem {command}: warning: the CPU is oversubscribed (load {self.load:.1f} + {self.threads} "
            f"thread{'s' if self.threads != 1 else ''} > {self.cores} cores): steps may run several times "
            f"slower; {advice}"
        )


def plan_threads(requested: int | None) -> ThreadPlan:
    """The thread count by the module's rule, with where it came from."""
    cores = usable_cores()
    if requested is not None:
        threads, source = requested, "--threads"
    else:
        threads = default_threads()
        source = "cores" if threads == cores and "OMP_NUM_THREADS" not in os.environ else "OMP_NUM_THREADS"
    return ThreadPlan(threads, source, cores, load_average())


def apply_threads(threads: int) -> None:
    """Set torch's intra-op threads and the thread environment that child processes inherit."""
    for name in THREAD_ENV:
        os.environ[name] = str(threads)
    import torch

    torch.set_num_threads(threads)


def configure(command: str, requested: int | None, quiet: bool = False) -> ThreadPlan:
    """Apply the thread rule; print the start line (and a warning when oversubscribed) to stderr."""
    plan = plan_threads(requested)
    apply_threads(plan.threads)
    if not quiet:
        print(plan.start_line(command), file=sys.stderr, flush=True)
        warning = plan.warning(command)
        if warning:
            print(warning, file=sys.stderr, flush=True)
    return plan
