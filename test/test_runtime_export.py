"""Export: checkpoint -> bundle / TorchScript / ONNX, and ONNX Runtime parity with PyTorch (< 1e-4)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from masksem_core.cli import main as masksem
from masksem_core.config import ConfigError
from masksem_core.model import ActionClassifier, ModelConfig
from masksem_core.runtime.bundle import load_bundle, read_bundle_files
from masksem_core.runtime.export import ExportableClassifier, fold_linear_probe, onnx_bytes, onnx_max_abs_diff
from masksem_core.runtime.recognizer import windows_to_clips

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CFG = dict(num_frames=32, dim=64, depth=2, heads=4)
LABELS = [f"A{i:03d}" for i in range(1, 8)]


def make_model(head: str) -> ActionClassifier:
    torch.manual_seed(0)
    model = ActionClassifier(ModelConfig(**CFG), len(LABELS), head)
    with torch.no_grad():  # trained-looking BatchNorm statistics, so folding / export is really tested
        norm = model.head.norm
        norm.running_mean.normal_(0, 0.5)
        norm.running_var.uniform_(0.5, 2.0)
    return model.eval()


def real_clips() -> torch.Tensor:
    """Real NTU motion (five samples, the two-person one with both actors), as the runtime feeds it."""
    files = sorted((DATA / "ntu-samples" / "expected").glob("*.raw_bodies.npz"))
    if not files:
        pytest.skip(f"real NTU samples not found under {DATA / 'ntu-samples'}")
    windows = np.zeros((len(files), 2, 60, 25, 3), np.float32)
    for i, f in enumerate(files):
        with np.load(f) as z:
            bodies = [z[k] for k in sorted(z.files) if k.endswith("_joints")][:2]
        for m, b in enumerate(bodies):
            windows[i, m] = b[:60]
    return windows_to_clips(windows, centre_joint=1, clip_length=32, crop_ratio=0.95)


def presence_patterns() -> torch.Tensor:
    x = torch.randn(4, 3, 32, 25, 2, generator=torch.Generator().manual_seed(3)) * 0.3
    x[1, ..., 1] = 0  # one person
    x[2] = 0  # nobody
    x[3, ..., 0] = 0  # only the second slot
    return x


@pytest.mark.parametrize("head", ["linear", "finetune"])
def test_export_wrapper_computes_the_same_function(head):
    model = make_model(head)
    x = torch.cat([presence_patterns(), real_clips()])
    with torch.no_grad():
        torch.testing.assert_close(ExportableClassifier(model)(x), model(x), rtol=1e-5, atol=1e-5)


def test_folded_linear_probe_equals_batchnorm_then_linear():
    head = make_model("linear").head
    pooled = torch.randn(5, 64)
    with torch.no_grad():
        torch.testing.assert_close(fold_linear_probe(head)(pooled), head(pooled, None), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("head", ["linear", "finetune"])
def test_onnx_runtime_matches_pytorch(head):
    """The issue's acceptance check: ONNX Runtime vs PyTorch logits, max |diff| < 1e-4, any batch size."""
    pytest.importorskip("onnxruntime", reason="onnxruntime (the 'export' extra) is not installed")
    model = make_model(head)
    onnx_model = onnx_bytes(model)
    real = real_clips()
    for x in (real, real[:1], presence_patterns()):
        assert onnx_max_abs_diff(model, onnx_model, x) < 1e-4


def write_checkpoint(path: Path, model: ActionClassifier, data: dict | None = None, kind: str = "classifier"):
    torch.save(
        {
            "kind": kind,
            "model": model.state_dict(),
            "model_config": dict(CFG, layout="ntu25"),
            "num_classes": len(LABELS),
            "head": model.head_kind,
            "labels": LABELS,
            "layout": "ntu25",
            "data": {"clip_length": 32, "fps": 30.0, "centre_joint": 1} if data is None else data,
            "epoch": 7,
            "metrics": {"top1": 0.5},
        },
        path,
    )
    return path


