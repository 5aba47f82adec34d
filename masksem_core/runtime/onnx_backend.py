"""ONNX Runtime as the recogniser's inference backend.

On this project's CPUs ONNX Runtime ran the NTU-size classifier in about half the CPU time of eager
PyTorch (fused attention, LayerNorm and GELU kernels), so a robot without a GPU can choose it with
`RecognizerSettings(backend="onnxruntime")`. It uses the bundle's exported `model.onnx` when present
(`masksem export --format onnx`), otherwise exports the bundle's model once at start-up.
"""

from __future__ import annotations

import numpy as np
import torch

from masksem_core.runtime.bundle import Bundle, BundleError, read_bundle_files


def bundle_onnx(bundle: Bundle) -> bytes:
    """The bundle's ONNX model: its `artifacts.onnx` file, or a fresh export of its weights."""
    name = (bundle.meta.get("artifacts") or {}).get("onnx")
    if name and bundle.path is not None:
        files = read_bundle_files(bundle.path, (name,))
        if name not in files:
            raise BundleError(f"bundle {bundle.path}: artifacts.onnx names {name}, which is missing")
        return files[name]
    from masksem_core.runtime.export import onnx_bytes

    return onnx_bytes(bundle.model)


class OnnxClassifier:
    """Callable like the torch classifier: clips (N, C, T, V, M) -> logits (N, K), on ONNX Runtime."""

    def __init__(self, onnx_model: bytes, device: str = "cpu", threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads > 0:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise RuntimeError(
                    "backend onnxruntime on cuda needs onnxruntime-gpu (CUDAExecutionProvider)"
                )
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(onnx_model, options, providers=providers)

    def __call__(self, clips: torch.Tensor) -> torch.Tensor:
        x = clips.detach().to("cpu", torch.float32).numpy()
        (logits,) = self.session.run(None, {"clips": np.ascontiguousarray(x)})
        return torch.from_numpy(logits)
