"""Numbers a user can trust (issue 18): weight averaging chosen on validation, floors beside every
headline, self-describing checkpoints, an lr search that is never silently at its edge. Tiny models on
real NW-UCLA clips (skipped when ../shared/data is absent)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from conftest import TINY_MODEL_OVERRIDES

from masksem_core.cli import main
from masksem_core.train.classify import search_lr, warm_ema, weight_average
from masksem_core.train.config import OptimConfig

TINY = TINY_MODEL_OVERRIDES


def _run(*args: str) -> None:
    assert main(list(args)) == 0


def _json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


@pytest.fixture(scope="module")
def pretrained(nwucla_npz: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pre")
    _run("pretrain", "--config", "nwucla_pretrain", *TINY, f"data.path={nwucla_npz}", f"run.out_dir={out}",
         "optim.epochs=2", "optim.warmup_epochs=1", "run.max_steps_per_epoch=15")  # fmt: skip
    return out / "last.pt"


def _finetune(pretrained: Path | None, npz: Path, out: Path, *extra: str) -> dict:
    source = [f"run.pretrained={pretrained}"] if pretrained else ["run.pretrained=null"]
    _run("finetune", "--config", "nwucla_finetune", *TINY, f"data.path={npz}", f"run.out_dir={out}", *source,
         "optim.warmup_epochs=0", "run.max_steps_per_epoch=8", "run.eval_every=1", *extra)  # fmt: skip
    return _json(out / "results.json")


# ------------------------------------------------------------------------------------------ averaging
def test_warm_ema_is_a_running_mean_then_an_ema() -> None:
    """Warm-up: while fewer than 1/rate steps are in, the average is the plain mean of every step so far
    (no pull towards the first weights); after that each step weighs `rate`."""
    model = torch.nn.Linear(1, 1, bias=False)
    avg, info = weight_average(model, OptimConfig(average_epochs=2), steps_per_epoch=2)  # horizon 4 steps
    assert info["horizon_steps"] == 4 and info["decay"] == pytest.approx(0.75)
    seen = []
    for step, w in enumerate([1.0, 2.0, 3.0, 4.0, 10.0, 10.0]):
        model.weight.data.fill_(w)
        avg.update_parameters(model)
        seen.append(w)
        got = float(avg.module.weight.detach())
        if step < 4:
            assert got == pytest.approx(sum(seen) / len(seen)), step
    assert got == pytest.approx((2.5 * 0.75 + 10 * 0.25) * 0.75 + 10 * 0.25)
    first = [torch.tensor(0.0)]
    warm_ema(first, [torch.tensor(1.0)], torch.tensor(0), 0.1)
    assert float(first[0]) == 1.0
    # the horizon is in epochs, so it means the same on 300 clips and on 40k
    _, small = weight_average(model, OptimConfig(average_epochs=5), steps_per_epoch=10)
    _, large = weight_average(model, OptimConfig(average_epochs=5), steps_per_epoch=1000)
    assert small["horizon_epochs"] == large["horizon_epochs"] == 5
    _, frac = weight_average(model, OptimConfig(epochs=50, average_fraction=0.2), steps_per_epoch=10)
    assert frac["horizon_epochs"] == pytest.approx(10) and frac["horizon_steps"] == pytest.approx(100)


@pytest.mark.parametrize("average", ["optim.average_epochs=1", "optim.ema_decay=0.99"])
def test_chosen_weights_are_never_worse_on_validation(
    pretrained: Path, nwucla_npz: Path, tmp_path: Path, average: str
) -> None:
    """On real NW-UCLA clips: raw and averaged weights both scored on held-out training clips and on
    the test split; the kept weights (classifier.pt, re-scored here on the held-out clips) are at least
    as good on validation as the better of the two, and results.json reports both."""
    from masksem_core.train.checkpoint import load_classifier
    from masksem_core.train.classify import _hold_out
    from masksem_core.train.cli import load_experiment
    from masksem_core.train.engine import predict
    from masksem_core.train.loaders import make_dataset

    extra = ("optim.epochs=3", "optim.average_fraction=null", average, "data.val_fraction=0.2", "run.seed=1")
    res = _finetune(pretrained, nwucla_npz, tmp_path, *extra)
    w = res["weights"]
    assert set(w["val_top1"]) == set(w["test_top1"]) == {"raw", "averaged"}
    assert w["chosen"] in ("raw", "averaged") and "held-out" in w["chosen_on"]
    assert w["val_top1"][w["chosen"]] >= max(w["val_top1"].values())
    assert res["top1"] == w["test_top1"][w["chosen"]] and res["val_top1"] == w["val_top1"][w["chosen"]]
    # the saved classifier is the chosen one: score it again on the same held-out clips
    cfg = load_experiment("nwucla_finetune", [*TINY, f"data.path={nwucla_npz}", *extra])
    _, val = _hold_out(cfg, make_dataset(cfg, "train", train=True))
    model, _ = load_classifier(tmp_path / "classifier.pt")
    logits, labels = predict(model, torch.utils.data.DataLoader(val, batch_size=64), torch.device("cpu"))
    again = float((logits.argmax(1) == labels).mean() * 100)
    assert again == pytest.approx(w["val_top1"][w["chosen"]])
    assert again >= max(w["val_top1"].values())


def test_without_held_out_clips_nothing_is_chosen_and_it_says_so(
    pretrained: Path, nwucla_npz: Path, tmp_path: Path
) -> None:
    res = _finetune(pretrained, nwucla_npz, tmp_path, "optim.epochs=1", "data.val_fraction=null")
    w = res["weights"]
    assert w["chosen"] == "averaged" and w["chosen_on"].startswith("not chosen") and w["val_top1"] is None
    assert set(w["test_top1"]) == {"raw", "averaged"}


def test_one_weight_average_and_one_hold_out_a_run(capsys: pytest.CaptureFixture) -> None:
    """An override of one alternative replaces the recipe's other; both in one layer is an error."""
    from masksem_core.train.cli import load_experiment

    cfg = load_experiment("nwucla_finetune", ["optim.ema_decay=0.998", "data.val_names=_v02$"])
    assert cfg.optim.ema_decay == 0.998 and cfg.optim.average_fraction is None
    assert cfg.data.val_names == "_v02$" and cfg.data.val_fraction is None
    shipped = load_experiment("nwucla_finetune", ["optim.ema_decay=null"])  # null clears nothing
    assert shipped.optim.average_fraction == 0.2 and shipped.data.val_fraction == 0.1
    both = ["optim.ema_decay=0.998", "optim.average_epochs=3", "run.pretrained=null"]
    assert main(["finetune", "--config", "nwucla_finetune", *both]) == 2
    assert "optim.average_epochs and optim.ema_decay both set the weight average" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ floors
