"""Model bundles: everything the runtime needs to recognise actions, in one directory or archive.

A bundle is `weights.safetensors` (tensors only: loading it can never run code) plus `bundle.yaml`
(model config, head, labels, joint layout, clip length, frame rate, window length, normalisation and
the weights' SHA-256). The ROS nodes, bag replay and the recogniser take nothing but a bundle path,
so a model trained anywhere runs on a robot without its training config or code version.
A `.tar`, `.tar.gz`/`.tgz` or `.zip` of that directory loads the same way, read in memory.

A stream-trained (dense) bundle may carry a second model, a **segment classifier**: a whole-clip
classifier of the same actions (`segment_weights.safetensors`, described under `segment_classifier:`),
which the recogniser asks about each running action segment as a whole (`RecognizerSettings.segment_weight`).
Weights may be stored in float16 (`weights_dtype`) to keep two models small; they load as float32.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from masksem_core.config import ConfigError, from_dict, to_dict
from masksem_core.fileio import atomic_write_bytes
from masksem_core.layouts import SkeletonLayout, get_layout
from masksem_core.model.classifier import ActionClassifier, output_kind
from masksem_core.model.config import ModelConfig

FORMAT = "masksem-bundle"
FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.safetensors"
SEGMENT_WEIGHTS_FILE = "segment_weights.safetensors"
WEIGHTS_DTYPES = {"float32": torch.float32, "float16": torch.float16}
META_FILE = "bundle.yaml"
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")
DEFAULT_CROP_RATIO = 0.95  # the training feeder's test-time centre crop (METHOD.md)


class BundleError(RuntimeError):
    """A bundle cannot be used; the message names the file and the field."""


@dataclass
class Bundle:
    """A loaded bundle. `model` is in eval mode on the CPU in fp32."""

    model: ActionClassifier
    labels: list[str]
    layout: SkeletonLayout
    clip_length: int
    fps: float
    window_frames: int
    normalisation: dict[str, Any]
    path: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    segment_model: ActionClassifier | None = None  # whole-clip classifier of the actions (dense bundles)

    @property
    def num_persons(self) -> int:
        return self.model.cfg.num_persons

    @property
    def centre_joint(self) -> int:
        return int(self.normalisation["centre_joint"])

    @property
    def crop_ratio(self) -> float:
        return float(self.normalisation.get("crop_ratio", 1.0))

    @property
    def dense(self) -> bool:
        """The model returns per-token logits (N, L_t, K) (interface 2)."""
        return bool(self.model.dense)

    @property
    def dual(self) -> bool:
        """The model answers both ways: bidirectional (settled frames) and, asked, causal (newest)."""
        return bool(self.model.dual)

    @property
    def background_label(self) -> str | None:
        """The label meaning "no action" (the last one) of a stream-trained bundle, else None."""
        return self.labels[-1] if self.model.background else None

    @property
    def action_labels(self) -> list[str]:
        """The labels without the background one: the segment classifier's classes."""
        return self.labels[:-1] if self.model.background else list(self.labels)

    @property
    def segment_clip_length(self) -> int:
        return int(self.segment_model.cfg.num_frames) if self.segment_model is not None else 0

    @property
    def segment_crop_ratio(self) -> float:
        """The segment classifier's test-time centre crop (it was trained on whole clips, like `evaluate`)."""
        seg = self.meta.get("segment_classifier") or {}
        return float((seg.get("normalisation") or {}).get("crop_ratio", DEFAULT_CROP_RATIO))

    @property
    def recognizer(self) -> dict[str, Any]:
        """The recogniser settings chosen for this model (interface 3); empty when none were written."""
        return dict(self.meta.get("recognizer") or {})


def atomic_write(path: Path, data: bytes) -> None:
    """Atomic, fsynced, and readable by other users (the ROS node may run as one): see fileio."""
    atomic_write_bytes(path, data)


