"""`masksem export`: turn a classifier checkpoint (or a bundle) into a bundle, TorchScript or ONNX.

Every format writes a complete bundle at --out (a directory, or an archive by suffix); `torchscript`
and `onnx` add the exported model file to it, so a deployment target still gets labels, layout and
normalisation from bundle.yaml. An ONNX export is checked against PyTorch with ONNX Runtime.
"""

from __future__ import annotations

import argparse
import sys

from masksem_core.runtime.bundle import BundleError, load_bundle, read_bundle_files
from masksem_core.runtime.export import (
    ONNX_FILE,
    ONNX_INT8_FILE,
    TORCHSCRIPT_FILE,
    bundle_model,
    example_input,
    export,
    load_classifier_checkpoint,
    onnx_and_torch_logits,
    onnx_max_abs_diff,
)

PARITY_TOLERANCE = 1e-4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="classifier checkpoint written by training (weights_only loadable)")
    src.add_argument("--bundle", help="an existing bundle to re-export in another format")
    parser.add_argument("--out", required=True, help="output bundle directory, or .tar/.tar.gz/.tgz/.zip")
    parser.add_argument("--format", choices=("bundle", "torchscript", "onnx", "onnx-int8"), default="bundle")
    parser.add_argument(
        "--fps",
        type=float,
        default=None,
        help="frame rate of the training data (default: the checkpoint's data.fps)",
    )
    parser.add_argument(
        "--window-frames",
        type=int,
        default=None,
        help="frames per recognition window at --fps (default: the clip length)",
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset")
    parser.add_argument(
        "--segment-classifier",
        default=None,
        help="whole-clip classifier checkpoint of the same actions, carried for a stream-trained model "
        "(the recogniser classifies each running action segment with it: recognizer.segment_weight)",
    )
    parser.add_argument(
        "--weights-dtype",
        choices=("float32", "float16"),
        default=None,
        help="how the bundle stores its weights (default: float32, or the re-exported bundle's); float16 "
        "halves the files, the models still run in float32",
    )


def run(args: argparse.Namespace) -> int:
    try:
        segment, dtype = None, args.weights_dtype
        if args.checkpoint:
            model, meta = load_classifier_checkpoint(args.checkpoint)
        else:
            bundle = load_bundle(args.bundle)
            model, meta = bundle_model(bundle)
            if bundle.segment_model is not None:
                segment = (bundle.segment_model, {"labels": bundle.action_labels, "layout": meta["layout"]})
            dtype = dtype or bundle.meta.get("weights_dtype")
        if args.segment_classifier:
            segment = load_classifier_checkpoint(args.segment_classifier)
        out = export(
            model, meta, args.out, args.format, args.fps, args.window_frames, args.opset, segment,
            dtype or "float32",
        )  # fmt: skip
    except (BundleError, OSError, ValueError) as exc:
        print(f"masksem export: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.format} bundle {out} ({model.num_classes} classes, layout {meta['layout']})")
    if segment is not None:
        print(f"  with a segment classifier ({segment[0].num_classes} actions, whole clips)")
    if args.format in ("onnx", "onnx-int8"):
        files = read_bundle_files(out, (ONNX_FILE, ONNX_INT8_FILE))
        diff = onnx_max_abs_diff(model, files.get(ONNX_FILE, b""), example_input(model, batch=3, seed=1))
        ok = diff < PARITY_TOLERANCE
        print(f"ONNX Runtime vs PyTorch: max |logit difference| = {diff:.2e} ({'ok' if ok else 'FAILED'})")
        if args.format == "onnx-int8":
            got, want = onnx_and_torch_logits(
                model, files.get(ONNX_INT8_FILE, b""), example_input(model, batch=32, seed=2)
            )
            # top-1 per clip (per token and pass for dense and dual models)
            diff8, agree = float(abs(got - want).max()), float((got.argmax(-1) == want.argmax(-1)).mean())
            print(
                f"int8 ONNX Runtime vs PyTorch on 32 random clips: max |logit difference| = {diff8:.2e}, "
                f"same top-1 on {agree:.0%} (check the accuracy on your test split before deploying)"
            )
        return 0 if ok else 1
    if args.format == "torchscript":
        print(f"TorchScript model: {TORCHSCRIPT_FILE} (torch.jit.load)")
    return 0