def test_finetune_floor_is_recorded_by_a_from_scratch_run_and_reported_beside(
    pretrained: Path, nwucla_npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    common = ("optim.epochs=1", f"run.baselines_dir={tmp_path / 'floors'}")
    before = _finetune(pretrained, nwucla_npz, tmp_path / "pre0", *common)
    assert (
        before["baselines"]["random_init_top1"] is None
        and "without --pretrained" in (before["baselines"]["random_init_note"])
    )
    assert before["baselines"]["chance_top1"] == pytest.approx(10.0)
    capsys.readouterr()
    scratch = _finetune(None, nwucla_npz, tmp_path / "scratch", *common)
    assert "WARNING: no pre-trained encoder" in capsys.readouterr().err
    assert scratch["from_scratch"] is True and scratch["pretrained"] is None
    after = _finetune(pretrained, nwucla_npz, tmp_path / "pre1", *common)
    assert after["from_scratch"] is False
    assert after["baselines"]["random_init_top1"] == pytest.approx(scratch["top1"])
    assert after["baselines"]["random_init_seeds"] == [0]
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("finetune top-1") and f"same protocol {scratch['top1']:.2f}%" in last
    # another protocol (here: more epochs) does not share the floor
    other = _finetune(pretrained, nwucla_npz, tmp_path / "pre2", "optim.epochs=2", common[1])
    assert other["baselines"]["random_init_top1"] is None


def test_probe_reports_a_random_init_encoder_probed_the_same_way(
    pretrained: Path, nwucla_npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    common = ["linprobe", "--config", "nwucla_linprobe", *TINY, f"data.path={nwucla_npz}", "optim.epochs=10"]
    _run(*common, f"run.pretrained={pretrained}", f"run.out_dir={tmp_path / 'p'}")
    res = _json(tmp_path / "p" / "results.json")
    b = res["baselines"]
    assert 10.0 < b["random_init_top1"] < 100 and b["random_init_top1"] != res["top1"]
    assert b["chance_top1"] == pytest.approx(10.0) and "random_init_probe_lr" in b
    assert f"same protocol {b['random_init_top1']:.2f}%" in capsys.readouterr().out.strip().splitlines()[-1]
    # the floor is the untrained encoder: a from-scratch probe of the same seed scores exactly it
    _run(*common, "run.pretrained=null", f"run.out_dir={tmp_path / 's'}")
    scratch = _json(tmp_path / "s" / "results.json")
    assert scratch["from_scratch"] is True and scratch["top1"] == pytest.approx(b["random_init_top1"])


# ------------------------------------------------------------------------------------------ lr search
def test_lr_search_widens_until_the_best_is_interior() -> None:
    tried = []

    def score(lr: float) -> float:  # best at lr = 3
        tried.append(lr)
        return -abs(math.log(lr / 3.0))

    lr, scores, at_edge = search_lr(score, [0.01, 0.1, 0.3], widen=4)
    assert lr == pytest.approx(2.7) and not at_edge
    assert min(scores) == 0.01 and max(scores) == pytest.approx(8.1)
    assert len(tried) == len(set(tried)) == 6  # 0.9, 2.7, 8.1 added, nothing scored twice
    lr, _, at_edge = search_lr(score, [0.01, 0.1, 0.3], widen=1)
    assert lr == pytest.approx(0.9) and at_edge  # said, not hidden
    lr, scores, at_edge = search_lr(lambda lr: -abs(math.log(lr / 1e-3)), [0.01, 0.1], widen=4)
    assert lr == pytest.approx(0.01 / 9, rel=1e-2) and not at_edge
    assert min(scores) == pytest.approx(0.01 / 27, rel=1e-2)
    # a sparse grid widens by at most x3 a step
    lr, scores, _ = search_lr(score, [1e-6, 0.1], widen=4)
    assert lr == pytest.approx(2.7) and max(scores) == pytest.approx(8.1)
    assert search_lr(score, [3.0], widen=2)[0] == 3.0  # a one-value grid steps by x3 on each side


# ------------------------------------------------------------------------------------------ checkpoints
def test_evaluate_needs_only_the_checkpoint(
    pretrained: Path, nwucla_npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The checkpoint carries its config (data path, split, clip length, layout, labels): evaluate
    --checkpoint alone reproduces training's top-1; a contradicting model setting is an error naming it."""
    res = _finetune(pretrained, nwucla_npz, tmp_path / "ft", "optim.epochs=1")
    ckpt = tmp_path / "ft" / "classifier.pt"
    _run("evaluate", "--checkpoint", str(ckpt), "--out", str(tmp_path / "ev"))
    ev = _json(tmp_path / "ev" / "results.json")
    assert abs(ev["top1"] - res["top1"]) < 0.01 and ev["training_top1"] == res["top1"]
    assert ev["baselines"]["chance_top1"] == pytest.approx(10.0)
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(ckpt), "--config", "nwucla_finetune"]) == 2
    assert "model.num_frames: " in capsys.readouterr().err  # the shipped config says T=32, TINY is 16
    assert main(["evaluate", "--checkpoint", str(ckpt), "model.depth=5"]) == 2
    assert "model.depth" in capsys.readouterr().err


def test_linprobe_takes_the_model_from_the_pretrained_checkpoint(
    pretrained: Path, nwucla_npz: Path, tmp_path: Path
) -> None:
    """No --config and no model settings: the encoder's shape comes from --pretrained, not the defaults
    (T=120, NTU 25 joints), which would not even load these weights."""
    _run("linprobe", "--pretrained", str(pretrained), f"data.path={nwucla_npz}", "optim.epochs=2",
         "run.device=cpu", "run.progress=false", "probe.random_init_baseline=false",
         "--out", str(tmp_path))  # fmt: skip
    saved = torch.load(tmp_path / "classifier.pt", weights_only=True)
    trained = torch.load(pretrained, weights_only=True)["model_config"]
    for key in ("num_frames", "num_joints", "dim", "depth", "layout"):
        assert saved["model_config"][key] == trained[key], key
    assert saved["config"]["data"]["path"] == str(nwucla_npz) and len(saved["labels"]) == 10