def test_cli_exports_bundle_onnx_and_torchscript(tmp_path, capsys):
    model = make_model("finetune")
    ckpt = write_checkpoint(tmp_path / "classifier.pt", model)
    x = real_clips()
    assert masksem(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "b")]) == 0
    b = load_bundle(tmp_path / "b")
    assert (b.labels, b.fps, b.window_frames, b.layout.name) == (LABELS, 30.0, 32, "ntu25")
    assert yaml.safe_load((tmp_path / "b" / "bundle.yaml").read_text())["source"] == {
        "epoch": 7,
        "metrics": {"top1": 0.5},
    }
    with torch.no_grad():
        torch.testing.assert_close(b.model(x), model(x), rtol=0, atol=0)

    assert (
        masksem(
            [
                "export",
                "--checkpoint",
                str(ckpt),
                "--out",
                str(tmp_path / "o"),
                "--format",
                "onnx",
                "--window-frames",
                "60",
            ]
        )
        == 0
    )
    assert "max |logit difference|" in capsys.readouterr().out
    meta = yaml.safe_load((tmp_path / "o" / "bundle.yaml").read_text())
    assert meta["artifacts"] == {"onnx": "model.onnx"} and meta["window_frames"] == 60
    assert (tmp_path / "o" / "model.onnx").stat().st_size > 0

    assert (
        masksem(
            [
                "export",
                "--checkpoint",
                str(ckpt),
                "--out",
                str(tmp_path / "t.tar.gz"),
                "--format",
                "torchscript",
            ]
        )
        == 0
    )
    ts_bytes = read_bundle_files(tmp_path / "t.tar.gz", ("model.torchscript.pt",))["model.torchscript.pt"]
    scripted = torch.jit.load(io.BytesIO(ts_bytes))
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), model(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(scripted(x[:1]), model(x[:1]), rtol=1e-5, atol=1e-5)
    assert load_bundle(tmp_path / "t.tar.gz").labels == LABELS

    # A bundle re-exports to ONNX without the checkpoint.
    assert (
        masksem(
            ["export", "--bundle", str(tmp_path / "b"), "--out", str(tmp_path / "b2"), "--format", "onnx"]
        )
        == 0
    )
    assert load_bundle(tmp_path / "b2").fps == 30.0


def test_cli_refuses_bad_checkpoints_with_a_clear_message(tmp_path, capsys):
    model = make_model("linear")
    no_fps = write_checkpoint(tmp_path / "nofps.pt", model, data={"clip_length": 32})
    assert masksem(["export", "--checkpoint", str(no_fps), "--out", str(tmp_path / "x")]) == 2
    assert "--fps" in capsys.readouterr().err
    assert masksem(["export", "--checkpoint", str(no_fps), "--out", str(tmp_path / "x"), "--fps", "20"]) == 0
    assert load_bundle(tmp_path / "x").fps == 20.0
    unknown = write_checkpoint(tmp_path / "nullfps.pt", model, data={"clip_length": 32, "fps": None})
    assert masksem(["export", "--checkpoint", str(unknown), "--out", str(tmp_path / "y")]) == 2
    assert "--fps" in capsys.readouterr().err and not (tmp_path / "y").exists()

    pre = write_checkpoint(tmp_path / "pre.pt", model, kind="pretrain")
    assert masksem(["export", "--checkpoint", str(pre), "--out", str(tmp_path / "y")]) == 2
    assert "field 'kind' must be 'classifier'" in capsys.readouterr().err

    torch.save({"kind": "classifier", "model": ExportableClassifier(model)}, tmp_path / "code.pt")
    assert masksem(["export", "--checkpoint", str(tmp_path / "code.pt"), "--out", str(tmp_path / "z")]) == 2
    assert "weights-only" in capsys.readouterr().err

    assert (
        masksem(["export", "--checkpoint", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "w")]) == 2
    )
    assert "checkpoint not found" in capsys.readouterr().err


