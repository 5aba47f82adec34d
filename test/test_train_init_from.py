"""Pre-training continued from a checkpoint (--init-from): weights, teacher, fresh schedule, provenance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import TINY_MODEL_OVERRIDES

from masksem_core.cli import main
from masksem_core.train.checkpoint import load_checkpoint
from masksem_core.train.init_from import file_sha256


def _pretrain(npz: Path, out: Path, epochs: int, *extra: str) -> None:
    args = [
        "pretrain",
        "--config",
        "nwucla_pretrain",
        *TINY_MODEL_OVERRIDES,
        f"data.path={npz}",
        f"run.out_dir={out}",
        f"optim.epochs={epochs}",
        "optim.warmup_epochs=1",
        "optim.batch_size=16",
        "run.max_steps_per_epoch=3",
        *extra,
    ]
    assert main(args) == 0


@pytest.fixture(scope="module")
def mamp_then_masksem(nwucla_npz: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("init_from")
    mamp, cont = base / "mamp", base / "cont"
    _pretrain(nwucla_npz, mamp, 1, "masking.strategy=motion", "target.kind=velocity")
    # frozen teacher (momentum 1): after training it must still be the loaded MAMP encoder
    _pretrain(
        nwucla_npz,
        cont,
        2,
        f"run.init_from={mamp / 'last.pt'}",
        "masking.strategy=semantic",
        "masking.cam_norm=authors",
        "masking.cam_scale=auto",
        "masking.momentum=1.0",
    )
    return mamp, cont


def test_continued_run_records_where_it_started(mamp_then_masksem: tuple[Path, Path]) -> None:
    mamp, cont = mamp_then_masksem
    record = json.loads((cont / "results.json").read_text())["init_from"]
    assert record["path"] == str((mamp / "last.pt").resolve())
    assert record["sha256"] == file_sha256(mamp / "last.pt")
    assert record["epochs_trained"] == 1 and record["epochs_planned"] == 1
    assert record["masking"]["strategy"] == "motion" and record["target"]["kind"] == "velocity"
    assert record["config"]["optim"]["epochs"] == 1 and record["config"]["run"]["out_dir"] == str(mamp)
    assert load_checkpoint(cont / "last.pt")["extra"]["init_from"] == record


def test_continued_run_keeps_weights_teacher_and_own_schedule(mamp_then_masksem: tuple[Path, Path]) -> None:
    mamp, cont = mamp_then_masksem
    start, end = load_checkpoint(mamp / "last.pt"), load_checkpoint(cont / "last.pt")
    enc0 = {k: v for k, v in start["model"].items() if k.startswith("encoder.")}
    teacher = {
        k.replace("teacher.", "encoder.", 1): v for k, v in end["model"].items() if k.startswith("teacher.")
    }
    assert teacher.keys() == enc0.keys()
    assert all(torch.equal(teacher[k], enc0[k]) for k in enc0)  # teacher = loaded encoder, frozen
    assert any(not torch.equal(end["model"][k], enc0[k]) for k in enc0)  # the student trained on
    assert end["epoch"] == 1  # its own 2 epochs, not 1 + 2
    steps = {int(s["step"]) for s in end["optimizer"]["state"].values()}
    assert steps == {6}  # a fresh optimiser: 2 epochs x 3 steps, none carried over


def test_continued_run_from_a_continued_run_keeps_the_chain(
    mamp_then_masksem: tuple[Path, Path], nwucla_npz: Path, tmp_path: Path
) -> None:
    _, cont = mamp_then_masksem
    _pretrain(nwucla_npz, tmp_path, 1, f"run.init_from={cont / 'last.pt'}", "masking.strategy=motion")
    record = json.loads((tmp_path / "results.json").read_text())["init_from"]
    assert record["masking"]["strategy"] == "semantic"
    assert record["init_from"]["masking"]["strategy"] == "motion"
