#!/usr/bin/env bash
# One GPU session, prepared ahead so that a short lease is spent measuring, not typing: CUDA figures of
# the inference and pre-training benchmarks, the CUDA training path (torchrun + nccl, bf16 autocast) on
# real NW-UCLA clips, then a time-boxed NW-UCLA sweep of longer pre-training (several runs share the
# GPU). Every step logs to $OUT and a failing step does not stop the next one.
#
#   OUT=/tmp/gpu SHARED=../shared SWEEP_SECONDS=300 bash bench/gpu_session.sh
#
# SHARED is the folder that holds data/nw-ucla and data/ntu-samples; PY the interpreter with torch.
# Logs go to LOGS and end up in one archive in OUT (a lease returns at most 8 files).
set -u
OUT=${OUT:-bench/results/gpu}
FINAL_OUT=$OUT
OUT=${LOGS:-runs/gpu/logs}
SHARED=${SHARED:-../shared}
PY=${PY:-python3}
SWEEP_SECONDS=${SWEEP_SECONDS:-300}
PRETRAIN_EPOCHS=${PRETRAIN_EPOCHS:-300}
FINETUNE_EPOCHS=${FINETUNE_EPOCHS:-100}
DEVICE=${DEVICE:-cuda}
ITERS=${ITERS:-30}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p "$OUT" "$FINAL_OUT"
step() { # step NAME SECONDS CMD...: run with a time limit, log to $OUT/NAME.log, report the status
    local name=$1 limit=$2
    shift 2
    local t0=$SECONDS
    timeout -s INT -k 10 "$limit" "$@" >"$OUT/$name.log" 2>&1
    echo "== $name: rc=$? in $((SECONDS - t0)) s" | tee -a "$OUT/steps.txt"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$OUT/env.txt" 2>&1
"$PY" -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__,
  'cuda', torch.cuda.is_available() and torch.cuda.get_device_name(0))" >>"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

data=data/gpu/nw-ucla
step prepare 120 "$PY" -m masksem_core.cli prepare nw-ucla --raw "$SHARED/data/nw-ucla" --out "$data"
[ -n "${SKIP_BENCH:-}" ] || step inference 150 "$PY" bench/bench_inference.py --iters "$ITERS" --warmup 5 --out "$OUT/inference.json"
[ -n "${SKIP_BENCH:-}" ] || step suite_pretrain 120 "$PY" bench/bench_suite.py --sections pretrain --batch 32 --steps "$((ITERS / 8 + 1))" --warmup 2 \
    --out "$OUT/suite_pretrain.json"

# The CUDA training path: torchrun + nccl, bf16 autocast, pretrain -> finetune -> evaluate.
common=(data.path="$data/NW-UCLA.npz" run.device="$DEVICE" run.precision=bf16 run.progress=false)
step ddp_pretrain 120 "$PY" -m torch.distributed.run --standalone --nproc_per_node 1 -m masksem_core.cli \
    pretrain --config nwucla_pretrain "${common[@]}" optim.epochs=3 optim.warmup_epochs=1 \
    run.out_dir=runs/gpu/ddp/pretrain
step ddp_finetune 120 "$PY" -m torch.distributed.run --standalone --nproc_per_node 1 -m masksem_core.cli \
    finetune --config nwucla_finetune "${common[@]}" optim.epochs=3 optim.warmup_epochs=1 \
    run.pretrained=runs/gpu/ddp/pretrain/last.pt run.out_dir=runs/gpu/ddp/finetune
tail -n 3 "$OUT"/ddp_*.log

# Time-boxed sweep: one process per row, all on the GPU at once; whatever finished is collected.
sweep() { # sweep NAME VARIANT [overrides...]
    local name=$1 variant=$2
    shift 2
    "$PY" experiments/nwucla_protocols.py --data "$data/NW-UCLA.npz" --out "runs/gpu/$name" \
        --variants "$variant" --finetune "$variant" --pretrain-epochs "$PRETRAIN_EPOCHS" \
        --finetune-epochs "$FINETUNE_EPOCHS" --extra run.device="$DEVICE" run.threads=1 "$@" \
        >"$OUT/sweep_$name.log" 2>&1
}
t0=$SECONDS
pids=()
sweep masksem masksem_semantic_hybrid & pids+=($!)
sweep mamp mamp_motion_velocity & pids+=($!)
PRETRAIN_EPOCHS=200 sweep masksem_s1 masksem_semantic_hybrid run.seed=1 & pids+=($!)
PRETRAIN_EPOCHS=200 sweep mamp_s1 mamp_motion_velocity run.seed=1 & pids+=($!)
sweep masksem_wide masksem_semantic_hybrid model.dim=256 model.heads=8 model.depth=6 & pids+=($!)
sweep mamp_wide mamp_motion_velocity model.dim=256 model.heads=8 model.depth=6 & pids+=($!)
sweep supervised random_init & pids+=($!)
( sleep "$SWEEP_SECONDS"; pkill -INT -f "out runs/gpu/"; pkill -INT -f "run.out_dir=runs/gpu/" ) &  # ours only
killer=$!
wait "${pids[@]}"
kill $killer 2>/dev/null
echo "== sweep: $((SECONDS - t0)) s" | tee -a "$OUT/steps.txt"
"$PY" experiments/nwucla_protocols.py --collect runs/gpu/* | tee "$OUT/sweep_table.md"
tar czf "$FINAL_OUT/gpu_session.tgz" --exclude='*.pt' --exclude=tensorboard "$OUT" runs/gpu
cp "$OUT/steps.txt" "$OUT/inference.json" "$OUT/suite_pretrain.json" "$OUT/sweep_table.md" "$FINAL_OUT/" 2>/dev/null
cat "$OUT/steps.txt"
