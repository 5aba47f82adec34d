"""The command line as users meet it: --version, per-command help, --threads, Ctrl-C, resume logs, file
modes, unwritable outputs, checkpoint errors, and `evaluate --bundle` agreeing with checkpoint scores."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO, TINY_MODEL_OVERRIDES, make_tiny_bundle

from masksem_core.cli import COMMANDS, EXIT_INTERRUPTED, main

PRETRAIN = [
    "pretrain",
    "--config",
    "nwucla_pretrain",
    *TINY_MODEL_OVERRIDES,
    "optim.warmup_epochs=1",
    "run.max_steps_per_epoch=2",
    "run.save_every=1",
]


def _main(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # --help / --version / argparse errors
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def _epochs(run: Path) -> list[int]:
    with (run / "log.csv").open() as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


# ------------------------------------------------------------------------------------------ version, help
def test_version_is_the_package_xml_version() -> None:
    from importlib.metadata import version

    import masksem_core

    xml = re.search(r"<version>([^<]+)</version>", (REPO / "package.xml").read_text()).group(1)
    code, out, _ = _main("--version")
    assert code == 0 and out.strip() == f"masksem {xml}"
    assert version("masksem") == xml == masksem_core.__version__


def test_pretrain_help_lists_its_own_flags_and_threads() -> None:
    code, out, _ = _main("pretrain", "--help")
    assert code == 0
    for flag in ("--config", "--resume", "--init-from", "--out", "--threads"):
        assert flag in out, flag
    for foreign in ("--checkpoint", "--bundle", "--pretrained", "--backend"):
        assert foreign not in out, f"pretrain --help lists {foreign}"
    _, evaluate, _ = _main("evaluate", "--help")
    assert "--bundle" in evaluate and "--resume" not in evaluate and "--init-from" not in evaluate


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_takes_threads(command: str) -> None:
    code, out, _ = _main(command, "--help")
    assert code == 0 and "--threads" in out


def test_threads_rule_and_start_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from masksem_core import threads

    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert (threads.plan_threads(None).threads, threads.plan_threads(None).source) == (4, "cores")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert (threads.plan_threads(None).threads, threads.plan_threads(None).source) == (3, "OMP_NUM_THREADS")
    assert (threads.plan_threads(2).threads, threads.plan_threads(2).source) == (2, "--threads")
    idle = threads.ThreadPlan(2, "cores", 4, load=1.0)
    busy = threads.ThreadPlan(2, "cores", 4, load=7.0)
    assert not idle.oversubscribed and idle.warning("x") is None
    assert (
        busy.oversubscribed and "oversubscribed" in busy.warning("x") and "--threads 1" in busy.warning("x")
    )
    assert "2 threads (cores)" in idle.start_line("demo") and "load average 1.00" in idle.start_line("demo")

    before = torch.get_num_threads()
    try:
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            threads.configure("demo", 2)
        assert torch.get_num_threads() == 2 and os.environ["OMP_NUM_THREADS"] == "2"
        assert os.environ["MKL_NUM_THREADS"] == "2"
        assert err.getvalue().startswith("masksem demo: 2 threads (--threads); 4 usable cores, load average")
    finally:
        torch.set_num_threads(before)
        os.environ["MKL_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(before)


def test_run_threads_in_a_config_is_the_same_setting(tmp_path: Path) -> None:
    """One rule: --threads, else run.threads, else OMP_NUM_THREADS, else the usable cores."""
    before = torch.get_num_threads()
    base = (
        "pretrain",
        "--config",
        "nwucla_pretrain",
        f"data.path={tmp_path / 'none.npz'}",
        "--out",
        str(tmp_path),
    )
    try:
        code, _, err = _main(*base, "run.threads=2")
        assert code == 2 and "masksem pretrain: 2 threads (run.threads)" in err  # then the missing data
        assert torch.get_num_threads() == 2
        code, _, err = _main(*base, "run.threads=2", "--threads", "1")
        assert "(run.threads)" not in err and "1 thread (--threads)" in err and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
        os.environ["MKL_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(before)


def test_bad_threads_value_is_a_usage_error() -> None:
    code, _, err = _main("pretrain", "--threads", "0")
    assert code == 2 and "--threads: must be >= 1, got 0" in err


# ----------------------------------------------------------------------------------------------- outputs
def test_unwritable_out_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for args in (
        ("demo", "--quick", "--out", str(blocker / "out")),
        ("pretrain", "--config", "nwucla_pretrain", "--out", str(blocker / "run")),
        ("pretrain", "--config", "nwucla_pretrain", f"run.out_dir={blocker / 'run'}", "data.path=x.npz"),
        ("export", "--checkpoint", "x.pt", "--out", str(blocker / "bundle.tar.gz")),
    ):
        code, _, err = _main(*args)
        assert code == 2, args
        assert "Traceback" not in err
        (line,) = [x for x in err.splitlines() if "error" in x]
        assert f"{blocker} is a file, not a folder" in line, line
    assert blocker.read_text() == "x" and not (tmp_path / "out").exists()


def test_files_are_written_with_the_umask_mode(tmp_path: Path) -> None:
    """mkstemp's 0600 would hide a bundle from the ROS node running as another user."""
    from masksem_core.replay.report import write_json_atomic
    from masksem_core.train.checkpoint import save_checkpoint
    from masksem_core.train.results import RunLogger, write_json

    for umask, want in ((0o022, 0o644), (0o077, 0o600)):
        old = os.umask(umask)
        try:
            out = tmp_path / f"u{umask:o}"
            save_checkpoint({"kind": "pretrain", "model": {"w": torch.zeros(2)}, "epoch": 0}, out / "last.pt")
            make_tiny_bundle(out / "bundle", ["a", "b"])
            write_json(out / "results.json", {"top1": 1.0})
            write_json_atomic(out / "report.json", {"ok": True})
            log = RunLogger(out / "run")
            log.log(0, {"loss": 1.0})
            log.log(1, {"loss": 0.5, "new_column": 1.0})  # widening rewrites the CSV atomically
            log.close()
        finally:
            os.umask(old)
        files = [p for p in out.rglob("*") if p.is_file()]
        assert len(files) >= 7
        for p in files:
            assert p.stat().st_mode & 0o777 == want, (p, oct(p.stat().st_mode))