def bundle_files(
    model: ActionClassifier,
    labels: list[str],
    layout: str | SkeletonLayout,
    fps: float,
    window_frames: int | None = None,
    normalisation: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    segment_model: ActionClassifier | None = None,
    weights_dtype: str = "float32",
) -> dict[str, bytes]:
    """The bundle's files as bytes (name -> content), validated; `save_bundle` writes them.

    `segment_model`: a whole-clip classifier of the same actions (the labels without the background
    one), same layout and persons, for a dense model with a background class. `weights_dtype` float16
    halves the files (the models still run in float32)."""
    lay = get_layout(layout) if isinstance(layout, str) else layout
    cfg: ModelConfig = model.cfg
    if len(labels) != model.num_classes:
        raise BundleError(f"{len(labels)} labels for a model with {model.num_classes} classes")
    if lay.num_joints != cfg.num_joints:
        raise BundleError(f"layout {lay.name} has {lay.num_joints} joints, the model {cfg.num_joints}")
    if not fps > 0:
        raise BundleError(f"fps must be > 0, got {fps}")
    norm = {"centre_joint": lay.centre_joint, "crop_ratio": DEFAULT_CROP_RATIO, **(normalisation or {})}
    if weights_dtype not in WEIGHTS_DTYPES:
        raise BundleError(f"weights_dtype must be one of {sorted(WEIGHTS_DTYPES)}, got {weights_dtype!r}")
    weights = _weights_bytes(model, WEIGHTS_DTYPES[weights_dtype])
    files: dict[str, bytes] = {WEIGHTS_FILE: weights}
    segment: dict[str, Any] = {}
    if segment_model is not None:
        segment = _segment_meta(model, segment_model, labels)
        files[SEGMENT_WEIGHTS_FILE] = _weights_bytes(segment_model, WEIGHTS_DTYPES[weights_dtype])
        segment["weights_sha256"] = hashlib.sha256(files[SEGMENT_WEIGHTS_FILE]).hexdigest()
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_config": to_dict(cfg),
        "num_classes": int(model.num_classes),
        "head": model.head_kind,
        "head_hidden": model.head_hidden,
        "labels": [str(x) for x in labels],
        "layout": lay.name,
        "clip_length": int(cfg.num_frames),
        "fps": float(fps),
        "window_frames": int(window_frames or cfg.num_frames),
        "normalisation": {k: (float(v) if k == "crop_ratio" else v) for k, v in norm.items()},
        "weights": WEIGHTS_FILE,
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
        **({"weights_dtype": weights_dtype} if weights_dtype != "float32" else {}),
        "dense": bool(model.dense),
        **({"causal": True} if model.causal else {}),
        **({"dual": True} if model.dual else {}),
        "background_label": labels[-1] if model.background else None,
        **({"token_frames": int(window_frames or cfg.num_frames) / cfg.num_segments} if model.dense else {}),
        **({"segment_classifier": segment} if segment else {}),
        **(extra or {}),
    }
    files[META_FILE] = yaml.safe_dump(meta, sort_keys=False).encode()
    return files


def _weights_bytes(model: ActionClassifier, dtype: torch.dtype) -> bytes:
    state = {
        k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous().clone()
        for k, v in model.state_dict().items()
    }
    return save_safetensors(state)


def _segment_meta(model: ActionClassifier, segment: ActionClassifier, labels: list[str]) -> dict[str, Any]:
    """The `segment_classifier:` block, after checking that the two models fit together."""
    if not (model.dense and model.background):
        raise BundleError("a segment classifier needs a dense model with a background class (stream-trained)")
    if segment.dense or segment.background:
        raise BundleError("the segment classifier must be a whole-clip classifier (not dense, no background)")
    actions = list(labels[:-1])
    if segment.num_classes != len(actions):
        raise BundleError(
            f"the segment classifier has {segment.num_classes} classes, the model {len(actions)} actions"
        )
    a, b = model.cfg, segment.cfg
    if _input_shape(a) != _input_shape(b):
        raise BundleError(
            f"the segment classifier's input (joints, persons, channels) {_input_shape(b)} differs from "
            f"the model's {_input_shape(a)}"
        )
    return {
        "model_config": to_dict(b),
        "num_classes": int(segment.num_classes),
        "head": segment.head_kind,
        "head_hidden": segment.head_hidden,
        "labels": actions,
        "normalisation": {"crop_ratio": DEFAULT_CROP_RATIO},
        "weights": SEGMENT_WEIGHTS_FILE,
    }


