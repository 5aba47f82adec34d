"""Two torchrun processes (gloo, CPU): after a DDP step every rank holds identical parameters."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gloo_step_keeps_ranks_identical(nwucla_npz: Path, tmp_path: Path) -> None:
    worker = Path(__file__).with_name("ddp_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        str(worker),
        str(nwucla_npz),
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [(tmp_path / f"rank{r}.txt").read_text().split() for r in (0, 1)]
    (w0, before0, after0, data0, loss0), (w1, before1, after1, data1, loss1) = rows
    assert w0 == w1 == "2"
    assert data0 != data1, "DistributedSampler should give the ranks different clips"
    assert after0 == after1, "parameters (and EMA teacher) must be identical on every rank after a step"
    assert after0 != before0, "the step must have changed the parameters"
    assert loss0 == loss1  # the logged loss is all-reduced
