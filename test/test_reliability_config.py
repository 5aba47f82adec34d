"""Fuzz the experiment config loader: any YAML file or override is an `ExperimentConfig` or a `ConfigError`
naming the file or key; never a traceback of another type, never arbitrary object construction."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from masksem_core.config import ConfigError
from masksem_core.train.cli import load_experiment
from masksem_core.train.config import ExperimentConfig

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SECTIONS = {f.name: f.type for f in dataclasses.fields(ExperimentConfig)}
FIELDS = [
    (sec, f.name) for sec in SECTIONS for f in dataclasses.fields(type(getattr(ExperimentConfig(), sec)))
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["semantic", "adamw", "hybrid", "cpu", "fp32", "1e-3", "0x10"])
)
values = st.recursive(
    scalars,
    lambda v: st.lists(v, max_size=3) | st.dictionaries(st.text(max_size=4), v, max_size=2),
    max_leaves=6,
)


def _load(tmp_path: Path, text: str | bytes, overrides: list[str] | None = None) -> ExperimentConfig | None:
    path = tmp_path / "exp.yaml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    try:
        cfg = load_experiment(str(path), overrides or [])
    except ConfigError as exc:
        assert str(path) in str(exc) or "override" in str(exc), exc
        return None
    assert isinstance(cfg, ExperimentConfig)
    return cfg


@FUZZ
@given(st.binary(max_size=200))
def test_any_bytes_as_a_config_file(tmp_path: Path, blob: bytes) -> None:
    _load(tmp_path, blob)


@FUZZ
@given(entries=st.lists(st.tuples(st.sampled_from(FIELDS), values), min_size=1, max_size=4))
def test_known_keys_with_any_values(tmp_path: Path, entries: list) -> None:
    doc: dict = {}
    for (sec, name), value in entries:
        doc.setdefault(sec, {})[name] = value
    cfg = _load(tmp_path, yaml.safe_dump(doc))
    if cfg is None:
        return
    for (sec, name), _ in entries:  # accepted: every float that reached the config is a number
        got = getattr(getattr(cfg, sec), name)
        assert not (isinstance(got, float) and math.isnan(got)), f"{sec}.{name} accepted NaN"


@FUZZ
@given(st.lists(st.text(max_size=20), max_size=3))
def test_any_override_text(tmp_path: Path, overrides: list[str]) -> None:
    _load(tmp_path, "optim:\n  epochs: 2\n", overrides)


@pytest.mark.parametrize(
    "text, key",
    [
        ("optim:\n  lr: .nan\n", "optim.lr"),
        ("model:\n  mlp_ratio: .nan\n", "model.mlp_ratio"),
        (b"run:\n  seed: \xff\xfe\n", "UTF-8"),
        ("!!python/object/apply:os.system ['true']\n", "not valid YAML"),
        ("a: &a [*a]\n" + "[" * 5000 + "]" * 5000 + "\n", "not valid YAML"),
        ("data:\n  path: 1\n", "data.path"),  # the sidecar hook leaves wrong types to the validation
        ("data:\n  path: [a.npz]\n", "data.path"),
    ],
    ids=["nan-lr", "nan-mlp", "not-utf8", "python-tag", "deep-nesting", "int-path", "list-path"],
)
def test_pathological_configs_name_the_problem(tmp_path: Path, text: str | bytes, key: str) -> None:
    path = tmp_path / "exp.yaml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as info:
        load_experiment(str(path), [])
    assert str(path) in str(info.value)


def test_nan_override_is_refused_with_its_key() -> None:
    with pytest.raises(ConfigError, match=r"optim\.lr"):
        load_experiment(None, ["optim.lr=.nan"])
