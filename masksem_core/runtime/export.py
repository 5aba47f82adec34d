"""Export a trained classifier: model bundle, TorchScript or ONNX (encoder + head in one graph).

The classifier skips absent person slots and averages over present ones with `index_add_`, which the
ONNX exporter turns into a scatter that overwrites instead of adding. `ExportableClassifier` computes
the same numbers with a one-hot matrix product instead (checked against the original in the tests), so
the exported graph still encodes only the present persons and stays batch-size dynamic.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from masksem_core.config import ConfigError, from_dict
from masksem_core.fileio import UnreadableTorchFile, load_torch_weights_only
from masksem_core.model.classifier import ActionClassifier, LinearProbeHead, output_kind
from masksem_core.model.config import ModelConfig
from masksem_core.runtime.bundle import Bundle, BundleError, bundle_files, write_bundle

ONNX_FILE = "model.onnx"
ONNX_INT8_FILE = "model.int8.onnx"
TORCHSCRIPT_FILE = "model.torchscript.pt"


class ExportableClassifier(nn.Module):
    """Same function as `ActionClassifier.forward`, written with export-friendly ops. A dual model's
    twin returns both answers, (bidirectional logits, causal logits): the exported graph's outputs
    `logits` and `causal_logits`."""

    def __init__(self, model: ActionClassifier) -> None:
        super().__init__()
        self.model = model
        # The linear probe's BatchNorm sits on a feature whose size the exporter cannot infer after the
        # data-dependent person selection; in eval mode it is affine, so fold it into the Linear.
        self.probe = fold_linear_probe(model.head) if isinstance(model.head, LinearProbeHead) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if self.model.dual:
            return self.logits(x, causal=False), self.logits(x, causal=True)
        return self.logits(x, causal=self.model.causal)

    def logits(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        n, c, t, v, m = x.shape
        cfg = self.model.cfg
        present = x.abs().amax(dim=(1, 2, 3)) > 0  # (N, M); a clip with nobody keeps slot 0
        first = torch.arange(m, device=x.device) == 0
        present = present | (first[None, :] & ~present.any(dim=1, keepdim=True))
        folded = x.permute(0, 4, 1, 2, 3).reshape(n * m, c, t, v)
        flat = present.reshape(-1).nonzero().squeeze(1)  # (P,)
        feats = self.model.encoder.encode(folded.index_select(0, flat), causal=causal)
        s = t // cfg.patch_len
        per_token = feats.reshape(-1, s, v, cfg.dim)  # (P, S, V, D)
        clip = torch.div(flat, m, rounding_mode="floor")
        onehot = (clip[None, :] == torch.arange(n, device=x.device)[:, None]).to(feats.dtype)  # (N, P)
        count = onehot.sum(dim=1).clamp(min=1)
        if self.model.dense:  # per temporal token: (N*S, V, D) through the head, back to (N, S, K)
            tokens = torch.einsum("np,psvd->nsvd", onehot, per_token) / count[:, None, None, None]
            per_joint = tokens.reshape(-1, cfg.num_joints, cfg.dim)
        else:
            per_seq = per_token.mean(dim=1)  # (P, V, D)
            per_joint = torch.einsum("np,pvd->nvd", onehot, per_seq) / count[:, None, None]
            per_joint = per_joint.reshape(-1, cfg.num_joints, cfg.dim)  # static size for BatchNorm export
        pooled = per_joint.mean(dim=1)
        out = self.probe(pooled) if self.probe is not None else self.model.head(pooled, per_joint)
        return out.reshape(n, s, -1) if self.model.dense else out


def fold_linear_probe(head: LinearProbeHead) -> nn.Linear:
    """BatchNorm1d (eval, no affine) followed by Linear, as one Linear with the same function."""
    norm, fc = head.norm, head.fc
    assert norm.running_mean is not None and norm.running_var is not None
    inv_std = torch.rsqrt(norm.running_var.double() + norm.eps)
    folded = nn.Linear(fc.in_features, fc.out_features)
    with torch.no_grad():
        weight = fc.weight.double() * inv_std[None, :]
        folded.weight.copy_(weight)
        folded.bias.copy_(fc.bias.double() - weight @ norm.running_mean.double())
    return folded.eval()


def load_classifier_checkpoint(path: str | Path) -> tuple[ActionClassifier, dict[str, Any]]:
    """Read a training classifier checkpoint (docs/INTERFACES.md keys) with weights_only=True."""
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"checkpoint not found: {path}")
    try:
        ckpt = load_torch_weights_only(path)
    except UnreadableTorchFile as exc:  # truncated zip, pickle with code, ...
        raise BundleError(str(exc)) from None
    if not isinstance(ckpt, dict) or ckpt.get("kind") != "classifier":
        kind = ckpt.get("kind") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise BundleError(f"{path}: field 'kind' must be 'classifier', got {kind!r}")
    for key in ("model", "model_config", "num_classes", "head", "labels", "layout"):
        if key not in ckpt:
            raise BundleError(f"{path}: missing field {key!r}")
    try:
        cfg = from_dict(ModelConfig, ckpt["model_config"], prefix="model_config.")
    except ConfigError as exc:
        raise BundleError(f"{path}: {exc}") from None
    model = ActionClassifier(cfg, int(ckpt["num_classes"]), ckpt["head"], **output_kind(ckpt))
    try:
        model.load_state_dict(ckpt["model"], strict=True)
    except RuntimeError as exc:
        raise BundleError(f"{path}: field 'model' does not fit model_config: {exc}") from None
    meta = {k: v for k, v in ckpt.items() if k != "model"}
    return model.eval(), meta


def example_input(model: ActionClassifier, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """A plausible clip batch with every person slot present (tracing must see the general case)."""
    cfg = model.cfg
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(batch, cfg.in_channels, cfg.num_frames, cfg.num_joints, cfg.num_persons, generator=g)
        * 0.3
    )


def onnx_bytes(model: ActionClassifier, opset: int = 17) -> bytes:
    """The classifier as ONNX (legacy TorchScript-based exporter, `dynamo=False`; dynamic batch). A dual
    model's graph has a second output, `causal_logits`."""
    outputs = ["logits", "causal_logits"] if model.dual else ["logits"]
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape checks that are constant here
        torch.onnx.export(
            ExportableClassifier(model).eval(),
            (example_input(model),),
            buf,
            dynamo=False,
            input_names=["clips"],
            output_names=outputs,
            opset_version=opset,
            dynamic_axes={"clips": {0: "batch"}, **{name: {0: "batch"} for name in outputs}},
        )
    return buf.getvalue()


