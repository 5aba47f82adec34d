"""Security: no code path unpickles files (checkpoints, bundles, data), and names that come from data or
configs (labels, sample names, person ids) never become paths outside the output directory."""

from __future__ import annotations

import ast
import csv
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("masksem_core", "masksem_ros", "bench", "scripts", "experiments", "launch")
FORBIDDEN = {  # calls that unpickle or run code from a file, whatever their arguments
    "pickle.load", "pickle.loads", "cPickle.load", "dill.load", "joblib.load", "marshal.load",
    "marshal.loads", "shelve.open", "pd.read_pickle", "pandas.read_pickle", "yaml.unsafe_load",
    "yaml.full_load", "torch.jit.load", "eval", "exec",
}  # fmt: skip
SAFE_LOADERS = {"yaml.SafeLoader", "yaml.CSafeLoader", "SafeLoader", "CSafeLoader"}


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def unsafe_calls(source: str, filename: str = "<src>") -> list[str]:
    """Every call in `source` that could unpickle or execute file content, as 'file:line: why'."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        where = f"{filename}:{node.lineno}"
        if name in FORBIDDEN or name.endswith(".read_pickle"):
            found.append(f"{where}: {name}()")
        elif name.endswith("torch.load"):
            wo = _kw(node, "weights_only")
            if not (isinstance(wo, ast.Constant) and wo.value is True):
                found.append(f"{where}: torch.load without weights_only=True")
        elif name in ("np.load", "numpy.load") or name.endswith("format.read_array"):
            ap = _kw(node, "allow_pickle")
            if ap is not None and not (isinstance(ap, ast.Constant) and ap.value is False):
                found.append(f"{where}: {name} with allow_pickle={ast.unparse(ap)}")
        elif name == "yaml.load":
            loader = _kw(node, "Loader") or (node.args[1] if len(node.args) > 1 else None)
            if loader is None or ast.unparse(loader) not in SAFE_LOADERS:
                found.append(f"{where}: yaml.load without SafeLoader")
    return found


def test_the_scanner_finds_each_unsafe_pattern() -> None:
    bad = """
import pickle, torch, numpy as np, yaml
pickle.load(open("f", "rb"))
torch.load("x.pt")
torch.load("x.pt", weights_only=False)
np.load("x.npy", allow_pickle=True)
yaml.load(text)
yaml.load(text, Loader=yaml.Loader)
eval(text)
"""
    good = """
torch.load("x.pt", map_location="cpu", weights_only=True)
np.load("x.npy", allow_pickle=False, mmap_mode="r")
np.load("x.npz")
yaml.safe_load(text)
yaml.load(text, Loader=yaml.SafeLoader)
model.eval()
"""
    assert len(unsafe_calls(bad)) == 7
    assert unsafe_calls(good) == []


def test_no_code_path_unpickles_or_executes_files() -> None:
    files = [p for d in SCANNED if (REPO / d).is_dir() for p in sorted((REPO / d).rglob("*.py"))]
    assert len(files) > 50
    found = [hit for p in files for hit in unsafe_calls(p.read_text(), str(p.relative_to(REPO)))]
    assert found == []


def test_a_pickled_checkpoint_is_refused_without_running_it(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from masksem_core.train.checkpoint import CheckpointError, load_checkpoint

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "payload": Evil()}, path)
    with pytest.raises(CheckpointError, match=r"evil\.pt"):
        load_checkpoint(path)
    assert not marker.exists()


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


HOSTILE = ["../../escaped", "/tmp/abs_escape", "..\\..\\win", "a/../../b", "\x00nul", "con", "-rf"]


def test_hostile_labels_and_file_names_stay_inside_prepare_output(tmp_path: Path) -> None:
    from masksem_core.data.custom import prepare_custom
    from masksem_core.data.fixtures import plausible_clip

    raw, out = tmp_path / "raw" / "deep", tmp_path / "out"
    (raw / "sub").mkdir(parents=True)
    out.mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i, label in enumerate(HOSTILE):
        name = f"sub/..{i}.npy"  # a sample name that looks like a relative path
        np.save(raw / name, plausible_clip("ntu25", 12, rng))
        rows.append({"file": name, "label": label.replace("\x00", ""), "split": "train" if i % 2 else "test"})
    with open(raw / "labels.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, ["file", "label", "split"])
        writer.writeheader()
        writer.writerows(rows)
    before = _files_under(tmp_path)
    report = prepare_custom(raw, out, "ntu25", name="mine", progress=False)
    new = _files_under(tmp_path) - before
    assert report.clips == len(HOSTILE)
    assert new and all(out in p.parents for p in new), sorted(map(str, new))
    assert {p.name for p in new} == {"mine.npz", "mine.json"}


def test_hostile_labels_stay_inside_bundle_output(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from masksem_core.model.classifier import ActionClassifier
    from masksem_core.model.config import ModelConfig
    from masksem_core.runtime.bundle import load_bundle, save_bundle

    cfg = ModelConfig(num_frames=8, num_joints=25, num_persons=1, dim=16, depth=1, heads=2, decoder_dim=16,
                      decoder_depth=0, decoder_heads=2)  # fmt: skip
    labels = [h.replace("\x00", "") for h in HOSTILE]
    model = ActionClassifier(cfg, len(labels), "linear")
    out = tmp_path / "out" / "bundle"
    before = _files_under(tmp_path)
    save_bundle(out, model, labels, "ntu25", fps=30.0)
    new = _files_under(tmp_path) - before
    assert {p.name for p in new} == {"bundle.yaml", "weights.safetensors"}
    assert all(p.parent == out for p in new)
    assert load_bundle(out).labels == labels
