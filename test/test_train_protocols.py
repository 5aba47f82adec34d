"""A tiny pretrain -> linprobe -> finetune -> evaluate run on real NW-UCLA clips, and exact resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_MODEL_OVERRIDES

from masksem_core.cli import main
from masksem_core.train.checkpoint import load_checkpoint, load_classifier

TINY = TINY_MODEL_OVERRIDES
# nwucla_pretrain defaults to MAMP (issue 19); these tests exercise MaskSem, its teacher and CAM logging
MASKSEM = ("masking.strategy=semantic", "target.kind=hybrid")


def _run(*args: str) -> None:
    assert main(list(args)) == 0


def _log(path: Path) -> list[dict[str, str]]:
    import csv

    with (path / "log.csv").open() as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def pretrained(nwucla_npz: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pre")
    _run(
        "pretrain",
        "--config",
        "nwucla_pretrain",
        *TINY,
        *MASKSEM,
        f"data.path={nwucla_npz}",
        f"run.out_dir={out}",
        "optim.epochs=4",
        "optim.warmup_epochs=1",
        "optim.batch_size=32",
        "run.max_steps_per_epoch=25",
        "run.save_every=2",
    )
    return out


def test_pretraining_lowers_the_loss(pretrained: Path) -> None:
    rows = _log(pretrained)
    assert len(rows) == 4
    losses = [float(r["loss"]) for r in rows]
    assert losses[-1] < 0.9 * losses[0], losses
    assert abs(float(rows[-1]["mask_ratio"]) - 0.9) < 0.01
    assert "cam_masked" in rows[-1]  # semantic masking logs what it selected
    payload = load_checkpoint(pretrained / "last.pt")
    assert payload["kind"] == "pretrain" and payload["epoch"] == 3
    assert any(k.startswith("teacher.") for k in payload["model"])
    results = json.loads((pretrained / "results.json").read_text())
    assert results["final_loss"] == pytest.approx(losses[-1], rel=1e-5)


def test_linear_probe_beats_chance(pretrained: Path, nwucla_npz: Path, tmp_path: Path, capsys) -> None:
    _run(
        "linprobe",
        "--config",
        "nwucla_linprobe",
        *TINY,
        f"data.path={nwucla_npz}",
        f"run.out_dir={tmp_path}",
        f"run.pretrained={pretrained / 'last.pt'}",
        "optim.epochs=30",
    )
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["num_samples"] == 464  # NW-UCLA view 3
    assert res["top1"] > 25.0, res["top1"]  # chance is 10%
    assert 0 <= res["knn_top1"] <= 100 and len(res["per_class_accuracy"]) == 10
    assert (tmp_path / "confusion.png").stat().st_size > 1000
    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    assert last_line.startswith("linprobe top-1") and f"{res['top1']:.2f}%" in last_line
    model, meta = load_classifier(tmp_path / "classifier.pt")
    assert meta["layout"] == "kinect_v1_20" and len(meta["labels"]) == 10 and model.num_classes == 10


def test_log_csv_gains_the_columns_of_later_epochs(tmp_path: Path) -> None:
    """Evaluation epochs add test_top1: the CSV is widened (earlier rows empty there), not truncated."""
    from masksem_core.train.results import RunLogger

    log = RunLogger(tmp_path)
    log.log(1, {"epoch": 1, "loss": 2.0})
    log.log(2, {"epoch": 2, "loss": 1.5, "test_top1": 40.0})
    log.close()
    again = RunLogger(tmp_path)  # a resumed run reads the widened header
    again.log(3, {"epoch": 3, "loss": 1.2})
    again.close()
    rows = _log(tmp_path)
    assert [r["test_top1"] for r in rows] == ["", "40.0", ""]
    assert [r["loss"] for r in rows] == ["2.0", "1.5", "1.2"]


def test_probe_lr_is_chosen_on_held_out_training_clips(
    pretrained: Path, nwucla_npz: Path, tmp_path: Path, capsys
) -> None:
    """probe.lr_grid: every rate is scored on held-out training clips, the best refit on all of them; a rate
    that cannot learn in the budget (1e-6) must lose, and the run without a grid keeps optim.lr."""
    common = ["--config", "nwucla_linprobe", *TINY, f"data.path={nwucla_npz}",
              f"run.pretrained={pretrained / 'last.pt'}", "optim.epochs=20"]  # fmt: skip
    grid = ["probe.lr_grid=[1e-6,0.1]", "probe.lr_widen=0"]
    _run("linprobe", *common, f"run.out_dir={tmp_path / 'grid'}", *grid)
    res = json.loads((tmp_path / "grid" / "results.json").read_text())
    assert set(res["probe_val_top1"]) == {"1e-06", "0.1"}
    assert res["probe_val_top1"]["0.1"] > res["probe_val_top1"]["1e-06"] + 10
    assert res["probe_lr"] == 0.1 and res["probe_lr_at_edge"] is True  # no widening allowed: it says so
    assert "probe lr on held-out training clips" in capsys.readouterr().out
    _run("linprobe", *common, f"run.out_dir={tmp_path / 'plain'}", "optim.lr=0.1", "probe.lr_grid=[]")
    plain = json.loads((tmp_path / "plain" / "results.json").read_text())
    assert plain["probe_lr"] == 0.1 and "probe_val_top1" not in plain
    assert plain["top1"] == pytest.approx(res["top1"])  # the refit with the chosen rate is the plain run
    assert main(["linprobe", *common, f"run.out_dir={tmp_path / 'bad'}", "probe.lr_grid=[0.1,-1]"]) == 2
    assert "probe.lr_grid must hold learning rates > 0" in capsys.readouterr().err


def test_finetune_and_evaluate_agree(pretrained: Path, nwucla_npz: Path, tmp_path: Path) -> None:
    ft = tmp_path / "ft"
    _run(
        "finetune",
        "--config",
        "nwucla_finetune",
        *TINY,
        f"data.path={nwucla_npz}",
        f"run.out_dir={ft}",
        f"run.pretrained={pretrained / 'last.pt'}",
        "optim.epochs=2",
        "optim.warmup_epochs=0",
        "run.max_steps_per_epoch=10",
        "run.eval_every=2",
        "optim.average_fraction=null",  # the plain weights only
        "data.val_fraction=null",  # periodic evaluation on the test split (best_classifier.pt below)
    )
    res = json.loads((ft / "results.json").read_text())
    assert res["top1"] > 10.0, res["top1"]  # chance 10%
    ev = tmp_path / "ev"
    _run(
        "evaluate",
        "--config",
        "nwucla_finetune",
        *TINY,
        f"data.path={nwucla_npz}",
        f"run.out_dir={ev}",
        "--checkpoint",
        str(ft / "classifier.pt"),
    )
    # classifier.pt is the last epoch (what top1 reports), never a checkpoint chosen on the test split
    assert json.loads((ev / "results.json").read_text())["top1"] == pytest.approx(res["top1"])
    assert res["best_on"] == "test" and load_checkpoint(ft / "best_classifier.pt")["epoch"] == 1


def _finetune_args(pretrained: Path, nwucla_npz: Path, out: Path, *extra: str) -> list[str]:
    return ["finetune", "--config", "nwucla_finetune", *TINY, f"data.path={nwucla_npz}", f"run.out_dir={out}",
            f"run.pretrained={pretrained / 'last.pt'}", "optim.warmup_epochs=0", "run.max_steps_per_epoch=6",
            "run.eval_every=1", *extra]  # fmt: skip


def test_weight_average_and_held_out_clips(pretrained: Path, nwucla_npz: Path, tmp_path: Path) -> None:
    """optim.ema_decay (legacy): the average is evaluated periodically, the raw score logged beside it;
    data.val_fraction: periodic evaluation and the best checkpoint use held-out training clips, and the
    test split is scored at the end; classifier.pt holds the weights the held-out clips chose."""
    ft = tmp_path / "ft"
    _run(*_finetune_args(pretrained, nwucla_npz, ft, "optim.epochs=2", "optim.ema_decay=0.9",
                         "optim.average_fraction=null", "data.val_fraction=0.2"))  # fmt: skip
    rows = _log(ft)
    assert all(r["val_top1"] and r["val_top1_raw"] and "test_top1" not in r for r in rows)
    res = json.loads((ft / "results.json").read_text())
    w = res["weights"]
    column = "val_top1" if w["chosen"] == "averaged" else "val_top1_raw"
    assert res["best_on"] == "val" and res["val_top1"] == pytest.approx(float(rows[-1][column]))
    assert w["val_top1"]["averaged"] == pytest.approx(float(rows[-1]["val_top1"]))
    assert w["val_top1"]["raw"] == pytest.approx(float(rows[-1]["val_top1_raw"]))
    assert res["num_samples"] == 464  # the final score is on the test split
    last = load_checkpoint(ft / "last.pt")
    saved = load_checkpoint(ft / "classifier.pt")["model"]
    for key, value in saved.items():  # classifier.pt holds the chosen weights
        kept = last["ema"][f"module.{key}"] if w["chosen"] == "averaged" else last["model"][key]
        assert torch.equal(value, kept), key
    assert any(not torch.equal(v, last["ema"][f"module.{k}"]) for k, v in last["model"].items()
               if v.is_floating_point())  # fmt: skip
    ev = tmp_path / "ev"
    _run("evaluate", "--config", "nwucla_finetune", *TINY, f"data.path={nwucla_npz}", f"run.out_dir={ev}",
         "--checkpoint", str(ft / "classifier.pt"))  # fmt: skip
    assert json.loads((ev / "results.json").read_text())["top1"] == pytest.approx(res["top1"])


def test_held_out_clips_are_class_balanced_and_never_trained_on(nwucla_npz: Path) -> None:
    from masksem_core.train.classify import _hold_out
    from masksem_core.train.cli import load_experiment
    from masksem_core.train.loaders import make_dataset

    overrides = [f"data.path={nwucla_npz}", "data.val_fraction=0.2", "run.seed=3"]
    cfg = load_experiment("nwucla_finetune", overrides)
    full = make_dataset(cfg, "train", train=True)
    fit, val = _hold_out(cfg, full)
    assert not set(fit.indices) & set(val.indices)
    assert sorted([*fit.indices, *val.indices]) == list(range(len(full)))
    assert val.train is False and fit.train is True  # held-out clips get the test transform
    # the shipped recipe rotates up to 0.6 rad while fitting; held-out clips are never rotated
    assert not val.rotate and fit.rotate and fit.rotate_theta == cfg.data.rotate_theta == 0.6
    per_class = np.bincount(val.targets) / np.bincount(full.targets)
    assert np.all(np.abs(per_class - 0.2) < 0.02), per_class
    again = _hold_out(cfg, full)[1]
    assert np.array_equal(again.indices, val.indices)  # seeded


def test_held_out_view_mimics_a_cross_view_test(nwucla_npz: Path) -> None:
    """data.val_names: fit on NW-UCLA view 1, score on view 2, the test view 3 untouched."""
    from masksem_core.config import ConfigError
    from masksem_core.train.classify import _hold_out
    from masksem_core.train.cli import load_experiment
    from masksem_core.train.loaders import make_dataset

    by_name = ["data.val_fraction=null", "data.val_names=_v02$"]  # the recipe holds out a fraction
    cfg = load_experiment("nwucla_finetune", [f"data.path={nwucla_npz}", *by_name])
    full = make_dataset(cfg, "train", train=True)
    fit, val = _hold_out(cfg, full)
    assert {full.names[i][-4:] for i in fit.indices} == {"_v01"}
    assert {full.names[i][-4:] for i in val.indices} == {"_v02"}
    assert len(fit) + len(val) == len(full) == 1020 and len(val) == 504
    cfg.data.val_names = "_v03$"  # the test view: no training clip has it
    with pytest.raises(ConfigError, match=r"matches 0 of the 1020 training clips"):
        _hold_out(cfg, full)
    with pytest.raises(ConfigError, match="set one"):
        load_experiment("nwucla_finetune", ["data.val_names=_v02$", "data.val_fraction=0.2"])


def test_resume_with_weight_average_is_exact(pretrained: Path, nwucla_npz: Path, tmp_path: Path) -> None:
    args = ("optim.epochs=2", "optim.average_epochs=1", "optim.average_fraction=null",
            "run.deterministic=true", "run.save_every=1")  # fmt: skip
    _run(*_finetune_args(pretrained, nwucla_npz, tmp_path / "a", *args))
    _run(*_finetune_args(pretrained, nwucla_npz, tmp_path / "b", *args, "run.stop_after_epochs=1"))
    with (tmp_path / "b" / "log.csv").open("a") as f:  # a run killed in epoch 2 (0-based) had logged epoch 1
        f.write("1,9.9,1.0,0.001,1.0,1.0\n")
    _run(*_finetune_args(pretrained, nwucla_npz, tmp_path / "b", *args), "--resume")
    a, b = (load_checkpoint(tmp_path / d / "last.pt") for d in "ab")
    for part in ("model", "ema"):
        for key, value in a[part].items():
            assert torch.equal(value, b[part][key]), (part, key)
    assert _log(tmp_path / "a") == _log(tmp_path / "b")  # the redone epoch replaces the stale row


def test_resume_gives_identical_weights(nwucla_npz: Path, tmp_path: Path) -> None:
    common = [
        "pretrain",
        "--config",
        "nwucla_pretrain",
        *TINY,
        *MASKSEM,
        f"data.path={nwucla_npz}",
        "optim.epochs=3",
        "optim.warmup_epochs=1",
        "run.max_steps_per_epoch=4",
        "run.deterministic=true",
        "run.save_every=1",
    ]
    _run(*common, f"run.out_dir={tmp_path / 'a'}")
    _run(*common, f"run.out_dir={tmp_path / 'b'}", "run.stop_after_epochs=1")
    assert load_checkpoint(tmp_path / "b" / "last.pt")["epoch"] == 0
    _run(*common, f"run.out_dir={tmp_path / 'b'}", "--resume")
    a = load_checkpoint(tmp_path / "a" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "last.pt")
    assert a["epoch"] == b["epoch"] == 2
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key


def test_semi_supervised_draws_report_mean_and_std(
    pretrained: Path, nwucla_npz: Path, tmp_path: Path
) -> None:
    _run(
        "finetune",
        "--config",
        "nwucla_finetune",
        *TINY,
        f"data.path={nwucla_npz}",
        f"run.out_dir={tmp_path}",
        f"run.pretrained={pretrained / 'last.pt'}",
        "optim.epochs=1",
        "optim.warmup_epochs=0",
        "run.max_steps_per_epoch=2",
        "data.label_fraction=0.1",
        "run.semi_draws=2",
    )
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["draws"] == 2 and len(res["top1_per_draw"]) == 2
    assert res["top1_mean"] == pytest.approx(sum(res["top1_per_draw"]) / 2)
    assert (tmp_path / "draw0" / "classifier.pt").exists() and (tmp_path / "draw1" / "classifier.pt").exists()


def test_a_dual_stream_model_trains_both_passes_and_is_scored_bidirectionally(
    pretrained: Path, nwucla_npz: Path, tmp_path: Path
) -> None:
    """streaming.dual on real clips: the loss covers both passes (per-token labels repeated), the checkpoint
    says dual, and offline scoring (finetune's top-1, evaluate) uses the bidirectional answer."""
    from masksem_core.runtime.export import load_classifier_checkpoint

    ft = tmp_path / "ft"
    stream = ("streaming.enabled=true", "streaming.dual=true", "optim.epochs=2", "data.val_fraction=null",
              "optim.average_fraction=null")  # fmt: skip
    _run(*_finetune_args(pretrained, nwucla_npz, ft, *stream))
    rows = _log(ft)
    assert len(rows) == 2 and all(np.isfinite(float(r["loss"])) for r in rows)
    model, meta = load_classifier_checkpoint(ft / "classifier.pt")
    assert meta["dual"] and model.dual and not model.causal
    ev = tmp_path / "ev"
    _run("evaluate", "--config", "nwucla_finetune", *TINY, f"data.path={nwucla_npz}", f"run.out_dir={ev}",
         "--checkpoint", str(ft / "classifier.pt"))  # fmt: skip
    top1 = json.loads((ft / "results.json").read_text())["top1"]
    assert json.loads((ev / "results.json").read_text())["top1"] == pytest.approx(top1)


def test_continuation_table_reports_continuation_and_extra_fine_tune_seeds_apart(
    tmp_path: Path, isolated_script
) -> None:
    """Issue 19's table: the fine-tune column is the spread over continuation seeds (each fine-tuned with
    its own seed); extra fine-tune seeds of one continuation (finetune_f<F>) are a separate column."""
    exp = isolated_script("experiments/nwucla_continue.py")  # it puts experiments/ on sys.path
    rows = []
    for seed, ft in ((0, 80.0), (1, 84.0), (2, 82.0)):
        rows.append({"name": "mamp_continued", "seed": seed, "pretrain_s": 100.0, "linear_top1": 60.0 + seed,
                     "knn_top1": 70.0, "finetune_top1": ft, "mask_stats": {}})  # fmt: skip
    for f, top1 in ((1, 81.0), (2, 82.0)):
        out = tmp_path / "mamp_continued_s0" / f"finetune_f{f}"
        out.mkdir(parents=True)
        (out / "results.json").write_text(json.dumps({"top1": top1}))
    line = exp.table(rows, 100, tmp_path).splitlines()[2].split(" | ")
    assert line[2] == "0,1,2" and line[6] == "61.0 ± 1.0"
    assert line[8] == "82.0 ± 2.0"  # over continuation seeds 0-2
    assert line[9] == "s0: 81.00 ± 1.00 (3)"  # fine-tune seeds 0-2 of continuation 0