# ------------------------------------------------------------------------------------- resume, best, logs
def test_resume_keeps_one_log_row_per_epoch(nwucla_npz: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = [*PRETRAIN, f"data.path={nwucla_npz}", "--out", str(run), "run.keep_every=1", "run.keep_last=2"]
    assert _main(*args, "optim.epochs=2")[0] == 0
    assert _epochs(run) == [0, 1]
    code, out, _ = _main(*args, "optim.epochs=3", "--resume")
    assert code == 0 and "resumed from" in out
    assert _epochs(run) == [0, 1, 2]
    # a second resume, after a run that was killed having logged epoch 3 but before its checkpoint
    assert _main(*args, "optim.epochs=5", "run.stop_after_epochs=4", "--resume")[0] == 0
    with (run / "log.csv").open("a") as f:
        f.write("4,9.9\n")
    assert _main(*args, "optim.epochs=5", "--resume")[0] == 0
    assert _epochs(run) == [0, 1, 2, 3, 4]

    from masksem_core.train.checkpoint import load_checkpoint

    with (run / "log.csv").open() as f:
        losses = [float(r["loss"]) for r in csv.DictReader(f)]
    best = load_checkpoint(run / "best.pt")
    assert best["extra"]["best_loss"] == pytest.approx(min(losses))
    assert best["epoch"] == losses.index(min(losses))
    assert sorted(p.name for p in run.glob("epoch_*.pt")) == ["epoch_003.pt", "epoch_004.pt"]
    assert load_checkpoint(run / "epoch_003.pt")["epoch"] == 3
    text = (run / "train.log").read_text()
    assert text.count("resumed from") == 3 and "epoch 5/5 loss" in text and "pretrain done" in text


def test_sigint_during_pretrain_exits_130_without_traceback(nwucla_npz: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "masksem_core.cli", *PRETRAIN, f"data.path={nwucla_npz}", "--out", str(run)]
    proc = subprocess.Popen(
        [*cmd, "optim.epochs=1000", "run.progress=false"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        for line in proc.stdout:  # wait until an epoch (and its checkpoint) is done, then Ctrl-C
            if line.startswith("epoch 2/"):
                proc.send_signal(signal.SIGINT)
                break
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == EXIT_INTERRUPTED, err[-2000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    last_line = err.strip().splitlines()[-1]
    assert last_line.startswith("masksem pretrain: interrupted (Ctrl-C)") and "--resume" in last_line

    from masksem_core.train.checkpoint import load_checkpoint

    epoch = load_checkpoint(run / "last.pt")["epoch"]  # complete and checksummed
    assert epoch >= 1 and _epochs(run)[: epoch + 1] == list(range(epoch + 1))
    assert "interrupted (Ctrl-C)" in (run / "train.log").read_text()


def test_ctrl_c_in_any_command_is_one_line_and_130(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from masksem_core.runtime import export_cli

    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(export_cli, "run", interrupted)
    code, _, err = _main("export", "--checkpoint", "x.pt", "--out", str(tmp_path / "b"), "--threads", "1")
    assert code == 130
    assert (
        err.strip().splitlines()[-1]
        == "masksem export: interrupted (Ctrl-C); the files written so far are complete"
    )


# ---------------------------------------------------------------------------------- checkpoints, bundles
class NotATensor:
    pass


def test_no_error_advises_unpickling(tmp_path: Path) -> None:
    from masksem_core.runtime.bundle import BundleError
    from masksem_core.runtime.export import load_classifier_checkpoint
    from masksem_core.train.checkpoint import CheckpointError, load_checkpoint

    bad = tmp_path / "pickled.pt"
    torch.save({"kind": "classifier", "obj": NotATensor()}, bad)
    for load, error in ((load_checkpoint, CheckpointError), (load_classifier_checkpoint, BundleError)):
        with pytest.raises(error) as info:
            load(bad)
        msg = str(info.value)
        assert "weights_only" not in msg and "NotATensor" in msg and "could run code" in msg
    sources = [p for d in ("masksem_core", "masksem_ros") for p in (REPO / d).rglob("*.py")]
    assert not [p for p in sources if "weights_only=False" in p.read_text()]


def test_clip_scores_of_dense_bundles_leave_out_the_background() -> None:
    from masksem_core.runtime.clip_scores import action_labels, background_index, clip_logits

    labels = ["wave", "point", "no_action"]
    bg = background_index(labels, {"background_label": "no_action"})
    assert bg == 2 and background_index(labels, {}) is None
    tokens = torch.tensor([[[1.0, 0.0, 9.0], [3.0, 4.0, 9.0]]])  # (N=1, L=2, K=3)
    assert clip_logits(tokens, bg).tolist() == [[2.0, 2.0]]
    assert clip_logits(tokens, None).tolist() == [[2.0, 2.0, 9.0]]
    assert action_labels(labels, bg) == ["wave", "point"]
    with pytest.raises(ValueError, match="not one of the bundle's labels"):
        background_index(labels, {"background_label": "idle"})


@pytest.fixture(scope="module")
def probe_run(nwucla_npz: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A tiny linear probe trained on real NW-UCLA (3 epochs) and its checkpoint's own test results."""
    tmp = tmp_path_factory.mktemp("probe")
    common = [*TINY_MODEL_OVERRIDES, f"data.path={nwucla_npz}"]
    code, _, err = _main(
        "linprobe", "--config", "nwucla_linprobe", *common, "--out", str(tmp / "probe"), "optim.epochs=3",
        "probe.lr_grid=[]", "optim.lr=0.3", "run.pretrained=null",
    )  # fmt: skip
    assert code == 0, err
    ckpt = tmp / "probe" / "classifier.pt"
    code, _, err = _main(
        "evaluate", "--config", "nwucla_linprobe", *common, "--checkpoint", str(ckpt),
        "--out", str(tmp / "ckpt"),
    )  # fmt: skip
    assert code == 0, err
    want = json.loads((tmp / "ckpt" / "results.json").read_text())
    assert want["top1"] > 100 / 10 + 5  # above chance (10 classes): agreement with it means something
    return ckpt, want


def test_evaluate_bundle_agrees_with_the_checkpoint(nwucla_npz: Path, tmp_path: Path, probe_run) -> None:
    pytest.importorskip("onnxruntime", reason="the export extra (ONNX Runtime) is not installed")
    from masksem_core.runtime.export import export, load_classifier_checkpoint

    ckpt, want = probe_run
    model, meta = load_classifier_checkpoint(ckpt)
    export(model, meta, tmp_path / "bundle", fmt="onnx-int8")
    got = {}
    for backend, precision in (("torch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "int8")):
        out = tmp_path / f"{backend}-{precision}"
        code, stdout, err = _main(
            "evaluate", "--bundle", str(tmp_path / "bundle"), "--data", str(nwucla_npz),
            "--backend", backend, "--precision", precision, "--out", str(out),
        )  # fmt: skip
        assert code == 0, err
        got[precision, backend] = json.loads((out / "results.json").read_text())
        assert stdout.strip().splitlines()[-1].startswith("evaluate top-1")
    torch_fp32 = got["fp32", "torch"]
    bundle_keys = {"bundle", "backend", "precision", "bundle_model"}
    assert set(torch_fp32) - bundle_keys == set(want) - {"checkpoint", "training_top1"}
    assert torch_fp32["bundle_model"] == "main"  # a clip bundle: its only model
    assert (
        torch_fp32["confusion_matrix"] == want["confusion_matrix"] and torch_fp32["labels"] == want["labels"]
    )
    assert abs(got["fp32", "onnxruntime"]["top1"] - want["top1"]) <= 0.5  # float rounding may flip a tie
    assert abs(got["int8", "onnxruntime"]["top1"] - want["top1"]) <= 3.0  # dynamic int8 quantisation
    assert got["int8", "onnxruntime"]["num_samples"] == want["num_samples"]


def test_evaluate_bundle_scores_its_segment_classifier_exactly_like_its_checkpoint(
    nwucla_npz: Path, tmp_path: Path, probe_run
) -> None:
    """A stream bundle carrying a segment classifier answers for whole clips with it: `evaluate --bundle`
    (auto) gives the classifier checkpoint's own confusion matrix; `--bundle-model main` scores the
    stream model's token mean instead, and asking a bundle without one for its segment classifier fails."""
    from masksem_core.model import ActionClassifier
    from masksem_core.runtime.bundle import save_bundle
    from masksem_core.runtime.export import load_classifier_checkpoint

    ckpt, want = probe_run
    clip, meta = load_classifier_checkpoint(ckpt)
    torch.manual_seed(0)
    dense = ActionClassifier(clip.cfg, len(meta["labels"]) + 1, "finetune", dense=True, background=True,
                             head_hidden=16).eval()  # fmt: skip
    labels = [*meta["labels"], "no_action"]
    for name, segment in (("with", clip), ("without", None)):
        save_bundle(tmp_path / name, dense, labels, meta["layout"], 15.0, 16, {"centre_joint": 1,
                    "crop_ratio": 1.0}, {"background_label": "no_action"}, segment)  # fmt: skip
    got = {}
    for bundle, which in (("with", "auto"), ("with", "main"), ("without", "auto")):
        out = tmp_path / f"{bundle}-{which}"
        code, stdout, err = _main(
            "evaluate", "--bundle", str(tmp_path / bundle), "--data", str(nwucla_npz),
            "--bundle-model", which, "--out", str(out),
        )  # fmt: skip
        assert code == 0, err
        got[bundle, which] = json.loads((out / "results.json").read_text())
    seg = got["with", "auto"]
    assert seg["bundle_model"] == "segment" and seg["labels"] == want["labels"]
    assert seg["confusion_matrix"] == want["confusion_matrix"] and seg["top1"] == want["top1"]
    assert got["with", "main"]["bundle_model"] == "main" and got["without", "auto"]["bundle_model"] == "main"
    assert got["with", "main"]["confusion_matrix"] == got["without", "auto"]["confusion_matrix"]
    assert got["with", "main"]["confusion_matrix"] != want["confusion_matrix"]  # a different (random) model
    code, _, err = _main(
        "evaluate", "--bundle", str(tmp_path / "without"), "--data", str(nwucla_npz), "--bundle-model",
        "segment", "--out", str(tmp_path / "bad"),
    )  # fmt: skip
    assert code == 2 and "carries no segment classifier" in err


# ---------------------------------------------------------------------------------------------- install
@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_install_falls_back_to_the_pinned_torch_quickly_without_the_torch_index() -> None:
    """`make install` probes TORCH_INDEX with a time limit: an index that accepts the connection but never
    answers costs TORCH_PROBE_S seconds, then the pinned torch comes from pip's own index."""
    import socket

    probe = ["make", "-s", "-C", str(REPO), "torch-source", f"PYTHON={sys.executable}", "TORCH_PROBE_S=1"]
    pin = re.search(r"^TORCH \?= (\S+)$", (REPO / "Makefile").read_text(), re.M).group(1)
    with socket.socket() as silent:  # listens, never accepts or answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        index = f"http://127.0.0.1:{silent.getsockname()[1]}/whl/cpu"
        t0 = time.monotonic()
        out = subprocess.run([*probe, f"TORCH_INDEX={index}"], capture_output=True, text=True)
        waited = time.monotonic() - t0
    assert 0.9 < waited < 10, waited
    assert out.stdout.strip() == f"{pin} from pip's configured index ({index} not reachable in 1 s)"
    empty = subprocess.run([*probe, "TORCH_INDEX="], capture_output=True, text=True).stdout.strip()
    assert empty == f"{pin} from pip's configured index (TORCH_INDEX is empty)"
