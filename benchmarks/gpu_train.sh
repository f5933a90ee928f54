#!/usr/bin/env bash
# One-shot GPU training benchmark (under 8 minutes on one H100/H200, no downloads).
# Prints tokens/s and MFU for the ~125M and ~1B models in bf16 (FSDP2 on one rank, torch.compile
# per block), measured over the steps after compilation and warm-up, with next-token prediction;
# then the 125M model with the masked-LM and span-corruption objectives. Tokens are the windows'
# tokens; MFU counts a decoder's FLOPs per token, so for `span` (an encoder-decoder reading ~90% of
# the window and writing ~20%, with cross-attention) it is an approximation.
#
#   DATA=RUN_DIR benchmarks/gpu_train.sh          # a thresher run directory with shards/
#   benchmarks/gpu_train.sh                       # makes one from the embedded sample first
#
# Needs torch with CUDA, numpy and pyarrow; thresher itself (Beam) only when DATA is not given.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${OUT_DIR:-$(mktemp -d)}
STEPS=${STEPS:-40}
SKIP=${SKIP:-10}                 # steps not counted: compilation and allocator warm-up
SEQ=${SEQ:-2048}
if [[ -z "${DATA:-}" ]]; then
  DATA=$OUT_DIR/sample-run
  thresher run --output "$DATA" -q
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
bench() {  # objective model batch_size [extra flags]
  local objective=$1 model=$2 bs=$3; shift 3
  local out=$OUT_DIR/$model-$objective
  rm -rf "$out"
  timeout 300 python3 -m torch.distributed.run --standalone --nproc_per_node=1 -m thresher.trainer \
    --data "$DATA" --model "$model" --seq-len "$SEQ" --batch-size "$bs" --steps "$STEPS" \
    --warmup 5 --lr 3e-4 --ckpt-every -1 --log-every 1 --num-workers 2 --compile --objective "$objective" \
    --output "$out" "$@" \
    > "$out.log" 2>&1 || { tail -30 "$out.log"; return 1; }
  python3 - "$out/metrics.jsonl" "$model" "$bs" "$SKIP" "$objective" <<'PY'
import json, statistics, sys
path, model, bs, skip, objective = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
rows = [json.loads(l) for l in open(path)]
start = next(r for r in rows if r.get("event") == "start")
steps = [r for r in rows if "tokens_per_s" in r and r["step"] > skip]
tps = statistics.median(r["tokens_per_s"] for r in steps)
mfu = statistics.median(r.get("mfu", float("nan")) for r in steps)
loss = [r["loss"] for r in rows if "loss" in r]
print(f"| {model:5} | {objective:9} | {start['params'] / 1e6:7.0f}M | {bs:3} x {start['seq_len']} | {tps:12,.0f} | "
      f"{mfu * 100:5.1f}% | {loss[0]:.3f} -> {loss[-1]:.3f} |")
PY
}
echo "| model | objective | params  | batch      |     tokens/s |   MFU | loss            |"
echo "| ----- | --------- | ------- | ---------- | ------------ | ----- | --------------- |"
bench clm 125m ${BS_125M:-16}
bench clm 1b ${BS_1B:-8}
bench mlm 125m ${BS_125M:-16}
bench span 125m ${BS_125M:-16}
