"""Config validation: every shipped config loads; unknown keys and wrong types are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from masksem_core.config import ConfigError
from masksem_core.train.cli import SHIPPED, load_experiment
from masksem_core.train.config import ExperimentConfig

SHIPPED_NAMES = sorted(p.stem for p in Path(str(SHIPPED)).glob("*.yaml"))


@pytest.mark.parametrize("name", SHIPPED_NAMES)
def test_every_shipped_config_loads(name: str) -> None:
    cfg = load_experiment(name, [])
    assert isinstance(cfg, ExperimentConfig)
    assert cfg.model.num_frames % cfg.model.patch_len == 0


def test_reference_recipes_match_method() -> None:
    pre = load_experiment("ntu60_xsub_pretrain", [])
    assert (pre.optim.epochs, pre.optim.warmup_epochs, pre.optim.lr, pre.optim.min_lr) == (
        400,
        20,
        1e-3,
        5e-4,
    )
    assert pre.optim.betas == (0.9, 0.95) and pre.masking.ratio == 0.9 and pre.target.alpha == 0.2
    assert load_experiment("ntu120_xsub_pretrain", []).masking.tau == 0.75
    assert load_experiment("ntu120_xsub_pretrain", []).model.decoder_depth == 5
    ft = load_experiment("ntu60_xsub_finetune", [])
    assert (ft.optim.layer_decay, ft.optim.lr, ft.optim.min_lr, ft.optim.batch_size) == (0.8, 3e-4, 1e-5, 48)
    assert ft.model.drop_path == 0.3 and ft.run.head_dropout == 0.3 and ft.optim.label_smoothing == 0.1
    lp = load_experiment("ntu60_xsub_linprobe", [])
    assert (lp.optim.optimizer, lp.optim.lr, lp.optim.epochs, lp.optim.batch_size) == ("sgd", 0.1, 100, 256)
    semi = load_experiment("ntu60_xview_semi1", [])
    assert semi.data.label_fraction == 0.01 and semi.run.semi_draws == 5


def test_overrides_are_typed() -> None:
    cfg = load_experiment(
        "nwucla_pretrain", ["optim.epochs=3", "masking.strategy=motion", "data.min_crop_fraction=0.5"]
    )
    assert cfg.optim.epochs == 3 and cfg.masking.strategy == "motion" and cfg.data.min_crop_fraction == 0.5


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("model.dpth=3", "model.dpth"),
        ("optim.lr=fast", "optim.lr"),
        ("masking.strategy=magic", "masking.strategy"),
        ("model.depth=2.5", "model.depth"),
        ("run.deterministic=maybe", "run.deterministic"),
        ("masking.ratio=1.5", "masking.ratio"),
        ("model.num_frames=63", "model.num_frames"),
        ("optim.ema_decay=1.0", "optim.ema_decay"),
        ("data.val_fraction=0", "data.val_fraction"),
        ("data.val_names=a(b", "data.val_names"),
        ("data.rotate_theta=-0.1", "data.rotate_theta"),
        ("nonsense", "key=value"),
    ],
)
def test_bad_values_name_the_key(override: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        load_experiment("nwucla_pretrain", [override])


def test_bad_yaml_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_experiment(str(bad), [])
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("base: nwucla_pretrain\noptim:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match=r"optim\.epoch"):
        load_experiment(str(unknown), [])


def test_missing_config_lists_shipped_ones() -> None:
    with pytest.raises(ConfigError, match="nwucla_pretrain"):
        load_experiment("does_not_exist", [])


def test_cli_reports_a_bad_checkpoint_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from masksem_core.cli import main

    bad = tmp_path / "classifier.pt"
    bad.write_bytes(b"not a checkpoint")
    rc = main(
        ["evaluate", "--config", "nwucla_finetune", "--checkpoint", str(bad), f"run.out_dir={tmp_path}"]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "truncated or not a checkpoint" in err and str(bad) in err
    assert "Traceback" not in err


def test_stale_temp_files_of_a_killed_writer_are_removed(tmp_path: Path) -> None:
    import torch

    from masksem_core.train.checkpoint import load_checkpoint, save_checkpoint

    stale = tmp_path / ".last.pt.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    save_checkpoint({"model": {"w": torch.ones(2)}, "epoch": 1}, tmp_path / "last.pt")
    assert not stale.exists() and load_checkpoint(tmp_path / "last.pt")["epoch"] == 1


def test_exponent_floats_without_a_dot_are_numbers_not_strings():
    """PyYAML follows YAML 1.1, where 1e-6 (no dot) is a string; a float setting accepts it as a number."""
    cfg = load_experiment("nwucla_linprobe", ["optim.lr=1e-3", "probe.lr_grid=[1e-2,3E-1]"])
    assert cfg.optim.lr == 0.001 and cfg.probe.lr_grid == [0.01, 0.3]
    with pytest.raises(ConfigError, match=r"optim\.lr: expected a number, got str 'fast'"):
        load_experiment("nwucla_linprobe", ["optim.lr=fast"])


def test_the_masksem_continuation_recipe_is_the_row_issue_19_measured(isolated_script):
    """nwucla_masksem_continue must be exactly experiments/nwucla_continue.py's masksem_frozen_teacher row
    (the configuration the table chose), and refuse to start without the checkpoint its teacher is."""
    from masksem_core.config import ConfigError
    from masksem_core.train.pretrain import pretrain

    exp = isolated_script("experiments/nwucla_continue.py")
    row = exp.ROWS["masksem_frozen_teacher"].pretrain
    measured = load_experiment("nwucla_pretrain", [*row, "optim.epochs=100", "optim.warmup_epochs=10"])
    recipe = load_experiment("nwucla_masksem_continue", [])
    for section in ("model", "masking", "target", "optim", "data"):
        assert getattr(recipe, section) == getattr(measured, section), section
    with pytest.raises(ConfigError, match="run.init_from"):
        pretrain(recipe)
