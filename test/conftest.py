"""Shared test fixtures: where the real data lives, and prepared NW-UCLA arrays (made once per session)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def load_script(relative: str, name: str | None = None) -> ModuleType:
    """A repo script that is not a package module (bench/, experiments/, launch/), loaded by path and
    registered in sys.modules under `name` (its dataclasses look their module up there)."""
    path = REPO / relative
    name = name or path.stem.replace(".", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, f"cannot load {path}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def isolated_script(monkeypatch: pytest.MonkeyPatch):
    """`load_script` for scripts that change the interpreter (sys.path, sys.modules): both are restored
    after the test."""
    monkeypatch.setattr(sys, "path", list(sys.path))

    def load(relative: str) -> ModuleType:
        monkeypatch.setitem(sys.modules, Path(relative).stem.replace(".", "_"), None)  # removed afterwards
        return load_script(relative)

    return load


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test with the reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (it ships beside the repo, not in it)")
    return path


@pytest.fixture(scope="session")
def nwucla_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """NW-UCLA prepared with `masksem prepare nw-ucla` into a temp folder (about a second)."""
    raw = shared_path("nw-ucla")
    from masksem_core.cli import main

    out = tmp_path_factory.mktemp("nwucla")
    assert main(["prepare", "nw-ucla", "--raw", str(raw), "--out", str(out), "--no-progress"]) == 0
    return out / "NW-UCLA.npz"


# A CPU-sized model for protocol tests: overrides for any shipped config.
TINY_MODEL_OVERRIDES = [
    "model.num_frames=16",
    "model.dim=32",
    "model.depth=2",
    "model.heads=2",
    "model.decoder_dim=32",
    "model.decoder_depth=1",
    "model.decoder_heads=2",
    "run.progress=false",
    "run.device=cpu",
    "data.min_crop_fraction=0.5",
]


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tiny models run many times faster on one thread than on two cores shared with other jobs
    (OpenMP synchronisation dominates); tests use tiny models only. `masksem` commands run in-process
    apply their thread rule (default: OMP_NUM_THREADS), so the environment says 1 as well."""
    before = torch.get_num_threads()
    env_before = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
    if env_before is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = env_before


def make_tiny_bundle(
    out: Path,
    labels: list[str],
    layout: str = "kinect_v1_20",
    head: str = "linear",
    fps: float = 30.0,
    seed: int = 0,
    extra: dict | None = None,
    **model: object,
) -> Path:
    """An untrained small classifier saved as a bundle: for mechanics tests, not accuracy."""
    from masksem_core.layouts import get_layout
    from masksem_core.model import ActionClassifier, ModelConfig
    from masksem_core.runtime.bundle import save_bundle

    lay = get_layout(layout)
    cfg = dict(
        num_frames=16,
        num_joints=lay.num_joints,
        num_persons=1,
        dim=32,
        depth=1,
        heads=2,
        decoder_dim=32,
        decoder_depth=1,
        decoder_heads=2,
        layout=layout,
    )
    cfg.update(model)
    torch.manual_seed(seed)
    classifier = ActionClassifier(ModelConfig(**cfg), len(labels), head).eval()
    return save_bundle(out, classifier, labels, layout, fps=fps, extra=extra)