def save_bundle(
    out_dir: str | Path,
    model: ActionClassifier,
    labels: list[str],
    layout: str | SkeletonLayout,
    fps: float,
    window_frames: int | None = None,
    normalisation: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    segment_model: ActionClassifier | None = None,
    weights_dtype: str = "float32",
) -> Path:
    """Write a bundle directory (or archive, by suffix); see `write_bundle`."""
    return write_bundle(
        out_dir,
        bundle_files(
            model, labels, layout, fps, window_frames, normalisation, extra, segment_model, weights_dtype
        ),
    )


def write_bundle(out: str | Path, files: dict[str, bytes]) -> Path:
    """Write bundle files to a directory, or to an archive when `out` ends in an archive suffix.

    In a directory each file is replaced atomically and bundle.yaml last; as it records the weights'
    digest, a reader never accepts a half-updated bundle."""
    out = Path(out)
    if is_archive(out):
        return write_archive(out, files)
    out.mkdir(parents=True, exist_ok=True)
    for name in sorted(files, key=lambda n: n == META_FILE):
        atomic_write(out / name, files[name])
    return out


def write_archive(out_file: str | Path, files: dict[str, bytes]) -> Path:
    """Pack bundle files into a .tar/.tar.gz/.tgz/.zip, atomically."""
    out = Path(out_file)
    buf = io.BytesIO()
    if out.name.endswith(".zip"):
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in files.items():
                zf.writestr(name, data)
    else:
        mode = "w:gz" if out.name.endswith((".tar.gz", ".tgz")) else "w"
        with tarfile.open(fileobj=buf, mode=mode) as tf:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, buf.getvalue())
    return out


def is_archive(path: str | Path) -> bool:
    return Path(path).name.endswith(ARCHIVE_SUFFIXES)


MAX_MEMBER_BYTES = 2 << 30  # 2 GiB: far above any bundle; bounds what a hostile archive can inflate to


def _read_bounded(f: Any, name: str, path: Path) -> bytes:
    """Read at most MAX_MEMBER_BYTES (headers can lie about sizes; the read itself is bounded)."""
    data = f.read(MAX_MEMBER_BYTES + 1)
    if len(data) > MAX_MEMBER_BYTES:
        raise BundleError(f"bundle {path}: member {name} inflates past {MAX_MEMBER_BYTES >> 20} MiB; refused")
    return data


def read_bundle_files(
    path: str | Path, names: tuple[str, ...] = (META_FILE, WEIGHTS_FILE)
) -> dict[str, bytes]:
    """The named files of a bundle directory or archive (members may sit in one top-level folder)."""
    path = Path(path)
    if not path.exists():
        raise BundleError(f"bundle not found: {path}")
    out: dict[str, bytes] = {}
    try:
        if path.is_dir():
            for name in names:
                if (path / name).is_file():
                    out[name] = (path / name).read_bytes()
        elif path.name.endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                for member in zf.namelist():
                    if Path(member).name in names:
                        with zf.open(member) as f:
                            out[Path(member).name] = _read_bounded(f, member, path)
        elif is_archive(path):
            with tarfile.open(path) as tf:
                for member in tf.getmembers():
                    if member.isfile() and Path(member.name).name in names:
                        f = tf.extractfile(member)
                        if f is not None:
                            out[Path(member.name).name] = _read_bounded(f, member.name, path)
        else:
            raise BundleError(f"{path}: a bundle is a directory or one of {', '.join(ARCHIVE_SUFFIXES)}")
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise BundleError(f"bundle {path} cannot be read: {exc}") from None
    for name in (META_FILE, WEIGHTS_FILE):
        if name in names and name not in out:
            raise BundleError(f"bundle {path} has no {name}")
    return out