def recognize_three_people(path: Path, backend: str, precision: str = "fp32") -> list:
    """Three people streamed through a recogniser on the bundle at `path`: 3 windows each."""
    from masksem_core.runtime.recognizer import RecognizerSettings, StreamingRecognizer

    rng = np.random.default_rng(0)
    people = {p: rng.normal(0, 0.3, size=(25, 3)).astype(np.float32) + [p, 0, 3] for p in range(3)}
    settings = RecognizerSettings(
        backend=backend, precision=precision, top_k=len(LABELS), stride_frames=8, num_threads=1
    )
    rec, out = StreamingRecognizer(load_bundle(path), settings), []
    for k in range(48):
        for p, base in people.items():
            rec.push(p, k / 30, base + 0.05 * np.sin(k / 5 + p))
        out += rec.poll()
    return out


def test_recognizer_on_onnxruntime_gives_the_torch_answers(tmp_path):
    """backend="onnxruntime": from the bundle's exported model.onnx, or exported at start-up."""
    pytest.importorskip("onnxruntime", reason="onnxruntime (the 'export' extra) is not installed")

    model = make_model("finetune")
    ckpt = write_checkpoint(tmp_path / "c.pt", model)
    assert (
        masksem(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "o"), "--format", "onnx"]) == 0
    )
    assert masksem(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "b")]) == 0
    want = recognize_three_people(tmp_path / "o", "torch")
    assert len(want) == 3 * 3
    for path in (tmp_path / "o", tmp_path / "b"):
        got = recognize_three_people(path, "onnxruntime")
        assert [(r.person_id, r.class_index) for r in got] == [(r.person_id, r.class_index) for r in want]
        for a, b in zip(got, want):
            assert a.topk_labels == b.topk_labels
            np.testing.assert_allclose(a.topk_scores, b.topk_scores, atol=1e-5)


def test_int8_export_quantises_the_matmuls_and_the_recogniser_agrees_with_torch(tmp_path, capsys):
    """--format onnx-int8 ships model.onnx + model.int8.onnx; precision="int8" runs the quantised one (from
    the artifact, or quantised at start-up from a plain bundle) and stays close to the fp32 answers."""
    pytest.importorskip("onnxruntime", reason="onnxruntime (the 'export' extra) is not installed")
    import onnx

    model = make_model("finetune")
    ckpt = write_checkpoint(tmp_path / "c.pt", model)
    out = tmp_path / "q"
    assert masksem(["export", "--checkpoint", str(ckpt), "--out", str(out), "--format", "onnx-int8"]) == 0
    printed = capsys.readouterr().out
    assert "int8 ONNX Runtime vs PyTorch" in printed and "same top-1 on" in printed
    meta = yaml.safe_load((out / "bundle.yaml").read_text())
    assert meta["artifacts"] == {"onnx": "model.onnx", "onnx_int8": "model.int8.onnx"}
    ops = [n.op_type for n in onnx.load(str(out / "model.int8.onnx")).graph.node]
    fp32_ops = [n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node]
    assert ops.count("MatMulInteger") >= 4 * CFG["depth"] and "MatMulInteger" not in fp32_ops
    assert masksem(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "b")]) == 0

    def scores(res):
        return np.array([[dict(zip(r.topk_labels, r.topk_scores))[c] for c in LABELS] for r in res])

    want = scores(recognize_three_people(out, "torch", "fp32"))
    from_artifact = scores(recognize_three_people(out, "onnxruntime", "int8"))
    at_start_up = scores(recognize_three_people(tmp_path / "b", "onnxruntime", "int8"))
    assert want.shape == (9, len(LABELS))
    np.testing.assert_allclose(from_artifact, at_start_up, atol=1e-6)  # the same quantiser, deterministic
    assert 0 < np.abs(from_artifact - want).max() < 0.02  # quantised (not fp32), and close to it


def test_int8_needs_the_onnxruntime_backend():
    from masksem_core.runtime.recognizer import RecognizerSettings

    with pytest.raises(ConfigError, match="int8.*onnxruntime"):
        RecognizerSettings(precision="int8").validate()
    with pytest.raises(ConfigError, match="onnxruntime backend runs fp32 or int8"):
        RecognizerSettings(backend="onnxruntime", precision="bf16").validate()
    RecognizerSettings(backend="onnxruntime", precision="int8").validate()
