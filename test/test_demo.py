"""`masksem demo` end to end on the built-in synthetic set (a reduced --quick run, about 1-3 min on 2 cores).

One run (module fixture) with --compare, checked for: every report file, summary numbers equal to the
files each step wrote, a probe far above chance, a dense stream bundle carrying the recogniser settings
chosen on validation streams of held-out training performers, a stream recogniser that beats answering
"no action" everywhere, semantic masks on high-CAM tokens, and a timeline rebuilt from the bags that
scores exactly what the replay reported.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import struct
from pathlib import Path

import pytest
import yaml

from masksem_core.cli import main
from masksem_core.demo import figures
from masksem_core.demo.pipeline import TUNING_GRID, DemoPaths

REPORT = ("index.html", "summary.json", *figures.REPORT_FILES)
ARGS = [
    "--quick", "--compare", "--epochs", "2", "--per-class", "16", "--stream-epochs", "8", "--seed", "3",
    "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str, dict]:
    out = tmp_path_factory.mktemp("demo")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["demo", "--out", str(out), *ARGS])
    summary_path = out / "report" / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return out, code, buf.getvalue(), summary


def _json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def test_demo_succeeds_and_writes_every_report_file(demo: tuple) -> None:
    out, code, stdout, _ = demo
    assert code == 0, stdout[-2000:]
    for name in REPORT:
        path = out / "report" / name
        assert path.is_file(), f"missing {path}"
        assert path.stat().st_size > 2_000, f"{path} is nearly empty"
    for name in figures.REPORT_FILES:
        w, h = _png_size(out / "report" / name)
        assert w >= 500 and h >= 250, f"{name} is only {w}x{h}"
    # every step's own outputs are there too
    paths = DemoPaths(out)
    assert (paths.bag / "metadata.yaml").is_file()
    assert (paths.bundle / "bundle.yaml").is_file()
    assert (paths.tuning / "tuning.json").is_file()
    for v in ("masksem", "mamp", "random"):
        assert (paths.pretrain(v) / "log.csv").is_file()
        assert (paths.probe(v) / "classifier.pt").is_file()


def test_summary_numbers_come_from_the_run_files(demo: tuple) -> None:
    out, _, _, s = demo
    paths = DemoPaths(out)
    assert set(s["variants"]) == {"masksem", "mamp", "random"}
    for name, v in s["variants"].items():
        pre, probe = _json(paths.pretrain(name) / "results.json"), _json(paths.probe(name) / "results.json")
        assert v["final_loss"] == pre["final_loss"]
        assert v["probe_top1"] == probe["top1"] and v["knn_top1"] == probe["knn_top1"]
        assert probe["num_samples"] == s["data"]["test_clips"]
        assert pre["epochs"] == 2
    assert s["best"] == max(s["variants"], key=lambda k: s["variants"][k]["probe_top1"])
    rep = _json(paths.replay / "report.json")
    m = rep["metrics"]
    assert s["replay"]["frame_accuracy"] == m["frame_accuracy"]
    assert s["replay"]["segment_f1"] == m["segments"]["f1"]
    assert s["replay"]["retrospective_segment_f1"] == m["retrospective"]["segments"]["f1"]
    assert s["replay"]["retrospective_frame_accuracy"] == m["retrospective"]["frame_accuracy"]
    assert s["replay"]["detection_delay_s"] == m["detection_delay_s"]
    assert s["replay"]["latency_ms"] == m["latency_ms"]
    assert rep["recognitions"] > 0 and m["frames"] > 0
    # the bundle carries the data set's labels and the background class the stream model learned
    assert rep["labels"] == [*s["data"]["classes"], "no_action"]
    stream = _json(paths.stream(s["best"]) / "results.json")
    assert s["stream_model"]["offline_top1"] == stream["top1"] == s["baselines"]["offline_top1"]
    assert len(stream["labels"]) == 16  # offline accuracy: which of the 16 actions, background excluded


def test_printed_table_ends_with_the_headline(demo: tuple) -> None:
    _, _, stdout, s = demo
    lines = stdout.strip().splitlines()
    best, r = s["variants"][s["best"]], s["replay"]
    headline = lines[-1]
    assert headline.startswith("MaskSem demo:")
    assert f"probe top-1 {best['probe_top1']:.1f}%" in headline
    assert f"frame accuracy {r['retrospective_frame_accuracy']:.3f} / {r['frame_accuracy']:.3f}" in headline
    assert (
        f"F1@0.5 {r['retrospective_segment_f1']:.3f} retrospective / {r['segment_f1']:.3f} causal" in headline
    )
    for name in ("masksem", "mamp", "random"):
        row = next(line for line in lines if line.startswith(name))
        assert f"{s['variants'][name]['probe_top1']:.1f}%" in row


def test_every_headline_stands_beside_its_floors(demo: tuple) -> None:
    out, _, stdout, s = demo
    paths, b = DemoPaths(out), s["baselines"]
    probe = _json(paths.probe(s["best"]) / "results.json")
    # the random-init probe was run alongside (same architecture, same probe), not copied from anywhere
    assert b["random_init_probe_top1"] == probe["baselines"]["random_init_top1"]
    assert 0 < b["random_init_probe_top1"] <= 100 and b["random_init_probe_top1"] != probe["top1"]
    assert b["chance_top1"] == pytest.approx(100 / 16)
    # background-only: the share of the recording's frames whose truth is background
    per_class = _json(paths.replay / "report.json")["metrics"]["per_class_frame_accuracy"]
    frames = sum(v["frames"] for v in per_class.values())
    assert b["background_frame_accuracy"] == pytest.approx(per_class["background"]["frames"] / frames)
    assert 0 < b["background_frame_accuracy"] < 1
    headline = stdout.strip().splitlines()[-1]
    assert f"random-init encoder, same probe: {b['random_init_probe_top1']:.1f}%" in headline
    assert f"background-only {b['background_frame_accuracy']:.3f}" in headline
    page = (out / "report" / "index.html").read_text()
    assert f"{b['random_init_probe_top1']:.1f}%" in page and f"{b['background_frame_accuracy']:.3f}" in page


def test_stream_bundle_carries_the_settings_chosen_on_held_out_training_performers(demo: tuple) -> None:
    out, _, _, s = demo
    paths = DemoPaths(out)
    meta = yaml.safe_load((paths.bundle / "bundle.yaml").read_text())
    assert meta["dense"] is True and meta["background_label"] == "no_action"
    assert meta["window_frames"] == 64 and meta["token_frames"] == 8
    tuning = _json(paths.tuning / "tuning.json")
    assert meta["recognizer"] == tuning["chosen"] == {k: s["recognizer"][k] for k in tuning["chosen"]}
    assert set(tuning["chosen"]) == set(TUNING_GRID)
    for key, value in tuning["chosen"].items():
        assert value in TUNING_GRID[key]
    # replay ran exactly what the bundle says (no override flags)
    report = _json(paths.replay / "report.json")
    assert set(report["settings_source"]["overrides"]) <= {"device"}  # where to run it, nothing else
    assert report["settings_source"]["bundle"] == meta["recognizer"]
    # validation performers are training performers, never the test ones; the model did not fit them
    side = _json(Path(s["data"]["npz"]).with_suffix(".json"))
    held = s["data"]["validation_performers"]
    assert held and set(held) <= set(side["train_subjects"]) and not set(held) & set(side["test_subjects"])
    assert tuning["held_out"] == "^P(" + "|".join(f"{p:03d}" for p in held) + ")A"
    fitted = _json(paths.stream(s["best"]) / "results.json")
    assert fitted["weights"]["chosen_on"] == "no weight average" and "val_top1" in fitted


def test_stream_recogniser_beats_background_only(demo: tuple) -> None:
    _, _, stdout, s = demo
    r, b = s["replay"], s["baselines"]
    # answering "no action" on every frame finds no segment (F1 0) and scores the background share
    assert r["retrospective_segment_f1"] > 0.1
    assert r["retrospective_frame_accuracy"] > b["background_frame_accuracy"]
    assert 0 < b["offline_top1"] <= 100
    headline = stdout.strip().splitlines()[-1]
    assert f"stream segment F1@0.5 {r['retrospective_segment_f1']:.3f} retrospective" in headline
    assert f"{r['segment_f1']:.3f} causal" in headline
    assert f"offline clip top-1 of the same classes {b['offline_top1']:.1f}%" in headline


def test_probe_is_far_above_chance(demo: tuple) -> None:
    _, _, _, s = demo
    assert len(s["data"]["classes"]) == 16
    assert s["chance_top1"] == pytest.approx(100 / 16)
    assert s["variants"]["masksem"]["probe_top1"] > 4 * s["chance_top1"]


def test_semantic_masks_fall_on_high_cam_tokens(demo: tuple) -> None:
    _, _, _, s = demo
    m = s["masks"]
    sem, rnd, mot = m["semantic"], m["random"], m["motion"]
    for stats in (sem, rnd, mot):
        assert stats["mask_ratio"] == pytest.approx(0.9, abs=0.01)
    assert sem["cam_masked"] > 1.3 * sem["cam_kept"]
    assert mot["motion_masked"] > 1.2 * mot["motion_kept"]
    assert rnd["cam_masked"] == pytest.approx(rnd["cam_kept"], rel=0.15)  # random ignores the CAM
    for stats in (sem, rnd, mot):
        assert sum(stats["kept_share_by_part"].values()) == pytest.approx(1.0)


def test_timeline_rebuilt_from_the_bags_scores_what_replay_reported(demo: tuple) -> None:
    out, _, _, _ = demo
    paths = DemoPaths(out)
    m = _json(paths.replay / "report.json")["metrics"]
    again, frames = figures.replay_frames(
        paths.bag, paths.replay / "bag", paths.truth_csv, m["max_age_s"], m["segments"]["iou"]
    )
    assert again["frame_accuracy"] == pytest.approx(m["frame_accuracy"])
    assert again["segments"] == m["segments"]
    assert again["retrospective"]["segments"] == m["retrospective"]["segments"]
    assert again["detection_delay_s"] == m["detection_delay_s"]
    assert len(frames.stamps) == m["frames"]


def test_html_is_self_contained_and_shows_the_numbers(demo: tuple) -> None:
    out, _, _, s = demo
    page = (out / "report" / "index.html").read_text()
    sources = re.findall(r'<img src="([^"]{0,30})', page)
    assert len(sources) == len(figures.REPORT_FILES)
    assert all(src.startswith("data:image/png;base64,") for src in sources)
    assert f"{s['variants']['masksem']['probe_top1']:.1f}%" in page
    assert f"{s['replay']['frame_accuracy']:.3f}" in page
    assert f"{s['replay']['retrospective_segment_f1']:.3f}" in page and "retrospective" in page


@pytest.mark.parametrize("bad", [["--epochs", "0"], ["--per-class", "-1"], ["--stream-epochs", "0"]])
def test_bad_budget_is_a_usage_error(tmp_path: Path, bad: list[str], capsys: pytest.CaptureFixture) -> None:
    assert main(["demo", "--out", str(tmp_path / "x"), *bad]) == 2
    assert "must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cuda_without_a_gpu_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: --device cuda is valid here")
    assert main(["demo", "--out", str(tmp_path / "x"), "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_bundle_and_report_are_readable_by_other_users(demo: tuple) -> None:
    """A ROS node running as another user reads the bundle; anyone may open the report."""
    import os

    out = demo[0]
    umask = os.umask(0)
    os.umask(umask)
    if umask & 0o044:
        pytest.skip(f"this process's umask {umask:03o} itself keeps files from others")
    paths = DemoPaths(out)
    files = [p for d in (paths.bundle, paths.report, paths.replay) for p in d.rglob("*") if p.is_file()]
    files += [p for run in (paths.pretrain("masksem"), paths.probe("masksem")) for p in run.glob("*.*")]
    assert len(files) > 15
    private = [
        f"{p.relative_to(out)} {p.stat().st_mode & 0o777:o}"
        for p in files
        if p.stat().st_mode & 0o044 != 0o044
    ]
    assert not private, private
    for folder in (paths.bundle, paths.report, paths.replay):
        assert folder.stat().st_mode & 0o055 == 0o055, folder
