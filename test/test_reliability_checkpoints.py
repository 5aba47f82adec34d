"""Crash safety of training: a pre-training run SIGKILLed mid-epoch and mid-checkpoint-write resumes to the
same weights as an uninterrupted run; damaged checkpoints and checkpoints of another model are refused
with a message that says which file and which keys.

The kills are real SIGKILLs of a real `masksem pretrain` process. They are placed deterministically by a
launcher that registers hooks before calling the CLI (an optimiser-step hook, or a wrapper around
`os.fsync` that sees the checkpoint's temp file), so the product code carries no test hooks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import TINY_MODEL_OVERRIDES

from masksem_core.train.checkpoint import CheckpointError, load_checkpoint, load_state_strict, save_checkpoint

TINY = [
    *TINY_MODEL_OVERRIDES,
    "optim.epochs=3",
    "optim.warmup_epochs=1",
    "run.max_steps_per_epoch=2",
    "run.deterministic=true",
    "run.save_every=1",
]

LAUNCHER = r"""
import os, signal, sys
mode, at = sys.argv[1], int(sys.argv[2])
if mode == "step":  # SIGKILL right after optimiser step `at` (1-based): mid-epoch
    from torch.optim.optimizer import register_optimizer_step_post_hook
    steps = [0]
    def hook(opt, args, kwargs):
        steps[0] += 1
        if steps[0] == at:
            os.kill(os.getpid(), signal.SIGKILL)
    register_optimizer_step_post_hook(hook)
elif mode == "write":  # SIGKILL while checkpoint write `at` is in its temp file, cut to half its bytes
    real_fsync = os.fsync
    writes = [0]
    def fsync(fd):
        name = os.readlink(f"/proc/self/fd/{fd}")
        if os.path.basename(name).startswith(".last.pt.") and name.endswith(".tmp"):
            writes[0] += 1
            if writes[0] == at:
                os.ftruncate(fd, os.fstat(fd).st_size // 2)
                os.kill(os.getpid(), signal.SIGKILL)
        return real_fsync(fd)
    os.fsync = fsync
from masksem_core.cli import main
sys.exit(main(sys.argv[3:]))
"""


def _pretrain(tmp_path: Path, out: Path, npz: Path, mode: str = "none", at: int = 0, *extra: str):
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    args = [
        "pretrain",
        "--config",
        "nwucla_pretrain",
        *TINY,
        f"data.path={npz}",
        f"run.out_dir={out}",
        *extra,
    ]
    return subprocess.run(
        [sys.executable, str(launcher), mode, str(at), *args],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=tmp_path,
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and SIGKILL")
def test_sigkill_mid_epoch_and_mid_checkpoint_write_then_resume_is_exact(nwucla_npz: Path, tmp_path: Path):
    whole = _pretrain(tmp_path, tmp_path / "whole", nwucla_npz)
    assert whole.returncode == 0, whole.stderr[-2000:]

    out = tmp_path / "killed"
    # 1) killed mid-epoch 2 (step 3 of 2 steps/epoch): epoch 1's checkpoint is what survives
    r = _pretrain(tmp_path, out, nwucla_npz, "step", 3)
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    assert load_checkpoint(out / "last.pt")["epoch"] == 0
    # 2) resumed, then killed while writing epoch 2's checkpoint: the old file is intact, not half-new
    before = (out / "last.pt").read_bytes()
    r = _pretrain(tmp_path, out, nwucla_npz, "write", 1, "--resume")
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    assert (out / "last.pt").read_bytes() == before
    leftovers = list(out.glob(".last.pt.*.tmp"))
    assert len(leftovers) == 1 and leftovers[0].stat().st_size < len(before)  # the half-written temp file
    # 3) resumed to the end
    r = _pretrain(tmp_path, out, nwucla_npz, "none", 0, "--resume")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resumed from" in r.stdout + r.stderr

    a, b = load_checkpoint(tmp_path / "whole" / "last.pt"), load_checkpoint(out / "last.pt")
    assert a["epoch"] == b["epoch"] == 2
    assert a["model"].keys() == b["model"].keys()
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "last.pt"
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Linear(16, 4))
    save_checkpoint({"kind": "pretrain", "model": model.state_dict(), "epoch": 3}, path)
    return path


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.99])
def test_truncated_checkpoint_is_reported(checkpoint: Path, tmp_path: Path, keep: float) -> None:
    data = checkpoint.read_bytes()
    bad = tmp_path / "cut.pt"
    bad.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError, match=r"cut\.pt is truncated or not a checkpoint"):
        load_checkpoint(bad)


def test_every_flipped_tensor_byte_is_caught_by_the_checksum(checkpoint: Path, tmp_path: Path) -> None:
    data = checkpoint.read_bytes()
    weights = torch.load(checkpoint, weights_only=True)["model"]["0.weight"]
    raw = weights.numpy().tobytes()
    start = data.index(raw[:64])  # the tensor's bytes sit uncompressed in the zip
    rng = torch.Generator().manual_seed(0)
    for offset in torch.randint(0, len(raw), (20,), generator=rng).tolist():
        bad = bytearray(data)
        bad[start + offset] ^= 1 << (offset % 8)
        path = tmp_path / "flip.pt"
        path.write_bytes(bytes(bad))
        with pytest.raises(CheckpointError, match=r"flip\.pt is corrupted: its checksum does not match"):
            load_checkpoint(path)


def test_checkpoint_of_another_configuration_names_the_keys(checkpoint: Path) -> None:
    other = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Linear(32, 4), torch.nn.ReLU())
    state = load_checkpoint(checkpoint)["model"]
    with pytest.raises(CheckpointError) as info:
        load_state_strict(other, state, str(checkpoint))
    msg = str(info.value)
    assert "does not fit this model configuration" in msg and str(checkpoint) in msg
    assert "0.weight: checkpoint (16, 8) vs model (32, 8)" in msg and "1.weight" in msg


def test_resume_with_another_model_size_is_refused(nwucla_npz: Path, tmp_path: Path) -> None:
    from masksem_core.train.cli import load_experiment
    from masksem_core.train.pretrain import pretrain

    out = tmp_path / "run"
    base = [
        *TINY,
        f"data.path={nwucla_npz}",
        f"run.out_dir={out}",
        "optim.epochs=1",
        "run.max_steps_per_epoch=1",
    ]
    pretrain(load_experiment("nwucla_pretrain", base))
    wider = load_experiment(
        "nwucla_pretrain", [*base, "model.dim=48", "model.decoder_dim=48", "optim.epochs=2"]
    )
    pattern = r"last\.pt does not fit this model configuration: shape mismatch \S+: "
    pattern += r"checkpoint \(32,\) vs model \(48,\)"
    with pytest.raises(CheckpointError, match=pattern):
        pretrain(wider, resume=True)
