"""The demo's steps: built-in data -> pre-training -> linear probe -> stream fine-tune -> recogniser
settings chosen on validation streams -> bundle -> bag replay -> numbers.

Every step calls the same code the real commands run (`masksem pretrain`, `linprobe`, `finetune` with
a `streaming:` section, the recogniser tuning of `masksem_core.runtime.tuning`, `export`, `replay`), on
the synthetic collaboration set, so the demo shows the product rather than a mock-up. Each step leaves
its usual outputs under `out/` (run folders with log.csv and results.json, tuning.json, the bundle, the
replay's report.json); the summary only repeats numbers read from those files.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

# variant name -> masking strategy; the first one is always trained, the rest with --compare
VARIANTS: dict[str, str] = {"masksem": "semantic", "mamp": "motion", "random": "random"}
PRETRAIN_CONFIG, PROBE_CONFIG, STREAM_CONFIG = "demo_pretrain", "demo_linprobe", "demo_stream"
# recogniser settings searched on the validation streams (the window is the bundle's, 64 frames); strides
# 16 reuses the forward passes of stride 8, so the search costs about one pass over the streams
TUNING_GRID: dict[str, list[Any]] = {
    "stride_frames": [8, 16],
    "lag_frames": [0, 16, 32],
    "segments": [False, True],
    "provisional": [True],  # a "now" report of the newest stride's frames whenever there is a lag
    "edge_background": [1.0, 0.2],  # segments: trim weak action frames off their edges (0.2: NW-UCLA's)
    "smoothing": ["none"],
    "score_threshold": [0.0],
}
VALIDATION_GAPS = ("hold", "smooth")  # one validation stream per gap model (masksem stitch's)
VALIDATION_CLIPS = 24  # held-out clips per validation stream (~1.5 min of stream each)


@dataclass(frozen=True)
class Budget:
    """How much the demo does: clips per class, pre-training and stream fine-tuning epochs, actions in
    the recording, training performers held out for choosing the recogniser settings."""

    per_class: int
    epochs: int
    num_actions: int
    stream_epochs: int
    val_performers: int = 2

    @property
    def warmup_epochs(self) -> int:
        return max(1, self.epochs // 10)


FULL = Budget(per_class=60, epochs=20, num_actions=14, stream_epochs=16)
QUICK = Budget(per_class=30, epochs=6, num_actions=8, stream_epochs=8)


@dataclass
class DemoSettings:
    """What `masksem demo` was asked to do (see cli.py); per_class/epochs override the budget."""

    out: Path
    quick: bool = False
    compare: bool = False
    seed: int = 0
    device: str = "cpu"
    per_class: int | None = None
    epochs: int | None = None
    stream_epochs: int | None = None
    progress: bool = True

    @property
    def budget(self) -> Budget:
        b = QUICK if self.quick else FULL
        return Budget(
            per_class=self.per_class or b.per_class,
            epochs=self.epochs or b.epochs,
            num_actions=b.num_actions,
            stream_epochs=self.stream_epochs or b.stream_epochs,
            val_performers=b.val_performers,
        )

    @property
    def variants(self) -> list[str]:
        return list(VARIANTS) if self.compare else ["masksem"]


@dataclass
class DemoPaths:
    """Where every step writes (all under `out`)."""

    out: Path

    data: Path = field(init=False)
    recording: Path = field(init=False)
    runs: Path = field(init=False)
    tuning: Path = field(init=False)
    bundle: Path = field(init=False)
    replay: Path = field(init=False)
    report: Path = field(init=False)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.data = self.out / "data"
        self.recording = self.out / "recording"
        self.runs = self.out / "runs"
        self.tuning = self.out / "tuning"
        self.bundle = self.out / "bundle"
        self.replay = self.out / "replay"
        self.report = self.out / "report"

    @property
    def bag(self) -> Path:
        return self.recording / "bag"

    @property
    def truth_csv(self) -> Path:
        return self.recording / "truth.csv"

    def pretrain(self, variant: str) -> Path:
        return self.runs / variant / "pretrain"

    def probe(self, variant: str) -> Path:
        return self.runs / variant / "linprobe"

    def stream(self, variant: str) -> Path:
        return self.runs / variant / "stream"


def read_json(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


# ------------------------------------------------------------------------------------------ steps
def make_data(settings: DemoSettings, paths: DemoPaths) -> dict[str, Any]:
    """The labelled clip set (cross-subject split) and a continuous recording bag with its truth."""
    from masksem_core.synthetic import generate_dataset, make_recording, write_dataset, write_recording_bag
    from masksem_core.synthetic.recording import write_intervals_csv

    b = settings.budget
    dataset = generate_dataset(num_per_class=b.per_class, seed=settings.seed)
    npz = write_dataset(paths.data, dataset)
    recording = make_recording(seed=settings.seed + 1, num_actions=b.num_actions)
    paths.recording.mkdir(parents=True, exist_ok=True)
    _fresh(paths.bag)  # a rerun into the same --out: the bag writer refuses to overwrite
    write_recording_bag(paths.bag, recording)
    write_intervals_csv(paths.truth_csv, recording)
    return {
        "npz": str(npz),
        "classes": list(dataset.label_names),
        "train_clips": int((~dataset.is_test).sum()),
        "test_clips": int(dataset.is_test.sum()),
        "recording_s": round(recording.duration_s, 2),
        "recording_actions": len({(i.start_s, i.label) for i in recording.intervals}),
        "bag": str(paths.bag),
        "truth_csv": str(paths.truth_csv),
    }


def _fresh(folder: Path) -> Path:
    """Empty a run folder of an earlier demo into the same --out (log.csv would otherwise be appended to)."""
    import shutil

    if folder.exists():
        shutil.rmtree(folder)
    return folder


def _common_overrides(settings: DemoSettings, npz: str, out_dir: Path) -> list[str]:
    return [
        f"data.path={npz}",
        f"run.out_dir={out_dir}",
        f"run.seed={settings.seed}",
        f"run.device={settings.device}",
        f"run.progress={str(settings.progress).lower()}",
    ]


def pretrain_variant(settings: DemoSettings, paths: DemoPaths, variant: str, npz: str) -> dict[str, Any]:
    """Pre-train one masking strategy on the shared budget; returns its results.json."""
    from masksem_core.train.cli import load_experiment
    from masksem_core.train.pretrain import pretrain

    b = settings.budget
    overrides = _common_overrides(settings, npz, _fresh(paths.pretrain(variant))) + [
        f"masking.strategy={VARIANTS[variant]}",
        f"optim.epochs={b.epochs}",
        f"optim.warmup_epochs={b.warmup_epochs}",
    ]
    pretrain(load_experiment(PRETRAIN_CONFIG, overrides))
    return read_json(paths.pretrain(variant) / "results.json")


def probe_variant(settings: DemoSettings, paths: DemoPaths, variant: str, npz: str) -> dict[str, Any]:
    """Linear probe on the frozen encoder; returns its results.json (top1, knn_top1, confusion, ...)."""
    from masksem_core.train.classify import linprobe
    from masksem_core.train.cli import load_experiment

    overrides = _common_overrides(settings, npz, _fresh(paths.probe(variant))) + [
        f"run.pretrained={paths.pretrain(variant) / 'last.pt'}"
    ]
    linprobe(load_experiment(PROBE_CONFIG, overrides))
    return read_json(paths.probe(variant) / "results.json")


def held_out_performers(npz: str, count: int) -> tuple[str, list[int]]:
    """A data.val_names pattern holding out the last `count` training performers (clip names start
    `P<performer>A`), and those performers: the stream model never fits their clips, and the recogniser
    settings are chosen on streams stitched from them (the test performers and recording stay unseen)."""
    from masksem_core.data.arrays import read_sidecar

    performers = sorted(int(p) for p in (read_sidecar(npz) or {}).get("train_subjects") or [])
    if len(performers) <= count:
        raise ValueError(f"{npz}: {len(performers)} training performers, cannot hold out {count}")
    held = performers[-count:]
    return "^P(" + "|".join(f"{p:03d}" for p in held) + ")A", held


def stream_finetune(
    settings: DemoSettings, paths: DemoPaths, variant: str, npz: str, val_names: str
) -> dict[str, Any]:
    """`masksem finetune` of `variant`'s pre-trained encoder on stream-like windows (config demo_stream:
    no_action class, dense per-token output), the held-out performers left out; returns its results.json
    (top1: the offline clip accuracy on the test performers, background column excluded)."""
    from masksem_core.train.classify import finetune
    from masksem_core.train.cli import load_experiment

    overrides = _common_overrides(settings, npz, _fresh(paths.stream(variant))) + [
        f"run.pretrained={paths.pretrain(variant) / 'last.pt'}",
        f"optim.epochs={settings.budget.stream_epochs}",
        f"data.val_names={val_names}",
    ]
    finetune(load_experiment(STREAM_CONFIG, overrides))
    return read_json(paths.stream(variant) / "results.json")


def validation_clips(npz: str, val_names: str) -> tuple[list[Any], list[int], float, list[str]]:
    """The held-out training clips as `(T, M, V, 3)` arrays (valid frames only), their labels, the data's
    frame rate and label names: the material of the validation streams."""
    import re

    import numpy as np

    from masksem_core.data.augment import valid_length
    from masksem_core.data.feeder import SkeletonClips

    clips = SkeletonClips(npz, "train", train=False)
    pattern = re.compile(val_names)
    rows = [k for k, i in enumerate(clips.indices) if pattern.search(clips.names[i])]
    arrays, labels = [], []
    for k in rows:
        data = clips.raw_clip(k)  # (C, T, V, M)
        arrays.append(np.ascontiguousarray(data[:, : max(valid_length(data), 1)].transpose(1, 3, 2, 0)))
        labels.append(int(clips.all_labels[clips.indices[k]]))
    if clips.fps is None:
        raise ValueError(f"{npz}: the sidecar has no fps")
    return arrays, labels, clips.fps, list(clips.labels)


def tune_recognizer(
    settings: DemoSettings, paths: DemoPaths, variant: str, npz: str, val_names: str, log: Callable
) -> dict[str, Any]:
    """Choose the recogniser settings of the stream model on validation streams stitched from the
    held-out training performers' clips (hold and smooth gaps), never on the test recording: the best
    retrospective segment F1 with causal delay p50 <= 1 s and <= 10% of actions missed (of all settings
    when none qualifies: `qualified` counts them). Writes and returns tuning/tuning.json."""
    from masksem_core.data.arrays import atomic_write_bytes
    from masksem_core.replay.report import json_safe
    from masksem_core.runtime.bundle import load_bundle
    from masksem_core.runtime.tuning import choose, validation_streams

    clips, labels, fps, names = validation_clips(npz, val_names)
    streams = [  # each its own seeded draw of the held-out clips
        validation_streams(clips, labels, fps, names, (gap,), (settings.seed + k,), VALIDATION_CLIPS)[0]
        for k, gap in enumerate(VALIDATION_GAPS)
    ]
    draft = export_bundle(settings, paths, variant, None, _fresh(paths.tuning) / "bundle")
    chosen, rows = choose(load_bundle(draft), streams, TUNING_GRID, log=lambda _: None)
    _fresh(draft)  # the bundle that counts is written next, with these settings
    best = next(r for r in rows if all(r[k] == v for k, v in chosen.items()))
    qualified = sum(r["delay_p50"] <= 1.0 and r["missed_fraction"] <= 0.1 for r in rows)
    doc = {
        "chosen": chosen,
        "validation": best,
        "criterion": "best retrospective segment F1@0.5 among the settings with causal delay p50 <= 1.0 s "
        "and <= 10% of actions missed, among all settings when none qualifies",
        "qualified": int(qualified),
        "held_out": val_names,
        "streams": [
            {
                "gap_model": g,
                "clips": min(len(clips), VALIDATION_CLIPS),
                "duration_s": round(len(s.stamps) / fps, 1),
                "background_share": s.background_fraction,
            }
            for g, s in zip(VALIDATION_GAPS, streams)
        ],
        "grid": TUNING_GRID,
        "rows": rows,
    }
    text = json.dumps(json_safe(doc), indent=2, allow_nan=False) + "\n"
    atomic_write_bytes(paths.tuning / "tuning.json", text.encode())
    log(
        "recogniser settings chosen on validation streams: "
        + ", ".join(f"{k}={v}" for k, v in chosen.items())
        + f" (retrospective segment F1 {best['retro_segments_f1']:.3f}, causal {best['segments_f1']:.3f})"
    )
    return doc


def export_bundle(
    settings: DemoSettings,
    paths: DemoPaths,
    variant: str,
    recognizer: dict[str, Any] | None,
    out: Path | None = None,
) -> Path:
    """The deployable dense bundle of `variant`'s stream model (its 64-frame window), carrying the
    recogniser settings chosen for it (interface 3)."""
    from masksem_core.runtime.export import export, load_classifier_checkpoint

    model, meta = load_classifier_checkpoint(paths.stream(variant) / "classifier.pt")
    if recognizer:
        meta = {**meta, "recognizer": dict(recognizer)}
    return export(model, meta, _fresh(out or paths.bundle))


def replay_recording(settings: DemoSettings, paths: DemoPaths) -> dict[str, Any]:
    """`masksem replay` of the recording bag with the bundle's own settings (what the robot runs);
    returns report.json."""
    from masksem_core.cli import build_parser
    from masksem_core.replay import cli as replay_cli

    argv = [
        "replay",
        str(paths.bag),
        "--bundle",
        str(paths.bundle),
        "--labels",
        str(paths.truth_csv),
        "--out",
        str(paths.replay),
        "--overwrite",
        "--device",
        settings.device,
    ]
    if settings.progress:
        argv.append("--progress")
    code = replay_cli.run(build_parser("replay").parse_args(argv))
    if code != 0:
        raise RuntimeError(f"replay of {paths.bag} failed with exit status {code} (see messages above)")
    return read_json(paths.replay / "report.json")


# ------------------------------------------------------------------------------------------ summary
def summarise(
    settings: DemoSettings,
    data: dict[str, Any],
    pretrains: dict[str, dict[str, Any]],
    probes: dict[str, dict[str, Any]],
    best: str,
    stream: dict[str, Any],
    tuning: dict[str, Any],
    replay: dict[str, Any],
    masks: dict[str, Any],
    timings: dict[str, float],
) -> dict[str, Any]:
    """The numbers of the run, each copied from the file the step wrote (named in `sources`)."""
    m = replay["metrics"]
    retro = m.get("retrospective") or {}
    paths = DemoPaths(settings.out)
    variants = {
        v: {
            "strategy": VARIANTS[v],
            "probe_top1": probes[v]["top1"],
            "probe_top5": probes[v]["top5"],
            "knn_top1": probes[v].get("knn_top1"),
            "random_init_probe_top1": (probes[v].get("baselines") or {}).get("random_init_top1"),
            "final_loss": pretrains[v]["final_loss"],
            "pretrain_wall_s": pretrains[v]["wall_time_s"],
            "sources": {
                "pretrain": str(paths.pretrain(v) / "results.json"),
                "probe": str(paths.probe(v) / "results.json"),
            },
        }
        for v in pretrains
    }
    return {
        "settings": {**asdict(settings), "out": str(settings.out), "budget": asdict(settings.budget)},
        "data": data,
        "chance_top1": 100.0 / len(data["classes"]),
        "baselines": demo_baselines(data, probes[best], stream, replay),
        "variants": variants,
        "best": best,
        "stream_model": {
            "variant": best,
            "offline_top1": stream["top1"],
            "val_top1": stream.get("val_top1"),
            "epochs": settings.budget.stream_epochs,
            "wall_s": stream.get("wall_time_s"),
            "source": str(paths.stream(best) / "results.json"),
        },
        "recognizer": {
            **tuning["chosen"],
            "chosen_on": "validation streams of held-out training performers "
            + str(data["validation_performers"]),
            "validation": {
                k: tuning["validation"][k]
                for k in (
                    "retro_segments_f1",
                    "retro_frame_accuracy",
                    "segments_f1",
                    "frame_accuracy",
                    "delay_p50",
                    "missed_fraction",
                    "background_share",
                )
            },
            "source": str(paths.tuning / "tuning.json"),
        },
        "replay": {
            "segment_f1": m["segments"]["f1"],
            "retrospective_segment_f1": (retro.get("segments") or {}).get("f1"),
            "frame_accuracy": m["frame_accuracy"],
            "retrospective_frame_accuracy": retro.get("frame_accuracy"),
            "segments": m["segments"],
            "retrospective_segments": retro.get("segments"),
            "detection_delay_s": m["detection_delay_s"],
            "latency_ms": m["latency_ms"],
            "recognitions": replay["recognitions"],
            "realtime_factor": replay.get("realtime_factor"),
            "settings": replay.get("settings_source"),
            "source": str(paths.replay / "report.json"),
        },
        "masks": masks,
        "timings_s": timings,
    }


def demo_baselines(
    data: dict[str, Any], probe: dict[str, Any], stream: dict[str, Any], replay: dict[str, Any]
) -> dict[str, Any]:
    """The floors and ceilings of the headline numbers: the same probe on a random-init encoder of the
    same architecture (computed alongside by linprobe), chance, the recording's background-only frame
    accuracy (answering "nothing happening" on every frame: replay's own baseline when its report has
    one, else the share of background frames in its per-class frame counts, the same number), and as
    the stream's upper bound the offline clip accuracy of the same model and classes (test performers'
    clips cut exactly) and replay's oracle (the bundle on each truth interval of the recording cut
    exactly)."""
    from masksem_core.replay.metrics import is_background

    floor = probe.get("baselines") or {}
    replay_baselines = replay.get("baselines") or {}
    background = replay_baselines.get("background_frame_accuracy")
    source = "replay report.json baselines"
    if background is None:
        per_class = replay["metrics"].get("per_class_frame_accuracy") or {}
        frames = sum(v["frames"] for v in per_class.values())
        bg = sum(v["frames"] for k, v in per_class.items() if is_background([k])[0])
        background = bg / frames if frames else None
        source = "background share of replay report.json per_class_frame_accuracy"
    return {
        "random_init_probe_top1": floor.get("random_init_top1"),
        "random_init_knn_top1": floor.get("random_init_knn_top1"),
        "chance_top1": 100.0 / len(data["classes"]),
        "background_frame_accuracy": background,
        "background_source": source,
        "offline_top1": stream["top1"],
        **{k: v for k, v in replay_baselines.items() if k.startswith("oracle_")},  # where replay has them
    }


def format_summary(summary: dict[str, Any]) -> str:
    """The table printed at the end; its last line is the headline."""
    rows = [("variant", "masking", "probe top-1", "kNN top-1", "random-init probe", "final loss")]
    for name, v in summary["variants"].items():
        knn = "-" if v["knn_top1"] is None else f"{v['knn_top1']:.1f}%"
        floor = _pct(v.get("random_init_probe_top1"))
        mark = " *" if name == summary["best"] else ""
        rows.append(
            (name + mark, v["strategy"], f"{v['probe_top1']:.1f}%", knn, floor, f"{v['final_loss']:.3f}")
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    r, lat, b = summary["replay"], summary["replay"]["latency_ms"], summary["baselines"]
    seg, retro = r["segments"], r.get("retrospective_segments") or {}
    background = _num(b["background_frame_accuracy"])
    rec, delay = summary["recognizer"], r["detection_delay_s"]
    lines += [
        f"chance: {summary['chance_top1']:.1f}% ({len(summary['data']['classes'])} classes, "
        f"{summary['data']['test_clips']} test clips of unseen performers)",
        f"stream model ({summary['best']} encoder fine-tuned on stream windows): offline clip top-1 "
        f"{_pct(b['offline_top1'])} on the test clips; recogniser settings chosen on validation streams "
        f"of held-out training performers: stride {rec['stride_frames']}, lag {rec['lag_frames']}, "
        f"threshold {rec['score_threshold']}, smoothing {rec['smoothing']}, segments "
        f"{_on(rec.get('segments'))}, provisional reports {_on(rec.get('provisional'))}",
        f"replay of {summary['data']['recording_s']:.0f} s recording with the bundle's settings: "
        f"segment F1@{seg['iou']:.2f} causal {seg['f1']:.3f} "
        f"(tp {seg['tp']}, fp {seg['fp']}, fn {seg['fn']}) / "
        f"retrospective {_num(retro.get('f1'))} (tp {retro.get('tp', '-')}, fp {retro.get('fp', '-')}, "
        f"fn {retro.get('fn', '-')}); frame accuracy causal {r['frame_accuracy']:.3f} / retrospective "
        f"{_num(r.get('retrospective_frame_accuracy'))} (background-only {background}); "
        f"detection delay p50 {_s(delay.get('p50'))} ({delay.get('missed', '-')} of "
        f"{delay.get('actions', '-')} missed); oracle clip accuracy {_num(b.get('oracle_clip_accuracy'))}",
    ]
    sem = summary["masks"].get("semantic")
    if sem:
        cam = f"mean CAM {sem['cam_masked']:.3f} vs {sem['cam_kept']:.3f}"
        motion = f"mean motion {sem['motion_masked']:.4f} vs {sem['motion_kept']:.4f}"
        lines.append(f"semantic masks, masked vs kept tokens: {cam}, {motion}")
    best = summary["variants"][summary["best"]]
    lines.append(
        f"MaskSem demo: stream segment F1@{seg['iou']:.1f} {_num(retro.get('f1'))} retrospective / "
        f"{seg['f1']:.3f} causal, frame accuracy {_num(r.get('retrospective_frame_accuracy'))} / "
        f"{r['frame_accuracy']:.3f} (background-only {background}; offline clip top-1 of the same classes "
        f"{_pct(b['offline_top1'])}); {summary['best']} probe top-1 {best['probe_top1']:.1f}% "
        f"(random-init encoder, same probe: {_pct(b['random_init_probe_top1'])}; "
        f"chance {summary['chance_top1']:.1f}%); latency p50/p99 {_ms(lat['p50'])}/{_ms(lat['p99'])}"
    )
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _on(flag: object) -> str:
    return "on" if flag else "off"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


# ------------------------------------------------------------------------------------------ driver
def run_demo(settings: DemoSettings, log: Callable[[str], None] = tqdm.write) -> dict[str, Any]:
    """All steps in order; returns the summary (also written to report/summary.json)."""
    from masksem_core.data.arrays import atomic_write_bytes
    from masksem_core.demo import figures, html, masks
    from masksem_core.replay.report import json_safe

    paths = DemoPaths(settings.out)
    paths.out.mkdir(parents=True, exist_ok=True)
    variants = settings.variants
    steps = 1 + 2 * len(variants) + 6
    timings: dict[str, float] = {}
    bar = tqdm(total=steps, desc="masksem demo", unit="step", disable=not settings.progress, position=0)

    def step(name: str, fn: Callable[[], Any]) -> Any:
        bar.set_postfix_str(name)
        log(f"== {name}")
        t0 = time.perf_counter()
        result = fn()
        timings[name] = round(time.perf_counter() - t0, 2)
        bar.update()
        return result

    t_start = time.perf_counter()
    try:
        data = step("data set + recording bag", lambda: make_data(settings, paths))
        pretrains, probes = {}, {}
        for v in variants:
            pretrains[v] = step(
                f"pre-train {v}", lambda v=v: pretrain_variant(settings, paths, v, data["npz"])
            )
            probes[v] = step(f"linear probe {v}", lambda v=v: probe_variant(settings, paths, v, data["npz"]))
        best = max(variants, key=lambda v: probes[v]["top1"])
        val_names, held = held_out_performers(data["npz"], settings.budget.val_performers)
        data["validation_performers"] = held
        stream = step(
            f"stream fine-tune ({best})",
            lambda: stream_finetune(settings, paths, best, data["npz"], val_names),
        )
        tuning = step(
            "recogniser settings (validation streams)",
            lambda: tune_recognizer(settings, paths, best, data["npz"], val_names, log),
        )
        step("export bundle", lambda: export_bundle(settings, paths, best, tuning["chosen"]))
        replay = step("replay recording", lambda: replay_recording(settings, paths))
        checkpoint = paths.pretrain("masksem") / "last.pt"
        mask_stats = step(
            "mask analysis", lambda: masks.analyse(checkpoint, data["npz"], paths.report, settings.seed)
        )
        summary = summarise(
            settings, data, pretrains, probes, best, stream, tuning, replay, mask_stats, timings
        )
        step("report figures", lambda: figures.draw_report(paths, summary))
    finally:
        bar.close()
    timings["total"] = round(time.perf_counter() - t_start, 2)
    text = json.dumps(json_safe(summary), indent=2, allow_nan=False) + "\n"
    atomic_write_bytes(paths.report / "summary.json", text.encode())
    html.write_page(paths.report / "index.html", summary)
    return summary
