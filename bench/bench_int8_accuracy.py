"""Does int8 cost accuracy? Top-1 of a trained classifier on a prepared test split through PyTorch fp32,
ONNX Runtime fp32 and ONNX Runtime int8 (dynamic quantisation), on the same test-time clips.

A speed-up is only worth having if the answers stay; this measures it on real data rather than on the
random clips the export's own check uses. Results are printed and written atomically as JSON.

    .venv/bin/python bench/bench_int8_accuracy.py --checkpoint runs/x/finetune/classifier.pt \
        --data data/nw-ucla/NW-UCLA.npz --out bench/results/int8_accuracy.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from masksem_core.data.feeder import SkeletonClips
from masksem_core.runtime.export import load_classifier_checkpoint, onnx_bytes
from masksem_core.runtime.onnx_backend import OnnxClassifier, quantize_int8
from masksem_core.train.results import write_json  # atomic


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, help="classifier checkpoint (finetune/classifier.pt)")
    ap.add_argument("--data", required=True, help="prepared npz with x_test / y_test")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("bench/results/int8_accuracy.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, meta = load_classifier_checkpoint(args.checkpoint)
    clips = SkeletonClips(args.data, "test", num_frames=model.cfg.num_frames, train=False)
    samples = [clips[i] for i in range(len(clips))]  # each clip built once
    x = torch.stack([clip for clip, _ in samples])
    y = np.array([int(label) for _, label in samples])
    fp32 = onnx_bytes(model)
    int8 = quantize_int8(fp32)
    backends = {
        "torch fp32": model,
        "onnxruntime fp32": OnnxClassifier(fp32, threads=args.threads),
        "onnxruntime int8": OnnxClassifier(int8, threads=args.threads),
    }
    logits, rows = {}, {}
    for name, fn in backends.items():
        t0 = time.perf_counter()
        with torch.inference_mode():
            batches = [fn(x[i : i + args.batch]) for i in range(0, len(x), args.batch)]
            logits[name] = torch.cat(batches).numpy()
        rows[name] = {
            "top1": float((logits[name].argmax(1) == y).mean() * 100),
            "seconds": time.perf_counter() - t0,
        }
    ref = logits["torch fp32"]
    for name, row in rows.items():
        row["same_top1_as_torch"] = float((logits[name].argmax(1) == ref.argmax(1)).mean() * 100)
        row["max_abs_logit_diff"] = float(np.abs(logits[name] - ref).max())
        print(
            f"{name:17s} top-1 {row['top1']:6.2f}%  same answer as torch fp32 on "
            f"{row['same_top1_as_torch']:6.2f}%  max |logit diff| {row['max_abs_logit_diff']:.4f}  "
            f"({row['seconds']:.1f} s for {len(y)} clips)"
        )
    sizes = {"onnx_fp32_bytes": len(fp32), "onnx_int8_bytes": len(int8)}
    print(f"model size: fp32 {len(fp32) / 2**20:.1f} MiB, int8 {len(int8) / 2**20:.1f} MiB")
    write_json(
        args.out,
        {
            "checkpoint": args.checkpoint,
            "data": args.data,
            "clips": len(y),
            **sizes,
            "layout": meta["layout"],
            "results": rows,
        },
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
