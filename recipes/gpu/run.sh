#!/usr/bin/env bash
# Every lent GPU minute used (issue 29, item 4): one script for a lent GPU host (one H100/H200,
# 16 cores), run through the device tool in at most two calls of 10 minutes:
#   call 1: recipes/gpu/run.sh 1 1   mel122 by the shipped cqt122's GPU recipe (runs/mel122_gpu)
#   call 2: recipes/gpu/run.sh 2 3   the shipped member's fine-tuning of cqt122: long crops, a larger
#                                    margin and register pairs (recipes/register_pairs;
#                                    runs/cqt122_pairs_gpu), then the exports under $OUT
# Each stage stops at a checkpoint before the call's limit (--max-minutes) and resumes where
# it stopped, so a stage cut short carries on in the next call. DRY_RUN=1 builds each run's
# model and prints its config without training (the test on this CPU: tests/test_recipes.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
stage=${1:-1}; stop=${2:-3}
PY=${PY:-python}
OUT=${OUT:-artifacts}
MINUTES=${MINUTES:-8.5}
CONFIG=${CONFIG:-training/configs/gpu_cqt122.yaml}
FINETUNE=${FINETUNE:-recipes/register_pairs/cqt122_pairs.yaml}
EXTRA=${EXTRA:-}
dry=${DRY_RUN:+--dry-run}

train() {  # train NAME ARGS...: resume runs/NAME when it has a state, else start it
  local name=$1; shift
  if [ -z "$dry" ] && [ -f "runs/$name/state.pt" ]; then
    $PY -m training.train --resume "runs/$name/state.pt" --max-minutes "$MINUTES"
  else
    $PY -m training.train "$@" --set run.name="$name" $EXTRA ${dry:---max-minutes $MINUTES} $dry
  fi
}

if [ "$stage" -le 1 ] && [ "$stop" -ge 1 ]; then
  train mel122_gpu --config "$CONFIG" --set model.init=mel
fi
if [ "$stage" -le 2 ] && [ "$stop" -ge 2 ]; then
  # the GPU affords the GPU recipe's data: 192 notes per instrument, batches made by 14 workers
  train cqt122_pairs_gpu --config "$FINETUNE" --init-from "${INIT:-cache/models/cqt122}" \
    --set data.train_max_notes_per_instrument=192 --set data.batch_workers=14 --set optim.batch_size=64
fi
if [ "$stage" -le 3 ] && [ "$stop" -ge 3 ] && [ -z "$dry" ]; then
  mkdir -p "$OUT"
  for name in mel122_gpu cqt122_pairs_gpu; do
    [ -f "runs/$name/state.pt" ] && $PY -m training.train --export "runs/$name/state.pt" --to "$OUT/$name"
    [ -d "runs/$name/best" ] && cp -r "runs/$name/best" "$OUT/${name}_best"
    [ -f "runs/$name/log.jsonl" ] && cp "runs/$name/log.jsonl" "$OUT/$name.jsonl"
  done
fi