def torchscript_bytes(model: ActionClassifier) -> bytes:
    """The classifier traced to TorchScript (loadable with torch.jit.load, no Python model code).

    TorchScript is deprecated in recent torch (2.13 warns; silenced here) but still what many
    C++ deployments load; ONNX is the format to prefer."""
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(
            ExportableClassifier(model).eval(), (example_input(model),), check_trace=False
        )
        torch.jit.save(traced, buf)
    return buf.getvalue()


def onnx_and_torch_logits(
    model: ActionClassifier, onnx_model: bytes, x: torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """The logits of `x` from ONNX Runtime and from PyTorch, side by side (a dual model's two outputs
    stacked along the batch axis: bidirectional, then causal)."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_model, providers=["CPUExecutionProvider"])
    got = np.concatenate(session.run(None, {"clips": x.numpy().astype(np.float32)}))
    with torch.inference_mode():
        passes = [model(x), model(x, causal=True)] if model.dual else [model(x)]
        want = torch.cat(passes).numpy()
    return got, want


def onnx_max_abs_diff(model: ActionClassifier, onnx_model: bytes, x: torch.Tensor) -> float:
    """Max |ONNX Runtime - PyTorch| of the logits on `x` (the export's parity check)."""
    got, want = onnx_and_torch_logits(model, onnx_model, x)
    return float(np.abs(got - want).max())


def export(
    model: ActionClassifier,
    meta: dict[str, Any],
    out: str | Path,
    fmt: str = "bundle",
    fps: float | None = None,
    window_frames: int | None = None,
    opset: int = 17,
    segment: tuple[ActionClassifier, dict[str, Any]] | None = None,
    weights_dtype: str = "float32",
) -> Path:
    """Write a bundle directory or archive at `out`; `fmt` torchscript/onnx adds that model file to it
    (onnx-int8: the fp32 ONNX model and its int8 dynamically quantised copy). `segment` = (model, meta)
    of a whole-clip classifier of the same actions, carried as the bundle's segment classifier (the
    exported ONNX/TorchScript file is the main model's)."""
    data = meta.get("data") or {}
    fps = fps or data.get("fps")  # never guessed: a wrong rate replays every action at the wrong speed
    if not fps:
        raise BundleError(
            "the checkpoint's data.fps is missing (its training data's sidecar has no 'fps'): pass --fps, "
            "the frame rate of the training data (30 for NTU RGB+D and PKU-MMD, 15 for NW-UCLA: docs/data.md)"
        )
    if not float(fps) > 0:
        raise BundleError(f"fps must be > 0, got {fps}")
    norm = meta.get("normalisation") or (
        {"centre_joint": int(data["centre_joint"])} if "centre_joint" in data else None
    )
    window_frames = window_frames or meta.get("window_frames")
    if model.dense:  # stream windows are never cropped in training: no test-time crop either
        norm = {**(norm or {}), "crop_ratio": 1.0}
    source = {k: meta[k] for k in ("epoch", "metrics") if k in meta} or meta.get("source") or {}
    extra: dict[str, Any] = {"source": source}
    if meta.get("recognizer"):  # the settings chosen for this model travel with it (interface 3)
        extra["recognizer"] = dict(meta["recognizer"])
    artifacts: dict[str, bytes] = {}
    if fmt in ("onnx", "onnx-int8"):
        artifacts[ONNX_FILE] = onnx_bytes(model, opset)
    if fmt == "onnx-int8":
        from masksem_core.runtime.onnx_backend import quantize_int8

        artifacts[ONNX_INT8_FILE] = quantize_int8(artifacts[ONNX_FILE])
    elif fmt == "torchscript":
        artifacts[TORCHSCRIPT_FILE] = torchscript_bytes(model)
    elif fmt not in ("bundle", "onnx"):
        raise BundleError(f"unknown export format {fmt!r}; use bundle, torchscript, onnx or onnx-int8")
    keys = {ONNX_FILE: "onnx", ONNX_INT8_FILE: "onnx_int8", TORCHSCRIPT_FILE: "torchscript"}
    if artifacts:
        extra["artifacts"] = {keys[name]: name for name in artifacts}
    segment_model = None
    if segment is not None:
        segment_model = segment[0]
        check_segment_source(meta, segment[1], float(fps))
        extra["segment_source"] = {k: segment[1][k] for k in ("epoch", "metrics") if k in segment[1]} or (
            meta.get("segment_source") or {}
        )
    files = bundle_files(
        model, list(meta["labels"]), meta["layout"], float(fps), window_frames, norm, extra, segment_model,
        weights_dtype,
    )  # fmt: skip
    files.update(artifacts)
    return write_bundle(out, files)


def check_segment_source(meta: dict[str, Any], seg_meta: dict[str, Any], fps: float) -> None:
    """A segment classifier's checkpoint must know the same actions, layout and frame rate."""
    labels = list(meta["labels"])
    if "labels" in seg_meta and list(seg_meta["labels"]) != labels[:-1]:
        raise BundleError(
            f"segment classifier labels {list(seg_meta['labels'])} are not the model's actions {labels[:-1]}"
        )
    if "layout" in seg_meta and seg_meta["layout"] != meta["layout"]:
        raise BundleError(f"segment classifier layout {seg_meta['layout']!r}, the model's {meta['layout']!r}")
    seg_fps = (seg_meta.get("data") or {}).get("fps")
    if seg_fps and abs(float(seg_fps) - fps) > 1e-6:
        raise BundleError(f"segment classifier trained at {seg_fps} fps, the model's bundle is {fps} fps")


def bundle_model(bundle: Bundle) -> tuple[ActionClassifier, dict[str, Any]]:
    """A loaded bundle as (model, meta) so that it can be re-exported in another format."""
    drop = ("artifacts", "weights_sha256", "segment_classifier", "weights_dtype")
    meta = {k: v for k, v in bundle.meta.items() if k not in drop}
    meta["data"] = {"fps": bundle.fps, "centre_joint": bundle.centre_joint}
    meta["labels"], meta["layout"] = bundle.labels, bundle.layout.name
    return bundle.model, meta