def _field(meta: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in meta:
        raise BundleError(f"{where}: missing field {key!r}")
    value = meta[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise BundleError(f"{where}: field {key!r} must be {kind.__name__}, got {value!r}")
    return value


def load_bundle(path: str | Path, verify: bool = True) -> Bundle:
    """Load a bundle directory or archive; errors name the file and the field at fault."""
    path = Path(path)
    files = read_bundle_files(path, (META_FILE, WEIGHTS_FILE, SEGMENT_WEIGHTS_FILE))
    where = f"{path}/{META_FILE}" if path.is_dir() else f"{path}:{META_FILE}"
    try:
        meta = yaml.safe_load(files[META_FILE]) or {}
    except yaml.YAMLError as exc:
        raise BundleError(f"{where}: not valid YAML: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BundleError(f"{where}: not a MaskSem bundle (format must be {FORMAT!r})")
    version = _field(meta, "format_version", int, where)
    if version > FORMAT_VERSION:
        raise BundleError(f"{where}: format_version {version} is newer than this runtime ({FORMAT_VERSION})")
    weights = files[WEIGHTS_FILE]
    if verify:
        _check_digest(path, WEIGHTS_FILE, weights, meta.get("weights_sha256"), "weights_sha256")
    try:
        cfg = from_dict(ModelConfig, _field(meta, "model_config", dict, where), prefix="model_config.")
        layout = get_layout(_field(meta, "layout", str, where))
    except (ConfigError, KeyError) as exc:
        raise BundleError(f"{where}: {exc}") from None
    labels = [str(x) for x in _field(meta, "labels", list, where)]
    num_classes = _field(meta, "num_classes", int, where)
    if len(labels) != num_classes:
        raise BundleError(f"{where}: {len(labels)} labels but num_classes is {num_classes}")
    head = _field(meta, "head", str, where)
    if head not in ("linear", "finetune"):
        raise BundleError(f"{where}: field 'head' must be linear or finetune, got {head!r}")
    fps = _field(meta, "fps", float, where)
    window = _field(meta, "window_frames", int, where)
    clip = _field(meta, "clip_length", int, where)
    norm = _field(meta, "normalisation", dict, where)
    if fps <= 0 or window < 2 or clip != cfg.num_frames or layout.num_joints != cfg.num_joints:
        raise BundleError(
            f"{where}: inconsistent fps={fps} window_frames={window} clip_length={clip} "
            f"layout={layout.name} for model_config num_frames={cfg.num_frames} "
            f"num_joints={cfg.num_joints}"
        )
    if not 0 <= int(norm.get("centre_joint", -1)) < layout.num_joints:
        raise BundleError(f"{where}: normalisation.centre_joint must be a joint index of {layout.name}")
    if not 0.0 < float(norm.get("crop_ratio", 1.0)) <= 1.0:
        raise BundleError(f"{where}: normalisation.crop_ratio must be in (0, 1]")
    background = meta.get("background_label")
    if background is not None and (not isinstance(background, str) or labels[-1] != background):
        raise BundleError(f"{where}: background_label {background!r} must be the last label ({labels[-1]!r})")
    for key in ("dense", "causal", "dual"):
        value = meta.get(key, False)
        if not isinstance(value, bool):
            raise BundleError(f"{where}: field {key!r} must be true or false, got {value!r}")
    recognizer = meta.get("recognizer")
    if recognizer is not None and not isinstance(recognizer, dict):
        raise BundleError(f"{where}: field 'recognizer' must be a mapping, got {recognizer!r}")
    try:  # the model's own rules on its kind (causal or dual needs dense, not both, ...), named here
        model = ActionClassifier(cfg, num_classes, head, **output_kind(meta))
    except ValueError as exc:
        raise BundleError(f"{where}: {exc}") from None
    try:
        state = load_safetensors(weights)
        model.load_state_dict(state, strict=True)
    except Exception as exc:  # safetensors / torch raise several types for bad bytes or wrong keys
        raise BundleError(f"{path}/{WEIGHTS_FILE} does not fit the model in {META_FILE}: {exc}") from None
    model.eval()
    segment = None
    if meta.get("segment_classifier") is not None:
        segment = _load_segment(meta, files, model, labels, path, where, verify)
    return Bundle(
        model=model,
        labels=labels,
        layout=layout,
        clip_length=clip,
        fps=fps,
        window_frames=window,
        normalisation=dict(norm),
        path=path,
        meta=meta,
        segment_model=segment,
    )


def _load_segment(
    meta: dict[str, Any],
    files: dict[str, bytes],
    model: ActionClassifier,
    labels: list[str],
    path: Path,
    where: str,
    verify: bool,
) -> ActionClassifier:
    """The segment classifier described under `segment_classifier:` (checked like the main model)."""
    seg = meta["segment_classifier"]
    here = f"{where} segment_classifier"
    if not isinstance(seg, dict):
        raise BundleError(f"{here}: must be a mapping, got {seg!r}")
    if SEGMENT_WEIGHTS_FILE not in files:
        raise BundleError(f"bundle {path} describes a segment classifier but has no {SEGMENT_WEIGHTS_FILE}")
    weights = files[SEGMENT_WEIGHTS_FILE]
    if verify:
        key = "segment_classifier.weights_sha256"
        _check_digest(path, SEGMENT_WEIGHTS_FILE, weights, seg.get("weights_sha256"), key)
    try:
        cfg = from_dict(ModelConfig, _field(seg, "model_config", dict, here), prefix="model_config.")
    except ConfigError as exc:
        raise BundleError(f"{here}: {exc}") from None
    seg_labels = [str(x) for x in _field(seg, "labels", list, here)]
    if not (model.dense and model.background) or seg_labels != labels[:-1]:
        raise BundleError(
            f"{here}: labels must be the model's actions {labels[:-1]} (a dense model with a background "
            f"class), got {seg_labels}"
        )
    head = _field(seg, "head", str, here)
    try:
        segment = ActionClassifier(cfg, _field(seg, "num_classes", int, here), head, **output_kind(seg))
        segment.load_state_dict(load_safetensors(weights), strict=True)
    except Exception as exc:
        raise BundleError(f"{path}/{SEGMENT_WEIGHTS_FILE} does not fit segment_classifier: {exc}") from None
    if _input_shape(cfg) != _input_shape(model.cfg):
        raise BundleError(f"{here}: joints/persons/channels differ from the model's")
    return segment.eval()


def _check_digest(path: Path, name: str, data: bytes, digest: str | None, key: str) -> None:
    """A weights file must match the SHA-256 its bundle.yaml records (when it records one)."""
    if digest is not None and hashlib.sha256(data).hexdigest() != digest:
        raise BundleError(f"{path}: {name} does not match {key} in {META_FILE} (corrupted or half-written)")


def _input_shape(cfg: ModelConfig) -> tuple[int, int, int]:
    """What two models must share to read the same clips: joints, person slots, channels."""
    return cfg.num_joints, cfg.num_persons, cfg.in_channels


RECOGNIZER_KEYS = (
    "window_frames", "stride_frames", "lag_frames", "latency_frames", "score_threshold", "smoothing",
    "smoothing_alpha", "smoothing_window", "segments", "min_segment_frames", "merge_gap_frames",
    "edge_background", "provisional", "segment_weight", "background_bias",
)  # fmt: skip


def set_recognizer_settings(path: str | Path, settings: dict[str, Any]) -> Path:
    """Write the recogniser settings chosen for a bundle's model into its `bundle.yaml` (interface 3),
    checked first (`RecognizerSettings`); the weights are untouched. Directories only."""
    from masksem_core.runtime.recognizer import RecognizerSettings

    path = Path(path)
    meta_file = path / META_FILE
    if not meta_file.is_file():
        raise BundleError(f"{path}: not a bundle directory (no {META_FILE})")
    unknown = sorted(set(settings) - set(RECOGNIZER_KEYS))
    if unknown:
        raise BundleError(f"{meta_file}: recognizer settings {unknown} are not model-specific; keep them out")
    meta = yaml.safe_load(meta_file.read_bytes())
    values = {**(meta.get("recognizer") or {}), **settings}
    checked = RecognizerSettings.from_bundle(None, **values)
    checked.validate()
    meta["recognizer"] = {k: getattr(checked, k) for k in RECOGNIZER_KEYS if getattr(checked, k) is not None}
    atomic_write(meta_file, yaml.safe_dump(meta, sort_keys=False).encode())
    return meta_file
