"""The demo's steps: built-in data -> pre-training -> linear probe -> bundle -> bag replay -> numbers.

Every step calls the same code the real commands run (`masksem pretrain`, `linprobe`, `export`,
`replay`), on the synthetic collaboration set, so the demo shows the product rather than a mock-up.
Each step leaves its usual outputs under `out/` (run folders with log.csv and results.json, the
bundle, the replay's report.json); the summary only repeats numbers read from those files.
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
PRETRAIN_CONFIG, PROBE_CONFIG = "demo_pretrain", "demo_linprobe"


@dataclass(frozen=True)
class Budget:
    """How much the demo does: clips per class, pre-training epochs, actions in the recording."""

    per_class: int
    epochs: int
    num_actions: int
    # 1.3 s at 30 Hz, measured on demo recordings (3 full-budget epochs): frame accuracy 0.44 vs
    # 0.35/0.32/0.27 for 60/75/90 frames, which lag behind action starts; 32 scored 0.48 but is a
    # third of the shortest training action, 48 scored 0.42
    window_frames: int = 40
    stride_frames: int = 15

    @property
    def warmup_epochs(self) -> int:
        return max(1, self.epochs // 10)


FULL = Budget(per_class=60, epochs=20, num_actions=14)
QUICK = Budget(per_class=30, epochs=6, num_actions=8)


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
    progress: bool = True

    @property
    def budget(self) -> Budget:
        b = QUICK if self.quick else FULL
        return Budget(
            per_class=self.per_class or b.per_class,
            epochs=self.epochs or b.epochs,
            num_actions=b.num_actions,
            window_frames=b.window_frames,
            stride_frames=b.stride_frames,
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
    bundle: Path = field(init=False)
    replay: Path = field(init=False)
    report: Path = field(init=False)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.data = self.out / "data"
        self.recording = self.out / "recording"
        self.runs = self.out / "runs"
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


def export_bundle(settings: DemoSettings, paths: DemoPaths, variant: str) -> Path:
    """The deployable bundle of `variant`'s probe classifier, windowed for streaming."""
    from masksem_core.runtime.export import export, load_classifier_checkpoint

    model, meta = load_classifier_checkpoint(paths.probe(variant) / "classifier.pt")
    _fresh(paths.bundle)
    return export(model, meta, paths.bundle, window_frames=settings.budget.window_frames)


def replay_recording(settings: DemoSettings, paths: DemoPaths) -> dict[str, Any]:
    """`masksem replay` of the recording bag through the streaming recogniser; returns report.json."""
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
        "--stride",
        str(settings.budget.stride_frames),
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
    replay: dict[str, Any],
    masks: dict[str, Any],
    timings: dict[str, float],
) -> dict[str, Any]:
    """The numbers of the run, each copied from the file the step wrote (named in `sources`)."""
    m = replay["metrics"]
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
        "baselines": demo_baselines(data, probes[best], replay),
        "variants": variants,
        "best": best,
        "replay": {
            "frame_accuracy": m["frame_accuracy"],
            "segment_f1": m["segments"]["f1"],
            "segments": m["segments"],
            "detection_delay_s": m["detection_delay_s"],
            "latency_ms": m["latency_ms"],
            "recognitions": replay["recognitions"],
            "realtime_factor": replay.get("realtime_factor"),
            "source": str(paths.replay / "report.json"),
        },
        "masks": masks,
        "timings_s": timings,
    }


def demo_baselines(data: dict[str, Any], probe: dict[str, Any], replay: dict[str, Any]) -> dict[str, Any]:
    """The floors of the headline numbers: the same probe on a random-init encoder of the same
    architecture (computed alongside by linprobe), chance, and the recording's background-only frame
    accuracy (answering "nothing happening" on every frame): replay's own baseline when its report has
    one, else the share of background frames in its per-class frame counts (the same number); replay's
    oracle_* upper bounds are carried along where it has them."""
    from masksem_core.replay.metrics import is_background

    floor, replayed = probe.get("baselines") or {}, replay.get("baselines") or {}
    background = replayed.get("background_frame_accuracy")
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
        **{k: v for k, v in replayed.items() if k.startswith("oracle_")},  # the upper bound, where one exists
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
    r, lat = summary["replay"], summary["replay"]["latency_ms"]
    seg, b = r["segments"], summary["baselines"]
    background = "-" if b["background_frame_accuracy"] is None else f"{b['background_frame_accuracy']:.3f}"
    lines += [
        f"chance: {summary['chance_top1']:.1f}% ({len(summary['data']['classes'])} classes, "
        f"{summary['data']['test_clips']} test clips of unseen performers)",
        f"replay of {summary['data']['recording_s']:.0f} s recording (bundle: {summary['best']}): "
        f"frame accuracy {r['frame_accuracy']:.3f} (background-only {background}), "
        f"segment F1@{seg['iou']:.2f} {seg['f1']:.3f} "
        f"(tp {seg['tp']}, fp {seg['fp']}, fn {seg['fn']}), "
        f"latency p50 {_ms(lat['p50'])} / p99 {_ms(lat['p99'])}",
    ]
    sem = summary["masks"].get("semantic")
    if sem:
        cam = f"mean CAM {sem['cam_masked']:.3f} vs {sem['cam_kept']:.3f}"
        motion = f"mean motion {sem['motion_masked']:.4f} vs {sem['motion_kept']:.4f}"
        lines.append(f"semantic masks, masked vs kept tokens: {cam}, {motion}")
    best = summary["variants"][summary["best"]]
    lines.append(
        f"MaskSem demo: {summary['best']} probe top-1 {best['probe_top1']:.1f}% "
        f"(random-init encoder, same probe: {_pct(b['random_init_probe_top1'])}; "
        f"chance {summary['chance_top1']:.1f}%), replay frame accuracy {r['frame_accuracy']:.3f} "
        f"(background-only {background}), segment F1 {seg['f1']:.3f}, "
        f"latency p50/p99 {_ms(lat['p50'])}/{_ms(lat['p99'])}"
    )
    return "\n".join(lines)


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
    steps = 1 + 2 * len(variants) + 4
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
        step(f"export bundle ({best})", lambda: export_bundle(settings, paths, best))
        replay = step("replay recording", lambda: replay_recording(settings, paths))
        checkpoint = paths.pretrain("masksem") / "last.pt"
        mask_stats = step(
            "mask analysis", lambda: masks.analyse(checkpoint, data["npz"], paths.report, settings.seed)
        )
        summary = summarise(settings, data, pretrains, probes, best, replay, mask_stats, timings)
        step("report figures", lambda: figures.draw_report(paths, summary))
    finally:
        bar.close()
    timings["total"] = round(time.perf_counter() - t_start, 2)
    text = json.dumps(json_safe(summary), indent=2, allow_nan=False) + "\n"
    atomic_write_bytes(paths.report / "summary.json", text.encode())
    html.write_page(paths.report / "index.html", summary)
    return summary
